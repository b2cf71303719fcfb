//! Validation (VEE): every reading comes out with quality flags; none is dropped.

use std::collections::{HashMap, VecDeque};

use dlms::ObisCode;
use hes_model::{MeterId, Quality, Reading, Source, ValidatedReading};

pub use crate::rules::Rules;
use crate::transform::{is_cumulative, scaled};

/// What a channel remembers between batches: the newest accepted entry and recent steps.
#[derive(Debug, Clone, Default)]
struct Channel {
    last: Option<(i64, i64)>,
    recent: VecDeque<i64>,
}

type Key = (MeterId, ObisCode, i8, i64);

/// Validation with bounded state: per (meter, channel) the newest accepted entry and the last
/// `spike_window` steps; the keys seen, up to `max_keys` (the oldest forgotten first).
#[derive(Debug)]
pub struct Validator {
    rules: Rules,
    channels: HashMap<(MeterId, ObisCode), Channel>,
    seen: HashMap<Key, i64>,
    order: VecDeque<Key>,
    max_keys: usize,
}

fn source_rank(s: Source) -> u8 {
    match s {
        Source::Scheduled => 0,
        Source::OnDemand => 1,
        Source::Push => 2,
    }
}

/// A total order on readings: per channel by time, then by reception (the first received is
/// the one later copies are compared with), ties broken by every other field, so that a batch
/// gives the same result whatever its order.
fn order_key(r: &Reading) -> impl Ord + '_ {
    (
        (&r.meter, r.obis, r.attribute, r.time, r.received_at),
        (r.value, r.scaler, r.unit, r.status, r.class_id),
        source_rank(r.source),
    )
}

impl Validator {
    pub fn new(rules: Rules, max_keys: usize) -> Self {
        Self {
            rules,
            channels: HashMap::new(),
            seen: HashMap::new(),
            order: VecDeque::new(),
            max_keys: max_keys.max(1),
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Flags every reading of `batch`: all come out, sorted per channel by time.
    pub fn validate(&mut self, mut batch: Vec<Reading>, now: i64) -> Vec<ValidatedReading> {
        batch.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
        let mut out = Vec::with_capacity(batch.len());
        for r in batch {
            let q = self.judge(&r, now);
            out.push(ValidatedReading {
                reading: r,
                quality: Quality(q),
            });
        }
        out
    }

    fn judge(&mut self, r: &Reading, now: i64) -> u32 {
        let rules = &self.rules;
        let mut q = 0u32;
        if r.time > now + rules.future_tolerance {
            q |= Quality::FUTURE;
        }
        if r.time < now - rules.horizon {
            q |= Quality::TOO_OLD;
        }
        let lag = r.received_at - r.time;
        if lag < -rules.future_tolerance || lag > rules.max_receive_lag {
            q |= Quality::CLOCK_SUSPECT;
        }
        let cumulative = is_cumulative(r);
        if cumulative {
            let off = r.time.rem_euclid(rules.interval.max(1));
            if off.min(rules.interval - off) > rules.boundary_tolerance {
                q |= Quality::CLOCK_SUSPECT;
            }
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
        let unusable =
            Quality::DUPLICATE | Quality::CONFLICT | Quality::FUTURE | Quality::CLOCK_SUSPECT;
        if cumulative && q & unusable == 0 {
            q |= self.step(r);
        }
        q
    }

    /// The checks between a cumulative entry and the channel's previous accepted one.
    fn step(&mut self, r: &Reading) -> u32 {
        let rules = &self.rules;
        let ch = self.channels.entry((r.meter.clone(), r.obis)).or_default();
        let mut q = 0;
        if let Some((t0, v0)) = ch.last {
            if r.time <= t0 {
                // Older than what the channel has seen (late data): no step to judge here;
                // `intervals` recomputes over the full set.
                return 0;
            }
            let seconds = r.time - t0;
            let n = (seconds / rules.interval.max(1)).max(1);
            if seconds > rules.interval {
                q |= Quality::MISSING_BEFORE;
            }
            let mut delta = r.value - v0;
            if delta < 0 {
                if rules.is_rollover(&r.meter, v0, r.value, r.scaler, seconds) {
                    q |= Quality::ROLLOVER;
                    delta += rules.register_modulus;
                } else {
                    q |= Quality::NEGATIVE_CONSUMPTION;
                }
            }
            if delta >= 0 {
                let per_interval = delta / n;
                if scaled(delta, r.scaler) > rules.max_energy_wh(&r.meter, n * rules.interval) {
                    q |= Quality::OUT_OF_RANGE;
                }
                if !ch.recent.is_empty() {
                    let mut sorted: Vec<i64> = ch.recent.iter().copied().collect();
                    sorted.sort_unstable();
                    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
                    if scaled(per_interval, r.scaler) > rules.spike_floor_wh
                        && per_interval > median.max(1).saturating_mul(rules.spike_factor)
                    {
                        q |= Quality::SPIKE;
                    }
                }
                if q & (Quality::SPIKE | Quality::OUT_OF_RANGE) == 0 {
                    ch.recent.push_back(per_interval);
                    while ch.recent.len() > rules.spike_window.max(1) {
                        ch.recent.pop_front();
                    }
                }
            }
        }
        if q & Quality::NEGATIVE_CONSUMPTION == 0 {
            ch.last = Some((r.time, r.value));
        }
        q
    }
}
