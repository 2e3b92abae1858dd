//! Opening what every command shares: the data directory, the server key, the store (SQLite by default,
//! PostgreSQL when `database.url` names one), and an `AuthService` over them. `serve` and the admin
//! subcommands differ only in the hasher they pass.

use std::sync::Arc;

use anyhow::Context as _;
use auth_core::crypto::ServerKey;
use auth_core::password::Argon2Hasher;
use auth_core::ports::{Clock, NoSocialProviders, PasswordHasher, Rng};
use auth_core::service::Deps;
use auth_core::{AuthService, Store};
use auth_postgres::PgStore;
use auth_sqlite::SqliteStore;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::keyfile::{self, KeyOrigin};
use crate::rng::OsRng;

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
    keyfile::ensure_private_dir(&config.data_dir)?;
    let store = match &config.database_url {
        Some(url) => StoreHandle::Postgres(
            PgStore::connect(url, config.database_pool_size)
                .await
                .context("cannot open the PostgreSQL database")?,
        ),
        None => {
            if let Some(dir) = config.database_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                keyfile::ensure_private_dir(dir)?;
            }
            let path = config.database_path.clone();
            StoreHandle::Sqlite(
                tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                    .await
                    .context("the database opener task failed")?
                    .context("cannot open the database")?,
            )
        }
    };
    // The key comes after the store, so a database that cannot be opened leaves no new key behind.
    let (key, key_origin) = keyfile::load_or_create(&config.server_key_file)?;
    if key_origin == KeyOrigin::Created {
        tracing::info!(path = %config.server_key_file.display(), "created a new server key");
    }
    let rng: Arc<dyn Rng> = Arc::new(OsRng);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let hasher = hasher(Arc::clone(&rng))?;
    let store_port = store.port();
    let service = Arc::new(AuthService::new(Deps {
        store: store_port,
        hasher,
        social: Arc::new(NoSocialProviders),
        clock: Arc::clone(&clock),
        rng,
        key: key.clone(),
    }));
    Ok(Core { service, store, key, key_origin, clock })
}
