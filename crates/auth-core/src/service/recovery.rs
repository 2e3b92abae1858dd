//! Account recovery and security notices by e-mail (spec §14): `POST people/password` (a reset
//! mail), `PUT people/password` (a new password with the mail's key), the e-mail channel's worker,
//! and the notices the other capabilities mail.
//!
//! **No enumeration.** A reset request costs the same whether or not the address belongs to anyone:
//! the two limits, then one enqueue of a sealed job naming only the typed address. Its answer is the
//! same too. The worker, later and off the request, looks the address up; only a live local user gets
//! a key and a link, a directory user gets a mail saying to use the directory's reset, and anyone
//! else gets nothing.
//!
//! **Keys.** 256 random bits, mailed once and stored only as a keyed hash with the user's revision
//! at the time; taking one deletes it in the same statement (single use), and it works for an hour,
//! on its portal, while the user's revision has not moved. Setting the password bumps the revision
//! and ends every token of the user in one store transaction, so the mail's other keys die with the
//! old password.

use std::sync::Arc;

use jiff::Timestamp;

use super::{Core, RequestContext};
use crate::audit::{AuditAction, AuditEvent};
use crate::crypto::KeyContext;
use crate::error::Fault;
use crate::later;
use crate::mail::{self, MailJob, Notice, NoticeDetails, Rendered};
use crate::model::{Portal, User, UserId};
use crate::outbox::{
    Courier, DeliveryReport, Handed, Prepared, RetryPolicy, deliver_round, undeliverable_event,
    unseal,
};
use crate::policy::PolicyViolation;
use crate::ports::{
    Channel, MailError, MailMessage, Mailer, NewOutboxMessage, OutboxMessage, ResetKey, StoreError,
};
use crate::primitives::RngExt;
use crate::secret::SecretString;
use crate::throttle::{Rule, keys};
use crate::token;

/// Refusals of account recovery.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The server has no mailer configured, so it cannot send a reset mail.
    #[error("password recovery by e-mail is not configured")]
    NotAvailable,
    /// The value given as an e-mail address cannot be one.
    #[error("not an e-mail address")]
    InvalidEmail,
    /// This client asked for too many reset mails; retry after this.
    #[error("too many requests")]
    Throttled {
        /// When it may be tried again.
        until: Timestamp,
    },
    /// The key is unknown, used, expired, for another portal, or outlived a newer change.
    #[error("the reset link is not valid (used, expired or unknown)")]
    InvalidKey,
    /// The new password breaks the portal's policy; the text says which rule.
    #[error("{0}")]
    WeakPassword(PolicyViolation),
    /// A directory user's password is the directory's to change.
    #[error("a directory user's password lives in the directory")]
    DirectoryUser,
    /// The store or the hashing pool is unavailable; try again shortly.
    #[error("busy: {0}")]
    Busy(String),
    /// Anything unexpected; details for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Fault> for RecoveryError {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Busy(m) => RecoveryError::Busy(m),
            Fault::Internal(m) => RecoveryError::Internal(m),
        }
    }
}

impl From<StoreError> for RecoveryError {
    fn from(e: StoreError) -> Self {
        Fault::from(e).into()
    }
}

impl From<crate::password::HashError> for RecoveryError {
    fn from(e: crate::password::HashError) -> Self {
        Fault::from(e).into()
    }
}

/// The recovery capability.
#[derive(Clone)]
pub struct Recovery {
    pub(super) core: Arc<Core>,
}

impl std::fmt::Debug for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recovery")
    }
}

/// The longest address accepted (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;

fn plausible_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && s.len() <= MAX_EMAIL
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

impl Recovery {
    /// Asks for a reset mail to `email` (spec §14). Answers the same whether or not anyone has the
    /// address; only the client's own rate and a malformed address are refused.
    pub async fn request_reset(
        &self,
        ctx: &RequestContext,
        email: &str,
    ) -> Result<(), RecoveryError> {
        let c = &self.core;
        let Some(settings) = &c.limits.mail else {
            return Err(RecoveryError::NotAvailable);
        };
        let email = email.trim().to_lowercase();
        if !plausible_email(&email) {
            return Err(RecoveryError::InvalidEmail);
        }
        let portal = ctx.portal.id;
        let ip_key = keys::reset_ip(portal, ctx.client_ip);
        if let Err(until) = c.acquire(&ip_key, &settings.per_ip).await? {
            return Err(RecoveryError::Throttled { until });
        }
        // The address's limit is counted without looking the address up, so it says nothing about
        // an account; once reached the request is answered as usual and nothing is sent, so nobody
        // can fill a mailbox and the sender learns nothing.
        let address_key = keys::reset_address(portal, &c.account_key(None, &email));
        let within = c.acquire(&address_key, &settings.per_address).await?.is_ok();
        let reason = if within {
            c.enqueue_mail_job(portal, &email, &MailJob::Reset { email: email.clone() }).await?;
            "queued"
        } else {
            "limit for this address reached; nothing sent"
        };
        c.audit(ctx, None, Some(&email), AuditAction::PasswordResetRequested, Some(reason)).await?;
        Ok(())
    }

