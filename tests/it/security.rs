//! The second security round (issue 12) over real HTTP against the real binary: findings a review made
//! as an attacker, each pinned by a test that failed on the code as it landed.
//!
//! The test process plays the trusted proxy where a finding needs one: the server trusts 127.0.0.1 as
//! a proxy, so the test chooses the client addresses it forwards.

use std::io::Write as _;
use std::time::{Duration, Instant};

use auth_tests::{DataDir, Request, Response, ServerOptions, TestServer, connect_from};
use serde_json::Value;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";
const FORM: &str = "application/x-www-form-urlencoded";

/// A server whose default portal has this second factor and settings, one user, and 127.0.0.1 as a
/// trusted proxy.
fn server_with(tfa: &str, settings: &[&str], options: ServerOptions) -> TestServer {
    let data = DataDir::new();
    let mut args = vec!["portal", "set", "--tfa", tfa];
    for s in settings {
        args.extend(["--set", s]);
    }
    data.run_cli(&args).ok();
    data.run_cli(&["user", "add", "--email", EMAIL, "--password", PASSWORD]).ok();
    TestServer::start_in(data, options.env("AUTH_HTTP__TRUSTED_PROXIES", "127.0.0.1/32"))
}

fn creds(password: &str) -> String {
    format!("userName={EMAIL}&password={}", password.replace(' ', "+"))
}

fn login(s: &TestServer, forwarded: &[&str], password: &str) -> Response {
    let mut req = Request::post("/api/2.0/authentication");
    for line in forwarded {
        req = req.header("X-Forwarded-For", line);
    }
    s.send(req.body(FORM, creds(password)))
}

fn response(r: &Response) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["response"].clone()
}

/// Finding 1: a client that sends its own `X-Forwarded-For` line gets the proxy's appended line read
/// too, so it cannot choose a trusted IP and skip the second factor.
#[test]
fn issue_12_a_second_forwarded_for_line_cannot_pick_a_trusted_ip() {
    let s = server_with("sms", &["trusted_ips=10.0.0.0/8"], ServerOptions::new());
    // Through the proxy from a trusted address: no second factor, as configured.
    let trusted = response(&login(&s, &["10.1.2.3"], PASSWORD));
    assert!(trusted["token"].is_string(), "{trusted}");
    // The client's own line first, the proxy's line with the real address second.
    let forged = response(&login(&s, &["10.1.2.3", "198.51.100.7"], PASSWORD));
    assert_eq!(forged["token"], Value::Null, "the SMS factor applies: {forged}");
    assert_eq!(forged["sms"], true, "{forged}");
    // A garbled entry makes the client unknown: never matched against trusted_ips.
    let garbled = response(&login(&s, &["10.1.2.3, not-an-ip"], PASSWORD));
    assert_eq!(garbled["token"], Value::Null, "{garbled}");
    let garbled = response(&login(&s, &["garbage, 10.1.2.3"], PASSWORD));
    assert_eq!(garbled["token"], Value::Null, "{garbled}");
    // An IPv4-mapped IPv6 address is the IPv4 address.
    let mapped = response(&login(&s, &["::ffff:10.1.2.3"], PASSWORD));
    assert!(mapped["token"].is_string(), "{mapped}");
}

/// Finding 9: every API answer carries `Cache-Control: no-store`, successes and refusals alike.
#[test]
fn issue_12_every_answer_is_no_store() {
    let s = server_with("none", &[], ServerOptions::new());
    let ok = login(&s, &[], PASSWORD);
    let token = response(&ok)["token"].as_str().unwrap().to_owned();
    let answers = [
        ok,
        login(&s, &[], "wrong password"),
        s.send(Request::get("/api/2.0/people/@self").header("Authorization", &token)),
        s.get("/api/2.0/authentication"),
        s.get("/api/2.0/capabilities.xml"),
        s.get("/api/2.0/nowhere"),
        s.send(Request::new("PATCH", "/api/2.0/authentication")),
    ];
    for r in &answers {
        assert_eq!(r.header("cache-control"), Some("no-store"), "{} {}", r.status, r.text());
    }
}

