//! Building responses: envelopes with their status, the cookie, `Retry-After`, and the mapping from
//! each capability's errors (and the typed requests' decode errors) to the closed set of wire error
//! codes (spec §3).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use auth_core::service::{AccountError, RecoveryError};
use auth_core::{
    LinkError, Portal, PortalError, SessionError, SignInError, TfaSettingsError, Timestamp,
};
use auth_wire::RequestError;
use auth_wire::{ApiDate, Envelope, ErrorCode, ErrorEnvelope, Format, Payload};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, SET_COOKIE};
use hyper::{Response, StatusCode};

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Unauthorized => Self::new(ErrorCode::Unauthorized),
            SessionError::Busy(detail) => Self::busy(&detail),
            SessionError::Internal(detail) => Self::internal(&detail),
        }
    }
}

impl From<TfaSettingsError> for Failure {
    fn from(e: TfaSettingsError) -> Self {
        match e {
            TfaSettingsError::TfaNotAvailable => Self::new(ErrorCode::TfaNotAvailable),
            TfaSettingsError::Forbidden => Self::new(ErrorCode::Forbidden),
            TfaSettingsError::ReauthenticationRequired => {
                Self::new(ErrorCode::ReauthenticationRequired)
            }
            TfaSettingsError::Busy(detail) => Self::busy(&detail),
            TfaSettingsError::Internal(detail) => Self::internal(&detail),
        }
    }
}

impl From<LinkError> for Failure {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::InvalidCredentials => Self::new(ErrorCode::InvalidCredentials),
            LinkError::AlreadyLinked => Self::new(ErrorCode::AlreadyLinked),
            LinkError::ProviderUnavailable(detail) => Self::provider_unavailable(&detail),
            LinkError::ReauthenticationRequired => Self::new(ErrorCode::ReauthenticationRequired),
            LinkError::Busy(detail) => Self::busy(&detail),
            LinkError::Internal(detail) => Self::internal(&detail),
        }
    }
}

impl Failure {
    /// Maps a refusal of the account capability; `now` turns a throttle's `until` into `Retry-After`.
    pub(crate) fn account(e: AccountError, now: Timestamp) -> Self {
        match e {
            AccountError::InvalidCredentials => Self::new(ErrorCode::InvalidCredentials),
            AccountError::ReauthenticationRequired => {
                Self::new(ErrorCode::ReauthenticationRequired)
            }
            AccountError::WeakPassword(v) => {
                Self::with_message(ErrorCode::WeakPassword, v.to_string())
            }
            AccountError::DirectoryUser => Self::with_message(
                ErrorCode::Forbidden,
                "The password of a directory account is changed in the directory",
            ),
            AccountError::Throttled { until } => {
                let secs = until.duration_since(now).as_secs().max(1);
                Self {
                    retry_after_secs: Some(u64::try_from(secs).unwrap_or(1)),
                    ..Self::new(ErrorCode::LoginThrottled)
                }
            }
            AccountError::Busy(detail) => Self::busy(&detail),
            AccountError::Internal(detail) => Self::internal(&detail),
        }
    }
}

impl Failure {
    /// The answer to a refused recovery step (spec §14).
    pub(crate) fn recovery(e: RecoveryError, now: Timestamp) -> Self {
        match e {
            RecoveryError::NotAvailable => Self::with_message(
                ErrorCode::Forbidden,
                "Password recovery by e-mail is not enabled on this server",
            ),
            RecoveryError::InvalidEmail => {
                Self::with_message(ErrorCode::BadRequest, "email is not an e-mail address")
            }
            RecoveryError::Throttled { until } => {
                let secs = until.duration_since(now).as_secs().max(1);
                Self {
                    retry_after_secs: Some(u64::try_from(secs).unwrap_or(1)),
                    ..Self::new(ErrorCode::ResetLimited)
                }
            }
            RecoveryError::InvalidKey => Self::new(ErrorCode::InvalidResetKey),
            RecoveryError::WeakPassword(v) => {
                Self::with_message(ErrorCode::WeakPassword, v.to_string())
            }
            RecoveryError::DirectoryUser => Self::with_message(
                ErrorCode::Forbidden,
                "The password of a directory account is changed in the directory",
            ),
            RecoveryError::Busy(detail) => Self::busy(&detail),
            RecoveryError::Internal(detail) => Self::internal(&detail),
        }
    }
}

