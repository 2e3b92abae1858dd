//! Moving users over (spec §11): from an upstream ONLYOFFICE / R7 portal (`auth-server import
//! onlyoffice`) and from any other source (`auth-server user import --jsonl`).
//!
//! The reader of the source lives in the server; the rules of bringing a user in live here, so every
//! embedding of the core imports the same way. Importing is idempotent: running it again changes only
//! what changed at the source, and never undoes what happened here since — a password set or
//! upgraded here, an authenticator enrolled here, a backup code used here all stay.

use std::sync::Arc;

use jiff::Timestamp;

use super::Core;
use super::factors::totp_binding;
use crate::backup;
use crate::crypto::KeyContext;
use crate::error::Fault;
use crate::model::{Credential, Portal, User, UserId};
use crate::ports::{AccountLink, BackupCodeRecord, StoreError};
use crate::secret::SecretString;
use crate::upstream::UpstreamRealm;

/// What an import did (or, in a dry run, would do) with one portal or user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// It was not here and now is.
    Created,
    /// It was here and something changed.
    Updated,
    /// It was here and nothing changed.
    Unchanged,
}

/// Why an import step failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The record collides with another one here (an e-mail or host taken by someone else); the
    /// record is skipped, the import goes on.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The record cannot be imported as given; the text says why.
    #[error("{0}")]
    Invalid(String),
    /// The store or the hasher is unavailable; try again.
    #[error("busy: {0}")]
    Busy(String),
    /// Anything unexpected.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Fault> for ImportError {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Busy(m) => ImportError::Busy(m),
            Fault::Internal(m) => ImportError::Internal(m),
        }
    }
}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ImportError::Conflict(m),
            other => Fault::from(other).into(),
        }
    }
}

impl From<crate::crypto::CryptoError> for ImportError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Fault::from(e).into()
    }
}

/// A user to bring in, with their second factors and links.
#[derive(Clone, Debug)]
pub struct ImportedUser {
    /// The user: for an upstream import the id is the upstream user id (so a login by id keeps
    /// working), the credential an upstream hash or none, the revision 0.
    pub user: User,
    /// An authenticator-app enrolment.
    pub totp: Option<ImportedTotp>,
    /// Backup codes, in their upstream plaintext (hashed here, never stored as they are).
    pub backup_codes: Vec<ImportedBackupCode>,
    /// Social-account links.
    pub links: Vec<ImportedLink>,
}

/// An imported authenticator-app enrolment.
#[derive(Clone)]
pub struct ImportedTotp {
    /// The raw key bytes (10 ASCII bytes for an upstream enrolment), sealed here.
    pub secret: Vec<u8>,
    /// Whether the user completed the enrolment upstream.
    pub activated: bool,
}

impl std::fmt::Debug for ImportedTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedTotp").field("activated", &self.activated).finish_non_exhaustive()
    }
}

/// An imported backup code.
#[derive(Clone, Debug)]
pub struct ImportedBackupCode {
    /// The code as upstream issued it.
    pub code: SecretString,
    /// Whether it was used upstream.
    pub used: bool,
}

/// An imported social-account link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedLink {
    /// The provider's name, lower-case.
    pub provider: String,
    /// The provider's subject of the account.
    pub subject: String,
    /// When it was linked upstream.
    pub linked_at: Timestamp,
}

/// The import capability.
#[derive(Clone)]
pub struct Import {
    pub(super) core: Arc<Core>,
}

impl std::fmt::Debug for Import {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Import")
    }
}

/// What the name of a realm's meta entry starts with; the realm's id follows.
pub(crate) const REALM_META_PREFIX: &str = "upstream_realm:";

/// The meta entry a realm is sealed under.
fn realm_meta(id: &str) -> String {
    format!("{REALM_META_PREFIX}{id}")
}

