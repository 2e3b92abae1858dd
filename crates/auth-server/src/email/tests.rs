//! Tests of the e-mail module: the `[email]` checks and the URL rules, the message's shape and its
//! stable `Message-ID`, and the mailer against a real SMTP server (`auth_tests::smtp`, Debian's
//! aiosmtpd) for the outcome of each failure.
//!
//! The command-line surface (`auth-server email test`) and what arrives are the black-box suite's
//! (`tests/it/email_smtp.rs`); here the mailer's own promise is pinned: which `MailError` each
//! failure is, and that no error holds the password or a body.

use std::path::Path;

use auth_core::SecretString;
use auth_core::ports::{MailError, MailMessage, Mailer as _};
use auth_tests::smtp::{PASSWORD, SmtpServer, USER};
use lettre::message::Mailbox;

use super::*;
use crate::config::{Config, Overrides};

fn load(toml: &str) -> anyhow::Result<Config> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), toml)?;
    Config::load(Some(file.path()), Vec::new(), &Overrides::default())
}

/// A valid `[email]` table with `smtp_url` and `extra` keys.
fn table(url: &str, extra: &str) -> String {
    format!(
        "[email]\nsmtp_url = \"{url}\"\nfrom = \"Portal <noreply@example.com>\"\n\
         public_url = \"https://portal.example.com/\"\n{extra}"
    )
}

fn email(toml: &str) -> EmailConfig {
    load(toml).unwrap().email.unwrap()
}

// ----- configuration ------------------------------------------------------------------------------

#[test]
fn urls_parse_to_their_security_host_port_and_user() {
    let check = |url: &str, want: (Security, &str, u16, Option<&str>)| {
        let got = parse_smtp_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!((got.security, got.host.as_str(), got.port, got.user.as_deref()), want, "{url}");
    };
    check("smtps://mail.example.com", (Security::ImplicitTls, "mail.example.com", 465, None));
    check(
        "smtps://u@Mail.Example.com:2465/",
        (Security::ImplicitTls, "mail.example.com", 2465, Some("u")),
    );
    check("smtp://mail.example.com", (Security::StartTls, "mail.example.com", 587, None));
    check("SMTP://mail.example.com:25", (Security::StartTls, "mail.example.com", 25, None));
    check(
        "smtp://noreply%40example.com@mail.example.com",
        (Security::StartTls, "mail.example.com", 587, Some("noreply@example.com")),
    );
    check(
        "smtp://noreply@example.com@mail.example.com:587",
        (Security::StartTls, "mail.example.com", 587, Some("noreply@example.com")),
    );
    check("smtp://127.0.0.1:2525?tls=none", (Security::Plaintext, "127.0.0.1", 2525, None));
    check("smtp://u@[::1]:25?tls=none", (Security::Plaintext, "[::1]", 25, Some("u")));
    check("smtps://[2001:db8::1]", (Security::ImplicitTls, "[2001:db8::1]", 465, None));
}

#[test]
fn bad_urls_are_refused_with_the_reason() {
    let check = |url: &str, want: &str| {
        let e = parse_smtp_url(url).expect_err(url);
        assert!(e.contains(want), "{url}: {e}");
    };
    check("https://mail.example.com", "must start with smtps://");
    check("mail.example.com:465", "must start with smtps://");
    check("smtps://", "names no host");
    check("smtps://mail.example.com:0", "is not a port");
    check("smtps://mail.example.com:99999", "is not a port");
    check("smtps://mail.example.com/inbox", "only a user, a host and a port");
    check("smtp://@mail.example.com", "empty user");
    check("smtp://[::1", "closing ']'");
    check("smtp://mail.example.com?tls=maybe", "unknown query");
    check("smtps://127.0.0.1?tls=none", "smtp:// only");
    // Clear text only to this machine: names are not resolved, so `localhost` is not enough.
    check("smtp://mail.example.com:25?tls=none", "only to a loopback IP literal");
    check("smtp://localhost:25?tls=none", "only to a loopback IP literal");
    check("smtp://10.0.0.5:25?tls=none", "only to a loopback IP literal");
}