/// A TCP connection to `to` from the loopback address `from` (Linux answers on all of 127.0.0.0/8).
/// Finding 8: a flood of slow-body connections from one address cannot take every connection of the
/// server; `/healthz` and a normal login from elsewhere are answered at once.
#[test]
fn issue_12_a_slow_body_flood_from_one_address_does_not_stop_others() {
    const FLOOD: usize = 80;
    let s = server_with(
        "none",
        &[],
        ServerOptions::new()
            .env("AUTH_HTTP__MAX_CONNECTIONS", "64")
            .env("AUTH_HTTP__MAX_CONNECTIONS_PER_IP", "16"),
    );
    let head = "POST /api/2.0/authentication HTTP/1.1\r\nHost: x\r\nContent-Type: \
                application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nuserName=";
    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        // Connections beyond the cap are accepted by the kernel and closed by the server; a write
        // to one of those may fail, which is the point.
        if let Ok(mut c) = connect_from("127.0.0.2", s.addr()) {
            let _ = c.write_all(head.as_bytes());
            flood.push(c);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let health = s.get("/healthz");
    assert_eq!(health.status, 200, "{}", health.text());
    let ok = login(&s, &[], PASSWORD);
    assert!(response(&ok)["token"].is_string());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "healthz and a login took {took:?} during the flood");
    drop(flood);
}

fn set_cookies(r: &Response) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.clone())
        .collect()
}

/// The value of the `asc_device` cookie a login set.
fn device_cookie(r: &Response) -> String {
    set_cookies(r)
        .iter()
        .find_map(|c| c.strip_prefix("asc_device=").and_then(|v| v.split(';').next()))
        .unwrap_or_else(|| panic!("no asc_device cookie: {:?}", r.headers))
        .to_owned()
}