impl From<PortalError> for Failure {
    fn from(e: PortalError) -> Self {
        match e {
            PortalError::PortalNotFound => Self::new(ErrorCode::PortalNotFound),
            PortalError::Busy(detail) => Self::busy(&detail),
            PortalError::Internal(detail) => Self::internal(&detail),
        }
    }
}

impl From<RequestError> for Failure {
    fn from(e: RequestError) -> Self {
        Self::with_message(ErrorCode::BadRequest, e.to_string())
    }
}

/// The response body type of the whole crate.
pub type Body = Full<Bytes>;

/// The token cookie's name.
pub(crate) const COOKIE: &str = "asc_auth_key";

/// The known-client cookie's name (spec §5.1).
pub(crate) const DEVICE_COOKIE: &str = "asc_device";

/// An error on its way to the client: a wire code, its message and, for 429/503, when to come back.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: ErrorCode,
    pub(crate) message: Option<String>,
    pub(crate) retry_after_secs: Option<u64>,
    pub(crate) allow: Option<String>,
}

impl Failure {
    pub(crate) fn new(code: ErrorCode) -> Self {
        Self { code, message: None, retry_after_secs: None, allow: None }
    }

    pub(crate) fn with_message(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { message: Some(message.into()), ..Self::new(code) }
    }

    /// Maps a sign-in refusal; `now` turns its `until` into `Retry-After`.
    pub(crate) fn sign_in(e: SignInError, now: Timestamp) -> Self {
        let retry_at = e.retry_at();
        let mut f = match e {
            SignInError::InvalidCredentials => Self::new(ErrorCode::InvalidCredentials),
            SignInError::LoginThrottled { .. } => Self::new(ErrorCode::LoginThrottled),
            SignInError::SmsSendLimited { .. } => Self::new(ErrorCode::SmsSendLimited),
            SignInError::CodeAttemptsExceeded { .. } => Self::new(ErrorCode::CodeAttemptsExceeded),
            SignInError::SecondFactorLocked { .. } => Self::new(ErrorCode::SecondFactorLocked),
            SignInError::PhoneRequired => Self::new(ErrorCode::PhoneRequired),
            SignInError::InvalidPhone => Self::new(ErrorCode::InvalidPhone),
            SignInError::PhoneAlreadyActivated => Self::new(ErrorCode::PhoneAlreadyActivated),
            SignInError::ProviderUnavailable(detail) => Self::provider_unavailable(&detail),
            SignInError::Busy(detail) => Self::busy(&detail),
            SignInError::Internal(detail) => Self::internal(&detail),
        };
        if let Some(until) = retry_at {
            let secs = until.duration_since(now).as_secs_f64().ceil();
            f.retry_after_secs = Some(if secs < 1.0 { 1 } else { secs as u64 });
        }
        f
    }

    /// 503 `provider_unavailable` with `Retry-After: 5` (spec §5.4): the detail is logged, never sent.
    fn provider_unavailable(detail: &str) -> Self {
        tracing::warn!(%detail, "social provider unavailable");
        Self { retry_after_secs: Some(5), ..Self::new(ErrorCode::ProviderUnavailable) }
    }

    /// 503 `busy`: the detail is logged, never sent. At most one line a second, saying how many
    /// busy answers went unlogged before it: under a login flood the core answers busy many times
    /// a second (a full hashing queue), and a line for each would flood the log, while one a
    /// second still shows every episode, a store that cannot answer included. `/metrics` counts
    /// every 503.
    fn busy(detail: &str) -> Self {
        static LINES: LogEvery = LogEvery::new(1_000);
        if let Some(unlogged) = LINES.admit(process_millis()) {
            tracing::warn!(%detail, unlogged, "answering busy");
        }
        Self { retry_after_secs: Some(1), ..Self::new(ErrorCode::Busy) }
    }

