//! Per-period totals of interval consumption (UTC hours, days, months).

use std::collections::BTreeMap;

use hes_model::MeterId;
use serde::{Deserialize, Serialize};

use crate::transform::IntervalConsumption;
use crate::validate::Quality;

/// An aggregation period, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Hour,
    Day,
    Month,
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, i64, i64) {
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

/// Days since 1970-01-01 of a civil date.
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Period {
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
    pub meter: MeterId,
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

/// [`aggregate_with`] for 900 s intervals.
pub fn aggregate(intervals: &[IntervalConsumption], period: Period) -> Vec<Aggregate> {
    aggregate_with(intervals, period, 900)
}

/// Per (meter, channel, period) totals. An interval belongs to the period holding its start
/// (the interval ending at midnight is the previous day's). A span longer than `interval` (a
/// gap not yet estimated) adds its energy when it lies wholly inside one period but counts no
/// interval; one crossing periods is not attributed; either way the periods it touches are
/// incomplete. Duplicated entries (same meter, channel, start, end) count once. A pure function
/// of the set: recompute with late data to update.
pub fn aggregate_with(
    intervals: &[IntervalConsumption],
    period: Period,
    interval: i64,
) -> Vec<Aggregate> {
    let interval = interval.max(1);
    type Acc = (f64, u32, bool, Quality);
    let mut acc: BTreeMap<(MeterId, String, i64), Acc> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for iv in intervals {
        if !seen.insert((&iv.meter, &iv.channel, iv.start, iv.end)) {
            continue;
        }
        let p = period.start(iv.start);
        let whole = period.start(iv.end - 1) == p;
        let single = iv.seconds() == interval;
        let mut touch = |p: i64, add: Option<f64>, count: bool, gap: bool| {
            let e = acc
                .entry((iv.meter.clone(), iv.channel.clone(), p))
                .or_insert((0.0, 0, false, Quality::OK));
            if let Some(wh) = add {
                e.0 += wh;
            }
            if count {
                e.1 += 1;
            }
            e.2 |= gap;
            let q = if gap {
                Quality(iv.quality.0 | Quality::MISSING_BEFORE)
            } else {
                iv.quality
            };
            e.3 = e.3.union(q);
        };
        if single {
            touch(p, Some(iv.wh()), true, false);
        } else if whole {
            touch(p, Some(iv.wh()), false, true);
        } else {
            // Touch every period the span crosses, attributing nothing.
            let mut s = p;
            while s < iv.end {
                touch(s, None, false, true);
                s = period.end(s);
            }
        }
    }
    acc.into_iter()
        .map(|((meter, channel, start), (total, count, gap, q))| {
            let end = period.end(start);
            let expected = (end - start) / interval;
            Aggregate {
                meter,
                channel,
                period_start: start,
                period_end: end,
                total,
                count,
                complete: !gap && i64::from(count) == expected,
                quality_worst: q,
            }
        })
        .collect()
}
