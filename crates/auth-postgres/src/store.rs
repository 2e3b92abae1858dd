//! [`PgStore`]: connecting (pool, session settings, migrations) and the helpers every port uses.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use auth_core::ports::{StoreError, StoreResult};
use auth_sql::Columns;
use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime, Transaction,
};
use tokio_postgres::{IsolationLevel, NoTls};

use crate::error::{DbResult, PgError};
use crate::migrate::migrate;
use crate::session_cache::{self, Change, SessionCache, SessionCacheStats};

/// How long opening one connection may take, when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call waits for a free pooled connection before answering `Unavailable`.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// The longest any statement may run, lock waits included. Every statement here touches a handful of
/// rows by index, so one that takes this long is stuck (a node holding a lock on a dead network
/// path), and failing it lets the caller answer "busy" instead of hanging a request.
const STATEMENT_TIMEOUT: &str = "30s";

/// Every store port of auth-core on one PostgreSQL database. Cheap to clone (the clones share the
/// pool and the session cache); several nodes each hold their own.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The per-node cache of token lookups (`session_cache.rs`), unless turned off.
    sessions: Option<Arc<SessionCache>>,
}

/// How [`PgStore::connect_with`] sets the store up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// The most pooled connections (at least 1); the session cache's listener has one more.
    pub pool_size: usize,
    /// Whether this node caches token lookups, kept exact across nodes by `LISTEN/NOTIFY` (the
    /// default). Set it the same on every node: a node with the cache off does not wait for the
    /// others' caches after a revocation.
    pub session_cache: bool,
}

impl PgOptions {
    /// A pool of `pool_size` connections, with the session cache on.
    pub fn new(pool_size: usize) -> PgOptions {
        PgOptions { pool_size, session_cache: true }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's own Debug prints the connection config, password included.
        let status = self.pool.status();
        f.debug_struct("PgStore")
            .field("max_size", &status.max_size)
            .field("size", &status.size)
            .field("available", &status.available)
            .field("session_cache", &self.sessions.is_some())
            .finish()
    }
}