    /// Sets a new password with a reset key from a mail (spec §14); every token of the user ends.
    pub async fn reset_password(
        &self,
        ctx: &RequestContext,
        key: &SecretString,
        new: &SecretString,
    ) -> Result<(), RecoveryError> {
        let c = &self.core;
        // The policy first: a refused password must not use the key up.
        crate::policy::check(new.expose(), ctx.portal.settings.password_min_length, false)
            .map_err(RecoveryError::WeakPassword)?;
        let Some(bytes) = token::decode(key.expose().trim()) else {
            return Err(RecoveryError::InvalidKey);
        };
        let hash = c.key.keyed_hash(KeyContext::ResetKey, &[&bytes]);
        let Some(stored) = c.store.take_reset_key(&hash).await? else {
            return Err(RecoveryError::InvalidKey);
        };
        let now = c.clock.now();
        if stored.expires_at <= now || stored.portal != ctx.portal.id {
            return Err(RecoveryError::InvalidKey);
        }
        let user = match c.store.user_by_id(stored.user).await? {
            Some(u) if !u.disabled && u.revision == stored.revision => u,
            _ => return Err(RecoveryError::InvalidKey),
        };
        if user.directory().is_some() {
            return Err(RecoveryError::DirectoryUser);
        }
        let new_hash = match c.hasher.hash(new).await {
            Ok(h) => h,
            Err(e) => {
                // A busy pool says nothing about the key: put it back for the user's retry.
                c.store.insert_reset_key(&hash, &stored).await?;
                return Err(e.into());
            }
        };
        if !c.store.set_password_hash(user.id, &new_hash).await? {
            return Err(RecoveryError::Internal("the user vanished during a reset".into()));
        }
        let why = Some("set with a reset link; every token ended");
        c.audit(ctx, Some(user.id), None, AuditAction::PasswordReset, why).await?;
        c.notify(&ctx.portal, &user, Notice::PasswordChanged, Some(ctx)).await?;
        Ok(())
    }

    /// Delivers every due e-mail once (the e-mail channel's worker calls it in a loop), with the
    /// same leases, renewals and retries as SMS (`crate::outbox`).
    pub async fn deliver_due(
        &self,
        mailer: &dyn Mailer,
        policy: &RetryPolicy,
    ) -> Result<DeliveryReport, StoreError> {
        let c = &self.core;
        let courier = MailCourier { recovery: self, mailer };
        deliver_round(c.store.as_ref(), c.clock.as_ref(), c.rng.as_ref(), policy, &courier).await
    }

    /// The reset mail for whoever has `email` on the message's portal: a fresh key and its link
    /// for a live local user, the directory's word for a directory user, nothing for anyone else.
    async fn reset_mail(
        &self,
        msg: &OutboxMessage,
        email: &str,
    ) -> Result<Option<Rendered>, StoreError> {
        let c = &self.core;
        let Some(portal) = c.portal_by_id(msg.portal).await? else {
            return Ok(None);
        };
        let user = match c.store.user_by_email(portal.id, email).await? {
            Some(u) if !u.disabled => u,
            _ => return Ok(None),
        };
        let lang = portal.settings.language;
        if user.directory().is_some() {
            return Ok(Some(mail::render_directory_reset(lang, &portal.name)));
        }
        let settings = c.limits.mail.clone().unwrap_or_default();
        let now = c.clock.now();
        // A retried delivery makes a new key; the earlier one, never mailed or mailed twice, is
        // as good until it expires or the first reset ends it (the revision moves).
        let bytes: [u8; 32] = c.rng.bytes();
        let hash = c.key.keyed_hash(KeyContext::ResetKey, &[&bytes]);
        let key = ResetKey {
            user: user.id,
            portal: portal.id,
            revision: user.revision,
            created_at: now,
            expires_at: later(now, settings.reset_validity),
        };
        c.store.insert_reset_key(&hash, &key).await?;
        let base = match &settings.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let scheme = if portal.settings.https { "https" } else { "http" };
                let host = portal.hosts.first().map_or("localhost", String::as_str);
                format!("{scheme}://{host}")
            }
        };
        let text = token::encode(&bytes);
        let link = format!("{base}/login/reset?key={}", text.expose());
        let minutes = settings.reset_validity.as_secs() / 60;
        Ok(Some(mail::render_reset(lang, &portal.name, &link, minutes)))
    }
}

/// The e-mail channel: jobs sealed for [`KeyContext::MailOutbox`], rendered (a reset request only
/// now, see the module comment) and handed to the mailer.
struct MailCourier<'a> {
    recovery: &'a Recovery,
    mailer: &'a dyn Mailer,
}

