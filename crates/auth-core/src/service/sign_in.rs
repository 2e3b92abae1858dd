//! Signing in: step 1 (`POST authentication`), setphone, sendsms and step 2 (`POST authentication/{code}`).
//!
//! The order of checks inside each operation is part of the contract (spec §4): credentials and
//! throttles first, so a disabled user or a wrong password never causes an SMS or reveals a secret.
//! Wrong-code limits take their slot in the shared counter *before* the code is checked and give it back
//! on success (see [`crate::throttle`]), so concurrent guesses can never exceed a limit. Single use is
//! the store's atomic consume: of any number of requests racing with one good code, one wins.

use std::sync::Arc;

use jiff::Timestamp;

use super::directory::Provisioned;
use super::factors::totp_binding;
use super::social::SocialFailure;
use super::{Core, LoginOutcome, RequestContext, TokenIssued, Via};
use crate::audit::AuditAction;
use crate::crypto::KeyContext;
use crate::error::SignInError;
use crate::later;
use crate::mail::Notice;
use crate::model::{Credential, PortalId, TfaMode, User, UserId};
use crate::observe::{Factor, LoginResult, ThrottleRule};
use crate::phone::{Phone, noise};
use crate::ports::{DirectoryError, NewOutboxMessage, SmsCodeRecord, TotpRecord};
use crate::secret::SecretString;
use crate::throttle::{Acquire, AcquireThen, Rule, Slot, keys};
use crate::{backup, sms, totp};

/// A password: never empty, wiped from memory when dropped, redacted in `Debug`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Password(SecretString);

/// The text given for a password was empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password empty")]
pub struct EmptyPassword;

impl Password {
    /// A password from its text.
    ///
    /// # Errors
    /// [`EmptyPassword`] for the empty string.
    pub fn new(text: impl Into<SecretString>) -> Result<Self, EmptyPassword> {
        let text = text.into();
        if text.is_empty() { Err(EmptyPassword) } else { Ok(Password(text)) }
    }

    /// The password as a secret string, for the hasher.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// What proves a social identity (spec §5.4); either may be absent, and a login with neither fails
/// like any other failed proof.
#[derive(Clone, Debug, Default)]
pub struct SocialProof {
    /// An access token or an ID token.
    pub access_token: Option<SecretString>,
    /// An authorisation code to exchange first.
    pub code_oauth: Option<SecretString>,
    /// The PKCE verifier of the code's authorization request (RFC 7636), sent with the exchange.
    pub code_verifier: Option<SecretString>,
}

/// How a credential request says who it is: built once at the boundary, so the rules never look at
/// parameter strings.
#[derive(Clone, Debug)]
pub enum LoginMethod {
    /// An e-mail or user id, and its password.
    Password {
        /// The e-mail or user id, as typed (trimmed, not empty).
        login: String,
        /// The password.
        password: Password,
    },
    /// An identity at a social provider.
    Social {
        /// The provider's configured name, as sent.
        provider: String,
        /// The proof.
        proof: SocialProof,
    },
}

impl LoginMethod {
    /// A password login.
    pub fn password(login: impl Into<String>, password: Password) -> Self {
        LoginMethod::Password { login: login.into(), password }
    }
}

/// What a failed login's audit event says the login was: the login itself when it looks like an e-mail
/// or a user id, else a fixed marker, because people type their password into the user-name field
/// and the audit trail must never hold one (spec §7).
fn audit_login(login_lower: &str) -> &str {
    if login_lower.contains('@') || login_lower.parse::<UserId>().is_ok() {
        login_lower
    } else {
        NOT_A_LOGIN
    }
}

/// The audit trail's stand-in for a typed login that is neither an e-mail nor a user id.
pub const NOT_A_LOGIN: &str = "(not an e-mail or user id)";

/// How a refused login step shows in the metrics.
fn result_of(e: &SignInError) -> LoginResult {
    match e {
        SignInError::InvalidCredentials => LoginResult::Invalid,
        SignInError::LoginThrottled { .. }
        | SignInError::SmsSendLimited { .. }
        | SignInError::CodeAttemptsExceeded { .. }
        | SignInError::SecondFactorLocked { .. } => LoginResult::Throttled,
        SignInError::Busy(_) => LoginResult::Busy,
        SignInError::ProviderUnavailable(_) => LoginResult::Unavailable,
        SignInError::PhoneRequired
        | SignInError::InvalidPhone
        | SignInError::PhoneAlreadyActivated
        | SignInError::Internal(_) => LoginResult::Error,
    }
}

/// The factor a step-1 login starts out as; the check may still turn a password into a directory bind.
fn first_factor(login: &LoginMethod) -> Factor {
    match login {
        LoginMethod::Password { .. } => Factor::Password,
        LoginMethod::Social { .. } => Factor::Social,
    }
}

/// Which app factor a code that matched nothing was meant as, by its form: six digits are a TOTP
/// code, anything else a backup code (ours are longer and not all digits).
fn meant_factor(code: &str) -> Factor {
    let digits: Vec<u8> = code.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() == 6 && digits.iter().all(u8::is_ascii_digit) {
        Factor::Totp
    } else {
        Factor::Backup
    }
}

/// What a credential check found.
enum Checked {
    /// The password is right for this user (who may still be disabled).
    Accepted(Box<User>),
    /// It is not; the reason is for the audit trail only.
    Refused(&'static str),
}

/// Why a code is being sent: only `sendsms` is subject to the resend cool-down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SendKind {
    Login,
    SetPhone,
    SendSms,
}

/// A second factor that was accepted, before its token: the slots its check took (given back with
/// the token) and how the sign-in is recorded.
struct Passed {
    slots: Vec<Slot>,
    via: Via,
    action: AuditAction,
    reason: Option<&'static str>,
}

/// What checking a code found, once its slots were taken ([`SignIn::settle`] decides whether they
/// count).
enum CodeCheck {
    /// The code was right (and spent): how the sign-in is recorded.
    Right { via: Via, action: AuditAction, reason: Option<&'static str> },
    /// The code was wrong, expired or used: the attempt counts, and is audited so.
    Wrong { action: AuditAction, reason: &'static str },
}

/// The sign-in capability.
#[derive(Clone)]
pub struct SignIn {
    pub(super) core: Arc<Core>,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignIn")
    }
}

/// Which second factor applies to a request (spec §5.5).
pub(crate) fn factor_for(ctx: &RequestContext) -> TfaMode {
    match ctx.portal.settings.tfa {
        TfaMode::None => TfaMode::None,
        _ if ctx.client_ip_known && ctx.portal.settings.is_trusted(ctx.client_ip) => TfaMode::None,
        mode => mode,
    }
}

impl SignIn {
    /// Which second factor applies to a request (spec §5.5).
    pub fn factor_for(&self, ctx: &RequestContext) -> TfaMode {
        factor_for(ctx)
    }

