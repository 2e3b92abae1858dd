//! Errors: [`SqliteError`] for opening a database, and the translation of SQLite's errors into the
//! ports' [`StoreError`] so that no rusqlite type crosses a port.

use auth_core::ports::StoreError;
use rusqlite::ErrorCode;

/// Why [`SqliteStore::open`](crate::SqliteStore::open) failed.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// The file could not be opened or configured (missing directory, permissions, not SQLite…).
    #[error("cannot open database {path}: {message}")]
    Open {
        /// The path given to `open`.
        path: String,
        /// SQLite's explanation.
        message: String,
    },
    /// The database was written by a newer version of this software; refusing it keeps this older
    /// code from misreading or damaging data it does not understand.
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); \
         upgrade the server or restore a backup"
    )]
    TooNew {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest schema version this build knows.
        supported: u32,
    },
    /// The file is an SQLite database of some other application.
    #[error("database is not an auth store (application_id {application_id:#x})")]
    Foreign {
        /// `PRAGMA application_id` of the file.
        application_id: i32,
    },
    /// A migration failed; nothing of it was applied (migrations run in one transaction).
    #[error("migration to schema version {version} failed: {message}")]
    Migration {
        /// The version being applied.
        version: u32,
        /// SQLite's explanation.
        message: String,
    },
}

auth_sql::db_error! {
    /// What a store job can fail with: SQLite's error, or one of ours (decoding, ranges).
    ///
    /// Jobs use `?` on both; the store's `run` turns the result into a [`StoreError`] with
    /// [`from_sqlite`]. The shape is auth-sql's, shared with the PostgreSQL adapter.
    #[derive(Debug)]
    pub(crate) enum DbError {
        /// SQLite's own error, sorted by its code.
        Sql(rusqlite::Error) => from_sqlite,
    }
}

pub(crate) type DbResult<T> = Result<T, DbError>;

/// Maps SQLite's error codes onto the three kinds of store failure.
///
/// Constraint violations are uniqueness rules (duplicate e-mail, host or id); locks, I/O, a full
/// disk or a read-only file are conditions that may pass, so callers answer "busy"; a damaged file
/// or undecodable values are corruption. Anything else is treated as retryable, because the schema
/// and statements are fixed and tested: an unexpected code is far more likely an environmental
/// problem (memory, interrupts) than bad data. The messages carry SQL and SQLite's text, never
/// parameter values, so no secret reaches them.
pub(crate) fn from_sqlite(e: &rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    match e {
        E::SqliteFailure(f, _) => match f.code {
            ErrorCode::ConstraintViolation => StoreError::Conflict(e.to_string()),
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                StoreError::Corrupt(e.to_string())
            }
            // Busy, locked, I/O errors, full disk, read-only, cannot open, out of memory and the rest.
            _ => StoreError::Unavailable(e.to_string()),
        },
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..)
        | E::Utf8Error(..)
        | E::NulError(..) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn codes_map_to_kinds() {
        use rusqlite::ffi;
        assert!(matches!(from_sqlite(&failure(ffi::SQLITE_CONSTRAINT)), StoreError::Conflict(_)));
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_FULL,
            ffi::SQLITE_READONLY,
            ffi::SQLITE_CANTOPEN,
        ] {
            assert!(matches!(from_sqlite(&failure(code)), StoreError::Unavailable(_)), "{code}");
        }
        assert!(matches!(from_sqlite(&failure(ffi::SQLITE_CORRUPT)), StoreError::Corrupt(_)));
        assert!(matches!(from_sqlite(&failure(ffi::SQLITE_NOTADB)), StoreError::Corrupt(_)));
        let conv = rusqlite::Error::IntegralValueOutOfRange(0, -1);
        assert!(matches!(from_sqlite(&conv), StoreError::Corrupt(_)));
    }
}
