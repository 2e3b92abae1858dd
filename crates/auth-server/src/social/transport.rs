//! The plumbing of calls to providers: building requests, and the one place where an answer is
//! classified (spec §5.4).
//!
//! Not getting an answer (network, TLS, timeout, too many calls in flight), a 5xx, a 408 or a 429 is
//! `Unavailable`: nothing was said about the proof. A 4xx from the token or user-info endpoint is
//! `Rejected`: the provider refused the code or the token. A 4xx while fetching the discovery document
//! or the key set says nothing about the user's proof either (it means a wrong issuer or URL), so it
//! is `Unavailable` too. A 2xx whose JSON carries an OAuth `error` (GitHub and VK answer refusals with
//! 200) is `Rejected`. Messages name the step, the status and at most a sanitised OAuth error code,
//! never a URL's path or query, a token or a body.

use bytes::Bytes;
use http::{HeaderValue, Method, Request};
use serde_json::Value;

use auth_core::ports::SocialError;

use crate::outbound::{HttpsClient, OutboundResponse};

/// Which call this is, for messages and for what a refusal means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Discovery,
    Jwks,
    Token,
    Userinfo,
    Emails,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Step::Discovery => "the discovery document",
            Step::Jwks => "the key set",
            Step::Token => "the token endpoint",
            Step::Userinfo => "the user-info endpoint",
            Step::Emails => "the e-mail list",
        }
    }

    /// Whether a 4xx here refuses the user's proof (rather than showing a broken configuration).
    fn judges_the_proof(self) -> bool {
        matches!(self, Step::Token | Step::Userinfo | Step::Emails)
    }
}

/// A request with the headers every provider call carries.
pub(crate) fn request(
    method: Method,
    url: &str,
    accept: &'static str,
) -> Result<http::request::Builder, SocialError> {
    let uri: http::Uri = url.parse().map_err(|_| {
        SocialError::Unavailable("a provider endpoint is not a valid URL".to_owned())
    })?;
    Ok(Request::builder().method(method).uri(uri).header(http::header::ACCEPT, accept))
}

/// A header value that holds a secret (`Bearer …`, `Basic …`), marked sensitive so no layer prints it.
pub(crate) fn secret_header(value: String) -> Result<HeaderValue, SocialError> {
    let mut value = HeaderValue::try_from(value).map_err(|_| {
        SocialError::Rejected("the token holds characters an HTTP header cannot carry".to_owned())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Finishes a request builder.
pub(crate) fn build(
    builder: http::request::Builder,
    body: Bytes,
) -> Result<Request<Bytes>, SocialError> {
    builder
        .body(body)
        .map_err(|_| SocialError::Unavailable("cannot build the provider request".to_owned()))
}

/// Sends `request` and classifies the status; the answer is returned only when it is 2xx.
pub(crate) async fn send(
    http: &HttpsClient,
    step: Step,
    request: Request<Bytes>,
) -> Result<OutboundResponse, SocialError> {
    let response = http
        .send(request)
        .await
        .map_err(|e| SocialError::Unavailable(format!("{}: {e}", step.as_str())))?;
    let status = response.status;
    if status.is_success() {
        return Ok(response);
    }
    let code = oauth_error(&response.body).map(|c| format!(", {c}")).unwrap_or_default();
    let message = format!("{} answered {}{code}", step.as_str(), status.as_u16());
    if status.is_client_error()
        && step.judges_the_proof()
        && status != http::StatusCode::REQUEST_TIMEOUT
        && status != http::StatusCode::TOO_MANY_REQUESTS
    {
        Err(SocialError::Rejected(message))
    } else {
        Err(SocialError::Unavailable(message))
    }
}

/// The answer's JSON; an OAuth `error` in it refuses the proof.
pub(crate) fn json(step: Step, response: &OutboundResponse) -> Result<Value, SocialError> {
    let value: Value = serde_json::from_slice(&response.body).map_err(|_| {
        SocialError::Unavailable(format!("{}: the answer is not JSON", step.as_str()))
    })?;
    refusal_in(step, &value)?;
    Ok(value)
}

/// A 2xx body that still says "error" (GitHub's token endpoint, VK, Mail.ru).
pub(crate) fn refusal_in(step: Step, value: &Value) -> Result<(), SocialError> {
    if step.judges_the_proof() && value.get("error").is_some_and(|e| !e.is_null()) {
        let code = error_code(value).map(|c| format!(" ({c})")).unwrap_or_default();
        return Err(SocialError::Rejected(format!("{} refused the proof{code}", step.as_str())));
    }
    Ok(())
}

/// GET `url` and read its JSON.
pub(crate) async fn get_json(
    http: &HttpsClient,
    step: Step,
    url: &str,
) -> Result<Value, SocialError> {
    let request = build(request(Method::GET, url, "application/json")?, Bytes::new())?;
    let response = send(http, step, request).await?;
    json(step, &response)
}

/// The OAuth `error` code of a body, if it is JSON with one.
fn oauth_error(body: &[u8]) -> Option<String> {
    error_code(&serde_json::from_slice::<Value>(body).ok()?)
}

/// An OAuth error code (`invalid_grant`), or Facebook's `error.type`, sanitised: error codes are
/// fixed words, and anything else (a description that echoes input) is not repeated.
fn error_code(value: &Value) -> Option<String> {
    let error = value.get("error")?;
    let code = error.as_str().or_else(|| error.get("type").and_then(Value::as_str))?;
    let clean: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(40)
        .collect();
    Some(clean).filter(|c| !c.is_empty())
}
