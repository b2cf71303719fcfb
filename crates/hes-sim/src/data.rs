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

/// One day type's energy per slot and its prefix sums per tariff.
#[derive(Debug)]
struct DayShape {
    /// Per quantity, the energy of each slot of the day (Wh or varh).
    slots: [[u32; PER_DAY]; 4],
    /// Per quantity and tariff (0 total, 1, 2): `prefix[q][t][i]` is the energy of the slots
    /// `0..i` of the day that fall in tariff `t`. A day's sum fits easily in a `u32`.
    prefix: [[[u32; PER_DAY + 1]; 3]; 4],
}

impl DayShape {
    fn new(slots: [[u32; PER_DAY]; 4], weekend: bool) -> Self {
        let mut prefix = [[[0u32; PER_DAY + 1]; 3]; 4];
        for (per_q, values) in prefix.iter_mut().zip(slots.iter()) {
            let mut sums = [0u32; 3];
            for (i, &v) in values.iter().enumerate() {
                sums[0] = sums[0].saturating_add(v);
                if slot_tariff(weekend, i) == 1 {
                    sums[1] = sums[1].saturating_add(v);
                } else {
                    sums[2] = sums[2].saturating_add(v);
                }
                for (table, &sum) in per_q.iter_mut().zip(sums.iter()) {
                    if let Some(cell) = table.get_mut(i + 1) {
                        *cell = sum;
                    }
                }
            }
        }
        Self { slots, prefix }
    }

    fn slot(&self, q: Quantity, index: usize) -> u32 {
        self.slots
            .get(q.index())
            .and_then(|s| s.get(index))
            .copied()
            .unwrap_or_default()
    }

    fn prefix(&self, q: Quantity, tariff: u8, index: usize) -> u32 {
        self.prefix
            .get(q.index())
            .and_then(|p| p.get(usize::from(tariff)))
            .and_then(|p| p.get(index))
            .copied()
            .unwrap_or_default()
    }
}

/// A consumption shape of the palette: a weekday and a weekend day.
#[derive(Debug)]
struct Shape {
    weekday: DayShape,
    weekend: DayShape,
    solar: bool,
    commercial: bool,
}

impl Shape {
    fn day(&self, weekend: bool) -> &DayShape {
        if weekend {
            &self.weekend
        } else {
            &self.weekday
        }
    }
}

/// The process-wide palette, each shape built on first use.
static PALETTE: [OnceLock<Arc<Shape>>; SHAPES] = [const { OnceLock::new() }; SHAPES];

fn shape(index: u8) -> Arc<Shape> {
    let [first, ..] = &PALETTE;
    let cell = PALETTE.get(usize::from(index)).unwrap_or(first);
    Arc::clone(cell.get_or_init(|| Arc::new(build_shape(index))))
}

/// A bell around slot `center` with a width of `width` slots.
fn bell(i: usize, center: f64, width: f64) -> f64 {
    let x = (i as f64 - center) / width;
    (-x * x).exp()
}

/// A smooth step from 0 to 1 around slot `at`.
fn step(i: usize, at: f64, width: f64) -> f64 {
    1.0 / (1.0 + (-(i as f64 - at) / width).exp())
}

/// Solar generation relative to its peak: 06:00 to 20:00, highest around 13:00.
fn sun(i: usize) -> f64 {
    if (24..80).contains(&i) {
        (std::f64::consts::PI * (i as f64 - 24.0) / 56.0)
            .sin()
            .max(0.0)
            .powf(1.3)
    } else {
        0.0
    }
}

/// The household and commercial parameters of one shape; a day type is drawn from them.
struct Params {
    commercial: bool,
    /// Peak generation (Wh per slot), zero without solar.
    solar_peak: f64,
    /// Reactive energy as a fraction of active.
    reactive: f64,
    /// Household: base load (Wh per slot); commercial: the opening-hours plateau.
    level: f64,
    morning: (f64, f64, f64),
    evening: (f64, f64, f64),
    /// Household: extra daytime load on weekdays; commercial: the night fraction.
    daytime: f64,
    /// Household: the weekend's extra daytime load and its morning delay (slots);
    /// commercial: opening and closing slots.
    weekend: (f64, f64),
}

