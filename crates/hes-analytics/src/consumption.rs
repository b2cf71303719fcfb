//! Consumption of a group over a range of days, from its stored aggregates: the hourly load
//! curve, the peak and its hour, the load factor, the top consumers, and day-over-day and
//! week-over-week change.

use std::collections::BTreeMap;

use hes_model::Aggregate;
use serde::Serialize;

use crate::{DAY_S, HOUR_S};

/// One hour of the load curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hour {
    pub start: i64,
    /// Wh in the hour; over one hour also the mean demand in W.
    pub energy_wh: f64,
    /// Every meter's every interval was in.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Consumer {
    pub meter: String,
    pub energy_wh: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub subject: String,
    pub channel: String,
    /// First day (Unix seconds at 00:00 UTC) and the day after the last.
    pub from: i64,
    pub to: i64,
    /// The hours with a stored aggregate, oldest first (missing hours are absent, not zero).
    pub load_curve: Vec<Hour>,
    pub hours_missing: usize,
    pub energy_wh: f64,
    /// The highest hourly mean demand (W) and the start of its hour.
    pub peak_demand_w: Option<f64>,
    pub peak_at: Option<i64>,
    pub mean_demand_w: Option<f64>,
    /// Mean over peak demand, 0 to 1.
    pub load_factor: Option<f64>,
    /// The group's meters by energy in the range, largest first.
    pub top_consumers: Vec<Consumer>,
    /// Energy of the range's last day against the day before, in % (none without both).
    pub day_over_day_pct: Option<f64>,
    /// Energy of the range's last seven days against the seven before, in %.
    pub week_over_week_pct: Option<f64>,
}

fn change_pct(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    match (now, before) {
        (Some(n), Some(b)) if b > 0.0 => Some(100.0 * (n - b) / b),
        _ => None,
    }
}

/// The sum of the daily totals over `[from, to)`, when every day of it is stored.
fn days_total(days: &BTreeMap<i64, f64>, from: i64, to: i64) -> Option<f64> {
    let mut sum = 0.0;
    let mut d = from;
    while d < to {
        sum += days.get(&d)?;
        d += DAY_S;
    }
    Some(sum)
}

/// Whether `[from, to)` is a range of whole UTC days (both at 00:00, `from` first).
pub fn whole_days(from: i64, to: i64) -> bool {
    to > from && from.rem_euclid(DAY_S) == 0 && to.rem_euclid(DAY_S) == 0
}

/// The daily totals [`Inputs::days`] should cover for the range `[from, to)`: the range and
/// the two weeks before its end, for the changes.
pub fn days_range(from: i64, to: i64) -> (i64, i64) {
    (from.min(to - 14 * DAY_S), to)
}

/// What an analysis is computed from: the group's stored aggregates of one channel.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The group (`key=value`) and the channel, as they are named in the aggregates.
    pub subject: &'a str,
    pub channel: &'a str,
    /// The range, whole UTC days (see [`whole_days`]).
    pub from: i64,
    pub to: i64,
    /// The group's hourly aggregates in the range.
    pub hours: &'a [Aggregate],
    /// The group's daily aggregates over [`days_range`].
    pub days: &'a [Aggregate],
    /// The daily aggregates of the group's meters in the range.
    pub per_meter: &'a [Aggregate],
    /// How many top consumers to list.
    pub top: usize,
}

