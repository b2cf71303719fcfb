//! Day-ahead forecasts of hourly energy: MSTL (augurs) with daily and weekly seasons and a
//! recent-level trend, and the seasonal-naive baseline it has to beat.

use std::borrow::Cow;

use augurs_core::{Fit, Forecast, Predict};
use augurs_mstl::{FittedTrendModel, MSTLModel, TrendModel};

/// Hours in a day and in a week: the two seasons of electricity use.
pub const DAY: usize = 24;
pub const WEEK: usize = 168;
/// The least history a forecast is made from: three days. MSTL needs two whole cycles of a
/// season to estimate it, the third day is what the level is judged on.
pub const MIN_HISTORY: usize = 3 * DAY;
/// The weekly season is used from two weeks of history on (two cycles), as the baseline's
/// "same hour last week".
pub const WEEKLY_FROM: usize = 2 * WEEK;
/// At most this much history is fitted: eight weeks follow the seasons' drift, more only costs.
pub const MAX_HISTORY: usize = 8 * WEEK;
/// The longest a forecast reaches past the last stored hour: the forecast day and two days of
/// aggregation lag before it. Further out, the history is stale and the forecast would be a
/// guess.
pub const MAX_HORIZON: usize = 3 * DAY;
/// Missing hours (no stored aggregate) above this share of the history make it unusable:
/// filling more would be inventing the data the forecast stands on.
pub const MAX_MISSING: f64 = 0.1;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ForecastError {
    #[error("too little history for a forecast: {have} hours stored, at least {need} needed")]
    TooLittleHistory { have: usize, need: usize },
    #[error("too many hours missing in the history: {missing} of the last {of}")]
    TooManyGaps { missing: usize, of: usize },
    #[error("the history is stale: its last stored hour is {hours} hours before the forecast's end, at most {max} allowed")]
    Stale { hours: usize, max: usize },
    #[error("the forecast model failed: {0}")]
    Model(String),
}

/// Hourly values, oldest first, `NaN` where nothing is known.
fn usable(history: &[f64]) -> Result<Vec<f64>, ForecastError> {
    let start = history
        .iter()
        .position(|v| v.is_finite())
        .unwrap_or(history.len());
    let end = history
        .iter()
        .rposition(|v| v.is_finite())
        .map_or(start, |i| i + 1);
    let known = history.get(start..end).unwrap_or_default();
    let known = known
        .get(known.len().saturating_sub(MAX_HISTORY)..)
        .unwrap_or_default();
    if known.len() < MIN_HISTORY {
        return Err(ForecastError::TooLittleHistory {
            have: known.len(),
            need: MIN_HISTORY,
        });
    }
    let missing = known.iter().filter(|v| !v.is_finite()).count();
    if missing as f64 > MAX_MISSING * known.len() as f64 {
        return Err(ForecastError::TooManyGaps {
            missing,
            of: known.len(),
        });
    }
    Ok(interpolate(known))
}

/// Missing values filled on the straight line between their known neighbours (both ends are
/// known: the history is trimmed to them).
fn interpolate(v: &[f64]) -> Vec<f64> {
    let mut out = v.to_vec();
    let mut last: Option<usize> = None;
    for i in 0..v.len() {
        let Some(&x) = v.get(i) else { break };
        if !x.is_finite() {
            continue;
        }
        if let Some(l) = last {
            let lv = v.get(l).copied().unwrap_or(x);
            for (k, o) in out.iter_mut().enumerate().take(i).skip(l + 1) {
                *o = lv + (x - lv) * (k - l) as f64 / (i - l) as f64;
            }
        }
        last = Some(i);
    }
    out
}

/// The forecast's trend: the mean of the last day of the deseasonalised series. A day of it
/// averages the remainder's noise out, and it follows a level that moves from day to day
/// (weather, holidays) where the last week's values would not.
#[derive(Debug, Clone, Copy)]
struct RecentLevel;

#[derive(Debug)]
struct FittedLevel {
    level: f64,
    n: usize,
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl TrendModel for RecentLevel {
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed("RecentLevel")
    }

    fn fit(&self, y: &[f64]) -> Result<Box<dyn FittedTrendModel + Sync + Send>, BoxError> {
        let tail = y.get(y.len().saturating_sub(DAY)..).unwrap_or_default();
        if tail.is_empty() {
            return Err("no data".into());
        }
        Ok(Box::new(FittedLevel {
            level: tail.iter().sum::<f64>() / tail.len() as f64,
            n: y.len(),
        }))
    }
}

impl FittedTrendModel for FittedLevel {
    fn predict_inplace(
        &self,
        horizon: usize,
        _level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), BoxError> {
        forecast.point = vec![self.level; horizon];
        Ok(())
    }