fn build_shape(index: u8) -> Shape {
    let mut rng = Rng(mix(u64::from(index) ^ SALT_SHAPE));
    let commercial = index % 16 == 7;
    let solar = !commercial && rng.below(4) == 0;
    let params = if commercial {
        Params {
            commercial,
            solar_peak: 0.0,
            reactive: rng.range(0.25, 0.35),
            level: rng.range(250.0, 1250.0),
            morning: (0.0, 0.0, 0.0),
            evening: (0.0, 0.0, 0.0),
            daytime: rng.range(0.15, 0.3),
            weekend: (rng.range(26.0, 32.0), rng.range(70.0, 80.0)),
        }
    } else {
        Params {
            commercial,
            solar_peak: if solar {
                rng.range(2.5, 8.0) * 250.0 * 0.8
            } else {
                0.0
            },
            reactive: rng.range(0.2, 0.35),
            level: rng.range(30.0, 90.0),
            // (centre slot, width in slots, amplitude relative to the base load)
            morning: (
                rng.range(24.0, 34.0),
                rng.range(3.0, 6.0),
                rng.range(1.0, 2.5),
            ),
            evening: (
                rng.range(70.0, 82.0),
                rng.range(6.0, 10.0),
                rng.range(2.0, 4.0),
            ),
            daytime: rng.range(0.3, 0.7),
            weekend: (rng.range(0.8, 1.6), rng.range(4.0, 12.0)),
        }
    };
    Shape {
        weekday: DayShape::new(day_slots(&params, false, &mut rng), false),
        weekend: DayShape::new(day_slots(&params, true, &mut rng), true),
        solar,
        commercial,
    }
}

/// Active load (Wh) of slot `i` before solar and noise.
fn load(p: &Params, weekend: bool, i: usize) -> f64 {
    if p.commercial {
        let (open, close) = p.weekend;
        let night = p.daytime;
        if weekend {
            p.level * (night + 0.08)
        } else {
            let open = step(i, open, 1.2) * (1.0 - step(i, close, 1.5));
            p.level * (night + (1.0 - night) * open)
        }
    } else {
        let (mc, mw, ma) = p.morning;
        let (ec, ew, ea) = p.evening;
        let (extra, delay) = p.weekend;
        let (morning, evening, day) = if weekend {
            (
                0.7 * ma * bell(i, mc + delay, mw * 1.6),
                ea * bell(i, ec - 2.0, ew),
                extra * bell(i, 52.0, 14.0),
            )
        } else {
            (
                ma * bell(i, mc, mw),
                ea * bell(i, ec, ew),
                p.daytime * bell(i, 52.0, 12.0),
            )
        };
        // A little lower in the small hours.
        let night = if i < 20 { 0.8 } else { 1.0 };
        p.level * (night + morning + evening + day)
    }
}

fn day_slots(p: &Params, weekend: bool, rng: &mut Rng) -> [[u32; PER_DAY]; 4] {
    let mut out = [[0u32; PER_DAY]; 4];
    let [import, export, r_import, r_export] = &mut out;
    let slots = import
        .iter_mut()
        .zip(export.iter_mut())
        .zip(r_import.iter_mut().zip(r_export.iter_mut()))
        .enumerate();
    for (i, ((imp, exp), (rimp, rexp))) in slots {
        let demand = load(p, weekend, i) * rng.range(0.85, 1.15);
        let generation = p.solar_peak * sun(i) * rng.range(0.9, 1.1);
        let net = demand - generation;
        *imp = net.round().max(1.0) as u32;
        *exp = (-net).round().max(0.0) as u32;
        *rimp = (f64::from(*imp) * p.reactive * rng.range(0.9, 1.1)).round() as u32;
        *rexp = (f64::from(*exp) * p.reactive * rng.range(0.9, 1.1)).round() as u32;
    }
    out
}

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

