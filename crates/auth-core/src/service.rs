//! The service: every operation of the API and of the admin CLI, written against the ports, split by
//! capability.
//!
//! [`AuthService`] is built once from [`Deps`] and hands out one handle per capability, all sharing the
//! same dependencies: [`SignIn`] (the four credential endpoints), [`Sessions`] (what a token holder does
//! with the token), [`TfaSettings`] (managing one's second factor) and [`Admin`] (the operator's
//! operations). Each answers a domain value or its own error enum (`crate::error`), never a status
//! code. The transport resolves the portal ([`AuthService::portal_for_host`]), builds a
//! [`RequestContext`] and calls one method.

mod account;
mod admin;
mod directory;
mod factors;
mod import;
mod recovery;
mod sessions;
mod sign_in;
mod social;
mod tfa_settings;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use crate::audit::{AuditAction, AuditEvent};
use crate::crypto::{ServerKey, sha256};
use crate::error::{Fault, PortalError};
use crate::later;
use crate::mail::Notice;
use crate::model::{Portal, User, UserId};
use crate::observe::{NoObserver, Observer};
use crate::ports::{
    Clock, Directory, KnownClient, PasswordHasher, Revisions, Rng, SignInWrite, SocialProvider,
    Store, StoreError, TokenRecord,
};
use crate::secret::SecretString;
use crate::throttle::{Acquire, KNOWN_IP_DAYS, Rule, Slot, keys};
use crate::{device, token};

pub use account::{Account, AccountError};
pub use admin::{AUDIT_PURGE_BATCH, Admin, NewUser, OUTBOX_PURGE_BATCH};
pub use directory::DirectorySyncReport;
pub(crate) use factors::totp_binding;
pub(crate) use import::REALM_META_PREFIX;
pub use import::{
    Import, ImportError, ImportOutcome, ImportedBackupCode, ImportedLink, ImportedTotp,
    ImportedUser,
};
pub use recovery::{Recovery, RecoveryError};
pub use sessions::{ActiveSession, ActiveSessions, Session, Sessions};
pub use sign_in::{LoginMethod, NOT_A_LOGIN, Password, SignIn, SocialProof};
pub use social::{Links, ProviderLink};
pub use tfa_settings::{BackupCodeView, TfaSettings};

/// Who is asking: the portal the request was addressed to, and where it came from.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The portal resolved from the `Host` header.
    pub portal: Arc<Portal>,
    /// The real client IP (after trusted proxies; IPv4-mapped IPv6 addresses as IPv4).
    pub client_ip: IpAddr,
    /// False when a trusted proxy forwarded something unparsable: `client_ip` is then the proxy's own
    /// address, good for counting limits but never matched against the portal's `trusted_ips`.
    pub client_ip_known: bool,
    /// The `User-Agent`, for the audit trail.
    pub user_agent: Option<String>,
    /// The `asc_device` cookie as sent (see [`crate::device`]), which makes a known client.
    pub device: Option<String>,
}

/// How a token was earned; the transport echoes it (`sms`/`phoneNoise` or `tfa`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// Password (or social) alone.
    Password,
    /// After an SMS code to this masked phone.
    Sms {
        /// Masked phone.
        phone_noise: String,
    },
    /// After a TOTP or backup code.
    Totp,
}

/// A freshly issued token.
#[derive(Clone, Debug)]
pub struct TokenIssued {
    /// The token text (shown to the client once, then only its hash exists).
    pub token: SecretString,
    /// When it expires.
    pub expires: Timestamp,
    /// How it was earned.
    pub via: Via,
    /// A fresh `asc_device` cookie value and its expiry: the client is known from now on.
    pub device: (SecretString, Timestamp),
}

/// The answer of step 1, setphone and sendsms.
#[derive(Clone, Debug)]
pub enum LoginOutcome {
    /// No second factor applies: here is the token.
    Token(TokenIssued),
    /// An SMS code is needed. `expires` is the newest outstanding code's expiry (absent when none was
    /// sent because the user has no activated phone); `phone_noise` the masked phone.
    SmsPending {
        /// Expiry of the newest outstanding code.
        expires: Option<Timestamp>,
        /// Masked phone.
        phone_noise: Option<String>,
    },
    /// A TOTP (or backup) code is needed; `tfa_key` is the secret while the app is not activated.
    TotpPending {
        /// Base32 secret, only before activation.
        tfa_key: Option<SecretString>,
    },
}