#[test]
fn a_password_in_the_url_is_refused_without_being_repeated() {
    for url in ["smtps://u:hunter2@mail.example.com", "smtp://u:hunter2@127.0.0.1?tls=none"] {
        let e = parse_smtp_url(url).unwrap_err();
        assert!(e.contains("password_file") && !e.contains("hunter2"), "{e}");
        let e = format!("{:#}", load(&table(url, "")).unwrap_err());
        assert!(e.contains("email.smtp_url") && !e.contains("hunter2"), "{e}");
    }
    // A misspelt key whose line may hold the password is not quoted either.
    let e = format!(
        "{:#}",
        load(&table("smtps://mail.example.com", "passwrd = \"hunter2\"\n")).unwrap_err()
    );
    assert!(e.contains("not shown") && !e.contains("hunter2"), "{e}");
}

#[test]
fn a_full_section_resolves_and_defaults_apply() {
    let c = email(&table(
        "smtps://noreply%40example.com@mail.example.com",
        "password_file = \"/etc/auth/smtp.secret\"\nca_file = \"/etc/auth/ca.pem\"\ntimeout_secs = 7\n",
    ));
    assert_eq!(c.smtp.to_string(), "smtps://mail.example.com:465");
    assert_eq!(c.password_file.as_deref(), Some(Path::new("/etc/auth/smtp.secret")));
    assert_eq!(c.ca_file.as_deref(), Some(Path::new("/etc/auth/ca.pem")));
    assert_eq!(c.from.to_string(), "Portal <noreply@example.com>");
    assert_eq!(c.public_url, "https://portal.example.com");
    assert_eq!(c.timeout, std::time::Duration::from_secs(7));
    assert_eq!(c.reset_link("a+b/c="), "https://portal.example.com/login/reset?key=a%2Bb%2Fc%3D");
    // The user is not shown with the server, in errors or `Debug`.
    assert!(!format!("{:?}", c.smtp).contains("noreply"));

    let c = email(&table("smtp://mail.example.com", ""));
    assert_eq!(c.timeout, std::time::Duration::from_secs(DEFAULT_TIMEOUT_SECS));
    assert_eq!((c.smtp.security, c.password_file, c.ca_file), (Security::StartTls, None, None));
    assert!(load("").unwrap().email.is_none());
}

#[test]
fn each_inconsistent_section_names_its_key() {
    let check = |toml: &str, want: &str| {
        let e = format!("{:#}", load(toml).unwrap_err());
        assert!(e.contains(want), "{toml}\n→ {e}");
    };
    check("[email]\nfrom = \"a@example.com\"\n", "email.from: set, but email.smtp_url is not");
    check(
        "[email]\npassword_file = \"/x\"\npublic_url = \"https://p.example\"\n",
        "email.password_file, email.public_url: set, but",
    );
    check(&table("smtps://u@mail.example.com", ""), "email.password_file: required");
    check(&table("smtps://mail.example.com", "password_file = \"/x\"\n"), "names no user");
    check(
        &table("smtp://127.0.0.1:25?tls=none", "ca_file = \"/ca.pem\"\n"),
        "email.ca_file: set, but",
    );
    check(
        "[email]\nsmtp_url = \"smtps://mail.example.com\"\npublic_url = \"https://p.example\"\n",
        "email.from: required",
    );
    check(
        &table("smtps://mail.example.com", "").replace("Portal <noreply@example.com>", "Portal"),
        "email.from",
    );
    check(
        "[email]\nsmtp_url = \"smtps://mail.example.com\"\nfrom = \"a@example.com\"\n",
        "email.public_url: required",
    );
    for (url, want) in [
        ("portal.example.com", "must start with https://"),
        ("https://", "not a URL"),
        ("/login", "must start with https://"),
        ("ftp://portal.example.com", "must start with https://"),
        ("https://u@portal.example.com", "must not hold a user"),
        ("https://portal.example.com/?next=1", "must not hold a query"),
        ("https://portal.example.com/#top", "must not hold a query"),
    ] {
        check(
            &table("smtps://mail.example.com", "").replace("https://portal.example.com/", url),
            want,
        );
    }
    check(&table("smtps://mail.example.com", "timeout_secs = 0\n"), "not between 1 and 30");
    check(&table("smtps://mail.example.com", "timeout_secs = 31\n"), "not between 1 and 30");
    check(&table("smtps://mail.example.com", "sender = \"x\"\n"), "unknown field");
}

