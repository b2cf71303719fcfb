//! Per-period totals of interval consumption (UTC hours, days, months).

use std::collections::BTreeMap;

use hes_model::{Aggregate, MeterId, Period, Quality};

use crate::interval::IntervalConsumption;

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
    accumulate(intervals, period, interval)
        .into_iter()
        .map(|((meter, channel, start), p)| p.finish(&meter.0, &channel, period, start, interval))
        .collect()
}

/// What a period has gathered so far: the parts of an [`Aggregate`] that add up, so that a
/// period can be completed by later intervals (the streaming aggregator keeps one per open
/// period).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Partial {
    pub total: f64,
    pub count: u32,
    /// An unestimated gap touches the period.
    pub gap: bool,
    pub quality: Quality,
}

impl Partial {
    /// Adds what `other` gathered over the same period (from other intervals).
    pub fn merge(&mut self, other: &Partial) {
        self.total += other.total;
        self.count += other.count;
        self.gap |= other.gap;
        self.quality = self.quality.union(other.quality);
    }

    /// The aggregate of the period starting at `start`.
    pub fn finish(
        &self,
        subject: &str,
        channel: &str,
        period: Period,
        start: i64,
        interval: i64,
    ) -> Aggregate {
        let end = period.end(start);
        let expected = (end - start) / interval.max(1);
        Aggregate {
            subject: subject.to_string(),
            channel: channel.to_string(),
            period,
            period_start: start,
            period_end: end,
            total: self.total,
            count: self.count,
            complete: !self.gap && i64::from(self.count) == expected,
            quality_worst: self.quality,
        }
    }
}

/// The [`Partial`] of each (meter, channel, period start) the intervals fall in; see
/// [`aggregate_with`] for how spans and duplicates count.
pub fn accumulate(
    intervals: &[IntervalConsumption],
    period: Period,
    interval: i64,
) -> BTreeMap<(MeterId, String, i64), Partial> {
    let interval = interval.max(1);
    let mut acc: BTreeMap<(MeterId, String, i64), Partial> = BTreeMap::new();
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
                .or_default();
            if let Some(wh) = add {
                e.total += wh;
            }
            if count {
                e.count += 1;
            }
            e.gap |= gap;
            let q = if gap {
                Quality(iv.quality.0 | Quality::MISSING_BEFORE)
            } else {
                iv.quality
            };
            e.quality = e.quality.union(q);
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
    acc
}

/// Rolls finer aggregates up into `coarse` periods (hours into days, days into months), per
/// (subject, channel): totals and interval counts add up, the flags unite, and a coarse period
/// is complete when every finer period in it is present and complete. `fine` must hold every
/// stored finer aggregate of the coarse periods it touches (what is absent counts as missing).
pub fn rollup(fine: &[Aggregate], coarse: Period) -> Vec<Aggregate> {
    type Acc = (f64, u32, u32, bool, Quality, Period);
    let mut acc: BTreeMap<(String, String, i64), Acc> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for a in fine {
        if !seen.insert((&a.subject, &a.channel, a.period, a.period_start)) {
            continue;
        }
        let start = coarse.start(a.period_start);
        let e = acc
            .entry((a.subject.clone(), a.channel.clone(), start))
            .or_insert((0.0, 0, 0, true, Quality::OK, a.period));
        e.0 += a.total;
        e.1 += a.count;
        e.2 += 1;
        e.3 &= a.complete;
        e.4 = e.4.union(a.quality_worst);
        e.5 = a.period;
    }
    acc.into_iter()
        .map(
            |((subject, channel, start), (total, count, parts, complete, q, fine))| {
                let end = coarse.end(start);
                let expected = sub_periods(fine, start, end);
                Aggregate {
                    subject,
                    channel,
                    period: coarse,
                    period_start: start,
                    period_end: end,
                    total,
                    count,
                    complete: complete && parts == expected,
                    quality_worst: q,
                }
            },
        )
        .collect()
}

/// How many `fine` periods make up `[start, end)`.
fn sub_periods(fine: Period, start: i64, end: i64) -> u32 {
    let mut n = 0u32;
    let mut s = start;
    while s < end && n < 10_000 {
        n += 1;
        s = fine.end(s);
    }
    n
}

/// A group's aggregate for one (channel, period, start): the sum of its members' aggregates.
/// Complete when every one of `members` meters has a complete aggregate for it.
pub fn group_total(group: &str, members: usize, of_members: &[Aggregate]) -> Option<Aggregate> {
    let first = of_members.first()?;
    let mut total = 0.0;
    let mut count = 0u32;
    let mut complete = true;
    let mut q = Quality::OK;
    let mut subjects = std::collections::HashSet::new();
    for a in of_members {
        if !subjects.insert(&a.subject) {
            continue;
        }
        total += a.total;
        count += a.count;
        complete &= a.complete;
        q = q.union(a.quality_worst);
    }
    Some(Aggregate {
        subject: group.to_string(),
        channel: first.channel.clone(),
        period: first.period,
        period_start: first.period_start,
        period_end: first.period_end,
        total,
        count,
        complete: complete && subjects.len() == members,
        quality_worst: q,
    })
}
