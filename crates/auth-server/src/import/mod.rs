//! `auth-server import onlyoffice` and `auth-server user import --jsonl` (spec §11): bringing the
//! people of an ONLYOFFICE / R7-Office portal over, with their passwords, phones and authenticator apps.
//!
//! [`upstream`] decodes what upstream stored (pure), [`mysql`] reads it from the live database into
//! plain records, [`plan`] maps those onto portals and users as this service has them, [`report`] is
//! what the operator reads at the end, [`jsonl`] is the line format of `user import`, and [`cli`] is
//! the command layer. The rules for what is kept, merged or refused live in the core
//! (`AuthService::import`); this module decides only how each upstream row maps onto the core's records.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod cli;
pub mod jsonl;
pub mod mysql;
pub mod plan;
pub mod progress;
pub mod report;
pub mod upstream;

use std::collections::HashMap;

use auth_core::model::Credential;
use auth_core::service::{
    ImportError, ImportOutcome, ImportedBackupCode, ImportedLink, ImportedTotp, ImportedUser,
};
use auth_core::upstream::{UpstreamHash, UpstreamRealm};
use auth_core::{AuthService, Portal, PortalId, SecretString, User, UserId};
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};

use self::plan::{PasswordPlan, PortalPlan, UserPlan};
use self::progress::Progress;
use self::report::{Kind, Outcome, Report};

/// What `import onlyoffice` needs to know.
#[derive(Debug)]
pub struct OnlyofficeOptions {
    /// `mysql://…` (its password may be replaced by [`Self::mysql_password`]).
    pub mysql_url: String,
    /// The database password from `MYSQL_PWD`, when set.
    pub mysql_password: Option<SecretString>,
    /// `core.machinekey`.
    pub machine_key: SecretString,
    /// `--base-domain`.
    pub base_domain: Option<String>,
    /// `core.password.salt`.
    pub password_salt: Option<SecretString>,
    /// `core.password.iterations`.
    pub iterations: u32,
    /// `core.password.size` in bits.
    pub size_bits: u32,
    /// `--tenant` aliases.
    pub tenants: Vec<String>,
    /// Write nothing.
    pub dry_run: bool,
}

/// Why an import stopped before its end (a row that cannot be imported is a report entry instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    /// The upstream database could not be read.
    #[error(transparent)]
    Read(#[from] mysql::ReadError),
    /// The store or the hasher failed; the import is idempotent, so running it again resumes it.
    #[error("the import stopped: {0} (running it again resumes it)")]
    Service(String),
}

fn outcome(o: ImportOutcome) -> Outcome {
    match o {
        ImportOutcome::Created => Outcome::Created,
        ImportOutcome::Updated => Outcome::Updated,
        ImportOutcome::Unchanged => Outcome::Unchanged,
    }
}

/// The id of the portal an upstream tenant becomes: derived from the realm (one per upstream
/// installation and server key) and the tenant id, so a second import finds the same portal and two
/// installations never share one.
pub fn portal_id(realm_id: &str, tenant: i64) -> PortalId {
    let digest = Sha256::digest(format!("onlyoffice-portal\0{realm_id}\0{tenant}").as_bytes());
    let mut bytes = [0u8; 16];
    for (b, d) in bytes.iter_mut().zip(digest.iter()) {
        *b = *d;
    }
    PortalId::from_random_bytes(bytes)
}

/// Runs `import onlyoffice`: read, plan, then portal by portal and user by user through the core.
pub async fn onlyoffice(
    service: &AuthService,
    options: OnlyofficeOptions,
    progress: &Progress,
    concurrency: usize,
) -> Result<Report, ImportFailure> {
    progress.phase("reading the upstream database", 0);
    let snapshot = mysql::read(&options.mysql_url, options.mysql_password.as_ref()).await?;
    progress.finish();
    let mut report = Report::new(options.dry_run);
    let plan_options = plan::Options {
        machine_key: options.machine_key.clone(),
        base_domain: options.base_domain.clone(),
        tenants: options.tenants.clone(),
    };
    let plan = plan::plan(&snapshot, &plan_options, &mut report);
    drop(snapshot);

    // The installation salt may cost one PBKDF2 run at upstream's cost: off the runtime's threads.
    let (key, salt, iterations, size) =
        (options.machine_key, options.password_salt, options.iterations, options.size_bits);
    let realm =
        tokio::task::spawn_blocking(move || UpstreamRealm::new(key, salt, iterations, size))
            .await
            .map_err(|e| ImportFailure::Service(format!("the realm task failed: {e}")))?;
    let import = service.import();
    let realm_id = import
        .register_upstream_realm(&realm, options.dry_run)
        .await
        .map_err(|e| ImportFailure::Service(e.to_string()))?;

    let existing: HashMap<PortalId, Portal> = service
        .admin()
        .list_portals()
        .await
        .map_err(|e| ImportFailure::Service(e.to_string()))?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();

    let users = plan.user_count() as u64;
    progress.phase("users", users);
    for portal_plan in plan.portals {
        let id = portal_id(&realm_id, portal_plan.tenant);
        let subject = format!("{} (id {})", portal_plan.alias, portal_plan.tenant);
        let portal = portal_record(&portal_plan, id, existing.get(&id));
        let portal_users = portal_plan.users;
        if let Err(e) = portal.settings.validate() {
            report.skip(Kind::Portal, subject, format!("{e}; its users are not imported"));
            report.add(Kind::User, Outcome::Skipped, portal_users.len() as u64);
            progress.inc(portal_users.len() as u64);
            continue;
        }
        match import.upsert_portal(&portal, options.dry_run).await {
            Ok(o) => report.count(Kind::Portal, outcome(o)),
            Err(ImportError::Conflict(why) | ImportError::Invalid(why)) => {
                report.skip(
                    Kind::Portal,
                    subject,
                    format!(
                        "{why} (a host name taken by a portal here?); its users are not imported"
                    ),
                );
                report.add(Kind::User, Outcome::Skipped, portal_users.len() as u64);
                progress.inc(portal_users.len() as u64);
                continue;
            }
            Err(e) => return Err(ImportFailure::Service(e.to_string())),
        }
        let dry_run = options.dry_run;
        let realm_id = realm_id.as_str();
        // Users go to the store a few at a time: recovered passwords hash on the pool meanwhile.
        let mut results = futures_util::stream::iter(portal_users)
            .map(|u| async move {
                let tally = Tally::of(&u);
                let label = u.label();
                let result = upsert(service, realm_id, id, u, dry_run).await;
                (label, tally, result)
            })
            .buffer_unordered(concurrency.max(1));
        while let Some((label, tally, result)) = results.next().await {
            progress.inc(1);
            match result {
                Ok((o, notes)) => {
                    for n in notes {
                        report.skip(Kind::Password, label.clone(), n);
                    }
                    tally.count(&mut report, outcome(o));
                }
                Err(ImportError::Conflict(why) | ImportError::Invalid(why)) => {
                    report.skip(Kind::User, label, why);
                }
                Err(e) => return Err(ImportFailure::Service(e.to_string())),
            }
        }
    }
    progress.finish();
    Ok(report)
}