/// The event logs of the simulated meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventLog {
    /// Standard event log, 0.0.99.98.0.255.
    Standard,
    /// Fraud detection log, 0.0.99.98.1.255.
    Fraud,
    /// Power quality log, 0.0.99.98.4.255.
    PowerQuality,
}

impl EventLog {
    /// The logical name of the log's profile generic object.
    pub fn obis(self) -> [u8; 6] {
        match self {
            EventLog::Standard => [0, 0, 99, 98, 0, 255],
            EventLog::Fraud => [0, 0, 99, 98, 1, 255],
            EventLog::PowerQuality => [0, 0, 99, 98, 4, 255],
        }
    }
}

/// Event codes (IDIS-like numbering):
///
/// | code | log | event |
/// |---|---|---|
/// | 1 | Standard | power down (all phases) |
/// | 2 | Standard | power up |
/// | 40 | Fraud | terminal cover removed |
/// | 41 | Fraud | terminal cover closed |
/// | 76 | PowerQuality | under-voltage (sag) L1 |
/// | 77 | PowerQuality | under-voltage (sag) L2 |
/// | 78 | PowerQuality | under-voltage (sag) L3 |
/// | 79 | PowerQuality | over-voltage (swell) L1 |
/// | 80 | PowerQuality | over-voltage (swell) L2 |
/// | 81 | PowerQuality | over-voltage (swell) L3 |
pub mod code {
    pub const POWER_DOWN: u16 = 1;
    pub const POWER_UP: u16 = 2;
    pub const TERMINAL_COVER_REMOVED: u16 = 40;
    pub const TERMINAL_COVER_CLOSED: u16 = 41;
    /// Under-voltage L1; L2 and L3 follow.
    pub const UNDER_VOLTAGE_L1: u16 = 76;
    /// Over-voltage L1; L2 and L3 follow.
    pub const OVER_VOLTAGE_L1: u16 = 79;
}

/// One entry of an event log; `code` is one of [`code`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event {
    pub time: i64,
    pub log: EventLog,
    pub code: u16,
}

/// The events generated on one day (days since the epoch), possibly ending after it.
fn day_events(seed: u64, day: i64, out: &mut Vec<Event>) {
    let start = day.saturating_mul(DAY);
    let at = |offset: u64| start.saturating_add(offset as i64);
    // About one day in 20: a power outage of one minute to four hours.
    let mut rng = Rng(hash(seed, SALT_OUTAGE, day));
    if rng.below(20) == 0 {
        let down = at(rng.below(DAY as u64));
        let up = down.saturating_add(60 * (1 + rng.below(240)) as i64);
        out.push(Event {
            time: down,
            log: EventLog::Standard,
            code: code::POWER_DOWN,
        });
        out.push(Event {
            time: up,
            log: EventLog::Standard,
            code: code::POWER_UP,
        });
    }
    // About one day in 200: the terminal cover is opened, closed again within three hours.
    let mut rng = Rng(hash(seed, SALT_FRAUD, day));
    if rng.below(200) == 0 {
        let open = at(rng.below(DAY as u64));
        let closed = open.saturating_add(60 * (1 + rng.below(180)) as i64);
        let (log, removed) = (EventLog::Fraud, code::TERMINAL_COVER_REMOVED);
        out.push(Event {
            time: open,
            log,
            code: removed,
        });
        out.push(Event {
            time: closed,
            log,
            code: code::TERMINAL_COVER_CLOSED,
        });
    }
    // About one day in 30: one to three voltage sags or swells.
    let mut rng = Rng(hash(seed, SALT_QUALITY, day));
    if rng.below(30) == 0 {
        for _ in 0..1 + rng.below(3) {
            let time = at(rng.below(DAY as u64));
            let code = code::UNDER_VOLTAGE_L1 + rng.below(6) as u16;
            out.push(Event {
                time,
                log: EventLog::PowerQuality,
                code,
            });
        }
    }
}