fn error_code(r: &Response) -> String {
    r.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// Finding 2, over HTTP through a trusted proxy: guessing one account from many chosen client
/// addresses is limited in total, while the owner still gets in from a known address or with the
/// `asc_device` cookie.
#[test]
fn issue_12_the_per_account_limit_holds_across_forwarded_addresses() {
    let s = server_with("none", &[], ServerOptions::new());
    let home = login(&s, &["198.51.100.1"], PASSWORD);
    assert_eq!(home.status, 200, "{}", home.text());
    let device = device_cookie(&home);
    for i in 1..=20 {
        let r = login(&s, &[&format!("203.0.113.{i}")], "a guess");
        assert_eq!((r.status, error_code(&r)), (401, "invalid_credentials".into()), "guess {i}");
    }
    let stranger = login(&s, &["192.0.2.77"], PASSWORD);
    assert_eq!((stranger.status, error_code(&stranger)), (429, "login_throttled".into()));
    assert!(stranger.header("retry-after").is_some());
    let known = login(&s, &["198.51.100.1"], PASSWORD);
    assert_eq!(known.status, 200, "a known address: {}", known.text());
    let req = Request::post("/api/2.0/authentication")
        .header("X-Forwarded-For", "192.0.2.78")
        .header("Cookie", &format!("asc_device={device}"))
        .body(FORM, creds(PASSWORD));
    let with_cookie = s.send(req);
    assert_eq!(with_cookie.status, 200, "the device cookie: {}", with_cookie.text());
    // The e-mail in another case is the same account: its per-address counter is shared too.
    for _ in 0..5 {
        let req = Request::post("/api/2.0/authentication")
            .header("X-Forwarded-For", "192.0.2.99")
            .body(FORM, format!("userName={}&password=x", EMAIL.to_uppercase()));
        assert_eq!(s.send(req).status, 429, "the per-account limit is still engaged");
    }
}

/// Finding 3, over HTTP: once `portal set --tfa sms` returns (another process, the CLI), the
/// running server issues no password-only token, although its portal cache had "none" a moment ago.
#[test]
fn issue_12_no_password_only_token_after_the_mode_changed() {
    let s = server_with("none", &[], ServerOptions::new());
    assert!(response(&login(&s, &[], PASSWORD))["token"].is_string(), "the cache holds \"none\"");
    s.run_cli(&["portal", "set", "--tfa", "sms"]).ok();
    let r = response(&login(&s, &[], PASSWORD));
    assert_eq!(r["token"], Value::Null, "at once, not after the cache's lifetime: {r}");
    assert_eq!(r["sms"], true);
}

/// Finding 5, over HTTP: a token that is not fresh cannot mint backup codes or reset the app; a
/// fresh one can, and every other token of the user ends.
#[test]
fn issue_12_second_factor_changes_need_a_fresh_token() {
    let s =
        server_with("app", &[], ServerOptions::new().env("AUTH_SECURITY__FRESH_TOKEN_SECS", "2"));
    let key = response(&login(&s, &[], PASSWORD))["tfaKey"].as_str().unwrap().to_owned();
    let step_two = |offset: i64| {
        let secret = data_encoding::BASE32_NOPAD.decode(key.as_bytes()).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let step = (now.as_secs() / 30) as i64 + offset;
        let code = auth_core::totp::code_at_step(&secret, step as u64);
        let r = s.post_form(&format!("/api/2.0/authentication/{code}"), &creds(PASSWORD));
        (r.status == 200).then(|| response(&r)["token"].as_str().unwrap().to_owned())
    };
    let old = step_two(0).or_else(|| step_two(1)).expect("activation");
    let with = |req: Request, t: &str| s.send(req.header("Authorization", t));
    std::thread::sleep(Duration::from_millis(2500));
    let stale = with(Request::put("/api/2.0/settings/tfaappnewcodes"), &old);
    assert_eq!((stale.status, error_code(&stale)), (401, "reauthentication_required".into()));
    let stale = with(Request::put("/api/2.0/settings/tfaappnewapp"), &old);
    assert_eq!((stale.status, error_code(&stale)), (401, "reauthentication_required".into()));
    let fresh = step_two(1).expect("a second login with the next step");
    let codes = with(Request::put("/api/2.0/settings/tfaappnewcodes"), &fresh);
    assert_eq!(codes.status, 200, "{}", codes.text());
    assert_eq!(codes.json()["count"], 5);
    let check =
        |t: &str| with(Request::get("/api/2.0/authentication"), t).json()["response"].clone();
    assert_eq!(check(&old), false, "the other token ended");
    assert_eq!(check(&fresh), true, "the caller's token stays");
    let audit = s.run_cli(&["audit", "--json", "--action", "BackupCodesRegenerated"]);
    assert!(audit.ok().contains("BackupCodesRegenerated"), "{}", audit.ok());
}

/// Finding 4: a node started with another key than the database was set up with refuses to start,
/// naming the key file, and leaves no stray key behind.
#[test]
fn issue_12_a_node_with_another_key_refuses_to_start() {
    let s = server_with("none", &[], ServerOptions::new());
    let (data, _) = s.stop();
    let stray = data.path().join("mistyped.key");
    let failure = TestServer::try_start_in(
        data.share(),
        ServerOptions::new().env("AUTH_SERVER_KEY_FILE", stray.to_str().unwrap()),
    )
    .expect_err("a server with a new key must not start");
    assert!(failure.stderr.contains("mistyped.key"), "names the key file: {}", failure.stderr);
    assert!(failure.stderr.contains("not the key this database"), "{}", failure.stderr);
    assert!(!stray.exists(), "the key made for nothing is gone again");
    // The right key still starts.
    let again = TestServer::start_in(data, ServerOptions::new());
    assert_eq!(again.get("/healthz").status, 200);
}

/// Finding 9: the database files are the owner's alone, the data directory too; `auth-server audit`
/// cannot be made to drive the operator's terminal by what a client typed.
#[test]
fn issue_12_files_are_private_and_the_audit_listing_is_terminal_safe() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = server_with("none", &[], ServerOptions::new());
    // HTTP keeps control characters out of headers, but a typed login that looks like an e-mail is
    // audited as typed, and JSON can carry any character.
    let login = "evil\u{1b}[2J\u{1b}]0;pwned\u{7}@example.com";
    let body = serde_json::json!({"userName": login, "password": "wrong password"}).to_string();
    let req = Request::post("/api/2.0/authentication").body("application/json", body);
    assert_eq!(s.send(req).status, 401);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = s.data_dir();
    assert_eq!(mode(&dir), 0o700, "data directory");
    for f in ["auth.db", "auth.db-wal", "auth.db-shm", "server.key"] {
        let p = dir.join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        }
    }
    let listing = s.run_cli(&["audit", "--last", "5"]);
    let text = listing.ok();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "raw control characters: {text:?}"
    );
    assert!(text.contains("evil\\u{1b}[2j"), "shown escaped (logins are lower-cased): {text}");
}
