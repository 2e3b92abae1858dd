//! Directory users (spec §5.9): the local user made or brought up to date from a directory entry, at a
//! directory login and by `ldap sync`.
//!
//! A directory user has no local password ([`Credential::Directory`]); the directory's bind is the
//! only check. The local record exists so that the rest of the service (second factors, tokens,
//! revisions, the audit trail) works on directory users exactly as on local ones. A local account
//! with a password of its own is never turned into a directory user: the directory does not get to
//! take over an account the portal manages itself.

use super::admin::Admin;
use super::{Core, RequestContext};
use crate::audit::AuditAction;
use crate::error::{AdminError, Fault};
use crate::model::{Credential, Portal, User, UserId};
use crate::phone::Phone;
use crate::ports::{DirectoryEntry, DirectoryError, StoreError};

/// What provisioning did with one entry.
#[derive(Debug)]
pub(crate) enum Provisioned {
    /// The local user was created.
    Created(User),
    /// The local user was brought up to date.
    Updated(User),
    /// The local user already matched the entry.
    Unchanged(User),
    /// The entry cannot be a local user; the text says why (for the audit trail and the report).
    Refused(&'static str),
}

/// What `ldap sync` did (spec §5.9).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectorySyncReport {
    /// Entries in the directory.
    pub entries: u64,
    /// Local users created.
    pub created: u64,
    /// Local users updated from their entries.
    pub updated: u64,
    /// Local users that already matched.
    pub unchanged: u64,
    /// Local users disabled: gone from the directory or its group, or disabled there.
    pub disabled: u64,
    /// Entries that could not become local users, with the reason (e-mail, why).
    pub refused: Vec<(String, String)>,
}

