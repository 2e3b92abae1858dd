//! How domain values are written to columns and read back, the same in every SQL store: instants as
//! i64 nanoseconds, TOTP steps and revisions as i64, list positions as saturating integers, a
//! portal's hosts as one row each, and the shape checks of ids and hashes read as bytes.
//!
//! Reading checks every shape and answers [`Corrupt`] instead of panicking on a damaged or foreign
//! value. Which column type holds which value is the adapter's business (see [`crate::Columns`]).

use auth_core::Timestamp;
use auth_core::ports::StoreError;
use uuid::Uuid;

pub use auth_core::time::later;

/// A stored value that cannot be read back (damage, a foreign writer, a newer schema).
///
/// It becomes [`StoreError::Corrupt`] at the port; adapters convert it into their internal error
/// with `?` (see [`crate::db_error!`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stored data invalid: {0}")]
pub struct Corrupt(pub String);

impl From<Corrupt> for StoreError {
    fn from(e: Corrupt) -> Self {
        StoreError::Corrupt(e.0)
    }
}

/// A [`Corrupt`] with this explanation.
pub fn corrupt(msg: impl Into<String>) -> Corrupt {
    Corrupt(msg.into())
}

/// The stored form of an instant: nanoseconds since the Unix epoch, exact for 1677–2262 (the one
/// encoding every store uses, `auth_core::time`). Both adapters use it, so a database moved between
/// them keeps its meaning.
pub fn ts(t: Timestamp) -> i64 {
    auth_core::time::to_nanos_i64(t)
}

/// The inverse of [`ts`].
pub fn ts_from(n: i64) -> Result<Timestamp, Corrupt> {
    auth_core::time::from_nanos_i64(n).ok_or_else(|| corrupt(format!("instant {n} out of range")))
}

/// A TOTP step as stored. Steps are seconds/30, far below `i64::MAX`; a larger one cannot come
/// from a real clock, so it is refused rather than wrapped into a wrong order.
pub fn step(s: u64) -> Result<i64, Corrupt> {
    i64::try_from(s).map_err(|_| corrupt(format!("TOTP step {s} out of range")))
}

/// The inverse of [`step`]: a negative stored step was not written by [`step`].
pub fn step_from(n: i64) -> Result<u64, Corrupt> {
    u64::try_from(n).map_err(|_| corrupt("negative TOTP step"))
}

/// A revision (of a user or a portal) as stored. Revisions count changes from 0, far below
/// `i64::MAX`; a larger one cannot have been read from a store, so it is refused rather than wrapped
/// into a negative number that would compare wrongly.
pub fn revision(r: u64) -> Result<i64, Corrupt> {
    i64::try_from(r).map_err(|_| corrupt(format!("revision {r} out of range")))
}

/// The inverse of [`revision`]: a negative stored revision was not written by [`revision`] or by a
/// bump from 0.
pub fn revision_from(n: i64) -> Result<u64, Corrupt> {
    u64::try_from(n).map_err(|_| corrupt(format!("negative revision {n}")))
}

/// A count or position as a 32-bit column value (PostgreSQL's INT4), saturating: lists this long do
/// not occur, and a saturated value still sorts last.
pub fn int4(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A count or position as a 64-bit column value (SQLite's INTEGER), saturating for the same reason
/// as [`int4`].
pub fn int8(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The hosts of a portal as the rows to store: in order, each once. A portal listing one host twice
/// is the same portal; storing it twice would trip the primary key on `host` against itself.
pub fn distinct_hosts(hosts: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(hosts.len());
    for h in hosts {
        if !out.contains(h) {
            out.push(h.clone());
        }
    }
    out
}

/// A UUID stored as 16 bytes (SQLite has no UUID type); `idx` names the column in the message.
pub fn uuid_from_bytes(idx: usize, bytes: &[u8]) -> Result<Uuid, Corrupt> {
    Uuid::from_slice(bytes).map_err(|_| corrupt(format!("column {idx}: not a 16-byte id")))
}

/// A 32-byte hash (a token's SHA-256, a code's keyed hash); `idx` names the column in the message.
pub fn hash_from_bytes(idx: usize, bytes: &[u8]) -> Result<[u8; 32], Corrupt> {
    bytes.try_into().map_err(|_| corrupt(format!("column {idx}: not a 32-byte hash")))
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
        assert_eq!(step_from(59_000_000).ok(), Some(59_000_000));
        assert_eq!(step_from(-1), Err(corrupt("negative TOTP step")));
    }

    #[test]
    fn revisions_beyond_i64_are_refused() {
        assert_eq!(revision(0).ok(), Some(0));
        assert_eq!(revision(7).ok(), Some(7));
        assert_eq!(revision(i64::MAX as u64).ok(), Some(i64::MAX));
        assert!(revision(u64::MAX).is_err());
        assert_eq!(revision_from(7).ok(), Some(7));
        assert_eq!(revision_from(-1), Err(corrupt("negative revision -1")));
    }

    #[test]
    fn positions_saturate() {
        assert_eq!((int4(7), int8(7)), (7, 7));
        assert_eq!(int4(usize::MAX), i32::MAX);
        assert_eq!(int8(usize::MAX), i64::MAX);
    }

    #[test]
    fn hosts_keep_their_first_position_once() {
        let hosts = |v: &[&str]| v.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>();
        assert_eq!(distinct_hosts(&[]), hosts(&[]));
        assert_eq!(distinct_hosts(&hosts(&["b", "a"])), hosts(&["b", "a"]));
        assert_eq!(distinct_hosts(&hosts(&["b", "a", "b", "c", "a"])), hosts(&["b", "a", "c"]));
    }

    fn check(bytes: &[u8], want_uuid: bool, want_hash: bool) {
        assert_eq!(uuid_from_bytes(3, bytes).is_ok(), want_uuid, "uuid from {} bytes", bytes.len());
        assert_eq!(hash_from_bytes(3, bytes).is_ok(), want_hash, "hash from {} bytes", bytes.len());
    }

    #[test]
    fn ids_and_hashes_need_their_exact_length() {
        check(&[], false, false);
        check(&[1; 2], false, false);
        check(&[1; 16], true, false);
        check(&[1; 31], false, false);
        check(&[1; 32], false, true);
        check(&[1; 33], false, false);
        assert_eq!(uuid_from_bytes(3, &[1; 16]).ok(), Some(Uuid::from_bytes([1; 16])));
        assert_eq!(hash_from_bytes(3, &[1; 2]), Err(corrupt("column 3: not a 32-byte hash")));
        assert_eq!(
            StoreError::from(corrupt("x")).to_string(),
            StoreError::Corrupt("x".into()).to_string()
        );
    }
}
