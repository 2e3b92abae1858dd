//! The service: every operation of the API and of the admin CLI, written against the ports.
//!
//! Each public method is one use case. The transport resolves the portal ([`AuthService::portal_for_host`]),
//! builds a [`RequestContext`] and calls the method; the method answers a domain value or an
//! [`AuthError`], never a status code. The order of checks inside each method is part of the contract
//! (spec §4): credentials and throttles first, so a disabled user or a wrong password never causes an SMS
//! or reveals a secret.

mod admin;
mod second_factor;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use crate::audit::{AuditAction, AuditEvent};
use crate::crypto::{ServerKey, sha256};
use crate::error::AuthError;
use crate::later;
use crate::model::{Portal, PortalId, Profile, TfaMode, User, UserId};
use crate::phone::noise;
use crate::ports::{Clock, PasswordHasher, Rng, SocialProvider, Store, TokenRecord};
use crate::secret::SecretString;
use crate::throttle::{Acquire, Rule, Slot, keys};
use crate::token;

pub use admin::NewUser;
pub use second_factor::{BackupCodeView, OUTBOX_CONTEXT};

/// Who is asking: the portal the request was addressed to, and where it came from.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The portal resolved from the `Host` header.
    pub portal: Arc<Portal>,
    /// The real client IP (after trusted proxies).
    pub client_ip: IpAddr,
    /// The `User-Agent`, for the audit trail.
    pub user_agent: Option<String>,
}

/// The credential parameters of the four credential endpoints (spec §2).
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// E-mail or user id.
    pub user_name: Option<String>,
    /// Password.
    pub password: Option<SecretString>,
    /// Empty or `email` for a password login; else a social provider.
    pub provider: Option<String>,
    /// Social access token.
    pub access_token: Option<SecretString>,
    /// Social OAuth code (exchanged for an access token first).
    pub code_oauth: Option<SecretString>,
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

/// A valid token's holder.
#[derive(Clone, Debug)]
pub struct Session {
    /// The user.
    pub user: User,
    /// The token's hash (for logout).
    pub token_hash: [u8; 32],
    /// When the token expires.
    pub expires: Timestamp,
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
    /// How long the portal list is cached (admin changes through this service refresh it at once).
    pub portal_cache_ttl: SignedDuration,
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
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub rng: Arc<dyn Rng>,
    /// The server key.
    pub key: ServerKey,
}

/// The authentication service.
pub struct AuthService {
    store: Arc<dyn Store>,
    hasher: Arc<dyn PasswordHasher>,
    social: Arc<dyn SocialProvider>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
    key: ServerKey,
    limits: CoreLimits,
    portals: Mutex<Option<(Timestamp, PortalList)>>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("limits", &self.limits).finish_non_exhaustive()
    }
}

/// The cached portal list.
type PortalList = Arc<Vec<Arc<Portal>>>;

/// The longest login kept verbatim in a throttle key or audit event; longer ones are hashed.
const MAX_KEY_LOGIN: usize = 128;