/// Limits that are the same for every portal (the per-portal ones live in `PortalSettings`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreLimits {
    /// How long an SMS code is accepted.
    pub sms_code_validity: SignedDuration,
    /// Outstanding SMS codes per user.
    pub sms_max_outstanding: u32,
    /// Wrong SMS codes per phone.
    pub sms_wrong: Rule,
    /// Wrong TOTP/backup codes per user per minute.
    pub tfa_wrong_per_minute: Rule,
    /// Failed second factors per user per day.
    pub second_factor_daily: Rule,
    /// Failed SMS codes per user per day (the same daily lock, counted tighter): up to six codes may
    /// be outstanding, so each guess is six times likelier to hit than a TOTP guess, and 15 keeps
    /// the daily chance of guessing in at 15 · 6 / 900 000 = 10⁻⁴ (spec §5.6's bound).
    pub sms_second_factor_daily: Rule,
    /// How long the portal list is cached (admin changes through this service refresh it at once;
    /// tokens are only ever issued under the store's current revision, whatever the cache holds).
    pub portal_cache_ttl: SignedDuration,
    /// How long after its login a token may change the second factor (spec §5.8).
    pub fresh_token: SignedDuration,
    /// How long audit events are kept (spec §13 `[retention] audit_days`); `None` keeps them forever.
    pub audit_retention: Option<SignedDuration>,
    /// How long delivered and given-up outbox messages are kept (spec §13 `[retention]
    /// outbox_days`); `None` keeps them forever. Unsent live messages are kept whatever this says.
    pub outbox_retention: Option<SignedDuration>,
    /// How stale a token's stored "last used" may get before a use records it again (the sessions
    /// list, spec §13). A use within this of the stored value writes nothing, so a busy token costs
    /// one write per granularity instead of one per request (see [`Sessions::flush_last_used`]).
    pub last_used_granularity: SignedDuration,
    /// E-mail (spec §14): `None` when the server has no mailer, and then nothing is mailed and
    /// `people/password` answers that recovery is not available.
    pub mail: Option<MailSettings>,
}

/// How the service mails (spec §14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailSettings {
    /// The external base URL reset links are built on (`https://portal.example.com`), never the
    /// request's `Host` (a forged one would send the key to an attacker's site). `None`: each
    /// portal's first host name, over https when the portal is.
    pub public_url: Option<String>,
    /// How long a reset key works.
    pub reset_validity: SignedDuration,
    /// Reset mails per typed address.
    pub per_address: Rule,
    /// Reset mails asked for per client address.
    pub per_ip: Rule,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            public_url: None,
            reset_validity: SignedDuration::from_hours(1),
            per_address: Rule::per(3, SignedDuration::from_hours(1)),
            per_ip: Rule::per(20, SignedDuration::from_hours(1)),
        }
    }
}

impl Default for CoreLimits {
    fn default() -> Self {
        let day = SignedDuration::from_hours(24);
        Self {
            sms_code_validity: SignedDuration::from_mins(10),
            sms_max_outstanding: 6,
            sms_wrong: Rule::per(5, SignedDuration::from_mins(10)),
            tfa_wrong_per_minute: Rule::per(5, SignedDuration::from_mins(1)),
            second_factor_daily: Rule::per(20, day),
            sms_second_factor_daily: Rule::per(15, day),
            portal_cache_ttl: SignedDuration::from_secs(2),
            fresh_token: SignedDuration::from_mins(15),
            audit_retention: Some(SignedDuration::from_hours(24 * 365)),
            mail: None,
            outbox_retention: Some(SignedDuration::from_hours(24 * 7)),
            last_used_granularity: SignedDuration::from_mins(5),
        }
    }
}