    /// 500 `internal`: the detail is logged, never sent.
    pub(crate) fn internal(detail: &str) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(ErrorCode::Internal)
    }

    pub(crate) fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub(crate) fn into_response(self, format: Format) -> Response<Body> {
        let status = self.status();
        let envelope = match self.message {
            Some(m) => ErrorEnvelope::with_message(self.code, m),
            None => ErrorEnvelope::new(self.code),
        };
        let mut resp = body_response(status, format, envelope.encode(format));
        if let Some(secs) = self.retry_after_secs {
            resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            resp.headers_mut().insert(hyper::header::ALLOW, allow);
        }
        resp
    }
}

fn body_response(status: StatusCode, format: Format, bytes: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    resp
}

/// A 200 envelope around `payload`.
pub(crate) fn ok(format: Format, payload: impl Into<Payload>) -> Response<Body> {
    body_response(StatusCode::OK, format, Envelope::ok(200, payload).encode(format))
}

/// A date in the portal's time zone (UTC when the zone is unknown, which validation prevents).
pub(crate) fn date(portal: &Portal, ts: Timestamp) -> Option<ApiDate> {
    let offset = jiff::tz::TimeZone::get(&portal.settings.time_zone)
        .map(|tz| tz.to_offset(ts))
        .unwrap_or(jiff::tz::Offset::UTC);
    ApiDate::from_timestamp(ts, offset).ok()
}

/// Adds `Set-Cookie` for a freshly issued token; `secure` when the browser came over HTTPS or the
/// portal is configured as https.
pub(crate) fn set_token_cookie(
    resp: &mut Response<Body>,
    secure: bool,
    token: &str,
    expires: Timestamp,
) {
    let when = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(expires.as_second().max(0) as u64),
    );
    let secure = if secure { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={token}; Expires={when}; Path=/; HttpOnly; SameSite=Lax{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}

/// Adds `Set-Cookie` for the known-client cookie: proof of an earlier login, for the per-account
/// limit; `HttpOnly` like the token, and as long-lived as its MAC says.
pub(crate) fn set_device_cookie(
    resp: &mut Response<Body>,
    secure: bool,
    value: &str,
    expires: Timestamp,
) {
    let when = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(expires.as_second().max(0) as u64),
    );
    let secure = if secure { "; Secure" } else { "" };
    let cookie =
        format!("{DEVICE_COOKIE}={value}; Expires={when}; Path=/; HttpOnly; SameSite=Lax{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}

/// Adds a `Set-Cookie` that expires the token cookie (logout); `Secure` as when it was set.
pub(crate) fn clear_token_cookie(resp: &mut Response<Body>, portal: &Arc<Portal>, secure: bool) {
    let secure = if secure || portal.settings.https { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax{secure}"
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}

/// A plain-text response (health, metrics).
pub(crate) fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Milliseconds since this process first asked (a monotonic clock for [`LogEvery`]).
fn process_millis() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Lets one log line through per period; counts the ones it holds back.
struct LogEvery {
    period_ms: u64,
    /// When the last line was let through, plus one (0: never).
    last: AtomicU64,
    held: AtomicU64,
}

impl LogEvery {
    const fn new(period_ms: u64) -> Self {
        Self { period_ms, last: AtomicU64::new(0), held: AtomicU64::new(0) }
    }

    /// `Some(lines held back since the last one let through)` when a line may be written at
    /// `now_ms`, else `None` (and the line is counted as held back). Of racing callers, one wins.
    fn admit(&self, now_ms: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_add(1).saturating_sub(last) >= self.period_ms;
        if due
            && self
                .last
                .compare_exchange(
                    last,
                    now_ms.saturating_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.held.swap(0, Ordering::Relaxed));
        }
        self.held.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod log_every_tests {
    use super::LogEvery;

    #[test]
    fn one_line_a_period_with_the_count_of_those_held_back() {
        let every = LogEvery::new(1_000);
        assert_eq!(every.admit(0), Some(0), "the first line is written");
        assert_eq!(every.admit(10), None);
        assert_eq!(every.admit(998), None);
        assert_eq!(every.admit(1_000), Some(2), "a period later, with the two held back");
        assert_eq!(every.admit(1_500), None);
        assert_eq!(every.admit(5_000), Some(1));
        assert_eq!(every.admit(5_000), None);
    }
}
