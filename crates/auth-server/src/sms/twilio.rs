//! The `twilio` gateway: Twilio's Programmable Messaging, by the REST API's Message resource.
//!
//! The call: `POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json` (default
//! `https://api.twilio.com`), HTTP Basic authentication with the account SID and the auth token, and a
//! form body (UTF-8) with `To` (the number in E.164, `+` and the digits), `Body`, and `From` and/or
//! `MessagingServiceSid`.
//!
//! Success is `201 Created` with the Message resource (`sid`, `status` `queued` or `accepted`, and
//! `error_code` null). An error is a non-2xx status with `{"code": N, "message": "…", "more_info": "…",
//! "status": S}`. Twilio asks clients not to build logic on its many error codes, so the class comes
//! from the status, with the few codes that say something the status cannot:
//!
//! | Answer | Class |
//! |---|---|
//! | 401 (20003 authentication failed), 403, 404 (20404: no such account) | credentials |
//! | 400 with 20005 (account not active), 21212 (invalid `From`), 21603 (`From` required), 21606 and 21659 and 21660 (a `From` the account may not send from), 21705 (invalid Messaging Service) | credentials |
//! | 400 with 21611 (the sender's queue is full) | temporary |
//! | any other 400 (21211 invalid `To`, 21408 region not enabled, 21610 recipient unsubscribed, 21612 no route, 21614 not a mobile number, …) | permanent |
//! | 429 (20429), 5xx, no answer | temporary |

use async_trait::async_trait;
use auth_core::SecretString;
use auth_core::ports::SmsMessage;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use serde_json::Value;

use super::{FORM, GatewayName, Provider, Receipt, SendError, SmsSetupError, TwilioConfig, scrub};
use crate::outbound::{HttpsClient, Outbound};

/// Error codes that point at the account's settings rather than the message.
const ACCOUNT_CODES: &[i64] = &[20003, 20005, 20404, 21212, 21603, 21606, 21659, 21660, 21705];

/// Error codes that mean "later".
const LATER_CODES: &[i64] = &[20429, 21611];

/// Twilio's Message resource.
pub struct Twilio {
    url: http::Uri,
    authorization: HeaderValue,
    token: SecretString,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    http: HttpsClient,
}

impl std::fmt::Debug for Twilio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twilio")
            .field("target", &crate::outbound::target(&self.url))
            .field("from", &self.from)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .finish_non_exhaustive()
    }
}

/// The path of the Message list below the API root.
pub fn path(account_sid: &str) -> String {
    format!("/2010-04-01/Accounts/{account_sid}/Messages.json")
}

impl Twilio {
    /// Builds the gateway: reads the token (file) and makes the client.
    pub fn build(config: &TwilioConfig, outbound: &Outbound) -> Result<Self, SmsSetupError> {
        let e = &config.endpoint;
        let token = super::read_secret("twilio", "auth_token", &config.auth_token)?;
        let basic = SecretString::from(base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            config.account_sid,
            token.expose()
        )));
        let mut authorization = HeaderValue::try_from(format!("Basic {}", basic.expose()))
            .map_err(|_| SmsSetupError::Url {
                gateway: "twilio",
                what: "the account SID and token cannot form an Authorization header".to_owned(),
            })?;
        authorization.set_sensitive(true);
        Ok(Self {
            url: super::join("twilio", &e.base_url, &path(&config.account_sid))?,
            authorization,
            token,
            from: config.from.clone(),
            messaging_service_sid: config.messaging_service_sid.clone(),
            http: super::client(outbound, "twilio", e.ca_file.as_deref(), e.timeout)?,
        })
    }

    fn request(&self, msg: &SmsMessage) -> Result<Request<Bytes>, SendError> {
        let to = format!("+{}", msg.to);
        let mut pairs = vec![("To", to.as_str())];
        if let Some(from) = &self.from {
            pairs.push(("From", from));
        }
        if let Some(service) = &self.messaging_service_sid {
            pairs.push(("MessagingServiceSid", service));
        }
        pairs.push(("Body", msg.text.expose()));
        Request::post(self.url.clone())
            .header(http::header::AUTHORIZATION, self.authorization.clone())
            .header(http::header::CONTENT_TYPE, FORM)
            .header(http::header::ACCEPT, "application/json")
            .body(super::form(&pairs))
            .map_err(|_| SendError::Temporary("cannot build the request".to_owned()))
    }
}

