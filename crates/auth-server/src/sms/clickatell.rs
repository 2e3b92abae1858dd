//! The `clickatell` and `clickatell_usa` gateways: Clickatell's platform HTTP API, the call upstream
//! makes (`clickatell_usa` is a second account, which upstream uses for US numbers; route `1` to it).
//!
//! The call: `GET {base_url}/messages/http/send?apiKey=…&to=…&content=…` (default
//! `https://platform.clickatell.com`), with `from` when configured; `to` is the number's digits in
//! international format, `content` the UTF-8 text. The API key travels in the query string, as the API
//! defines; the outbound client never shows a URL's query, and nothing here logs one.
//!
//! Success is `202 Accepted` with `{"messages": [{"apiMessageId": "…", "accepted": true, "to": "…",
//! "errorCode": null, …}], "errorCode": null, …}`. A refusal carries an `errorCode` (and `error`,
//! `errorDescription`) on the whole request or on the message. The codes of Clickatell's error table,
//! and their classes here:
//!
//! | `errorCode` | Meaning | Class |
//! |---|---|---|
//! | 1, 2, 3, 7 | invalid or missing API key; account or integration not active; calling IP not approved | credentials |
//! | 20 | insufficient account balance | credentials |
//! | 38, 39, 41, 42, 44, 45, 46, 110, 111 | channel or resource not available to the integration, `from` number suspended or not the integration's, demo expired, US two-way rules | credentials |
//! | 18, 19, 43 | internal error (please retry), rate limit | temporary |
//! | 21–28, 30–33, 40, 100, 101 | malformed request, invalid or opted-out recipient, content too long or not supported | permanent |
//!
//! An unknown code counts by the HTTP status: 5xx temporary, otherwise permanent.

use async_trait::async_trait;
use auth_core::SecretString;
use auth_core::ports::SmsMessage;
use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::Value;

use super::{ClickatellConfig, GatewayName, Provider, Receipt, SendError, SmsSetupError, scrub};
use crate::outbound::{HttpsClient, Outbound};

/// The path of the send command below the API root.
pub const PATH: &str = "/messages/http/send";

/// Clickatell's HTTP send command.
pub struct Clickatell {
    name: GatewayName,
    base: String,
    api_key: SecretString,
    from: Option<String>,
    http: HttpsClient,
}

impl std::fmt::Debug for Clickatell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clickatell")
            .field("name", &self.name)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Clickatell {
    /// Builds the gateway `name` (`clickatell` or `clickatell_usa`): reads the key (file) and makes
    /// the client.
    pub fn build(
        name: GatewayName,
        config: &ClickatellConfig,
        outbound: &Outbound,
    ) -> Result<Self, SmsSetupError> {
        let section = name.as_str();
        let e = &config.endpoint;
        // Checked once here, so building the per-message URL cannot fail on the configured part.
        let base = format!("{}{PATH}", e.base_url);
        super::join(section, &base, "")?;
        Ok(Self {
            name,
            base,
            api_key: super::read_secret(section, "api_key", &config.api_key)?,
            from: config.from.clone(),
            http: super::client(outbound, section, e.ca_file.as_deref(), e.timeout)?,
        })
    }

    fn request(&self, msg: &SmsMessage) -> Result<Request<Bytes>, SendError> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("apiKey", self.api_key.expose())
            .append_pair("to", &msg.to)
            .append_pair("content", msg.text.expose());
        if let Some(from) = &self.from {
            query.append_pair("from", from);
        }
        // The URL holds the key: kept in a `SecretString` until it is handed over.
        let url = SecretString::from(format!("{}?{}", self.base, query.finish()));
        let uri: http::Uri = url
            .expose()
            .parse()
            .map_err(|_| SendError::Temporary("cannot build the request URL".to_owned()))?;
        Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .body(Bytes::new())
            .map_err(|_| SendError::Temporary("cannot build the request".to_owned()))
    }
}

fn class(code: i64, status: StatusCode, what: String) -> SendError {
    match code {
        1 | 2 | 3 | 7 | 20 | 38 | 39 | 41 | 42 | 44 | 45 | 46 | 110 | 111 => {
            SendError::Credentials(what)
        }
        18 | 19 | 43 => SendError::Temporary(what),
        21..=28 | 30..=33 | 40 | 100 | 101 => SendError::Permanent(what),
        _ if status.is_server_error() => SendError::Temporary(what),
        _ => SendError::Permanent(what),
    }
}

