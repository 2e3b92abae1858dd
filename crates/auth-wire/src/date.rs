//! The API date type: an instant shown in the portal's time zone, written `yyyy-MM-ddTHH:mm:ss.fffffff` + zone.
//!
//! The calendar arithmetic is done here (proleptic Gregorian, Howard Hinnant's day-count algorithms) so that
//! clients do not need a date library; conversions to jiff exist behind the `jiff` feature.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from 0001-01-01T00:00:00 to the Unix epoch; the smallest local time we can write.
const MIN_LOCAL_SECONDS: i64 = -62_135_596_800;
/// Seconds from the Unix epoch to 9999-12-31T23:59:59; the largest local time we can write.
const MAX_LOCAL_SECONDS: i64 = 253_402_300_799;
/// Offsets are limited to what `±hh:mm` can express sensibly (real zones stay within ±14:00).
const MAX_OFFSET_SECONDS: i32 = 23 * 3600 + 59 * 60;

/// A date as the API writes it: an instant (100 ns precision) plus the UTC offset it is shown in.
///
/// Two values are equal only when both the instant and the offset are equal, because the offset is part of
/// the text on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiDate {
    unix_seconds: i64,
    nanos: u32,
    offset_seconds: i32,
}

/// Why an [`ApiDate`] could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DateError {
    /// The nanoseconds were not below one second.
    #[error("nanoseconds must be below 1 000 000 000")]
    Nanos,
    /// The offset was more than 23:59 away from UTC.
    #[error("UTC offset out of range (at most ±23:59)")]
    Offset,
    /// The local time falls outside the years 0001–9999.
    #[error("date out of range (years 0001 to 9999)")]
    Range,
    /// The text is not a date in the API format.
    #[error("invalid date time format: {0}")]
    Format(String),
}

impl ApiDate {
    /// The "no date" value upstream prints as `0001-01-01T00:00:00.0000000Z`.
    pub const MIN: ApiDate =
        ApiDate { unix_seconds: MIN_LOCAL_SECONDS, nanos: 0, offset_seconds: 0 };

    /// Builds a date from an instant and the offset to show it in.
    ///
    /// The nanoseconds are truncated to 100 ns ticks and the offset to whole minutes (toward zero), because
    /// the text format cannot carry more.
    ///
    /// # Errors
    /// [`DateError::Nanos`] for `nanos >= 1e9`, [`DateError::Offset`] beyond ±23:59, and [`DateError::Range`]
    /// when the local time is outside the years 0001–9999.
    pub fn new(unix_seconds: i64, nanos: u32, offset_seconds: i32) -> Result<ApiDate, DateError> {
        if nanos >= 1_000_000_000 {
            return Err(DateError::Nanos);
        }
        let offset_seconds = offset_seconds / 60 * 60;
        if offset_seconds.abs() > MAX_OFFSET_SECONDS {
            return Err(DateError::Offset);
        }
        let local = unix_seconds.checked_add(i64::from(offset_seconds)).ok_or(DateError::Range)?;
        if !(MIN_LOCAL_SECONDS..=MAX_LOCAL_SECONDS).contains(&local) {
            return Err(DateError::Range);
        }
        Ok(ApiDate { unix_seconds, nanos: nanos / 100 * 100, offset_seconds })
    }

    /// Builds a UTC date (written with the `Z` suffix).
    ///
    /// # Errors
    /// As [`ApiDate::new`].
    pub fn utc(unix_seconds: i64, nanos: u32) -> Result<ApiDate, DateError> {
        ApiDate::new(unix_seconds, nanos, 0)
    }