/// Everything the service needs from the world.
#[derive(Clone)]
pub struct Deps {
    /// All stores.
    pub store: Arc<dyn Store>,
    /// Password hashing.
    pub hasher: Arc<dyn PasswordHasher>,
    /// Social login.
    pub social: Arc<dyn SocialProvider>,
    /// LDAP / Active Directory (spec §5.9); [`crate::ports::NoDirectories`] for none.
    pub directory: Arc<dyn Directory>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub rng: Arc<dyn Rng>,
    /// The server key.
    pub key: ServerKey,
}

/// The authentication service: the capabilities over one set of dependencies.
pub struct AuthService {
    core: Arc<Core>,
    sign_in: SignIn,
    sessions: Sessions,
    tfa_settings: TfaSettings,
    links: Links,
    admin: Admin,
    import: Import,
    account: Account,
    recovery: Recovery,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("limits", &self.core.limits).finish_non_exhaustive()
    }
}

impl AuthService {
    /// A service over these ports with the default limits.
    pub fn new(deps: Deps) -> Self {
        Self::with_limits(deps, CoreLimits::default())
    }

    /// A service with explicit global limits.
    pub fn with_limits(deps: Deps, limits: CoreLimits) -> Self {
        Self::with_observer(deps, limits, Arc::new(NoObserver))
    }

    /// A service with explicit global limits that tells `observer` about every login step and
    /// throttle refusal (the server's metrics).
    pub fn with_observer(deps: Deps, limits: CoreLimits, observer: Arc<dyn Observer>) -> Self {
        let core = Arc::new(Core {
            store: deps.store,
            hasher: deps.hasher,
            social: deps.social,
            directory: deps.directory,
            clock: deps.clock,
            rng: deps.rng,
            key: deps.key,
            limits,
            observer,
            portals: Mutex::new(None),
            touches: Mutex::new(HashMap::new()),
        });
        Self {
            sign_in: SignIn { core: core.clone() },
            sessions: Sessions { core: core.clone() },
            tfa_settings: TfaSettings { core: core.clone() },
            links: Links { core: core.clone() },
            admin: Admin { core: core.clone() },
            import: Import { core: core.clone() },
            account: Account { core: core.clone() },
            recovery: Recovery { core: core.clone() },
            core,
        }
    }

    /// Signing in: the four credential endpoints.
    pub fn sign_in(&self) -> &SignIn {
        &self.sign_in
    }

    /// What a token holder does with the token.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Managing one's second factor.
    pub fn tfa_settings(&self) -> &TfaSettings {
        &self.tfa_settings
    }

    /// The token holder's own account (password change).
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// Account recovery by e-mail (spec §14) and the e-mail channel's delivery.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The token holder's account links.
    pub fn links(&self) -> &Links {
        &self.links
    }

    /// The social providers the portal offers (for `capabilities`).
    pub fn social_providers(&self, portal: &Portal) -> Vec<String> {
        self.core.social.offered(portal)
    }

    /// Starts the authorization-code flow at `provider` for a browser (the sign-in page's social
    /// buttons): a fresh `state` and PKCE pair, and the provider's URL carrying them. `Ok(None)` when
    /// the portal does not offer the provider or the provider cannot start the flow.
    ///
    /// # Errors
    /// [`crate::ports::SocialError::Unavailable`] when the provider must be asked and does not answer.
    pub async fn oauth_start(
        &self,
        portal: &Portal,
        provider: &str,
    ) -> Result<Option<(String, crate::pkce::Pkce)>, crate::ports::SocialError> {
        if !self.core.social.offered(portal).iter().any(|p| p == provider) {
            return Ok(None);
        }
        let pkce = crate::pkce::Pkce::generate(self.core.rng.as_ref());
        let url = self
            .core
            .social
            .authorization_url(portal, provider, pkce.state.expose(), &pkce.challenge)
            .await?;
        Ok(url.map(|u| (u, pkce)))
    }

    /// The operator's operations.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// Moving users over from an upstream portal or another source (spec §11).
    pub fn import(&self) -> &Import {
        &self.import
    }

    /// The directory the portal signs in against, if any (for `capabilities`' `ldapEnabled`).
    pub fn directory_for(&self, portal: &Portal) -> Option<String> {
        self.core.directory.directory_for(portal)
    }

