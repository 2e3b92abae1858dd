//! How domain values are written to and read from columns: UUIDs as 16-byte BLOBs, instants as
//! INTEGER nanoseconds, hashes as 32-byte BLOBs. Reading checks every shape and answers
//! `StoreError::Corrupt` instead of panicking on a damaged or foreign value.

use auth_core::Timestamp;
use auth_core::{PortalId, UserId};
use rusqlite::Row;
use rusqlite::types::ValueRef;
use uuid::Uuid;

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

fn blob<'r>(row: &'r Row<'_>, idx: usize) -> DbResult<&'r [u8]> {
    match row.get_ref(idx)? {
        ValueRef::Blob(b) => Ok(b),
        other => {
            Err(corrupt(format!("column {idx}: expected a blob, found {:?}", other.data_type())))
        }
    }
}

/// A UUID column.
pub(crate) fn uuid(row: &Row<'_>, idx: usize) -> DbResult<Uuid> {
    Uuid::from_slice(blob(row, idx)?)
        .map_err(|_| corrupt(format!("column {idx}: not a 16-byte id")))
}

/// A nullable UUID column.
pub(crate) fn opt_uuid(row: &Row<'_>, idx: usize) -> DbResult<Option<Uuid>> {
    match row.get_ref(idx)? {
        ValueRef::Null => Ok(None),
        _ => uuid(row, idx).map(Some),
    }
}

/// A user id column.
pub(crate) fn user_id(row: &Row<'_>, idx: usize) -> DbResult<UserId> {
    uuid(row, idx).map(UserId)
}

/// A portal id column.
pub(crate) fn portal_id(row: &Row<'_>, idx: usize) -> DbResult<PortalId> {
    uuid(row, idx).map(PortalId)
}

/// A 32-byte hash column.
pub(crate) fn hash(row: &Row<'_>, idx: usize) -> DbResult<[u8; 32]> {
    blob(row, idx)?.try_into().map_err(|_| corrupt(format!("column {idx}: not a 32-byte hash")))
}

/// A blob column, copied.
pub(crate) fn bytes(row: &Row<'_>, idx: usize) -> DbResult<Vec<u8>> {
    blob(row, idx).map(<[u8]>::to_vec)
}

/// An instant column.
pub(crate) fn instant(row: &Row<'_>, idx: usize) -> DbResult<Timestamp> {
    ts_from(row.get(idx)?)
}

/// A nullable instant column.
pub(crate) fn opt_instant(row: &Row<'_>, idx: usize) -> DbResult<Option<Timestamp>> {
    row.get::<_, Option<i64>>(idx)?.map(ts_from).transpose()
}

/// Collects every row of a query through `f`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_with_nanoseconds_and_clamp_at_the_ends() {
        let t = Timestamp::constant(1_768_031_184, 420_689_700);
        assert_eq!(ts_from(ts(t)).ok(), Some(t));
        assert_eq!(ts_from(ts(Timestamp::MAX)).ok(), Some(Timestamp::MAX));
        assert_eq!(ts_from(ts(Timestamp::MIN)).ok(), Some(Timestamp::MIN));
        assert_eq!(ts_from(ts(Timestamp::UNIX_EPOCH)).ok(), Some(Timestamp::UNIX_EPOCH));
        let before_epoch = Timestamp::constant(-1, 5);
        assert_eq!(ts_from(ts(before_epoch)).ok(), Some(before_epoch));
        assert!(ts(Timestamp::MAX) > ts(t) && ts(Timestamp::MIN) < ts(before_epoch));
    }
}
