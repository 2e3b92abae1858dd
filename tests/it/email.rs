//! Account recovery and security notices end to end (issue 20, spec §14): the real binary mailing
//! through a real SMTP server on loopback (aiosmtpd, STARTTLS with a CA the test makes, `AUTH`), each
//! delivered message read back and followed: the reset link over HTTP and in real Chromium, the old
//! password and every old token dead, the key dead after one use, an unknown address answered alike
//! and mailed nothing, the limits, a common password refused, a notice for each event with no code,
//! token or link in it, and a mail server that is down delivering once it is back.

use std::time::Duration;

use auth_tests::browser::Browser;
use auth_tests::smtp::{Delivered, SmtpServer};
use auth_tests::{DataDir, Request, Response, ServerOptions, TestServer};
use serde_json::{Value, json};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a quite new passphrase";
const PUBLIC_URL: &str = "https://portal.example.com";

/// The `[email]` section for `smtp` over STARTTLS, as environment variables.
fn email_env(smtp: &SmtpServer) -> Vec<(&'static str, String)> {
    vec![
        ("AUTH_EMAIL__SMTP_URL", smtp.starttls_url()),
        ("AUTH_EMAIL__PASSWORD_FILE", smtp.password_file().display().to_string()),
        ("AUTH_EMAIL__CA_FILE", smtp.ca_file().display().to_string()),
        ("AUTH_EMAIL__FROM", "Portal <noreply@example.com>".to_owned()),
        ("AUTH_EMAIL__PUBLIC_URL", PUBLIC_URL.to_owned()),
    ]
}

/// A server mailing through `smtp`, with Ada on the default portal (`settings` as `portal set
/// --set`).
fn server(smtp: &SmtpServer, settings: &[&str]) -> TestServer {
    let data = DataDir::new();
    data.set_portal(None, settings).ok();
    data.add_ada(EMAIL, PASSWORD).ok();
    let mut options = ServerOptions::new();
    for (k, v) in email_env(smtp) {
        options = options.env(k, &v);
    }
    TestServer::start_in(data, options)
}

fn login(s: &TestServer, password: &str) -> Response {
    s.post_json("/api/2.0/authentication", &json!({ "userName": EMAIL, "password": password }))
}

fn token(s: &TestServer, password: &str) -> String {
    let r = login(s, password);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["response"]["token"].as_str().unwrap().to_owned()
}

fn me(s: &TestServer, token: &str) -> u16 {
    s.send(Request::get("/api/2.0/people/@self").header("Authorization", token)).status
}

fn ask_reset(s: &TestServer, email: &str) -> Response {
    s.post_json("/api/2.0/people/password", &json!({ "email": email }))
}

fn reset(s: &TestServer, key: &str, password: &str) -> Response {
    let body = json!({ "key": key, "password": password }).to_string();
    s.send(Request::put("/api/2.0/people/password").body("application/json", body))
}

fn code(r: &Response) -> String {
    r.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
}

fn to_of(m: &Delivered) -> String {
    m.header("To").unwrap_or_default()
}

/// The messages whose subject contains `part`.
fn with_subject(smtp: &SmtpServer, part: &str) -> Vec<Delivered> {
    smtp.messages().into_iter().filter(|m| m.subject().unwrap_or_default().contains(part)).collect()
}

