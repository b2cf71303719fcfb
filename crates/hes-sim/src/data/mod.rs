//! The simulated meters' data: interval energy, cumulative registers per tariff, instantaneous
//! values, event logs and profile anomalies, all pure functions of a meter's seed and the time.
//!
//! Memory: the consumption shapes (about 12 KiB each) live in one process-wide palette of
//! [`SHAPES`] entries, built on first use; a meter holds an [`Arc`] to its shape and a few
//! integers ([`Consumption`] is at most 64 bytes), so 100,000 meters share at most 256 shapes.
//!
//! Time is Unix seconds, UTC. Slot `k` covers `[k * INTERVAL, (k + 1) * INTERVAL)`; "the slot
//! ending at `end`" is the slot `end.div_euclid(INTERVAL) - 1`, the last one completed at `end`.
//! Registers count completed slots only, so they step at slot boundaries.
//!
//! Cumulative values are computed with integers only, modulo 2^64 (the shapes use floats once,
//! while being built, and are then fixed integer tables): for any realistic time no wrap occurs,
//! and far outside it the arithmetic wraps instead of panicking.

mod events;
mod shape;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, OnceLock};

/// Seconds in one profile interval (15 minutes).
pub const INTERVAL: i64 = 900;
/// Seconds in a day.
const DAY: i64 = 86_400;
/// Slots in a day.
const PER_DAY: usize = 96;
/// Number of shapes in the palette.
pub const SHAPES: usize = 256;
/// First and one-past-last slot of the day rate on weekdays: 07:00 to 23:00 UTC.
const DAY_RATE: std::ops::Range<usize> = 28..92;
/// The instant at which every register holds its base value: 2020-01-01 00:00 UTC. Counting
/// from here rather than from 1970 keeps today's registers near real meters' (tens of MWh) and
/// inside the 32-bit registers of DLMS for decades; before it registers count down.
pub const REGISTER_REFERENCE: i64 = 1_577_836_800;
/// Events are generated for at most this many days before the end of a window.
const EVENT_DAYS: i64 = 400;
/// The energy a spike anomaly adds to a slot (Wh): far beyond any real 15-minute value.
pub const SPIKE_WH: u64 = 1_000_000;

/// An energy quantity: the four registers of a four-quadrant meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// A+: active energy imported (Wh).
    ImportActive,
    /// A-: active energy exported (Wh).
    ExportActive,
    /// R+: reactive energy imported (varh).
    ImportReactive,
    /// R-: reactive energy exported (varh).
    ExportReactive,
}

impl Quantity {
    /// A+, A-, R+, R-.
    pub const ALL: [Quantity; 4] = [
        Quantity::ImportActive,
        Quantity::ExportActive,
        Quantity::ImportReactive,
        Quantity::ExportReactive,
    ];

    fn index(self) -> usize {
        match self {
            Quantity::ImportActive => 0,
            Quantity::ExportActive => 1,
            Quantity::ImportReactive => 2,
            Quantity::ExportReactive => 3,
        }
    }
}