    fn predict_in_sample_inplace(
        &self,
        _level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), BoxError> {
        forecast.point = vec![self.level; self.n];
        Ok(())
    }

    fn training_data_size(&self) -> Option<usize> {
        Some(self.n)
    }
}

/// The next `horizon` hours after `history` (hourly, oldest first, `NaN` for missing hours).
/// Never negative: energy imported.
pub fn forecast(history: &[f64], horizon: usize) -> Result<Vec<f64>, ForecastError> {
    let y = usable(history)?;
    let periods = if y.len() >= WEEKLY_FROM {
        vec![DAY, WEEK]
    } else {
        vec![DAY]
    };
    let fitted = MSTLModel::new(periods, RecentLevel)
        .fit(&y)
        .map_err(|e| ForecastError::Model(e.to_string()))?;
    let f = fitted
        .predict(horizon, None)
        .map_err(|e| ForecastError::Model(e.to_string()))?;
    Ok(f.point.into_iter().map(|v| v.max(0.0)).collect())
}

/// The baseline: the same hour last week, or yesterday's with less than two weeks of history.
pub fn seasonal_naive(history: &[f64], horizon: usize) -> Result<Vec<f64>, ForecastError> {
    let y = usable(history)?;
    let season = if y.len() >= WEEKLY_FROM { WEEK } else { DAY };
    let last = y.get(y.len() - season..).unwrap_or_default();
    Ok(last.iter().copied().cycle().take(horizon).collect())
}

/// Mean absolute percentage error (%), over the hours whose actual value is known and not zero.
pub fn mape(actual: &[f64], predicted: &[f64]) -> Option<f64> {
    let (sum, n) = actual
        .iter()
        .zip(predicted)
        .filter(|(a, _)| a.is_finite() && **a != 0.0)
        .fold((0.0, 0usize), |(s, n), (a, p)| {
            (s + ((a - p) / a).abs(), n + 1)
        });
    (n > 0).then(|| 100.0 * sum / n as f64)
}

/// Day-ahead errors over the last `days` whole days of a series.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Backtest {
    pub days: usize,
    /// MAPE (%) of [`forecast`].
    pub mape: f64,
    /// MAPE (%) of [`seasonal_naive`].
    pub baseline_mape: f64,
}

/// Each of the last `days` days forecast from everything before it, as it would have been the
/// evening before; MAPE over all those hours for ours and the baseline.
pub fn backtest(series: &[f64], days: usize) -> Result<Backtest, ForecastError> {
    let (mut actual, mut ours, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for d in (1..=days).rev() {
        let cut = series.len().saturating_sub(d * DAY);
        let history = series.get(..cut).unwrap_or_default();
        let day = series.get(cut..cut + DAY).unwrap_or_default();
        ours.extend(forecast(history, DAY)?);
        base.extend(seasonal_naive(history, DAY)?);
        actual.extend_from_slice(day);
    }
    let none = || ForecastError::Model("no hour to judge the forecast on".into());
    Ok(Backtest {
        days,
        mape: mape(&actual, &ours).ok_or_else(none)?,
        baseline_mape: mape(&actual, &base).ok_or_else(none)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn too_little_history_is_an_error_not_a_forecast() {
        let h = vec![1.0; MIN_HISTORY - 1];
        assert_eq!(
            forecast(&h, 24),
            Err(ForecastError::TooLittleHistory {
                have: MIN_HISTORY - 1,
                need: MIN_HISTORY
            })
        );
        // Missing hours at the ends are no history either.
        let mut h = vec![f64::NAN; 200];
        h[10..40].fill(2.0);
        assert!(matches!(
            forecast(&h, 24),
            Err(ForecastError::TooLittleHistory { have: 30, .. })
        ));
    }

    #[test]
    fn a_history_full_of_holes_is_refused() {
        let mut h: Vec<f64> = (0..500).map(|i| 10.0 + (i % 24) as f64).collect();
        for i in (1..499).step_by(5) {
            h[i] = f64::NAN;
        }
        assert!(matches!(
            forecast(&h, 24),
            Err(ForecastError::TooManyGaps { .. })
        ));
    }

    #[test]
    fn short_gaps_are_bridged_and_the_daily_shape_kept() {
        let shape =
            |i: usize| 100.0 + 50.0 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
        let mut h: Vec<f64> = (0..240).map(shape).collect();
        h[100] = f64::NAN;
        h[101] = f64::NAN;
        let f = forecast(&h, 24).unwrap();
        let want: Vec<f64> = (240..264).map(shape).collect();
        assert!(mape(&want, &f).unwrap() < 1.0, "{f:?}");
    }

    #[test]
    fn interpolation_is_linear() {
        assert_eq!(
            interpolate(&[0.0, f64::NAN, f64::NAN, 3.0]),
            vec![0.0, 1.0, 2.0, 3.0]
        );
    }
}