/// Waits until `count` messages have a subject containing `part`; returns them.
#[track_caller]
fn wait_subject(smtp: &SmtpServer, part: &str, count: usize) -> Vec<Delivered> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = with_subject(smtp, part);
        if found.len() >= count {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited for {count} mails about {part:?}; have {:?}",
            smtp.messages().iter().map(Delivered::subject).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The key of a reset mail's link, checked in both parts.
fn key_of(m: &Delivered) -> String {
    let text = m.text().unwrap_or_default();
    let prefix = format!("{PUBLIC_URL}/login/reset?key=");
    let at = text.find(&prefix).unwrap_or_else(|| panic!("no link in {text}")) + prefix.len();
    let key: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(key.len(), 43, "{text}");
    assert!(m.html().unwrap_or_default().contains(&key), "the HTML part has the link too");
    key
}

/// A notice carries no code, no token and no link.
#[track_caller]
fn harmless(m: &Delivered, tokens: &[&str]) {
    let (text, html) = (m.text().unwrap_or_default(), m.html().unwrap_or_default());
    for body in [&text, &html] {
        assert!(!body.contains("http"), "a link in a notice: {body}");
        assert!(!body.contains("key="), "a key in a notice: {body}");
        for t in tokens {
            assert!(!body.contains(t), "a token in a notice: {body}");
        }
    }
}

#[test]
fn a_forgotten_password_is_reset_once_through_the_mailed_link() {
    let Some(smtp) = SmtpServer::start() else { return };
    let s = server(&smtp, &[]);
    let t1 = token(&s, PASSWORD);
    let t2 = token(&s, PASSWORD);
    // The first login from this address was a new device; the second was not.
    let notices = wait_subject(&smtp, "New sign-in", 1);
    harmless(&notices[0], &[&t1, &t2]);

    let known = ask_reset(&s, "Ada@Example.com");
    let unknown = ask_reset(&s, "nobody@example.com");
    assert_eq!(known.status, 200, "{}", known.text());
    assert_eq!((unknown.status, unknown.body.clone()), (known.status, known.body.clone()));
    assert_eq!(known.json()["response"], Value::Bool(true));
    let mails = wait_subject(&smtp, "Reset your password", 1);
    assert_eq!(to_of(&mails[0]), EMAIL);
    let key = key_of(&mails[0]);

    let weak = reset(&s, &key, "password123");
    assert_eq!((weak.status, code(&weak)), (400, "weak_password".to_owned()), "{}", weak.text());
    let done = reset(&s, &key, NEW_PASSWORD);
    assert_eq!(done.status, 200, "{}", done.text());
    let again = reset(&s, &key, "yet another passphrase");
    assert_eq!((again.status, code(&again)), (400, "invalid_reset_key".to_owned()));
    assert_eq!(login(&s, PASSWORD).status, 401, "the old password fails");
    assert_eq!((me(&s, &t1), me(&s, &t2)), (401, 401), "every old token ended");
    let t3 = token(&s, NEW_PASSWORD);
    assert_eq!(me(&s, &t3), 200);

    let changed = wait_subject(&smtp, "was changed", 1);
    harmless(&changed[0], &[&t1, &t2, &t3, &key]);
    // Nobody has the unknown address: it got nothing, now or later.
    std::thread::sleep(Duration::from_millis(300));
    assert!(smtp.messages().iter().all(|m| to_of(m) != "nobody@example.com"));
}

#[test]
fn the_limits_hold_per_address_and_per_client() {
    let Some(smtp) = SmtpServer::start() else { return };
    let s = server(&smtp, &["notices="]);
    for _ in 0..5 {
        assert_eq!(ask_reset(&s, EMAIL).status, 200);
    }
    wait_subject(&smtp, "Reset your password", 3);
    for i in 0..15 {
        assert_eq!(ask_reset(&s, &format!("other{i}@example.com")).status, 200);
    }
    let refused = ask_reset(&s, "one-more@example.com");
    assert_eq!((refused.status, code(&refused)), (429, "reset_limited".to_owned()));
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(with_subject(&smtp, "Reset your password").len(), 3, "three per address per hour");
    assert_eq!(smtp.messages().len(), 3, "notices are switched off on this portal");
}

#[test]
fn each_security_event_is_mailed_without_a_code_token_or_link() {
    let Some(smtp) = SmtpServer::start() else { return };
    let s = server(&smtp, &["tfa=app"]);
    // Step 1 of an app-mode portal hands out the TOTP key; activating it signs in.
    let r = login(&s, PASSWORD);
    let key = r.json()["response"]["tfaKey"].as_str().unwrap().to_owned();
    let secret = data_encoding::BASE32_NOPAD.decode(key.as_bytes()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let totp = auth_core::totp::code_at_step(&secret, now.as_secs() / 30);
    let r = s.post_json(
        &format!("/api/2.0/authentication/{totp}"),
        &json!({ "userName": EMAIL, "password": PASSWORD }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json()["response"]["token"].as_str().unwrap().to_owned();
    wait_subject(&smtp, "New sign-in", 1);
    // New backup codes, then an app reset, then a password change: one notice each.
    let put = |path: &str, body: Value| {
        s.send(
            Request::put(path)
                .header("Authorization", &t)
                .body("application/json", body.to_string()),
        )
    };
    let codes = put("/api/2.0/settings/tfaappnewcodes", json!({}));
    assert_eq!(codes.status, 200, "{}", codes.text());
    let backup: Vec<String> = codes.json()["response"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect();
    wait_subject(&smtp, "New backup codes", 1);
    assert_eq!(put("/api/2.0/settings/tfaappnewapp", json!({})).status, 200);
    wait_subject(&smtp, "authenticator app", 1);
    let changed = put(
        "/api/2.0/people/@self/password",
        json!({ "currentPassword": PASSWORD, "password": NEW_PASSWORD }),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    wait_subject(&smtp, "was changed", 1);
    // An operator's phone reset is mailed too ("an administrator of the portal").
    let env = email_env(&smtp);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    s.data().run_cli_env(&["user", "reset-phone", "--email", EMAIL], &env).ok();
    let phone = wait_subject(&smtp, "phone number", 1);
    assert!(phone[0].text().unwrap_or_default().contains("administrator"));

    let mut secrets: Vec<&str> = backup.iter().map(String::as_str).collect();
    secrets.extend([t.as_str(), key.as_str(), totp.as_str()]);
    for m in smtp.messages() {
        harmless(&m, &secrets);
        assert_eq!(to_of(&m), EMAIL);
    }
}

#[test]
fn a_mail_server_that_is_down_gets_the_mail_once_it_is_back() {
    let Some(mut smtp) = SmtpServer::start() else { return };
    let s = server(&smtp, &["notices="]);
    smtp.stop();
    assert_eq!(ask_reset(&s, EMAIL).status, 200, "acknowledged while the mail server is down");
    // Several rounds of the worker fail meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(smtp.messages().is_empty());
    smtp.restart();
    let mails = wait_subject(&smtp, "Reset your password", 1);
    key_of(&mails[0]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(smtp.messages().len(), 1, "delivered once");
}

#[test]
fn the_reset_link_works_in_a_real_browser() {
    let Some(smtp) = SmtpServer::start() else { return };
    let Some(mut b) = Browser::start() else { return };
    let s = server(&smtp, &["notices="]);
    assert_eq!(b.goto(&format!("{}/login", s.base_url())), 200);
    b.click("#forgot");
    b.visible("#forgot-email");
    b.fill("#forgot-email", EMAIL);
    b.click("#step-forgot button[type=submit]");
    b.visible("#notice");
    assert!(b.text("#notice").contains("mail with a link"), "{}", b.text("#notice"));
    b.screenshot("10-reset-asked");
    let mails = wait_subject(&smtp, "Reset your password", 1);
    let key = key_of(&mails[0]);

    // The mail's link, on this test's address rather than the public one.
    assert_eq!(b.goto(&format!("{}/login/reset?key={key}", s.base_url())), 200);
    b.visible("#new-password");
    assert!(!b.url().contains(&key), "the key leaves the address bar: {}", b.url());
    b.fill("#new-password", NEW_PASSWORD);
    b.fill("#repeat-password", "not the same");
    b.click("#step-reset button[type=submit]");
    b.visible("#error");
    b.screenshot("11-reset-mismatch");
    b.fill("#repeat-password", NEW_PASSWORD);
    b.click("#step-reset button[type=submit]");
    b.visible("#email");
    assert!(b.text("#notice").contains("new password is set"), "{}", b.text("#notice"));
    b.screenshot("12-reset-done");
    b.fill("#email", EMAIL);
    b.fill("#password", NEW_PASSWORD);
    b.click("#step-password button[type=submit]");
    b.visible("#who");
    assert!(b.text("#who").contains(EMAIL));
    // A 4xx answer the page expects is logged by Chromium as a failed load, which is no fault; a CSP
    // refusal or a script error is.
    let errors: Vec<String> = b
        .console_errors()
        .into_iter()
        .filter(|e| !e.starts_with("Failed to load resource"))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");

    // Used once: the same link now says so.
    b.goto(&format!("{}/login/reset?key={key}", s.base_url()));
    b.visible("#new-password");
    b.fill("#new-password", "another new passphrase");
    b.fill("#repeat-password", "another new passphrase");
    b.click("#step-reset button[type=submit]");
    b.visible("#error");
    assert!(b.text("#error").contains("no longer works"), "{}", b.text("#error"));
}