/// The analysis of one group over a range of days. Hours and days without a stored aggregate
/// are missing, never zero: a change needs both of its sides whole.
pub fn analyse(i: &Inputs<'_>) -> Analysis {
    let (from, to) = (i.from, i.to);
    let load_curve: Vec<Hour> = i
        .hours
        .iter()
        .filter(|a| a.period_start >= from && a.period_start < to)
        .map(|a| Hour {
            start: a.period_start,
            energy_wh: a.total,
            complete: a.complete,
        })
        .collect();
    let days: BTreeMap<i64, f64> = i.days.iter().map(|a| (a.period_start, a.total)).collect();
    let expected = usize::try_from((to - from) / HOUR_S).unwrap_or(0);
    let energy_wh: f64 = load_curve.iter().map(|h| h.energy_wh).sum();
    let peak = load_curve
        .iter()
        .max_by(|a, b| a.energy_wh.total_cmp(&b.energy_wh));
    let mean = (!load_curve.is_empty()).then(|| energy_wh / load_curve.len() as f64);
    let load_factor = match (mean, peak) {
        (Some(m), Some(p)) if p.energy_wh > 0.0 => Some(m / p.energy_wh),
        _ => None,
    };
    let mut by_meter: BTreeMap<&str, f64> = BTreeMap::new();
    for a in i
        .per_meter
        .iter()
        .filter(|a| a.period_start >= from && a.period_start < to)
    {
        *by_meter.entry(a.subject.as_str()).or_default() += a.total;
    }
    let mut top_consumers: Vec<Consumer> = by_meter
        .into_iter()
        .map(|(m, e)| Consumer {
            meter: m.to_string(),
            energy_wh: e,
        })
        .collect();
    top_consumers.sort_by(|a, b| {
        b.energy_wh
            .total_cmp(&a.energy_wh)
            .then_with(|| a.meter.cmp(&b.meter))
    });
    top_consumers.truncate(i.top);
    let last = to - DAY_S;
    Analysis {
        subject: i.subject.to_string(),
        channel: i.channel.to_string(),
        from,
        to,
        hours_missing: expected.saturating_sub(load_curve.len()),
        energy_wh,
        peak_demand_w: peak.map(|p| p.energy_wh),
        peak_at: peak.map(|p| p.start),
        mean_demand_w: mean,
        load_factor,
        top_consumers,
        day_over_day_pct: change_pct(days.get(&last).copied(), days.get(&(last - DAY_S)).copied()),
        week_over_week_pct: change_pct(
            days_total(&days, to - 7 * DAY_S, to),
            days_total(&days, to - 14 * DAY_S, to - 7 * DAY_S),
        ),
        load_curve,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use hes_model::{Period, Quality};

    fn agg(subject: &str, period: Period, start: i64, total: f64) -> Aggregate {
        Aggregate {
            subject: subject.into(),
            period,
            channel: "energy.active.import".into(),
            period_start: start,
            period_end: start + if period == Period::Hour { 3600 } else { DAY_S },
            total,
            count: 4,
            complete: true,
            quality_worst: Quality::default(),
        }
    }

    #[test]
    fn peak_load_factor_top_and_changes() {
        let d0 = 20_000 * DAY_S;
        let hours: Vec<Aggregate> = (0..24)
            .map(|h| {
                agg(
                    "cell=a",
                    Period::Hour,
                    d0 + h * 3600,
                    if h == 18 { 400.0 } else { 100.0 },
                )
            })
            .collect();
        let days: Vec<Aggregate> = (-13..1)
            .map(|d| {
                agg(
                    "cell=a",
                    Period::Day,
                    d0 + d * DAY_S,
                    if d == 0 { 2700.0 } else { 2000.0 },
                )
            })
            .collect();
        let meters = vec![
            agg("m1", Period::Day, d0, 700.0),
            agg("m2", Period::Day, d0, 2000.0),
        ];
        let a = analyse(&Inputs {
            subject: "cell=a",
            channel: "energy.active.import",
            from: d0,
            to: d0 + DAY_S,
            hours: &hours,
            days: &days,
            per_meter: &meters,
            top: 1,
        });
        assert_eq!(a.peak_demand_w, Some(400.0));
        assert_eq!(a.peak_at, Some(d0 + 18 * 3600));
        assert_eq!(a.energy_wh, 2700.0);
        assert!((a.load_factor.unwrap() - 112.5 / 400.0).abs() < 1e-9);
        assert_eq!(
            a.top_consumers,
            vec![Consumer {
                meter: "m2".into(),
                energy_wh: 2000.0
            }]
        );
        assert!((a.day_over_day_pct.unwrap() - 35.0).abs() < 1e-9);
        assert!((a.week_over_week_pct.unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(a.hours_missing, 0);
    }

    #[test]
    fn missing_days_give_no_change_rather_than_a_wrong_one() {
        let d0 = 20_000 * DAY_S;
        let days = [agg("g=x", Period::Day, d0, 10.0)];
        let a = analyse(&Inputs {
            subject: "g=x",
            channel: "c",
            from: d0,
            to: d0 + DAY_S,
            hours: &[],
            days: &days,
            per_meter: &[],
            top: 5,
        });
        assert_eq!(a.day_over_day_pct, None);
        assert_eq!(a.week_over_week_pct, None);
        assert_eq!(a.peak_demand_w, None);
        assert_eq!(a.load_factor, None);
        assert_eq!(a.hours_missing, 24);
    }

    #[test]
    fn ranges_are_whole_days() {
        let d0 = 20_000 * DAY_S;
        assert!(whole_days(d0, d0 + DAY_S));
        assert!(!whole_days(d0, d0));
        assert!(!whole_days(d0 + 1, d0 + DAY_S));
        assert_eq!(days_range(d0, d0 + DAY_S), (d0 - 13 * DAY_S, d0 + DAY_S));
    }
}