    /// The global limits.
    pub fn limits(&self) -> &CoreLimits {
        &self.core.limits
    }

    /// The store (for the outbox worker and readiness checks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.core.store
    }

    /// The server key (for the outbox worker).
    pub fn server_key(&self) -> &ServerKey {
        &self.core.key
    }

    /// Now, from the clock port.
    pub fn now(&self) -> Timestamp {
        self.core.clock.now()
    }

    /// The portal that answers to `host` (port and case ignored); with exactly one portal, that
    /// portal answers every host (spec §6).
    pub async fn portal_for_host(&self, host: &str) -> Result<Arc<Portal>, PortalError> {
        let list = self.core.cached_portals().await?;
        if let [only] = list.as_slice() {
            return Ok(only.clone());
        }
        let host = normalize_host(host);
        list.iter().find(|p| p.hosts.contains(&host)).cloned().ok_or(PortalError::PortalNotFound)
    }
}

/// What every capability shares: the ports, the limits and the portal cache.
pub(crate) struct Core {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hasher: Arc<dyn PasswordHasher>,
    pub(crate) social: Arc<dyn SocialProvider>,
    pub(crate) directory: Arc<dyn Directory>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn Rng>,
    pub(crate) key: ServerKey,
    pub(crate) limits: CoreLimits,
    pub(crate) observer: Arc<dyn Observer>,
    portals: Mutex<Option<(Timestamp, PortalList)>>,
    /// Token uses not yet written to the store, by token hash (see `Sessions::flush_last_used`).
    pub(crate) touches: Mutex<HashMap<[u8; 32], Timestamp>>,
}

/// The cached portal list.
type PortalList = Arc<Vec<Arc<Portal>>>;

/// The longest login kept verbatim in an audit event; longer ones are hashed.
const MAX_KEY_LOGIN: usize = 128;

pub(crate) fn login_key(login_lower: &str) -> String {
    if login_lower.len() <= MAX_KEY_LOGIN {
        login_lower.to_owned()
    } else {
        format!("sha256:{}", data_encoding::HEXLOWER.encode(&sha256(login_lower.as_bytes())))
    }
}

impl Core {
    /// How throttle keys name an account: the user's id when the login named a user, so every
    /// spelling of one account (e-mail in any case, the id in any form) shares one counter; else a
    /// keyed hash of the lower-cased login, which never puts what was typed into the store.
    pub(crate) fn account_key(&self, user: Option<&User>, login_lower: &str) -> String {
        match user {
            Some(u) => format!("user:{}", u.id),
            None => {
                let h = self
                    .key
                    .keyed_hash(crate::crypto::KeyContext::LoginKey, &[login_lower.as_bytes()]);
                format!("login:{}", data_encoding::HEXLOWER.encode(h.get(..16).unwrap_or(&h)))
            }
        }
    }

    /// Whether the request comes from a known client of `user` (spec §5.1): it carries a live
    /// `asc_device` cookie for the user, or its address completed a login for the user recently.
    pub(crate) async fn is_known_client(
        &self,
        ctx: &RequestContext,
        user: &User,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        if ctx.device.as_deref().is_some_and(|d| device::is_valid(&self.key, d, user.id, now)) {
            return Ok(true);
        }
        let since = later(now, -SignedDuration::from_hours(24 * KNOWN_IP_DAYS));
        Ok(self.store.count_since(&keys::known_ip(user.id, ctx.client_ip), since).await? > 0)
    }
}

impl Core {
    async fn cached_portals(&self) -> Result<PortalList, StoreError> {
        let now = self.clock.now();
        if let Ok(guard) = self.portals.lock()
            && let Some((at, list)) = guard.as_ref()
            && now.duration_since(*at) < self.limits.portal_cache_ttl
            && now >= *at
        {
            return Ok(list.clone());
        }
        let list: PortalList =
            Arc::new(self.store.list_portals().await?.into_iter().map(Arc::new).collect());
        if let Ok(mut guard) = self.portals.lock() {
            *guard = Some((now, list.clone()));
        }
        Ok(list)
    }

