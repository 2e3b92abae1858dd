//! What the service's operations can answer instead of a result.
//!
//! The variants mirror the closed set of client-visible situations of spec §3 and nothing finer:
//! "unknown user", "wrong password", "disabled" and "wrong code" are all [`AuthError::InvalidCredentials`],
//! so nothing a client sees tells them apart. The finer reason goes to the audit trail.
//! Mapping to HTTP statuses and wire codes is the transport's job.

use jiff::Timestamp;

use crate::ports::{HashError, StoreError};

/// An operation's refusal.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong or unknown credentials, disabled user, wrong/expired/used code, 2FA not applicable.
    #[error("user authentication failed")]
    InvalidCredentials,
    /// The login throttle is engaged until `until`.
    #[error("login throttled")]
    LoginThrottled {
        /// When to try again.
        until: Timestamp,
    },
    /// An SMS send limit refused the send until `until`.
    #[error("sms send limited")]
    SmsSendLimited {
        /// When to try again.
        until: Timestamp,
    },
    /// Too many wrong codes until `until`.
    #[error("too many wrong codes")]
    CodeAttemptsExceeded {
        /// When to try again.
        until: Timestamp,
    },
    /// The daily second-factor lock is engaged until `until` (or an admin reset).
    #[error("second factor locked")]
    SecondFactorLocked {
        /// When the lock ends by itself.
        until: Timestamp,
    },
    /// A required parameter is missing or malformed; the text says which.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// sendsms/setphone without a phone.
    #[error("phone required")]
    PhoneRequired,
    /// The phone number cannot be used.
    #[error("invalid phone")]
    InvalidPhone,
    /// setphone while the phone is activated.
    #[error("phone already activated")]
    PhoneAlreadyActivated,
    /// No valid token.
    #[error("unauthorized")]
    Unauthorized,
    /// Backup codes asked for while the TOTP app is not activated.
    #[error("two-factor authentication app is not available")]
    TfaNotAvailable,
    /// Not allowed for this caller.
    #[error("forbidden")]
    Forbidden,
    /// No portal answers to the request's host.
    #[error("portal not found")]
    PortalNotFound,
    /// An admin operation named a user that does not exist.
    #[error("user not found")]
    UserNotFound,
    /// An admin operation would duplicate a user or a host.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The password hashing queue is full or the store is unavailable; try again shortly.
    #[error("busy: {0}")]
    Busy(String),
    /// Anything unexpected (corrupt data, a broken adapter); details for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => AuthError::Busy(m),
            StoreError::Conflict(m) => AuthError::Conflict(m),
            StoreError::Corrupt(m) => AuthError::Internal(m),
        }
    }
}

impl From<HashError> for AuthError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => AuthError::Busy("password hashing queue is full".to_owned()),
            HashError::Malformed => {
                AuthError::Internal("malformed stored password hash".to_owned())
            }
            HashError::Failed(m) => AuthError::Internal(m),
        }
    }
}

impl AuthError {
    /// When a refused request may be retried, for `Retry-After`.
    pub fn retry_at(&self) -> Option<Timestamp> {
        match self {
            AuthError::LoginThrottled { until }
            | AuthError::SmsSendLimited { until }
            | AuthError::CodeAttemptsExceeded { until }
            | AuthError::SecondFactorLocked { until } => Some(*until),
            _ => None,
        }
    }
}
