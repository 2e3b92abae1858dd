//! A small HTTPS server on loopback for the black-box tests of outbound calls (the SMS providers and
//! the webhook): a CA made by the test, one thread per connection, and a handler closure that sees each
//! request whole and answers it.
//!
//! [`HttpsServer::start`] makes a CA and a certificate for `127.0.0.1` (rcgen, as the OpenID provider
//! harness does), writes the CA to [`HttpsServer::ca_file`] for the server under test to trust, and
//! serves until dropped. Every answer closes its connection, so each call is one request on one
//! connection and nothing depends on keep-alive. A handler may ask for a delay before its answer, which
//! is how a test plays a provider that is slow or never answers in time.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tempfile::TempDir;

/// One request as the server read it.
#[derive(Clone, Debug)]
pub struct Received {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string ("" when none).
    pub query: String,
    /// Headers in order, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The query's parameters, decoded (`+` and `%XX`), in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes()).into_owned().collect()
    }

    /// The form body's fields, decoded, in order.
    pub fn form_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

/// An answer.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
    /// Waited before answering.
    pub delay: Option<Duration>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json; charset=utf-8".to_owned(),
            body: body.to_string().into_bytes(),
            delay: None,
        }
    }

    /// A text answer.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8".to_owned(),
            body: body.as_bytes().to_vec(),
            delay: None,
        }
    }

    /// The same answer after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

type Handler = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

/// A running server, stopped when dropped.
pub struct HttpsServer {
    addr: SocketAddr,
    ca_file: PathBuf,
    stop: Arc<AtomicBool>,
    _dir: TempDir,
}

impl std::fmt::Debug for HttpsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl HttpsServer {
    /// Starts a server on a free port of 127.0.0.1 answering with `handler`.
    pub fn start(handler: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Self {
        let dir = tempfile::Builder::new().prefix("auth-https-").tempdir().expect("tempdir");
        let (ca_pem, cert_pem, key_pem) = crate::oidc::certificates();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca_pem).expect("writing the CA file");
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server certificate");
        let config = Arc::new(config);

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let halt = Arc::clone(&stop);
        let handler: Handler = Arc::new(handler);
        std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let config = Arc::clone(&config);
                        let handler = Arc::clone(&handler);
                        std::thread::spawn(move || serve_one(stream, config, &handler));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { addr, ca_file, stop, _dir: dir }
    }

    /// `https://127.0.0.1:PORT` (no trailing `/`).
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA certificate (PEM) the server under test must trust.
    pub fn ca_file(&self) -> PathBuf {
        self.ca_file.clone()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_one(stream: TcpStream, config: Arc<rustls::ServerConfig>, handler: &Handler) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let Some(request) = read_request(&mut tls) else { return };
    let reply = handler(&request);
    if let Some(delay) = reply.delay {
        std::thread::sleep(delay);
    }
    let reason = match reply.status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        _ => "Answer",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.content_type,
        reply.body.len()
    );
    // The client may have given up already (a timeout test): a failed write is expected then.
    let _ = tls.write_all(head.as_bytes());
    let _ = tls.write_all(&reply.body);
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// Reads one request: the head up to the blank line, then `Content-Length` bytes of body.
fn read_request(tls: &mut impl std::io::Read) -> Option<Received> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = tls.read(&mut buf).ok()?;
        if n == 0 || raw.len() > 1 << 20 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let method = start.next()?.to_owned();
    let target = start.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = raw[head_end + 4..].to_vec();
    while body.len() < length {
        let n = tls.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&buf[..n]);
    }
    body.truncate(length);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target, String::new()),
    };
    Some(Received { method, path, query, headers, body })
}
