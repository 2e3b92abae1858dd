//! The administrator's operations, for the CLI and for embedding services: portals, users, resets,
//! and reading the audit trail and the outbox.
//!
//! They skip the credential checks (the caller is the operator) but keep every other rule: passwords are
//! hashed with the same hasher, settings are validated, and each change that must end sessions does
//! (password change, disable, portal 2FA mode change, log out everywhere).

use std::sync::Arc;

use super::{Core, normalize_host};
use crate::audit::{AuditAction, AuditEvent, AuditFilter};
use crate::error::AdminError;
use crate::mail::Notice;
use crate::model::{Credential, Portal, PortalId, PortalSettings, User, UserId};
use crate::ports::{AccountLink, AuditCursor, OutboxMessage, RngExt};
use crate::secret::SecretString;

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// E-mail address (the login).
    pub email: String,
    /// Initial password.
    pub password: SecretString,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Portal administrator.
    pub is_admin: bool,
}

/// Audit events deleted per statement by retention. Each statement holds the store's write lock, so
/// a login's write may wait for one: `cargo xtask bench --retention` measured about 9 ms a statement
/// for 2 000 rows on SQLite (a login's write then waited 8 ms at the median while a million old
/// events went), so a batch is a quarter of that, about 2 ms (docs/PERFORMANCE.md).
pub const AUDIT_PURGE_BATCH: u32 = 500;

/// Outbox messages deleted per statement by retention, for the same reason.
pub const OUTBOX_PURGE_BATCH: u32 = 500;

const PASSWORD_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// The operator's capability.
#[derive(Clone)]
pub struct Admin {
    pub(super) core: Arc<Core>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admin")
    }
}

impl Admin {
    /// The first portal, created as `Default` (serving every host) when there is none. Processes
    /// that start on a fresh database at once (a server and admin commands, or several nodes) all
    /// get the one portal the store let the first of them create.
    pub async fn ensure_default_portal(&self) -> Result<Arc<Portal>, AdminError> {
        let list = self.core.store.list_portals().await?;
        if let Some(p) = list.into_iter().next() {
            return Ok(Arc::new(p));
        }
        let portal = self.new_portal("Default", &[])?;
        let first = self.core.store.insert_first_portal(&portal).await?;
        self.core.forget_portals();
        Ok(Arc::new(first))
    }

    /// Creates a portal with default settings.
    pub async fn add_portal(
        &self,
        name: &str,
        hosts: &[String],
    ) -> Result<Arc<Portal>, AdminError> {
        let portal = self.new_portal(name, hosts)?;
        self.core.store.insert_portal(&portal).await?;
        self.core.forget_portals();
        Ok(Arc::new(portal))
    }

    /// A new portal with default settings, not yet stored.
    fn new_portal(&self, name: &str, hosts: &[String]) -> Result<Portal, AdminError> {
        let hosts: Vec<String> =
            hosts.iter().map(|h| normalize_host(h)).filter(|h| !h.is_empty()).collect();
        let portal = Portal {
            id: PortalId::from_random_bytes(self.core.rng.bytes()),
            name: name.trim().to_owned(),
            hosts,
            settings: PortalSettings::default(),
            created_at: self.core.clock.now(),
            revision: 0,
        };
        if portal.name.is_empty() {
            return Err(AdminError::Invalid("portal name empty".into()));
        }
        Ok(portal)
    }

    /// All portals, oldest first.
    pub async fn list_portals(&self) -> Result<Vec<Portal>, AdminError> {
        Ok(self.core.store.list_portals().await?)
    }

    /// The portal with this host, or the default (first) portal when `host` is `None`.
    pub async fn find_portal(&self, host: Option<&str>) -> Result<Portal, AdminError> {
        let list = self.core.store.list_portals().await?;
        match host {
            None => list.into_iter().next().ok_or(AdminError::PortalNotFound),
            Some(h) => {
                let h = normalize_host(h);
                list.into_iter().find(|p| p.hosts.contains(&h)).ok_or(AdminError::PortalNotFound)
            }
        }
    }

