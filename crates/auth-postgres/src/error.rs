//! Errors: [`PgError`] for connecting, and the translation of PostgreSQL's and the pool's errors into
//! the ports' [`StoreError`], so that no tokio-postgres or deadpool type crosses a port.
//!
//! Messages carry PostgreSQL's primary message and SQLSTATE, never its DETAIL line: the detail of a
//! unique violation quotes the key's value (an e-mail, a host), and store errors end up in logs.

use auth_core::ports::StoreError;
use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

/// Why [`PgStore::connect`](crate::PgStore::connect) failed.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The connection string or the pool size is not usable.
    #[error("invalid PostgreSQL configuration: {0}")]
    Config(String),
    /// The server could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    /// The database was migrated by a newer version of this software; refusing it keeps this older
    /// code from misreading or damaging data it does not understand.
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); \
         upgrade the server or restore a backup"
    )]
    TooNew {
        /// The highest version in `schema_version`.
        found: i64,
        /// The newest schema version this build knows.
        supported: u32,
    },
    /// A migration failed; nothing of it was applied (migrations run in one transaction).
    #[error("migration to schema version {version} failed: {message}")]
    Migration {
        /// The version being applied.
        version: u32,
        /// PostgreSQL's explanation.
        message: String,
    },
}

auth_sql::db_error! {
    /// What a store call can fail with: PostgreSQL's error, the pool's, or one of ours (decoding,
    /// ranges). Port methods use `?` on all three; [`StoreError::from`] sorts them at the end. The
    /// shape is auth-sql's, shared with the SQLite adapter.
    #[derive(Debug)]
    pub(crate) enum DbError {
        /// PostgreSQL's error (or the client's, without a SQLSTATE).
        Pg(tokio_postgres::Error) => from_pg,
        /// The pool's: no free connection in time, a closed pool, or a failed connect.
        Pool(PoolError) => from_pool,
    }
}

pub(crate) type DbResult<T> = Result<T, DbError>;

/// What kind of store failure a SQLSTATE is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Conflict,
    Unavailable,
    Corrupt,
}

/// Sorts SQLSTATEs into the three kinds of store failure.
///
/// Integrity violations (class 23) are uniqueness rules: duplicate e-mail, host or id. Data exceptions
/// (class 22), a schema that does not match the statements (class 42: a dropped table or column) and
/// PostgreSQL's own corruption codes mean the stored data cannot be read as this build expects. The
/// rest (connection loss, serialization failures and deadlocks of class 40, timeouts and cancels of
/// class 57, lack of resources of class 53, lock timeouts) may pass, so callers answer "busy". An
/// unknown code counts as retryable too, because the statements are fixed and tested: an unexpected
/// one is far more likely the environment (a restart, a failover) than bad data.
pub(crate) fn kind_of(state: &SqlState) -> Kind {
    let code = state.code();
    if *state == SqlState::DATA_CORRUPTED || *state == SqlState::INDEX_CORRUPTED {
        return Kind::Corrupt;
    }
    match code.get(..2) {
        Some("23") => Kind::Conflict,
        Some("22" | "42") => Kind::Corrupt,
        _ => Kind::Unavailable,
    }
}

/// Maps a tokio-postgres error; one without a SQLSTATE is a client-side failure (connection closed,
/// I/O), so retryable.
pub(crate) fn from_pg(e: &tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        return StoreError::Unavailable(e.to_string());
    };
    let msg = format!("{} (SQLSTATE {})", db.message(), db.code().code());
    match kind_of(db.code()) {
        Kind::Conflict => StoreError::Conflict(msg),
        Kind::Unavailable => StoreError::Unavailable(msg),
        Kind::Corrupt => StoreError::Corrupt(msg),
    }
}

/// Maps a pool error: a timeout waiting for or opening a connection, a closed pool, or the backend's
/// error while connecting. All of them may pass.
fn from_pool(e: &PoolError) -> StoreError {
    match e {
        PoolError::Backend(pg) => from_pg(pg),
        other => StoreError::Unavailable(format!("connection pool: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cases: &[(SqlState, Kind)]) {
        for (state, want) in cases {
            assert_eq!(kind_of(state), *want, "{}", state.code());
        }
    }

    #[test]
    fn sqlstates_map_to_kinds() {
        check(&[
            (SqlState::UNIQUE_VIOLATION, Kind::Conflict),
            (SqlState::CHECK_VIOLATION, Kind::Conflict),
            (SqlState::T_R_SERIALIZATION_FAILURE, Kind::Unavailable),
            (SqlState::T_R_DEADLOCK_DETECTED, Kind::Unavailable),
            (SqlState::QUERY_CANCELED, Kind::Unavailable),
            (SqlState::LOCK_NOT_AVAILABLE, Kind::Unavailable),
            (SqlState::ADMIN_SHUTDOWN, Kind::Unavailable),
            (SqlState::CONNECTION_FAILURE, Kind::Unavailable),
            (SqlState::TOO_MANY_CONNECTIONS, Kind::Unavailable),
            (SqlState::READ_ONLY_SQL_TRANSACTION, Kind::Unavailable),
            (SqlState::UNDEFINED_TABLE, Kind::Corrupt),
            (SqlState::UNDEFINED_COLUMN, Kind::Corrupt),
            (SqlState::INVALID_TEXT_REPRESENTATION, Kind::Corrupt),
            (SqlState::DATA_CORRUPTED, Kind::Corrupt),
            (SqlState::INDEX_CORRUPTED, Kind::Corrupt),
        ]);
    }
}
