//! The `smsru` gateway: SMS.ru, by its `sms/send` method.
//!
//! The call: `POST {base_url}/sms/send` (default `https://sms.ru`), a form body (UTF-8, which SMS.ru
//! demands: code 212 otherwise) with `api_id`, `to` (the number's digits), `msg`, `json=1` (answers in
//! JSON), and `from` when configured. SMS.ru takes GET too; POST keeps the `api_id` out of URLs.
//!
//! SMS.ru answers with HTTP 200 whatever happened: `{"status": "OK", "status_code": 100, "sms":
//! {"<number>": {"status": "OK", "status_code": 100, "sms_id": "…"}}, "balance": …}` on success, the
//! number's entry with `"status": "ERROR"` and its own `status_code` and `status_text` when that
//! number was refused, and a top-level `"status": "ERROR"` when the whole request was. The codes of
//! its documentation, and their classes here:
//!
//! | `status_code` | Meaning | Class |
//! |---|---|---|
//! | 200, 300, 301, 302 | wrong `api_id` (or token, login, password), account not confirmed | credentials |
//! | 201 | not enough money on the account | credentials |
//! | 204 | sender name not approved | credentials |
//! | 210, 211 | wrong HTTP method, unknown method (the `base_url` is not the API) | credentials |
//! | 202, 207 | wrong recipient, or no route to it | permanent |
//! | 203, 205, 208, 209, 212, 213 | no text, text too long, bad `time`, number on the stop list, not UTF-8, too many numbers | permanent |
//! | 206, 230, 231, 232, 233 | a daily limit, or the per-number limits on (repeated) messages | temporary |
//! | 220, 500 | service temporarily unavailable, server error: try later | temporary |
//!
//! An unknown code is temporary (retried until the outbox gives the message up).

use async_trait::async_trait;
use auth_core::SecretString;
use auth_core::ports::SmsMessage;
use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::Value;

use super::{FORM, GatewayName, Provider, Receipt, SendError, SmsRuConfig, SmsSetupError, scrub};
use crate::outbound::{HttpsClient, Outbound};

/// The path of the send method below the API root.
pub const PATH: &str = "/sms/send";

/// SMS.ru's `sms/send`.
pub struct SmsRu {
    url: http::Uri,
    api_id: SecretString,
    from: Option<String>,
    http: HttpsClient,
}

impl std::fmt::Debug for SmsRu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsRu")
            .field("target", &crate::outbound::target(&self.url))
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmsRu {
    /// Builds the gateway: reads the `api_id` (file) and makes the client.
    pub fn build(config: &SmsRuConfig, outbound: &Outbound) -> Result<Self, SmsSetupError> {
        let e = &config.endpoint;
        Ok(Self {
            url: super::join("smsru", &e.base_url, PATH)?,
            api_id: super::read_secret("smsru", "api_id", &config.api_id)?,
            from: config.from.clone(),
            http: super::client(outbound, "smsru", e.ca_file.as_deref(), e.timeout)?,
        })
    }

    fn request(&self, msg: &SmsMessage) -> Result<Request<Bytes>, SendError> {
        let mut pairs = vec![
            ("api_id", self.api_id.expose()),
            ("to", msg.to.as_str()),
            ("msg", msg.text.expose()),
            ("json", "1"),
        ];
        if let Some(from) = &self.from {
            pairs.push(("from", from));
        }
        Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, FORM)
            .header(http::header::ACCEPT, "application/json")
            .body(super::form(&pairs))
            .map_err(|_| SendError::Temporary("cannot build the request".to_owned()))
    }
}

fn class(code: i64, what: String) -> SendError {
    match code {
        200 | 201 | 204 | 210 | 211 | 300..=302 => SendError::Credentials(what),
        202 | 203 | 205 | 207 | 208 | 209 | 212 | 213 => SendError::Permanent(what),
        _ => SendError::Temporary(what),
    }
}