    /// Changes a portal's name, hosts or settings. A change of the 2FA mode revokes every token of the
    /// portal (spec §5.5).
    pub async fn update_portal(&self, portal: &Portal) -> Result<(), AdminError> {
        portal.settings.validate().map_err(|e| AdminError::Invalid(e.to_string()))?;
        let before = self
            .core
            .store
            .list_portals()
            .await?
            .into_iter()
            .find(|p| p.id == portal.id)
            .ok_or(AdminError::PortalNotFound)?;
        let mut portal = portal.clone();
        portal.hosts =
            portal.hosts.iter().map(|h| normalize_host(h)).filter(|h| !h.is_empty()).collect();
        // The store bumps the portal's revision in the same step, so a login that read the old
        // settings gets no token once this returns (spec §5.8); a mode change also ends the tokens.
        let end_tokens = before.settings.tfa != portal.settings.tfa;
        if !self.core.store.update_portal(&portal, end_tokens).await? {
            return Err(AdminError::PortalNotFound);
        }
        self.core.forget_portals();
        Ok(())
    }

    /// Creates a user in `portal`, under the portal's password policy (spec §14).
    pub async fn add_user(&self, portal: PortalId, new: NewUser) -> Result<User, AdminError> {
        self.add_user_with(portal, new, false).await
    }

    /// As [`Admin::add_user`]; `allow_common` is the operator's `--force`, which accepts a common
    /// password (never a short one).
    pub async fn add_user_with(
        &self,
        portal: PortalId,
        new: NewUser,
        allow_common: bool,
    ) -> Result<User, AdminError> {
        let email = new.email.trim().to_owned();
        if email.is_empty() || !email.contains('@') || email.len() > 254 {
            return Err(AdminError::Invalid("a valid e-mail address is required".into()));
        }
        self.check_policy(portal, &new.password, allow_common).await?;
        let credential = Credential::Password(self.core.hasher.hash(&new.password).await?);
        let user = User {
            id: UserId::from_random_bytes(self.core.rng.bytes()),
            portal,
            email,
            first_name: new.first_name.trim().to_owned(),
            last_name: new.last_name.trim().to_owned(),
            is_admin: new.is_admin,
            disabled: false,
            credential,
            phone: None,
            phone_activated: false,
            created_at: self.core.clock.now(),
            revision: 0,
        };
        self.core.store.insert_user(&user).await?;
        Ok(user)
    }

    /// A random password of `len` unambiguous characters, for the first admin.
    pub fn generate_password(&self, len: usize) -> SecretString {
        let n = PASSWORD_ALPHABET.len() as u32;
        SecretString::new(
            (0..len)
                .map(|_| {
                    char::from(
                        PASSWORD_ALPHABET
                            .get(self.core.rng.below(n) as usize)
                            .copied()
                            .unwrap_or(b'x'),
                    )
                })
                .collect::<String>(),
        )
    }

    /// How many users exist.
    pub async fn count_users(&self) -> Result<u64, AdminError> {
        Ok(self.core.store.count_users().await?)
    }

    /// Users of one portal, or of all.
    pub async fn list_users(&self, portal: Option<PortalId>) -> Result<Vec<User>, AdminError> {
        Ok(self.core.store.list_users(portal).await?)
    }

    /// The user with this e-mail in `portal`, or in any portal when `None` (then it must be unique).
    pub async fn find_user(
        &self,
        portal: Option<PortalId>,
        email: &str,
    ) -> Result<User, AdminError> {
        let email = email.trim().to_lowercase();
        if let Some(p) = portal {
            return self.core.store.user_by_email(p, &email).await?.ok_or(AdminError::UserNotFound);
        }
        let mut found = Vec::new();
        for p in self.core.store.list_portals().await? {
            if let Some(u) = self.core.store.user_by_email(p.id, &email).await? {
                found.push(u);
            }
        }
        match found.len() {
            0 => Err(AdminError::UserNotFound),
            1 => found.pop().ok_or(AdminError::UserNotFound),
            _ => Err(AdminError::Conflict(
                "that e-mail exists in several portals; name the portal".into(),
            )),
        }
    }

    /// Disables (and logs out everywhere) or enables a user.
    pub async fn set_disabled(&self, user: UserId, disabled: bool) -> Result<(), AdminError> {
        // Disabling ends the user's tokens, and bumps their revision, in the same store step.
        if !self.core.store.set_disabled(user, disabled).await? {
            return Err(AdminError::UserNotFound);
        }
        let (action, reason) = if disabled {
            (AuditAction::UserDisabled, "disabled by admin; tokens ended")
        } else {
            (AuditAction::UserEnabled, "enabled by admin")
        };
        self.admin_audit_id(user, action, reason).await
    }

    /// Sets a new password (under the portal's password policy) and revokes the user's tokens.
    pub async fn set_password(
        &self,
        user: UserId,
        password: &SecretString,
    ) -> Result<(), AdminError> {
        self.set_password_with(user, password, false).await
    }