    /// The portal's minimum password length (spec §14); the default for a portal not found.
    pub(crate) async fn password_min_length(
        &self,
        portal: crate::model::PortalId,
    ) -> Result<u32, StoreError> {
        let list = self.cached_portals().await?;
        Ok(list.iter().find(|p| p.id == portal).map_or_else(
            || crate::model::PortalSettings::default().password_min_length,
            |p| p.settings.password_min_length,
        ))
    }

    pub(crate) fn forget_portals(&self) {
        if let Ok(mut guard) = self.portals.lock() {
            *guard = None;
        }
    }

    /// Appends an audit event for a request.
    pub(crate) async fn audit(
        &self,
        ctx: &RequestContext,
        user: Option<UserId>,
        login: Option<&str>,
        action: AuditAction,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.store.append_audit(&self.audit_event(ctx, user, login, action, reason)).await
    }

    /// The event [`Core::audit`] appends.
    fn audit_event(
        &self,
        ctx: &RequestContext,
        user: Option<UserId>,
        login: Option<&str>,
        action: AuditAction,
        reason: Option<&str>,
    ) -> AuditEvent {
        AuditEvent {
            at: self.clock.now(),
            portal: ctx.portal.id,
            user,
            login: login.map(login_key),
            action,
            ip: ctx.client_ip,
            user_agent: user_agent(ctx),
            reason: reason.map(str::to_owned),
        }
    }

    /// Takes a slot of `rule` under `key`, or says until when the rule refuses.
    pub(crate) async fn acquire(
        &self,
        key: &str,
        rule: &Rule,
    ) -> Result<Result<Slot, Timestamp>, StoreError> {
        Ok(match self.store.acquire(key, rule, self.clock.now()).await? {
            Acquire::Granted(slot) => Ok(slot),
            Acquire::Refused { until } => Err(until),
        })
    }

    pub(crate) async fn release_all(&self, slots: &[Slot]) -> Result<(), StoreError> {
        self.store.release_all(slots).await
    }

    /// Gives back the slots of an attempt that failed for a reason other than the credentials
    /// (the store, most likely), so that it does not count. The failure is what the caller
    /// answers; if the store cannot take the slots back either, they stay counted until their
    /// rule's window ends, the same as a failed attempt, which is the safe side to err on.
    pub(crate) async fn give_back(&self, slots: &[Slot]) {
        if !slots.is_empty() {
            let _ = self.store.release_all(slots).await;
        }
    }

    /// Takes one slot of every rule, or none: a refusal gives back what was taken.
    #[allow(dead_code, reason = "for limits whose refusal needs no rule name")]
    pub(crate) async fn acquire_all(
        &self,
        wants: &[(String, Rule)],
    ) -> Result<Result<Vec<Slot>, Timestamp>, StoreError> {
        Ok(self.acquire_all_or_refusal(wants).await?.map_err(|(_, until)| until))
    }

    /// [`Core::acquire_all`], saying on a refusal which of `wants` (by index) refused, so the caller
    /// can name the rule.
    pub(crate) async fn acquire_all_or_refusal(
        &self,
        wants: &[(String, Rule)],
    ) -> Result<Result<Vec<Slot>, (usize, Timestamp)>, StoreError> {
        let mut taken = Vec::with_capacity(wants.len());
        for (i, (key, rule)) in wants.iter().enumerate() {
            match self.acquire(key, rule).await? {
                Ok(slot) => taken.push(slot),
                Err(until) => {
                    self.release_all(&taken).await?;
                    return Ok(Err((i, until)));
                }
            }
        }
        Ok(Ok(taken))
    }

