//! Opening what every command shares: the data directory, the server key, the SQLite store, and an
//! `AuthService` over them. `serve` and the admin subcommands differ only in the hasher they pass.

use std::sync::Arc;

use anyhow::Context as _;
use auth_core::crypto::ServerKey;
use auth_core::password::Argon2Hasher;
use auth_core::ports::{Clock, NoSocialProviders, PasswordHasher, Rng};
use auth_core::service::Deps;
use auth_core::{AuthService, Store};
use auth_sqlite::SqliteStore;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::keyfile::{self, KeyOrigin};
use crate::rng::OsRng;

/// The opened service and the parts the server also needs on their own.
pub struct Core {
    /// The service.
    pub service: Arc<AuthService>,
    /// The store behind it.
    pub store: SqliteStore,
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
    let (key, key_origin) = keyfile::load_or_create(&config.server_key_file)?;
    if key_origin == KeyOrigin::Created {
        tracing::info!(path = %config.server_key_file.display(), "created a new server key");
    }
    if let Some(dir) = config.database_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        keyfile::ensure_private_dir(dir)?;
    }
    let path = config.database_path.clone();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
        .await
        .context("the database opener task failed")?
        .context("cannot open the database")?;
    let rng: Arc<dyn Rng> = Arc::new(OsRng);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let hasher = hasher(Arc::clone(&rng))?;
    let store_port: Arc<dyn Store> = Arc::new(store.clone());
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
