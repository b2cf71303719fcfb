//! The day-ahead forecast against the seasonal-naive baseline on the simulator's load model:
//! the hourly A+ energy of a group of simulated meters over several weeks.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use hes_analytics::forecast::{backtest, forecast, ForecastError, DAY};
use hes_sim::data::{Consumption, Quantity, INTERVAL};

/// 2026-09-07 00:00 UTC, a Monday.
const START: i64 = 1_788_739_200;
const METERS: u64 = 50;
const WEEKS: usize = 6;
const BACKTEST_DAYS: usize = 14;

/// The group's hourly energy (Wh): the sum of its meters' four 15-minute slots per hour.
fn group_hourly(meters: u64, hours: usize) -> Vec<f64> {
    let fleet: Vec<Consumption> = (1..=meters).map(Consumption::new).collect();
    (0..hours)
        .map(|h| {
            let hour = START + h as i64 * 3600;
            (1..=4)
                .map(|k| {
                    let end = hour + k * INTERVAL;
                    fleet
                        .iter()
                        .map(|m| f64::from(m.slot(Quantity::ImportActive, end)))
                        .sum::<f64>()
                })
                .sum()
        })
        .collect()
}

/// SplitMix64 in [-1, 1): the test's own deterministic noise.
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// The simulator repeats each weekday and weekend day exactly; real load does not. Weather
/// moves a day's level and the level persists for days: an AR(1) daily factor (persistence
/// 0.8, about ±8 %), and ±3 % of independent noise per hour.
fn with_weather(series: &[f64], seed: u64) -> Vec<f64> {
    let mut n = Noise(seed);
    let mut level = 0.0;
    let mut out = Vec::with_capacity(series.len());
    for day in series.chunks(DAY) {
        level = 0.8 * level + 0.08 * n.next();
        for v in day {
            out.push(v * (1.0 + level) * (1.0 + 0.03 * n.next()));
        }
    }
    out
}

#[test]
fn the_forecast_beats_the_seasonal_naive_baseline_on_the_simulated_group() {
    let clean = group_hourly(METERS, WEEKS * 7 * DAY);
    let raw = backtest(&clean, BACKTEST_DAYS).unwrap();
    println!(
        "simulator load model as is ({METERS} meters, {WEEKS} weeks, last {BACKTEST_DAYS} days): \
         MAPE ours {:.3} %, seasonal naive {:.3} %",
        raw.mape, raw.baseline_mape
    );
    // Every week of the model is the same: last week's hour is exact, and ours is close to it.
    assert!(raw.baseline_mape < 1e-9, "{raw:?}");
    assert!(raw.mape < 1.0, "{raw:?}");

    let mut wins = 0;
    for seed in 1..=5u64 {
        let weather = with_weather(&clean, seed);
        let b = backtest(&weather, BACKTEST_DAYS).unwrap();
        println!(
            "with weather (seed {seed}): MAPE ours {:.2} %, seasonal naive {:.2} %",
            b.mape, b.baseline_mape
        );
        assert!(b.mape < b.baseline_mape, "seed {seed}: {b:?}");
        wins += 1;
    }
    assert_eq!(wins, 5);
}

#[test]
fn with_less_than_two_weeks_the_figures_are_reported() {
    let series = with_weather(&group_hourly(METERS, 12 * DAY), 9);
    let b = backtest(&series, 5).unwrap();
    println!(
        "12 days, last 5 (daily season only): MAPE ours {:.2} %, seasonal naive {:.2} %",
        b.mape, b.baseline_mape
    );
    // Without a weekly season (it needs two weeks) neither model knows a Monday follows a
    // Sunday; the served forecast then takes whichever did better on the last week
    // (`hes_analytics::day_ahead`). Reported, not asserted.
    assert!(b.mape.is_finite() && b.baseline_mape.is_finite());
}

#[test]
fn two_days_of_history_are_too_little() {
    let series = group_hourly(3, 2 * DAY);
    assert!(matches!(
        forecast(&series, DAY),
        Err(ForecastError::TooLittleHistory { have: 48, need: 72 })
    ));
}