/// What one user carries, counted with the user's outcome once it is known.
#[derive(Debug, Clone, Copy)]
struct Tally {
    password: bool,
    phone: bool,
    totp: bool,
    codes: u64,
    links: u64,
}

impl Tally {
    fn of(u: &UserPlan) -> Self {
        Self {
            password: !matches!(u.password, PasswordPlan::None),
            phone: u.phone.is_some(),
            totp: u.totp.is_some(),
            codes: u.totp.as_ref().map_or(0, |t| t.codes.len() as u64),
            links: u.links.len() as u64,
        }
    }

    fn count(self, report: &mut Report, o: Outcome) {
        report.count(Kind::User, o);
        if self.password {
            report.count(Kind::Password, o);
        }
        if self.phone {
            report.count(Kind::Phone, o);
        }
        if self.totp {
            report.count(Kind::Totp, o);
        }
        report.add(Kind::BackupCode, o, self.codes);
        report.add(Kind::Link, o, self.links);
    }
}

/// The portal record: an existing portal keeps every setting the import does not carry (the
/// operator may have set `https`, SMS limits or providers here since), and its creation time.
fn portal_record(p: &PortalPlan, id: PortalId, existing: Option<&Portal>) -> Portal {
    let mut settings = existing.map(|e| e.settings.clone()).unwrap_or_default();
    settings.language = p.language;
    settings.time_zone = p.time_zone.clone();
    settings.tfa = p.tfa;
    settings.trusted_ips = p.trusted_ips.clone();
    if let Some((limit, window, block)) = p.login_throttle {
        settings.login_throttle.limit = limit;
        settings.login_throttle.window = auth_core::SignedDuration::from_secs(window);
        settings.login_throttle.block = auth_core::SignedDuration::from_secs(block);
    }
    Portal {
        id,
        name: p.name.clone(),
        hosts: p.hosts.clone(),
        settings,
        created_at: existing.map_or(p.created_at, |e| e.created_at),
        revision: existing.map_or(0, |e| e.revision),
    }
}

/// One user through the core; the notes are password losses found only now.
async fn upsert(
    service: &AuthService,
    realm_id: &str,
    portal: PortalId,
    u: UserPlan,
    dry_run: bool,
) -> Result<(ImportOutcome, Vec<String>), ImportError> {
    let mut notes = Vec::new();
    let id = UserId(u.id);
    let credential = match &u.password {
        PasswordPlan::Upstream(h) => match UpstreamHash::from_pwdhash(realm_id, id, h) {
            Some(hash) => Credential::Upstream(hash),
            None => {
                notes.push(
                    "its pwdhash is not a SHA-512 in base64: imported without a password"
                        .to_owned(),
                );
                Credential::None
            }
        },
        PasswordPlan::Recovered(plain) => service.import().hash_password(plain).await?,
        PasswordPlan::None => Credential::None,
    };
    let (totp, backup_codes) = match u.totp {
        Some(t) => (
            Some(ImportedTotp { secret: t.secret.to_vec(), activated: t.activated }),
            t.codes.into_iter().map(|(code, used)| ImportedBackupCode { code, used }).collect(),
        ),
        None => (None, Vec::new()),
    };
    let links = u
        .links
        .into_iter()
        .map(|l| ImportedLink { provider: l.provider, subject: l.subject, linked_at: l.linked_at })
        .collect();
    let user = User {
        id,
        portal,
        email: u.email,
        first_name: u.first_name,
        last_name: u.last_name,
        is_admin: u.is_admin,
        disabled: u.disabled,
        credential,
        phone: u.phone,
        phone_activated: u.phone_activated,
        created_at: u.created_at,
        revision: 0,
    };
    let o = service
        .import()
        .upsert_user(ImportedUser { user, totp, backup_codes, links }, dry_run)
        .await?;
    Ok((o, notes))
}
