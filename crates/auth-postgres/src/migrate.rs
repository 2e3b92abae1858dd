//! The schema's numbered migrations and how they are applied.
//!
//! Each migration is an SQL file under `migrations/`, embedded at build time. The versions applied
//! so far are rows of `schema_version`. On connect, every migration above the highest row is applied
//! in one transaction together with its row, so a failure leaves the old schema whole. The
//! transaction first takes `pg_advisory_xact_lock` on a fixed key, so several nodes starting at once
//! queue: the first applies the migrations, the others find them applied. A database whose version is
//! above [`SCHEMA_VERSION`] was migrated by newer code and is refused.
//!
//! Where advisory locks are missing or do nothing (CockroachDB), two nodes may still race on a fresh
//! database; the loser fails with a duplicate-object or serialization error, and the whole attempt is
//! retried, when it finds the work done.

use deadpool_postgres::{Object, Transaction};
use tokio_postgres::IsolationLevel;
use tokio_postgres::error::SqlState;

use crate::error::PgError;

/// The migrations, in order; migration `i` (0-based) brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_revisions_claims_meta.sql"),
    include_str!("../migrations/0003_social.sql"),
    include_str!("../migrations/0004_email.sql"),
    include_str!("../migrations/0005_sessions.sql"),
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The advisory lock key of migrations ("authmigr" in ASCII); advisory locks are per database, so
/// only other migrators of this database share it.
const MIGRATION_LOCK: i64 = 0x6175_7468_6d69_6772;

/// How often a migration that lost a race is tried again.
const ATTEMPTS: u32 = 3;

/// Brings the database up to [`SCHEMA_VERSION`]; returns the version found before.
pub(crate) async fn migrate(client: &mut Object) -> Result<i64, PgError> {
    let mut attempt = 1;
    loop {
        match migrate_once(client).await {
            Err(Attempt::Raced(_)) if attempt < ATTEMPTS => attempt += 1,
            Err(Attempt::Raced(e) | Attempt::Failed(e)) => return Err(e),
            Ok(found) => return Ok(found),
        }
    }
}

/// One attempt; a failure that another migrator's concurrent work explains is told apart.
enum Attempt {
    Raced(PgError),
    Failed(PgError),
}

fn sql_err(version: u32) -> impl Fn(tokio_postgres::Error) -> Attempt {
    move |e| {
        let raced = e.code().is_some_and(|c| {
            *c == SqlState::UNIQUE_VIOLATION
                || *c == SqlState::DUPLICATE_TABLE
                || *c == SqlState::DUPLICATE_OBJECT
                || *c == SqlState::T_R_SERIALIZATION_FAILURE
        });
        let message = match e.as_db_error() {
            Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            None => e.to_string(),
        };
        let e = PgError::Migration { version, message };
        if raced { Attempt::Raced(e) } else { Attempt::Failed(e) }
    }
}

/// Takes the migration lock until the transaction ends. A database without advisory locks (older
/// CockroachDB releases have no such function) is migrated without it: the attempt runs in a
/// savepoint, so its failure leaves the transaction usable, and the retry above covers the race.
async fn advisory_lock(tx: &mut Transaction<'_>) -> Result<(), Attempt> {
    let sp = tx.savepoint("migration_lock").await.map_err(sql_err(0))?;
    match sp.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await {
        // Releasing the savepoint hands its lock to the enclosing transaction.
        Ok(_) => sp.commit().await.map_err(sql_err(0)),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_FUNCTION) => {
            sp.rollback().await.map_err(sql_err(0))
        }
        Err(e) => Err(sql_err(0)(e)),
    }
}

async fn migrate_once(client: &mut Object) -> Result<i64, Attempt> {
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(sql_err(0))?;
    // A migration may rewrite a large table; the per-statement limit of ordinary calls is not for it.
    tx.batch_execute("SET LOCAL statement_timeout = 0").await.map_err(sql_err(0))?;
    advisory_lock(&mut tx).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (\
             version    INT4        NOT NULL PRIMARY KEY, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(sql_err(0))?;
    let found: i64 = tx
        .query_one("SELECT coalesce(max(version), 0)::BIGINT FROM schema_version", &[])
        .await
        .map_err(sql_err(0))?
        .try_get(0)
        .map_err(sql_err(0))?;
    if found > i64::from(SCHEMA_VERSION) || found < 0 {
        return Err(Attempt::Failed(PgError::TooNew { found, supported: SCHEMA_VERSION }));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        let version = u32::try_from(i + 1).unwrap_or(u32::MAX);
        tx.batch_execute(sql).await.map_err(sql_err(version))?;
        let v = i32::try_from(version).unwrap_or(i32::MAX);
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&v])
            .await
            .map_err(sql_err(version))?;
    }
    tx.commit().await.map_err(sql_err(SCHEMA_VERSION))?;
    Ok(found)
}
