//! The token holder's own account: changing one's password (`PUT people/@self/password`, spec §14).
//!
//! A password change needs a fresh token (spec §5.8) *and* the current password: a stolen token alone
//! must not be able to lock the owner out. Wrong current passwords count against the same login
//! throttle as step 1, so the endpoint is no way around it. The new password passes the portal's
//! policy; the change ends every other token of the user, and the caller's token stays.

use std::sync::Arc;

use super::sessions::Session;
use super::{Core, Password, RequestContext};
use crate::audit::AuditAction;
use crate::error::Fault;
use crate::mail::Notice;
use crate::model::Credential;
use crate::policy::PolicyViolation;
use crate::secret::SecretString;
use crate::throttle::keys;

/// Refusals of managing one's account.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The current password is wrong (or the user has none here).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The change needs a fresh token (spec §5.8).
    #[error("reauthentication required")]
    ReauthenticationRequired,
    /// The new password breaks the portal's policy; the text says which rule.
    #[error("{0}")]
    WeakPassword(PolicyViolation),
    /// A directory user's password is the directory's to change.
    #[error("a directory user's password lives in the directory")]
    DirectoryUser,
    /// Too many wrong current passwords; retry after this.
    #[error("too many attempts")]
    Throttled {
        /// When it may be tried again.
        until: jiff::Timestamp,
    },
    /// The store or the hashing pool is unavailable; try again shortly.
    #[error("busy: {0}")]
    Busy(String),
    /// Anything unexpected; details for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Fault> for AccountError {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Busy(m) => AccountError::Busy(m),
            Fault::Internal(m) => AccountError::Internal(m),
        }
    }
}

impl From<crate::ports::StoreError> for AccountError {
    fn from(e: crate::ports::StoreError) -> Self {
        Fault::from(e).into()
    }
}

impl From<crate::password::HashError> for AccountError {
    fn from(e: crate::password::HashError) -> Self {
        Fault::from(e).into()
    }
}

/// The account capability.
#[derive(Clone)]
pub struct Account {
    pub(super) core: Arc<Core>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Account")
    }
}

impl Account {
    /// Changes the caller's password (spec §14).
    pub async fn change_password(
        &self,
        ctx: &RequestContext,
        session: &Session,
        current: &Password,
        new: &SecretString,
    ) -> Result<(), AccountError> {
        let c = &self.core;
        let now = c.clock.now();
        if now.duration_since(session.issued_at) > c.limits.fresh_token || now < session.issued_at {
            return Err(AccountError::ReauthenticationRequired);
        }
        let user = &session.user;
        if user.directory().is_some() {
            return Err(AccountError::DirectoryUser);
        }
        crate::policy::check(new.expose(), ctx.portal.settings.password_min_length, false)
            .map_err(AccountError::WeakPassword)?;
        let key = keys::login(ctx.portal.id, &c.account_key(Some(user), ""), ctx.client_ip);
        let slot = match c.acquire(&key, &ctx.portal.settings.login_throttle).await? {
            Ok(slot) => slot,
            Err(until) => {
                c.observer.throttled(crate::observe::ThrottleRule::PasswordChange);
                return Err(AccountError::Throttled { until });
            }
        };
        let pw = current.secret();
        let verified = match &user.credential {
            Credential::Password(h) => c.hasher.verify(pw, h).await,
            Credential::Upstream(h) => match c.upstream_realm(h.realm()).await? {
                Some(realm) => c.hasher.verify_upstream(pw, h, &realm).await,
                None => c.hasher.verify(pw, &c.hasher.dummy_hash()).await.map(|_| false),
            },
            Credential::Directory(_) | Credential::None => {
                c.hasher.verify(pw, &c.hasher.dummy_hash()).await.map(|_| false)
            }
        };
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                // A busy hasher says nothing about the password: the attempt must not count.
                c.store.release(slot).await?;
                return Err(e.into());
            }
        };
        if !verified {
            let why = Some("password change: wrong current password");
            c.audit(ctx, Some(user.id), None, AuditAction::LoginFailViaApi, why).await?;
            return Err(AccountError::InvalidCredentials);
        }
        c.store.release(slot).await?;
        let hash = c.hasher.hash(new).await?;
        if !c.store.set_password_hash_keeping(user.id, &hash, &session.token_hash).await? {
            return Err(AccountError::Internal(
                "the user vanished during a password change".into(),
            ));
        }
        let why = Some("changed by the user; other tokens ended");
        c.audit(ctx, Some(user.id), None, AuditAction::PasswordChanged, why).await?;
        c.notify(&ctx.portal, user, Notice::PasswordChanged, Some(ctx)).await?;
        Ok(())
    }
}
