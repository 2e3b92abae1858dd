//! Opening what every command shares: the data directory, the server key, the store (SQLite by default,
//! PostgreSQL when `database.url` names one), the outbound HTTPS client, the social providers and the
//! LDAP directories, SMS gateways, and an `AuthService` over them. `serve` and the admin subcommands differ only in the hasher they pass.

use std::sync::Arc;

use anyhow::Context as _;
use auth_core::crypto::ServerKey;
use auth_core::password::Argon2Hasher;
use auth_core::ports::{Clock, PasswordHasher, Rng};
use auth_core::service::{CoreLimits, Deps, MailSettings};
use auth_core::{AuthService, Store};
use auth_postgres::{PgOptions, PgStore};
use auth_sqlite::{SqliteOptions, SqliteStore};

use crate::clock::SystemClock;
use crate::config::Config;
use crate::email::SmtpMailer;
use crate::keyfile::{self, KeyOrigin};
use crate::ldap::LdapDirectories;
use crate::metrics::LoginMetrics;
use crate::outbound::Outbound;
use crate::rng::OsRng;
use crate::sms::Gateways;
use crate::social::SocialProviders;

/// The store the configuration chose.
#[derive(Clone)]
pub enum StoreHandle {
    /// The embedded SQLite file.
    Sqlite(SqliteStore),
    /// A shared PostgreSQL database (several nodes).
    Postgres(PgStore),
}

impl StoreHandle {
    /// The store as the core's port.
    pub fn port(&self) -> Arc<dyn Store> {
        match self {
            StoreHandle::Sqlite(s) => Arc::new(s.clone()),
            StoreHandle::Postgres(p) => Arc::new(p.clone()),
        }
    }

    /// Folds SQLite's WAL back into the database file at a clean stop; nothing to do for PostgreSQL.
    pub async fn checkpoint(&self) -> anyhow::Result<()> {
        match self {
            StoreHandle::Sqlite(s) => s.checkpoint().await.map_err(|e| anyhow::anyhow!("{e}")),
            StoreHandle::Postgres(_) => Ok(()),
        }
    }
}

/// The opened service and the parts the server also needs on their own.
pub struct Core {
    /// The service.
    pub service: Arc<AuthService>,
    /// The store behind it.
    pub store: StoreHandle,
    /// The server key.
    pub key: ServerKey,
    /// Whether this start created the key.
    pub key_origin: KeyOrigin,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The CSPRNG.
    pub rng: Arc<dyn Rng>,
    /// The source of outbound HTTPS clients; its limit on calls in flight is shared by every client
    /// made from it (the social providers' and the SMS gateways').
    pub outbound: Outbound,
    /// The LDAP directories (spec §5.9), also behind the service's directory port.
    pub ldap: Arc<LdapDirectories>,
    /// The SMS gateways (spec §12): routing, providers and their counters.
    pub sms: Arc<Gateways>,
    /// The SMTP mailer (spec §14), when `[email]` is configured.
    pub mailer: Option<Arc<SmtpMailer>>,
    /// The service's observer: logins by factor and result and throttle refusals, for `/metrics`.
    pub logins: Arc<LoginMetrics>,
}

/// The argon2id hasher with the configured cost.
pub fn argon2(config: &Config, rng: Arc<dyn Rng>) -> anyhow::Result<Argon2Hasher> {
    Argon2Hasher::new(config.hashing.params, rng).context("invalid hashing configuration")
}

/// Opens the data directory, key and store of `config`, and builds the service with `hasher`.
pub async fn open(
    config: &Config,
    hasher: impl FnOnce(Arc<dyn Rng>) -> anyhow::Result<Arc<dyn PasswordHasher>>,
) -> anyhow::Result<Core> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Social login is set up first: a missing secret or CA file is a configuration error, and should
    // stop the start before anything is created on disk.
    let outbound = Outbound::new(config.outbound.max_in_flight);
    // The ID tokens' `exp` and `nbf` are checked against the same clock as everything else.
    let social = SocialProviders::new(&config.social, &outbound, Arc::clone(&clock))
        .context("cannot set up social login")?;
    if !social.is_empty() {
        tracing::info!(providers = ?social, "social login providers configured");
    }
    // The same for the directories: an unreadable bind password file fails the start here, and the
    // error names the file, never its content.
    let ldap = Arc::new(
        LdapDirectories::new(&config.ldap, &outbound).context("cannot set up LDAP sign-in")?,
    );
    if !ldap.is_empty() {
        tracing::info!(directories = ?ldap, "LDAP directories configured");
    }
    // So are the SMS gateways' secret and CA files.
    let sms = Arc::new(
        Gateways::build(&config.sms, &outbound, Arc::clone(&clock))
            .context("cannot set up SMS delivery")?,
    );
    // And the mailer's password and CA files.
    let mailer = match &config.email {
        Some(email) => Some(Arc::new(
            SmtpMailer::from_config(email, &outbound).context("cannot set up e-mail")?,
        )),
        None => None,
    };
    let store = open_store(config).await?;
    // The key comes after the store, so a database that cannot be opened leaves no new key behind.
    let (ring, key_origin) = keyfile::load_or_create(&config.server_key_file)?;
    let rng: Arc<dyn Rng> = Arc::new(OsRng);
    let key =
        unlock_key(store.port().as_ref(), &ring, key_origin, &config.server_key_file, rng.as_ref())
            .await?;
    if key_origin == KeyOrigin::Created {
        tracing::info!(path = %config.server_key_file.display(), "created a new server key");
    }
    let hasher = hasher(Arc::clone(&rng))?;
    let store_port = store.port();
    let limits = CoreLimits {
        fresh_token: auth_core::SignedDuration::try_from(config.fresh_token)
            .context("security.fresh_token_secs: too large")?,
        audit_retention: config
            .audit_retention
            .map(auth_core::SignedDuration::try_from)
            .transpose()
            .context("retention.audit_days: too large")?,
        outbox_retention: config
            .outbox_retention
            .map(auth_core::SignedDuration::try_from)
            .transpose()
            .context("retention.outbox_days: too large")?,
        last_used_granularity: auth_core::SignedDuration::try_from(config.last_used_granularity)
            .context("security.last_used_granularity_secs: too large")?,
        // Reset links are built on the configured public URL, never on a request's `Host`.
        mail: mailer.as_ref().map(|m| MailSettings {
            public_url: Some(m.public_url().to_owned()),
            ..MailSettings::default()
        }),
        ..CoreLimits::default()
    };
    let logins = Arc::new(LoginMetrics::default());
    let service = Arc::new(AuthService::with_observer(
        Deps {
            store: store_port,
            hasher,
            social: Arc::new(social),
            directory: Arc::clone(&ldap) as Arc<dyn auth_core::ports::Directory>,
            clock: Arc::clone(&clock),
            rng: Arc::clone(&rng),
            key: key.clone(),
        },
        limits,
        Arc::clone(&logins) as Arc<dyn auth_core::ports::Observer>,
    ));
    Ok(Core { service, store, key, key_origin, clock, rng, outbound, ldap, sms, mailer, logins })
}