    /// Builds a date from a [`SystemTime`] and the offset to show it in.
    ///
    /// # Errors
    /// As [`ApiDate::new`].
    pub fn from_system_time(time: SystemTime, offset_seconds: i32) -> Result<ApiDate, DateError> {
        let (secs, nanos) = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => (
                i64::try_from(after.as_secs()).map_err(|_| DateError::Range)?,
                after.subsec_nanos(),
            ),
            Err(before) => {
                // Before the epoch the duration counts backwards, so borrow one second for the fraction.
                let d = before.duration();
                let secs = i64::try_from(d.as_secs()).map_err(|_| DateError::Range)?;
                if d.subsec_nanos() == 0 {
                    (-secs, 0)
                } else {
                    (-secs - 1, 1_000_000_000 - d.subsec_nanos())
                }
            }
        };
        ApiDate::new(secs, nanos, offset_seconds)
    }

    /// The instant as a [`SystemTime`].
    pub fn to_system_time(&self) -> SystemTime {
        let fraction = Duration::from_nanos(u64::from(self.nanos));
        if self.unix_seconds >= 0 {
            UNIX_EPOCH + Duration::from_secs(self.unix_seconds.unsigned_abs()) + fraction
        } else {
            UNIX_EPOCH - Duration::from_secs(self.unix_seconds.unsigned_abs()) + fraction
        }
    }

    /// Seconds since the Unix epoch (the instant, independent of the offset).
    pub fn unix_seconds(&self) -> i64 {
        self.unix_seconds
    }

    /// Nanoseconds within the second, always a multiple of 100.
    pub fn nanos(&self) -> u32 {
        self.nanos
    }

    /// The UTC offset the date is shown in, in seconds (a whole number of minutes).
    pub fn offset_seconds(&self) -> i32 {
        self.offset_seconds
    }

    /// The same instant shown in another offset.
    ///
    /// # Errors
    /// As [`ApiDate::new`].
    pub fn with_offset(&self, offset_seconds: i32) -> Result<ApiDate, DateError> {
        ApiDate::new(self.unix_seconds, self.nanos, offset_seconds)
    }

    /// Writes the wire text into `out`; this is what `Display` and the encoders use.
    pub fn write_to(&self, out: &mut String) {
        // The constructor guarantees the local time is in range, so the arithmetic below cannot overflow.
        let local = self.unix_seconds + i64::from(self.offset_seconds);
        let days = local.div_euclid(86_400);
        let secs_of_day = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        push_num(out, year, 4);
        out.push('-');
        push_num(out, i64::from(month), 2);
        out.push('-');
        push_num(out, i64::from(day), 2);
        out.push('T');
        push_num(out, secs_of_day / 3600, 2);
        out.push(':');
        push_num(out, secs_of_day / 60 % 60, 2);
        out.push(':');
        push_num(out, secs_of_day % 60, 2);
        out.push('.');
        push_num(out, i64::from(self.nanos / 100), 7);
        if self.offset_seconds == 0 {
            out.push('Z');
        } else {
            out.push(if self.offset_seconds < 0 { '-' } else { '+' });
            let minutes = i64::from(self.offset_seconds.unsigned_abs() / 60);
            push_num(out, minutes / 60, 2);
            out.push(':');
            push_num(out, minutes % 60, 2);
        }
    }

    /// Parses the wire text.
    ///
    /// Accepted: `yyyy-MM-ddTHH:mm:ss`, optionally `.` and 1–7 fraction digits, then `Z`/`z` or `±hh:mm`.
    /// A space is accepted instead of `T` (DocSpace writes dates that way in its samples).
    ///
    /// # Errors
    /// [`DateError::Format`] for text in another shape, [`DateError::Range`]/[`DateError::Offset`] for values
    /// out of range.
    pub fn parse(text: &str) -> Result<ApiDate, DateError> {
        let bad = || DateError::Format(text.chars().take(64).collect());
        let mut cur = Cursor { bytes: text.as_bytes(), pos: 0 };
        let year = cur.digits(4).ok_or_else(bad)?;
        cur.expect(b'-').ok_or_else(bad)?;
        let month = cur.digits(2).ok_or_else(bad)?;
        cur.expect(b'-').ok_or_else(bad)?;
        let day = cur.digits(2).ok_or_else(bad)?;
        if cur.expect(b'T').or_else(|| cur.expect(b't')).or_else(|| cur.expect(b' ')).is_none() {
            return Err(bad());
        }
        let hour = cur.digits(2).ok_or_else(bad)?;
        cur.expect(b':').ok_or_else(bad)?;
        let minute = cur.digits(2).ok_or_else(bad)?;
        cur.expect(b':').ok_or_else(bad)?;
        let second = cur.digits(2).ok_or_else(bad)?;
        let mut ticks = 0i64;
        if cur.expect(b'.').is_some() {
            let mut count = 0;
            while let Some(d) = cur.digits(1) {
                count += 1;
                if count > 7 {
                    return Err(bad());
                }
                ticks = ticks * 10 + d;
            }
            if count == 0 {
                return Err(bad());
            }
            ticks *= 10i64.pow(7 - count);
        }
        let offset = match cur.next().ok_or_else(bad)? {
            b'Z' | b'z' => 0,
            sign @ (b'+' | b'-') => {
                let hh = cur.digits(2).ok_or_else(bad)?;
                cur.expect(b':').ok_or_else(bad)?;
                let mm = cur.digits(2).ok_or_else(bad)?;
                if mm > 59 {
                    return Err(bad());
                }
                let abs = hh * 3600 + mm * 60;
                if sign == b'-' { -abs } else { abs }
            }
            _ => return Err(bad()),
        };
        if cur.pos != cur.bytes.len() {
            return Err(bad());
        }
        if year < 1
            || !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(DateError::Range);
        }
        let offset = i32::try_from(offset).map_err(|_| DateError::Offset)?;
        let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
        let nanos = u32::try_from(ticks * 100).map_err(|_| bad())?;
        ApiDate::new(local - i64::from(offset), nanos, offset)
    }
}

