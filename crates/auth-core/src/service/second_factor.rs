//! The second-factor use cases: SMS codes (setphone, sendsms, step 1's send), TOTP and backup codes,
//! and step 2 (`POST authentication/{code}`).
//!
//! Wrong-code limits take their slot in the shared counter *before* the code is checked and give it back
//! on success (see [`crate::throttle`]), so concurrent guesses can never exceed a limit. Single use is
//! the store's atomic consume: of any number of requests racing with one good code, one wins.

use jiff::Timestamp;

use super::{AuthService, Credentials, LoginOutcome, RequestContext, Session, TokenIssued, Via};
use crate::audit::AuditAction;
use crate::error::AuthError;
use crate::later;
use crate::model::{TfaMode, User, UserId};
use crate::phone::{Phone, noise};
use crate::ports::{NewOutboxMessage, SmsCodeRecord};
use crate::secret::SecretString;
use crate::throttle::{Rule, Slot, keys};
use crate::{backup, sms, totp};

/// Why a code is being sent: only `sendsms` is subject to the resend cool-down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SendKind {
    Login,
    SetPhone,
    SendSms,
}

/// One backup code as `settings/tfaappcodes` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupCodeView {
    /// The code, or `********` once it has been shown.
    pub code: SecretString,
    /// Whether it has been used.
    pub used: bool,
}

/// The context string a TOTP secret is sealed under (binds the ciphertext to its user).
fn totp_context(user: UserId) -> Vec<u8> {
    [b"totp-secret:".as_slice(), user.0.as_bytes()].concat()
}

fn reveal_context(user: UserId) -> Vec<u8> {
    [b"backup-reveal:".as_slice(), user.0.as_bytes()].concat()
}

/// The context string an outbox text is sealed under.
pub const OUTBOX_CONTEXT: &[u8] = b"sms-outbox";

const MASK: &str = "********";

impl AuthService {
    async fn release_all(&self, slots: &[Slot]) -> Result<(), AuthError> {
        for s in slots {
            self.store.release(*s).await?;
        }
        Ok(())
    }