/// The error on `json` (the request's or a message's): its code and words, when there is one.
/// Clickatell writes `errorCode` with `error`/`errorDescription`; the One API nests
/// `error: {code, description}`.
fn error_of(json: &Value) -> Option<(Option<i64>, String)> {
    let number = |v: &Value| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
    if let Some(code) = json.get("errorCode").filter(|v| !v.is_null()) {
        let words = [text(json.get("error")), text(json.get("errorDescription"))]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(": ");
        return Some((number(code), words));
    }
    match json.get("error") {
        Some(Value::Object(e)) => {
            Some((e.get("code").and_then(number), text(e.get("description"))))
        }
        Some(Value::String(s)) => Some((None, s.clone())),
        _ => None,
    }
}

/// Reads Clickatell's answer for gateway `name`; `secrets` are blanked in anything quoted.
pub fn parse(
    name: GatewayName,
    status: StatusCode,
    body: &[u8],
    secrets: &[&str],
) -> Result<Receipt, SendError> {
    let Some(json) = serde_json::from_slice::<Value>(body).ok().filter(Value::is_object) else {
        return Err(if status.is_success() {
            SendError::Temporary(format!(
                "{name} answered HTTP {} without its JSON",
                status.as_u16()
            ))
        } else {
            super::status_error(name, status)
        });
    };
    let described = |code: Option<i64>, words: &str| {
        format!(
            "{name} answered HTTP {}, errorCode {} ({})",
            status.as_u16(),
            code.map_or_else(|| "?".to_owned(), |c| c.to_string()),
            scrub(words, secrets)
        )
    };
    if let Some((code, words)) = error_of(&json) {
        return Err(class(code.unwrap_or(0), status, described(code, &words)));
    }
    let message = json.get("messages").and_then(Value::as_array).and_then(|m| m.first());
    let Some(message) = message else {
        return Err(if status.is_success() {
            SendError::Temporary(format!("{name} answered without a message"))
        } else {
            super::status_error(name, status)
        });
    };
    if message.get("accepted").and_then(Value::as_bool) == Some(true) && status.is_success() {
        let id = message.get("apiMessageId").and_then(Value::as_str).unwrap_or("?");
        return Ok(Receipt::new(format!("apiMessageId {}", scrub(id, secrets))));
    }
    match error_of(message) {
        Some((code, words)) => Err(class(code.unwrap_or(0), status, described(code, &words))),
        None if status.is_success() => {
            Err(SendError::Temporary(format!("{name} did not accept the message and said nothing")))
        }
        None => Err(super::status_error(name, status)),
    }
}

