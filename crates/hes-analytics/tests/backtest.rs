//! The day-ahead forecast against the seasonal-naive baseline on the simulator's load model:
//! the hourly A+ energy of the simulated fleet's cells (50 meters each) over several weeks.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use hes_analytics::forecast::{backtest, forecast, ForecastError, DAY};
use hes_sim::data::{Consumption, Quantity, INTERVAL};
use hes_sim::MeterConfig;

/// 2026-09-07 00:00 UTC, a Monday.
const START: i64 = 1_788_739_200;
const METERS: u32 = 50;
const WEEKS: usize = 6;
const BACKTEST_DAYS: usize = 14;
/// The cells backtested: `cell-N` holds the fleet's serials `50 N .. 50 N + 49`.
const CELLS: [u32; 3] = [1, 2, 3];

/// A simulated meter's consumption as a fleet of seed 1 (the default) gives it to `serial`
/// (`hes_sim::fleet` mixes the fleet's seed into each meter's this way).
fn meter(serial: u32) -> Consumption {
    Consumption::new(MeterConfig::new(serial).seed ^ 1u64.wrapping_mul(0xD6E8_FEB8_6659_FD93))
}

/// Cell `cell`'s hourly energy (Wh): the sum of its meters' four 15-minute slots per hour.
fn cell_hourly(cell: u32, hours: usize) -> Vec<f64> {
    group_of(
        (cell * METERS..(cell + 1) * METERS).map(meter).collect(),
        hours,
    )
}

fn group_hourly(meters: u32, hours: usize) -> Vec<f64> {
    group_of((1..=meters).map(meter).collect(), hours)
}

fn group_of(fleet: Vec<Consumption>, hours: usize) -> Vec<f64> {
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
fn the_forecast_beats_the_seasonal_naive_baseline_on_the_simulated_cells() {
    for cell in CELLS {
        let clean = cell_hourly(cell, WEEKS * 7 * DAY);
        let raw = backtest(&clean, BACKTEST_DAYS).unwrap();
        println!(
            "cell-{cell} as simulated ({METERS} meters, {WEEKS} weeks, last {BACKTEST_DAYS} days): \
             MAPE ours {:.3} %, seasonal naive {:.3} %",
            raw.mape, raw.baseline_mape
        );
        // Every week of the model is the same: last week's hour is exact, ours close to it.
        assert!(raw.baseline_mape < 1e-9, "{raw:?}");
        assert!(raw.mape < 1.0, "{raw:?}");

        let (mut ours, mut base) = (0.0, 0.0);
        for seed in 1..=5u64 {
            let weather = with_weather(&clean, seed + 100 * u64::from(cell));
            let b = backtest(&weather, BACKTEST_DAYS).unwrap();
            println!(
                "cell-{cell} with weather (seed {seed}): MAPE ours {:.2} %, seasonal naive {:.2} %",
                b.mape, b.baseline_mape
            );
            assert!(b.mape < b.baseline_mape, "cell-{cell} seed {seed}: {b:?}");
            ours += b.mape / 5.0;
            base += b.baseline_mape / 5.0;
        }
        println!("cell-{cell} with weather, mean of 5: MAPE ours {ours:.2} %, seasonal naive {base:.2} %");
    }
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
