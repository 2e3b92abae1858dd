//! Tests of the outbound client: the URL rule, certificate verification against a TLS server with a
//! test CA (in `testdata/`, valid until 2126), the deadline, the body cap and the limit on calls in flight.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::test_server::{Reply, TestServer};
use super::*;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/outbound/testdata");

fn get(url: &str) -> Request<Bytes> {
    Request::get(url).body(Bytes::new()).unwrap()
}

fn options(timeout_ms: u64) -> ClientOptions {
    ClientOptions { timeout: Duration::from_millis(timeout_ms), ..ClientOptions::default() }
}

#[test]
fn only_https_or_loopback_http_is_allowed() {
    for (url, allowed) in [
        ("https://accounts.google.com/.well-known/openid-configuration", true),
        ("https://10.1.2.3/x", true),
        ("http://127.0.0.1:8080/x", true),
        ("http://127.9.9.9/x", true),
        ("http://[::1]:9/x", true),
        ("http://localhost/x", false),
        ("http://10.0.0.1/x", false),
        ("http://example.com/x", false),
        ("ftp://example.com/x", false),
        ("/relative", false),
    ] {
        let uri: Uri = url.parse().unwrap();
        assert_eq!(url_allowed(&uri), allowed, "{url}");
    }
}

#[test]
fn targets_show_no_user_info_path_or_query() {
    let uri: Uri = "https://user:pw@graph.example.com:8443/me?access_token=SECRET".parse().unwrap();
    assert_eq!(target(&uri), "https://graph.example.com:8443");
}

#[tokio::test]
async fn a_disallowed_url_is_refused_before_any_connection() {
    let client = Outbound::new(4).client(&options(500)).unwrap();
    let e = client.send(get("http://192.0.2.1/token?code=SECRET")).await.unwrap_err();
    assert!(matches!(e, OutboundError::UrlNotAllowed(_)), "{e:?}");
    assert!(!e.to_string().contains("SECRET"), "{e}");
}

#[tokio::test]
async fn plain_http_to_loopback_answers_with_any_status() {
    let server = TestServer::start(|r| {
        assert_eq!(r.header("user-agent"), USER_AGENT);
        Reply::json(418, serde_json::json!({"teapot": true}))
    })
    .await;
    let client = Outbound::new(4).client(&options(2000)).unwrap();
    let answer = client.send(get(&server.url("/x"))).await.unwrap();
    assert_eq!(answer.status.as_u16(), 418);
    assert_eq!(&answer.body[..], br#"{"teapot":true}"#);
}

#[tokio::test]
async fn the_deadline_covers_a_slow_answer() {
    let server = TestServer::start(|_| {
        Reply::json(200, serde_json::json!({})).after(Duration::from_secs(3))
    })
    .await;
    let client = Outbound::new(4).client(&options(200)).unwrap();
    let started = std::time::Instant::now();
    let e = client.send(get(&server.url("/slow"))).await.unwrap_err();
    assert!(matches!(e, OutboundError::Timeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_refused_connection_is_a_network_error() {
    // Bind and drop, so the port is (almost certainly) closed.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let client = Outbound::new(4).client(&options(2000)).unwrap();
    let e = client.send(get(&format!("http://127.0.0.1:{port}/"))).await.unwrap_err();
    assert!(matches!(e, OutboundError::Network { .. }), "{e:?}");
}

#[tokio::test]
async fn a_large_body_is_cut_off() {
    let server = TestServer::start(|_| Reply::text(200, "text/plain", "x".repeat(5000))).await;
    let client =
        Outbound::new(4).client(&ClientOptions { max_body_bytes: 1000, ..options(2000) }).unwrap();
    let e = client.send(get(&server.url("/big"))).await.unwrap_err();
    assert!(matches!(e, OutboundError::TooLarge { limit: 1000, .. }), "{e:?}");
}

#[tokio::test]
async fn beyond_the_limit_in_flight_a_call_fails_at_once() {
    let server = TestServer::start(|r| {
        if r.path == "/slow" {
            Reply::json(200, serde_json::json!({})).after(Duration::from_millis(800))
        } else {
            Reply::json(200, serde_json::json!({}))
        }
    })
    .await;
    let outbound = Outbound::new(1);
    // Two clients of one source share the limit.
    let a = outbound.client(&options(5000)).unwrap();
    let b = outbound.client(&options(5000)).unwrap();
    let slow = tokio::spawn({
        let url = server.url("/slow");
        async move { a.send(get(&url)).await }
    });
    while server.count("/slow") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(outbound.in_flight(), 1);
    let started = std::time::Instant::now();
    let e = b.send(get(&server.url("/fast"))).await.unwrap_err();
    assert!(matches!(e, OutboundError::Busy), "{e:?}");
    assert!(started.elapsed() < Duration::from_millis(300));
    assert!(slow.await.unwrap().is_ok());
    assert_eq!(outbound.in_flight(), 0);
    assert!(b.send(get(&server.url("/fast"))).await.is_ok());
}

/// A TLS server on 127.0.0.1 with the test CA's server certificate, answering `ok` to everything.
async fn tls_server() -> (String, tokio::task::JoinHandle<()>) {
    use rustls_pki_types::PrivateKeyDer;
    let certs = CertificateDer::pem_file_iter(format!("{TESTDATA}/test-server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{TESTDATA}/test-server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let service = service_fn(|_req: http::Request<hyper::body::Incoming>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                        Bytes::from_static(b"ok"),
                    )))
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
            });
        }
    });
    (url, task)
}

#[tokio::test]
async fn an_untrusted_certificate_fails_and_the_ca_file_makes_it_trusted() {
    let (url, task) = tls_server().await;
    let outbound = Outbound::new(4);

    // The test CA is not among the system's roots: the handshake must fail, never fall back.
    let plain = outbound.client(&options(3000)).unwrap();
    let e = plain.send(get(&url)).await.unwrap_err();
    match &e {
        OutboundError::Network { reason, .. } => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}")
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }

    let trusting = outbound
        .client(&ClientOptions {
            ca_file: Some(format!("{TESTDATA}/test-ca.pem").into()),
            ..options(3000)
        })
        .unwrap();
    let answer = trusting.send(get(&url)).await.unwrap();
    assert_eq!(answer.status.as_u16(), 200);
    assert_eq!(&answer.body[..], b"ok");
    task.abort();
}

#[test]
fn a_bad_ca_file_fails_at_setup() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    let outbound = Outbound::new(1);
    let e = outbound
        .client(&ClientOptions { ca_file: Some(empty), ..ClientOptions::default() })
        .unwrap_err();
    assert!(matches!(e, SetupError::CaFileInvalid { .. }), "{e:?}");
    let e = outbound
        .client(&ClientOptions {
            ca_file: Some(dir.path().join("missing.pem")),
            ..ClientOptions::default()
        })
        .unwrap_err();
    assert!(matches!(e, SetupError::CaFileUnreadable { .. }), "{e:?}");
}