#[async_trait]
impl Provider for Clickatell {
    async fn send(&self, msg: &SmsMessage) -> Result<Receipt, SendError> {
        let response = self.http.send(self.request(msg)?).await.map_err(super::transport_error)?;
        parse(self.name, response.status, &response.body, &[self.api_key.expose()])
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::outbound::test_server::{Reply, TestServer};
    use crate::sms::{Endpoint, Secret};

    fn check(cases: &[(u16, Value, &str)]) {
        for (status, body, want) in cases {
            let status = StatusCode::from_u16(*status).unwrap();
            let bytes = body.to_string();
            let got =
                match parse(GatewayName::Clickatell, status, bytes.as_bytes(), &["k3y-s3cret"]) {
                    Ok(r) => format!("sent: {}", r.answer),
                    Err(e) => format!("{}: {e}", e.outcome().as_str()),
                };
            assert_eq!(got, *want, "{status} {body}");
        }
    }

    fn message_error(status: u16, code: u32, error: &str) -> (u16, Value) {
        (
            status,
            json!({
                "messages": [{"apiMessageId": null, "accepted": false, "to": "79123456789",
                    "errorCode": code, "error": error, "errorDescription": null}],
                "errorCode": null, "error": null, "errorDescription": null
            }),
        )
    }

    fn request_error(status: u16, code: u32, error: &str) -> (u16, Value) {
        (
            status,
            json!({"messages": [], "errorCode": code, "error": error, "errorDescription": "x"}),
        )
    }

    #[test]
    fn answers_are_read_by_the_documented_codes() {
        let ok = json!({
            "messages": [{"apiMessageId": "a55b", "accepted": true, "to": "79123456789",
                "errorCode": null, "error": null, "errorDescription": null}],
            "errorCode": null, "error": null, "errorDescription": null
        });
        let (s1, b1) = request_error(401, 1, "Invalid or missing Integration API Key");
        let (s7, b7) =
            request_error(401, 7, "Originating IP address is not approved in your account");
        let (s20, b20) = message_error(402, 20, "Insufficient account balance");
        let (s25, b25) = message_error(400, 25, "Invalid recipient address");
        let (s26, b26) = message_error(400, 26, "Recipient opted out");
        let (s19, b19) = request_error(503, 19, "Internal error, please retry");
        let (s43, b43) = request_error(400, 43, "Rate limit");
        let (s999, b999) = message_error(400, 999, "Something new");
        check(&[
            (202, ok, "sent: apiMessageId a55b"),
            (
                s1,
                b1,
                "credentials: credentials or account refused: clickatell answered HTTP 401, errorCode 1 (Invalid or missing Integration API Key: x)",
            ),
            (
                s7,
                b7,
                "credentials: credentials or account refused: clickatell answered HTTP 401, errorCode 7 (Originating IP address is not approved in your account: x)",
            ),
            (
                s20,
                b20,
                "credentials: credentials or account refused: clickatell answered HTTP 402, errorCode 20 (Insufficient account balance)",
            ),
            (
                s25,
                b25,
                "permanent: refused for good: clickatell answered HTTP 400, errorCode 25 (Invalid recipient address)",
            ),
            (
                s26,
                b26,
                "permanent: refused for good: clickatell answered HTTP 400, errorCode 26 (Recipient opted out)",
            ),
            (
                s19,
                b19,
                "temporary: temporary failure: clickatell answered HTTP 503, errorCode 19 (Internal error, please retry: x)",
            ),
            (
                s43,
                b43,
                "temporary: temporary failure: clickatell answered HTTP 400, errorCode 43 (Rate limit: x)",
            ),
            (
                s999,
                b999,
                "permanent: refused for good: clickatell answered HTTP 400, errorCode 999 (Something new)",
            ),
            // The One API's nested error object.
            (
                400,
                json!({"messages": [], "error": {"code": 25, "description": "Invalid recipient"}}),
                "permanent: refused for good: clickatell answered HTTP 400, errorCode 25 (Invalid recipient)",
            ),
            (
                401,
                json!({"messages": [], "errorCode": 1, "error": "key k3y-s3cret unknown"}),
                "credentials: credentials or account refused: clickatell answered HTTP 401, errorCode 1 (key <redacted> unknown)",
            ),
            (
                502,
                json!("bad gateway"),
                "temporary: temporary failure: clickatell answered HTTP 502",
            ),
        ]);
    }

    #[tokio::test]
    async fn the_request_is_the_documented_get_with_the_key_in_the_query() {
        let server = TestServer::start(|_| {
            Reply::json(
                202,
                json!({"messages": [{"apiMessageId": "m1", "accepted": true, "to": "12025550123"}]}),
            )
        })
        .await;
        let config = ClickatellConfig {
            api_key: Secret::Value(SecretString::from("k3y/+=")),
            from: Some("15550001111".into()),
            endpoint: Endpoint {
                base_url: server.url(""),
                ca_file: None,
                timeout: Duration::from_secs(5),
            },
        };
        let gw = Clickatell::build(GatewayName::ClickatellUsa, &config, &Outbound::new(4)).unwrap();
        let msg =
            SmsMessage {
                id: 7, to: "12025550123".into(), text: SecretString::new("Код: 123456")
            };
        assert_eq!(gw.send(&msg).await.unwrap().answer, "apiMessageId m1");
        let r = server.last(PATH);
        assert_eq!(r.method, http::Method::GET);
        assert_eq!(r.query_param("apiKey").as_deref(), Some("k3y/+="));
        assert_eq!(r.query_param("to").as_deref(), Some("12025550123"));
        assert_eq!(r.query_param("content").as_deref(), Some("Код: 123456"));
        assert_eq!(r.query_param("from").as_deref(), Some("15550001111"));
        assert!(r.body.is_empty());
        assert!(!format!("{gw:?}").contains("k3y"));
    }
}
