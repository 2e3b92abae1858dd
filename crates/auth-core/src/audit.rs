//! The audit trail: what happened, to whom, from where, with the upstream action codes (spec §7) and,
//! where upstream has none, codes of our own from 9001 on (listed in `docs/SECURITY.md`).
//!
//! An event never carries a password, code or token; `reason` says why a login failed in words an
//! operator can act on ("wrong password", "unknown user"), which the client never sees.

use std::net::IpAddr;

use jiff::Timestamp;

use crate::ids::{PortalId, UserId};

/// The audited actions, with the upstream `MessageAction` numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// `LoginSuccessViaApi` (1010): token issued without a second factor.
    LoginSuccessViaApi,
    /// `LoginFailViaApi` (1013): credentials refused.
    LoginFailViaApi,
    /// `LoginFailBruteForce` (1023): refused by the login throttle.
    LoginFailBruteForce,
    /// `LoginSuccessViaApiSms` (1012): token issued after an SMS code.
    LoginSuccessViaApiSms,
    /// `LoginSuccessViaApiTfa` (1024): token issued after a TOTP or backup code.
    LoginSuccessViaApiTfa,
    /// `LoginFailViaApiSms` (1014): wrong SMS code.
    LoginFailViaApiSms,
    /// `LoginFailViaApiTfa` (1025): wrong TOTP or backup code.
    LoginFailViaApiTfa,
    /// `UserUpdatedMobileNumber` (4029): phone stored, activated or reset.
    UserUpdatedMobileNumber,
    /// `UserConnectedTfaApp` (4032): TOTP app activated.
    UserConnectedTfaApp,
    /// `UserDisconnectedTfaApp` (4033): TOTP app reset.
    UserDisconnectedTfaApp,
    /// `Logout` (1006).
    Logout,
    /// `LoginSuccessViaApiSocialAccount` (1019): token issued for a social identity.
    LoginSuccessViaApiSocialAccount,
    /// `LoginFailViaApiSocialAccount` (1020): a social proof or identity refused.
    LoginFailViaApiSocialAccount,
    /// Ours (9007): the user linked a social identity.
    SocialAccountLinked,
    /// Ours (9008): the user (or an admin) removed a social link.
    SocialAccountUnlinked,
    /// Ours (9001): an SMS send refused by a send limit (spec §5.3), so SMS pumping shows in the trail.
    SmsSendRefused,
    /// Ours (9002): the operator disabled the user (and so ended their tokens).
    UserDisabled,
    /// Ours (9003): the operator enabled the user again.
    UserEnabled,
    /// Ours (9004): the operator set a new password (and so ended the user's tokens).
    PasswordSetByAdmin,
    /// Ours (9005): every token of the user was ended ("log out everywhere").
    LoggedOutEverywhere,
    /// Ours (9006): the user replaced their backup codes (`PUT settings/tfaappnewcodes`).
    BackupCodesRegenerated,
    /// Ours (9009): a directory login or `ldap sync` created the local user (spec §5.9).
    DirectoryUserCreated,
    /// Ours (9010): a directory login or `ldap sync` updated the local user from the directory.
    DirectoryUserUpdated,
    /// Ours (9011): a user's password hash was replaced by argon2id with the configured parameters
    /// at a successful login (an imported upstream hash, or outdated parameters; spec §5.1).
    PasswordRehashed,
    /// Ours (9013): the user changed their own password (`PUT people/@self/password`).
    PasswordChanged,
    /// `UserLogoutActiveConnections` (4034): the user ended their other sessions, or all of them
    /// (`PUT security/activeconnections/logoutallexceptthis` and `…/logoutall`).
    UserLogoutActiveConnections,
    /// `UserLogoutActiveConnection` (4035): the user ended one of their sessions by its id
    /// (`PUT security/activeconnections/logout/{id}`).
    UserLogoutActiveConnection,
    /// Ours (9012): the outbox gave up an SMS for good (the provider refused that message, or it
    /// could not be sent before its code expired long ago; spec §12), so a lost code shows in the trail.
    SmsUndeliverable,
    /// Ours (9020): someone asked for a password-reset mail (spec §14); `login` names the typed address, and
    /// nothing says whether it belongs to anyone.
    PasswordResetRequested,
    /// Ours (9021): a password was set through a reset link; every token of the user ended.
    PasswordReset,
    /// Ours (9022): the outbox gave up an e-mail for good.
    MailUndeliverable,
}

