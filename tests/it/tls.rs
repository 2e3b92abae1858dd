//! The TLS listener (spec §10, issue 15): HTTPS with a certificate from a test CA, h2 and HTTP/1.1 by
//! ALPN, `Secure` cookies, and a certificate swapped by SIGHUP while a kept-alive connection goes on.

use std::path::Path;
use std::time::Instant;

use auth_tests::tls::client_config_alpn;
use auth_tests::{Request, ServerOptions, TestCa, TestServer, TlsConnection, WAIT};
use serde_json::json;

/// A server on HTTPS with `cert.pem`/`key.pem` in `dir`, written from `ca` for 127.0.0.1.
fn tls_server(dir: &Path, ca: &TestCa) -> (TestServer, Vec<u8>) {
    let issued = ca.issue(&["127.0.0.1", "localhost"]);
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), &issued.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &issued.key_pem).unwrap();
    let server = TestServer::start_with(
        ServerOptions::new()
            .env("AUTH_TLS__CERT_FILE", dir.join("cert.pem").to_str().unwrap())
            .env("AUTH_TLS__KEY_FILE", dir.join("key.pem").to_str().unwrap()),
    );
    (server, issued.der)
}

fn login(admin: &auth_tests::AdminCredentials) -> Request {
    Request::post("/api/2.0/authentication").keep_alive().body(
        "application/json",
        json!({"userName": admin.email, "password": admin.password}).to_string(),
    )
}

#[test]
fn https_login_sets_a_secure_cookie_and_alpn_offers_h2() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("auth-tests TLS CA");
    let (server, _) = tls_server(dir.path(), &ca);
    assert!(server.base_url().starts_with("https://"), "{}", server.stdout());
    let admin = server.admin().unwrap();

    let http11 = client_config_alpn(&dir.path().join("ca.pem"), &[b"http/1.1"]);
    let mut conn = TlsConnection::open(&http11, server.addr()).unwrap();
    assert_eq!(conn.alpn().as_deref(), Some(&b"http/1.1"[..]));
    let r = conn.send(&login(&admin));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["response"]["token"].is_string());
    let cookie = r.header("set-cookie").unwrap();
    assert!(cookie.starts_with("asc_auth_key=") && cookie.ends_with("; Secure"), "{cookie}");

    let h2 = client_config_alpn(&dir.path().join("ca.pem"), &[b"h2", b"http/1.1"]);
    let conn = TlsConnection::open(&h2, server.addr()).unwrap();
    assert_eq!(conn.alpn().as_deref(), Some(&b"h2"[..]), "the server prefers h2");

    // A real h2 request (curl with nghttp2, which the machine image has): answered over HTTP/2.
    let curl = std::process::Command::new("curl")
        .args(["--silent", "--http2", "--cacert"])
        .arg(dir.path().join("ca.pem"))
        .args(["--output", "/dev/null", "--write-out", "%{http_version} %{http_code}"])
        .arg(format!("{}/api/2.0/capabilities", server.base_url()))
        .output();
    match curl {
        Ok(out) => assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200", "{out:?}"),
        Err(e) => auth_tests::skip(&format!("curl is not installed ({e}); no h2 request sent")),
    }

    // Plain HTTP on the TLS port is no request at all: the handshake fails and nothing is answered.
    let plain = auth_tests::exchange(
        server.addr(),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        std::time::Duration::from_secs(5),
        false,
    );
    assert!(
        !matches!(&plain, auth_tests::Exchange::Response(r) if r.status == 200),
        "plain HTTP answered on the TLS port: {plain:?}"
    );
}

#[test]
fn sighup_swaps_the_certificate_and_open_connections_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("auth-tests TLS CA");
    let (server, first) = tls_server(dir.path(), &ca);
    let admin = server.admin().unwrap();
    let config = client_config_alpn(&dir.path().join("ca.pem"), &[b"http/1.1"]);

    let mut old = TlsConnection::open(&config, server.addr()).unwrap();
    assert_eq!(old.peer_certificate(), first);
    assert_eq!(old.send(&login(&admin)).status, 200);

    // A broken file first: SIGHUP keeps the old certificate and says why.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + WAIT;
    while !server.stderr().contains("TLS certificate not reloaded") {
        assert!(Instant::now() < deadline, "no reload failure logged:\n{}", server.stderr());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(TlsConnection::open(&config, server.addr()).unwrap().peer_certificate(), first);

    let second = ca.issue(&["127.0.0.1"]);
    std::fs::write(dir.path().join("key.pem"), &second.key_pem).unwrap();
    std::fs::write(dir.path().join("cert.pem"), &second.cert_pem).unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + WAIT;
    loop {
        let fresh = TlsConnection::open(&config, server.addr()).unwrap();
        if fresh.peer_certificate() == second.der {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not load the new certificate");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The connection opened before the swap still serves requests, on the certificate it had.
    let r = old.send(&Request::get("/api/2.0/capabilities").keep_alive());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(old.peer_certificate(), first);
    assert_eq!(old.send(&login(&admin)).status, 200);
    assert!(server.stderr().contains("TLS certificate reloaded"), "{}", server.stderr());
}