/// Opens the store `config` names (creating the data directory, and the SQLite file with mode 0600),
/// without the key: what `open` and the `key` commands share.
pub async fn open_store(config: &Config) -> anyhow::Result<StoreHandle> {
    keyfile::ensure_private_dir(&config.data_dir)?;
    let store = match &config.database_url {
        Some(url) => StoreHandle::Postgres(
            PgStore::connect_with(
                url,
                &PgOptions {
                    session_cache: config.database_session_cache,
                    ..PgOptions::new(config.database_pool_size)
                },
            )
            .await
            .context("cannot open the PostgreSQL database")?,
        ),
        None => {
            if let Some(dir) = config.database_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                keyfile::ensure_private_dir(dir)?;
            }
            let path = config.database_path.clone();
            private_database_file(&path)?;
            // `database.session_cache = false` turns the SQLite process's cache off too.
            let mut options = SqliteOptions::default();
            if !config.database_session_cache {
                options.session_cache_max_age = std::time::Duration::ZERO;
            }
            StoreHandle::Sqlite(
                tokio::task::spawn_blocking(move || SqliteStore::open_with(&path, options))
                    .await
                    .context("the database opener task failed")?
                    .context("cannot open the database")?,
            )
        }
    };
    Ok(store)
}

/// Checks the key ring against the database and opens the hash key (`auth_core::keyring::unlock`).
///
/// Refuses a ring that is not the one the database expects (issue 12, finding 4; issue 17): with a
/// mistyped key path a node would otherwise create a new key and run, and its SMS hashes would never
/// verify elsewhere and its outbox would drop the other nodes' messages as unreadable; with an old
/// copy of the ring after a rotation it would seal under a key the others have retired or lack. The
/// first start stores the check value; every later one compares. A key this start created for nothing
/// is removed again, so the next start with the right path is not confused by it.
pub async fn unlock_key(
    store: &dyn Store,
    ring: &keyfile::RingFile,
    origin: KeyOrigin,
    path: &std::path::Path,
    rng: &dyn Rng,
) -> anyhow::Result<ServerKey> {
    use auth_core::crypto::ids_text;
    use auth_core::keyring::{self, KeyringError};
    let refused = |why: String| {
        if origin == KeyOrigin::Created {
            let _ = std::fs::remove_file(path);
        }
        anyhow::anyhow!(
            "the server key {} is not the key this database was set up with{}{why}; start every \
             node with the same key file (server_key_file / AUTH_SERVER_KEY_FILE)",
            path.display(),
            if origin == KeyOrigin::Created {
                " (that file did not exist, so a new key was made and has been removed again)"
            } else {
                ""
            }
        )
    };
    match keyring::unlock(store, ring.ring()?, rng).await {
        Ok(key) => Ok(key),
        Err(KeyringError::Mismatch { expected, held }) => Err(refused(match expected {
            Some(expected) if expected != held => format!(
                ": the file holds key ring {}, the database expects key ring {} (the ring was \
                 changed by `auth-server key rotate` or `key retire`: copy the key file from the \
                 node where that ran)",
                ids_text(&held),
                ids_text(&expected)
            ),
            _ => String::new(),
        })),
        Err(e @ (KeyringError::HashKeyUnreadable | KeyringError::NoHashKey)) => {
            Err(refused(format!(": {e}")))
        }
        Err(e) => Err(anyhow::anyhow!("cannot read the server key check from the database: {e}")),
    }
}

/// Creates the SQLite file readable by its owner alone before SQLite opens it (SQLite gives its
/// `-wal` and `-shm` files the database file's mode), and narrows an existing file's mode to 0600.
fn private_database_file(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::metadata(path)
                .with_context(|| format!("cannot read the mode of {}", path.display()))?;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "narrowing the database file's mode to 0600");
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot change the mode of {}", path.display()))?;
            }
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}