    /// Step 1, `POST authentication` (spec §4).
    pub async fn login(
        &self,
        ctx: &RequestContext,
        login: &LoginMethod,
    ) -> Result<LoginOutcome, SignInError> {
        let mut factor = first_factor(login);
        let outcome = self.login_observed(ctx, login, &mut factor).await;
        let result = match &outcome {
            Ok(LoginOutcome::Token(_)) => LoginResult::Ok,
            Ok(LoginOutcome::SmsPending { .. } | LoginOutcome::TotpPending { .. }) => {
                LoginResult::TfaRequired
            }
            Err(e) => result_of(e),
        };
        self.core.observer.login(factor, result);
        outcome
    }

    /// Step 1, noting in `factor` what the credentials were checked with.
    async fn login_observed(
        &self,
        ctx: &RequestContext,
        login: &LoginMethod,
        factor: &mut Factor,
    ) -> Result<LoginOutcome, SignInError> {
        if let Some(outcome) = self.login_once(ctx, login, factor).await? {
            return Ok(outcome);
        }
        // The user or the portal changed while this login ran (spec §5.8): decide once more under
        // what the store holds now, credentials included.
        let ctx = self.core.refreshed(ctx).await?;
        self.login_once(&ctx, login, factor)
            .await?
            .ok_or_else(|| SignInError::Busy("the account changed twice during one login".into()))
    }

    /// Step 1 under the settings `ctx` carries; `None` when they or the user changed meanwhile, so
    /// no token was issued.
    async fn login_once(
        &self,
        ctx: &RequestContext,
        login: &LoginMethod,
        factor: &mut Factor,
    ) -> Result<Option<LoginOutcome>, SignInError> {
        let c = &self.core;
        let (user, held) = self.resolve_user_held(ctx, login, factor).await?;
        let tfa = factor_for(ctx);
        if !matches!(tfa, TfaMode::None) {
            c.release_all(&held).await?;
        }
        match tfa {
            TfaMode::Sms => self.login_sms_step(ctx, &user).await.map(Some),
            TfaMode::App => self.login_totp_step(&user).await.map(Some),
            TfaMode::None => {
                let action = match login {
                    LoginMethod::Social { .. } => AuditAction::LoginSuccessViaApiSocialAccount,
                    LoginMethod::Password { .. } => AuditAction::LoginSuccessViaApi,
                };
                // The throttle slots go back in the token's own store call.
                let audit = (action, None);
                let issued = match c.issue_token(ctx, &user, Via::Password, audit, &held).await {
                    Ok(issued) => issued,
                    Err(e) => {
                        // The password was right: a failure to store the token must not count.
                        c.give_back(&held).await;
                        return Err(e.into());
                    }
                };
                let Some(issued) = issued else {
                    return Ok(None);
                };
                Ok(Some(LoginOutcome::Token(issued)))
            }
        }
    }

    /// After a successful second factor: the token, or — when the user or the portal changed while
    /// the code was checked — a refusal, since the code is spent and the change may have been the
    /// very reason to stop this login.
    async fn finish_second_factor(
        &self,
        ctx: &RequestContext,
        user: &User,
        via: Via,
        (action, reason): (AuditAction, Option<&str>),
        release: &[Slot],
    ) -> Result<TokenIssued, SignInError> {
        let c = &self.core;
        match c.issue_token(ctx, user, via, (action, reason), release).await? {
            Some(issued) => Ok(issued),
            None => {
                let why = "the account or portal changed during the login";
                c.audit(ctx, Some(user.id), None, AuditAction::LoginFailViaApi, Some(why)).await?;
                Err(SignInError::InvalidCredentials)
            }
        }
    }

