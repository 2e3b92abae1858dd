//! How domain values are written to and read from columns: ids as UUID, instants as BIGINT
//! nanoseconds, hashes as 32-byte BYTEA. Reading checks every shape and answers `StoreError::Corrupt`
//! instead of panicking on a damaged or foreign value.
//!
//! The instant encoding is the SQLite adapter's, so a database moved between the two keeps its meaning.

use auth_core::{PortalId, Timestamp, UserId};
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

use crate::error::{DbResult, corrupt};

/// The stored form of an instant: nanoseconds since the Unix epoch, exact for 1677–2262 (the one
/// encoding every store uses, `auth_core::time`).
pub(crate) fn ts(t: Timestamp) -> i64 {
    auth_core::time::to_nanos_i64(t)
}

/// The inverse of [`ts`].
pub(crate) fn ts_from(n: i64) -> DbResult<Timestamp> {
    auth_core::time::from_nanos_i64(n).ok_or_else(|| corrupt(format!("instant {n} out of range")))
}

pub(crate) use auth_core::time::later;

/// A TOTP step as stored. Steps are seconds/30, far below `i64::MAX`; a larger one cannot come
/// from a real clock, so it is refused rather than wrapped into a wrong order.
pub(crate) fn step(s: u64) -> DbResult<i64> {
    i64::try_from(s).map_err(|_| corrupt(format!("TOTP step {s} out of range")))
}

/// A count or position as a 32-bit column value, saturating (lists this long do not occur).
pub(crate) fn int4(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Column `idx` as `T`; a wrong type or an unexpected NULL is corruption, not an outage.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> DbResult<T> {
    row.try_get(idx).map_err(|e| corrupt(format!("column {idx}: {e}")))
}

/// A user id column.
pub(crate) fn user_id(row: &Row, idx: usize) -> DbResult<UserId> {
    get(row, idx).map(UserId)
}

/// A portal id column.
pub(crate) fn portal_id(row: &Row, idx: usize) -> DbResult<PortalId> {
    get(row, idx).map(PortalId)
}

/// A 32-byte hash column.
pub(crate) fn hash(row: &Row, idx: usize) -> DbResult<[u8; 32]> {
    get::<&[u8]>(row, idx)?
        .try_into()
        .map_err(|_| corrupt(format!("column {idx}: not a 32-byte hash")))
}

/// An instant column.
pub(crate) fn instant(row: &Row, idx: usize) -> DbResult<Timestamp> {
    ts_from(get(row, idx)?)
}

/// A nullable instant column.
pub(crate) fn opt_instant(row: &Row, idx: usize) -> DbResult<Option<Timestamp>> {
    get::<Option<i64>>(row, idx)?.map(ts_from).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_with_nanoseconds_and_clamp_at_the_ends() {
        let t = Timestamp::constant(1_768_031_184, 420_689_701);
        assert_eq!(ts_from(ts(t)).ok(), Some(t));
        assert_eq!(ts_from(ts(Timestamp::MAX)).ok(), Some(Timestamp::MAX));
        assert_eq!(ts_from(ts(Timestamp::MIN)).ok(), Some(Timestamp::MIN));
        assert_eq!(ts_from(ts(Timestamp::UNIX_EPOCH)).ok(), Some(Timestamp::UNIX_EPOCH));
        let before_epoch = Timestamp::constant(-1, 5);
        assert_eq!(ts_from(ts(before_epoch)).ok(), Some(before_epoch));
        assert!(ts(Timestamp::MAX) > ts(t) && ts(Timestamp::MIN) < ts(before_epoch));
    }

    #[test]
    fn steps_beyond_i64_are_refused() {
        assert_eq!(step(59_000_000).ok(), Some(59_000_000));
        assert!(step(u64::MAX).is_err());
    }
}
