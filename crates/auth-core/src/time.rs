//! Instant arithmetic and the one integer encoding of instants that every store adapter uses.
//!
//! Stores keep instants as signed 64-bit nanoseconds since the Unix epoch: exact for 1677–2262 (the core
//! compares whole records, and clocks carry nanoseconds), ordered, and cheap to compare in SQL. Instants
//! outside that range clamp to the ends, which read back as `Timestamp::MIN`/`MAX`; the core uses only
//! `Timestamp::MAX` out there ("never retry"), so every comparison a store makes stays right.

use jiff::{SignedDuration, Timestamp};

/// `ts + d`, saturating at the ends of the representable range instead of panicking.
pub fn later(ts: Timestamp, d: SignedDuration) -> Timestamp {
    ts.saturating_add(d).unwrap_or(if d.is_negative() { Timestamp::MIN } else { Timestamp::MAX })
}

/// The stored form of an instant: nanoseconds since the epoch, clamped to `i64`.
pub fn to_nanos_i64(t: Timestamp) -> i64 {
    let n = t.as_nanosecond();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// The inverse of [`to_nanos_i64`]; `None` only for values no store should hold.
pub fn from_nanos_i64(n: i64) -> Option<Timestamp> {
    match n {
        i64::MAX => Some(Timestamp::MAX),
        i64::MIN => Some(Timestamp::MIN),
        n => Timestamp::from_nanosecond(i128::from(n)).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn nanos_round_trip_and_keep_order(a in i64::MIN / 2..i64::MAX / 2, b in i64::MIN / 2..i64::MAX / 2) {
            let (ta, tb) = (from_nanos_i64(a).unwrap(), from_nanos_i64(b).unwrap());
            prop_assert_eq!(to_nanos_i64(ta), a);
            prop_assert_eq!(ta < tb, a < b);
        }
    }

    #[test]
    fn the_ends_clamp() {
        assert_eq!(from_nanos_i64(to_nanos_i64(Timestamp::MAX)), Some(Timestamp::MAX));
        assert_eq!(from_nanos_i64(to_nanos_i64(Timestamp::MIN)), Some(Timestamp::MIN));
        assert_eq!(later(Timestamp::MAX, SignedDuration::from_secs(1)), Timestamp::MAX);
    }
}
