//! SMS gateways: where the outbox worker hands each message.
//!
//! Both gateways produce the same JSON object, `{"to":"<digits>","text":"Code: 123456","at":"<RFC 3339>"}`:
//! - [`FileGateway`] appends it as one line to a file (the default, for local use and tests). The line
//!   is written whole with a single `write_all` on a file opened with `O_APPEND`, then synced, so a
//!   reader never sees half a line and a message is only marked sent once it is on disk.
//! - [`WebhookGateway`] POSTs it to a URL over plain HTTP, with a timeout and an `Idempotency-Key`
//!   header carrying the outbox message's id (so a receiver can drop a repeated delivery). 2xx means
//!   delivered; 408 and 429 mean "try later" like 5xx and network failures; any other 4xx means the
//!   receiver refused this message for good. There is no TLS client yet; point it at `http://` (a
//!   relay on localhost, or a private network). The URL may carry a key, so only its scheme and
//!   authority are ever shown.
//!
//! The text holds a code, so neither gateway ever logs it; errors carry only what went wrong.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use auth_core::ports::{Clock, SmsError, SmsGateway, SmsMessage};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

/// One message as both gateways write it; the field order is the documented one.
#[derive(Serialize)]
struct Record<'a> {
    to: &'a str,
    text: &'a str,
    at: String,
}

fn record_json(msg: &SmsMessage, clock: &dyn Clock) -> Result<Vec<u8>, SmsError> {
    let record = Record { to: &msg.to, text: msg.text.expose(), at: clock.now().to_string() };
    serde_json::to_vec(&record).map_err(|e| SmsError::Unavailable(format!("cannot encode: {e}")))
}

/// Appends one JSON line per message to a file.
pub struct FileGateway {
    path: Arc<PathBuf>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for FileGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileGateway").field("path", &self.path).finish_non_exhaustive()
    }
}