#[test]
fn the_environment_sets_every_key() {
    let env = [
        ("AUTH_EMAIL__SMTP_URL", "smtp://relay%40example.com@127.0.0.1:2525?tls=none"),
        ("AUTH_EMAIL__PASSWORD_FILE", "/run/secrets/smtp"),
        ("AUTH_EMAIL__FROM", "noreply@example.com"),
        ("AUTH_EMAIL__PUBLIC_URL", "http://127.0.0.1:8080"),
        ("AUTH_EMAIL__TIMEOUT_SECS", "3"),
    ];
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    let c = Config::load(None, env, &Overrides::default()).unwrap().email.unwrap();
    assert_eq!(c.smtp.to_string(), "smtp://127.0.0.1:2525?tls=none");
    assert_eq!(c.smtp.user.as_deref(), Some("relay@example.com"));
    assert_eq!(c.public_url, "http://127.0.0.1:8080");
    let e = Config::load(
        None,
        [("AUTH_EMAIL__PASWORD_FILE".to_owned(), "/x".to_owned())],
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown environment variable AUTH_EMAIL__PASWORD_FILE"), "{e}");
}

// ----- the message --------------------------------------------------------------------------------

fn sample(id: i64) -> MailMessage {
    MailMessage {
        id,
        to: "ivan@example.org".to_owned(),
        subject: "Восстановление пароля".to_owned(),
        text: SecretString::from("Ссылка: https://portal.example.com/login/reset?key=SECRETKEY"),
        html: SecretString::from(
            "<p>Ссылка: <a href=\"https://portal.example.com/login/reset?key=SECRETKEY\">сбросить</a></p>",
        ),
    }
}

#[test]
fn the_message_id_is_stable_per_outbox_message_and_sender() {
    let from: Mailbox = "Portal <noreply@Example.com>".parse().unwrap();
    let other: Mailbox = "noreply@other.example".parse().unwrap();
    let id = message_id(&from, 42);
    assert_eq!(id, message_id(&from, 42), "the same on every attempt");
    assert!(id.starts_with("<outbox-42.") && id.ends_with("@Example.com>"), "{id}");
    assert_eq!(id.len(), "<outbox-42.".len() + 16 + "@Example.com>".len(), "{id}");
    assert_ne!(id, message_id(&from, 43));
    assert_ne!(id.split('@').next(), message_id(&other, 42).split('@').next());
    assert!(message_id(&from, -7).starts_with("<test-7."), "test messages are told apart");
}

#[test]
fn the_message_is_multipart_alternative_text_then_html_with_the_headers() {
    let from: Mailbox = "Portal <noreply@example.com>".parse().unwrap();
    let message = message::build(&from, &sample(42)).unwrap();
    let raw = String::from_utf8(message.formatted()).unwrap();
    let head = raw.split("\r\n\r\n").next().unwrap();
    for want in [
        "From: Portal <noreply@example.com>",
        "To: ivan@example.org",
        &format!("Message-ID: {}", message_id(&from, 42)),
        "Auto-Submitted: auto-generated",
        "Content-Type: multipart/alternative",
        "Date: ",
        // The Cyrillic subject is encoded (RFC 2047), never sent as raw 8-bit.
        "Subject: =?utf-8?",
    ] {
        assert!(head.contains(want), "missing {want:?} in\n{head}");
    }
    let plain = raw.find("Content-Type: text/plain; charset=utf-8").expect("a text part");
    let html = raw.find("Content-Type: text/html; charset=utf-8").expect("an HTML part");
    assert!(plain < html, "the text part comes first, so the HTML part is preferred");
    assert!(raw.is_ascii(), "every part is encoded for 7-bit transport");
    assert_eq!(message.envelope().to().len(), 1);
    assert_eq!(
        message.envelope().from().map(ToString::to_string).as_deref(),
        Some("noreply@example.com")
    );
}

#[test]
fn a_recipient_that_is_no_address_is_rejected_for_good() {
    let from: Mailbox = "noreply@example.com".parse().unwrap();
    let mut mail = sample(1);
    mail.to = "not an address".to_owned();
    match message::build(&from, &mail) {
        Err(MailError::Rejected(e)) => assert!(!e.contains("SECRETKEY"), "{e}"),
        other => panic!("{other:?}"),
    }
}

// ----- against a real SMTP server ------------------------------------------------------------------

/// The mailer for `url` (with the server's password file when the URL names a user), trusting the
/// server's CA when `trust` is set; `None` when it cannot be built because this machine has no
/// system roots at all (then an untrusted server cannot be tried either).
fn try_mailer(server: &SmtpServer, url: &str, trust: bool) -> Option<SmtpMailer> {
    let mut extra = "timeout_secs = 10\n".to_owned();
    if url.contains('@') {
        extra.push_str(&format!("password_file = \"{}\"\n", server.password_file().display()));
    }
    if trust && !url.contains(PLAINTEXT_QUERY) {
        extra.push_str(&format!("ca_file = \"{}\"\n", server.ca_file().display()));
    }
    match SmtpMailer::from_config(&email(&table(url, &extra)), &crate::outbound::Outbound::new(4)) {
        Ok(m) => Some(m),
        Err(EmailSetupError::Roots(crate::outbound::SetupError::NoRoots)) if !trust => None,
        Err(e) => panic!("{url}: {e}"),
    }
}

fn mailer(server: &SmtpServer, url: &str) -> SmtpMailer {
    try_mailer(server, url, true).unwrap()
}

/// Asserts that an error holds neither the password nor the body's key.
#[track_caller]
fn no_secret(e: &MailError) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(PASSWORD) && !text.contains("SECRETKEY"), "{text}");
}

