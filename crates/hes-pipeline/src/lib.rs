//! Processing stages as pure functions, for the pipeline's consumer groups to run: validation
//! (VEE) that flags every reading and drops none, and the step from cumulative registers to
//! interval consumption. The bus and store wiring, aggregation and estimation build on these.

use std::collections::HashMap;

use dlms::ObisCode;
use hes_model::{MeterId, Reading};
use serde::{Deserialize, Serialize};

/// What validation found about a reading (bit flags; 0 = nothing wrong).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quality(pub u32);

impl Quality {
    pub const OK: Quality = Quality(0);
    /// One or more intervals are missing before this entry.
    pub const MISSING_BEFORE: u32 = 1 << 0;
    /// The consumption since the previous entry is far above the channel's usual.
    pub const SPIKE: u32 = 1 << 1;
    /// A cumulative register went down (and not across its wrap).
    pub const NEGATIVE_CONSUMPTION: u32 = 1 << 2;
    /// A cumulative register wrapped around its maximum.
    pub const ROLLOVER: u32 = 1 << 3;
    /// The same key was seen before with the same value.
    pub const DUPLICATE: u32 = 1 << 4;
    /// The same key was seen before with another value.
    pub const CONFLICT: u32 = 1 << 5;
    /// The meter's timestamp is ahead of the head-end's clock.
    pub const FUTURE: u32 = 1 << 6;
    /// The meter's timestamp is older than the horizon.
    pub const TOO_OLD: u32 = 1 << 7;

    pub fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }
}

/// A reading with its flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validated {
    pub reading: Reading,
    pub quality: Quality,
}

/// The rules' parameters.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The profile interval, seconds.
    pub interval: i64,
    /// Timestamps up to this far ahead of now are accepted (clock tolerance), seconds.
    pub future_tolerance: i64,
    /// Timestamps older than now minus this are flagged, seconds.
    pub horizon: i64,
    /// A step above `spike_factor` × the channel's recent mean (and above `spike_floor`) is a
    /// spike.
    pub spike_factor: i64,
    pub spike_floor: i64,
    /// The register's wrap (double-long-unsigned: 2^32).
    pub register_modulus: i64,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            interval: 900,
            future_tolerance: 300,
            horizon: 400 * 86_400,
            spike_factor: 10,
            spike_floor: 10_000,
            register_modulus: 1 << 32,
        }
    }
}

/// What a channel remembers between batches: the newest entry and recent steps.
#[derive(Debug, Clone, Default)]
struct Channel {
    last: Option<(i64, i64)>,
    recent: Vec<i64>,
}

/// Cumulative energy registers (class 3, attribute 2, OBIS C = 1..4, D = 8).
fn is_cumulative(r: &Reading) -> bool {
    let o = r.obis.as_bytes();
    r.class_id == 3 && r.attribute == 2 && matches!(o.get(2), Some(1..=4)) && o.get(3) == Some(&8)
}

/// Validation with bounded state per channel (the newest entry and the last 16 steps) and a
/// memory of keys seen (bounded by `max_keys`: the oldest are forgotten first).
#[derive(Debug)]
pub struct Validator {
    rules: Rules,
    channels: HashMap<(MeterId, ObisCode), Channel>,
    seen: HashMap<(MeterId, ObisCode, i8, i64), i64>,
    order: std::collections::VecDeque<(MeterId, ObisCode, i8, i64)>,
    max_keys: usize,
}

impl Validator {
    pub fn new(rules: Rules, max_keys: usize) -> Self {
        Self {
            rules,
            channels: HashMap::new(),
            seen: HashMap::new(),
            order: std::collections::VecDeque::new(),
            max_keys: max_keys.max(1),
        }
    }

    /// Flags every reading of `batch` (all come out, in time order per channel).
    pub fn validate(&mut self, mut batch: Vec<Reading>, now: i64) -> Vec<Validated> {
        batch.sort_by(|a, b| {
            (&a.meter, a.obis.as_bytes(), a.attribute, a.time).cmp(&(
                &b.meter,
                b.obis.as_bytes(),
                b.attribute,
                b.time,
            ))
        });
        let mut out = Vec::with_capacity(batch.len());
        for r in batch {
            let mut q = 0u32;
            if r.time > now + self.rules.future_tolerance {
                q |= Quality::FUTURE;
            }
            if r.time < now - self.rules.horizon {
                q |= Quality::TOO_OLD;
            }
            let key = r.key();
            match self.seen.get(&key) {
                Some(&v) if v == r.value => q |= Quality::DUPLICATE,
                Some(_) => q |= Quality::CONFLICT,
                None => {
                    self.seen.insert(key.clone(), r.value);
                    self.order.push_back(key);
                    while self.order.len() > self.max_keys {
                        if let Some(old) = self.order.pop_front() {
                            self.seen.remove(&old);
                        }
                    }
                }
            }
            if is_cumulative(&r) && q & (Quality::DUPLICATE | Quality::CONFLICT) == 0 {
                q |= self.step(&r);
            }
            out.push(Validated {
                reading: r,
                quality: Quality(q),
            });
        }
        out
    }

