//! UTC calendar dates of Unix times, within the years 1..=9999 that Hive paths, Parquet
//! timestamps and the usual readers (DuckDB, Spark) all hold.

use std::fmt;

use hes_model::aggregate::{civil, days};

/// 0001-01-01T00:00:00Z.
pub const MIN_TIME: i64 = -62_135_596_800;
/// 9999-12-31T23:59:59Z.
pub const MAX_TIME: i64 = 253_402_300_799;

const DAY: i64 = 86_400;

/// A UTC calendar day, as days since 1970-01-01, known to lie within [`MIN_TIME`, `MAX_TIME`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i64);

impl Date {
    /// The day holding `t` (Unix seconds), or `None` outside the years 1..=9999.
    pub fn of_time(t: i64) -> Option<Date> {
        (MIN_TIME..=MAX_TIME)
            .contains(&t)
            .then(|| Date(t.div_euclid(DAY)))
    }

    /// The day's first second.
    pub fn start(self) -> i64 {
        self.0 * DAY
    }

    /// The day's last second.
    pub fn last_second(self) -> i64 {
        self.0 * DAY + DAY - 1
    }

    /// Parses `YYYY-MM-DD` (as in a `date=` directory); `None` for anything else.
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let date = Date(days(y, m, d));
        // Round trip rejects 2026-02-30 and the like.
        (y >= 1 && (1..=12).contains(&m) && civil(date.0) == (y, m, d)).then_some(date)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil(self.0);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_times_at_the_edges() {
        let show = |t| Date::of_time(t).map(|d| d.to_string());
        assert_eq!(show(0).as_deref(), Some("1970-01-01"));
        assert_eq!(show(-1).as_deref(), Some("1969-12-31"));
        assert_eq!(show(1_795_824_000).as_deref(), Some("2026-11-28"));
        assert_eq!(show(951_782_400).as_deref(), Some("2000-02-29"));
        assert_eq!(show(MIN_TIME).as_deref(), Some("0001-01-01"));
        assert_eq!(show(MAX_TIME).as_deref(), Some("9999-12-31"));
        assert_eq!(show(MIN_TIME - 1), None);
        assert_eq!(show(MAX_TIME + 1), None);
        assert_eq!(show(i64::MIN), None);
        assert_eq!(show(i64::MAX), None);
    }

    #[test]
    fn parse_round_trips_and_rejects_non_dates() {
        for t in [MIN_TIME, -1, 0, 951_782_400, 1_795_824_000, MAX_TIME] {
            let d = Date::of_time(t).unwrap();
            assert_eq!(Date::parse(&d.to_string()), Some(d));
            assert!(d.start() <= t && t <= d.last_second());
        }
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "0000-01-01",
            "2026-1-01",
            "2026-01-01x",
            "+026-01-01",
            "",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
    }
}
