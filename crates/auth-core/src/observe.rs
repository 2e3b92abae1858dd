//! The observer port: what the sign-in paths tell the outside about logins and throttles, for metrics.
//!
//! The core decides which factor a login was checked with and which throttle rule refused it; only it
//! can say so without guessing from an answer. It says so through [`Observer`], a synchronous port
//! whose methods do nothing by default, so a service without metrics needs no adapter, and the
//! metrics crate stays out of the core (auth-server implements the port with prometheus-client).
//!
//! Every label is a closed enum with a fixed text form: the observer never sees a login, an address,
//! a code or any other value a client chose, so neither secrets nor unbounded label sets can reach a
//! metrics backend. It does not see portals either: a per-portal series would grow with the portals.

/// What a login was checked with: the first step's credential, or the second factor of step 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Factor {
    /// A local password (argon2id, or an imported upstream hash).
    Password,
    /// An identity at a social provider.
    Social,
    /// A bind at an LDAP / Active Directory directory (spec §5.9).
    Directory,
    /// An SMS code (step 2).
    Sms,
    /// A TOTP authenticator code (step 2).
    Totp,
    /// A backup code (step 2).
    Backup,
}

impl Factor {
    /// Every factor, in label order.
    pub const ALL: [Factor; 6] = [
        Factor::Password,
        Factor::Social,
        Factor::Directory,
        Factor::Sms,
        Factor::Totp,
        Factor::Backup,
    ];

    /// The label text.
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Password => "password",
            Factor::Social => "social",
            Factor::Directory => "directory",
            Factor::Sms => "sms",
            Factor::Totp => "totp",
            Factor::Backup => "backup",
        }
    }
}

/// How a login step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoginResult {
    /// A token was issued.
    Ok,
    /// The first step passed and a second factor is now needed.
    TfaRequired,
    /// Refused as `InvalidCredentials`: unknown user, wrong password or code, disabled user, …
    Invalid,
    /// A throttle or lock refused the attempt (the rule is reported through [`Observer::throttled`]).
    Throttled,
    /// The hashing pool was full; the client is told to come back.
    Busy,
    /// A social provider or directory could not be asked.
    Unavailable,
    /// Anything else went wrong (the store, an internal error).
    Error,
}

impl LoginResult {
    /// Every result, in label order.
    pub const ALL: [LoginResult; 7] = [
        LoginResult::Ok,
        LoginResult::TfaRequired,
        LoginResult::Invalid,
        LoginResult::Throttled,
        LoginResult::Busy,
        LoginResult::Unavailable,
        LoginResult::Error,
    ];

    /// The label text.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginResult::Ok => "ok",
            LoginResult::TfaRequired => "tfa_required",
            LoginResult::Invalid => "invalid",
            LoginResult::Throttled => "throttled",
            LoginResult::Busy => "busy",
            LoginResult::Unavailable => "unavailable",
            LoginResult::Error => "error",
        }
    }
}

/// A throttle rule that refused a request (spec §5.1–§5.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThrottleRule {
    /// The login throttle per account and client address.
    Login,
    /// The per-account limit across addresses, for a client that is not known.
    Account,
    /// Failed social logins per client address.
    Social,
    /// The resend cool-down of `sendsms`.
    SmsResendCooldown,
    /// SMS sends per phone per day.
    SmsPerPhone,
    /// SMS sends per user per day.
    SmsPerUser,
    /// SMS sends per client address per hour.
    SmsPerIp,
    /// The portal's daily SMS budget.
    SmsPortalBudget,
    /// The cool-down between two `setphone` calls.
    SetphoneCooldown,
    /// Wrong SMS codes per phone.
    SmsWrong,
    /// Wrong TOTP or backup codes per user per minute.
    TfaWrong,
    /// The daily second-factor lock.
    SecondFactorDaily,
    /// The login throttle applied to a password change's current password.
    PasswordChange,
}

impl ThrottleRule {
    /// Every rule, in label order.
    pub const ALL: [ThrottleRule; 13] = [
        ThrottleRule::Login,
        ThrottleRule::Account,
        ThrottleRule::Social,
        ThrottleRule::SmsResendCooldown,
        ThrottleRule::SmsPerPhone,
        ThrottleRule::SmsPerUser,
        ThrottleRule::SmsPerIp,
        ThrottleRule::SmsPortalBudget,
        ThrottleRule::SetphoneCooldown,
        ThrottleRule::SmsWrong,
        ThrottleRule::TfaWrong,
        ThrottleRule::SecondFactorDaily,
        ThrottleRule::PasswordChange,
    ];

    /// The label text.
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleRule::Login => "login",
            ThrottleRule::Account => "account",
            ThrottleRule::Social => "social",
            ThrottleRule::SmsResendCooldown => "sms_resend_cooldown",
            ThrottleRule::SmsPerPhone => "sms_per_phone",
            ThrottleRule::SmsPerUser => "sms_per_user",
            ThrottleRule::SmsPerIp => "sms_per_ip",
            ThrottleRule::SmsPortalBudget => "sms_portal_budget",
            ThrottleRule::SetphoneCooldown => "setphone_cooldown",
            ThrottleRule::SmsWrong => "sms_wrong",
            ThrottleRule::TfaWrong => "tfa_wrong",
            ThrottleRule::SecondFactorDaily => "second_factor_daily",
            ThrottleRule::PasswordChange => "password_change",
        }
    }
}

/// Told about every login step and every throttle refusal.
///
/// Called on the request's task, in the middle of the sign-in path: an implementation MUST be cheap
/// and MUST NOT block (an atomic increment, not I/O). Both methods do nothing by default.
pub trait Observer: Send + Sync {
    /// One first step (`POST authentication`) or second step (`POST authentication/{code}`) ended.
    /// `setphone` and `sendsms` are not logins and are not reported here; their throttles are.
    fn login(&self, factor: Factor, result: LoginResult) {
        let _ = (factor, result);
    }

    /// `rule` refused a request.
    fn throttled(&self, rule: ThrottleRule) {
        let _ = rule;
    }
}

/// The observer of a service without metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Label texts are what dashboards and alerts match on: they must be unique, and in the
    /// Prometheus label-value alphabet we promise in docs/metrics.md.
    #[test]
    fn label_texts_are_unique_snake_case() {
        fn check(texts: &[&str]) {
            let mut seen = std::collections::HashSet::new();
            for t in texts {
                assert!(seen.insert(*t), "{t} twice");
                assert!(t.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{t}");
            }
        }
        check(&Factor::ALL.map(Factor::as_str));
        check(&LoginResult::ALL.map(LoginResult::as_str));
        check(&ThrottleRule::ALL.map(ThrottleRule::as_str));
    }
}