#[tokio::test]
async fn starttls_and_auth_deliver_the_message() {
    let Some(server) = SmtpServer::start() else { return };
    let m = mailer(&server, &server.starttls_url());
    m.deliver(&sample(42)).await.unwrap();
    let got = server.wait_for_messages(1);
    let d = &got[0];
    assert!(d.tls, "delivered over TLS");
    assert_eq!(d.auth_login.as_deref(), Some(USER));
    assert_eq!(d.rcpt_to, ["ivan@example.org"]);
    assert_eq!(d.subject().as_deref(), Some("Восстановление пароля"));
    assert!(d.text().unwrap().contains("key=SECRETKEY"));
}

#[tokio::test]
async fn each_failure_is_classed_and_names_no_secret() {
    let Some(mut server) = SmtpServer::start() else { return };
    let cases = [
        // (what, mailer, recipient, rejected for good)
        (
            "refused recipient",
            mailer(&server, &server.starttls_url()),
            "nobody@refused.invalid",
            true,
        ),
        (
            "temporary failure",
            mailer(&server, &server.smtps_url()),
            "later@tempfail.invalid",
            false,
        ),
    ];
    for (what, m, to, rejected) in &cases {
        let mut mail = sample(7);
        mail.to = (*to).to_owned();
        let e = m.deliver(&mail).await.expect_err(what);
        assert_eq!(matches!(e, MailError::Rejected(_)), *rejected, "{what}: {e}");
        no_secret(&e);
    }
    // A sender refused for the session (here: mail before STARTTLS, 530) is the same for every
    // message, so it waits for the operator instead of being discarded.
    let plain_to_submission = format!("smtp://127.0.0.1:{}?tls=none", server.submission_port());
    let e = mailer(&server, &plain_to_submission).deliver(&sample(7)).await.unwrap_err();
    assert!(matches!(&e, MailError::Unavailable(t) if t.contains("refused the sender")), "{e}");
    // A certificate from a CA nobody trusts: the handshake fails, and the message waits.
    if let Some(m) = try_mailer(&server, &server.starttls_url(), false) {
        let e = m.deliver(&sample(7)).await.unwrap_err();
        assert!(matches!(&e, MailError::Unavailable(t) if t.contains("STARTTLS")), "{e}");
        no_secret(&e);
    }

    // A wrong password is the account's problem, not the message's: retried, never discarded.
    let wrong = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(wrong.path(), "not-the-password\n").unwrap();
    let mut config = email(&table(
        &server.starttls_url(),
        &format!(
            "password_file = \"{}\"\nca_file = \"{}\"\n",
            wrong.path().display(),
            server.ca_file().display()
        ),
    ));
    let m = SmtpMailer::from_config(&config, &crate::outbound::Outbound::new(4)).unwrap();
    let e = m.deliver(&sample(8)).await.unwrap_err();
    assert!(matches!(&e, MailError::Unavailable(t) if t.contains("refused the login")), "{e}");
    assert!(!e.to_string().contains("not-the-password"), "{e}");

    // A server that is gone is unavailable; the same mailer delivers once it is back.
    let m = mailer(&server, &server.starttls_url());
    server.stop();
    let e = m.deliver(&sample(9)).await.unwrap_err();
    assert!(matches!(e, MailError::Unavailable(_)), "{e}");
    no_secret(&e);
    server.restart();
    m.deliver(&sample(9)).await.unwrap();
    assert_eq!(server.wait_for_messages(1).len(), 1, "nothing but the one delivery arrived");

    // A CA file that is not PEM stops the set-up.
    config.ca_file = Some(wrong.path().to_owned());
    let e = SmtpMailer::from_config(&config, &crate::outbound::Outbound::new(4)).unwrap_err();
    assert!(e.to_string().contains("CA file"), "{e}");
}