impl AuditAction {
    /// Every action, in code order.
    pub const ALL: [AuditAction; 31] = [
        AuditAction::Logout,
        AuditAction::LoginSuccessViaApi,
        AuditAction::LoginSuccessViaApiSms,
        AuditAction::LoginFailViaApi,
        AuditAction::LoginFailViaApiSms,
        AuditAction::LoginFailBruteForce,
        AuditAction::LoginSuccessViaApiTfa,
        AuditAction::LoginFailViaApiTfa,
        AuditAction::UserUpdatedMobileNumber,
        AuditAction::UserConnectedTfaApp,
        AuditAction::UserDisconnectedTfaApp,
        AuditAction::UserLogoutActiveConnections,
        AuditAction::UserLogoutActiveConnection,
        AuditAction::SmsSendRefused,
        AuditAction::UserDisabled,
        AuditAction::UserEnabled,
        AuditAction::PasswordSetByAdmin,
        AuditAction::LoggedOutEverywhere,
        AuditAction::BackupCodesRegenerated,
        AuditAction::LoginSuccessViaApiSocialAccount,
        AuditAction::LoginFailViaApiSocialAccount,
        AuditAction::SocialAccountLinked,
        AuditAction::SocialAccountUnlinked,
        AuditAction::DirectoryUserCreated,
        AuditAction::DirectoryUserUpdated,
        AuditAction::PasswordRehashed,
        AuditAction::SmsUndeliverable,
        AuditAction::PasswordChanged,
        AuditAction::PasswordResetRequested,
        AuditAction::PasswordReset,
        AuditAction::MailUndeliverable,
    ];

    /// The upstream number.
    pub fn code(self) -> u32 {
        match self {
            AuditAction::LoginSuccessViaApi => 1010,
            AuditAction::LoginFailViaApi => 1013,
            AuditAction::LoginFailBruteForce => 1023,
            AuditAction::LoginSuccessViaApiSms => 1012,
            AuditAction::LoginSuccessViaApiTfa => 1024,
            AuditAction::LoginFailViaApiSms => 1014,
            AuditAction::LoginFailViaApiTfa => 1025,
            AuditAction::UserUpdatedMobileNumber => 4029,
            AuditAction::UserConnectedTfaApp => 4032,
            AuditAction::UserDisconnectedTfaApp => 4033,
            AuditAction::Logout => 1006,
            AuditAction::UserLogoutActiveConnections => 4034,
            AuditAction::UserLogoutActiveConnection => 4035,
            AuditAction::SmsSendRefused => 9001,
            AuditAction::UserDisabled => 9002,
            AuditAction::UserEnabled => 9003,
            AuditAction::PasswordSetByAdmin => 9004,
            AuditAction::LoggedOutEverywhere => 9005,
            AuditAction::BackupCodesRegenerated => 9006,
            AuditAction::LoginSuccessViaApiSocialAccount => 1019,
            AuditAction::LoginFailViaApiSocialAccount => 1020,
            AuditAction::SocialAccountLinked => 9007,
            AuditAction::SocialAccountUnlinked => 9008,
            AuditAction::DirectoryUserCreated => 9009,
            AuditAction::DirectoryUserUpdated => 9010,
            AuditAction::PasswordRehashed => 9011,
            AuditAction::PasswordChanged => 9013,
            AuditAction::SmsUndeliverable => 9012,
            AuditAction::PasswordResetRequested => 9020,
            AuditAction::PasswordReset => 9021,
            AuditAction::MailUndeliverable => 9022,
        }
    }

