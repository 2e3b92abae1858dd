//! Real SMTP delivery (issue 20, spec §14): `auth-server email test` against a real SMTP server on
//! loopback (Debian's aiosmtpd, `auth_tests::smtp`), over STARTTLS and implicit TLS with a CA the test
//! makes, with `AUTH`, reading back what the server stored.
//!
//! What arrives is checked header by header: sender and recipient, the Russian subject and both
//! parts decoded intact, `multipart/alternative` with the text part before the HTML part, a
//! `Message-ID` in the sender's domain, `Date` and `Auto-Submitted`. Each failure is checked for its
//! outcome class (an untrusted CA, a wrong password and a stopped server are `unavailable`; a refused
//! recipient is `rejected`) and for what it must not print: the password. The start-up refusals of
//! the `[email]` section are checked through the binary too. The outbox worker's retries are the core
//! side's tests.

use auth_tests::smtp::{PASSWORD, REFUSED_DOMAIN, SmtpOptions, SmtpServer, USER};
use auth_tests::{CliOutput, DataDir, ServerOptions, TestServer};

const FROM: &str = "noreply@example.com";

/// The `[email]` section as environment variables: `url`, the server's password file when the URL
/// names a user, and its CA unless `trust_ca` is false.
fn email_env(server: &SmtpServer, url: &str, trust_ca: bool) -> Vec<(String, String)> {
    let mut env = vec![
        ("AUTH_EMAIL__SMTP_URL".to_owned(), url.to_owned()),
        ("AUTH_EMAIL__FROM".to_owned(), format!("Портал <{FROM}>")),
        ("AUTH_EMAIL__PUBLIC_URL".to_owned(), "https://portal.example.com".to_owned()),
        ("AUTH_EMAIL__TIMEOUT_SECS".to_owned(), "10".to_owned()),
    ];
    if url.contains('@') {
        env.push((
            "AUTH_EMAIL__PASSWORD_FILE".to_owned(),
            server.password_file().display().to_string(),
        ));
    }
    if trust_ca && !url.contains("tls=none") {
        env.push(("AUTH_EMAIL__CA_FILE".to_owned(), server.ca_file().display().to_string()));
    }
    env
}

/// `auth-server email test --to TO` with `env`.
fn email_test(data: &DataDir, to: &str, env: &[(String, String)]) -> CliOutput {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    data.run_cli_env(&["email", "test", "--to", to, "--subject", "Проверка почты"], &env)
}

/// The `outcome:` line of `email test`.
fn outcome(out: &CliOutput) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("outcome: "))
        .unwrap_or_else(|| panic!("no outcome line:\n{}\n{}", out.stdout, out.stderr))
        .trim()
        .to_owned()
}

