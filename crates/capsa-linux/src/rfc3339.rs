//! RFC 3339 timestamps in UTC, without a date/time crate.
//!
//! Callers parse these with Go's `time.Time` (containerd's log reader, CRI-O's state decoder), so
//! the output must be strict RFC 3339: `YYYY-MM-DDTHH:MM:SS[.nnnnnnnnn]Z`.

use std::time::{SystemTime, UNIX_EPOCH};

const SECS_PER_DAY: i64 = 86_400;

/// Formats `t` as RFC 3339 in UTC. With `nanos`, a 9-digit fractional second is included
/// (Go's `time.RFC3339` parser accepts any number of fraction digits).
pub fn format_utc(t: SystemTime, nanos: bool) -> String {
    let (secs, subsec) = unix_parts(t);
    let days = secs.div_euclid(SECS_PER_DAY);
    let secs_of_day = secs.rem_euclid(SECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60,
    );
    if nanos {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{subsec:09}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
    }
}

/// Splits `t` into whole seconds since the epoch (floored, so negative before 1970) and the
/// nanoseconds within that second.
fn unix_parts(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

/// Converts days since 1970-01-01 into a proleptic Gregorian (year, month, day).
///
/// Howard Hinnant's `civil_from_days`: shift the year to start on March 1 so the leap day is the
/// last day of the year, split into 400-year eras (146 097 days each), then find the year of the
/// era and the day of that year, and map the day back to a month with a linear formula.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    // [0, 146096]
    let day_of_era = z.rem_euclid(146_097);
    // [0, 399]; the divisions undo the leap days of 4-, 100- and 400-year cycles.
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    // [0, 365], counted from March 1.
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11], 0 = March
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // [1, 31]
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both values are range-limited by the arithmetic above, so the casts cannot truncate.
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn epoch() {
        assert_eq!(format_utc(UNIX_EPOCH, false), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_utc(UNIX_EPOCH, true),
            "1970-01-01T00:00:00.000000000Z"
        );
    }

    #[test]
    fn leap_days() {
        assert_eq!(
            format_utc(at(951_782_400, 0), false),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            format_utc(at(951_868_799, 0), false),
            "2000-02-29T23:59:59Z"
        );
        assert_eq!(
            format_utc(at(951_868_800, 0), false),
            "2000-03-01T00:00:00Z"
        );
        assert_eq!(
            format_utc(at(1_709_164_800, 0), false),
            "2024-02-29T00:00:00Z"
        );
        // 2100 is not a leap year.
        assert_eq!(
            format_utc(at(4_107_456_000, 0), false),
            "2100-02-28T00:00:00Z"
        );
        assert_eq!(
            format_utc(at(4_107_542_400, 0), false),
            "2100-03-01T00:00:00Z"
        );
    }

    #[test]
    fn end_of_year() {
        assert_eq!(
            format_utc(at(1_735_689_599, 0), false),
            "2024-12-31T23:59:59Z"
        );
        assert_eq!(
            format_utc(at(1_735_689_600, 0), false),
            "2025-01-01T00:00:00Z"
        );
    }

    #[test]
    fn nanoseconds() {
        assert_eq!(
            format_utc(at(1_704_164_645, 123_456_789), true),
            "2024-01-02T03:04:05.123456789Z"
        );
        assert_eq!(
            format_utc(at(1_704_164_645, 5), true),
            "2024-01-02T03:04:05.000000005Z"
        );
        assert_eq!(
            format_utc(at(1_704_164_645, 999_999_999), false),
            "2024-01-02T03:04:05Z"
        );
    }

    #[test]
    fn before_epoch() {
        let t = UNIX_EPOCH - Duration::new(1, 500_000_000);
        assert_eq!(format_utc(t, true), "1969-12-31T23:59:58.500000000Z");
        let t = UNIX_EPOCH - Duration::from_secs(86_400 * 365);
        assert_eq!(format_utc(t, false), "1969-01-01T00:00:00Z");
    }
}