    /// Resolves the user behind the credentials (spec §5.1, §5.4), applying the login throttle, and
    /// notes in `factor` what decided (a password login on a directory portal is a directory bind).
    /// Every failure is audited and answered as `InvalidCredentials`.
    async fn resolve_user(
        &self,
        ctx: &RequestContext,
        login: &LoginMethod,
        factor: &mut Factor,
    ) -> Result<User, SignInError> {
        let (user, held) = self.resolve_user_held(ctx, login, factor).await?;
        self.core.release_all(&held).await?;
        Ok(user)
    }

    /// [`SignIn::resolve_user`], leaving the throttle slots of an accepted attempt to the caller,
    /// who must give them back (an accepted password does not count): a login that ends in a
    /// token gives them back in the token's own store call, one commit fewer.
    async fn resolve_user_held(
        &self,
        ctx: &RequestContext,
        login: &LoginMethod,
        factor: &mut Factor,
    ) -> Result<(User, Vec<Slot>), SignInError> {
        let (login, password) = match login {
            LoginMethod::Social { provider, proof } => {
                *factor = Factor::Social;
                return Ok((self.resolve_social(ctx, provider, proof).await?, Vec::new()));
            }
            LoginMethod::Password { login, password } => (login, password),
        };
        let c = &self.core;
        let login_lower = login.trim().to_lowercase();
        let portal = &ctx.portal;
        // Load shedding: with the hashing queue full, this login would be answered busy after its
        // lookup and both throttle writes (taken, then given back). Answered first, a flood's
        // excess costs nothing but its parsing, and the cores stay on the logins that can be
        // served. The answer is the same for every account, and nothing is counted or audited, as
        // when the queue refuses later. A portal with a directory may decide without a hash, so it
        // is not shed here.
        if c.hasher.saturated() && c.directory.directory_for(portal).is_none() {
            return Err(SignInError::Busy("password hashing queue is full".into()));
        }
        // The lookup comes first, because the throttles count by account: e-mail, upper-case e-mail
        // and every spelling of the id are one account (spec §5.1 "Throttle keys").
        let found = self.find_login(portal.id, &login_lower).await?;
        let account = c.account_key(found.as_ref(), &login_lower);
        let throttle_key = keys::login(portal.id, &account, ctx.client_ip);
        // The per-account limit across addresses (distributed guessing): counted like the login
        // throttle, but once engaged only known clients may go on, so an attacker can neither guess
        // on nor lock the owner out. An unknown login has a pseudo-account of its own, so both paths
        // cost the same store work. Both throttles are taken in one store call (one commit), the
        // account's only when the login throttle granted.
        let account_key = keys::account(portal.id, &account);
        let taken = c
            .store
            .acquire_then(
                (&throttle_key, &portal.settings.login_throttle),
                (&account_key, &portal.settings.account_throttle),
                c.clock.now(),
            )
            .await?;
        let (slot, account_slot) = match taken {
            AcquireThen::Granted(slot, account) => (slot, account),
            AcquireThen::Refused { until } => {
                c.observer.throttled(ThrottleRule::Login);
                let reason = "login throttle";
                let user = found.as_ref().map(|u| u.id);
                return Err(self.throttled(ctx, user, Some(&login_lower), until, reason).await);
            }
        };
        let account_slot = match account_slot {
            Acquire::Granted(s) => Some(s),
            Acquire::Refused { until } => {
                let known = match &found {
                    Some(u) => c.is_known_client(ctx, u).await?,
                    None => false,
                };
                if !known {
                    c.observer.throttled(ThrottleRule::Account);
                    // Refused before any password check, so this attempt does not count either.
                    c.store.release(slot).await?;
                    if let Some(u) = &found {
                        c.notify(&ctx.portal, u, Notice::AccountLimit, Some(ctx)).await?;
                    }
                    let reason = "per-account limit, unknown client";
                    let user = found.as_ref().map(|u| u.id);
                    return Err(self.throttled(ctx, user, Some(&login_lower), until, reason).await);
                }
                None
            }
        };
        // Given back in one store call, for the same reason.
        let release = |slots: [Option<Slot>; 2]| async move {
            let slots: Vec<Slot> = slots.into_iter().flatten().collect();
            c.release_all(&slots).await
        };
        // Which check decides (spec §5.9): on a portal with a directory, the directory does for the
        // logins it may own (nobody here, a directory user, an imported user without a password);
        // a local account with a password of its own keeps being checked here.
        let directory = c.directory.directory_for(portal).filter(|_| {
            found
                .as_ref()
                .is_none_or(|u| matches!(u.credential, Credential::Directory(_) | Credential::None))
        });
        *factor = if directory.is_some() { Factor::Directory } else { Factor::Password };
        let checked = match directory {
            Some(d) => self.check_directory(ctx, &d, login, password, found.as_ref()).await,
            None => self.check_password(found.as_ref(), password).await,
        };
        let checked = match checked {
            Ok(checked) => checked,
            Err(e) => {
                // A busy hasher or an unreachable directory says nothing about the password: the
                // attempt must not count.
                release([Some(slot), account_slot]).await?;
                if let SignInError::ProviderUnavailable(_) = e {
                    let reason = "directory unavailable";
                    let user = found.as_ref().map(|u| u.id);
                    c.audit(ctx, user, None, AuditAction::LoginFailViaApi, Some(reason)).await?;
                }
                return Err(e);
            }
        };
        match checked {
            Checked::Accepted(user) if !user.disabled => {
                Ok((*user, [Some(slot), account_slot].into_iter().flatten().collect()))
            }
            Checked::Accepted(user) => {
                let reason = Some("user disabled");
                let login = Some(audit_login(&login_lower));
                c.audit(ctx, Some(user.id), login, AuditAction::LoginFailViaApi, reason).await?;
                Err(SignInError::InvalidCredentials)
            }
            Checked::Refused(reason) => {
                let user = found.map(|u| u.id);
                let login = Some(audit_login(&login_lower));
                c.audit(ctx, user, login, AuditAction::LoginFailViaApi, Some(reason)).await?;
                Err(SignInError::InvalidCredentials)
            }
        }
    }

