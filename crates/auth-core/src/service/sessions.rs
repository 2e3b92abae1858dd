//! What the holder of a token does with it: prove it (`GET authentication`, every token-holder
//! endpoint), read their profile (`GET people/@self`) and log out.

use std::sync::Arc;

use jiff::Timestamp;

use super::{Core, RequestContext};
use crate::audit::AuditAction;
use crate::error::SessionError;
use crate::model::{Profile, User};
use crate::phone::noise;
use crate::token;

/// A valid token's holder.
#[derive(Clone, Debug)]
pub struct Session {
    /// The user.
    pub user: User,
    /// The token's hash (for logout).
    pub token_hash: [u8; 32],
    /// When the token expires.
    pub expires: Timestamp,
    /// When the token was issued (a token is *fresh* for a while after, spec §5.8).
    pub issued_at: Timestamp,
}

/// The token holder's capability.
#[derive(Clone)]
pub struct Sessions {
    pub(super) core: Arc<Core>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions")
    }
}

impl Sessions {
    /// The holder of a token presented to `ctx.portal`, or `Unauthorized`.
    pub async fn authenticate(
        &self,
        ctx: &RequestContext,
        token_text: &str,
    ) -> Result<Session, SessionError> {
        // A malformed token cannot exist in the store; refusing it early saves a lookup.
        if token::decode(token_text).is_none() {
            return Err(SessionError::Unauthorized);
        }
        let hash = token::hash(token_text);
        let (record, user) = self
            .core
            .store
            .session_by_token_hash(&hash)
            .await?
            .ok_or(SessionError::Unauthorized)?;
        if record.expires_at <= self.core.clock.now()
            || record.portal != ctx.portal.id
            || user.disabled
        {
            return Err(SessionError::Unauthorized);
        }
        Ok(Session {
            user,
            token_hash: hash,
            expires: record.expires_at,
            issued_at: record.issued_at,
        })
    }

    /// `POST authentication/logout`: revokes the presented token.
    pub async fn logout(
        &self,
        ctx: &RequestContext,
        session: &Session,
    ) -> Result<(), SessionError> {
        self.core.store.revoke_token(&session.token_hash).await?;
        Ok(self.core.audit(ctx, Some(session.user.id), None, AuditAction::Logout, None).await?)
    }

    /// `GET people/@self`.
    pub fn profile(&self, session: &Session) -> Profile {
        let u = &session.user;
        let display = format!("{} {}", u.first_name, u.last_name).trim().to_owned();
        Profile {
            id: u.id,
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            display_name: if display.is_empty() { u.email.clone() } else { display },
            phone_noise: u.phone.as_deref().map(noise),
            phone_activated: u.phone_activated,
            is_admin: u.is_admin,
        }
    }
}