/// A meter's events with `from <= time < to`, sorted by time (then log and code). Each day's
/// events depend only on the seed and the day, so any window gives the same events for the
/// same instants. At most the last 400 days of a longer window are generated.
pub fn events(seed: u64, from: i64, to: i64) -> Vec<Event> {
    let mut out = Vec::new();
    if to <= from {
        return out;
    }
    let from = from.max(to.saturating_sub(EVENT_DAYS * DAY));
    // A pair started the day before `from` may end inside the window (durations < 1 day).
    let first = from.div_euclid(DAY) - 1;
    let last = (to - 1).div_euclid(DAY);
    for day in first..=last {
        day_events(seed, day, &mut out);
    }
    out.retain(|e| (from..to).contains(&e.time));
    out.sort_by_key(|e| (e.time, e.log, e.code));
    out
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

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::expect_used,
        clippy::panic
    )]
    use super::*;

    /// Monday 2026-11-23 00:00 UTC.
    const MONDAY: i64 = 1_795_392_000;

    #[test]
    fn calendar() {
        assert!(!is_weekend(0)); // Thursday
        assert!(is_weekend(2) && is_weekend(3) && !is_weekend(4));
        assert_eq!(MONDAY.rem_euclid(DAY), 0);
        assert_eq!((MONDAY / DAY + 3).rem_euclid(7), 0);
        for n in -30..30 {
            let direct = if n >= 0 {
                (0..n).filter(|&d| is_weekend(d)).count() as i64
            } else {
                -((n..0).filter(|&d| is_weekend(d)).count() as i64)
            };
            assert_eq!(weekend_days_before(n), direct, "n = {n}");
        }
        // Monday: 06:45-07:00 is night, 07:00-07:15 and 22:45-23:00 day, 23:00-23:15 night.
        assert_eq!(tariff_at(MONDAY + 7 * 3600), 2);
        assert_eq!(tariff_at(MONDAY + 7 * 3600 + INTERVAL), 1);
        assert_eq!(tariff_at(MONDAY + 23 * 3600), 1);
        assert_eq!(tariff_at(MONDAY + 23 * 3600 + INTERVAL), 2);
        // Saturday noon, and the slot ending at Saturday 00:00 (Friday's last: night).
        assert_eq!(tariff_at(MONDAY + 5 * DAY + 12 * 3600), 2);
        assert_eq!(tariff_at(MONDAY + 5 * DAY), 2);
        assert_eq!(tariff_at(MONDAY + 4 * DAY + 12 * 3600), 1);
    }

    #[test]
    fn same_seed_same_values_different_seeds_differ() {
        let a = Consumption::new(42);
        let b = Consumption::new(42);
        let c = Consumption::new(43);
        let t = MONDAY + 12_345;
        let mut differs = false;
        for q in Quantity::ALL {
            for tariff in 0..3 {
                assert_eq!(a.cumulative(q, tariff, t), b.cumulative(q, tariff, t));
            }
            assert_eq!(a.slot(q, MONDAY), b.slot(q, MONDAY));
            differs |= a.cumulative(q, 0, t) != c.cumulative(q, 0, t);
        }
        assert!(differs);
        assert_eq!(a.instantaneous(t), b.instantaneous(t));
        // Across many seeds the import registers are all distinct.
        let mut values: Vec<u64> = (0..500)
            .map(|s| Consumption::new(s).cumulative(Quantity::ImportActive, 0, t))
            .collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), 500);
    }

    #[test]
    fn slots_agree_with_registers_over_three_weeks() {
        for seed in [1, 7, 42, 1234, 99_999] {
            let c = Consumption::new(seed);
            // From a Thursday, so the weekday/weekend boundaries are crossed mid-run.
            let t0 = MONDAY + 3 * DAY;
            for k in 1..=21 * 96 {
                let end = t0 + k * INTERVAL;
                let tariff = tariff_at(end);
                for q in Quantity::ALL {
                    let slot = u64::from(c.slot(q, end));
                    let total = c.cumulative(q, 0, end) - c.cumulative(q, 0, end - INTERVAL);
                    assert_eq!(total, slot, "seed {seed} slot {k} {q:?}");
                    let inside =
                        c.cumulative(q, tariff, end) - c.cumulative(q, tariff, end - INTERVAL);
                    assert_eq!(inside, slot, "seed {seed} slot {k} {q:?} T{tariff}");
                    let other = 3 - tariff;
                    assert_eq!(
                        c.cumulative(q, other, end),
                        c.cumulative(q, other, end - INTERVAL)
                    );
                    if q == Quantity::ImportActive {
                        assert!(slot >= 1);
                    }
                }
                // Registers only step at slot boundaries.
                let q = Quantity::ImportActive;
                assert_eq!(
                    c.cumulative(q, 0, end - 1),
                    c.cumulative(q, 0, end - INTERVAL)
                );
            }
        }
    }

    #[test]
    fn tariffs_add_up_to_the_total() {
        for seed in 0..50 {
            let c = Consumption::new(seed);
            for t in [
                REGISTER_REFERENCE,
                REGISTER_REFERENCE + 1,
                MONDAY - 1,
                MONDAY + 5 * DAY + 4321,
                4_102_444_800,
            ] {
                for q in Quantity::ALL {
                    let (t1, t2) = (c.cumulative(q, 1, t), c.cumulative(q, 2, t));
                    assert_eq!(c.cumulative(q, 0, t), t1 + t2, "seed {seed} t {t} {q:?}");
                }
            }
            // Long before the reference a register can go below zero: the identity holds
            // modulo 2^64.
            for t in [-1, 0, -DAY * 400 - 1] {
                for q in Quantity::ALL {
                    let (t1, t2) = (c.cumulative(q, 1, t), c.cumulative(q, 2, t));
                    assert_eq!(c.cumulative(q, 0, t), t1.wrapping_add(t2));
                }
            }
            assert_eq!(c.cumulative(Quantity::ImportActive, 3, MONDAY), 0);
        }
    }

    #[test]
    fn weekday_and_weekend_differ() {
        for seed in 0..100 {
            let c = Consumption::new(seed);
            let day = |start: i64| -> Vec<u32> {
                (1..=96)
                    .map(|k| c.slot(Quantity::ImportActive, start + k * INTERVAL))
                    .collect()
            };
            let (wednesday, sunday) = (day(MONDAY + 2 * DAY), day(MONDAY + 6 * DAY));
            assert_ne!(wednesday, sunday, "seed {seed}");
            // Every week repeats.
            assert_eq!(wednesday, day(MONDAY + 9 * DAY));
        }
    }

    #[test]
    fn palette_has_solar_and_commercial_shapes() {
        let meters: Vec<Consumption> = (0..2000).map(Consumption::new).collect();
        let solar = meters.iter().filter(|c| c.has_solar()).count();
        let commercial = meters.iter().filter(|c| c.is_commercial()).count();
        assert!((300..700).contains(&solar), "{solar} solar meters of 2000");
        assert!(
            (40..250).contains(&commercial),
            "{commercial} commercial meters of 2000"
        );
        for c in &meters {
            // Reactive roughly 20-35 % of active over a day.
            let sum = |q| {
                (1..=96)
                    .map(|k| u64::from(c.slot(q, MONDAY + k * INTERVAL)))
                    .sum()
            };
            let (a, r): (u64, u64) = (sum(Quantity::ImportActive), sum(Quantity::ImportReactive));
            assert!(
                r * 100 >= a * 17 && r * 100 <= a * 38,
                "{c:?}: {r} varh / {a} Wh"
            );
        }
    }

    #[test]
    fn solar_exports_around_noon_only() {
        let mut seen = 0;
        for c in (0..400).map(Consumption::new) {
            let export = |start: i64, hour: i64, min: i64| {
                c.slot(Quantity::ExportActive, start + hour * 3600 + min * 60)
            };
            for day in [MONDAY + DAY, MONDAY + 5 * DAY] {
                let night = [(0, 15), (3, 0), (5, 0), (21, 0), (23, 45)];
                for (h, m) in night {
                    assert_eq!(export(day, h, m), 0, "{c:?} at {h}:{m}");
                }
                if c.has_solar() {
                    for (h, m) in [(12, 0), (12, 15), (13, 0)] {
                        assert!(export(day, h, m) > 0, "{c:?} at {h}:{m}");
                    }
                    let noon = |q| c.slot(q, day + 12 * 3600);
                    let evening = c.slot(Quantity::ImportActive, day + 20 * 3600);
                    assert!(noon(Quantity::ImportActive) < evening);
                    seen += 1;
                } else {
                    assert_eq!(export(day, 12, 0), 0);
                }
            }
        }
        assert!(seen > 0);
    }

    #[test]
    fn instantaneous_matches_the_slot() {
        for seed in 0..200 {
            let c = Consumption::new(seed);
            for k in 0..200 {
                let t = MONDAY + k * 1_234;
                let end = (t / INTERVAL + 1) * INTERVAL;
                let v = c.instantaneous(t);
                let p: i64 = v.active_power_w.iter().map(|&p| i64::from(p)).sum();
                let imp = i64::from(c.slot(Quantity::ImportActive, end));
                let exp = i64::from(c.slot(Quantity::ExportActive, end));
                assert_eq!(p, (imp - exp) * 4);
                if !c.has_solar() {
                    assert_eq!(p, imp * 4);
                }
                let q: i64 = v.reactive_power_var.iter().map(|&q| i64::from(q)).sum();
                let rimp = i64::from(c.slot(Quantity::ImportReactive, end));
                let rexp = i64::from(c.slot(Quantity::ExportReactive, end));
                assert_eq!(q, (rimp - rexp) * 4);
                for phase in 0..3 {
                    let volts = v.voltage_dv[phase];
                    assert!((2231..=2369).contains(&volts), "{volts}");
                    // I * V ≈ |S| per phase, within rounding.
                    let (pp, qq) = (v.active_power_w[phase], v.reactive_power_var[phase]);
                    let s = f64::from(pp).hypot(f64::from(qq));
                    let ui = f64::from(v.current_ma[phase]) * f64::from(volts) / 10_000.0;
                    assert!((ui - s).abs() <= 0.5, "{ui} vs {s}");
                }
                assert!((49_950..=50_050).contains(&v.frequency_mhz));
                assert!(v.power_factor_milli <= 1000);
            }
        }
        // Voltages change from one second to the next.
        let c = Consumption::new(5);
        let volts: Vec<_> = (0..10)
            .map(|s| c.instantaneous(MONDAY + s).voltage_dv)
            .collect();
        assert!(volts.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let c = Consumption::new(3);
        for t in [
            i64::MIN / 2,
            -1,
            0,
            i64::MAX / 2,
            i64::MIN,
            i64::MAX - INTERVAL,
        ] {
            for q in Quantity::ALL {
                let total = c.cumulative(q, 0, t);
                assert_eq!(
                    total,
                    c.cumulative(q, 1, t).wrapping_add(c.cumulative(q, 2, t))
                );
                let _ = c.slot(q, t);
            }
            let _ = c.instantaneous(t);
            let _ = tariff_at(t);
            let _ = anomaly(3, 10, t);
        }
        let _ = events(3, i64::MIN, i64::MAX);
        let _ = events(3, i64::MAX - 10, i64::MAX);
        let _ = events(3, i64::MIN, i64::MIN + 10);
    }

    #[test]
    fn registers_hold_their_base_at_the_reference_and_fit_dlms() {
        let mut top = 0;
        for seed in 0..3000 {
            let c = Consumption::new(seed);
            let import = c.cumulative(Quantity::ImportActive, 0, REGISTER_REFERENCE);
            assert!(import < 50_000_000);
            assert_eq!(
                import,
                c.cumulative(Quantity::ImportActive, 0, REGISTER_REFERENCE + 899)
            );
            // Until 2040 every register fits a double-long-unsigned.
            for q in Quantity::ALL {
                top = top.max(c.cumulative(q, 0, 2_208_988_800));
            }
        }
        assert!(top < u64::from(u32::MAX), "{top}");
    }

    #[test]
    fn consumption_is_small() {
        assert!(std::mem::size_of::<Consumption>() <= 64);
    }

    #[test]
    fn events_are_deterministic_and_window_independent() {
        let (a, b, c) = (
            MONDAY - 200 * DAY,
            MONDAY - 77 * DAY + 12_345,
            MONDAY + 100 * DAY,
        );
        for seed in 0..30 {
            let all = events(seed, a, c);
            assert_eq!(all, events(seed, a, c));
            let mut joined = events(seed, a, b);
            joined.extend(events(seed, b, c));
            assert_eq!(all, joined, "seed {seed}");
            assert!(all.windows(2).all(|w| w[0].time <= w[1].time));
            assert!(all.iter().all(|e| (a..c).contains(&e.time)));
            for e in &all {
                let expected = match e.code {
                    1 | 2 => EventLog::Standard,
                    40 | 41 => EventLog::Fraud,
                    76..=81 => EventLog::PowerQuality,
                    other => panic!("unexpected code {other}"),
                };
                assert_eq!(e.log, expected);
            }
        }
        // A window opening between a power down and its power up still shows the up, also
        // when the up falls on the next day (and the window starts on that day).
        let (seed, down, up) = (0..)
            .find_map(|s| {
                let all = events(s, a, c);
                all.windows(2).find_map(|w| {
                    let crosses = w[0].time.div_euclid(DAY) < w[1].time.div_euclid(DAY);
                    let pair = w[0].code == code::POWER_DOWN && w[1].code == code::POWER_UP;
                    (pair && crosses).then_some((s, w[0].time, w[1].time))
                })
            })
            .unwrap();
        for start in [down + 1, up.div_euclid(DAY) * DAY, up] {
            let after = events(seed, start, up + 1);
            let first = after.iter().find(|e| e.log == EventLog::Standard).unwrap();
            assert_eq!(
                (first.time, first.code),
                (up, code::POWER_UP),
                "from {start}"
            );
        }
    }

    #[test]
    fn event_rates() {
        let (mut outages, mut frauds, mut quality_days) = (0, 0, 0);
        for seed in 0..100 {
            let all = events(seed, MONDAY - 365 * DAY, MONDAY);
            outages += all.iter().filter(|e| e.code == code::POWER_DOWN).count();
            frauds += all
                .iter()
                .filter(|e| e.code == code::TERMINAL_COVER_REMOVED)
                .count();
            let mut days: Vec<i64> = all
                .iter()
                .filter(|e| e.log == EventLog::PowerQuality)
                .map(|e| e.time.div_euclid(DAY))
                .collect();
            days.dedup();
            quality_days += days.len();
        }
        // 36,500 meter-days: expected 1825 outages, 182 frauds, 1217 power quality days.
        assert!((1600..2050).contains(&outages), "{outages}");
        assert!((120..250).contains(&frauds), "{frauds}");
        assert!((1050..1400).contains(&quality_days), "{quality_days}");
        // Longer windows are cut to their last 400 days.
        let long = events(1, MONDAY - 1000 * DAY, MONDAY);
        assert_eq!(long, events(1, MONDAY - 400 * DAY, MONDAY));
        assert_eq!(EventLog::Fraud.obis(), [0, 0, 99, 98, 1, 255]);
    }

    #[test]
    fn anomaly_rate() {
        for per_mille in [0u16, 5, 50, 300] {
            let (mut gaps, mut spikes) = (0u32, 0u32);
            for k in 0..100_000 {
                match anomaly(77, per_mille, MONDAY + k * INTERVAL) {
                    Anomaly::Gap => gaps += 1,
                    Anomaly::Spike => spikes += 1,
                    Anomaly::None => {}
                }
            }
            let expected = f64::from(per_mille) * 50.0; // per kind, of 100,000
            let tolerance = 4.0 * expected.sqrt() + 1.0;
            for n in [gaps, spikes] {
                assert!(
                    (f64::from(n) - expected).abs() <= tolerance,
                    "{per_mille}: {n}"
                );
            }
            assert_eq!(
                anomaly(77, per_mille, MONDAY),
                anomaly(77, per_mille, MONDAY + 1)
            );
        }
        let all = (0..1000).all(|k| anomaly(1, 1000, k * INTERVAL) != Anomaly::None);
        assert!(all);
    }
}
