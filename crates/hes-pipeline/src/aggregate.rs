//! Per-period totals of interval consumption (UTC hours, days, months).

use std::collections::BTreeMap;

use hes_model::{Aggregate, MeterId, Period, Quality};

use crate::transform::IntervalConsumption;

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
                subject: meter.0,
                channel,
                period,
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
