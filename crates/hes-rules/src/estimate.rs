//! Estimation: filling gaps between two measured cumulative entries.

use crate::interval::IntervalConsumption;
use hes_model::Quality;

/// [`estimate_gaps_with`] for 900 s intervals.
pub fn estimate_gaps(intervals: &[IntervalConsumption]) -> Vec<IntervalConsumption> {
    estimate_gaps_with(intervals, 900)
}

/// Replaces every span of `n` > 1 whole intervals (a gap between two measured entries) by `n`
/// intervals sharing its energy linearly (equally), flagged `ESTIMATED` (and no longer
/// `MISSING_BEFORE`), the span's other flags kept. Energy is integer (raw register units):
/// each gets `value / n` and the first `value % n` one more, so they sum to the register
/// difference exactly. Single intervals pass through; spans that are not a whole number of
/// intervals are left as they are. Order is kept.
pub fn estimate_gaps_with(
    intervals: &[IntervalConsumption],
    interval: i64,
) -> Vec<IntervalConsumption> {
    let interval = interval.max(1);
    let mut out = Vec::with_capacity(intervals.len());
    for iv in intervals {
        let seconds = iv.seconds();
        if seconds <= interval || seconds % interval != 0 {
            out.push(iv.clone());
            continue;
        }
        let n = seconds / interval;
        let base = iv.value.div_euclid(n);
        let rem = iv.value.rem_euclid(n);
        let q = Quality((iv.quality.0 & !Quality::MISSING_BEFORE) | Quality::ESTIMATED);
        for k in 0..n {
            out.push(IntervalConsumption {
                start: iv.start + k * interval,
                end: iv.start + (k + 1) * interval,
                value: base + i64::from(k < rem),
                quality: q,
                ..iv.clone()
            });
        }
    }
    out
}