    /// Issues and stores a new token for `user`, under the user's and the portal's revisions as this
    /// request read them, and audits the sign-in as `action` (with `reason`) in the same store
    /// call, so the token and its record are durable together for one commit; the same call gives
    /// back the attempt's throttle `release` slots (a correct password does not count) and makes
    /// the client known. `None` when either revision moved meanwhile (a password change, a
    /// disable, a log-out everywhere, a portal change): then no token exists, nothing is audited,
    /// the slots are still given back, and the caller decides afresh.
    pub(crate) async fn issue_token(
        &self,
        ctx: &RequestContext,
        user: &User,
        via: Via,
        (action, reason): (AuditAction, Option<&str>),
        release: &[Slot],
    ) -> Result<Option<TokenIssued>, Fault> {
        let now = self.clock.now();
        let text = token::generate(self.rng.as_ref());
        let expires = later(now, ctx.portal.settings.token_lifetime);
        let mut record = TokenRecord {
            hash: token::hash(text.expose()),
            user: user.id,
            portal: ctx.portal.id,
            issued_at: now,
            expires_at: expires,
            id: token::public_id(self.rng.as_ref()),
            last_used_at: now,
            client_ip: Some(ctx.client_ip),
            user_agent: user_agent(ctx),
        };
        let expect = Revisions { user: user.revision, portal: ctx.portal.revision };
        let event = self.audit_event(ctx, Some(user.id), None, action, reason);
        // A sign-in from a new device (spec §14): no live `asc_device` cookie of the user, and an
        // address that has not completed a login for them lately. Asked only when a notice could go
        // out, and before the write below makes the address known.
        let new_device = self.limits.mail.is_some()
            && ctx.portal.settings.notices.contains(&Notice::NewDevice)
            && !self.is_known_client(ctx, user).await?;
        // This address and this client completed a login: both are known clients of the user for a
        // while (spec §5.1), so the per-account limit does not lock the owner out. One record a day
        // is enough for "in the last 30 days": the store adds one only when the key has none since
        // a day ago, in the same transaction as the token, the audit event and the release of the
        // attempt's throttle slots (one commit for the whole end of a login).
        let known_key = keys::known_ip(user.id, ctx.client_ip);
        let known = KnownClient {
            key: &known_key,
            since: later(now, -SignedDuration::from_hours(24)),
            rule: Rule::per(1, SignedDuration::from_hours(24 * KNOWN_IP_DAYS)),
        };
        // Public ids are random below 2^53, so two tokens meet on one only about once in 10^15
        // issues with a million live tokens; the store refuses the second, and a fresh draw settles
        // it. Three draws that all collide would mean a broken generator, which must not loop.
        let mut attempt = 0;
        let stored = loop {
            let write =
                SignInWrite { token: &record, expect, event: &event, release, known: Some(known) };
            match self.store.finish_sign_in(&write).await {
                Err(StoreError::Conflict(_)) if attempt < 2 => {
                    attempt += 1;
                    record.id = token::public_id(self.rng.as_ref());
                }
                other => break other?,
            }
        };
        if !stored {
            // The cached portal may be the stale part: the next read must come from the store.
            self.forget_portals();
            return Ok(None);
        }
        if new_device {
            self.notify(&ctx.portal, user, Notice::NewDevice, Some(ctx)).await?;
        }
        let (cookie, cookie_expires) = device::issue(&self.key, user.id, now);
        Ok(Some(TokenIssued {
            token: text,
            expires,
            via,
            device: (SecretString::new(cookie), cookie_expires),
        }))
    }

    /// The request's context with the portal as the store has it now (after a stale read).
    pub(crate) async fn refreshed(&self, ctx: &RequestContext) -> Result<RequestContext, Fault> {
        self.forget_portals();
        let list = self.cached_portals().await?;
        let portal = list
            .iter()
            .find(|p| p.id == ctx.portal.id)
            .cloned()
            .ok_or_else(|| Fault::Internal("the portal vanished during a login".into()))?;
        Ok(RequestContext { portal, ..ctx.clone() })
    }
}

/// The longest `User-Agent` kept (in the audit trail and on a token), in characters.
const MAX_USER_AGENT: usize = 256;

/// The request's `User-Agent` as it is kept: truncated to [`MAX_USER_AGENT`] characters.
fn user_agent(ctx: &RequestContext) -> Option<String> {
    ctx.user_agent.as_ref().map(|ua| ua.chars().take(MAX_USER_AGENT).collect())
}

/// Lower-cases a `Host` value and drops its port.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if host.starts_with('[') {
        // An IPv6 literal: `[::1]:8080`.
        return host.split_once(']').map(|(h, _)| format!("{h}]")).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            h.to_owned()
        }
        _ => host,
    }
}
