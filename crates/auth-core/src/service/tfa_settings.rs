//! Managing one's second factor: `GET settings/tfaappcodes`, `PUT settings/tfaappnewcodes` and
//! `PUT settings/tfaappnewapp` (spec §5.7), for the holder of a token.

use std::sync::Arc;

use super::factors::totp_binding;
use super::{Core, RequestContext, Session};
use crate::audit::AuditAction;
use crate::crypto::KeyContext;
use crate::error::TfaSettingsError;
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

    /// `PUT settings/tfaappnewcodes`: replaces the backup codes and shows the new ones once.
    pub async fn new_backup_codes(
        &self,
        ctx: &RequestContext,
        session: &Session,
    ) -> Result<Vec<BackupCodeView>, TfaSettingsError> {
        let user = session.user.id;
        self.require_activated_app(user).await?;
        let (hashes, plain) = self.core.generate_backup_codes(ctx, user);
        self.core.store.replace_backup_codes(user, &hashes, None).await?;
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
        self.core.clear_tfa(target.id).await?;
        Ok(self
            .core
            .audit(ctx, Some(target.id), None, AuditAction::UserDisconnectedTfaApp, None)
            .await?)
    }
}