    /// The upstream name.
    pub fn name(self) -> &'static str {
        match self {
            AuditAction::LoginSuccessViaApi => "LoginSuccessViaApi",
            AuditAction::LoginFailViaApi => "LoginFailViaApi",
            AuditAction::LoginFailBruteForce => "LoginFailBruteForce",
            AuditAction::LoginSuccessViaApiSms => "LoginSuccessViaApiSms",
            AuditAction::LoginSuccessViaApiTfa => "LoginSuccessViaApiTfa",
            AuditAction::LoginFailViaApiSms => "LoginFailViaApiSms",
            AuditAction::LoginFailViaApiTfa => "LoginFailViaApiTfa",
            AuditAction::UserUpdatedMobileNumber => "UserUpdatedMobileNumber",
            AuditAction::UserConnectedTfaApp => "UserConnectedTfaApp",
            AuditAction::UserDisconnectedTfaApp => "UserDisconnectedTfaApp",
            AuditAction::Logout => "Logout",
            AuditAction::UserLogoutActiveConnections => "UserLogoutActiveConnections",
            AuditAction::UserLogoutActiveConnection => "UserLogoutActiveConnection",
            AuditAction::SmsSendRefused => "SmsSendRefused",
            AuditAction::UserDisabled => "UserDisabled",
            AuditAction::UserEnabled => "UserEnabled",
            AuditAction::PasswordSetByAdmin => "PasswordSetByAdmin",
            AuditAction::LoggedOutEverywhere => "LoggedOutEverywhere",
            AuditAction::BackupCodesRegenerated => "BackupCodesRegenerated",
            AuditAction::LoginSuccessViaApiSocialAccount => "LoginSuccessViaApiSocialAccount",
            AuditAction::LoginFailViaApiSocialAccount => "LoginFailViaApiSocialAccount",
            AuditAction::SocialAccountLinked => "SocialAccountLinked",
            AuditAction::SocialAccountUnlinked => "SocialAccountUnlinked",
            AuditAction::DirectoryUserCreated => "DirectoryUserCreated",
            AuditAction::DirectoryUserUpdated => "DirectoryUserUpdated",
            AuditAction::PasswordRehashed => "PasswordRehashed",
            AuditAction::PasswordChanged => "PasswordChanged",
            AuditAction::SmsUndeliverable => "SmsUndeliverable",
            AuditAction::PasswordResetRequested => "PasswordResetRequested",
            AuditAction::PasswordReset => "PasswordReset",
            AuditAction::MailUndeliverable => "MailUndeliverable",
        }
    }

    /// The action with this upstream number.
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.code() == code)
    }
}

/// One audited event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// When.
    pub at: Timestamp,
    /// Which portal.
    pub portal: PortalId,
    /// Which user, when known.
    pub user: Option<UserId>,
    /// The login name as typed, when no user was found (lower-cased, truncated).
    pub login: Option<String>,
    /// What.
    pub action: AuditAction,
    /// The client's IP.
    pub ip: IpAddr,
    /// The client's `User-Agent` (truncated).
    pub user_agent: Option<String>,
    /// Why, for failures (never a secret).
    pub reason: Option<String>,
}

/// Which events to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this portal.
    pub portal: Option<PortalId>,
    /// Only this user.
    pub user: Option<UserId>,
    /// Only this action.
    pub action: Option<AuditAction>,
}

impl AuditFilter {
    /// Whether an event passes.
    pub fn matches(&self, e: &AuditEvent) -> bool {
        self.portal.is_none_or(|p| p == e.portal)
            && self.user.is_none_or(|u| Some(u) == e.user)
            && self.action.is_none_or(|a| a == e.action)
    }
}
