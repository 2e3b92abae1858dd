//! What the sign-in and second-factor capabilities (and the operator) share about TOTP enrolments and
//! backup codes: creating and opening the sealed secret, making a set of backup codes, clearing it all.

use zeroize::Zeroizing;

use super::{Core, RequestContext};
use crate::crypto::KeyContext;
use crate::error::Fault;
use crate::model::UserId;
use crate::secret::SecretString;
use crate::throttle::keys;
use crate::{backup, totp};

/// What a user's sealed TOTP secret and backup-code reveal are bound to: the user id's bytes, so a
/// sealed value copied to another user's row does not open.
pub(crate) fn totp_binding(user: UserId) -> [u8; 16] {
    *user.0.as_bytes()
}

impl Core {
    /// The user's TOTP secret, creating one on first use; and whether the app is activated.
    pub(crate) async fn totp_secret(
        &self,
        user: UserId,
    ) -> Result<(Zeroizing<Vec<u8>>, bool), Fault> {
        let record = match self.store.totp(user).await? {
            Some(r) => r,
            None => {
                let secret = totp::generate_secret(self.rng.as_ref());
                let sealed = self.key.seal(
                    self.rng.as_ref(),
                    KeyContext::TotpSecret,
                    &totp_binding(user),
                    &secret,
                )?;
                // Two first logins racing: the store keeps one secret, and both read it back.
                self.store.create_totp(user, &sealed).await?;
                self.store
                    .totp(user)
                    .await?
                    .ok_or_else(|| Fault::Internal("totp record vanished".into()))?
            }
        };
        let secret = self
            .key
            .open(KeyContext::TotpSecret, &totp_binding(user), &record.sealed_secret)
            .map_err(|e| Fault::Internal(format!("totp secret: {e}")))?;
        Ok((secret, record.activated))
    }

    /// A fresh set of backup codes: their hashes, and the plaintext sealed for the one-time reveal.
    pub(crate) fn new_backup_set(
        &self,
        ctx: &RequestContext,
        user: UserId,
    ) -> Result<(Vec<[u8; 32]>, Vec<u8>), Fault> {
        let (hashes, plain) = self.generate_backup_codes(ctx, user);
        let joined =
            Zeroizing::new(plain.iter().map(SecretString::expose).collect::<Vec<_>>().join("\n"));
        let sealed = self.key.seal(
            self.rng.as_ref(),
            KeyContext::BackupReveal,
            &totp_binding(user),
            joined.as_bytes(),
        )?;
        Ok((hashes, sealed))
    }

    /// A set of backup codes for the portal's count: their hashes and their plaintext.
    pub(crate) fn generate_backup_codes(
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

    /// Forgets the TOTP enrolment and backup codes and clears the second-factor counters.
    pub(crate) async fn clear_tfa(&self, user: UserId) -> Result<(), Fault> {
        self.store.delete_totp(user).await?;
        self.store.reset(&keys::tfa_minute(user)).await?;
        self.store.reset(&keys::second_factor_day(user)).await?;
        Ok(())
    }
}
