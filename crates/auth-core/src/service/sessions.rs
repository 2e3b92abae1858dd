//! What the holder of a token does with it: prove it (`GET authentication`, every token-holder
//! endpoint), read their profile (`GET people/@self`), log out, and manage their sessions (spec §13:
//! list their tokens, end one by its public id, end all but this one, end all).
//!
//! # Last used
//!
//! The sessions list shows when each token was last used, but the token lookup of every
//! authenticated request is the hot path (decision 0002) and must not write. So a use is written
//! only when the stored value is older than `CoreLimits::last_used_granularity` (5 minutes by
//! default), and even then not by the request: it goes into a small in-memory batch, which the
//! server writes every few seconds in one transaction ([`Sessions::flush_last_used`]). A busy token
//! costs one write per granularity, a thousand tokens used at once cost one transaction, and no
//! request ever waits for a write. The list is exact to the granularity plus one flush interval,
//! and to the granularity alone in the process that served the use (it merges the unwritten batch);
//! that is plenty to tell "now" from "yesterday". A crash loses at most the unwritten batch, which
//! only makes the list a few minutes staler.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use jiff::Timestamp;

use super::{Core, RequestContext};
use crate::audit::AuditAction;
use crate::error::SessionError;
use crate::model::{Profile, User};
use crate::phone::noise;
use crate::ports::TokenRecord;
use crate::token;

/// Token uses held in memory at most; beyond it a use is not queued (the stored value stays stale,
/// so the token's next use queues it again once the batch has been written).
const MAX_PENDING_TOUCHES: usize = 65_536;

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
    /// The token's public id (what the sessions list calls it).
    pub token_id: i64,
}

/// One of the caller's sessions as `GET security/activeconnections` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveSession {
    /// The token's public id (never its hash: nothing here derives or proves the token).
    pub id: i64,
    /// When the login issued it.
    pub issued_at: Timestamp,
    /// When it was last used (coalesced; see the module comment). The caller's own token is being
    /// used right now.
    pub last_used_at: Timestamp,
    /// When it stops being accepted.
    pub expires_at: Timestamp,
    /// The client address of that login, when known.
    pub client_ip: Option<IpAddr>,
    /// The `User-Agent` of that login, truncated.
    pub user_agent: Option<String>,
    /// Whether this is the token the request presented.
    pub current: bool,
}