    /// As [`Admin::set_password`]; `allow_common` is the operator's `--force`.
    pub async fn set_password_with(
        &self,
        user: UserId,
        password: &SecretString,
        allow_common: bool,
    ) -> Result<(), AdminError> {
        let found = self.core.store.user_by_id(user).await?.ok_or(AdminError::UserNotFound)?;
        if found.directory().is_some() {
            return Err(AdminError::DirectoryUser);
        }
        self.check_policy(found.portal, password, allow_common).await?;
        let hash = self.core.hasher.hash(password).await?;
        // The new hash, the end of every token and the revision bump are one store step, so a
        // login whose password check began before this gets no token (spec §5.8).
        if !self.core.store.set_password_hash(user, &hash).await? {
            return Err(AdminError::UserNotFound);
        }
        self.admin_audit_id(
            user,
            AuditAction::PasswordSetByAdmin,
            "password set by admin; tokens ended",
        )
        .await?;
        Ok(self.core.notify_id(user, Notice::PasswordChanged, None).await?)
    }

    /// Forgets the user's phone and outstanding codes; the next login asks for a number again.
    pub async fn reset_phone(&self, user: &User) -> Result<(), AdminError> {
        self.core.store.set_phone(user.id, None, false).await?;
        self.core.store.burn_sms_codes(user.id).await?;
        // A new number starts with a clean slate, including the daily second-factor lock.
        self.core.store.reset(&crate::throttle::keys::second_factor_day(user.id)).await?;
        self.admin_audit(user, AuditAction::UserUpdatedMobileNumber, "phone reset by admin")
            .await?;
        Ok(self.core.notify_id(user.id, Notice::PhoneChanged, None).await?)
    }

    /// Resets the TOTP app, backup codes and the second-factor lock.
    pub async fn reset_tfa(&self, user: &User) -> Result<(), AdminError> {
        self.core.clear_tfa(user.id).await?;
        self.admin_audit(user, AuditAction::UserDisconnectedTfaApp, "reset by admin").await?;
        Ok(self.core.notify_id(user.id, Notice::TotpReset, None).await?)
    }

    /// Revokes every token of the user.
    pub async fn logout_everywhere(&self, user: UserId) -> Result<u64, AdminError> {
        let ended = self.core.store.revoke_user_tokens(user).await?;
        self.admin_audit_id(
            user,
            AuditAction::LoggedOutEverywhere,
            &format!("{ended} tokens ended"),
        )
        .await?;
        Ok(ended)
    }

    /// Links a social identity to `user` by the provider's subject (`auth-server user link`); false
    /// when that identity is linked already, or the user has a link at that provider.
    pub async fn link(
        &self,
        user: &User,
        provider: &str,
        subject: &str,
    ) -> Result<bool, AdminError> {
        let provider = provider.trim().to_ascii_lowercase();
        let subject = subject.trim();
        if provider.is_empty() || subject.is_empty() {
            return Err(AdminError::Invalid("provider and subject are required".into()));
        }
        let link = AccountLink {
            portal: user.portal,
            provider: provider.clone(),
            subject: subject.to_owned(),
            user: user.id,
            created_at: self.core.clock.now(),
        };
        let stored = self.core.store.insert_link(&link).await?;
        if stored {
            let reason = format!("linked {provider} by admin");
            self.admin_audit(user, AuditAction::SocialAccountLinked, &reason).await?;
        }
        Ok(stored)
    }

    /// Removes `user`'s link at `provider`; false when there was none.
    pub async fn unlink(&self, user: &User, provider: &str) -> Result<bool, AdminError> {
        let provider = provider.trim().to_ascii_lowercase();
        let removed = self.core.store.delete_link(user.id, &provider).await?;
        if removed {
            let reason = format!("unlinked {provider} by admin");
            self.admin_audit(user, AuditAction::SocialAccountUnlinked, &reason).await?;
        }
        Ok(removed)
    }

    /// `user`'s account links, oldest first.
    pub async fn links(&self, user: &User) -> Result<Vec<AccountLink>, AdminError> {
        Ok(self.core.store.links_of(user.id).await?)
    }

    /// [`Admin::admin_audit`] for a user known by id.
    async fn admin_audit_id(
        &self,
        user: UserId,
        action: AuditAction,
        reason: &str,
    ) -> Result<(), AdminError> {
        let found = self.core.store.user_by_id(user).await?.ok_or(AdminError::UserNotFound)?;
        self.admin_audit(&found, action, reason).await
    }

