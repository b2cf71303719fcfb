//! Storage capacity: how fast the stored data grows and the day the disk fills at that rate.

use serde::Serialize;

use crate::DAY_S;

/// The growth of stored data and when it fills the space left.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Capacity {
    /// Bytes per day, the least-squares slope over the samples.
    pub growth_bytes_per_day: f64,
    /// Days until the free space is used at that rate (none when the data does not grow).
    pub days_left: Option<f64>,
    /// The UTC day (00:00, Unix seconds) the disk fills, after the newest sample.
    pub full_on: Option<i64>,
}

/// The growth from `samples` of (time, bytes used), at least two at distinct times, and when
/// `free_bytes` more are used at that rate from the newest sample on. `None` with too few
/// samples to tell a rate.
pub fn capacity(samples: &[(i64, f64)], free_bytes: f64) -> Option<Capacity> {
    let n = samples.len() as f64;
    let first = samples.first()?.0;
    let last = samples.iter().map(|s| s.0).max()?;
    if last == first {
        return None;
    }
    // In days from the first sample, to keep the sums small.
    let xs = || {
        samples
            .iter()
            .map(|&(t, _)| (t - first) as f64 / DAY_S as f64)
    };
    let mx = xs().sum::<f64>() / n;
    let my = samples.iter().map(|s| s.1).sum::<f64>() / n;
    let sxx: f64 = xs().map(|x| (x - mx) * (x - mx)).sum();
    let sxy: f64 = xs()
        .zip(samples.iter().map(|s| s.1))
        .map(|(x, y)| (x - mx) * (y - my))
        .sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let days_left = (slope > 0.0).then(|| free_bytes.max(0.0) / slope);
    let full_on = days_left.map(|d| {
        let t = last + (d * DAY_S as f64) as i64;
        t - t.rem_euclid(DAY_S)
    });
    Some(Capacity {
        growth_bytes_per_day: slope,
        days_left,
        full_on,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const D0: i64 = 20_400 * DAY_S;

    #[test]
    fn a_steady_growth_fills_the_disk_on_its_day() {
        // 1 GB a day for ten days, 25 GB free: full 25 days after the last sample.
        let s: Vec<(i64, f64)> = (0..10).map(|d| (D0 + d * DAY_S, 1e9 * d as f64)).collect();
        let c = capacity(&s, 25e9).unwrap();
        assert!((c.growth_bytes_per_day - 1e9).abs() < 1.0);
        assert!((c.days_left.unwrap() - 25.0).abs() < 1e-9);
        assert_eq!(c.full_on, Some(D0 + 34 * DAY_S));
    }

    #[test]
    fn no_growth_never_fills_and_one_sample_tells_nothing() {
        let s = [(D0, 5e9), (D0 + DAY_S, 5e9), (D0 + 2 * DAY_S, 4e9)];
        let c = capacity(&s, 1e9).unwrap();
        assert!(c.growth_bytes_per_day < 0.0);
        assert_eq!(c.days_left, None);
        assert_eq!(c.full_on, None);
        assert_eq!(capacity(&[(D0, 1.0)], 1e9), None);
        assert_eq!(capacity(&[(D0, 1.0), (D0, 2.0)], 1e9), None);
        assert_eq!(capacity(&[], 1e9), None);
    }
}
