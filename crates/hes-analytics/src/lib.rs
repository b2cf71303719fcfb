//! Analytics over series of stored aggregates, as pure functions (no I/O; the API reads the
//! store and hands the aggregates in): consumption analysis of a group over days
//! ([`consumption`]) and day-ahead forecasts of a group's or a meter's hourly energy
//! ([`forecast`]), backtested against the seasonal-naive baseline.

pub mod capacity;
pub mod consumption;
pub mod forecast;

use hes_model::Aggregate;
use serde::Serialize;

pub use consumption::{analyse, Analysis, Consumer, Hour, Inputs};
pub use forecast::{Backtest, ForecastError};

/// Seconds in an hour and in a day.
pub const HOUR_S: i64 = 3600;
pub const DAY_S: i64 = 86_400;
/// The channel forecasts and analyses use unless told otherwise (A+, active energy imported).
pub const DEFAULT_CHANNEL: &str = "energy.active.import";

/// Hourly aggregates as a series over `[from, to)` (whole hours, `from` on an hour), `NaN` for
/// hours without one. Aggregates outside the range are ignored.
pub fn hourly(aggregates: &[Aggregate], from: i64, to: i64) -> Vec<f64> {
    let n = usize::try_from((to - from).max(0) / HOUR_S).unwrap_or(0);
    let mut out = vec![f64::NAN; n];
    for a in aggregates {
        if a.period_start < from {
            continue;
        }
        let i = usize::try_from((a.period_start - from) / HOUR_S).unwrap_or(usize::MAX);
        if let Some(v) = out.get_mut(i) {
            *v = a.total;
        }
    }
    out
}

/// A day-ahead forecast and how the same model did on the history's last days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayAhead {
    /// The forecast day (Unix seconds, 00:00 UTC).
    pub day: i64,
    /// Wh per hour of `day`, 24 values.
    pub hourly_wh: Vec<f64>,
    pub energy_wh: f64,
    /// Hours of history with a stored value the model was fitted on.
    pub history_hours: usize,
    /// `mstl`, or `seasonal_naive` when the baseline did better in the backtest (with less
    /// than two weeks of history MSTL has no weekly season and may lose to it).
    pub model: &'static str,
    /// The backtest over the history's last days (none with too little history for it).
    pub backtest: Option<Backtest>,
}

/// Days the served forecast is backtested on (when the history allows).
pub const SERVED_BACKTEST_DAYS: usize = 7;

/// The range of hours [`day_ahead`] wants as history for a forecast made at `now`: at most
/// [`forecast::MAX_HISTORY`] hours up to `now`'s last whole hour.
pub fn history_range(now: i64) -> (i64, i64) {
    let end = now - now.rem_euclid(HOUR_S);
    (end - forecast::MAX_HISTORY as i64 * HOUR_S, end)
}

/// The forecast of the UTC day after `now`'s from `history`, the hourly series starting at
/// `from` (see [`history_range`] and [`hourly`]). The newest hours may not be aggregated yet:
/// the forecast starts after the last stored one and runs to the end of the forecast day.
pub fn day_ahead(history: &[f64], from: i64, now: i64) -> Result<DayAhead, ForecastError> {
    let day = now - now.rem_euclid(DAY_S) + DAY_S;
    let mut history = history.to_vec();
    while history.last().is_some_and(|v| !v.is_finite()) {
        history.pop();
    }
    let last_end = from + history.len() as i64 * HOUR_S;
    let ahead = usize::try_from((day + DAY_S - last_end) / HOUR_S).unwrap_or(0);
    if ahead > forecast::MAX_HORIZON && !history.is_empty() {
        return Err(ForecastError::Stale {
            hours: ahead,
            max: forecast::MAX_HORIZON,
        });
    }
    let backtest = forecast::backtest(&history, SERVED_BACKTEST_DAYS).ok();
    let naive = backtest.is_some_and(|b| b.baseline_mape < b.mape);
    let points = if naive {
        forecast::seasonal_naive(&history, ahead)?
    } else {
        forecast::forecast(&history, ahead)?
    };
    let hourly_wh: Vec<f64> = points
        .get(ahead.saturating_sub(forecast::DAY)..)
        .unwrap_or_default()
        .to_vec();
    Ok(DayAhead {
        day,
        energy_wh: hourly_wh.iter().sum(),
        hourly_wh,
        history_hours: history.iter().filter(|v| v.is_finite()).count(),
        model: if naive { "seasonal_naive" } else { "mstl" },
        backtest,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use hes_model::{Period, Quality};

    const D0: i64 = 20_400 * DAY_S;

    fn load(h: i64) -> f64 {
        1000.0 + 400.0 * ((h % 24) as f64 / 24.0 * std::f64::consts::TAU).sin()
    }

    fn hour(start: i64, total: f64) -> Aggregate {
        Aggregate {
            subject: "cell=a".into(),
            period: Period::Hour,
            channel: DEFAULT_CHANNEL.into(),
            period_start: start,
            period_end: start + HOUR_S,
            total,
            count: 4,
            complete: true,
            quality_worst: Quality::default(),
        }
    }

    #[test]
    fn hourly_places_aggregates_and_leaves_gaps() {
        let aggs = [
            hour(D0 - HOUR_S, 9.0),
            hour(D0, 1.0),
            hour(D0 + 2 * HOUR_S, 3.0),
        ];
        let s = hourly(&aggs, D0, D0 + 3 * HOUR_S);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], 1.0);
        assert!(s[1].is_nan());
        assert_eq!(s[2], 3.0);
    }

    #[test]
    fn day_ahead_from_three_weeks_with_the_last_hours_not_yet_aggregated() {
        let now = D0 + 21 * DAY_S + 600;
        let (from, to) = history_range(now);
        let aggs: Vec<Aggregate> = (0..21 * 24 - 3)
            .map(|h| hour(D0 + h * HOUR_S, load(h)))
            .collect();
        let f = day_ahead(&hourly(&aggs, from, to), from, now).unwrap();
        assert_eq!(f.day, D0 + 22 * DAY_S);
        assert_eq!(f.hourly_wh.len(), 24);
        let want: Vec<f64> = (0..24).map(load).collect();
        let err = forecast::mape(&want, &f.hourly_wh).unwrap();
        assert!(err < 2.0, "{err} {f:?}");
        assert!(f.backtest.is_some());
        assert_eq!(f.history_hours, 21 * 24 - 3);
    }

    #[test]
    fn day_ahead_refuses_no_history_and_stale_history() {
        let now = D0 + 21 * DAY_S + 600;
        let (from, to) = history_range(now);
        assert!(matches!(
            day_ahead(&hourly(&[], from, to), from, now),
            Err(ForecastError::TooLittleHistory { have: 0, .. })
        ));
        // Two weeks stored, ending five days ago.
        let aggs: Vec<Aggregate> = (0..14 * 24)
            .map(|h| hour(D0 + h * HOUR_S, load(h)))
            .collect();
        assert!(matches!(
            day_ahead(&hourly(&aggs, from, to), from, now),
            Err(ForecastError::Stale { .. })
        ));
    }
}
