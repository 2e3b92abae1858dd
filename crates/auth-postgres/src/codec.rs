//! How this adapter reads PostgreSQL's columns: the [`Columns`] impl for tokio-postgres's rows, and
//! [`get`] for the one column type that SQLite has no counterpart of (the portal's hosts array).
//!
//! The encodings themselves are auth-sql's (`auth_sql::codec`), shared with the SQLite adapter: ids
//! are UUID here, instants BIGINT nanoseconds, hashes 32-byte BYTEA, flags BOOLEAN and small integers
//! INT4. The instant encoding is the SQLite adapter's, so a database moved between the two keeps its
//! meaning. Reading checks every shape and answers `StoreError::Corrupt` instead of panicking on a
//! damaged or foreign value.

use auth_sql::Columns;
use auth_sql::codec::corrupt;
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;
use uuid::Uuid;

use crate::error::{DbError, DbResult};

/// Column `idx` as `T`; a wrong type or an unexpected NULL is corruption, not an outage.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> DbResult<T> {
    row.try_get(idx).map_err(|e| corrupt(format!("column {idx}: {e}")).into())
}

/// tokio-postgres checks each column's type against the Rust type asked for, so small integers are
/// read as the INT4 they are and widened.
impl Columns<DbError> for Row {
    fn text(&self, idx: usize) -> DbResult<String> {
        get(self, idx)
    }

    fn opt_text(&self, idx: usize) -> DbResult<Option<String>> {
        get(self, idx)
    }

    fn bool(&self, idx: usize) -> DbResult<bool> {
        get(self, idx)
    }

    fn small_int(&self, idx: usize) -> DbResult<i64> {
        get::<i32>(self, idx).map(i64::from)
    }

    fn big_int(&self, idx: usize) -> DbResult<i64> {
        get(self, idx)
    }

    fn opt_big_int(&self, idx: usize) -> DbResult<Option<i64>> {
        get(self, idx)
    }

    fn blob(&self, idx: usize) -> DbResult<&[u8]> {
        get(self, idx)
    }

    fn uuid(&self, idx: usize) -> DbResult<Uuid> {
        get(self, idx)
    }

    fn opt_uuid(&self, idx: usize) -> DbResult<Option<Uuid>> {
        get(self, idx)
    }
}