impl fmt::Display for ApiDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(33);
        self.write_to(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for ApiDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiDate({self})")
    }
}

impl std::str::FromStr for ApiDate {
    type Err = DateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiDate::parse(s)
    }
}

#[cfg(feature = "jiff")]
impl ApiDate {
    /// Builds a date from a jiff timestamp and an offset.
    ///
    /// # Errors
    /// As [`ApiDate::new`].
    pub fn from_timestamp(
        ts: jiff::Timestamp,
        offset: jiff::tz::Offset,
    ) -> Result<ApiDate, DateError> {
        let nanos = u32::try_from(ts.subsec_nanosecond()).unwrap_or(0);
        // jiff keeps a negative fraction for instants before the epoch; fold it into the seconds.
        let (secs, nanos) = if ts.subsec_nanosecond() < 0 {
            (ts.as_second() - 1, u32::try_from(1_000_000_000 + ts.subsec_nanosecond()).unwrap_or(0))
        } else {
            (ts.as_second(), nanos)
        };
        ApiDate::new(secs, nanos, offset.seconds())
    }

    /// Builds a date from a zoned jiff value, using the zone's offset at that instant.
    ///
    /// # Errors
    /// As [`ApiDate::new`].
    pub fn from_zoned(zoned: &jiff::Zoned) -> Result<ApiDate, DateError> {
        ApiDate::from_timestamp(zoned.timestamp(), zoned.offset())
    }

    /// The instant as a jiff timestamp.
    ///
    /// # Errors
    /// [`DateError::Range`] if jiff cannot represent the instant (it covers years -9999 to 9999, so this does
    /// not happen for values built by this crate).
    pub fn to_timestamp(&self) -> Result<jiff::Timestamp, DateError> {
        let nanos = i32::try_from(self.nanos).map_err(|_| DateError::Range)?;
        jiff::Timestamp::new(self.unix_seconds, nanos).map_err(|_| DateError::Range)
    }
}