impl FileGateway {
    /// A gateway writing to `path` (created with mode 0600 on the first message).
    pub fn new(path: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        Self { path: Arc::new(path.into()), clock }
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn append_line(path: &Path, line: &[u8]) -> std::io::Result<()> {
    // Opened per message so that an operator may rotate or truncate the file at any time.
    let mut file = std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(path)?;
    file.write_all(line)?;
    file.sync_data()
}

#[async_trait]
impl SmsGateway for FileGateway {
    async fn deliver(&self, msg: &SmsMessage) -> Result<(), SmsError> {
        let mut line = record_json(msg, self.clock.as_ref())?;
        line.push(b'\n');
        let path = Arc::clone(&self.path);
        tokio::task::spawn_blocking(move || append_line(&path, &line))
            .await
            .map_err(|e| SmsError::Unavailable(format!("file writer task failed: {e}")))?
            .map_err(|e| {
                SmsError::Unavailable(format!("cannot append to {}: {e}", self.path.display()))
            })
    }
}

/// POSTs each message as JSON to an `http://` URL.
pub struct WebhookGateway {
    url: http::Uri,
    timeout: Duration,
    client: Client<HttpConnector, Full<Bytes>>,
    clock: Arc<dyn Clock>,
}

/// A URL as it may be shown: scheme and authority, the rest (which may hold a key) cut.
pub fn redacted_url(url: &http::Uri) -> String {
    let scheme = url.scheme_str().unwrap_or("http");
    let authority = url.authority().map_or("", |a| a.as_str());
    // An authority may itself carry `user:password@`.
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}/…")
}

impl std::fmt::Debug for WebhookGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookGateway")
            .field("url", &redacted_url(&self.url))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookGateway {
    /// A gateway posting to `url`, giving up on one attempt after `timeout`.
    pub fn new(url: http::Uri, timeout: Duration, clock: Arc<dyn Clock>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self { url, timeout, client, clock }
    }
}

#[async_trait]
impl SmsGateway for WebhookGateway {
    async fn deliver(&self, msg: &SmsMessage) -> Result<(), SmsError> {
        let body = record_json(msg, self.clock.as_ref())?;
        let request = http::Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "auth-server sms webhook")
            .header("idempotency-key", msg.id.to_string())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SmsError::Unavailable(format!("cannot build request: {e}")))?;
        let response = match tokio::time::timeout(self.timeout, self.client.request(request)).await
        {
            Err(_) => {
                return Err(SmsError::Unavailable(format!(
                    "webhook did not answer within {} s",
                    self.timeout.as_secs_f32()
                )));
            }
            Ok(Err(e)) => return Err(SmsError::Unavailable(format!("webhook unreachable: {e}"))),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let try_later = status == http::StatusCode::REQUEST_TIMEOUT
            || status == http::StatusCode::TOO_MANY_REQUESTS;
        if status.is_success() {
            Ok(())
        } else if status.is_client_error() && !try_later {
            Err(SmsError::Rejected(format!("webhook answered {status}")))
        } else {
            Err(SmsError::Unavailable(format!("webhook answered {status}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use auth_core::Timestamp;
    use auth_core::secret::SecretString;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    struct Fixed;
    impl Clock for Fixed {
        fn now(&self) -> Timestamp {
            "2026-01-10T07:46:24.5Z".parse().unwrap()
        }
    }

    fn msg(code: &str) -> SmsMessage {
        SmsMessage {
            id: 41,
            to: "79123456789".to_owned(),
            text: SecretString::new(format!("Code: {code}")),
        }
    }

    #[tokio::test]
    async fn file_gateway_appends_one_json_line_per_message() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sms-outbox.jsonl");
        let gw = FileGateway::new(&path, Arc::new(Fixed));
        gw.deliver(&msg("123456")).await.unwrap();
        gw.deliver(&msg("654321")).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"to":"79123456789","text":"Code: 123456","at":"2026-01-10T07:46:24.5Z"}"#,
                "\n",
                r#"{"to":"79123456789","text":"Code: 654321","at":"2026-01-10T07:46:24.5Z"}"#,
                "\n"
            )
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[tokio::test]
    async fn file_gateway_failure_is_retryable() {
        let gw = FileGateway::new("/nonexistent-dir/sms.jsonl", Arc::new(Fixed));
        let e = gw.deliver(&msg("123456")).await.unwrap_err();
        assert!(matches!(&e, SmsError::Unavailable(m) if !m.contains("123456")), "{e:?}");
    }

    /// A one-shot HTTP server answering `status` (or never answering when `None`); returns the
    /// URL and a handle yielding the request it read.
    async fn one_shot(status: Option<u16>) -> (http::Uri, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sms", listener.local_addr().unwrap()).parse().unwrap();
        let handle = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read until the body (which ends with `}`) has arrived.
            while !buf.ends_with(b"}") {
                let n = sock.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            match status {
                Some(s) => {
                    let head = format!("HTTP/1.1 {s} X\r\ncontent-length: 0\r\n\r\n");
                    sock.write_all(head.as_bytes()).await.unwrap();
                }
                None => {
                    let _ = sock.read(&mut chunk).await;
                }
            }
            String::from_utf8(buf).unwrap()
        });
        (url, handle)
    }

    #[tokio::test]
    async fn webhook_posts_the_json_and_maps_statuses() {
        let cases = [
            (200, "ok"),
            (204, "ok"),
            (400, "rejected"),
            (503, "unavailable"),
            // Issue 12, finding 7: "too many requests" and "timeout" are answers to try later.
            (429, "unavailable"),
            (408, "unavailable"),
        ];
        for (status, expect) in cases {
            let (url, server) = one_shot(Some(status)).await;
            let gw = WebhookGateway::new(url, Duration::from_secs(5), Arc::new(Fixed));
            let got = match gw.deliver(&msg("123456")).await {
                Ok(()) => "ok",
                Err(SmsError::Rejected(_)) => "rejected",
                Err(SmsError::Unavailable(_)) => "unavailable",
            };
            assert_eq!(got, expect, "status {status}");
            let request = server.await.unwrap();
            assert!(request.starts_with("POST /sms HTTP/1.1\r\n"), "{request}");
            assert!(request.to_ascii_lowercase().contains("content-type: application/json"));
            assert!(request.to_ascii_lowercase().contains("idempotency-key: 41\r\n"), "{request}");
            assert!(request.ends_with(
                r#"{"to":"79123456789","text":"Code: 123456","at":"2026-01-10T07:46:24.5Z"}"#
            ));
        }
    }

    #[test]
    fn webhook_urls_are_shown_without_path_query_or_credentials() {
        let url: http::Uri =
            "http://user:secret@relay.example:8080/sms/KEY123?token=abc".parse().unwrap();
        assert_eq!(redacted_url(&url), "http://relay.example:8080/…");
        let gw = WebhookGateway::new(url, Duration::from_secs(1), Arc::new(Fixed));
        let shown = format!("{gw:?}");
        assert!(!shown.contains("KEY123") && !shown.contains("secret") && !shown.contains("abc"));
    }

    #[tokio::test]
    async fn webhook_timeout_and_refusal_are_retryable() {
        let (url, _server) = one_shot(None).await;
        let gw = WebhookGateway::new(url, Duration::from_millis(200), Arc::new(Fixed));
        let e = gw.deliver(&msg("123456")).await.unwrap_err();
        assert!(matches!(&e, SmsError::Unavailable(m) if m.contains("did not answer")), "{e:?}");

        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sms", closed.local_addr().unwrap()).parse().unwrap();
        drop(closed);
        let gw = WebhookGateway::new(url, Duration::from_secs(2), Arc::new(Fixed));
        let e = gw.deliver(&msg("123456")).await.unwrap_err();
        assert!(matches!(&e, SmsError::Unavailable(m) if !m.contains("123456")), "{e:?}");
    }
}