    /// The local password check (spec §5.1): argon2id, or an imported upstream hash, which a success
    /// replaces by argon2id in the same step as an outdated argon2id hash. Everything that cannot
    /// match (no user, no usable password) costs one verification of the dummy hash, so timing does
    /// not tell them apart.
    async fn check_password(
        &self,
        found: Option<&User>,
        password: &Password,
    ) -> Result<Checked, SignInError> {
        let c = &self.core;
        let pw = password.secret();
        let dummy = |reason: &'static str| async move {
            c.hasher.verify(pw, &c.hasher.dummy_hash()).await.map(|_| Checked::Refused(reason))
        };
        let Some(user) = found else {
            return Ok(dummy("unknown user").await?);
        };
        let (verified, outdated) = match &user.credential {
            Credential::Password(hash) => {
                (c.hasher.verify(pw, hash).await?, c.hasher.needs_rehash(hash))
            }
            Credential::Upstream(hash) => match c.upstream_realm(hash.realm()).await? {
                Some(realm) => (c.hasher.verify_upstream(pw, hash, &realm).await?, true),
                None => return Ok(dummy("the imported hash's upstream realm is missing").await?),
            },
            Credential::Directory(_) => {
                return Ok(dummy("directory user, but the portal has no directory").await?);
            }
            Credential::None => return Ok(dummy("no password set").await?),
        };
        if !verified {
            return Ok(Checked::Refused("wrong password"));
        }
        if outdated && !user.disabled {
            self.rehash(user, password).await?;
        }
        Ok(Checked::Accepted(Box::new(user.clone())))
    }