fn login_key(login_lower: &str) -> String {
    if login_lower.len() <= MAX_KEY_LOGIN {
        login_lower.to_owned()
    } else {
        format!("sha256:{}", data_encoding::HEXLOWER.encode(&sha256(login_lower.as_bytes())))
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl AuthService {
    /// A service over these ports with the default limits.
    pub fn new(deps: Deps) -> Self {
        Self::with_limits(deps, CoreLimits::default())
    }

    /// A service with explicit global limits.
    pub fn with_limits(deps: Deps, limits: CoreLimits) -> Self {
        Self {
            store: deps.store,
            hasher: deps.hasher,
            social: deps.social,
            clock: deps.clock,
            rng: deps.rng,
            key: deps.key,
            limits,
            portals: Mutex::new(None),
        }
    }

    /// The global limits.
    pub fn limits(&self) -> &CoreLimits {
        &self.limits
    }

    /// The store (for the outbox worker and readiness checks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The server key (for the outbox worker).
    pub fn server_key(&self) -> &ServerKey {
        &self.key
    }

    /// Now, from the clock port.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    // ----- portals -------------------------------------------------------------------------------

    async fn cached_portals(&self) -> Result<PortalList, AuthError> {
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

    pub(crate) fn forget_portals(&self) {
        if let Ok(mut guard) = self.portals.lock() {
            *guard = None;
        }
    }

    /// The portal that answers to `host` (port and case ignored); with exactly one portal, that
    /// portal answers every host (spec §6).
    pub async fn portal_for_host(&self, host: &str) -> Result<Arc<Portal>, AuthError> {
        let list = self.cached_portals().await?;
        if let [only] = list.as_slice() {
            return Ok(only.clone());
        }
        let host = normalize_host(host);
        list.iter().find(|p| p.hosts.contains(&host)).cloned().ok_or(AuthError::PortalNotFound)
    }

    // ----- step 1 and the credential check ---------------------------------------------------------

    async fn audit(
        &self,
        ctx: &RequestContext,
        user: Option<UserId>,
        login: Option<&str>,
        action: AuditAction,
        reason: Option<&str>,
    ) -> Result<(), AuthError> {
        let event = AuditEvent {
            at: self.clock.now(),
            portal: ctx.portal.id,
            user,
            login: login.map(login_key),
            action,
            ip: ctx.client_ip,
            user_agent: ctx.user_agent.as_ref().map(|ua| ua.chars().take(256).collect()),
            reason: reason.map(str::to_owned),
        };
        self.store.append_audit(&event).await?;
        Ok(())
    }

    pub(crate) async fn acquire(
        &self,
        key: &str,
        rule: &Rule,
    ) -> Result<Result<Slot, Timestamp>, AuthError> {
        Ok(match self.store.acquire(key, rule, self.clock.now()).await? {
            Acquire::Granted(slot) => Ok(slot),
            Acquire::Refused { until } => Err(until),
        })
    }

    /// Resolves the user behind the credentials (spec §5.1, §5.4), applying the login throttle.
    /// Every failure is audited and answered as `InvalidCredentials`.
    async fn resolve_user(
        &self,
        ctx: &RequestContext,
        creds: &Credentials,
    ) -> Result<User, AuthError> {
        let provider = non_empty(&creds.provider);
        if let Some(p) = provider
            && !p.eq_ignore_ascii_case("email")
        {
            return self.resolve_social(ctx, p, creds).await;
        }
        let login = non_empty(&creds.user_name)
            .ok_or_else(|| AuthError::BadRequest("userName empty".into()))?;
        let password = creds
            .password
            .as_ref()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| AuthError::BadRequest("password empty".into()))?;
        let login_lower = login.to_lowercase();
        let portal = &ctx.portal;
        let throttle_key = keys::login(portal.id, &login_key(&login_lower), ctx.client_ip);
        let slot = match self.acquire(&throttle_key, &portal.settings.login_throttle).await? {
            Ok(slot) => slot,
            Err(until) => {
                self.audit(
                    ctx,
                    None,
                    Some(&login_lower),
                    AuditAction::LoginFailBruteForce,
                    Some("login throttle"),
                )
                .await?;
                return Err(AuthError::LoginThrottled { until });
            }
        };
        let found = self.find_login(portal.id, &login_lower).await;
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                self.store.release(slot).await?;
                return Err(e);
            }
        };
        // Unknown users cost one verification of the dummy hash, so timing does not tell them apart.
        let hash =
            found.as_ref().map_or_else(|| self.hasher.dummy_hash(), |u| u.password_hash.clone());
        let verified = match self.hasher.verify(password, &hash).await {
            Ok(v) => v,
            Err(e) => {
                // A busy hasher says nothing about the password: the attempt must not count.
                self.store.release(slot).await?;
                return Err(e.into());
            }
        };
        let failure = match &found {
            None => Some("unknown user"),
            Some(_) if !verified => Some("wrong password"),
            Some(u) if u.disabled => Some("user disabled"),
            Some(_) => None,
        };
        match (found, failure) {
            (Some(user), None) => {
                self.store.release(slot).await?;
                Ok(user)
            }
            (found, reason) => {
                let user = found.map(|u| u.id);
                self.audit(ctx, user, Some(&login_lower), AuditAction::LoginFailViaApi, reason)
                    .await?;
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    async fn find_login(
        &self,
        portal: PortalId,
        login_lower: &str,
    ) -> Result<Option<User>, AuthError> {
        if let Some(u) = self.store.user_by_email(portal, login_lower).await? {
            return Ok(Some(u));
        }
        // `userName` may also be the user id (spec §5.1).
        if let Ok(id) = login_lower.parse::<UserId>()
            && let Some(u) = self.store.user_by_id(id).await?
            && u.portal == portal
        {
            return Ok(Some(u));
        }
        Ok(None)
    }

    async fn resolve_social(
        &self,
        ctx: &RequestContext,
        provider: &str,
        creds: &Credentials,
    ) -> Result<User, AuthError> {
        let provider_lower = provider.to_ascii_lowercase();
        let enabled = ctx
            .portal
            .settings
            .social_providers
            .iter()
            .any(|p| p.eq_ignore_ascii_case(&provider_lower));
        let identity = if enabled && (creds.access_token.is_some() || creds.code_oauth.is_some()) {
            match self
                .social
                .identify(
                    &ctx.portal,
                    &provider_lower,
                    creds.access_token.as_ref(),
                    creds.code_oauth.as_ref(),
                )
                .await
            {
                Ok(identity) => identity,
                Err(e) => {
                    self.audit(
                        ctx,
                        None,
                        None,
                        AuditAction::LoginFailViaApi,
                        Some(&format!("social provider: {e}")),
                    )
                    .await?;
                    return Err(AuthError::InvalidCredentials);
                }
            }
        } else {
            None
        };
        let user = match identity {
            Some(id) => self.store.user_by_email(ctx.portal.id, &id.email.to_lowercase()).await?,
            None => None,
        };
        match user {
            Some(u) if !u.disabled => Ok(u),
            other => {
                let reason = match (&other, enabled) {
                    (_, false) => "social provider not enabled",
                    (Some(_), true) => "user disabled",
                    (None, true) => "unknown social account",
                };
                self.audit(
                    ctx,
                    other.map(|u| u.id),
                    None,
                    AuditAction::LoginFailViaApi,
                    Some(reason),
                )
                .await?;
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// Which second factor applies to a request (spec §5.5).
    pub fn factor_for(&self, ctx: &RequestContext) -> TfaMode {
        match ctx.portal.settings.tfa {
            TfaMode::None => TfaMode::None,
            _ if ctx.portal.settings.is_trusted(ctx.client_ip) => TfaMode::None,
            mode => mode,
        }
    }

    /// Step 1, `POST authentication` (spec §4).
    pub async fn login(
        &self,
        ctx: &RequestContext,
        creds: &Credentials,
    ) -> Result<LoginOutcome, AuthError> {
        let user = self.resolve_user(ctx, creds).await?;
        match self.factor_for(ctx) {
            TfaMode::Sms => self.login_sms_step(ctx, &user).await,
            TfaMode::App => self.login_totp_step(&user).await,
            TfaMode::None => {
                let issued = self.issue_token(ctx, &user, Via::Password).await?;
                self.audit(ctx, Some(user.id), None, AuditAction::LoginSuccessViaApi, None).await?;
                Ok(LoginOutcome::Token(issued))
            }
        }
    }

    pub(crate) async fn issue_token(
        &self,
        ctx: &RequestContext,
        user: &User,
        via: Via,
    ) -> Result<TokenIssued, AuthError> {
        let now = self.clock.now();
        let text = token::generate(self.rng.as_ref());
        let expires = later(now, ctx.portal.settings.token_lifetime);
        let record = TokenRecord {
            hash: token::hash(text.expose()),
            user: user.id,
            portal: ctx.portal.id,
            issued_at: now,
            expires_at: expires,
        };
        self.store.insert_token(&record).await?;
        Ok(TokenIssued { token: text, expires, via })
    }

    // ----- tokens ----------------------------------------------------------------------------------

    /// The holder of a token presented to `ctx.portal`, or `Unauthorized`.
    pub async fn authenticate(
        &self,
        ctx: &RequestContext,
        token_text: &str,
    ) -> Result<Session, AuthError> {
        // A malformed token cannot exist in the store; refusing it early saves a lookup.
        if token::decode(token_text).is_none() {
            return Err(AuthError::Unauthorized);
        }
        let hash = token::hash(token_text);
        let (record, user) =
            self.store.session_by_token_hash(&hash).await?.ok_or(AuthError::Unauthorized)?;
        if record.expires_at <= self.clock.now() || record.portal != ctx.portal.id || user.disabled
        {
            return Err(AuthError::Unauthorized);
        }
        Ok(Session { user, token_hash: hash, expires: record.expires_at })
    }

    /// `POST authentication/logout`: revokes the presented token.
    pub async fn logout(&self, ctx: &RequestContext, session: &Session) -> Result<(), AuthError> {
        self.store.revoke_token(&session.token_hash).await?;
        self.audit(ctx, Some(session.user.id), None, AuditAction::Logout, None).await
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
