//! How this adapter reads SQLite's columns: the [`Columns`] impl for rusqlite's rows, and helpers
//! that run a query's rows through a mapper.
//!
//! The encodings themselves are auth-sql's (`auth_sql::codec`), shared with the PostgreSQL adapter:
//! UUIDs are 16-byte BLOBs here, instants INTEGER nanoseconds, hashes 32-byte BLOBs, flags 0 or 1.
//! Reading checks every shape and answers `StoreError::Corrupt` instead of panicking on a damaged or
//! foreign value; what rusqlite itself refuses (a wrong type, a NULL) is sorted by `from_sqlite`.

use auth_sql::Columns;
use auth_sql::codec::{corrupt, uuid_from_bytes};
use rusqlite::Row;
use rusqlite::types::ValueRef;
use uuid::Uuid;

use crate::error::{DbError, DbResult};

/// SQLite has one INTEGER type (64 bits) and no UUID type, so ids are checked BLOBs.
impl Columns<DbError> for Row<'_> {
    fn text(&self, idx: usize) -> DbResult<String> {
        Ok(self.get(idx)?)
    }

    fn opt_text(&self, idx: usize) -> DbResult<Option<String>> {
        Ok(self.get(idx)?)
    }

    fn bool(&self, idx: usize) -> DbResult<bool> {
        Ok(self.get(idx)?)
    }

    fn small_int(&self, idx: usize) -> DbResult<i64> {
        Ok(self.get(idx)?)
    }

    fn big_int(&self, idx: usize) -> DbResult<i64> {
        Ok(self.get(idx)?)
    }

    fn opt_big_int(&self, idx: usize) -> DbResult<Option<i64>> {
        Ok(self.get(idx)?)
    }

    fn blob(&self, idx: usize) -> DbResult<&[u8]> {
        match self.get_ref(idx)? {
            ValueRef::Blob(b) => Ok(b),
            other => Err(corrupt(format!(
                "column {idx}: expected a blob, found {:?}",
                other.data_type()
            ))
            .into()),
        }
    }

    fn uuid(&self, idx: usize) -> DbResult<Uuid> {
        Ok(uuid_from_bytes(idx, self.blob(idx)?)?)
    }

    fn opt_uuid(&self, idx: usize) -> DbResult<Option<Uuid>> {
        match self.get_ref(idx)? {
            ValueRef::Null => Ok(None),
            _ => self.uuid(idx).map(Some),
        }
    }
}

/// Collects every row of a query through `f`.
///
/// The mappers of `auth_sql::records` are passed as closures (`|r| records::user(r)`) rather than by
/// name: `f` must take a row of any statement lifetime, and a generic function instantiated for one
/// row type names one lifetime only.
pub(crate) fn collect<T>(
    mut rows: rusqlite::Rows<'_>,
    f: impl Fn(&Row<'_>) -> DbResult<T>,
) -> DbResult<Vec<T>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(f(row)?);
    }
    Ok(out)
}

/// The first row of a query through `f`, if any.
pub(crate) fn first<T>(
    mut rows: rusqlite::Rows<'_>,
    f: impl Fn(&Row<'_>) -> DbResult<T>,
) -> DbResult<Option<T>> {
    rows.next()?.map(f).transpose()
}