    /// The checks between a cumulative entry and the channel's previous one.
    fn step(&mut self, r: &Reading) -> u32 {
        let rules = &self.rules;
        let ch = self.channels.entry((r.meter.clone(), r.obis)).or_default();
        let mut q = 0;
        if let Some((t0, v0)) = ch.last {
            if r.time <= t0 {
                // Older than what the channel has seen: no step to judge.
                return 0;
            }
            if r.time - t0 > rules.interval {
                q |= Quality::MISSING_BEFORE;
            }
            let mut delta = r.value - v0;
            if delta < 0 {
                // Down near the top of the register and up from the bottom: a wrap.
                if v0 > rules.register_modulus * 9 / 10 && r.value < rules.register_modulus / 10 {
                    q |= Quality::ROLLOVER;
                    delta += rules.register_modulus;
                } else {
                    q |= Quality::NEGATIVE_CONSUMPTION;
                }
            }
            let intervals = ((r.time - t0) / rules.interval.max(1)).max(1);
            let per_interval = delta / intervals;
            if !ch.recent.is_empty() && delta >= 0 {
                let mean = ch.recent.iter().sum::<i64>() / ch.recent.len() as i64;
                if per_interval > rules.spike_floor
                    && per_interval > mean.max(1) * rules.spike_factor
                {
                    q |= Quality::SPIKE;
                }
            }
            if q & (Quality::SPIKE | Quality::NEGATIVE_CONSUMPTION) == 0 {
                ch.recent.push(per_interval);
                if ch.recent.len() > 16 {
                    ch.recent.remove(0);
                }
            }
        }
        if q & Quality::NEGATIVE_CONSUMPTION == 0 {
            ch.last = Some((r.time, r.value));
        }
        q
    }
}

/// Consumption of one channel over one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub meter: MeterId,
    #[serde(with = "hes_model::obis_text")]
    pub obis: ObisCode,
    /// The end of the span (the later entry's timestamp).
    pub end: i64,
    /// The span's length, seconds: more than one interval after a gap.
    pub seconds: i64,
    /// Raw units of the register (apply its scaler).
    pub value: i64,
    pub quality: Quality,
}

