//! What the service's capabilities answer instead of a result: one error enum per capability, in the
//! words of the domain.
//!
//! Each enum is the closed set of situations its operations can end in, and nothing finer: "unknown
//! user", "wrong password", "disabled" and "wrong code" are all [`SignInError::InvalidCredentials`], so
//! nothing a client sees tells them apart; the finer reason goes to the audit trail. Mapping to HTTP
//! statuses and wire codes is the transport's job, and only the transport's.
//!
//! Every enum also has `Busy` (retry shortly: the store or the hashing pool cannot take the work now) and
//! `Internal` (corrupt data or a broken adapter; the text is for the log only).

use jiff::Timestamp;

use crate::crypto::CryptoError;
use crate::password::HashError;
use crate::ports::StoreError;

/// Refusals of sign-in: the four credential endpoints.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
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
    /// sendsms/setphone without a phone.
    #[error("phone required")]
    PhoneRequired,
    /// The phone number cannot be used.
    #[error("invalid phone")]
    InvalidPhone,
    /// setphone while the phone is activated.
    #[error("phone already activated")]
    PhoneAlreadyActivated,
    /// The social provider could not be asked (unreachable, timed out, 5xx); the text is for the log.
    #[error("social provider unavailable: {0}")]
    ProviderUnavailable(String),
    /// The password hashing queue is full or the store is unavailable; try again shortly.
    #[error("busy: {0}")]
    Busy(String),
    /// Anything unexpected; details for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl SignInError {
    /// When a refused request may be retried, for `Retry-After`.
    pub fn retry_at(&self) -> Option<Timestamp> {
        match self {
            SignInError::LoginThrottled { until }
            | SignInError::SmsSendLimited { until }
            | SignInError::CodeAttemptsExceeded { until }
            | SignInError::SecondFactorLocked { until } => Some(*until),
            _ => None,
        }
    }
}

/// Refusals of the token holder's operations (who am I, log out).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No valid token: absent, unknown, expired, revoked, another portal's, or a disabled user's.
    #[error("unauthorized")]
    Unauthorized,
    /// The store is unavailable; try again shortly.
    #[error("busy: {0}")]
    Busy(String),
    /// Anything unexpected; details for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Refusals of managing one's second factor (backup codes, resetting the app).
#[derive(Debug, thiserror::Error)]
pub enum TfaSettingsError {
    /// Backup codes asked for while the TOTP app is not activated.
    #[error("two-factor authentication app is not available")]
    TfaNotAvailable,
    /// Not allowed for this caller (another user's reset without admin rights, or a user of
    /// another portal, which is as invisible as a missing one).
    #[error("forbidden")]
    Forbidden,
    /// The change needs a fresh token: one issued by a complete login in the last few minutes
    /// (spec §5.8), so a stolen long-lived token cannot mint lasting second factors.
    #[error("reauthentication required")]
    ReauthenticationRequired,
    /// The store is unavailable; try again shortly.
    #[error("busy: {0}")]
    Busy(String),
    /// Anything unexpected; details for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Refusals of managing one's account links (`people/thirdparty/…`).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Unknown provider, no proof, or a proof the provider refused.
    #[error("social proof refused")]
    InvalidCredentials,
    /// The identity is linked to another user, or the caller has another identity at the provider.
    #[error("already linked")]
    AlreadyLinked,
    /// The provider could not be asked; the text is for the log.
    #[error("social provider unavailable: {0}")]
    ProviderUnavailable(String),
    /// Unlinking needs a fresh token (spec §5.8).
    #[error("reauthentication required")]
    ReauthenticationRequired,
    /// The store is unavailable; try again shortly.
    #[error("busy: {0}")]
    Busy(String),
    /// Anything unexpected; details for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Refusals of finding the portal a request is addressed to.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// No portal answers to the request's host.
    #[error("portal not found")]
    PortalNotFound,
    /// The store is unavailable; try again shortly.
    #[error("busy: {0}")]
    Busy(String),
    /// Anything unexpected; details for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Refusals of the operator's operations.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The operation named a user that does not exist.
    #[error("user not found")]
    UserNotFound,
    /// The operation named a portal that does not exist.
    #[error("portal not found")]
    PortalNotFound,
    /// The change would duplicate a user or a host.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A value the operator gave cannot be used; the text says which and why.
    #[error("{0}")]
    Invalid(String),
    /// The user signs in against a directory: their password is the directory's to change.
    #[error("a directory user's password lives in the directory")]
    DirectoryUser,
    /// The directory could not be asked (spec §5.9).
    #[error("directory unavailable: {0}")]
    DirectoryUnavailable(String),
    /// The store or the hashing pool is unavailable; try again shortly.
    #[error("busy: {0}")]
    Busy(String),
    /// Anything unexpected; details for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What every capability can fail with beside its own refusals: the world did not answer. Helpers shared
/// by several capabilities return it, and each capability's error takes it in.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fault {
    #[error("busy: {0}")]
    Busy(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for Fault {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Fault::Busy(m),
            // A conflict where none is expected (outside the admin's creations) is a broken invariant.
            StoreError::Conflict(m) => Fault::Internal(format!("unexpected conflict: {m}")),
            StoreError::Corrupt(m) => Fault::Internal(m),
        }
    }
}

impl From<HashError> for Fault {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => Fault::Busy("password hashing queue is full".to_owned()),
            HashError::Malformed => Fault::Internal("malformed stored password hash".to_owned()),
            HashError::Failed(m) => Fault::Internal(m),
        }
    }
}

impl From<CryptoError> for Fault {
    fn from(e: CryptoError) -> Self {
        Fault::Internal(e.to_string())
    }
}

/// Gives a capability's error its `Busy`/`Internal` from a [`Fault`] and from the ports' errors.
macro_rules! takes_faults {
    ($($t:ident),*) => {$(
        impl From<Fault> for $t {
            fn from(f: Fault) -> Self {
                match f {
                    Fault::Busy(m) => $t::Busy(m),
                    Fault::Internal(m) => $t::Internal(m),
                }
            }
        }
        impl From<HashError> for $t {
            fn from(e: HashError) -> Self {
                Fault::from(e).into()
            }
        }
        impl From<CryptoError> for $t {
            fn from(e: CryptoError) -> Self {
                Fault::from(e).into()
            }
        }
    )*};
}
takes_faults!(SignInError, SessionError, TfaSettingsError, PortalError, AdminError, LinkError);

/// Store errors, for the capabilities where a conflict is never expected.
macro_rules! takes_store_errors {
    ($($t:ident),*) => {$(
        impl From<StoreError> for $t {
            fn from(e: StoreError) -> Self {
                Fault::from(e).into()
            }
        }
    )*};
}
takes_store_errors!(SignInError, SessionError, TfaSettingsError, PortalError, LinkError);

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => AdminError::Conflict(m),
            other => Fault::from(other).into(),
        }
    }
}
