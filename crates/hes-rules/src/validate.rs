//! Validation (VEE): every reading comes out with quality flags; none is dropped.

use std::collections::{HashMap, VecDeque};

use dlms::ObisCode;
use hes_model::{MeterId, Quality, Reading, Source, ValidatedReading};

pub use crate::rules::Rules;
use crate::transform::{is_cumulative, scaled};

/// What a channel remembers between batches: the newest accepted entry, and its own history
/// of steps: the largest per interval, fading (half of it gone after `peak_half_life` steps),
/// and how many steps it has seen.
#[derive(Debug, Clone, Default)]
struct Channel {
    /// The newest entry usable as a reference (time, raw value).
    last: Option<(i64, i64)>,
    /// The newest entry's time, usable or not.
    newest: i64,
    /// The newest entry, when it was below the reference.
    down: Option<(i64, i64)>,
    peak: f64,
    steps: u32,
}

type Key = (MeterId, ObisCode, i8, i64);

/// Validation with bounded state: per (meter, channel) the newest accepted entry and a few
/// numbers of its history; the keys seen, up to `max_keys` (the oldest forgotten first).
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
        // Two entries in a row below the reference that agree with each other: the reference
        // was the odd one (a glitch no history could judge, such as a channel's first entry),
        // so the lower level is the register's.
        if let (Some((_, v0)), Some((td, vd))) = (ch.last, ch.down) {
            if r.value < v0
                && r.time > td
                && r.value >= vd
                && scaled(r.value - vd, r.scaler) <= rules.max_energy_wh(&r.meter, r.time - td)
            {
                ch.last = Some((td, vd));
            }
        }
        ch.down = None;
        if let Some((t0, v0)) = ch.last {
            if r.time <= ch.newest.max(t0) {
                // Older than what the channel has seen (late data): no step to judge here;
                // `intervals` recomputes over the full set.
                return 0;
            }
            let seconds = r.time - t0;
            let n = (seconds / rules.interval.max(1)).max(1);
            // Missing: no entry at all in between (one that was there but not usable as the
            // reference, a register glitch, is no gap).
            if r.time - ch.newest.max(t0) > rules.interval {
                q |= Quality::MISSING_BEFORE;
            }
            let mut delta = r.value - v0;
            if delta < 0 {
                if rules.is_rollover(&r.meter, v0, r.value, r.scaler, seconds) {
                    q |= Quality::ROLLOVER;
                    delta += rules.register_modulus;
                } else {
                    q |= Quality::NEGATIVE_CONSUMPTION;
                    ch.down = Some((r.time, r.value));
                }
            }
            if delta >= 0 {
                let per_interval = delta / n;
                if scaled(delta, r.scaler) > rules.max_energy_wh(&r.meter, n * rules.interval) {
                    q |= Quality::OUT_OF_RANGE;
                }
                // Judged against the channel's own history only once it holds a whole daily
                // cycle: a solar ramp from a night of zeros, or a shop opening after a quiet
                // night, is what the channel does every day, not a spike.
                if ch.steps >= rules.spike_min_history
                    && scaled(per_interval, r.scaler) > rules.spike_floor_wh
                    && per_interval as f64 > ch.peak.max(1.0) * rules.spike_factor as f64
                {
                    q |= Quality::SPIKE;
                }
                if q & (Quality::SPIKE | Quality::OUT_OF_RANGE) == 0 {
                    let fade = 0.5f64.powf(n as f64 / rules.peak_half_life.max(1) as f64);
                    ch.peak = (ch.peak * fade).max(per_interval as f64);
                    ch.steps = ch
                        .steps
                        .saturating_add(n.clamp(1, i64::from(u32::MAX)) as u32);
                }
            }
        }
        ch.newest = ch.newest.max(r.time);
        // A register that went down, or one beyond what the meter can physically register,
        // is not what the next entry is measured from.
        if q & (Quality::NEGATIVE_CONSUMPTION | Quality::OUT_OF_RANGE) == 0 {
            ch.last = Some((r.time, r.value));
        }
        q
    }
}