/// The caller's live sessions: their own first, then the others newest first (upstream's order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveSessions {
    /// The id of the token the request presented.
    pub current: i64,
    /// Every live token of the caller.
    pub items: Vec<ActiveSession>,
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
        self.note_use(&record);
        Ok(Session {
            user,
            token_hash: hash,
            expires: record.expires_at,
            issued_at: record.issued_at,
            token_id: record.id,
        })
    }

    /// Queues a use of the token for [`Sessions::flush_last_used`] when its stored "last used" is
    /// older than the granularity. Nothing is locked or written otherwise, so the common request
    /// costs one comparison.
    fn note_use(&self, record: &TokenRecord) {
        let now = self.core.clock.now();
        if now.duration_since(record.last_used_at) < self.core.limits.last_used_granularity {
            return;
        }
        if let Ok(mut pending) = self.core.touches.lock()
            && (pending.len() < MAX_PENDING_TOUCHES || pending.contains_key(&record.hash))
        {
            let at = pending.entry(record.hash).or_insert(now);
            *at = (*at).max(now);
        }
    }

    /// Writes the queued token uses to the store in one batch (the server calls this every few
    /// seconds and at shutdown); returns how many tokens changed. On a store failure the batch is
    /// put back, so the next call writes it.
    pub async fn flush_last_used(&self) -> Result<u64, SessionError> {
        let batch: Vec<([u8; 32], Timestamp)> = match self.core.touches.lock() {
            Ok(mut pending) => pending.drain().collect(),
            Err(_) => return Err(SessionError::Internal("the last-used batch is poisoned".into())),
        };
        if batch.is_empty() {
            return Ok(0);
        }
        match self.core.store.touch_tokens(&batch).await {
            Ok(n) => Ok(n),
            Err(e) => {
                if let Ok(mut pending) = self.core.touches.lock() {
                    for (hash, at) in batch {
                        if pending.len() >= MAX_PENDING_TOUCHES {
                            break;
                        }
                        let kept = pending.entry(hash).or_insert(at);
                        *kept = (*kept).max(at);
                    }
                }
                Err(e.into())
            }
        }
    }

    /// `GET security/activeconnections`: the caller's live tokens.
    pub async fn active_sessions(&self, session: &Session) -> Result<ActiveSessions, SessionError> {
        let now = self.core.clock.now();
        let tokens = self.core.store.tokens_of_user(session.user.id).await?;
        let pending: HashMap<[u8; 32], Timestamp> = match self.core.touches.lock() {
            Ok(p) => tokens.iter().filter_map(|t| p.get(&t.hash).map(|at| (t.hash, *at))).collect(),
            Err(_) => HashMap::new(),
        };
        let mut items: Vec<ActiveSession> = tokens
            .into_iter()
            .filter(|t| t.expires_at > now && t.portal == session.user.portal)
            .map(|t| {
                let current = t.hash == session.token_hash;
                let mut last_used_at =
                    t.last_used_at.max(pending.get(&t.hash).copied().unwrap_or(t.last_used_at));
                if current {
                    last_used_at = last_used_at.max(now);
                }
                ActiveSession {
                    id: t.id,
                    issued_at: t.issued_at,
                    last_used_at,
                    expires_at: t.expires_at,
                    client_ip: t.client_ip,
                    user_agent: t.user_agent,
                    current,
                }
            })
            .collect();
        // The caller's own session first, as upstream lists it, then the newest logins.
        items.sort_by(|a, b| {
            b.current.cmp(&a.current).then(b.issued_at.cmp(&a.issued_at)).then(b.id.cmp(&a.id))
        });
        Ok(ActiveSessions { current: session.token_id, items })
    }

    /// `PUT security/activeconnections/logout/{id}`: ends the caller's token with this public id.
    /// False (and nothing changed) when the caller has no such token, which is also the answer for
    /// another user's id: nobody can end, or learn of, someone else's session this way.
    pub async fn end_session(
        &self,
        ctx: &RequestContext,
        session: &Session,
        id: i64,
    ) -> Result<bool, SessionError> {
        if !self.core.store.revoke_user_token(session.user.id, id).await? {
            return Ok(false);
        }
        let reason = format!("session {id}");
        self.core
            .audit(
                ctx,
                Some(session.user.id),
                None,
                AuditAction::UserLogoutActiveConnection,
                Some(&reason),
            )
            .await?;
        Ok(true)
    }

    /// `PUT security/activeconnections/logoutallexceptthis`: ends every token of the caller but the
    /// one presented (and bumps the user's revision, so a login in flight gets no token either);
    /// returns how many ended.
    pub async fn end_other_sessions(
        &self,
        ctx: &RequestContext,
        session: &Session,
    ) -> Result<u64, SessionError> {
        let user = session.user.id;
        let n = self.core.store.revoke_user_tokens_except(user, &session.token_hash).await?;
        let reason = format!("all but this session: {n} ended");
        self.core
            .audit(ctx, Some(user), None, AuditAction::UserLogoutActiveConnections, Some(&reason))
            .await?;
        Ok(n)
    }

    /// `PUT security/activeconnections/logoutall`: ends every token of the caller, the presented
    /// one included; returns how many ended.
    pub async fn end_all_sessions(
        &self,
        ctx: &RequestContext,
        session: &Session,
    ) -> Result<u64, SessionError> {
        let user = session.user.id;
        let n = self.core.store.revoke_user_tokens(user).await?;
        let reason = format!("all sessions: {n} ended");
        self.core
            .audit(ctx, Some(user), None, AuditAction::UserLogoutActiveConnections, Some(&reason))
            .await?;
        Ok(n)
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