/// SplitMix64's output function: a well-mixed 64-bit hash of `z`.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of a seed, a purpose (`salt`) and a number (a day, a slot, a second).
pub(crate) fn hash(seed: u64, salt: u64, n: i64) -> u64 {
    mix(mix(seed ^ salt).wrapping_add((n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

/// SplitMix64: a tiny generator; the same state gives the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

const SALT_METER: u64 = 0x6D65_7465_7200_0001;
const SALT_SHAPE: u64 = 0x7368_6170_6500_0002;
const SALT_VOLT: u64 = 0x766F_6C74_0000_0003;
const SALT_FREQ: u64 = 0x6672_6571_0000_0004;
const SALT_OUTAGE: u64 = 0x6F75_7461_6765_0005;
const SALT_FRAUD: u64 = 0x6672_6175_6400_0006;
const SALT_QUALITY: u64 = 0x7175_616C_0000_0007;
const SALT_ANOMALY: u64 = 0x616E_6F6D_0000_0008;

/// Days since the epoch of the slot with index `slot`, and the slot's index within its day.
fn day_and_index(slot: i64) -> (i64, usize) {
    let day = slot.div_euclid(PER_DAY as i64);
    let index = slot.rem_euclid(PER_DAY as i64) as usize;
    (day, index)
}

/// Whether a day (days since 1970-01-01, a Thursday) is a Saturday or a Sunday.
fn is_weekend(day: i64) -> bool {
    // Day -3 (1969-12-29) was a Monday.
    day.wrapping_add(3).rem_euclid(7) >= 5
}

/// The number of weekend days in `[0, n)`, negative (minus those in `[n, 0)`) when n < 0.
fn weekend_days_before(n: i64) -> i64 {
    // Counted from Monday 1969-12-29 (day -3); days -3..0 are Monday to Wednesday.
    let m = n.wrapping_add(3);
    2 * m.div_euclid(7) + (m.rem_euclid(7) - 5).max(0)
}

/// The tariff in force during the slot ending at `slot_end`: 1 (day rate, slots inside
/// 07:00-23:00 UTC, Monday to Friday) or 2 (night, and all weekend). Tariff 0, in the APIs of
/// this module, means the total over both.
pub fn tariff_at(slot_end: i64) -> u8 {
    let (day, index) = day_and_index(slot_end.div_euclid(INTERVAL) - 1);
    slot_tariff(is_weekend(day), index)
}

fn slot_tariff(weekend: bool, index: usize) -> u8 {
    if !weekend && DAY_RATE.contains(&index) {
        1
    } else {
        2
    }
}

pub use events::{code, events, Event, EventLog};
use shape::{shape, Shape};

/// One meter's consumption: a shared shape, an integer scale and the registers' values at the
/// epoch, split between the two tariffs.
#[derive(Clone)]
pub struct Consumption {
    shape: Arc<Shape>,
    /// Per quantity, the register value at the epoch in tariffs 1 and 2.
    base: [[u32; 2]; 4],
    seed: u64,
    shape_index: u8,
    /// Every slot value of the shape multiplied by this (1..=3).
    scale: u8,
}

impl fmt::Debug for Consumption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumption")
            .field("seed", &self.seed)
            .field("shape_index", &self.shape_index)
            .field("scale", &self.scale)
            .field("base", &self.base)
            .finish()
    }
}

/// Instantaneous values, per phase where an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instantaneous {
    /// Phase voltages, 0.1 V: 2300 ± 3 %.
    pub voltage_dv: [u16; 3],
    /// Phase currents, mA (from the apparent power).
    pub current_ma: [u32; 3],
    /// Active power per phase, W: import positive, export negative.
    pub active_power_w: [i32; 3],
    /// Reactive power per phase, var: R+ positive, R- negative.
    pub reactive_power_var: [i32; 3],
    /// Mains frequency, mHz: 50000 ± 50.
    pub frequency_mhz: u32,
    /// Total power factor, 0.001 (1000 without load).
    pub power_factor_milli: u16,
}

impl Consumption {
    /// The meter with this seed: its palette shape, a scale of 1 to 3 and its registers' bases
    /// (import below 50 MWh, export below 5 MWh with solar, reactive about a quarter of those).
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng(mix(seed ^ SALT_METER));
        let shape_index = rng.below(SHAPES as u64) as u8;
        let shape = shape(shape_index);
        let scale = 1 + rng.below(3) as u8;
        let import = rng.below(50_000_000);
        let export = if shape.solar {
            rng.below(5_000_000)
        } else {
            rng.below(2_000)
        };
        let totals = [import, export, import / 4 + rng.below(1_000), export / 4];
        let mut base = [[0u32; 2]; 4];
        for (b, &total) in base.iter_mut().zip(totals.iter()) {
            // The day rate's share of the history: 55 to 75 %.
            let day = total * (55 + rng.below(21)) / 100;
            *b = [day as u32, (total - day) as u32];
        }
        Self {
            shape,
            base,
            seed,
            shape_index,
            scale,
        }
    }

    /// The palette index of this meter's shape.
    pub fn shape_index(&self) -> u8 {
        self.shape_index
    }

    /// Whether this meter has rooftop solar (exports around midday).
    pub fn has_solar(&self) -> bool {
        self.shape.solar
    }

    /// Whether this meter is a small commercial one (a daytime plateau on weekdays).
    pub fn is_commercial(&self) -> bool {
        self.shape.commercial
    }

    /// The register of quantity `q` in `tariff` (0 total, 1 day, 2 night; other values give 0)
    /// at instant `t`, counting completed slots only: the base at [`REGISTER_REFERENCE`] plus
    /// the energy since. Exact integer arithmetic, modulo 2^64 (far before the reference a
    /// register wraps below zero):
    /// `cumulative(q, 0, t) == cumulative(q, 1, t).wrapping_add(cumulative(q, 2, t))`.
    pub fn cumulative(&self, q: Quantity, tariff: u8, t: i64) -> u64 {
        let base = self.base.get(q.index()).copied().unwrap_or_default();
        let base = match tariff {
            0 => i128::from(base[0]) + i128::from(base[1]),
            1 => i128::from(base[0]),
            2 => i128::from(base[1]),
            _ => return 0,
        };
        let since = self.shape_sum(q, tariff, t) - self.shape_sum(q, tariff, REGISTER_REFERENCE);
        (base + i128::from(self.scale) * since) as u64
    }

    /// The shape's energy in `tariff` from the epoch to `t` (negative before it), unscaled.
    fn shape_sum(&self, q: Quantity, tariff: u8, t: i64) -> i128 {
        let (day, index) = day_and_index(t.div_euclid(INTERVAL));
        let weekend_days = weekend_days_before(day);
        let weekdays = day.wrapping_sub(weekend_days);
        let full_day =
            |weekend: bool| i128::from(self.shape.day(weekend).prefix(q, tariff, PER_DAY));
        let today = i128::from(self.shape.day(is_weekend(day)).prefix(q, tariff, index));
        i128::from(weekdays) * full_day(false) + i128::from(weekend_days) * full_day(true) + today
    }

    /// The energy of quantity `q` in the slot ending at `end`.
    pub fn slot(&self, q: Quantity, end: i64) -> u32 {
        let (day, index) = day_and_index(end.div_euclid(INTERVAL) - 1);
        self.shape.day(is_weekend(day)).slot(q, index) * u32::from(self.scale)
    }

    /// Instantaneous values at `t`: the average power of the slot being consumed at `t`, split
    /// over the phases by fixed per-meter weights; voltages and frequency vary every second.
    pub fn instantaneous(&self, t: i64) -> Instantaneous {
        let end = (t.div_euclid(INTERVAL) + 1).wrapping_mul(INTERVAL);
        let power = |plus: Quantity, minus: Quantity| {
            (i64::from(self.slot(plus, end)) - i64::from(self.slot(minus, end))) * 4
        };
        let p = power(Quantity::ImportActive, Quantity::ExportActive);
        let q = power(Quantity::ImportReactive, Quantity::ExportReactive);
        // Phase weights (per mille) from the seed: uneven, each phase 200 to 466.
        let mut rng = Rng(mix(self.seed ^ SALT_VOLT));
        let w1 = 200 + rng.below(267) as i64;
        let w2 = 200 + rng.below(267) as i64;
        let split = |total: i64| {
            let a = total * w1 / 1000;
            let b = total * w2 / 1000;
            [a, b, total - a - b]
        };
        let (ps, qs) = (split(p), split(q));
        let slot = t.div_euclid(INTERVAL);
        let mut voltage_dv = [0u16; 3];
        let mut current_ma = [0u32; 3];
        let mut active_power_w = [0i32; 3];
        let mut reactive_power_var = [0i32; 3];
        let phases = voltage_dv
            .iter_mut()
            .zip(current_ma.iter_mut())
            .zip(active_power_w.iter_mut().zip(reactive_power_var.iter_mut()))
            .zip(ps.iter().zip(qs.iter()))
            .enumerate();
        for (phase, (((v, i), (pw, qw)), (&pp, &qq))) in phases {
            let salt = SALT_VOLT.wrapping_add(phase as u64);
            // A slow part per slot and a fast part per second: at most ±69 dV (3 %).
            let slow = (hash(self.seed, salt, slot) % 81) as i64 - 40;
            let fast = (hash(self.seed, salt ^ 1, t) % 59) as i64 - 29;
            *v = (2300 + slow + fast) as u16;
            *pw = pp as i32;
            *qw = qq as i32;
            let apparent = ((pp * pp + qq * qq) as f64).sqrt();
            *i = (apparent * 10_000.0 / f64::from(*v)).round() as u32;
        }
        let frequency_mhz = (49_950 + hash(self.seed, SALT_FREQ, t) % 101) as u32;
        let apparent = ((p * p + q * q) as f64).sqrt();
        let power_factor_milli = if apparent > 0.0 {
            ((p.abs() as f64) * 1000.0 / apparent).round() as u16
        } else {
            1000
        };
        Instantaneous {
            voltage_dv,
            current_ma,
            active_power_w,
            reactive_power_var,
            frequency_mhz,
            power_factor_milli,
        }
    }
}

/// A fault injected into a load profile entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anomaly {
    /// A normal entry.
    None,
    /// The entry is missing.
    Gap,
    /// The entry's value jumps by [`SPIKE_WH`].
    Spike,
}

/// Whether the slot ending at `slot_end` is anomalous: `per_mille` / 1000 of the slots are
/// (1000 and more: all), half of them gaps and half spikes, fixed per seed and slot.
pub fn anomaly(seed: u64, per_mille: u16, slot_end: i64) -> Anomaly {
    let r = hash(seed, SALT_ANOMALY, slot_end.div_euclid(INTERVAL)) % 2000;
    let p = u64::from(per_mille.min(1000));
    if r < p {
        Anomaly::Gap
    } else if r < 2 * p {
        Anomaly::Spike
    } else {
        Anomaly::None
    }
}
