//! [`Columns`]: reading one column of a result row by its index, whatever the driver.
//!
//! The required methods are the ones whose column types differ between the dialects (UUIDs are
//! BLOBs in SQLite and UUIDs in PostgreSQL; small integers are INTEGER in SQLite and INT4 in
//! PostgreSQL), so each adapter implements them for its driver's row type. The provided methods build
//! the domain values on top of them once. Nothing here runs a statement.

use auth_core::{PortalId, Timestamp, UserId};
use uuid::Uuid;

use crate::codec::{self, Corrupt};

/// A result row whose columns can be read by index (0 is the first column of the `SELECT`).
///
/// `E` is the adapter's internal error: a driver failure (a wrong type, a NULL where none may be)
/// stays the driver's error so the adapter's mapping decides its kind, and a failed shape check is a
/// [`Corrupt`], which `E` must take. It is a type parameter rather than an associated type because of
/// the orphan rule: an adapter may implement a foreign trait for its driver's (foreign) row type only
/// when one of the trait's parameters is a type of its own, and its error is.
pub trait Columns<E: From<Corrupt>> {
    /// A non-NULL text column.
    fn text(&self, idx: usize) -> Result<String, E>;
    /// A nullable text column.
    fn opt_text(&self, idx: usize) -> Result<Option<String>, E>;
    /// A flag (SQLite: 0 or 1; PostgreSQL: BOOLEAN).
    fn bool(&self, idx: usize) -> Result<bool, E>;
    /// A small integer column (SQLite: INTEGER; PostgreSQL: INT4), widened to `i64` so that the
    /// mappers check its range once for both dialects.
    fn small_int(&self, idx: usize) -> Result<i64, E>;
    /// A 64-bit integer column (SQLite: INTEGER; PostgreSQL: BIGINT).
    fn big_int(&self, idx: usize) -> Result<i64, E>;
    /// A nullable 64-bit integer column.
    fn opt_big_int(&self, idx: usize) -> Result<Option<i64>, E>;
    /// A byte-string column (SQLite: BLOB; PostgreSQL: BYTEA), borrowed from the row.
    fn blob(&self, idx: usize) -> Result<&[u8], E>;
    /// A UUID column (SQLite: a 16-byte BLOB; PostgreSQL: UUID).
    fn uuid(&self, idx: usize) -> Result<Uuid, E>;
    /// A nullable UUID column.
    fn opt_uuid(&self, idx: usize) -> Result<Option<Uuid>, E>;

    /// A byte-string column, copied.
    fn bytes(&self, idx: usize) -> Result<Vec<u8>, E> {
        self.blob(idx).map(<[u8]>::to_vec)
    }

    /// A 32-byte hash column.
    fn hash(&self, idx: usize) -> Result<[u8; 32], E> {
        Ok(codec::hash_from_bytes(idx, self.blob(idx)?)?)
    }

    /// A user id column.
    fn user_id(&self, idx: usize) -> Result<UserId, E> {
        self.uuid(idx).map(UserId)
    }

    /// A portal id column.
    fn portal_id(&self, idx: usize) -> Result<PortalId, E> {
        self.uuid(idx).map(PortalId)
    }

    /// An instant column (nanoseconds, see [`codec::ts`]).
    fn instant(&self, idx: usize) -> Result<Timestamp, E> {
        Ok(codec::ts_from(self.big_int(idx)?)?)
    }

    /// A nullable instant column.
    fn opt_instant(&self, idx: usize) -> Result<Option<Timestamp>, E> {
        Ok(self.opt_big_int(idx)?.map(codec::ts_from).transpose()?)
    }
}