impl Core {
    /// The upstream realm an imported hash names, opened from its sealed meta entry.
    pub(crate) async fn upstream_realm(&self, id: &str) -> Result<Option<UpstreamRealm>, Fault> {
        let Some(sealed) = self.store.meta(&realm_meta(id)).await? else {
            return Ok(None);
        };
        let plain = self.key.open(KeyContext::UpstreamRealm, id.as_bytes(), &sealed)?;
        UpstreamRealm::from_bytes(&plain).map(Some).map_err(|e| Fault::Internal(e.to_string()))
    }
}

impl Import {
    /// Stores an upstream installation's realm sealed under the server key, so its imported hashes
    /// can be verified; returns the realm's id. Idempotent: the same installation has the same id,
    /// and a realm already stored is kept.
    pub async fn register_upstream_realm(
        &self,
        realm: &UpstreamRealm,
        dry_run: bool,
    ) -> Result<String, ImportError> {
        let c = &self.core;
        let id = realm.id(&c.key);
        if !dry_run {
            let sealed = c.key.seal(
                c.rng.as_ref(),
                KeyContext::UpstreamRealm,
                id.as_bytes(),
                &realm.to_bytes(),
            )?;
            c.store.init_meta(&realm_meta(&id), &sealed).await?;
        }
        Ok(id)
    }

    /// Creates the portal (matched by id) or brings its name, hosts and settings up to date.
    pub async fn upsert_portal(
        &self,
        portal: &Portal,
        dry_run: bool,
    ) -> Result<ImportOutcome, ImportError> {
        let c = &self.core;
        let current = c.store.list_portals().await?.into_iter().find(|p| p.id == portal.id);
        let outcome = match current {
            None => {
                if !dry_run {
                    c.store.insert_portal(portal).await?;
                }
                ImportOutcome::Created
            }
            Some(cur)
                if cur.name == portal.name
                    && cur.hosts == portal.hosts
                    && cur.settings == portal.settings =>
            {
                ImportOutcome::Unchanged
            }
            Some(cur) => {
                if !dry_run {
                    let next = Portal { revision: cur.revision, ..portal.clone() };
                    // A changed second-factor mode ends the portal's tokens, as `portal set` does.
                    let end_tokens = cur.settings.tfa != portal.settings.tfa;
                    c.store.update_portal(&next, end_tokens).await?;
                }
                ImportOutcome::Updated
            }
        };
        if !dry_run && outcome != ImportOutcome::Unchanged {
            c.forget_portals();
        }
        Ok(outcome)
    }

    /// Creates or updates one user with their enrolment, backup codes and links.
    ///
    /// Never replaced: a password set or upgraded here, a directory user's credential, an enrolment
    /// made here, a backup code used here. The disabled flag follows the source (disabling ends the
    /// user's tokens).
    pub async fn upsert_user(
        &self,
        imported: ImportedUser,
        dry_run: bool,
    ) -> Result<ImportOutcome, ImportError> {
        let c = &self.core;
        let new = &imported.user;
        if let Some(other) = c.store.user_by_email(new.portal, &new.email_key()).await?
            && other.id != new.id
            && !new.email.is_empty()
        {
            return Err(ImportError::Conflict(format!(
                "the portal already has another user with the e-mail of {}",
                new.id
            )));
        }
        let Some(cur) = c.store.user_by_id(new.id).await? else {
            if !dry_run {
                c.store.insert_user(new).await?;
                self.add_factors(new.id, &imported).await?;
                self.add_links(new, &imported.links).await?;
            }
            return Ok(ImportOutcome::Created);
        };
        if cur.portal != new.portal {
            return Err(ImportError::Conflict(format!(
                "user {} belongs to another portal",
                new.id
            )));
        }
        let mut next = cur.clone();
        next.email = new.email.clone();
        next.first_name = new.first_name.clone();
        next.last_name = new.last_name.clone();
        next.is_admin = new.is_admin;
        if next.phone != new.phone {
            next.phone = new.phone.clone();
            next.phone_activated = new.phone_activated;
        } else {
            // An activation made here stands.
            next.phone_activated = cur.phone_activated || new.phone_activated;
        }
        let keep_credential = cur.credential.is_local_password() || cur.directory().is_some();
        if !keep_credential {
            next.credential = new.credential.clone();
        }
        let mut changed = next != cur;
        if changed && !dry_run {
            c.store.update_user(&next).await?;
        }
        if cur.disabled != new.disabled {
            changed = true;
            if !dry_run {
                c.store.set_disabled(cur.id, new.disabled).await?;
            }
        }
        let record = c.store.totp(cur.id).await?;
        if imported.totp.is_some() && record.is_none() {
            changed = true;
            if !dry_run {
                self.add_factors(cur.id, &imported).await?;
            }
        } else if record.is_some() {
            let stored = c.store.backup_codes(cur.id).await?;
            let used: Vec<[u8; 32]> = self
                .code_records(cur.id, &imported.backup_codes)
                .into_iter()
                .filter(|r| r.used && stored.iter().any(|s| s.code_hash == r.code_hash && !s.used))
                .map(|r| r.code_hash)
                .collect();
            if !used.is_empty() {
                changed = true;
                if !dry_run {
                    c.store.mark_backup_codes_used(cur.id, &used).await?;
                }
            }
        }
        for link in &imported.links {
            let here = c.store.link_by_subject(cur.portal, &link.provider, &link.subject).await?;
            if here.is_none() {
                changed = true;
                if !dry_run {
                    self.add_links(&next, std::slice::from_ref(link)).await?;
                }
            }
        }
        Ok(if changed { ImportOutcome::Updated } else { ImportOutcome::Unchanged })
    }