fn status_code(json: &Value) -> Option<i64> {
    let v = json.get("status_code")?;
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Reads SMS.ru's answer for a message to `to`; `secrets` are blanked in anything quoted.
pub fn parse(
    status: StatusCode,
    body: &[u8],
    to: &str,
    secrets: &[&str],
) -> Result<Receipt, SendError> {
    let Some(json) = serde_json::from_slice::<Value>(body).ok().filter(Value::is_object) else {
        return Err(if status.is_success() {
            SendError::Temporary(format!(
                "smsru answered HTTP {} without its JSON",
                status.as_u16()
            ))
        } else {
            super::status_error(GatewayName::SmsRu, status)
        });
    };
    let refused = |json: &Value| {
        let code = status_code(json);
        let text = json.get("status_text").and_then(Value::as_str).unwrap_or("");
        let what = format!(
            "smsru status_code {} ({})",
            code.map_or_else(|| "?".to_owned(), |c| c.to_string()),
            scrub(text, secrets)
        );
        class(code.unwrap_or(0), what)
    };
    if json.get("status").and_then(Value::as_str) != Some("OK") {
        return Err(refused(&json));
    }
    // The entry for our number; SMS.ru keys the map by the number as it normalised it, so with one
    // recipient the only entry is ours either way.
    let entries = json.get("sms").and_then(Value::as_object);
    let entry = entries.and_then(|m| m.get(to).or_else(|| m.values().next()));
    let Some(entry) = entry else {
        return Err(SendError::Temporary("smsru answered OK without the message's entry".into()));
    };
    if entry.get("status").and_then(Value::as_str) == Some("OK") {
        let id = entry.get("sms_id").and_then(Value::as_str).unwrap_or("?");
        return Ok(Receipt::new(format!("sms_id {}", scrub(id, secrets))));
    }
    Err(refused(entry))
}

#[async_trait]
impl Provider for SmsRu {
    async fn send(&self, msg: &SmsMessage) -> Result<Receipt, SendError> {
        let response = self.http.send(self.request(msg)?).await.map_err(super::transport_error)?;
        parse(response.status, &response.body, &msg.to, &[self.api_id.expose()])
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::outbound::test_server::{Reply, TestServer};
    use crate::sms::{Endpoint, Secret};

    const TO: &str = "79255070602";

    fn check(cases: &[(u16, Value, &str)]) {
        for (status, body, want) in cases {
            let status = StatusCode::from_u16(*status).unwrap();
            let bytes = body.to_string();
            let got = match parse(status, bytes.as_bytes(), TO, &["AAAA-BBBB"]) {
                Ok(r) => format!("sent: {}", r.answer),
                Err(e) => format!("{}: {e}", e.outcome().as_str()),
            };
            assert_eq!(got, *want, "{status} {body}");
        }
    }

    fn number_error(code: u32, text: &str) -> Value {
        json!({"status": "OK", "status_code": 100,
            "sms": {TO: {"status": "ERROR", "status_code": code, "status_text": text}},
            "balance": 4122.56})
    }

    fn request_error(code: u32, text: &str) -> Value {
        json!({"status": "ERROR", "status_code": code, "status_text": text})
    }

    #[test]
    fn answers_are_read_by_the_documented_codes() {
        check(&[
            (
                200,
                json!({"status": "OK", "status_code": 100,
                    "sms": {TO: {"status": "OK", "status_code": 100, "sms_id": "000000-10000000"}},
                    "balance": 4122.56}),
                "sent: sms_id 000000-10000000",
            ),
            (
                200,
                request_error(200, "Неправильный api_id"),
                "credentials: credentials or account refused: smsru status_code 200 (Неправильный api_id)",
            ),
            (
                200,
                request_error(201, "Не хватает средств на лицевом счету"),
                "credentials: credentials or account refused: smsru status_code 201 (Не хватает средств на лицевом счету)",
            ),
            (
                200,
                request_error(301, "Неправильный api_id, либо логин/пароль"),
                "credentials: credentials or account refused: smsru status_code 301 (Неправильный api_id, либо логин/пароль)",
            ),
            (
                200,
                number_error(202, "Неправильно указан номер телефона получателя"),
                "permanent: refused for good: smsru status_code 202 (Неправильно указан номер телефона получателя)",
            ),
            (
                200,
                number_error(207, "На этот номер нет маршрута для доставки сообщений"),
                "permanent: refused for good: smsru status_code 207 (На этот номер нет маршрута для доставки сообщений)",
            ),
            (
                200,
                number_error(209, "Вы добавили этот номер в стоп-лист"),
                "permanent: refused for good: smsru status_code 209 (Вы добавили этот номер в стоп-лист)",
            ),
            (
                200,
                request_error(220, "Сервис временно недоступен"),
                "temporary: temporary failure: smsru status_code 220 (Сервис временно недоступен)",
            ),
            (
                200,
                number_error(230, "Превышен общий лимит количества сообщений на этот номер в день"),
                "temporary: temporary failure: smsru status_code 230 (Превышен общий лимит количества сообщений на этот номер в день)",
            ),
            (
                200,
                number_error(233, "Превышен лимит отправки повторных сообщений с кодом"),
                "temporary: temporary failure: smsru status_code 233 (Превышен лимит отправки повторных сообщений с кодом)",
            ),
            (
                200,
                request_error(500, "Ошибка на сервере. Повторите запрос."),
                "temporary: temporary failure: smsru status_code 500 (Ошибка на сервере. Повторите запрос.)",
            ),
            (
                200,
                request_error(200, "api_id AAAA-BBBB is wrong"),
                "credentials: credentials or account refused: smsru status_code 200 (api_id <redacted> is wrong)",
            ),
            (
                200,
                json!("100\n000000-10000000"),
                "temporary: temporary failure: smsru answered HTTP 200 without its JSON",
            ),
            (503, json!(null), "temporary: temporary failure: smsru answered HTTP 503"),
        ]);
    }

    #[tokio::test]
    async fn the_request_is_the_documented_form() {
        let server = TestServer::start(|_| {
            Reply::json(
                200,
                json!({"status": "OK", "status_code": 100,
                    "sms": {TO: {"status": "OK", "status_code": 100, "sms_id": "1-2"}}}),
            )
        })
        .await;
        let config = SmsRuConfig {
            api_id: Secret::Value(SecretString::from("AAAA-BBBB")),
            from: None,
            endpoint: Endpoint {
                base_url: server.url(""),
                ca_file: None,
                timeout: Duration::from_secs(5),
            },
        };
        let gw = SmsRu::build(&config, &Outbound::new(4)).unwrap();
        let msg = SmsMessage { id: 7, to: TO.into(), text: SecretString::new("Код: 123456") };
        assert_eq!(gw.send(&msg).await.unwrap().answer, "sms_id 1-2");
        let r = server.last(PATH);
        assert_eq!(r.method, http::Method::POST);
        assert_eq!(r.header("content-type"), FORM);
        let want: Vec<(String, String)> =
            [("api_id", "AAAA-BBBB"), ("to", TO), ("msg", "Код: 123456"), ("json", "1")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        assert_eq!(r.form(), want);
        assert!(!format!("{gw:?}").contains("AAAA"));
    }
}
