//! Single use and limits under concurrency, over real HTTP: 50 concurrent step-2 requests with one SMS
//! code, one TOTP code or one backup code win exactly once; and two `serve` processes on one data
//! directory (one SQLite file) enforce the login throttle and the SMS limits in total, not per process.

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::thread;

use auth_tests::{DataDir, Request, Response, ServerOptions, TestServer};
use serde_json::Value;

const FORM: &str = "application/x-www-form-urlencoded";
const PASSWORD: &str = "race-password-1";
const RACERS: usize = 50;

/// The login throttle takes its slot before the password is checked (so concurrent attempts cannot
/// exceed it) and gives it back on success; fifty simultaneous requests with the right password would
/// otherwise find the five slots held and get 429 `login_throttled`. The race is about the code, so the
/// portal's login limits (per address, and per account since issue 12) are raised; the code limits
/// (global, per phone and per user) stay as they are.
const RELAXED: &[&str] = &["login_limit=1000", "account_limit=1000"];

fn creds(email: &str) -> String {
    format!("userName={}&password={PASSWORD}", email.replace('@', "%40"))
}

/// A data directory whose default portal has `tfa` and `settings`, with these users.
fn prepared(tfa: &str, settings: &[&str], users: &[&str]) -> DataDir {
    let data = DataDir::new();
    let mut args = vec!["portal", "set", "--tfa", tfa];
    for s in settings {
        args.extend(["--set", s]);
    }
    data.run_cli(&args).ok();
    for user in users {
        data.run_cli(&["user", "add", "--email", user, "--password", PASSWORD]).ok();
    }
    data
}

fn ok_response(r: &Response) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["response"].clone()
}

fn error_code(r: &Response) -> String {
    r.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// Sends every request at once (released together by a barrier, one connection each) and returns the
/// responses in order.
fn all_at_once(requests: Vec<(SocketAddr, Request)>) -> Vec<Response> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let handles: Vec<_> = requests
        .into_iter()
        .map(|(addr, req)| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                req.send(addr)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("racer")).collect()
}

/// Exactly one 200; every loser a 401 or 429 error envelope (a used code is a wrong code, and wrong
/// codes run into the per-phone / per-user limits); never a 5xx. Returns the winner's token.
#[track_caller]
fn exactly_one_winner(what: &str, responses: &[Response]) -> String {
    let mut winners = Vec::new();
    for r in responses {
        match r.status {
            200 => winners.push(ok_response(r)["token"].as_str().expect("token").to_owned()),
            401 => assert_eq!(error_code(r), "invalid_credentials", "{what}: {}", r.text()),
            429 => {
                let code = error_code(r);
                assert!(
                    code == "code_attempts_exceeded" || code == "second_factor_locked",
                    "{what}: {}",
                    r.text()
                );
                assert!(r.header("retry-after").is_some(), "{what}: 429 without Retry-After");
            }
            other => panic!("{what}: status {other}: {}", r.text()),
        }
    }
    assert_eq!(winners.len(), 1, "{what}: {} winners of {}", winners.len(), responses.len());
    winners.pop().expect("one winner")
}

fn token_is_valid(s: &TestServer, token: &str) -> bool {
    let r = s.send(Request::get("/api/2.0/authentication").header("Authorization", token));
    r.text() == r#"{"count":1,"status":0,"statusCode":200,"response":true}"#
}

fn audit_count(s: &TestServer, action: &str) -> usize {
    let v = s.run_cli(&["audit", "--json", "--action", action, "--last", "1000"]).json();
    v.as_array().map_or(0, Vec::len)
}

fn race_code(s: &TestServer, email: &str, code: &str) -> Vec<Response> {
    let path = format!("/api/2.0/authentication/{code}");
    all_at_once(
        (0..RACERS).map(|_| (s.addr(), Request::post(&path).body(FORM, creds(email)))).collect(),
    )
}

#[test]
fn fifty_racers_with_one_sms_code_win_once() {
    let email = "sms-racer@example.com";
    let s = TestServer::start_in(prepared("sms", RELAXED, &[email]), ServerOptions::new());
    let set = s.post_form(
        "/api/2.0/authentication/setphone",
        &format!("{}&mobilePhone=%2B7+912+345-67-89", creds(email)),
    );
    ok_response(&set);
    let code = s.wait_for_sms(1)[0].code();

    let token = exactly_one_winner("SMS code", &race_code(&s, email, &code));
    assert!(token_is_valid(&s, &token));
    // One success, one session: the audit trail has exactly one SMS login.
    assert_eq!(audit_count(&s, "LoginSuccessViaApiSms"), 1);
    // The code is burnt for good.
    let again = s.post_form(&format!("/api/2.0/authentication/{code}"), &creds(email));
    assert!(matches!(again.status, 401 | 429), "{}", again.text());
}

fn totp_code(secret_b32: &str, offset_steps: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD.decode(secret_b32.as_bytes()).expect("base32 tfaKey");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let step = (now / 30) as i64 + offset_steps;
    auth_core::totp::code_at_step(&secret, step as u64)
}

/// Enrols the TOTP app for `email` (step 1 shows the key, the current step's code activates it) and
/// returns the key and the session token.
fn enrol_totp(s: &TestServer, email: &str) -> (String, String) {
    let first = ok_response(&s.post_form("/api/2.0/authentication", &creds(email)));
    let key = first["tfaKey"].as_str().expect("tfaKey").to_owned();
    let code = totp_code(&key, 0);
    let done = ok_response(&s.post_form(&format!("/api/2.0/authentication/{code}"), &creds(email)));
    (key, done["token"].as_str().expect("token").to_owned())
}

