//! Interval consumption: the energy between consecutive measured cumulative entries.

use std::collections::BTreeMap;

use dlms::ObisCode;
use hes_model::{MeterId, Quality, ValidatedReading};
use serde::{Deserialize, Serialize};

use crate::rules::Rules;
use crate::transform::{channel, is_cumulative, scaled};

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