impl Core {
    /// Makes or updates the local user of `entry` in `portal`. `found` is the user the login named,
    /// if any. A user disabled here stays disabled (the caller refuses the login).
    pub(crate) async fn provision(
        &self,
        portal: &Portal,
        directory: &str,
        found: Option<&User>,
        entry: &DirectoryEntry,
    ) -> Result<Provisioned, Fault> {
        let email = entry.email.trim();
        if email.is_empty() {
            return Ok(Provisioned::Refused("the directory entry has no e-mail"));
        }
        let email_lower = email.to_lowercase();
        let existing = match found {
            Some(u) if u.directory() == Some(directory) || u.email_key() == email_lower => {
                Some(u.clone())
            }
            _ => self.store.user_by_email(portal.id, &email_lower).await?,
        };
        // A mobile that does not normalise is no phone (spec §5.2), rather than a refused login.
        let mobile = entry
            .mobile
            .as_deref()
            .and_then(|m| Phone::parse(m).ok())
            .map(|p| p.digits().to_owned());
        let Some(user) = existing else {
            let new = User {
                id: UserId::from_random_bytes(crate::primitives::RngExt::bytes(self.rng.as_ref())),
                portal: portal.id,
                email: email.to_owned(),
                first_name: entry.first_name.trim().to_owned(),
                last_name: entry.last_name.trim().to_owned(),
                is_admin: false,
                disabled: false,
                credential: Credential::Directory(directory.to_owned()),
                phone: mobile,
                phone_activated: false,
                created_at: self.clock.now(),
                revision: 0,
            };
            return match self.store.insert_user(&new).await {
                Ok(()) => Ok(Provisioned::Created(new)),
                // A concurrent login of the same entry made it first: take theirs.
                Err(StoreError::Conflict(_)) => {
                    match self.store.user_by_email(portal.id, &email_lower).await? {
                        Some(u) if u.directory() == Some(directory) => {
                            Ok(Provisioned::Unchanged(u))
                        }
                        _ => Ok(Provisioned::Refused("the e-mail belongs to another user")),
                    }
                }
                Err(e) => Err(e.into()),
            };
        };
        match &user.credential {
            Credential::Directory(d) if d == directory => {}
            // An imported directory user (no usable password) is this entry's user.
            Credential::None => {}
            Credential::Directory(_) => {
                return Ok(Provisioned::Refused("the user belongs to another directory"));
            }
            Credential::Password(_) | Credential::Upstream(_) => {
                return Ok(Provisioned::Refused("the e-mail belongs to a local account"));
            }
        }
        let mut updated = user.clone();
        updated.email = email.to_owned();
        updated.first_name = entry.first_name.trim().to_owned();
        updated.last_name = entry.last_name.trim().to_owned();
        updated.credential = Credential::Directory(directory.to_owned());
        if updated.phone != mobile {
            // A changed number is not proven to be the user's until a code to it is entered.
            updated.phone = mobile;
            updated.phone_activated = false;
        }
        if updated == user {
            return Ok(Provisioned::Unchanged(user));
        }
        match self.store.update_user(&updated).await {
            Ok(true) => Ok(Provisioned::Updated(updated)),
            Ok(false) => Ok(Provisioned::Refused("the user was removed meanwhile")),
            Err(StoreError::Conflict(_)) => {
                Ok(Provisioned::Refused("the new e-mail belongs to another user"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Audits what provisioning changed, for a request.
    pub(crate) async fn audit_provisioned(
        &self,
        ctx: &RequestContext,
        p: &Provisioned,
    ) -> Result<(), StoreError> {
        match p {
            Provisioned::Created(u) => {
                self.audit(ctx, Some(u.id), None, AuditAction::DirectoryUserCreated, None).await
            }
            Provisioned::Updated(u) => {
                self.audit(ctx, Some(u.id), None, AuditAction::DirectoryUserUpdated, None).await
            }
            Provisioned::Unchanged(_) | Provisioned::Refused(_) => Ok(()),
        }
    }
}

impl Admin {
    /// `auth-server ldap sync` (spec §5.9): creates and updates the local users of every entry of the
    /// portal's directory, and disables the directory users gone from it or its group, or disabled
    /// there. It never enables a user: a disable made here by an operator must not be undone by a
    /// directory that still lists the person.
    pub async fn sync_directory(&self, portal: &Portal) -> Result<DirectorySyncReport, AdminError> {
        let c = &self.core;
        let directory = c
            .directory
            .directory_for(portal)
            .ok_or_else(|| AdminError::Invalid("the portal has no directory".to_owned()))?;
        let entries = c.directory.entries(&directory).await.map_err(|e| match e {
            DirectoryError::Unavailable(why) => AdminError::DirectoryUnavailable(why),
            other => AdminError::DirectoryUnavailable(other.to_string()),
        })?;
        let mut report =
            DirectorySyncReport { entries: entries.len() as u64, ..Default::default() };
        let mut present = std::collections::HashSet::new();
        for entry in &entries {
            let user = match c.provision(portal, &directory, None, entry).await? {
                Provisioned::Created(u) => {
                    report.created += 1;
                    self.admin_audit(&u, AuditAction::DirectoryUserCreated, "by ldap sync").await?;
                    u
                }
                Provisioned::Updated(u) => {
                    report.updated += 1;
                    self.admin_audit(&u, AuditAction::DirectoryUserUpdated, "by ldap sync").await?;
                    u
                }
                Provisioned::Unchanged(u) => {
                    report.unchanged += 1;
                    u
                }
                Provisioned::Refused(why) => {
                    report.refused.push((entry.email.clone(), why.to_owned()));
                    continue;
                }
            };
            if entry.disabled {
                if !user.disabled {
                    self.set_disabled(user.id, true).await?;
                    report.disabled += 1;
                }
            } else {
                present.insert(user.id);
            }
        }
        for user in c.store.list_users(Some(portal.id)).await? {
            if user.directory() == Some(directory.as_str())
                && !present.contains(&user.id)
                && !user.disabled
            {
                let listed =
                    entries.iter().any(|e| e.email.trim().to_lowercase() == user.email_key());
                if !listed {
                    self.set_disabled(user.id, true).await?;
                    report.disabled += 1;
                }
            }
        }
        Ok(report)
    }
}
