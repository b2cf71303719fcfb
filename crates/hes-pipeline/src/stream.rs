//! Streaming aggregation: per channel, the newest reading used and the partial hour, day and
//! month it is in, so that a batch arriving in order is aggregated from itself alone (no read
//! back of readings or finer aggregates). The state is bounded and only an accelerator: a
//! channel it does not know is picked up from the store ([`Store::neighbours`] and the stored
//! aggregates of its open periods), and data that is late or overlaps what is stored goes the
//! slow way ([`crate::recompute::recompute_meters`]: everything touched is recomputed from the store).
//! Either way the stored aggregates are what a recomputation from all stored readings gives.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dlms::ObisCode;
use hes_model::{Aggregate, MeterId, Period, Quality, ValidatedReading};
use hes_store::{Store, StoreError};

use hes_rules::{
    accumulate, estimate_gaps_with, intervals_with, is_cumulative, IntervalConsumption, Partial,
    Rules, SKIP_FLAGS,
};

use crate::recompute::recompute_meters_processed;
use crate::stage::StageConfig;

type ChanKey = (MeterId, ObisCode, i8);

const LEVELS: [Period; 3] = [Period::Hour, Period::Day, Period::Month];

/// What is known of one channel: its newest reading used, and for each level the partial of
/// the period the next interval (starting at that reading) falls in.
#[derive(Debug, Clone)]
struct ChanState {
    last: Option<ValidatedReading>,
    open: [(i64, Partial); 3],
}

impl ChanState {
    fn empty() -> Self {
        Self {
            last: None,
            open: [(i64::MIN, Partial::default()); 3],
        }
    }
}

/// A batch's channels sorted out before it is stored: which go the fast way (with their
/// state) and which the slow.
#[derive(Debug, Default)]
pub struct Plan {
    fast: Vec<(ChanKey, ChanState, Vec<ValidatedReading>)>,
    slow: Vec<ValidatedReading>,
}

impl Plan {
    /// Channels aggregated from the batch alone, and readings going the slow way.
    pub fn sizes(&self) -> (usize, usize) {
        (self.fast.len(), self.slow.len())
    }
}

/// What aggregating a batch wrote: the meters' aggregates, and the intervals (gaps estimated)
/// they were made of.
#[derive(Debug, Default)]
pub struct Applied {
    pub aggregates: Vec<Aggregate>,
    pub intervals: Vec<IntervalConsumption>,
}

/// The streaming aggregator of one process-stage consumer.
#[derive(Debug)]
pub struct StreamAggregator {
    rules: Rules,
    cfg: StageConfig,
    max_keys: usize,
    state: HashMap<ChanKey, ChanState>,
}

fn channel_name(obis: &ObisCode) -> String {
    hes_rules::channel(obis).map_or_else(|| obis.to_string(), str::to_string)
}

impl StreamAggregator {
    pub fn new(rules: Rules, cfg: StageConfig, max_keys: usize) -> Self {
        Self {
            rules,
            cfg,
            max_keys: max_keys.max(1),
            state: HashMap::new(),
        }
    }

