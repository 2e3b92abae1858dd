//! The `smsc` gateway: SMSC (smsc.ru), by its HTTP API's `send.php`.
//!
//! The call: `POST {base_url}/sys/send.php` (default `https://smsc.ru`), a form body (SMSC takes GET or
//! POST; POST keeps the password out of URLs) with `login`, `psw`, `phones` (the number's digits),
//! `mes` (the text), `sender` when configured, `charset=utf-8` (SMSC reads windows-1251 otherwise, and
//! the Russian text `Код: …` would arrive garbled) and `fmt=3` (answers in JSON).
//!
//! SMSC answers errors with HTTP 200 too: success is `{"id": <n>, "cnt": <parts>}`, an error is
//! `{"error": "<description>", "error_code": N}` (plus `"id"` for some). The codes of its
//! documentation, and their classes here:
//!
//! | `error_code` | Meaning | Class |
//! |---|---|---|
//! | 1 | error in the parameters | permanent |
//! | 2 | wrong login or password (or a calling IP not in the account's list) | credentials |
//! | 3 | not enough money on the account | credentials |
//! | 4 | calling IP temporarily blocked after frequent errors | temporary |
//! | 5 | wrong date format | permanent |
//! | 6 | message forbidden (by text or by sender name) | permanent |
//! | 7 | wrong phone number format | permanent |
//! | 8 | the message cannot be delivered to this number | permanent |
//! | 9 | too many identical requests, or too many at once | temporary |
//!
//! An unknown code is temporary (retried until the outbox gives the message up), because dropping a
//! code that could have gone is worse than a few retries.

use async_trait::async_trait;
use auth_core::SecretString;
use auth_core::ports::SmsMessage;
use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::Value;

use super::{FORM, GatewayName, Provider, Receipt, SendError, SmsSetupError, SmscConfig, scrub};
use crate::outbound::{HttpsClient, Outbound};

/// The path of the send method below the API root.
pub const PATH: &str = "/sys/send.php";

/// SMSC's `send.php`.
pub struct Smsc {
    url: http::Uri,
    login: String,
    password: SecretString,
    sender: Option<String>,
    http: HttpsClient,
}

impl std::fmt::Debug for Smsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smsc")
            .field("target", &crate::outbound::target(&self.url))
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

impl Smsc {
    /// Builds the gateway: reads the password (file) and makes the client.
    pub fn build(config: &SmscConfig, outbound: &Outbound) -> Result<Self, SmsSetupError> {
        let e = &config.endpoint;
        Ok(Self {
            url: super::join("smsc", &e.base_url, PATH)?,
            login: config.login.clone(),
            password: super::read_secret("smsc", "password", &config.password)?,
            sender: config.sender.clone(),
            http: super::client(outbound, "smsc", e.ca_file.as_deref(), e.timeout)?,
        })
    }

    fn request(&self, msg: &SmsMessage) -> Result<Request<Bytes>, SendError> {
        let mut pairs = vec![
            ("login", self.login.as_str()),
            ("psw", self.password.expose()),
            ("phones", msg.to.as_str()),
            ("mes", msg.text.expose()),
        ];
        if let Some(sender) = &self.sender {
            pairs.push(("sender", sender));
        }
        pairs.extend([("charset", "utf-8"), ("fmt", "3")]);
        Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, FORM)
            .header(http::header::ACCEPT, "application/json")
            .body(super::form(&pairs))
            .map_err(|_| SendError::Temporary("cannot build the request".to_owned()))
    }
}

/// The class of an SMSC `error_code`.
fn class(code: i64, what: String) -> SendError {
    match code {
        2 | 3 => SendError::Credentials(what),
        4 | 9 => SendError::Temporary(what),
        1 | 5..=8 => SendError::Permanent(what),
        _ => SendError::Temporary(what),
    }
}

/// Reads SMSC's answer; `secrets` are blanked in anything quoted from it.
pub fn parse(status: StatusCode, body: &[u8], secrets: &[&str]) -> Result<Receipt, SendError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let Some(json) = json.filter(Value::is_object) else {
        return Err(if status.is_success() {
            SendError::Temporary(format!("smsc answered HTTP {} without its JSON", status.as_u16()))
        } else {
            super::status_error(GatewayName::Smsc, status)
        });
    };
    if let Some(code) = json.get("error_code") {
        let code = code.as_i64().or_else(|| code.as_str().and_then(|s| s.parse().ok()));
        let description = json.get("error").and_then(Value::as_str).unwrap_or("");
        let what = format!(
            "smsc error_code {} ({})",
            code.map_or_else(|| "?".to_owned(), |c| c.to_string()),
            scrub(description, secrets)
        );
        return Err(class(code.unwrap_or(0), what));
    }
    if !status.is_success() {
        return Err(super::status_error(GatewayName::Smsc, status));
    }
    match json.get("id") {
        Some(id) => {
            let parts = json.get("cnt").map_or_else(|| "?".to_owned(), Value::to_string);
            Ok(Receipt::new(format!("id {id}, {parts} sms")))
        }
        None => {
            Err(SendError::Temporary("smsc answered JSON with neither id nor error_code".into()))
        }
    }
}