    /// Takes one slot of every rule, or none: a refusal gives back what was taken.
    async fn acquire_all(
        &self,
        wants: &[(String, Rule)],
    ) -> Result<Result<Vec<Slot>, Timestamp>, AuthError> {
        let mut taken = Vec::with_capacity(wants.len());
        for (key, rule) in wants {
            match self.acquire(key, rule).await? {
                Ok(slot) => taken.push(slot),
                Err(until) => {
                    self.release_all(&taken).await?;
                    return Ok(Err(until));
                }
            }
        }
        Ok(Ok(taken))
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
    ) -> Result<Timestamp, AuthError> {
        let s = &ctx.portal.settings.sms;
        let now = self.clock.now();
        let day = jiff::SignedDuration::from_hours(24);
        let refused = |until| AuthError::SmsSendLimited { until };
        if !self.prefix_allowed(ctx, phone) {
            return Err(refused(later(now, day)));
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
        if let Some(budget) = s.portal_daily_budget {
            wants.push((keys::sms_portal(ctx.portal.id), Rule::per(budget, day)));
        }
        if kind == SendKind::SendSms {
            // The cool-down goes first so that a refused resend spends none of the daily allowances.
            wants.insert(0, (cooldown_key.clone(), cooldown));
        }
        if let Err(until) = self.acquire_all(&wants).await? {
            return Err(refused(until));
        }
        if kind != SendKind::SendSms {
            // Step 1 and setphone are never refused by the cool-down, but their codes start it.
            self.store.record(&cooldown_key, &cooldown, now).await?;
        }
        let code = sms::generate_code(self.rng.as_ref());
        let expires = later(now, self.limits.sms_code_validity);
        let record = SmsCodeRecord {
            user: user.id,
            phone: phone.to_owned(),
            code_hash: sms::code_hash(&self.key, user.id, phone, code),
            issued_at: now,
            expires_at: expires,
        };
        self.store.insert_sms_code(&record, self.limits.sms_max_outstanding, now).await?;
        let text = sms::message_text(ctx.portal.settings.language, code);
        let sealed = self
            .key
            .seal(self.rng.as_ref(), OUTBOX_CONTEXT, text.as_bytes())
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        self.store
            .enqueue_sms(&NewOutboxMessage {
                portal: ctx.portal.id,
                to: phone.to_owned(),
                sealed_text: sealed,
                created_at: now,
            })
            .await?;
        Ok(expires)
    }

    pub(super) async fn login_sms_step(
        &self,
        ctx: &RequestContext,
        user: &User,
    ) -> Result<LoginOutcome, AuthError> {
        let (Some(phone), true) = (&user.phone, user.phone_activated) else {
            return Ok(LoginOutcome::SmsPending { expires: None, phone_noise: None });
        };
        let now = self.clock.now();
        let expires = match self.store.newest_sms_code(user.id, phone, now).await? {
            Some(code) => code.expires_at,
            None => self.send_code(ctx, user, phone, SendKind::Login).await?,
        };
        Ok(LoginOutcome::SmsPending { expires: Some(expires), phone_noise: Some(noise(phone)) })
    }

    /// The user's TOTP secret, creating one on first use; and whether the app is activated.
    async fn totp_secret(
        &self,
        user: UserId,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, bool), AuthError> {
        let record = match self.store.totp(user).await? {
            Some(r) => r,
            None => {
                let secret = totp::generate_secret(self.rng.as_ref());
                let sealed = self
                    .key
                    .seal(self.rng.as_ref(), &totp_context(user), &secret)
                    .map_err(|e| AuthError::Internal(e.to_string()))?;
                // Two first logins racing: the store keeps one secret, and both read it back.
                self.store.create_totp(user, &sealed).await?;
                self.store
                    .totp(user)
                    .await?
                    .ok_or_else(|| AuthError::Internal("totp record vanished".into()))?
            }
        };
        let secret = self
            .key
            .open(&totp_context(user), &record.sealed_secret)
            .map_err(|e| AuthError::Internal(format!("totp secret: {e}")))?;
        Ok((secret, record.activated))
    }

    pub(super) async fn login_totp_step(&self, user: &User) -> Result<LoginOutcome, AuthError> {
        let (secret, activated) = self.totp_secret(user.id).await?;
        let tfa_key = (!activated).then(|| SecretString::new(totp::secret_base32(&secret)));
        Ok(LoginOutcome::TotpPending { tfa_key })
    }

    /// `POST authentication/setphone` (spec §4).
    pub async fn set_phone(
        &self,
        ctx: &RequestContext,
        creds: &Credentials,
        mobile_phone: Option<&str>,
    ) -> Result<LoginOutcome, AuthError> {
        let user = self.resolve_user(ctx, creds).await?;
        if self.factor_for(ctx) != TfaMode::Sms {
            return Err(AuthError::InvalidCredentials);
        }
        if user.phone.is_some() && user.phone_activated {
            return Err(AuthError::PhoneAlreadyActivated);
        }
        let raw = mobile_phone
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::PhoneRequired)?;
        let phone = Phone::parse(raw).map_err(|_| AuthError::InvalidPhone)?;
        if !self.prefix_allowed(ctx, phone.digits()) {
            return Err(AuthError::InvalidPhone);
        }
        let rule = Rule::per(1, ctx.portal.settings.sms.setphone_cooldown);
        if let Err(until) = self.acquire(&keys::setphone(user.id), &rule).await? {
            return Err(AuthError::SmsSendLimited { until });
        }
        if !self.store.set_phone_if_unactivated(user.id, phone.digits()).await? {
            return Err(AuthError::PhoneAlreadyActivated);
        }
        // Codes sent to an earlier, never activated number must not activate this one.
        self.store.burn_sms_codes(user.id).await?;
        self.audit(
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
        creds: &Credentials,
    ) -> Result<LoginOutcome, AuthError> {
        let user = self.resolve_user(ctx, creds).await?;
        if self.factor_for(ctx) != TfaMode::Sms {
            return Err(AuthError::InvalidCredentials);
        }
        let phone = user.phone.clone().ok_or(AuthError::PhoneRequired)?;
        let expires = self.send_code(ctx, &user, &phone, SendKind::SendSms).await?;
        Ok(LoginOutcome::SmsPending { expires: Some(expires), phone_noise: Some(noise(&phone)) })
    }

    /// Step 2, `POST authentication/{code}` (spec §4): an SMS code, a TOTP code or a backup code.
    pub async fn verify_code(
        &self,
        ctx: &RequestContext,
        creds: &Credentials,
        code: &str,
    ) -> Result<TokenIssued, AuthError> {
        let user = self.resolve_user(ctx, creds).await?;
        match self.factor_for(ctx) {
            TfaMode::Sms => self.verify_sms(ctx, &user, code).await,
            TfaMode::App => self.verify_totp(ctx, &user, code).await,
            TfaMode::None => {
                self.audit(
                    ctx,
                    Some(user.id),
                    None,
                    AuditAction::LoginFailViaApi,
                    Some("second factor not applicable"),
                )
                .await?;
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// Takes the daily and the per-factor wrong-code slots, daily first.
    async fn second_factor_slots(
        &self,
        user: UserId,
        daily: &Rule,
        per_factor: (String, Rule),
    ) -> Result<Vec<Slot>, AuthError> {
        let day = match self.acquire(&keys::second_factor_day(user), daily).await? {
            Ok(s) => s,
            Err(until) => return Err(AuthError::SecondFactorLocked { until }),
        };
        match self.acquire(&per_factor.0, &per_factor.1).await? {
            Ok(s) => Ok(vec![day, s]),
            Err(until) => {
                self.store.release(day).await?;
                Err(AuthError::CodeAttemptsExceeded { until })
            }
        }
    }

    async fn verify_sms(
        &self,
        ctx: &RequestContext,
        user: &User,
        code: &str,
    ) -> Result<TokenIssued, AuthError> {
        let Some(phone) = user.phone.clone() else {
            self.audit(ctx, Some(user.id), None, AuditAction::LoginFailViaApiSms, Some("no phone"))
                .await?;
            return Err(AuthError::InvalidCredentials);
        };
        let slots = self
            .second_factor_slots(
                user.id,
                &self.limits.sms_second_factor_daily,
                (keys::sms_wrong(ctx.portal.id, &phone), self.limits.sms_wrong),
            )
            .await?;
        let now = self.clock.now();
        let ok = match sms::parse_code(code) {
            Some(c) => {
                let hash = sms::code_hash(&self.key, user.id, &phone, c);
                self.store.consume_sms_code(user.id, &phone, &hash, now).await?
            }
            None => false,
        };
        if !ok {
            self.audit(
                ctx,
                Some(user.id),
                None,
                AuditAction::LoginFailViaApiSms,
                Some("wrong, expired or used code"),
            )
            .await?;
            return Err(AuthError::InvalidCredentials);
        }
        self.release_all(&slots).await?;
        if !user.phone_activated && self.store.activate_phone(user.id, &phone).await? {
            self.audit(
                ctx,
                Some(user.id),
                None,
                AuditAction::UserUpdatedMobileNumber,
                Some("phone activated"),
            )
            .await?;
        }
        let issued = self.issue_token(ctx, user, Via::Sms { phone_noise: noise(&phone) }).await?;
        self.audit(ctx, Some(user.id), None, AuditAction::LoginSuccessViaApiSms, None).await?;
        Ok(issued)
    }

    async fn verify_totp(
        &self,
        ctx: &RequestContext,
        user: &User,
        code: &str,
    ) -> Result<TokenIssued, AuthError> {
        let Some(record) = self.store.totp(user.id).await? else {
            // No secret was ever issued: the user has not done step 1, so no code can be right.
            self.audit(
                ctx,
                Some(user.id),
                None,
                AuditAction::LoginFailViaApiTfa,
                Some("no totp secret"),
            )
            .await?;
            return Err(AuthError::InvalidCredentials);
        };
        let slots = self
            .second_factor_slots(
                user.id,
                &self.limits.second_factor_daily,
                (keys::tfa_minute(user.id), self.limits.tfa_wrong_per_minute),
            )
            .await?;
        let secret = self
            .key
            .open(&totp_context(user.id), &record.sealed_secret)
            .map_err(|e| AuthError::Internal(format!("totp secret: {e}")))?;
        let now = self.clock.now();
        let mut used_backup = false;
        let mut ok = false;
        if let Some(step) = totp::matching_step(&secret, code, now, ctx.portal.settings.totp_window)
        {
            ok = self.store.use_totp_step(user.id, step).await?;
        } else if record.activated
            && let Some(normalized) = backup::normalize(code)
        {
            let hash = backup::code_hash(&self.key, user.id, &normalized);
            ok = self.store.use_backup_code(user.id, &hash).await?;
            used_backup = ok;
        }
        if !ok {
            self.audit(
                ctx,
                Some(user.id),
                None,
                AuditAction::LoginFailViaApiTfa,
                Some("wrong or used code"),
            )
            .await?;
            return Err(AuthError::InvalidCredentials);
        }
        self.release_all(&slots).await?;
        if !record.activated {
            let (hashes, reveal) = self.new_backup_set(ctx, user.id)?;
            if self.store.activate_totp(user.id, &hashes, &reveal).await? {
                self.audit(ctx, Some(user.id), None, AuditAction::UserConnectedTfaApp, None)
                    .await?;
            }
        }
        let issued = self.issue_token(ctx, user, Via::Totp).await?;
        let reason = used_backup.then_some("backup code");
        self.audit(ctx, Some(user.id), None, AuditAction::LoginSuccessViaApiTfa, reason).await?;
        Ok(issued)
    }

    /// A fresh set of backup codes: their hashes, and the plaintext sealed for the one-time reveal.
    fn new_backup_set(
        &self,
        ctx: &RequestContext,
        user: UserId,
    ) -> Result<(Vec<[u8; 32]>, Vec<u8>), AuthError> {
        let (hashes, plain) = self.generate_backup_codes(ctx, user);
        let joined = zeroize::Zeroizing::new(
            plain.iter().map(SecretString::expose).collect::<Vec<_>>().join("\n"),
        );
        let sealed = self
            .key
            .seal(self.rng.as_ref(), &reveal_context(user), joined.as_bytes())
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        Ok((hashes, sealed))
    }

    fn generate_backup_codes(
        &self,
        ctx: &RequestContext,
        user: UserId,
    ) -> (Vec<[u8; 32]>, Vec<SecretString>) {
        let n = usize::from(ctx.portal.settings.backup_code_count);
        let plain: Vec<SecretString> =
            (0..n).map(|_| SecretString::new(backup::generate(self.rng.as_ref()))).collect();
        let hashes = plain.iter().map(|c| backup::code_hash(&self.key, user, c.expose())).collect();
        (hashes, plain)
    }

    async fn require_activated_app(&self, user: UserId) -> Result<(), AuthError> {
        match self.store.totp(user).await? {
            Some(r) if r.activated => Ok(()),
            _ => Err(AuthError::TfaNotAvailable),
        }
    }

    /// `GET settings/tfaappcodes`: the plaintext once after activation, masked afterwards (spec §5.7).
    pub async fn backup_codes(&self, session: &Session) -> Result<Vec<BackupCodeView>, AuthError> {
        let user = session.user.id;
        self.require_activated_app(user).await?;
        let records = self.store.backup_codes(user).await?;
        let revealed: Vec<String> = match self.store.take_backup_reveal(user).await? {
            Some(sealed) => {
                let plain = self
                    .key
                    .open(&reveal_context(user), &sealed)
                    .map_err(|e| AuthError::Internal(format!("backup reveal: {e}")))?;
                String::from_utf8_lossy(&plain).lines().map(str::to_owned).collect()
            }
            None => Vec::new(),
        };
        Ok(records
            .iter()
            .enumerate()
            .map(|(i, r)| BackupCodeView {
                code: SecretString::new(
                    revealed.get(i).cloned().unwrap_or_else(|| MASK.to_owned()),
                ),
                used: r.used,
            })
            .collect())
    }

    /// `PUT settings/tfaappnewcodes`: replaces the backup codes and shows the new ones once.
    pub async fn new_backup_codes(
        &self,
        ctx: &RequestContext,
        session: &Session,
    ) -> Result<Vec<BackupCodeView>, AuthError> {
        let user = session.user.id;
        self.require_activated_app(user).await?;
        let (hashes, plain) = self.generate_backup_codes(ctx, user);
        self.store.replace_backup_codes(user, &hashes, None).await?;
        Ok(plain.into_iter().map(|code| BackupCodeView { code, used: false }).collect())
    }

    /// `PUT settings/tfaappnewapp`: resets the TOTP app of the caller, or of `target` for an admin of
    /// the same portal. A new secret is issued at the next login.
    pub async fn reset_tfa_app(
        &self,
        ctx: &RequestContext,
        session: &Session,
        target: Option<UserId>,
    ) -> Result<(), AuthError> {
        let target = match target {
            None => session.user.clone(),
            Some(id) if id == session.user.id => session.user.clone(),
            Some(id) => {
                if !session.user.is_admin {
                    return Err(AuthError::Forbidden);
                }
                match self.store.user_by_id(id).await? {
                    Some(u) if u.portal == session.user.portal => u,
                    // Another portal's user is as invisible as a missing one.
                    _ => return Err(AuthError::Forbidden),
                }
            }
        };
        self.clear_tfa(target.id).await?;
        self.audit(ctx, Some(target.id), None, AuditAction::UserDisconnectedTfaApp, None).await
    }

    pub(super) async fn clear_tfa(&self, user: UserId) -> Result<(), AuthError> {
        self.store.delete_totp(user).await?;
        self.store.reset(&keys::tfa_minute(user)).await?;
        self.store.reset(&keys::second_factor_day(user)).await?;
        Ok(())
    }
}
