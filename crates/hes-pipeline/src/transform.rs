//! From validated readings to SI values, named channels and interval consumption.

use std::collections::BTreeMap;

use dlms::ObisCode;
use hes_model::{MeterId, Reading};
use serde::{Deserialize, Serialize};

use crate::validate::{scaled, Rules};
use hes_model::{Quality, ValidatedReading};

/// DLMS unit codes the pipeline knows (Blue Book, class 3 `scaler_unit`).
pub mod unit {
    pub const W: u8 = 27;
    pub const VA: u8 = 28;
    pub const VAR: u8 = 29;
    pub const WH: u8 = 30;
    pub const VAH: u8 = 31;
    pub const VARH: u8 = 32;
    pub const A: u8 = 33;
    pub const V: u8 = 35;
}

/// The value in SI-style units: `value × 10^scaler`, in the reading's own unit. Energies stay
/// in Wh / varh / VAh (no kWh conversion), powers in W / var / VA, voltages in V, currents in
/// A: every unit the meters use is already the base unit, so only the scaler applies.
pub fn to_si(r: &Reading) -> f64 {
    scaled(r.value, r.scaler)
}

/// Cumulative energy registers: class 3 attribute 2, OBIS A = 1, C = 1..4 (active/reactive,
/// import/export), D = 8 (time integral 1).
pub fn is_cumulative(r: &Reading) -> bool {
    let o = r.obis.as_bytes();
    r.class_id == 3
        && r.attribute == 2
        && o.first() == Some(&1)
        && matches!(o.get(2), Some(1..=4))
        && o.get(3) == Some(&8)
}

const ENERGY: [[&str; 5]; 4] = [
    [
        "energy.active.import",
        "energy.active.import.t1",
        "energy.active.import.t2",
        "energy.active.import.t3",
        "energy.active.import.t4",
    ],
    [
        "energy.active.export",
        "energy.active.export.t1",
        "energy.active.export.t2",
        "energy.active.export.t3",
        "energy.active.export.t4",
    ],
    [
        "energy.reactive.import",
        "energy.reactive.import.t1",
        "energy.reactive.import.t2",
        "energy.reactive.import.t3",
        "energy.reactive.import.t4",
    ],
    [
        "energy.reactive.export",
        "energy.reactive.export.t1",
        "energy.reactive.export.t2",
        "energy.reactive.export.t3",
        "energy.reactive.export.t4",
    ],
];

/// The channel name of an OBIS code (electricity, A = 1), or `None` when the pipeline does not
/// know it: `energy.{active,reactive}.{import,export}` for C = 1..4, D = 8, with `.t1`..`.t4`
/// for tariffs E = 1..4 (E = 0 is the total); `voltage.l1..l3` (C = 32/52/72, D = 7),
/// `current.l1..l3` (C = 31/51/71, D = 7), `power.active.{import,export}` (C = 1/2, D = 7).
pub fn channel(obis: &ObisCode) -> Option<&'static str> {
    let [a, _b, c, d, e, _f] = *obis.as_bytes();
    if a != 1 {
        return None;
    }
    match (c, d) {
        (1..=4, 8) => ENERGY
            .get(usize::from(c) - 1)
            .and_then(|row| row.get(usize::from(e)))
            .copied(),
        (_, 7) if e == 0 => match c {
            1 => Some("power.active.import"),
            2 => Some("power.active.export"),
            32 => Some("voltage.l1"),
            52 => Some("voltage.l2"),
            72 => Some("voltage.l3"),
            31 => Some("current.l1"),
            51 => Some("current.l2"),
            71 => Some("current.l3"),
            _ => None,
        },
        _ => None,
    }
}