    /// Replaces a verified but imported or outdated hash by argon2id with the configured parameters,
    /// only if the stored credential is still the one verified (spec §5.1). A full hashing queue
    /// skips the upgrade rather than the login: the next login upgrades instead.
    async fn rehash(&self, user: &User, password: &Password) -> Result<(), SignInError> {
        let c = &self.core;
        let new = match c.hasher.hash(password.secret()).await {
            Ok(h) => h,
            Err(crate::password::HashError::Busy) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if c.store.upgrade_credential(user.id, &user.credential, &new).await? {
            let event = crate::audit::AuditEvent {
                at: c.clock.now(),
                portal: user.portal,
                user: Some(user.id),
                login: None,
                action: AuditAction::PasswordRehashed,
                ip: std::net::IpAddr::from([127, 0, 0, 1]),
                user_agent: None,
                reason: Some(
                    match user.credential {
                        Credential::Upstream(_) => "imported upstream hash replaced",
                        _ => "outdated parameters replaced",
                    }
                    .to_owned(),
                ),
            };
            c.store.append_audit(&event).await?;
        }
        Ok(())
    }

    /// The directory check (spec §5.9): the directory binds, and the local user is made or brought
    /// up to date from its entry. An unknown login also costs a verification of the dummy hash, as
    /// an unknown local user does, so a directory portal does not tell its local users apart.
    async fn check_directory(
        &self,
        ctx: &RequestContext,
        directory: &str,
        login: &str,
        password: &Password,
        found: Option<&User>,
    ) -> Result<Checked, SignInError> {
        let c = &self.core;
        let entry = match c.directory.authenticate(directory, login.trim(), password.secret()).await
        {
            Ok(entry) => entry,
            Err(DirectoryError::UnknownLogin) => {
                c.hasher.verify(password.secret(), &c.hasher.dummy_hash()).await?;
                return Ok(Checked::Refused("unknown to the directory"));
            }
            Err(DirectoryError::WrongPassword) => {
                return Ok(Checked::Refused("wrong password (directory)"));
            }
            Err(DirectoryError::NotInGroup) => {
                return Ok(Checked::Refused("not a member of the directory group"));
            }
            Err(DirectoryError::Disabled) => {
                return Ok(Checked::Refused("disabled in the directory"));
            }
            Err(DirectoryError::Unavailable(why)) => {
                return Err(SignInError::ProviderUnavailable(why));
            }
        };
        let provisioned = c.provision(&ctx.portal, directory, found, &entry).await?;
        c.audit_provisioned(ctx, &provisioned).await?;
        Ok(match provisioned {
            Provisioned::Created(u) | Provisioned::Updated(u) | Provisioned::Unchanged(u) => {
                Checked::Accepted(Box::new(u))
            }
            Provisioned::Refused(why) => Checked::Refused(why),
        })
    }

    /// Audits a throttled login and answers the refusal (a failure to audit is the answer instead).
    async fn throttled(
        &self,
        ctx: &RequestContext,
        user: Option<UserId>,
        login_lower: Option<&str>,
        until: Timestamp,
        reason: &str,
    ) -> SignInError {
        let action = AuditAction::LoginFailBruteForce;
        let login = login_lower.map(audit_login);
        match self.core.audit(ctx, user, login, action, Some(reason)).await {
            Ok(()) => SignInError::LoginThrottled { until },
            Err(e) => e.into(),
        }
    }

    async fn find_login(
        &self,
        portal: PortalId,
        login_lower: &str,
    ) -> Result<Option<User>, SignInError> {
        let store = &self.core.store;
        if let Some(u) = store.user_by_email(portal, login_lower).await? {
            return Ok(Some(u));
        }
        // `userName` may also be the user id (spec §5.1).
        if let Ok(id) = login_lower.parse::<UserId>()
            && let Some(u) = store.user_by_id(id).await?
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
        proof: &SocialProof,
    ) -> Result<User, SignInError> {
        let c = &self.core;
        let provider = provider.to_ascii_lowercase();
        // Every failed social attempt costs an outbound call, so failures are limited per (portal,
        // client address) like the login throttle (spec §5.4). Unlike the password throttle no slot is
        // taken for the attempt: only failures count, so any number of good social logins from one
        // address (an office behind one NAT) go through at once.
        let key = keys::social(ctx.portal.id, ctx.client_ip);
        let rule = ctx.portal.settings.login_throttle;
        let now = c.clock.now();
        if c.store.count_since(&key, later(now, -rule.window)).await? >= u64::from(rule.limit) {
            let until = later(now, rule.block.max(rule.window));
            c.observer.throttled(ThrottleRule::Social);
            return Err(self.throttled(ctx, None, None, until, "social login throttle").await);
        }
        let fail = AuditAction::LoginFailViaApiSocialAccount;
        let identity = match c.social_identity(ctx, &provider, proof).await {
            Ok(identity) => identity,
            Err(SocialFailure::Unavailable(why)) => {
                // The provider's outage says nothing about the client: the attempt does not count.
                c.audit(ctx, None, None, fail, Some("provider unavailable")).await?;
                return Err(SignInError::ProviderUnavailable(why));
            }
            Err(SocialFailure::Store(e)) => return Err(e.into()),
            Err(SocialFailure::Refused(why)) => {
                c.store.record(&key, &rule, now).await?;
                c.audit(ctx, None, None, fail, Some(&why)).await?;
                return Err(SignInError::InvalidCredentials);
            }
        };
        let email = identity.email.as_deref();
        match c.linked_user(ctx, &provider, &identity).await? {
            Some(u) if !u.disabled => Ok(u),
            other => {
                c.store.record(&key, &rule, now).await?;
                let reason =
                    if other.is_some() { "user disabled" } else { "unknown social account" };
                c.audit(ctx, other.map(|u| u.id), email, fail, Some(reason)).await?;
                Err(SignInError::InvalidCredentials)
            }
        }
    }

    /// Audits a refused send (spec §7: SMS pumping must show in the trail) and answers the refusal;
    /// a failure to audit is the answer instead.
    async fn send_refused(
        &self,
        ctx: &RequestContext,
        user: &User,
        until: Timestamp,
        reason: &str,
    ) -> SignInError {
        match self
            .core
            .audit(ctx, Some(user.id), None, AuditAction::SmsSendRefused, Some(reason))
            .await
        {
            Ok(()) => SignInError::SmsSendLimited { until },
            Err(e) => e.into(),
        }
    }

    fn prefix_allowed(&self, ctx: &RequestContext, phone: &str) -> bool {
        let prefixes = &ctx.portal.settings.sms.allowed_prefixes;
        prefixes.is_empty() || prefixes.iter().any(|p| phone.starts_with(p.as_str()))
    }

    /// Sends a new code to `phone` through the outbox, under every send limit (spec §5.3).
    /// Returns the new code's expiry.
    async fn send_code(
        &self,
        ctx: &RequestContext,
        user: &User,
        phone: &str,
        kind: SendKind,
    ) -> Result<Timestamp, SignInError> {
        let s = &ctx.portal.settings.sms;
        let now = self.core.clock.now();
        let day = jiff::SignedDuration::from_hours(24);
        if !self.prefix_allowed(ctx, phone) {
            return Err(self
                .send_refused(ctx, user, later(now, day), "country prefix not allowed")
                .await);
        }
        let cooldown_key = keys::sms_cooldown(ctx.portal.id, phone);
        let cooldown = Rule::per(1, s.resend_cooldown);
        let mut wants = vec![
            (keys::sms_phone(ctx.portal.id, phone), Rule::per(s.per_phone_daily, day)),
            (keys::sms_user(user.id), Rule::per(s.per_user_daily, day)),
            (
                keys::sms_ip(ctx.portal.id, ctx.client_ip),
                Rule::per(s.per_ip_hourly, jiff::SignedDuration::from_hours(1)),
            ),
        ];
        let mut rules =
            vec![ThrottleRule::SmsPerPhone, ThrottleRule::SmsPerUser, ThrottleRule::SmsPerIp];
        if let Some(budget) = s.portal_daily_budget {
            wants.push((keys::sms_portal(ctx.portal.id), Rule::per(budget, day)));
            rules.push(ThrottleRule::SmsPortalBudget);
        }
        if kind == SendKind::SendSms {
            // The cool-down goes first so that a refused resend spends none of the daily allowances.
            wants.insert(0, (cooldown_key.clone(), cooldown));
            rules.insert(0, ThrottleRule::SmsResendCooldown);
        }
        if let Err((refused, until)) = self.core.acquire_all_or_refusal(&wants).await? {
            if let Some(rule) = rules.get(refused) {
                self.core.observer.throttled(*rule);
            }
            return Err(self.send_refused(ctx, user, until, "send limit").await);
        }
        if kind != SendKind::SendSms {
            // Step 1 and setphone are never refused by the cool-down, but their codes start it.
            self.core.store.record(&cooldown_key, &cooldown, now).await?;
        }
        let code = sms::generate_code(self.core.rng.as_ref());
        let expires = later(now, self.core.limits.sms_code_validity);
        let record = SmsCodeRecord {
            user: user.id,
            phone: phone.to_owned(),
            code_hash: sms::code_hash(&self.core.key, user.id, phone, code),
            issued_at: now,
            expires_at: expires,
        };
        self.core.store.insert_sms_code(&record, self.core.limits.sms_max_outstanding, now).await?;
        let text = sms::message_text(ctx.portal.settings.language, code);
        let sealed = self.core.key.seal(
            self.core.rng.as_ref(),
            KeyContext::SmsOutbox,
            b"",
            text.as_bytes(),
        )?;
        self.core
            .store
            .enqueue_sms(&NewOutboxMessage {
                portal: ctx.portal.id,
                to: phone.to_owned(),
                sealed_text: sealed,
                created_at: now,
            })
            .await?;
        Ok(expires)
    }

    async fn login_sms_step(
        &self,
        ctx: &RequestContext,
        user: &User,
    ) -> Result<LoginOutcome, SignInError> {
        let (Some(phone), true) = (&user.phone, user.phone_activated) else {
            return Ok(LoginOutcome::SmsPending { expires: None, phone_noise: None });
        };
        let now = self.core.clock.now();
        let expires = match self.core.store.newest_sms_code(user.id, phone, now).await? {
            Some(code) => code.expires_at,
            None => self.send_code(ctx, user, phone, SendKind::Login).await?,
        };
        Ok(LoginOutcome::SmsPending { expires: Some(expires), phone_noise: Some(noise(phone)) })
    }

    async fn login_totp_step(&self, user: &User) -> Result<LoginOutcome, SignInError> {
        let (secret, activated) = self.core.totp_secret(user.id).await?;
        let tfa_key = (!activated).then(|| SecretString::new(totp::secret_base32(&secret)));
        Ok(LoginOutcome::TotpPending { tfa_key })
    }

    /// `POST authentication/setphone` (spec §4).
    pub async fn set_phone(
        &self,
        ctx: &RequestContext,
        login: &LoginMethod,
        mobile_phone: Option<&str>,
    ) -> Result<LoginOutcome, SignInError> {
        let user = self.resolve_user(ctx, login, &mut first_factor(login)).await?;
        if factor_for(ctx) != TfaMode::Sms {
            return Err(SignInError::InvalidCredentials);
        }
        if user.phone.is_some() && user.phone_activated {
            return Err(SignInError::PhoneAlreadyActivated);
        }
        let raw = mobile_phone
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(SignInError::PhoneRequired)?;
        let phone = Phone::parse(raw).map_err(|_| SignInError::InvalidPhone)?;
        if !self.prefix_allowed(ctx, phone.digits()) {
            return Err(SignInError::InvalidPhone);
        }
        let rule = Rule::per(1, ctx.portal.settings.sms.setphone_cooldown);
        if let Err(until) = self.core.acquire(&keys::setphone(user.id), &rule).await? {
            self.core.observer.throttled(ThrottleRule::SetphoneCooldown);
            return Err(self.send_refused(ctx, &user, until, "setphone cool-down").await);
        }
        if !self.core.store.set_phone_if_unactivated(user.id, phone.digits()).await? {
            return Err(SignInError::PhoneAlreadyActivated);
        }
        // Codes sent to an earlier, never activated number must not activate this one.
        self.core.store.burn_sms_codes(user.id).await?;
        self.core
            .audit(
                ctx,
                Some(user.id),
                None,
                AuditAction::UserUpdatedMobileNumber,
                Some("phone set, not activated"),
            )
            .await?;
        let expires = self.send_code(ctx, &user, phone.digits(), SendKind::SetPhone).await?;
        Ok(LoginOutcome::SmsPending { expires: Some(expires), phone_noise: Some(phone.noise()) })
    }

    /// `POST authentication/sendsms` (spec §4).
    pub async fn send_sms(
        &self,
        ctx: &RequestContext,
        login: &LoginMethod,
    ) -> Result<LoginOutcome, SignInError> {
        let user = self.resolve_user(ctx, login, &mut first_factor(login)).await?;
        if factor_for(ctx) != TfaMode::Sms {
            return Err(SignInError::InvalidCredentials);
        }
        let phone = user.phone.clone().ok_or(SignInError::PhoneRequired)?;
        let expires = self.send_code(ctx, &user, &phone, SendKind::SendSms).await?;
        Ok(LoginOutcome::SmsPending { expires: Some(expires), phone_noise: Some(noise(&phone)) })
    }

    /// Step 2, `POST authentication/{code}` (spec §4): an SMS code, a TOTP code or a backup code.
    pub async fn verify_code(
        &self,
        ctx: &RequestContext,
        login: &LoginMethod,
        code: &str,
    ) -> Result<TokenIssued, SignInError> {
        // Step 2 counts under its second factor, even when its repeated first-step check fails; on a
        // portal without one it counts under the first step's factor.
        let mut factor = match factor_for(ctx) {
            TfaMode::Sms => Factor::Sms,
            TfaMode::App => meant_factor(code),
            TfaMode::None => first_factor(login),
        };
        let issued = self.verify_code_observed(ctx, login, code, &mut factor).await;
        let result = match &issued {
            Ok(_) => LoginResult::Ok,
            Err(e) => result_of(e),
        };
        self.core.observer.login(factor, result);
        issued
    }

    /// Step 2, noting in `factor` which app factor matched (a TOTP code or a backup code).
    async fn verify_code_observed(
        &self,
        ctx: &RequestContext,
        login: &LoginMethod,
        code: &str,
        factor: &mut Factor,
    ) -> Result<TokenIssued, SignInError> {
        let mut first = first_factor(login);
        // The first step's throttle slots are held until the end, so that a step that ends in a
        // token gives them back in the token's own store call (with the code's slots).
        let (user, held) = self.resolve_user_held(ctx, login, &mut first).await?;
        let passed = match factor_for(ctx) {
            TfaMode::Sms => self.verify_sms(ctx, &user, code).await,
            TfaMode::App => self.verify_totp(ctx, &user, code, factor).await,
            TfaMode::None => Err(self
                .code_refused(
                    ctx,
                    &user,
                    AuditAction::LoginFailViaApi,
                    "second factor not applicable",
                )
                .await),
        };
        let passed = match passed {
            Ok(passed) => passed,
            Err(e) => {
                // The password was right, so its attempt does not count, whatever the code was.
                self.core.release_all(&held).await?;
                return Err(e);
            }
        };
        let mut slots = held;
        slots.extend(passed.slots);
        let audit = (passed.action, passed.reason);
        let finished = self.finish_second_factor(ctx, &user, passed.via, audit, &slots).await;
        if finished.is_err() {
            // Both the password and the code were right, so neither attempt counts, whatever went
            // wrong after them. A refusal for a changed account already gave the slots back with
            // its store call; giving back a slot twice changes nothing.
            self.core.give_back(&slots).await;
        }
        finished
    }

    /// Decides what the slots a code check took become: kept with a right code (given back with
    /// the token), counted with a wrong one (audited as refused), and given back when the check
    /// failed, since a failure says nothing about the code, or came after it was found right.
    async fn settle(
        &self,
        ctx: &RequestContext,
        user: &User,
        slots: Vec<Slot>,
        checked: Result<CodeCheck, SignInError>,
    ) -> Result<Passed, SignInError> {
        match checked {
            Ok(CodeCheck::Right { via, action, reason }) => {
                Ok(Passed { slots, via, action, reason })
            }
            Ok(CodeCheck::Wrong { action, reason }) => {
                Err(self.code_refused(ctx, user, action, reason).await)
            }
            Err(e) => {
                self.core.give_back(&slots).await;
                Err(e)
            }
        }
    }

    /// Audits a refused second factor and answers it like a wrong password (a failure to audit is
    /// the answer instead).
    async fn code_refused(
        &self,
        ctx: &RequestContext,
        user: &User,
        action: AuditAction,
        reason: &str,
    ) -> SignInError {
        match self.core.audit(ctx, Some(user.id), None, action, Some(reason)).await {
            Ok(()) => SignInError::InvalidCredentials,
            Err(e) => e.into(),
        }
    }

    /// Takes the daily and the per-factor wrong-code slots, daily first.
    async fn second_factor_slots(
        &self,
        user: UserId,
        daily: &Rule,
        per_factor: (String, Rule),
        per_factor_rule: ThrottleRule,
    ) -> Result<Vec<Slot>, SignInError> {
        // Both in one store call (one commit), the per-factor one only when the daily one granted.
        let day_key = keys::second_factor_day(user);
        let c = &self.core;
        let taken = c
            .store
            .acquire_then((&day_key, daily), (&per_factor.0, &per_factor.1), c.clock.now())
            .await?;
        let (day, per) = match taken {
            AcquireThen::Granted(day, per) => (day, per),
            AcquireThen::Refused { until } => {
                c.observer.throttled(ThrottleRule::SecondFactorDaily);
                return Err(SignInError::SecondFactorLocked { until });
            }
        };
        match per {
            Acquire::Granted(s) => Ok(vec![day, s]),
            Acquire::Refused { until } => {
                c.observer.throttled(per_factor_rule);
                c.store.release(day).await?;
                Err(SignInError::CodeAttemptsExceeded { until })
            }
        }
    }

    async fn verify_sms(
        &self,
        ctx: &RequestContext,
        user: &User,
        code: &str,
    ) -> Result<Passed, SignInError> {
        let Some(phone) = user.phone.clone() else {
            return Err(self
                .code_refused(ctx, user, AuditAction::LoginFailViaApiSms, "no phone")
                .await);
        };
        let slots = self
            .second_factor_slots(
                user.id,
                &self.core.limits.sms_second_factor_daily,
                (keys::sms_wrong(ctx.portal.id, &phone), self.core.limits.sms_wrong),
                ThrottleRule::SmsWrong,
            )
            .await?;
        let checked = self.check_sms(ctx, user, &phone, code).await;
        self.settle(ctx, user, slots, checked).await
    }

    /// The SMS code check behind [`SignIn::verify_sms`]'s slots; a right code also activates the
    /// phone it came to.
    async fn check_sms(
        &self,
        ctx: &RequestContext,
        user: &User,
        phone: &str,
        code: &str,
    ) -> Result<CodeCheck, SignInError> {
        let now = self.core.clock.now();
        let ok = match sms::parse_code(code) {
            Some(c) => {
                let hash = sms::code_hash(&self.core.key, user.id, phone, c);
                self.core.store.consume_sms_code(user.id, phone, &hash, now).await?
            }
            None => false,
        };
        if !ok {
            let reason = "wrong, expired or used code";
            return Ok(CodeCheck::Wrong { action: AuditAction::LoginFailViaApiSms, reason });
        }
        if !user.phone_activated && self.core.store.activate_phone(user.id, phone).await? {
            self.core
                .audit(
                    ctx,
                    Some(user.id),
                    None,
                    AuditAction::UserUpdatedMobileNumber,
                    Some("phone activated"),
                )
                .await?;
            self.core.notify(&ctx.portal, user, Notice::PhoneChanged, Some(ctx)).await?;
        }
        let via = Via::Sms { phone_noise: noise(phone) };
        Ok(CodeCheck::Right { via, action: AuditAction::LoginSuccessViaApiSms, reason: None })
    }

    async fn verify_totp(
        &self,
        ctx: &RequestContext,
        user: &User,
        code: &str,
        factor: &mut Factor,
    ) -> Result<Passed, SignInError> {
        let Some(record) = self.core.store.totp(user.id).await? else {
            // No secret was ever issued: the user has not done step 1, so no code can be right.
            return Err(self
                .code_refused(ctx, user, AuditAction::LoginFailViaApiTfa, "no totp secret")
                .await);
        };
        // A wider window accepts more codes per guess, so the daily lock tightens with it (spec §5.6).
        let configured = self.core.limits.second_factor_daily;
        let window = ctx.portal.settings.totp_window;
        let daily =
            Rule { limit: configured.limit.min(totp::daily_guess_limit(window)), ..configured };
        let slots = self
            .second_factor_slots(
                user.id,
                &daily,
                (keys::tfa_minute(user.id), self.core.limits.tfa_wrong_per_minute),
                ThrottleRule::TfaWrong,
            )
            .await?;
        let checked = self.check_totp(ctx, user, &record, code, factor).await;
        self.settle(ctx, user, slots, checked).await
    }

    /// The app code check behind [`SignIn::verify_totp`]'s slots: a TOTP code, or a backup code
    /// once the app is activated; the first right code activates the app.
    async fn check_totp(
        &self,
        ctx: &RequestContext,
        user: &User,
        record: &TotpRecord,
        code: &str,
        factor: &mut Factor,
    ) -> Result<CodeCheck, SignInError> {
        let secret = self
            .core
            .key
            .open(KeyContext::TotpSecret, &totp_binding(user.id), &record.sealed_secret)
            .map_err(|e| SignInError::Internal(format!("totp secret: {e}")))?;
        let now = self.core.clock.now();
        let mut used_backup = false;
        let mut ok = false;
        if let Some(step) = totp::matching_step(&secret, code, now, ctx.portal.settings.totp_window)
        {
            *factor = Factor::Totp;
            ok = self.core.store.use_totp_step(user.id, step).await?;
        } else if record.activated
            && let Some(normalized) = backup::lookup_form(code)
        {
            let hash = backup::code_hash(&self.core.key, user.id, &normalized);
            ok = self.core.store.use_backup_code(user.id, &hash).await?;
            used_backup = ok;
            if ok {
                *factor = Factor::Backup;
            }
        }
        if !ok {
            return Ok(CodeCheck::Wrong {
                action: AuditAction::LoginFailViaApiTfa,
                reason: "wrong or used code",
            });
        }
        if !record.activated {
            let (hashes, reveal) = self.core.new_backup_set(ctx, user.id)?;
            if self.core.store.activate_totp(user.id, &hashes, &reveal).await? {
                self.core
                    .audit(ctx, Some(user.id), None, AuditAction::UserConnectedTfaApp, None)
                    .await?;
            }
        }
        let reason = used_backup.then_some("backup code");
        Ok(CodeCheck::Right { via: Via::Totp, action: AuditAction::LoginSuccessViaApiTfa, reason })
    }
}