#[async_trait]
impl Provider for Smsc {
    async fn send(&self, msg: &SmsMessage) -> Result<Receipt, SendError> {
        let response = self.http.send(self.request(msg)?).await.map_err(super::transport_error)?;
        parse(response.status, &response.body, &[self.password.expose()])
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outbound::test_server::{Reply, TestServer};
    use crate::sms::{Endpoint, Secret};

    fn check(cases: &[(u16, &str, &str)]) {
        for (status, body, want) in cases {
            let got =
                match parse(StatusCode::from_u16(*status).unwrap(), body.as_bytes(), &["s3cr3t"]) {
                    Ok(r) => format!("sent: {}", r.answer),
                    Err(e) => format!("{}: {e}", e.outcome().as_str()),
                };
            assert_eq!(got, *want, "{status} {body}");
        }
    }

    #[test]
    fn answers_are_read_by_the_documented_codes() {
        check(&[
            (200, r#"{"id": 17, "cnt": 1}"#, "sent: id 17, 1 sms"),
            (
                200,
                r#"{"error": "parameters error", "error_code": 1}"#,
                "permanent: refused for good: smsc error_code 1 (parameters error)",
            ),
            (
                200,
                r#"{"error": "authorise error", "error_code": 2}"#,
                "credentials: credentials or account refused: smsc error_code 2 (authorise error)",
            ),
            (
                200,
                r#"{"error": "no money", "error_code": 3, "id": 5}"#,
                "credentials: credentials or account refused: smsc error_code 3 (no money)",
            ),
            (
                200,
                r#"{"error": "ip blocked", "error_code": 4}"#,
                "temporary: temporary failure: smsc error_code 4 (ip blocked)",
            ),
            (
                200,
                r#"{"error": "invalid date format", "error_code": 5}"#,
                "permanent: refused for good: smsc error_code 5 (invalid date format)",
            ),
            (
                200,
                r#"{"error": "message is denied", "error_code": 6, "id": 5}"#,
                "permanent: refused for good: smsc error_code 6 (message is denied)",
            ),
            (
                200,
                r#"{"error": "invalid phone", "error_code": 7, "id": 5}"#,
                "permanent: refused for good: smsc error_code 7 (invalid phone)",
            ),
            (
                200,
                r#"{"error": "cannot deliver", "error_code": 8, "id": 5}"#,
                "permanent: refused for good: smsc error_code 8 (cannot deliver)",
            ),
            (
                200,
                r#"{"error": "duplicate request, wait a minute", "error_code": 9}"#,
                "temporary: temporary failure: smsc error_code 9 (duplicate request, wait a minute)",
            ),
            (
                200,
                r#"{"error": "new", "error_code": 77}"#,
                "temporary: temporary failure: smsc error_code 77 (new)",
            ),
            // A provider that echoes the password does not put it in the log.
            (
                200,
                r#"{"error": "bad psw=s3cr3t", "error_code": 2}"#,
                "credentials: credentials or account refused: smsc error_code 2 (bad psw=<redacted>)",
            ),
            (
                200,
                "ERROR = 2 (authorise error)",
                "temporary: temporary failure: smsc answered HTTP 200 without its JSON",
            ),
            (
                502,
                "<html>bad gateway</html>",
                "temporary: temporary failure: smsc answered HTTP 502",
            ),
            (429, "", "temporary: temporary failure: smsc answered HTTP 429"),
            (
                404,
                "not found",
                "credentials: credentials or account refused: smsc answered HTTP 404 (is base_url the provider's API root?)",
            ),
        ]);
    }

    #[tokio::test]
    async fn the_request_is_the_documented_form() {
        let server =
            TestServer::start(|_| Reply::json(200, serde_json::json!({"id": 1, "cnt": 1}))).await;
        let config = SmscConfig {
            login: "acme".into(),
            password: Secret::Value(SecretString::from("p&ss word")),
            sender: Some("ACME".into()),
            endpoint: Endpoint {
                base_url: server.url(""),
                ca_file: None,
                timeout: Duration::from_secs(5),
            },
        };
        let smsc = Smsc::build(&config, &Outbound::new(4)).unwrap();
        let msg =
            SmsMessage {
                id: 7, to: "79123456789".into(), text: SecretString::new("Код: 123456")
            };
        assert_eq!(smsc.send(&msg).await.unwrap().answer, "id 1, 1 sms");
        let r = server.last(PATH);
        assert_eq!(r.method, http::Method::POST);
        assert_eq!(r.header("content-type"), FORM);
        let fields: Vec<(String, String)> = r.form();
        let want: Vec<(String, String)> = [
            ("login", "acme"),
            ("psw", "p&ss word"),
            ("phones", "79123456789"),
            ("mes", "Код: 123456"),
            ("sender", "ACME"),
            ("charset", "utf-8"),
            ("fmt", "3"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(fields, want);
        assert!(!format!("{smsc:?}").contains("p&ss"));
    }
}