/// Consumption of one channel over one span between two measured cumulative entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalConsumption {
    pub meter: MeterId,
    /// The channel name ([`channel`]), or the OBIS code's text when it has none.
    pub channel: String,
    #[serde(with = "hes_model::obis_text")]
    pub obis: ObisCode,
    /// The start of the span (the earlier entry's timestamp).
    pub start: i64,
    /// The end of the span (the later entry's timestamp): the interval end.
    pub end: i64,
    /// The energy in the register's raw units (exact, integer); `value × 10^scaler` Wh (varh
    /// for reactive channels).
    pub value: i64,
    pub scaler: i8,
    pub unit: u8,
    pub quality: Quality,
}

impl IntervalConsumption {
    /// The span's length, seconds: more than one interval after a gap.
    pub fn seconds(&self) -> i64 {
        self.end - self.start
    }

    /// The energy in Wh (varh).
    pub fn wh(&self) -> f64 {
        scaled(self.value, self.scaler)
    }
}

/// Entries with any of these flags make no interval (they are stored, flagged, but not
/// consumed).
pub const SKIP_FLAGS: u32 = Quality::NEGATIVE_CONSUMPTION
    | Quality::DUPLICATE
    | Quality::CONFLICT
    | Quality::FUTURE
    | Quality::CLOCK_SUSPECT;

/// [`intervals_with`] with the default rules (900 s, 2^32 wrap).
pub fn intervals(validated: &[ValidatedReading]) -> Vec<IntervalConsumption> {
    intervals_with(validated, &Rules::default())
}

/// Consumption between consecutive usable cumulative entries of each channel. Usable: not
/// `NEGATIVE_CONSUMPTION`, `DUPLICATE`, `CONFLICT`, `FUTURE` or `CLOCK_SUSPECT`; of entries with
/// the same time the first in order (smallest value) counts. A gap gives one longer span
/// flagged `MISSING_BEFORE`, never invented values; a wrap is unwrapped (`ROLLOVER`). The flags
/// of the later entry are carried over, `MISSING_BEFORE` and `ROLLOVER` recomputed from the pair
/// (late data may have filled the gap). Pure over the set it is given; sorted by meter,
/// channel, end.
pub fn intervals_with(validated: &[ValidatedReading], rules: &Rules) -> Vec<IntervalConsumption> {
    let skip = SKIP_FLAGS;
    let mut by_channel: BTreeMap<(MeterId, ObisCode), BTreeMap<i64, &ValidatedReading>> =
        BTreeMap::new();
    for v in validated {
        if !is_cumulative(&v.reading) || v.quality.has(skip) {
            continue;
        }
        let times = by_channel
            .entry((v.reading.meter.clone(), v.reading.obis))
            .or_default();
        match times.get(&v.reading.time) {
            Some(old) if old.reading.value <= v.reading.value => {}
            _ => {
                times.insert(v.reading.time, v);
            }
        }
    }
    let mut out = Vec::new();
    for ((meter, obis), times) in by_channel {
        let name = channel(&obis).map_or_else(|| obis.to_string(), str::to_string);
        let entries: Vec<&ValidatedReading> = times.into_values().collect();
        for w in entries.windows(2) {
            let (Some(a), Some(b)) = (w.first(), w.get(1)) else {
                continue;
            };
            let (a, b) = (&a.reading, b);
            let seconds = b.reading.time - a.time;
            let mut q = b.quality.0 & !(Quality::MISSING_BEFORE | Quality::ROLLOVER);
            if seconds > rules.interval {
                q |= Quality::MISSING_BEFORE;
            }
            let mut value = b.reading.value - a.value;
            if value < 0 {
                if rules.is_rollover(&meter, a.value, b.reading.value, b.reading.scaler, seconds) {
                    value += rules.register_modulus;
                    q |= Quality::ROLLOVER;
                } else {
                    // A drop the validator did not see (late data on both sides): no value.
                    continue;
                }
            }
            out.push(IntervalConsumption {
                meter: meter.clone(),
                channel: name.clone(),
                obis,
                start: a.time,
                end: b.reading.time,
                value,
                scaler: b.reading.scaler,
                unit: b.reading.unit,
                quality: Quality(q),
            });
        }
    }
    out
}