fn code_of(json: &Value, key: &str) -> Option<i64> {
    let v = json.get(key)?;
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Reads Twilio's answer; `secrets` are blanked in anything quoted from it.
pub fn parse(status: StatusCode, body: &[u8], secrets: &[&str]) -> Result<Receipt, SendError> {
    let json: Option<Value> = serde_json::from_slice(body).ok().filter(Value::is_object);
    if status.is_success() {
        let Some(json) = json else {
            return Err(SendError::Temporary(format!(
                "twilio answered HTTP {} without its JSON",
                status.as_u16()
            )));
        };
        let state = json.get("status").and_then(Value::as_str).unwrap_or("?");
        // A message created already failed carries its error on the resource itself.
        if let Some(code) = code_of(&json, "error_code") {
            let text = json.get("error_message").and_then(Value::as_str).unwrap_or("");
            let what = format!("twilio error {code} ({})", scrub(text, secrets));
            return Err(by_code(code, StatusCode::BAD_REQUEST, what));
        }
        if matches!(state, "failed" | "undelivered" | "canceled") {
            return Err(SendError::Permanent(format!("twilio created the message as {state}")));
        }
        let sid = json.get("sid").and_then(Value::as_str).unwrap_or("?");
        return Ok(Receipt::new(format!("sid {}, status {state}", scrub(sid, secrets))));
    }
    let Some(json) = json else {
        return Err(super::status_error(GatewayName::Twilio, status));
    };
    let code = code_of(&json, "code");
    let text = json.get("message").and_then(Value::as_str).unwrap_or("");
    let what = format!(
        "twilio answered HTTP {}, error {} ({})",
        status.as_u16(),
        code.map_or_else(|| "?".to_owned(), |c| c.to_string()),
        scrub(text, secrets)
    );
    match code {
        Some(code) => Err(by_code(code, status, what)),
        None => Err(match super::status_error(GatewayName::Twilio, status) {
            SendError::Temporary(_) => SendError::Temporary(what),
            SendError::Permanent(_) => SendError::Permanent(what),
            SendError::Credentials(_) => SendError::Credentials(what),
        }),
    }
}

fn by_code(code: i64, status: StatusCode, what: String) -> SendError {
    if LATER_CODES.contains(&code) {
        return SendError::Temporary(what);
    }
    if ACCOUNT_CODES.contains(&code) {
        return SendError::Credentials(what);
    }
    match status.as_u16() {
        408 | 429 | 500..=599 => SendError::Temporary(what),
        401 | 403 | 404 | 405 => SendError::Credentials(what),
        _ => SendError::Permanent(what),
    }
}

#[async_trait]
impl Provider for Twilio {
    async fn send(&self, msg: &SmsMessage) -> Result<Receipt, SendError> {
        let response = self.http.send(self.request(msg)?).await.map_err(super::transport_error)?;
        parse(response.status, &response.body, &[self.token.expose()])
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
            let status = StatusCode::from_u16(*status).unwrap();
            let got = match parse(status, body.as_bytes(), &["tok3n"]) {
                Ok(r) => format!("sent: {}", r.answer),
                Err(e) => format!("{}: {e}", e.outcome().as_str()),
            };
            assert_eq!(got, *want, "{status} {body}");
        }
    }

    #[test]
    fn answers_are_read_by_status_and_the_codes_that_matter() {
        let err = |status: u16, code: u32, message: &str| {
            serde_json::json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status}).to_string()
        };
        check(&[
            (
                201,
                r#"{"sid": "SM1", "status": "queued", "error_code": null, "error_message": null}"#,
                "sent: sid SM1, status queued",
            ),
            (201, r#"{"sid": "SM2", "status": "accepted"}"#, "sent: sid SM2, status accepted"),
            (
                401,
                &err(401, 20003, "Authenticate"),
                "credentials: credentials or account refused: twilio answered HTTP 401, error 20003 (Authenticate)",
            ),
            (
                404,
                &err(404, 20404, "The requested resource was not found"),
                "credentials: credentials or account refused: twilio answered HTTP 404, error 20404 (The requested resource was not found)",
            ),
            (
                400,
                &err(400, 21211, "The 'To' number +1555 is not a valid phone number."),
                "permanent: refused for good: twilio answered HTTP 400, error 21211 (The 'To' number +1555 is not a valid phone number.)",
            ),
            (
                400,
                &err(400, 21408, "Permission to send an SMS has not been enabled for the region"),
                "permanent: refused for good: twilio answered HTTP 400, error 21408 (Permission to send an SMS has not been enabled for the region)",
            ),
            (
                400,
                &err(400, 21610, "Attempt to send to unsubscribed recipient"),
                "permanent: refused for good: twilio answered HTTP 400, error 21610 (Attempt to send to unsubscribed recipient)",
            ),
            (
                400,
                &err(
                    400,
                    21606,
                    "The From phone number is not a valid, SMS-capable inbound phone number",
                ),
                "credentials: credentials or account refused: twilio answered HTTP 400, error 21606 (The From phone number is not a valid, SMS-capable inbound phone number)",
            ),
            (
                400,
                &err(
                    400,
                    21611,
                    "This 'From' number has exceeded the maximum number of queued messages",
                ),
                "temporary: temporary failure: twilio answered HTTP 400, error 21611 (This 'From' number has exceeded the maximum number of queued messages)",
            ),
            (
                429,
                &err(429, 20429, "Too Many Requests"),
                "temporary: temporary failure: twilio answered HTTP 429, error 20429 (Too Many Requests)",
            ),
            (
                503,
                &err(503, 20503, "Service unavailable"),
                "temporary: temporary failure: twilio answered HTTP 503, error 20503 (Service unavailable)",
            ),
            (500, "<html/>", "temporary: temporary failure: twilio answered HTTP 500"),
            (
                201,
                r#"{"sid": "SM3", "status": "failed", "error_code": 30007, "error_message": "filtered"}"#,
                "permanent: refused for good: twilio error 30007 (filtered)",
            ),
            (
                401,
                &err(401, 20003, "bad token tok3n"),
                "credentials: credentials or account refused: twilio answered HTTP 401, error 20003 (bad token <redacted>)",
            ),
        ]);
    }

    #[tokio::test]
    async fn the_request_is_the_documented_form_with_basic_authentication() {
        let server = TestServer::start(|_| {
            Reply::json(201, serde_json::json!({"sid": "SMx", "status": "queued"}))
        })
        .await;
        let config = TwilioConfig {
            account_sid: "AC0123".into(),
            auth_token: Secret::Value(SecretString::from("tok3n")),
            from: Some("+15005550006".into()),
            messaging_service_sid: None,
            endpoint: Endpoint {
                base_url: server.url(""),
                ca_file: None,
                timeout: Duration::from_secs(5),
            },
        };
        let twilio = Twilio::build(&config, &Outbound::new(4)).unwrap();
        let msg =
            SmsMessage {
                id: 7, to: "12025550123".into(), text: SecretString::new("Код: 123456")
            };
        assert_eq!(twilio.send(&msg).await.unwrap().answer, "sid SMx, status queued");
        let r = server.last("/2010-04-01/Accounts/AC0123/Messages.json");
        assert_eq!(r.method, http::Method::POST);
        assert_eq!(r.header("authorization"), "Basic QUMwMTIzOnRvazNu");
        assert_eq!(r.header("content-type"), FORM);
        let want: Vec<(String, String)> =
            [("To", "+12025550123"), ("From", "+15005550006"), ("Body", "Код: 123456")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        assert_eq!(r.form(), want);
        assert!(!format!("{twilio:?}").contains("tok3n"));
    }
}
