//! The `webhook` gateway: each message POSTed as JSON to a configured URL over the outbound HTTPS
//! client (spec §12).
//!
//! The body is the `file` gateway's object, `{"to":"<digits>","text":"Code: 123456","at":"<RFC 3339>"}`,
//! with `Content-Type: application/json`, `Idempotency-Key: <outbox message id>` (so a receiver can drop
//! a repeated delivery: the outbox sends at least once) and, when a secret is configured,
//! `X-Signature: sha256=<lower-case hex HMAC-SHA256 of the exact body bytes under the secret>`, so the
//! receiver can tell our messages from anyone's (`docs/sms.md` shows the check).
//!
//! 2xx means delivered; 408, 429, 5xx or no answer are temporary; 401 and 403 refuse our signature or
//! credentials (retried, logged as an error); any other 4xx refuses this message for good. The URL
//! may carry a key, so only its scheme and host are ever shown.

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::SecretString;
use auth_core::ports::{Clock, SmsMessage};
use bytes::Bytes;
use hmac::{Hmac, Mac as _};
use http::{HeaderValue, Request, StatusCode};
use sha2::Sha256;

use super::file::record_json;
use super::{Provider, Receipt, SendError, SmsSetupError, WebhookConfig};
use crate::outbound::{HttpsClient, Outbound};

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "x-signature";

/// The value of `X-Signature` for `body` under `secret`: `sha256=` and the lower-case hex HMAC.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail; an empty key still gives a value.
    let hex = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("sha256={hex}")
}

/// A URL as it may be shown: scheme and authority, the rest (which may hold a key) cut.
pub fn redacted_url(url: &http::Uri) -> String {
    let scheme = url.scheme_str().unwrap_or("http");
    let authority = url.authority().map_or("", |a| a.as_str());
    // An authority may itself carry `user:password@`.
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}/…")
}