    /// Inserts a batch of new users in one transaction (`user import --jsonl`): per user, true when
    /// inserted, false when the id or the e-mail was already there.
    pub async fn insert_users(&self, batch: &[User]) -> Result<Vec<bool>, ImportError> {
        Ok(self.core.store.insert_users(batch).await?)
    }

    /// Hashes a plaintext password with the service's hasher (for import lines that carry one).
    pub async fn hash_password(&self, password: &SecretString) -> Result<Credential, ImportError> {
        Ok(Credential::Password(self.core.hasher.hash(password).await.map_err(Fault::from)?))
    }

    /// A fresh random user id, for sources without ids of their own.
    pub fn new_user_id(&self) -> UserId {
        UserId::from_random_bytes(crate::primitives::RngExt::bytes(self.core.rng.as_ref()))
    }

    /// The stored form of imported codes. Codes that compare equal here (upstream may hold one code
    /// twice, or two that differ only in case) become one, unused if any of them was: each code
    /// opens one login, never two.
    fn code_records(&self, user: UserId, codes: &[ImportedBackupCode]) -> Vec<BackupCodeRecord> {
        let mut out: Vec<BackupCodeRecord> = Vec::with_capacity(codes.len());
        for c in codes {
            let Some(n) = backup::normalize_imported(c.code.expose()) else { continue };
            let code_hash = backup::code_hash(&self.core.key, user, &n);
            match out.iter_mut().find(|r| r.code_hash == code_hash) {
                Some(r) => r.used &= c.used,
                None => out.push(BackupCodeRecord { code_hash, used: c.used }),
            }
        }
        out
    }

    async fn add_factors(&self, user: UserId, imported: &ImportedUser) -> Result<(), ImportError> {
        let c = &self.core;
        let Some(totp) = &imported.totp else {
            return Ok(());
        };
        let sealed = c.key.seal(
            c.rng.as_ref(),
            KeyContext::TotpSecret,
            &totp_binding(user),
            &totp.secret,
        )?;
        let codes = self.code_records(user, &imported.backup_codes);
        c.store.import_totp(user, &sealed, totp.activated, &codes).await?;
        Ok(())
    }

    async fn add_links(&self, user: &User, links: &[ImportedLink]) -> Result<(), ImportError> {
        for l in links {
            let link = AccountLink {
                portal: user.portal,
                provider: l.provider.to_ascii_lowercase(),
                subject: l.subject.clone(),
                user: user.id,
                created_at: l.linked_at,
            };
            // A subject linked to someone else here, or a second link of one provider, is kept as
            // it is here: the first link wins, as for links made here.
            self.core.store.insert_link(&link).await?;
        }
        Ok(())
    }
}
