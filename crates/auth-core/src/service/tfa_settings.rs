//! Managing one's second factor: `GET settings/tfaappcodes`, `PUT settings/tfaappnewcodes` and
//! `PUT settings/tfaappnewapp` (spec §5.7), for the holder of a token.

use std::sync::Arc;

use super::factors::totp_binding;
use super::{Core, RequestContext, Session};
use crate::audit::AuditAction;
use crate::crypto::KeyContext;
use crate::error::TfaSettingsError;
use crate::mail::Notice;
use crate::model::UserId;
use crate::secret::SecretString;

/// One backup code as `settings/tfaappcodes` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupCodeView {
    /// The code, or `********` once it has been shown.
    pub code: SecretString,
    /// Whether it has been used.
    pub used: bool,
}

const MASK: &str = "********";

/// The capability of managing one's second factor.
#[derive(Clone)]
pub struct TfaSettings {
    pub(super) core: Arc<Core>,
}

impl std::fmt::Debug for TfaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TfaSettings")
    }
}

impl TfaSettings {
    async fn require_activated_app(&self, user: UserId) -> Result<(), TfaSettingsError> {
        match self.core.store.totp(user).await? {
            Some(r) if r.activated => Ok(()),
            _ => Err(TfaSettingsError::TfaNotAvailable),
        }
    }

    /// `GET settings/tfaappcodes`: the plaintext once after activation, masked afterwards (spec §5.7).
    pub async fn backup_codes(
        &self,
        session: &Session,
    ) -> Result<Vec<BackupCodeView>, TfaSettingsError> {
        let user = session.user.id;
        self.require_activated_app(user).await?;
        let records = self.core.store.backup_codes(user).await?;
        let revealed: Vec<String> = match self.core.store.take_backup_reveal(user).await? {
            Some(sealed) => {
                let plain = self
                    .core
                    .key
                    .open(KeyContext::BackupReveal, &totp_binding(user), &sealed)
                    .map_err(|e| TfaSettingsError::Internal(format!("backup reveal: {e}")))?;
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

    /// Refuses a token that is not fresh: issued by a complete login within `fresh_token` (spec §5.8).
    /// Every token is issued by a login that passed every factor its portal required of it, and a
    /// change of the portal's mode ends them all, so its age is what remains to check.
    fn require_fresh(&self, session: &Session) -> Result<(), TfaSettingsError> {
        let now = self.core.clock.now();
        let age = now.duration_since(session.issued_at);
        if age > self.core.limits.fresh_token || now < session.issued_at {
            return Err(TfaSettingsError::ReauthenticationRequired);
        }
        Ok(())
    }

    /// `PUT settings/tfaappnewcodes`: replaces the backup codes and shows the new ones once. Needs a
    /// fresh token, is audited, and ends the user's other tokens (spec §5.8).
    pub async fn new_backup_codes(
        &self,
        ctx: &RequestContext,
        session: &Session,
    ) -> Result<Vec<BackupCodeView>, TfaSettingsError> {
        let user = session.user.id;
        self.require_fresh(session)?;
        self.require_activated_app(user).await?;
        let (hashes, plain) = self.core.generate_backup_codes(ctx, user);
        self.core.store.replace_backup_codes(user, &hashes, None).await?;
        let ended = self.core.store.revoke_user_tokens_except(user, &session.token_hash).await?;
        let reason = format!("{ended} other tokens ended");
        self.core
            .audit(ctx, Some(user), None, AuditAction::BackupCodesRegenerated, Some(&reason))
            .await?;
        self.core
            .notify(&ctx.portal, &session.user, Notice::BackupCodesRegenerated, Some(ctx))
            .await?;
        Ok(plain.into_iter().map(|code| BackupCodeView { code, used: false }).collect())
    }

    /// `PUT settings/tfaappnewapp`: resets the TOTP app of the caller, or of `target` for an admin of
    /// the same portal. A new secret is issued at the next login.
    pub async fn reset_tfa_app(
        &self,
        ctx: &RequestContext,
        session: &Session,
        target: Option<UserId>,
    ) -> Result<(), TfaSettingsError> {
        let target = match target {
            None => session.user.clone(),
            Some(id) if id == session.user.id => session.user.clone(),
            Some(id) => {
                if !session.user.is_admin {
                    return Err(TfaSettingsError::Forbidden);
                }
                match self.core.store.user_by_id(id).await? {
                    Some(u) if u.portal == session.user.portal => u,
                    // Another portal's user is as invisible as a missing one.
                    _ => return Err(TfaSettingsError::Forbidden),
                }
            }
        };
        // A stolen token must not be able to re-enrol the app (or an admin's, someone else's).
        self.require_fresh(session)?;
        self.core.clear_tfa(target.id).await?;
        // The caller keeps their token; every other token of the user whose app was reset ends.
        let ended = if target.id == session.user.id {
            self.core.store.revoke_user_tokens_except(target.id, &session.token_hash).await?
        } else {
            self.core.store.revoke_user_tokens(target.id).await?
        };
        let reason = format!("{ended} other tokens ended");
        self.core
            .audit(ctx, Some(target.id), None, AuditAction::UserDisconnectedTfaApp, Some(&reason))
            .await?;
        Ok(self.core.notify(&ctx.portal, &target, Notice::TotpReset, Some(ctx)).await?)
    }
}
