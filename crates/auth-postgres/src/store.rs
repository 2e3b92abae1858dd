//! [`PgStore`]: connecting (pool, session settings, migrations) and the helpers every port uses.

use std::future::Future;
use std::time::Duration;

use auth_core::ports::{StoreError, StoreResult};
use auth_sql::Columns;
use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime, Transaction,
};
use tokio_postgres::{IsolationLevel, NoTls};

use crate::error::{DbResult, PgError};
use crate::migrate::migrate;

/// How long opening one connection may take, when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call waits for a free pooled connection before answering `Unavailable`.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// The longest any statement may run, lock waits included. Every statement here touches a handful of
/// rows by index, so one that takes this long is stuck (a node holding a lock on a dead network
/// path), and failing it lets the caller answer "busy" instead of hanging a request.
const STATEMENT_TIMEOUT: &str = "30s";

/// Every store port of auth-core on one PostgreSQL database. Cheap to clone (the clones share the
/// pool); several nodes each hold their own.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's own Debug prints the connection config, password included.
        let status = self.pool.status();
        f.debug_struct("PgStore")
            .field("max_size", &status.max_size)
            .field("size", &status.size)
            .field("available", &status.available)
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
        let manager = if tls.mode == crate::tls::SslMode::Disable {
            Manager::from_config(config, NoTls, manager_config)
        } else {
            let connector =
                tokio_postgres_rustls::MakeRustlsConnect::new(crate::tls::client_config(&tls)?);
            Manager::from_config(config, connector, manager_config)
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
        let mut client = pool.get().await.map_err(|e| PgError::Connect(e.to_string()))?;
        migrate(&mut client).await?;
        Ok(Self { pool })
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
        self.pool.close();
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
