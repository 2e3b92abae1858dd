//! The second security round (issue 12) over real HTTP against the real binary: findings a review made
//! as an attacker, each pinned by a test that failed on the code as it landed.
//!
//! The test process plays the trusted proxy where a finding needs one: the server trusts 127.0.0.1 as
//! a proxy, so the test chooses the client addresses it forwards.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use auth_tests::{DataDir, Request, Response, ServerOptions, TestServer};
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
fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let local: SocketAddr = format!("{from}:0").parse().map_err(std::io::Error::other)?;
    socket.bind(&local.into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

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