#[async_trait::async_trait]
impl Courier for MailCourier<'_> {
    type Ready = MailMessage;

    fn channel(&self) -> Channel {
        Channel::Email
    }

    async fn prepare(&self, msg: &OutboxMessage) -> Result<Prepared<MailMessage>, StoreError> {
        let plain = match unseal(&self.recovery.core.key, KeyContext::MailOutbox, &msg.sealed_text)
        {
            Ok(plain) => plain,
            Err(not_now) => return Ok(not_now),
        };
        let Ok(job) = MailJob::decode(&plain) else {
            let why = "given up: the job cannot be read".to_owned();
            return Ok(Prepared::Never { why, audit: true });
        };
        let rendered = match job {
            MailJob::Rendered(r) => r,
            MailJob::Reset { email } => match self.recovery.reset_mail(msg, &email).await? {
                Some(r) => r,
                // Nobody (live) has the address: nothing is sent, and nothing says so but this
                // row, which only operators see.
                None => {
                    let why = "no live account has this address; nothing sent".to_owned();
                    return Ok(Prepared::Never { why, audit: false });
                }
            },
        };
        Ok(Prepared::Ready(MailMessage {
            id: msg.id,
            to: msg.to.clone(),
            subject: rendered.subject,
            text: SecretString::new(rendered.text),
            html: SecretString::new(rendered.html),
        }))
    }

    async fn hand_over(&self, _msg: &OutboxMessage, mail: MailMessage) -> Handed {
        match self.mailer.deliver(&mail).await {
            Ok(()) => Handed::Sent,
            Err(MailError::Rejected(why)) => Handed::Rejected(why),
            Err(MailError::Unavailable(why)) => Handed::Unavailable(why),
        }
    }

    fn undeliverable(&self, msg: &OutboxMessage, why: &str, at: Timestamp) -> AuditEvent {
        let reason = format!("message {}: {why}", msg.id);
        undeliverable_event(msg, AuditAction::MailUndeliverable, reason, at)
    }
}

/// How often one user gets one kind of notice at most (the per-account limit stays engaged for as
/// long as attacks go on; one mail an hour says so without flooding).
const NOTICE_EVERY: Rule = Rule::per(1, jiff::SignedDuration::from_hours(1));

impl Core {
    /// Mails `notice` to `user` when the server mails, the portal has the notice switched on and the
    /// user has an address. `ctx` is the client's request; `None` when an operator acted.
    pub(crate) async fn notify(
        &self,
        portal: &Portal,
        user: &User,
        notice: Notice,
        ctx: Option<&RequestContext>,
    ) -> Result<(), StoreError> {
        if self.limits.mail.is_none()
            || !portal.settings.notices.contains(&notice)
            || user.email.trim().is_empty()
        {
            return Ok(());
        }
        let now = self.clock.now();
        // The limit's own slot is the record: of concurrent refusals, on any process, one mails.
        if notice == Notice::AccountLimit
            && self.acquire(&keys::notice(user.id, notice.as_str()), &NOTICE_EVERY).await?.is_err()
        {
            return Ok(());
        }
        let details = NoticeDetails {
            portal_name: &portal.name,
            language: portal.settings.language,
            time_zone: &portal.settings.time_zone,
            at: now,
            ip: ctx.map(|c| c.client_ip),
            user_agent: ctx.and_then(|c| c.user_agent.as_deref()),
        };
        let job = MailJob::Rendered(mail::render_notice(notice, &details));
        self.enqueue_mail_job(portal.id, user.email.trim(), &job).await
    }

    /// Seals a job of the e-mail channel and enqueues it for `to`.
    async fn enqueue_mail_job(
        &self,
        portal: crate::model::PortalId,
        to: &str,
        job: &MailJob,
    ) -> Result<(), StoreError> {
        let sealed = self
            .key
            .seal(self.rng.as_ref(), KeyContext::MailOutbox, b"", &job.encode())
            .map_err(|e| StoreError::Unavailable(format!("sealing a mail: {e}")))?;
        let msg = NewOutboxMessage {
            portal,
            to: to.to_owned(),
            sealed_text: sealed,
            created_at: self.clock.now(),
        };
        self.store.enqueue_mail(&msg).await?;
        Ok(())
    }

    /// [`Core::notify`] for a user named by id, on the user's own portal (an operator's change).
    pub(crate) async fn notify_id(
        &self,
        user: UserId,
        notice: Notice,
        ctx: Option<&RequestContext>,
    ) -> Result<(), StoreError> {
        if self.limits.mail.is_none() {
            return Ok(());
        }
        let Some(user) = self.store.user_by_id(user).await? else {
            return Ok(());
        };
        let Some(portal) = self.portal_by_id(user.portal).await? else {
            return Ok(());
        };
        self.notify(&portal, &user, notice, ctx).await
    }

    /// A portal by id, from the cache.
    pub(crate) async fn portal_by_id(
        &self,
        id: crate::model::PortalId,
    ) -> Result<Option<Arc<Portal>>, StoreError> {
        let list = self.cached_portals().await?;
        Ok(list.iter().find(|p| p.id == id).cloned())
    }
}