/// A tiny byte cursor for the parser; it never indexes out of bounds.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn next(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        if self.bytes.get(self.pos) == Some(&want) {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    /// Reads exactly `n` ASCII digits as a number, consuming nothing on failure.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let slice = self.bytes.get(self.pos..self.pos + n)?;
        let mut value = 0i64;
        for &b in slice {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(b - b'0');
        }
        self.pos += n;
        Some(value)
    }
}

fn push_num(out: &mut String, value: i64, width: usize) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, "{value:0width$}");
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both values are small by construction (1–31 and 1–12).
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_upstream_examples() {
        let utc = ApiDate::new(1_768_031_184, 420_689_700, 0).unwrap();
        assert_eq!(utc.to_string(), "2026-01-10T07:46:24.4206897Z");
        assert_eq!(
            utc.with_offset(3 * 3600).unwrap().to_string(),
            "2026-01-10T10:46:24.4206897+03:00"
        );
        assert_eq!(
            utc.with_offset(-5 * 3600).unwrap().to_string(),
            "2026-01-10T02:46:24.4206897-05:00"
        );
        assert_eq!(ApiDate::MIN.to_string(), "0001-01-01T00:00:00.0000000Z");
    }

    #[test]
    fn truncates_to_ticks_and_minutes() {
        let d = ApiDate::new(0, 123_456_789, 5 * 3600 + 30 * 60 + 17).unwrap();
        assert_eq!(d.nanos(), 123_456_700);
        assert_eq!(d.offset_seconds(), 5 * 3600 + 30 * 60);
        assert_eq!(d.to_string(), "1970-01-01T05:30:00.1234567+05:30");
    }

    #[test]
    fn parses_variants() {
        let d = ApiDate::parse("2026-01-10T10:46:24.42+03:00").unwrap();
        assert_eq!(d.unix_seconds(), 1_768_031_184);
        assert_eq!(d.nanos(), 420_000_000);
        assert_eq!(ApiDate::parse("2026-01-10T07:46:24Z").unwrap().unix_seconds(), 1_768_031_184);
        assert_eq!(ApiDate::parse("2024-01-15 10:30:00+00:00").unwrap().offset_seconds(), 0);
        for bad in [
            "",
            "2026-01-10",
            "2026-01-10T07:46:24",
            "2026-01-10T07:46:24.Z",
            "2026-01-10T07:46:24.12345678Z",
        ] {
            assert!(matches!(ApiDate::parse(bad), Err(DateError::Format(_))), "{bad}");
        }
        assert_eq!(ApiDate::parse("2026-02-30T00:00:00Z"), Err(DateError::Range));
        assert_eq!(ApiDate::parse("0000-01-01T00:00:00Z"), Err(DateError::Range));
    }

    #[test]
    fn rejects_out_of_range() {
        assert_eq!(ApiDate::new(MIN_LOCAL_SECONDS, 0, -60), Err(DateError::Range));
        assert_eq!(ApiDate::new(0, 1_000_000_000, 0), Err(DateError::Nanos));
        assert_eq!(ApiDate::new(0, 0, 24 * 3600), Err(DateError::Offset));
        assert_eq!(ApiDate::new(i64::MAX, 0, 60), Err(DateError::Range));
    }

    #[test]
    fn system_time_round_trip() {
        let d = ApiDate::new(-5, 500, 0).unwrap();
        assert_eq!(ApiDate::from_system_time(d.to_system_time(), 0).unwrap(), d);
    }

    #[cfg(feature = "jiff")]
    #[test]
    fn jiff_conversions() {
        let ts: jiff::Timestamp = "1969-12-31T23:59:59.5Z".parse().unwrap();
        let d = ApiDate::from_timestamp(ts, jiff::tz::Offset::constant(3)).unwrap();
        assert_eq!(d.to_string(), "1970-01-01T02:59:59.5000000+03:00");
        assert_eq!(d.to_timestamp().unwrap(), ts);
    }
}