/// POSTs each message as signed JSON.
pub struct WebhookGateway {
    url: http::Uri,
    secret: Option<SecretString>,
    http: HttpsClient,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WebhookGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookGateway")
            .field("url", &redacted_url(&self.url))
            .field("signed", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

impl WebhookGateway {
    /// Builds the gateway: reads the secret (file) and makes the client (CA file).
    pub fn build(
        config: &WebhookConfig,
        outbound: &Outbound,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SmsSetupError> {
        let secret = match &config.secret {
            Some(s) => Some(super::read_secret("webhook", "secret", s)?),
            None => {
                tracing::warn!(
                    url = %redacted_url(&config.url),
                    "the sms webhook has no secret, so its messages carry no X-Signature; set sms.webhook.secret_file"
                );
                None
            }
        };
        let http = super::client(outbound, "webhook", config.ca_file.as_deref(), config.timeout)?;
        Ok(Self { url: config.url.clone(), secret, http, clock })
    }

    fn request(&self, msg: &SmsMessage) -> Result<Request<Bytes>, SendError> {
        let body = record_json(msg, self.clock.as_ref())?;
        let mut request = Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", msg.id.to_string());
        if let Some(secret) = &self.secret {
            let mut value = HeaderValue::try_from(signature(secret.expose().as_bytes(), &body))
                .map_err(|_| SendError::Temporary("cannot build the signature header".into()))?;
            value.set_sensitive(true);
            request = request.header(SIGNATURE_HEADER, value);
        }
        request
            .body(Bytes::from(body))
            .map_err(|_| SendError::Temporary("cannot build the webhook request".to_owned()))
    }
}

/// What the receiver's status means.
pub fn classify(status: StatusCode) -> Result<Receipt, SendError> {
    if status.is_success() {
        return Ok(Receipt::new(format!("HTTP {}", status.as_u16())));
    }
    let what = format!("the webhook answered HTTP {}", status.as_u16());
    match status.as_u16() {
        408 | 429 | 500..=599 => Err(SendError::Temporary(what)),
        401 | 403 => Err(SendError::Credentials(format!(
            "{what}: it refused the signature or the credentials in the URL"
        ))),
        400..=499 => Err(SendError::Permanent(what)),
        _ => Err(SendError::Temporary(what)),
    }
}

#[async_trait]
impl Provider for WebhookGateway {
    async fn send(&self, msg: &SmsMessage) -> Result<Receipt, SendError> {
        let request = self.request(msg)?;
        let response = self.http.send(request).await.map_err(super::transport_error)?;
        classify(response.status)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use auth_core::Timestamp;

    use super::*;
    use crate::outbound::test_server::{Reply, TestServer};
    use crate::sms::Secret;

    struct Fixed;
    impl Clock for Fixed {
        fn now(&self) -> Timestamp {
            "2026-01-10T07:46:24.5Z".parse().unwrap()
        }
    }

    fn msg() -> SmsMessage {
        SmsMessage {
            id: 41, to: "79123456789".to_owned(), text: SecretString::new("Код: 123456")
        }
    }

    fn gateway(url: &str, secret: Option<&str>, timeout: Duration) -> WebhookGateway {
        let config = WebhookConfig {
            url: url.parse().unwrap(),
            secret: secret.map(|s| Secret::Value(SecretString::from(s))),
            ca_file: None,
            timeout,
        };
        WebhookGateway::build(&config, &Outbound::new(4), Arc::new(Fixed)).unwrap()
    }

    /// The signature is HMAC-SHA256 in lower-case hex (the RFC 4231 case 2 vector), so a receiver
    /// in any language can compute it.
    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[tokio::test]
    async fn posts_signed_json_with_the_idempotency_key_and_classifies_statuses() {
        let cases = [
            (200, "sent"),
            (204, "sent"),
            (400, "permanent"),
            (401, "credentials"),
            (403, "credentials"),
            (503, "temporary"),
            // Issue 12, finding 7: "too many requests" and "timeout" are answers to try later.
            (429, "temporary"),
            (408, "temporary"),
        ];
        for (status, expect) in cases {
            let server = TestServer::start(move |_| Reply::text(status, "text/plain", "")).await;
            let gw = gateway(&server.url("/sms"), Some("s3cret"), Duration::from_secs(5));
            let got = match gw.send(&msg()).await {
                Ok(_) => "sent",
                Err(e) => e.outcome().as_str(),
            };
            assert_eq!(got, expect, "status {status}");
            let request = server.last("/sms");
            let body = r#"{"to":"79123456789","text":"Код: 123456","at":"2026-01-10T07:46:24.5Z"}"#;
            assert_eq!(request.method, http::Method::POST);
            assert_eq!(std::str::from_utf8(&request.body).unwrap(), body);
            assert_eq!(request.header("content-type"), "application/json");
            assert_eq!(request.header("idempotency-key"), "41");
            assert_eq!(request.header("x-signature"), signature(b"s3cret", body.as_bytes()));
        }
    }

    #[tokio::test]
    async fn without_a_secret_there_is_no_signature() {
        let server = TestServer::start(|_| Reply::text(200, "text/plain", "")).await;
        gateway(&server.url("/sms"), None, Duration::from_secs(5)).send(&msg()).await.unwrap();
        assert!(server.last("/sms").headers.get("x-signature").is_none());
    }

    #[test]
    fn urls_are_shown_without_path_query_or_credentials() {
        let url: http::Uri =
            "https://user:secret@relay.example:8443/sms/KEY123?token=abc".parse().unwrap();
        assert_eq!(redacted_url(&url), "https://relay.example:8443/…");
        let gw = gateway(&url.to_string(), Some("hunter2"), Duration::from_secs(1));
        let shown = format!("{gw:?}");
        for secret in ["KEY123", "secret", "abc", "hunter2"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[tokio::test]
    async fn no_answer_and_no_listener_are_temporary() {
        let server =
            TestServer::start(|_| Reply::text(200, "text/plain", "").after(Duration::from_secs(5)))
                .await;
        let gw = gateway(&server.url("/sms"), None, Duration::from_millis(200));
        let e = gw.send(&msg()).await.unwrap_err();
        assert!(matches!(&e, SendError::Temporary(m) if m.contains("no answer")), "{e:?}");

        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sms", closed.local_addr().unwrap());
        drop(closed);
        let e = gateway(&url, None, Duration::from_secs(2)).send(&msg()).await.unwrap_err();
        assert!(matches!(&e, SendError::Temporary(m) if !m.contains("123456")), "{e:?}");
    }
}