    async fn check_policy(
        &self,
        portal: PortalId,
        password: &SecretString,
        allow_common: bool,
    ) -> Result<(), AdminError> {
        let min = self.core.password_min_length(portal).await?;
        crate::policy::check(password.expose(), min, allow_common)
            .map_err(|v| AdminError::Invalid(v.to_string()))
    }

    pub(super) async fn admin_audit(
        &self,
        user: &User,
        action: AuditAction,
        reason: &str,
    ) -> Result<(), AdminError> {
        let event = AuditEvent {
            at: self.core.clock.now(),
            portal: user.portal,
            user: Some(user.id),
            login: None,
            action,
            ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            user_agent: Some("auth-server admin".to_owned()),
            reason: Some(reason.to_owned()),
        };
        Ok(self.core.store.append_audit(&event).await?)
    }

    /// Housekeeping, for a periodic task: deletes expired tokens, and throttle events and blocks
    /// older than any rule could still need (the longest window + block of every portal's and the
    /// global rules, and at least two days). Returns (tokens, events) deleted.
    pub async fn housekeeping(&self) -> Result<(u64, u64), AdminError> {
        let now = self.core.clock.now();
        let tokens = self.core.store.purge_expired_tokens(now).await?;
        let l = &self.core.limits;
        let mut keep = jiff::SignedDuration::from_hours(48);
        for rule in
            [l.sms_wrong, l.tfa_wrong_per_minute, l.second_factor_daily, l.sms_second_factor_daily]
        {
            keep = keep.max(rule.retention());
        }
        for p in self.core.store.list_portals().await? {
            let s = &p.settings;
            keep = keep
                .max(s.login_throttle.retention())
                .max(s.account_throttle.retention())
                .max(s.sms.resend_cooldown.saturating_mul(2))
                .max(s.sms.setphone_cooldown.saturating_mul(2));
        }
        // Known clients are remembered for weeks (spec §5.1), far longer than any throttle needs its
        // events, so they have a cutoff of their own and the rest can go early.
        let known = jiff::SignedDuration::from_hours(24 * crate::throttle::KNOWN_IP_DAYS);
        let events = self
            .core
            .store
            .purge_counters(crate::later(now, -keep), crate::later(now, -known))
            .await?;
        self.purge_audit().await?;
        // Reset keys past their hour can never work again.
        self.core.store.purge_reset_keys(now).await?;
        self.purge_outbox().await?;
        Ok((tokens, events))
    }

    /// Retention of the outbox (spec §13): deletes the messages older than
    /// `CoreLimits::outbox_retention` that were delivered or given up, in batches of
    /// [`OUTBOX_PURGE_BATCH`]; an unsent message that may still be tried stays, however old.
    /// Returns how many went.
    pub async fn purge_outbox(&self) -> Result<u64, AdminError> {
        let Some(keep) = self.core.limits.outbox_retention else {
            return Ok(0);
        };
        let before = crate::later(self.core.clock.now(), -keep);
        let mut total = 0;
        loop {
            let n = self.core.store.purge_outbox(before, OUTBOX_PURGE_BATCH).await?;
            total += n;
            if n < u64::from(OUTBOX_PURGE_BATCH) {
                return Ok(total);
            }
        }
    }

    /// One page of an audit export (`audit --since --until`): up to `limit` events of the filter
    /// with `since <= at < until`, oldest first, after `after`; each with the cursor to resume from.
    pub async fn audit_page(
        &self,
        filter: &AuditFilter,
        since: jiff::Timestamp,
        until: jiff::Timestamp,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> Result<Vec<(AuditCursor, AuditEvent)>, AdminError> {
        Ok(self.core.store.audit_page(filter, since, until, after, limit).await?)
    }

    /// Retention of the audit trail (spec §13): deletes the events older than
    /// `CoreLimits::audit_retention`, in batches of [`AUDIT_PURGE_BATCH`] (each one short statement,
    /// so logins wait for the write lock only that long); returns how many went.
    pub async fn purge_audit(&self) -> Result<u64, AdminError> {
        let Some(keep) = self.core.limits.audit_retention else {
            return Ok(0);
        };
        let before = crate::later(self.core.clock.now(), -keep);
        let mut total = 0;
        loop {
            let n = self.core.store.purge_audit(before, AUDIT_PURGE_BATCH).await?;
            total += n;
            if n < u64::from(AUDIT_PURGE_BATCH) {
                return Ok(total);
            }
        }
    }

    /// The newest audit events.
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, AdminError> {
        Ok(self.core.store.recent_audit(filter, limit).await?)
    }

    /// The newest outbox messages.
    pub async fn outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, AdminError> {
        Ok(self.core.store.recent_sms(limit).await?)
    }
}
