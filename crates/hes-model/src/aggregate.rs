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

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01 (proleptic Gregorian;
/// Howard Hinnant's algorithm).
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a civil date (the inverse of [`civil`]).
pub fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
