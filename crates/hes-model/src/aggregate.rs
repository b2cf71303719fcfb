//! Per-period consumption totals (UTC hours, days, months), per meter or per group.

use serde::{Deserialize, Serialize};

use crate::Quality;

/// An aggregation period, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Hour,
    Day,
    Month,
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01 (proleptic Gregorian).
pub fn civil(days: i64) -> (i64, i64, i64) {
    let (y, m, d) = dlms::axdr::civil_from_days(days);
    (y, i64::from(m), i64::from(d))
}

/// Days since 1970-01-01 of a civil date (the inverse of [`civil`]). Days past the month's end
/// count on into the next month, and months outside 1..=12 carry into the year, so that any
/// input has a day count (callers check a date by the round trip through [`civil`]).
pub fn days(y: i64, m: i64, d: i64) -> i64 {
    let (y, m) = (y + (m - 1).div_euclid(12), (m - 1).rem_euclid(12) + 1);
    dlms::axdr::days_from_civil(y, u8::try_from(m).unwrap_or(1), 1) + d - 1
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Hour, Period::Day, Period::Month];

    /// The name used in storage, the API and on the bus: `hour`, `day`, `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    /// The period named by [`Period::as_str`].
    pub fn parse(s: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The next coarser period (hours roll up into days, days into months).
    pub fn coarser(self) -> Option<Period> {
        match self {
            Period::Hour => Some(Period::Day),
            Period::Day => Some(Period::Month),
            Period::Month => None,
        }
    }

    /// The start of the period holding `t` (Unix seconds).
    pub fn start(self, t: i64) -> i64 {
        match self {
            Period::Hour => t - t.rem_euclid(3600),
            Period::Day => t - t.rem_euclid(86_400),
            Period::Month => {
                let (y, m, _) = civil(t.div_euclid(86_400));
                days(y, m, 1) * 86_400
            }
        }
    }

    /// The start of the next period after the one starting at `start`.
    pub fn end(self, start: i64) -> i64 {
        match self {
            Period::Hour => start + 3600,
            Period::Day => start + 86_400,
            Period::Month => {
                let (y, m, _) = civil(start.div_euclid(86_400));
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days(y, m, 1) * 86_400
            }
        }
    }
}

/// The consumption of one channel over one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// A meter id, or a group as "key=value" (e.g. "cell=cell-3").
    pub subject: String,
    pub period: Period,
    pub channel: String,
    pub period_start: i64,
    pub period_end: i64,
    /// Wh (varh): measured and estimated intervals, plus gap spans lying wholly inside.
    pub total: f64,
    /// Single intervals (measured or estimated) in the period.
    pub count: u32,
    /// Every expected interval is present (and no unestimated gap touches the period).
    pub complete: bool,
    /// The union of the flags of everything that went in (and `MISSING_BEFORE` for a gap).
    pub quality_worst: Quality,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip_and_carry() {
        for z in [-719_468, -1, 0, 59, 20_513, 2_932_896] {
            let (y, m, d) = civil(z);
            assert_eq!(days(y, m, d), z);
        }
        assert_eq!(civil(days(2026, 2, 30)), (2026, 3, 2));
        assert_eq!(civil(days(2026, 13, 1)), (2027, 1, 1));
        assert_eq!(
            Period::Month.start(days(2024, 2, 29) * 86_400 + 5),
            days(2024, 2, 1) * 86_400
        );
    }
}