impl PgStore {
    /// Connects to the database at `url` (a `postgres://` URL or a `key=value` string, as libpq
    /// takes them) with a pool of at most `pool_size` connections, and migrates it to
    /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION).
    ///
    /// TLS follows libpq's `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`) and
    /// `sslrootcert` in the string (see [`crate::tls`]).
    ///
    /// # Errors
    ///
    /// [`PgError::Config`] for an unusable URL or a zero pool size, [`PgError::Connect`] when the
    /// server does not answer or refuses, [`PgError::TooNew`] for a database migrated by a newer build,
    /// [`PgError::Migration`] when a migration fails (nothing of it is applied then).
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, PgError> {
        Self::connect_with(url, &PgOptions::new(pool_size)).await
    }

    /// [`PgStore::connect`] with every option spelled out.
    ///
    /// # Errors
    ///
    /// As [`PgStore::connect`].
    pub async fn connect_with(url: &str, options: &PgOptions) -> Result<Self, PgError> {
        let pool_size = options.pool_size;
        if pool_size == 0 {
            return Err(PgError::Config("the pool size must be at least 1".into()));
        }
        let tls = crate::tls::tls_settings(url)?;
        let mut config: tokio_postgres::Config =
            tls.url.parse().map_err(|e| PgError::Config(format!("connection string: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            // Operators find the service's sessions in pg_stat_activity by this name.
            config.application_name("auth-server");
        }
        // Fast recycling trusts a connection that is not closed: every call ends its transaction,
        // and a dropped one is rolled back by tokio-postgres before the next query on it.
        let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let sessions = options.session_cache.then(|| Arc::new(SessionCache::new()));
        // The cache's listener starts once the database has answered and the schema is current,
        // so a database that cannot be reached fails the start with one clear error.
        type StartListener = Box<dyn FnOnce(&Arc<SessionCache>) + Send>;
        let (manager, start_listener): (Manager, StartListener) =
            if tls.mode == crate::tls::SslMode::Disable {
                let listen = config.clone();
                (
                    Manager::from_config(config, NoTls, manager_config),
                    Box::new(move |cache| session_cache::spawn_listener(cache, listen, NoTls)),
                )
            } else {
                let connector =
                    tokio_postgres_rustls::MakeRustlsConnect::new(crate::tls::client_config(&tls)?);
                let (listen, tls) = (config.clone(), connector.clone());
                (
                    Manager::from_config(config, connector, manager_config),
                    Box::new(move |cache| session_cache::spawn_listener(cache, listen, tls)),
                )
            };
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .post_create(Hook::async_fn(|client, _| {
                Box::pin(async move {
                    client.batch_execute(&session_settings()).await.map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| PgError::Config(format!("connection pool: {e}")))?;
        let store = Self { pool, sessions };
        let mut client = store.pool.get().await.map_err(|e| PgError::Connect(e.to_string()))?;
        migrate(&mut client).await?;
        drop(client);
        if let Some(cache) = &store.sessions {
            start_listener(cache);
        }
        Ok(store)
    }

    /// Answers when the database answers a trivial query (for readiness checks).
    pub async fn ping(&self) -> StoreResult<()> {
        done(async {
            self.client().await?.simple_query("SELECT 1").await?;
            Ok(())
        })
        .await
    }

    /// The schema version recorded in the database.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        done(async {
            let row = self
                .client()
                .await?
                .query_one("SELECT coalesce(max(version), 0)::BIGINT FROM schema_version", &[])
                .await?;
            row.big_int(0)
        })
        .await
    }

    /// Closes the pool: idle connections are closed now, busy ones when they are returned, and
    /// later calls answer `Unavailable`.
    pub fn close(&self) {
        if let Some(cache) = &self.sessions {
            cache.close();
        }
        self.pool.close();
    }

    /// The counters of this node's session cache (`None` when it is off).
    pub fn session_cache_stats(&self) -> Option<SessionCacheStats> {
        self.sessions.as_ref().map(|c| c.stats())
    }

    pub(crate) fn session_cache(&self) -> Option<&SessionCache> {
        self.sessions.as_deref()
    }

    /// After a change committed (with its notification, see `session_cache.rs`): drops what this
    /// node cached of it at once, and when `settle`, waits until every node's cache has either seen
    /// the notification or stopped serving, so that the caller's answer comes after both.
    pub(crate) async fn changed(&self, change: Change, settle: bool) {
        let Some(cache) = &self.sessions else { return };
        cache.apply(change);
        if settle {
            tokio::time::sleep(session_cache::SETTLE).await;
        }
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> DbResult<Object> {
        Ok(self.pool.get().await?)
    }
}

/// The session settings of every pooled connection.
///
/// READ COMMITTED whatever the server's default: the statements are written for its re-check of a
/// row that a concurrent transaction changed (an `UPDATE … WHERE used = false` that lost the race
/// matches nothing), where REPEATABLE READ or SERIALIZABLE would fail the loser with a serialization
/// error instead of an answer.
fn session_settings() -> String {
    format!(
        "SET default_transaction_isolation = 'read committed'; \
         SET statement_timeout = '{STATEMENT_TIMEOUT}'"
    )
}

/// Starts a READ COMMITTED transaction on `client`; dropped without commit, it rolls back.
pub(crate) async fn begin(client: &mut Object) -> DbResult<Transaction<'_>> {
    Ok(client.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start().await?)
}

/// Takes the row lock named `name` until the transaction ends, creating the row when needed.
///
/// `ON CONFLICT DO UPDATE` always either inserts or locks the existing row, even when a concurrent
/// transaction is inserting or deleting it, so this never returns without the lock. Another
/// transaction taking the same name waits here until this one commits or rolls back, and its next
/// statement sees what this one wrote.
pub(crate) async fn lock(tx: &Transaction<'_>, name: &str) -> DbResult<()> {
    let st = tx
        .prepare_cached(
            "INSERT INTO locks AS l (name) VALUES ($1) \
             ON CONFLICT (name) DO UPDATE SET name = l.name",
        )
        .await?;
    tx.execute(&st, &[&name]).await?;
    Ok(())
}

/// Runs a port method's body and turns its failure into the port's error.
pub(crate) async fn done<T>(body: impl Future<Output = DbResult<T>>) -> StoreResult<T> {
    body.await.map_err(StoreError::from)
}