/// Consumption between consecutive valid cumulative entries of each channel (a gap yields one
/// longer span, flagged, not invented intervals; rollovers are unwrapped; negative steps,
/// duplicates and conflicts give none).
pub fn intervals(validated: &[Validated], rules: &Rules) -> Vec<Interval> {
    let mut by_channel: HashMap<(MeterId, ObisCode), Vec<&Validated>> = HashMap::new();
    for v in validated {
        let skip = Quality::NEGATIVE_CONSUMPTION | Quality::DUPLICATE | Quality::CONFLICT;
        if is_cumulative(&v.reading) && !v.quality.has(skip) {
            by_channel
                .entry((v.reading.meter.clone(), v.reading.obis))
                .or_default()
                .push(v);
        }
    }
    let mut out = Vec::new();
    for ((meter, obis), mut vs) in by_channel {
        vs.sort_by_key(|v| v.reading.time);
        for w in vs.windows(2) {
            let (Some(a), Some(b)) = (w.first(), w.get(1)) else {
                continue;
            };
            let mut value = b.reading.value - a.reading.value;
            if b.quality.has(Quality::ROLLOVER) {
                value += rules.register_modulus;
            }
            out.push(Interval {
                meter: meter.clone(),
                obis,
                end: b.reading.time,
                seconds: b.reading.time - a.reading.time,
                value,
                quality: b.quality,
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.meter, a.obis.as_bytes(), a.end).cmp(&(&b.meter, b.obis.as_bytes(), b.end))
    });
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use hes_model::Source;

    const T0: i64 = 1_795_651_200;
    const NOW: i64 = T0 + 86_400;

    fn r(meter: &str, time: i64, value: i64) -> Reading {
        Reading {
            meter: meter.into(),
            obis: ObisCode::new(1, 0, 1, 8, 0, 255),
            class_id: 3,
            attribute: 2,
            time,
            value,
            scaler: 0,
            unit: 30,
            status: 0,
            source: Source::Scheduled,
            received_at: NOW,
        }
    }

    fn flags(v: &[Validated]) -> Vec<u32> {
        v.iter().map(|x| x.quality.0).collect()
    }

    #[test]
    fn a_clean_series_passes_and_gives_its_intervals() {
        let mut val = Validator::new(Rules::default(), 1000);
        let batch: Vec<Reading> = (0..8)
            .map(|k| r("M", T0 + k * 900, 1000 + k * 50))
            .collect();
        let v = val.validate(batch, NOW);
        assert_eq!(flags(&v), vec![0; 8]);
        let iv = intervals(&v, &Rules::default());
        assert_eq!(iv.len(), 7);
        assert!(iv.iter().all(|i| i.value == 50 && i.seconds == 900));
    }

    #[test]
    fn each_rule_flags_what_it_should() {
        let rules = Rules::default();
        let mut val = Validator::new(rules.clone(), 1000);
        let mut batch = vec![
            r("M", T0, 1000),
            r("M", T0 + 900, 1050),
            r("M", T0 + 1800, 1100),
            // A gap of two intervals.
            r("M", T0 + 4500, 1250),
            // A spike.
            r("M", T0 + 5400, 1_001_250),
        ];
        // Out of order in the batch: handled by time.
        batch.reverse();
        let v = val.validate(batch, NOW);
        let q = |t: i64| v.iter().find(|x| x.reading.time == t).unwrap().quality;
        assert!(q(T0 + 4500).has(Quality::MISSING_BEFORE));
        assert!(q(T0 + 5400).has(Quality::SPIKE));
        assert_eq!(v.len(), 5, "nothing dropped");
        // A register going down; a wrap; duplicates and conflicts; future and old stamps.
        let v = val.validate(vec![r("M", T0 + 6300, 900)], NOW);
        assert!(v[0].quality.has(Quality::NEGATIVE_CONSUMPTION));
        let top = (1i64 << 32) - 100;
        let mut w = Validator::new(rules.clone(), 1000);
        let v = w.validate(
            vec![
                r("W", T0, top - 50),
                r("W", T0 + 900, top),
                r("W", T0 + 1800, 30),
            ],
            NOW,
        );
        assert!(v[2].quality.has(Quality::ROLLOVER));
        let iv = intervals(&v, &rules);
        assert_eq!(iv.last().unwrap().value, 130, "unwrapped across 2^32");
        let v = w.validate(vec![r("W", T0 + 1800, 30), r("W", T0 + 1800, 31)], NOW);
        assert!(v[0].quality.has(Quality::DUPLICATE));
        assert!(v[1].quality.has(Quality::CONFLICT));
        let v = w.validate(
            vec![r("W", NOW + 3600, 40), r("W", T0 - 500 * 86_400, 1)],
            NOW,
        );
        let f = |t: i64| v.iter().find(|x| x.reading.time == t).unwrap().quality;
        assert!(f(NOW + 3600).has(Quality::FUTURE));
        assert!(f(T0 - 500 * 86_400).has(Quality::TOO_OLD));
    }

    #[test]
    fn batches_in_any_order_give_the_same_intervals_and_drop_nothing() {
        // A deterministic shuffle of a few thousand entries over 20 meters.
        let mut all = Vec::new();
        for m in 0..20 {
            for k in 0..150 {
                all.push(r(&format!("M{m}"), T0 + k * 900, 10_000 + k * (m + 3)));
            }
        }
        let mut s: u64 = 7;
        let mut shuffled = all.clone();
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let rules = Rules::default();
        let a = Validator::new(rules.clone(), 100_000).validate(all.clone(), NOW);
        let b = Validator::new(rules.clone(), 100_000).validate(shuffled, NOW);
        assert_eq!(a.len(), all.len());
        assert_eq!(intervals(&a, &rules), intervals(&b, &rules));
        let total: i64 = intervals(&a, &rules).iter().map(|i| i.value).sum();
        let expected: i64 = (0..20).map(|m| 149 * (m + 3)).sum();
        assert_eq!(total, expected, "intervals sum to the register differences");
    }
}