#[test]
fn fifty_racers_with_one_totp_code_and_one_backup_code_win_once() {
    // Two users: the losers of a race count as wrong codes, and TOTP and backup codes share the
    // per-user limit of 5 a minute, so one user's TOTP race would leave its backup race no attempts.
    let (totp_user, backup_user) = ("totp-racer@example.com", "backup-racer@example.com");
    let s = TestServer::start_in(
        prepared("app", RELAXED, &[totp_user, backup_user]),
        ServerOptions::new(),
    );

    // TOTP: the activation used the current step; the next step (inside the ±1 window) is unused.
    let (key, _) = enrol_totp(&s, totp_user);
    let code = totp_code(&key, 1);
    let token = exactly_one_winner("TOTP code", &race_code(&s, totp_user, &code));
    assert!(token_is_valid(&s, &token));

    // Backup code: shown once after activation; one code, fifty racers.
    let (_, session) = enrol_totp(&s, backup_user);
    let codes =
        s.send(Request::get("/api/2.0/settings/tfaappcodes").header("Authorization", &session));
    let list = ok_response(&codes);
    let backup = list[0]["code"].as_str().expect("plaintext code").to_owned();
    assert_ne!(backup, "********");
    let token = exactly_one_winner("backup code", &race_code(&s, backup_user, &backup));
    assert!(token_is_valid(&s, &token));
    let listed =
        s.send(Request::get("/api/2.0/settings/tfaappcodes").header("Authorization", &token));
    let used: Vec<bool> = ok_response(&listed)
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c["isUsed"].as_bool().expect("isUsed"))
        .collect();
    assert_eq!(used.iter().filter(|u| **u).count(), 1, "exactly one code used: {used:?}");
    // Two activations and two race winners: four TOTP-app logins in the audit trail, not more.
    assert_eq!(audit_count(&s, "LoginSuccessViaApiTfa"), 4);
}

#[test]
fn two_processes_share_the_login_throttle() {
    let email = "throttled@example.com";
    let data = prepared("none", &[], &[email]);
    let a = TestServer::start_in(data.share(), ServerOptions::new());
    let b = TestServer::start_in(data, ServerOptions::new());
    let wrong = format!("userName={}&password=wrong", email.replace('@', "%40"));

    // Twenty wrong passwords at once, ten to each process: the limit of 5 holds in total.
    let responses = all_at_once(
        (0..20)
            .map(|i| {
                let addr = if i % 2 == 0 { a.addr() } else { b.addr() };
                (addr, Request::post("/api/2.0/authentication").body(FORM, wrong.clone()))
            })
            .collect(),
    );
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 15, "{statuses:?}");
    // The block holds on both processes, even with the right password.
    for s in [&a, &b] {
        let r = s.post_form("/api/2.0/authentication", &creds(email));
        assert_eq!((r.status, error_code(&r)), (429, "login_throttled".to_owned()), "{}", r.text());
    }
}

#[test]
fn two_processes_share_the_sms_limits() {
    // Nine users, one portal allowing 4 SMS per client IP per hour (all tests come from 127.0.0.1).
    let users: Vec<String> = (0..9).map(|i| format!("sms{i}@example.com")).collect();
    let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let data = prepared("sms", &["sms_per_ip_hourly=4"], &user_refs);
    let a = TestServer::start_in(data.share(), ServerOptions::new());
    let b = TestServer::start_in(data, ServerOptions::new());

    // The 30 s resend cool-down: a code sent through A blocks a resend through B.
    let setphone = |s: &TestServer, email: &str, phone: &str| {
        s.post_form(
            "/api/2.0/authentication/setphone",
            &format!("{}&mobilePhone={phone}", creds(email)),
        )
    };
    ok_response(&setphone(&a, &users[0], "79000000000"));
    let resend = b.post_form("/api/2.0/authentication/sendsms", &creds(&users[0]));
    assert_eq!((resend.status, error_code(&resend)), (429, "sms_send_limited".to_owned()));
    let retry: u64 = resend.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=30).contains(&retry), "{retry}");

    // The per-IP budget: 8 more users ask at once, half through each process; 3 sends are left.
    let responses = all_at_once(
        users[1..]
            .iter()
            .enumerate()
            .map(|(i, email)| {
                let addr = if i % 2 == 0 { a.addr() } else { b.addr() };
                let body = format!("{}&mobilePhone=7901000000{i}", creds(email));
                (addr, Request::post("/api/2.0/authentication/setphone").body(FORM, body))
            })
            .collect(),
    );
    let sent = responses.iter().filter(|r| r.status == 200).count();
    for r in responses.iter().filter(|r| r.status != 200) {
        assert_eq!((r.status, error_code(r)), (429, "sms_send_limited".to_owned()), "{}", r.text());
    }
    assert_eq!(sent, 3, "{:?}", responses.iter().map(|r| r.status).collect::<Vec<_>>());
    // Both processes' outbox workers deliver from the one store: four messages, each exactly once.
    let messages = a.wait_for_sms(4);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let messages_later = a.sms_messages();
    assert_eq!(messages_later.len(), 4, "{messages_later:?}");
    let mut to: Vec<&str> = messages.iter().map(|m| m.to.as_str()).collect();
    to.sort_unstable();
    to.dedup();
    assert_eq!(to.len(), 4, "one message per phone: {messages:?}");
}
