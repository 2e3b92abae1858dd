//! The closed set of stable error `code` strings (API.md §3), with their HTTP status and upstream message.
//!
//! These strings are the contract with clients: never rename one; add new variants only with a spec change.

use std::fmt;
use std::str::FromStr;

/// A stable, machine-readable error code, written as `error.code` in the error envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Wrong or unknown credentials, a wrong 2FA code, or any other hidden credential failure (401).
    InvalidCredentials,
    /// The login throttle is engaged (429).
    LoginThrottled,
    /// An SMS send was refused by a send limit (429).
    SmsSendLimited,
    /// Too many wrong second-factor codes (429).
    CodeAttemptsExceeded,
    /// The daily second-factor lock is engaged (429).
    SecondFactorLocked,
    /// Missing `userName`/`password` or a malformed body (400).
    BadRequest,
    /// sendsms/setphone without a phone number (400).
    PhoneRequired,
    /// A phone number that cannot be normalised (400).
    InvalidPhone,
    /// setphone while the phone is already activated (409).
    PhoneAlreadyActivated,
    /// No valid token on a token-holder endpoint (401).
    Unauthorized,
    /// Backup codes asked for while the TOTP app is not activated (403).
    TfaNotAvailable,
    /// Another user's reset without admin rights (403).
    Forbidden,
    /// Unknown path or suffix (404).
    NotFound,
    /// Known path, wrong method (405).
    MethodNotAllowed,
    /// Unknown portal host (404).
    PortalNotFound,
    /// The body did not arrive in time (408).
    RequestTimeout,
    /// The body is larger than the limit (413).
    PayloadTooLarge,
    /// A content type the API does not read (415).
    UnsupportedMediaType,
    /// Hashing queue full or store unavailable (503).
    Busy,
    /// Anything unexpected (500).
    Internal,
    /// A second-factor change with a token that is not fresh (401, spec §5.8).
    ReauthenticationRequired,
    /// The social provider is unreachable, timed out or failed (503).
    ProviderUnavailable,
    /// The social identity is linked to another user (409).
    AlreadyLinked,
    /// A new password the portal's password policy refuses (400, spec §14); the message says which
    /// rule.
    WeakPassword,
    /// A password-reset key that is unknown, used, expired or outlived a newer change (400, §14).
    InvalidResetKey,
    /// Too many reset mails asked for from one client (429, §14).
    ResetLimited,
}

/// The text was not one of the known error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code `{0}`")]
pub struct UnknownErrorCode(pub String);

impl ErrorCode {
    /// Every code, in the order of the spec table (useful for documentation generators and tests).
    pub const ALL: [ErrorCode; 26] = [
        ErrorCode::InvalidCredentials,
        ErrorCode::LoginThrottled,
        ErrorCode::SmsSendLimited,
        ErrorCode::CodeAttemptsExceeded,
        ErrorCode::SecondFactorLocked,
        ErrorCode::BadRequest,
        ErrorCode::PhoneRequired,
        ErrorCode::InvalidPhone,
        ErrorCode::PhoneAlreadyActivated,
        ErrorCode::Unauthorized,
        ErrorCode::TfaNotAvailable,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PortalNotFound,
        ErrorCode::RequestTimeout,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Busy,
        ErrorCode::Internal,
        ErrorCode::ReauthenticationRequired,
        ErrorCode::ProviderUnavailable,
        ErrorCode::AlreadyLinked,
        ErrorCode::WeakPassword,
        ErrorCode::InvalidResetKey,
        ErrorCode::ResetLimited,
    ];

    /// The wire string, e.g. `invalid_credentials`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::LoginThrottled => "login_throttled",
            ErrorCode::SmsSendLimited => "sms_send_limited",
            ErrorCode::CodeAttemptsExceeded => "code_attempts_exceeded",
            ErrorCode::SecondFactorLocked => "second_factor_locked",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::PhoneRequired => "phone_required",
            ErrorCode::InvalidPhone => "invalid_phone",
            ErrorCode::PhoneAlreadyActivated => "phone_already_activated",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TfaNotAvailable => "tfa_not_available",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PortalNotFound => "portal_not_found",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal",
            ErrorCode::ReauthenticationRequired => "reauthentication_required",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::AlreadyLinked => "already_linked",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::InvalidResetKey => "invalid_reset_key",
            ErrorCode::ResetLimited => "reset_limited",
        }
    }

    /// Parses a wire string; `None` for a code this version does not know.
    pub fn parse(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The HTTP status the spec gives this code.
    pub const fn status_code(self) -> u16 {
        match self {
            ErrorCode::InvalidCredentials
            | ErrorCode::Unauthorized
            | ErrorCode::ReauthenticationRequired => 401,
            ErrorCode::LoginThrottled
            | ErrorCode::SmsSendLimited
            | ErrorCode::CodeAttemptsExceeded
            | ErrorCode::SecondFactorLocked
            | ErrorCode::ResetLimited => 429,
            ErrorCode::BadRequest
            | ErrorCode::PhoneRequired
            | ErrorCode::InvalidPhone
            | ErrorCode::WeakPassword
            | ErrorCode::InvalidResetKey => 400,
            ErrorCode::PhoneAlreadyActivated | ErrorCode::AlreadyLinked => 409,
            ErrorCode::TfaNotAvailable | ErrorCode::Forbidden => 403,
            ErrorCode::NotFound | ErrorCode::PortalNotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Busy | ErrorCode::ProviderUnavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The default human message: the upstream English string where one exists (clients match on `failed`).
    pub const fn default_message(self) -> &'static str {
        match self {
            ErrorCode::InvalidCredentials => "User authentication failed",
            ErrorCode::LoginThrottled | ErrorCode::CodeAttemptsExceeded => {
                "Login Fail. Too many attempts"
            }
            ErrorCode::SmsSendLimited => {
                "You have sent too many text messages. Please try again later."
            }
            ErrorCode::SecondFactorLocked => {
                "Too many attempts. Ask an administrator to reset two-factor authentication."
            }
            ErrorCode::BadRequest => "Bad request",
            ErrorCode::PhoneRequired => "Enter mobile phone number",
            ErrorCode::InvalidPhone => "Incorrect phone number",
            ErrorCode::PhoneAlreadyActivated => {
                "To change the number, you need to delete your current phone number"
            }
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::TfaNotAvailable => "Two-factor authentication app is not available",
            ErrorCode::Forbidden => "Access denied",
            ErrorCode::NotFound | ErrorCode::MethodNotAllowed => "Method not found",
            ErrorCode::PortalNotFound => "Portal not found",
            ErrorCode::RequestTimeout => "Request body not received in time",
            ErrorCode::PayloadTooLarge => "Request body too large",
            ErrorCode::UnsupportedMediaType => "Unsupported content type",
            ErrorCode::Busy => "Server is busy",
            ErrorCode::Internal => "Internal error",
            ErrorCode::ReauthenticationRequired => "Sign in again to change two-factor settings",
            ErrorCode::ProviderUnavailable => "Authentication provider is unavailable",
            ErrorCode::AlreadyLinked => "This account is already linked to another user",
            ErrorCode::WeakPassword => "The password does not meet the password policy",
            ErrorCode::InvalidResetKey => {
                "The link is no longer valid (it was used, it expired, or the password changed since)"
            }
            ErrorCode::ResetLimited => "Too many password reset requests. Please try again later.",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::parse(s).ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()));
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
        }
        assert_eq!(
            "Invalid_Credentials".parse::<ErrorCode>(),
            Err(UnknownErrorCode("Invalid_Credentials".into()))
        );
    }
}
