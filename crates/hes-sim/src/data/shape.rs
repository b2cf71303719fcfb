//! The consumption shapes: a process-wide palette of day types (households, commercial, solar),
//! each a fixed integer table of energy per slot with prefix sums per tariff.

use super::*;

/// One day type's energy per slot and its prefix sums per tariff.
#[derive(Debug)]
pub(super) struct DayShape {
    /// Per quantity, the energy of each slot of the day (Wh or varh).
    pub(super) slots: [[u32; PER_DAY]; 4],
    /// Per quantity and tariff (0 total, 1, 2): `prefix[q][t][i]` is the energy of the slots
    /// `0..i` of the day that fall in tariff `t`. A day's sum fits easily in a `u32`.
    pub(super) prefix: [[[u32; PER_DAY + 1]; 3]; 4],
}

impl DayShape {
    pub(super) fn new(slots: [[u32; PER_DAY]; 4], weekend: bool) -> Self {
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

    pub(super) fn slot(&self, q: Quantity, index: usize) -> u32 {
        self.slots
            .get(q.index())
            .and_then(|s| s.get(index))
            .copied()
            .unwrap_or_default()
    }

    pub(super) fn prefix(&self, q: Quantity, tariff: u8, index: usize) -> u32 {
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
pub(super) struct Shape {
    pub(super) weekday: DayShape,
    pub(super) weekend: DayShape,
    pub(super) solar: bool,
    pub(super) commercial: bool,
}

impl Shape {
    pub(super) fn day(&self, weekend: bool) -> &DayShape {
        if weekend {
            &self.weekend
        } else {
            &self.weekday
        }
    }
}

/// The process-wide palette, each shape built on first use.
pub(super) static PALETTE: [OnceLock<Arc<Shape>>; SHAPES] = [const { OnceLock::new() }; SHAPES];

pub(super) fn shape(index: u8) -> Arc<Shape> {
    let [first, ..] = &PALETTE;
    let cell = PALETTE.get(usize::from(index)).unwrap_or(first);
    Arc::clone(cell.get_or_init(|| Arc::new(build_shape(index))))
}

/// A bell around slot `center` with a width of `width` slots.
pub(super) fn bell(i: usize, center: f64, width: f64) -> f64 {
    let x = (i as f64 - center) / width;
    (-x * x).exp()
}

/// A smooth step from 0 to 1 around slot `at`.
pub(super) fn step(i: usize, at: f64, width: f64) -> f64 {
    1.0 / (1.0 + (-(i as f64 - at) / width).exp())
}

/// Solar generation relative to its peak: 06:00 to 20:00, highest around 13:00.
pub(super) fn sun(i: usize) -> f64 {
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
pub(super) struct Params {
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

pub(super) fn build_shape(index: u8) -> Shape {
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
pub(super) fn load(p: &Params, weekend: bool, i: usize) -> f64 {
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

pub(super) fn day_slots(p: &Params, weekend: bool, rng: &mut Rng) -> [[u32; PER_DAY]; 4] {
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