    /// Sorts a batch's channels out, before the batch is stored (whether the store holds
    /// anything at or after a channel's first entry is asked of the store as it was).
    pub async fn plan(
        &mut self,
        store: &dyn Store,
        batch: &[ValidatedReading],
    ) -> Result<Plan, StoreError> {
        let mut by_key: BTreeMap<ChanKey, Vec<ValidatedReading>> = BTreeMap::new();
        for v in batch {
            if is_cumulative(&v.reading) {
                let r = &v.reading;
                by_key
                    .entry((r.meter.clone(), r.obis, r.attribute))
                    .or_default()
                    .push(v.clone());
            }
        }
        let mut plan = Plan::default();
        // Every channel is checked against the store (one round trip for the batch): the state
        // is used only when the store's newest reading before the batch is the state's own and
        // nothing is stored at or after the batch's first entry. So another consumer having
        // written the channel meanwhile (after a rebalance, say) is noticed, never merged into.
        let mut listed: Vec<(ChanKey, Vec<ValidatedReading>, Option<ChanState>)> = Vec::new();
        for (key, mut list) in by_key {
            list.sort_by_key(|v| v.reading.time);
            let st = self.state.remove(&key);
            listed.push((key, list, st));
        }
        let keys: Vec<hes_store::ReadingKey> = listed
            .iter()
            .map(|((m, o, a), list, _)| {
                let first = list.first().map_or(i64::MIN, |v| v.reading.time);
                (m.clone(), *o, *a, first)
            })
            .collect();
        let found = store.neighbours(&keys).await?;
        // Channels picked up after a previous reading: their open periods' partials come from
        // the stored aggregates.
        let mut seeds: Vec<(ChanKey, ValidatedReading, Vec<ValidatedReading>)> = Vec::new();
        for ((key, list, st), (prev, later)) in listed.into_iter().zip(found) {
            if later {
                // Late, or overlapping what is stored: the slow way.
                plan.slow.extend(list);
                continue;
            }
            let prev_time = prev.as_ref().map(|p| p.reading.time);
            match (st, prev) {
                (Some(st), _) if st.last.as_ref().map(|l| l.reading.time) == prev_time => {
                    plan.fast.push((key, st, list));
                }
                (_, None) => plan.fast.push((key, ChanState::empty(), list)),
                (_, Some(p)) => seeds.push((key, p, list)),
            }
        }
        if seeds.is_empty() {
            return Ok(plan);
        }
        let subjects: Vec<String> = seeds
            .iter()
            .map(|(k, _, _)| k.0 .0.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut stored: HashMap<(String, String, Period, i64), Partial> = HashMap::new();
        for level in LEVELS {
            let starts = seeds.iter().map(|(_, p, _)| level.start(p.reading.time));
            let (Some(lo), Some(hi)) = (starts.clone().min(), starts.max()) else {
                continue;
            };
            for a in store.aggregates(&subjects, None, level, lo, hi).await? {
                stored.insert(
                    (a.subject.clone(), a.channel.clone(), level, a.period_start),
                    partial_of(&a),
                );
            }
        }
        for (key, prev, list) in seeds {
            let ch = channel_name(&key.1);
            let mut st = ChanState::empty();
            for (i, level) in LEVELS.into_iter().enumerate() {
                let start = level.start(prev.reading.time);
                let p = stored
                    .get(&(key.0 .0.clone(), ch.clone(), level, start))
                    .copied()
                    .unwrap_or_default();
                if let Some(slot) = st.open.get_mut(i) {
                    *slot = (start, p);
                }
            }
            st.last = Some(prev);
            plan.fast.push((key, st, list));
        }
        Ok(plan)
    }

    /// Aggregates a planned batch that is now stored: writes the hours, days and months it
    /// touches for each meter, and returns them.
    pub async fn apply(
        &mut self,
        store: &dyn Store,
        plan: Plan,
    ) -> Result<Vec<Aggregate>, StoreError> {
        Ok(self.apply_processed(store, plan).await?.aggregates)
    }

    /// [`Self::apply`], also returning the batch's intervals (gaps estimated) that the
    /// aggregates were made of: what `hes.readings.processed` carries.
    pub async fn apply_processed(
        &mut self,
        store: &dyn Store,
        plan: Plan,
    ) -> Result<Applied, StoreError> {
        let interval = self.rules.interval.max(1);
        let mut out_ivs: Vec<IntervalConsumption> = Vec::new();
        let mut fresh: Vec<Aggregate> = Vec::new();
        let mut reopened: Vec<Aggregate> = Vec::new();
        let mut next_state: Vec<(ChanKey, ChanState)> = Vec::new();
        for (key, st, list) in plan.fast {
            let mut input = Vec::with_capacity(list.len() + 1);
            input.extend(st.last.iter().cloned());
            input.extend(list.iter().cloned());
            let ivs = estimate_gaps_with(&intervals_with(&input, &self.rules), interval);
            let newest = list
                .iter()
                .rev()
                .find(|v| !v.quality.has(SKIP_FLAGS))
                .cloned()
                .or(st.last.clone());
            let mut new = ChanState::empty();
            new.last = newest.clone();
            for (i, level) in LEVELS.into_iter().enumerate() {
                let (open_start, open) = st.open.get(i).copied().unwrap_or_default();
                let acc = accumulate(&ivs, level, interval);
                let next_start = newest.as_ref().map(|n| level.start(n.reading.time));
                let mut next_open = Partial::default();
                for ((meter, channel, start), mut p) in acc {
                    let is_open = st.last.is_some() && start == open_start;
                    if is_open {
                        p.merge(&open);
                    }
                    let row = p.finish(&meter.0, &channel, level, start, interval);
                    if Some(start) == next_start {
                        next_open = p;
                    }
                    if is_open {
                        reopened.push(row);
                    } else {
                        fresh.push(row);
                    }
                }
                if let (Some(s), Some(slot)) = (next_start, new.open.get_mut(i)) {
                    // No new interval in the still-open period: it keeps what it had.
                    if s == open_start && next_open == Partial::default() {
                        next_open = open;
                    }
                    *slot = (s, next_open);
                }
            }
            next_state.push((key, new));
            out_ivs.extend(ivs);
        }
        store.insert_aggregates(&fresh).await?;
        store.upsert_aggregates(&reopened).await?;
        let mut rows = fresh;
        rows.extend(reopened);
        if !plan.slow.is_empty() {
            let (r, ivs) =
                recompute_meters_processed(store, &self.rules, &self.cfg, &plan.slow).await?;
            rows.extend(r);
            out_ivs.extend(ivs);
        }
        // Bounded: past the limit, channels are forgotten (they are picked up from the store
        // when they come again).
        if self.state.len() + next_state.len() > self.max_keys {
            let excess = self.state.len() + next_state.len() - self.max_keys;
            let drop: Vec<ChanKey> = self.state.keys().take(excess).cloned().collect();
            for k in drop {
                self.state.remove(&k);
            }
        }
        for (k, s) in next_state {
            if self.state.len() < self.max_keys {
                self.state.insert(k, s);
            }
        }
        Ok(Applied {
            aggregates: rows,
            intervals: out_ivs,
        })
    }

    /// Channels currently known.
    pub fn known(&self) -> usize {
        self.state.len()
    }
}

/// A stored aggregate as the partial of its period (an incomplete one with a gap is marked
/// `MISSING_BEFORE`, see [`accumulate`]).
fn partial_of(a: &Aggregate) -> Partial {
    Partial {
        total: a.total,
        count: a.count,
        gap: a.quality_worst.has(Quality::MISSING_BEFORE),
        quality: a.quality_worst,
    }
}