/// Asserts that nothing the command printed holds the password.
#[track_caller]
fn no_password(out: &CliOutput) {
    assert!(
        !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
        "the password was printed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn starttls_with_the_test_ca_and_auth_delivers_both_parts_intact() {
    let Some(server) = SmtpServer::start() else { return };
    let data = DataDir::new();
    let out =
        email_test(&data, "ivan@example.org", &email_env(&server, &server.starttls_url(), true));
    assert_eq!(outcome(&out), "sent", "{}\n{}", out.stdout, out.stderr);
    out.ok();
    no_password(&out);
    assert!(
        out.stdout.contains(&format!("server:  smtp://127.0.0.1:{}", server.submission_port()))
    );
    assert!(!out.stdout.contains(USER), "the URL's user is not shown with the server");

    let got = server.wait_for_messages(1);
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!((m.listener.as_str(), m.tls), ("submission", true), "upgraded with STARTTLS");
    assert_eq!(m.auth_login.as_deref(), Some(USER));
    assert_eq!(m.mail_from, FROM);
    assert_eq!(m.rcpt_to, ["ivan@example.org"]);
    assert_eq!(m.from_address().as_deref(), Some(FROM));
    assert!(m.header("From").unwrap().contains(FROM), "{:?}", m.header("From"));
    assert_eq!(m.header("To").as_deref(), Some("ivan@example.org"));
    assert_eq!(m.subject().as_deref(), Some("Проверка почты"));
    assert!(m.header("Date").is_some());
    assert_eq!(m.header("Auto-Submitted").as_deref(), Some("auto-generated"));
    let id = m.message_id().unwrap();
    assert!(id.starts_with("test-") && id.ends_with("@example.com"), "{id}");
    assert_eq!(m.content_type().as_deref(), Some("multipart/alternative"));
    assert_eq!(m.part_types(), ["text/plain; charset=utf-8", "text/html; charset=utf-8"]);
    let text = m.text().unwrap();
    assert!(text.contains("Это тестовое сообщение auth-server"), "{text}");
    assert!(text.contains("https://portal.example.com"), "{text}");
    let html = m.html().unwrap();
    assert!(html.contains("<p>") && html.contains("доставка почты работает"), "{html}");
    assert!(!String::from_utf8_lossy(&m.raw).contains(PASSWORD));
}

#[test]
fn implicit_tls_and_auth_login_deliver() {
    let options = SmtpOptions { mechanisms: vec!["LOGIN"] };
    let Some(server) = SmtpServer::start_with(options) else { return };
    let data = DataDir::new();
    let out = email_test(&data, "olga@example.org", &email_env(&server, &server.smtps_url(), true));
    assert_eq!(outcome(&out), "sent", "{}\n{}", out.stdout, out.stderr);
    no_password(&out);
    let m = &server.wait_for_messages(1)[0];
    assert_eq!((m.listener.as_str(), m.tls), ("smtps", true));
    assert_eq!(m.auth_login.as_deref(), Some(USER));
    assert_eq!(m.subject().as_deref(), Some("Проверка почты"));
}

#[test]
fn clear_text_to_a_loopback_relay_delivers_without_auth() {
    let Some(server) = SmtpServer::start() else { return };
    let data = DataDir::new();
    let out =
        email_test(&data, "relay@example.org", &email_env(&server, &server.plain_url(), true));
    assert_eq!(outcome(&out), "sent", "{}\n{}", out.stdout, out.stderr);
    let m = &server.wait_for_messages(1)[0];
    assert_eq!((m.listener.as_str(), m.tls, m.auth_login.as_deref()), ("plain", false, None));
}

#[test]
fn each_failure_has_its_outcome_and_prints_no_password() {
    let Some(mut server) = SmtpServer::start() else { return };
    let data = DataDir::new();
    let starttls = email_env(&server, &server.starttls_url(), true);

    // A certificate from a CA the server does not trust (no ca_file): the message waits.
    let out =
        email_test(&data, "ivan@example.org", &email_env(&server, &server.starttls_url(), false));
    assert!(out.err().contains("not sent (unavailable)"), "{}", out.stderr);
    assert_eq!(outcome(&out), "unavailable");
    assert!(out.stdout.contains("STARTTLS failed"), "{}", out.stdout);
    no_password(&out);

    // The server refuses the recipient for good.
    let out = email_test(&data, &format!("nobody@{REFUSED_DOMAIN}"), &starttls);
    assert_eq!(outcome(&out), "rejected", "{}", out.stdout);
    assert!(out.stdout.contains("550"), "{}", out.stdout);
    no_password(&out);

    // A wrong password is the account's problem: unavailable (retried), never the message's.
    let wrong = data.path().with_file_name("wrong.secret");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let mut env = starttls.clone();
    env.retain(|(k, _)| k != "AUTH_EMAIL__PASSWORD_FILE");
    env.push(("AUTH_EMAIL__PASSWORD_FILE".to_owned(), wrong.display().to_string()));
    let out = email_test(&data, "ivan@example.org", &env);
    assert_eq!(outcome(&out), "unavailable", "{}", out.stdout);
    assert!(
        out.stdout.contains("refused the login") && out.stdout.contains("535"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("not-the-password") && !out.stderr.contains("not-the-password"));

    // The server is gone: unavailable; back on the same port, the same configuration delivers.
    server.stop();
    let out = email_test(&data, "ivan@example.org", &starttls);
    assert_eq!(outcome(&out), "unavailable", "{}", out.stdout);
    assert!(out.stdout.contains("cannot connect"), "{}", out.stdout);
    no_password(&out);
    server.restart();
    let out = email_test(&data, "ivan@example.org", &starttls);
    assert_eq!(outcome(&out), "sent", "{}\n{}", out.stdout, out.stderr);
    assert_eq!(server.wait_for_messages(1).len(), 1, "only the last attempt was accepted");
}

#[test]
fn the_email_section_is_checked_at_start_up() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("AUTH_EMAIL__SMTP_URL", "smtp://mail.example.com:25?tls=none")],
            "only to a loopback IP literal",
        ),
        (&[("AUTH_EMAIL__SMTP_URL", "smtps://u:hunter2@mail.example.com")], "password_file"),
        (
            &[("AUTH_EMAIL__SMTP_URL", "smtps://u@mail.example.com")],
            "email.password_file: required",
        ),
        (&[("AUTH_EMAIL__FROM", FROM)], "email.smtp_url is not"),
        (&[("AUTH_EMAIL__SMTP_URL", "smtps://mail.example.com")], "email.from: required"),
        (
            &[
                ("AUTH_EMAIL__SMTP_URL", "smtps://mail.example.com"),
                ("AUTH_EMAIL__FROM", FROM),
                ("AUTH_EMAIL__PUBLIC_URL", "portal.example.com/login"),
            ],
            "email.public_url",
        ),
    ];
    for (env, needle) in cases {
        let options = env.iter().fold(ServerOptions::new(), |o, (k, v)| o.env(k, v));
        let failure = TestServer::try_start_in(DataDir::new(), options)
            .expect_err("the server must refuse this configuration");
        assert_eq!(failure.status.and_then(|s| s.code()), Some(1), "{env:?}: {}", failure.stderr);
        assert!(failure.stderr.contains(needle), "{env:?}: {}", failure.stderr);
        assert!(!failure.stderr.contains("hunter2"), "{}", failure.stderr);
    }

    // `email test` without the section says what to set; with an unreadable password file, which one.
    let data = DataDir::new();
    let out = data.run_cli(&["email", "test", "--to", "a@example.org"]);
    assert!(out.err().contains("e-mail is not configured"), "{}", out.stderr);
    let out = data.run_cli_env(
        &["email", "test", "--to", "a@example.org"],
        &[
            ("AUTH_EMAIL__SMTP_URL", "smtps://u@mail.example.com"),
            ("AUTH_EMAIL__PASSWORD_FILE", "/nonexistent/smtp.secret"),
            ("AUTH_EMAIL__FROM", FROM),
            ("AUTH_EMAIL__PUBLIC_URL", "https://portal.example.com"),
        ],
    );
    assert!(
        out.err().contains("cannot read password_file /nonexistent/smtp.secret"),
        "{}",
        out.stderr
    );
}
