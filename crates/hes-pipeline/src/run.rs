//! The stages as consumer groups on the bus (at-least-once, idempotent effects):
//!
//! - **validate** (group `validate`): `hes.readings.raw` → [`Validator`] →
//!   `hes.readings.validated`. Offsets are committed once the validated batch is published.
//! - **process** (group `process`): `hes.readings.validated`, `hes.events` and
//!   `hes.job-results` → the store (readings with their flags, events), then transform,
//!   estimate and aggregate: the hours, days and months the batch touches are recomputed from
//!   the stored readings (so late data updates them and a replay changes nothing), per meter
//!   and per group, and upserted. Then the cache (latest values, last seen) and the live
//!   channels. Offsets are committed only after the store has committed.
//!
//! A record that does not decode goes to `hes.dead-letter` with the reason (and is counted),
//! never silently dropped. A store that fails (PostgreSQL restarting) is retried with backoff
//! and nothing is committed meanwhile; the cache is derived state: its failures are counted
//! and retried on the next batch's values, they never hold the pipeline.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hes_bus::{Bus, BusError, Consumer, Delivery, Payload, Record};
use hes_cache::Cache;
use hes_model::{topics, Aggregate, Event, JobResult, MeterId, Period, ValidatedReading};
use hes_store::Store;
use tokio::sync::watch;

use crate::stream::StreamAggregator;
use crate::{aggregate_with, estimate_gaps_with, group_total, intervals_with, rollup};
use crate::{is_cumulative, Rules, Validator};

/// Where records that do not decode go, with the reason.
pub const DEAD_LETTER: &str = "hes.dead-letter";
/// Live channels of the cache's pub/sub (the API fans them out over WebSocket).
pub const LIVE_READINGS: &str = "live.readings";
pub const LIVE_EVENTS: &str = "live.events";
pub const LIVE_JOBS: &str = "live.jobs";

/// How a stage batches.
#[derive(Debug, Clone)]
pub struct StageConfig {
    /// The consumer group (the stage's name unless told otherwise).
    pub group: String,
    /// At most this many entries (readings + events) per batch.
    pub max_batch: usize,
    /// At most this long gathering a batch.
    pub linger: Duration,
    /// Readings this far around the batch's are read back to compute its intervals: gaps up
    /// to it are estimated; longer ones leave the periods incomplete.
    pub context_s: i64,
    /// Partitions of the topics the stage creates.
    pub partitions: i32,
    /// The process stage validates raw readings itself (one consumer group, one hop less)
    /// instead of taking them validated from `hes.readings.validated`; no validate stage runs
    /// then, and nothing is published on that topic.
    pub inline_validation: bool,
}

impl StageConfig {
    pub fn new(group: &str) -> Self {
        Self {
            group: group.to_string(),
            max_batch: 20_000,
            linger: Duration::from_millis(200),
            context_s: 6 * 3600,
            partitions: hes_bus::DEFAULT_PARTITIONS,
            inline_validation: false,
        }
    }
}

/// A stage's counters.
#[derive(Debug, Default)]
pub struct StageStats {
    pub batches: AtomicU64,
    pub readings: AtomicU64,
    pub stored: AtomicU64,
    pub events: AtomicU64,
    pub aggregates: AtomicU64,
    pub dead_letters: AtomicU64,
    pub store_retries: AtomicU64,
    pub cache_errors: AtomicU64,
    /// Entries flagged by validation.
    pub flagged: AtomicU64,
    /// Time spent storing readings and events, and recomputing aggregates, microseconds.
    pub store_us: AtomicU64,
    pub aggregate_us: AtomicU64,
}

impl StageStats {
    pub fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}

/// Which groups a meter is in, and who is in a group (`key=value`).
pub trait Groups: Send + Sync {
    fn of(&self, meter: &MeterId) -> Vec<String>;
    fn members(&self, group: &str) -> Vec<MeterId>;
}

/// No groups: per-meter aggregates only.
#[derive(Debug, Default)]
pub struct NoGroups;

impl Groups for NoGroups {
    fn of(&self, _: &MeterId) -> Vec<String> {
        Vec::new()
    }
    fn members(&self, _: &str) -> Vec<MeterId> {
        Vec::new()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("store: {0}")]
    Store(#[from] hes_store::StoreError),
}

/// A batch gathered from a consumer: the deliveries (to commit) and their decoded entries.
struct Gathered {
    deliveries: Vec<Delivery>,
    entries: usize,
}

/// Gathers deliveries until `max_batch` entries or `linger`; `None` when told to stop.
async fn gather(
    consumer: &mut dyn Consumer,
    cfg: &StageConfig,
    stop: &mut watch::Receiver<bool>,
    mut take: impl FnMut(&Delivery) -> usize,
) -> Result<Option<Gathered>, StageError> {
    let mut g = Gathered {
        deliveries: Vec::new(),
        entries: 0,
    };
    let until = tokio::time::Instant::now() + cfg.linger;
    while g.entries < cfg.max_batch {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let next = tokio::select! {
            d = consumer.next(left) => d,
            _ = stop.changed() => return Ok(None),
        };
        let next = match next {
            Ok(n) => n,
            // The broker going away is transient for the client: wait a little, go on.
            Err(e) => {
                tracing::warn!(error = %e, "consuming failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                break;
            }
        };
        let Some(d) = next else { break };
        g.entries += take(&d);
        g.deliveries.push(d);
    }
    if *stop.borrow() {
        return Ok(None);
    }
    Ok(Some(g))
}

/// Commits the newest delivery of each partition. A rebalance refusing the commit is fine:
/// the records go to the partition's new owner, whose effects are idempotent.
async fn commit(consumer: &mut dyn Consumer, deliveries: Vec<Delivery>) -> Result<(), StageError> {
    let mut newest: BTreeMap<(String, i32), Delivery> = BTreeMap::new();
    for d in deliveries {
        let k = (d.topic.clone(), d.partition);
        match newest.get(&k) {
            Some(n) if n.offset >= d.offset => {}
            _ => {
                newest.insert(k, d);
            }
        }
    }
    let newest: Vec<Delivery> = newest.into_values().collect();
    match consumer.commit_all(&newest).await {
        Ok(()) | Err(BusError::Rebalanced(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates the stage's topics where the bus can (an adapter without topic management is fine).
async fn ensure(bus: &dyn Bus, names: &[&str], cfg: &StageConfig) -> Result<(), StageError> {
    match bus.ensure_topics(names, cfg.partitions).await {
        Ok(()) | Err(BusError::Unsupported(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Sends an undecodable record to [`DEAD_LETTER`], keyed as it was, with the reason.
async fn dead_letter(bus: &dyn Bus, d: &Delivery, why: &str, stats: &StageStats) {
    stats.dead_letters.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(topic = %d.topic, partition = d.partition, offset = d.offset, %why, "dead letter");
    let note = serde_json::json!({
        "topic": d.topic, "partition": d.partition, "offset": d.offset, "error": why,
        "payload_hex": hex_prefix(&d.payload),
    });
    let rec = Record {
        key: d.key.clone(),
        payload: note.to_string().into_bytes(),
    };
    if let Err(e) = bus.publish(DEAD_LETTER, vec![rec]).await {
        tracing::error!(error = %e, "dead letter not published");
    }
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().take(4096).map(|x| format!("{x:02x}")).collect()
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Retries `f` until it succeeds or the stage is told to stop (then `None`): a store or a
/// broker that is restarting is waited for, with backoff, and nothing is committed meanwhile.
async fn retry<T, E, F, Fut>(
    what: &str,
    stats: &StageStats,
    stop: &watch::Receiver<bool>,
    mut f: F,
) -> Option<T>
where
    E: std::fmt::Display + Sync,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut wait = Duration::from_millis(100);
    loop {
        match f().await {
            Ok(v) => return Some(v),
            Err(e) => {
                if !backoff(what, &e, stats, stop, &mut wait).await {
                    return None;
                }
            }
        }
    }
}

/// Aggregates a stored (or being stored) batch: per meter, then the groups' days and months.
async fn aggregate(
    agg: &mut StreamAggregator,
    store: &dyn Store,
    groups: &dyn Groups,
    plan: crate::stream::Plan,
) -> Result<usize, hes_store::StoreError> {
    let rows = agg.apply(store, plan).await?;
    let g = group_totals(store, groups, &rows).await?;
    Ok(rows.len() + g)
}

/// Waits before retrying after `e`; false when the stage is told to stop instead.
async fn backoff(
    what: &str,
    e: &(dyn std::fmt::Display + Sync),
    stats: &StageStats,
    stop: &watch::Receiver<bool>,
    wait: &mut Duration,
) -> bool {
    stats.store_retries.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(error = %e, "{what} failed; retrying in {wait:?}");
    if *stop.borrow() {
        return false;
    }
    tokio::time::sleep(*wait).await;
    *wait = (*wait * 2).min(Duration::from_secs(5));
    true
}

/// The validate stage: raw readings in, flagged readings out, until `stop`.
pub async fn run_validate(
    bus: Arc<dyn Bus>,
    rules: Rules,
    cfg: StageConfig,
    stats: Arc<StageStats>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), StageError> {
    ensure(
        &*bus,
        &[
            topics::READINGS_RAW,
            topics::READINGS_VALIDATED,
            DEAD_LETTER,
        ],
        &cfg,
    )
    .await?;
    let mut consumer = bus.subscribe(&[topics::READINGS_RAW], &cfg.group).await?;
    // Per-meter state for at most a million channels (older ones are forgotten first).
    let mut validator = Validator::new(rules, 1_000_000);
    loop {
        let mut batch = Vec::new();
        let mut bad = Vec::new();
        let Some(g) = gather(&mut *consumer, &cfg, &mut stop, |d| match d
            .decode::<hes_model::Reading>()
        {
            Ok(rs) => {
                let n = rs.len();
                batch.extend(rs);
                n
            }
            Err(e) => {
                bad.push((d.clone(), e.to_string()));
                1
            }
        })
        .await?
        else {
            let _ = consumer.close(Duration::from_secs(5)).await;
            return Ok(());
        };
        if g.deliveries.is_empty() {
            continue;
        }
        for (d, why) in &bad {
            dead_letter(&*bus, d, why, &stats).await;
        }
        stats
            .readings
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let validated = validator.validate(batch, now_s());
        let flagged = validated.iter().filter(|v| !v.quality.is_ok()).count();
        stats.flagged.fetch_add(flagged as u64, Ordering::Relaxed);
        let published = retry("publishing validated readings", &stats, &stop, || {
            hes_bus::publish_validated(&*bus, &validated)
        })
        .await;
        if published.is_none() {
            return Ok(());
        }
        commit_or_warn(&mut *consumer, g.deliveries).await;
        stats.batches.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the process stage is given.
#[derive(Clone)]
pub struct ProcessDeps {
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn Store>,
    pub cache: Option<Arc<dyn Cache>>,
    pub groups: Arc<dyn Groups>,
    pub rules: Arc<Rules>,
}

impl std::fmt::Debug for ProcessDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessDeps").finish_non_exhaustive()
    }
}

/// The process stage: store, transform, estimate, aggregate, cache, until `stop`.
pub async fn run_process(
    deps: ProcessDeps,
    cfg: StageConfig,
    stats: Arc<StageStats>,
    stop: watch::Receiver<bool>,
) -> Result<(), StageError> {
    let readings_topic = if cfg.inline_validation {
        topics::READINGS_RAW
    } else {
        topics::READINGS_VALIDATED
    };
    let inputs = [readings_topic, topics::EVENTS, topics::JOB_RESULTS];
    ensure(&*deps.bus, &inputs, &cfg).await?;
    ensure(&*deps.bus, &[DEAD_LETTER], &cfg).await?;
    let mut consumer = deps.bus.subscribe(&inputs, &cfg.group).await?;
    // Per-channel state for up to a million channels.
    let mut agg = StreamAggregator::new((*deps.rules).clone(), cfg.clone(), 1_000_000);
    let mut validator = cfg
        .inline_validation
        .then(|| Validator::new((*deps.rules).clone(), 1_000_000));
    let mut gather_stop = stop.clone();
    let mut next = take_batch(
        &mut *consumer,
        &cfg,
        &mut gather_stop,
        validator.as_mut(),
        &stats,
    )
    .await?;
    loop {
        let Some(batch) = next.take() else {
            let _ = consumer.close(Duration::from_secs(5)).await;
            return Ok(());
        };
        if batch.deliveries.is_empty() {
            next = take_batch(
                &mut *consumer,
                &cfg,
                &mut gather_stop,
                validator.as_mut(),
                &stats,
            )
            .await?;
            continue;
        }
        for (d, why) in &batch.bad {
            dead_letter(&*deps.bus, d, why, &stats).await;
        }
        // The next batch is taken from the bus (and decoded, and validated when inline) while
        // this one goes to the store: the CPU work of one overlaps the store's of the other.
        // Offsets are still committed in order, each after its own batch is stored.
        let (done, following) = tokio::join!(
            store_batch(&deps, &mut agg, &batch, &stats, &stop),
            take_batch(
                &mut *consumer,
                &cfg,
                &mut gather_stop,
                validator.as_mut(),
                &stats,
            )
        );
        if !done {
            // Told to stop while the store was failing: nothing committed, all comes again.
            let _ = consumer.close(Duration::from_secs(5)).await;
            return Ok(());
        }
        commit_or_warn(&mut *consumer, batch.deliveries).await;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        next = following?;
    }
}

/// One batch as the process stage takes it from the bus.
#[derive(Debug, Default)]
struct Batch {
    deliveries: Vec<Delivery>,
    readings: Vec<ValidatedReading>,
    events: Vec<Event>,
    results: Vec<JobResult>,
    bad: Vec<(Delivery, String)>,
}

/// Gathers and decodes the next batch (validating raw readings when given a validator);
/// `None` when told to stop.
async fn take_batch(
    consumer: &mut dyn Consumer,
    cfg: &StageConfig,
    stop: &mut watch::Receiver<bool>,
    validator: Option<&mut Validator>,
    stats: &StageStats,
) -> Result<Option<Batch>, StageError> {
    let mut b = Batch::default();
    let mut raw: Vec<hes_model::Reading> = Vec::new();
    let Some(g) = gather(consumer, cfg, stop, |d| {
        fn add<T: Payload>(
            d: &Delivery,
            to: &mut Vec<T>,
            bad: &mut Vec<(Delivery, String)>,
        ) -> usize {
            match d.decode::<T>() {
                Ok(v) => {
                    let n = v.len();
                    to.extend(v);
                    n
                }
                Err(e) => {
                    bad.push((d.clone(), e.to_string()));
                    1
                }
            }
        }
        match d.topic.as_str() {
            topics::READINGS_VALIDATED => add(d, &mut b.readings, &mut b.bad),
            topics::READINGS_RAW => add(d, &mut raw, &mut b.bad),
            topics::EVENTS => add(d, &mut b.events, &mut b.bad),
            _ => add(d, &mut b.results, &mut b.bad),
        }
    })
    .await?
    else {
        return Ok(None);
    };
    b.deliveries = g.deliveries;
    if let Some(v) = validator {
        let validated = v.validate(raw, now_s());
        let flagged = validated.iter().filter(|v| !v.quality.is_ok()).count();
        stats.flagged.fetch_add(flagged as u64, Ordering::Relaxed);
        b.readings.extend(validated);
    }
    Ok(Some(b))
}

/// Stores a batch (readings, events), aggregates it and updates the cache, retrying the store
/// until it answers. False when told to stop before it was all stored.
async fn store_batch(
    deps: &ProcessDeps,
    agg: &mut StreamAggregator,
    b: &Batch,
    stats: &StageStats,
    stop: &watch::Receiver<bool>,
) -> bool {
    let store = &deps.store;
    let groups = &*deps.groups;
    let t = std::time::Instant::now();
    let mut wait = Duration::from_millis(100);
    let plan = loop {
        match agg.plan(&**store, &b.readings).await {
            Ok(p) => break p,
            Err(e) => {
                if !backoff("planning aggregation", &e, stats, stop, &mut wait).await {
                    return false;
                }
            }
        }
    };
    // Readings first, then their aggregates: a crash between the two leaves readings whose
    // aggregates are missing, which the replay recomputes from the store (the aggregates never
    // count readings that are not stored).
    let Some(n) = retry("storing readings", stats, stop, || {
        store.insert_validated(&b.readings)
    })
    .await
    else {
        return false;
    };
    stats.stored.fetch_add(n, Ordering::Relaxed);
    let Some(_) = retry("storing events", stats, stop, || {
        store.insert_events(&b.events)
    })
    .await
    else {
        return false;
    };
    stats
        .store_us
        .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
    let t = std::time::Instant::now();
    let mut wait = Duration::from_millis(100);
    let mut planned = Some(plan);
    let aggs = loop {
        let done = match planned.take() {
            Some(p) => aggregate(agg, &**store, groups, p).await,
            // A failed attempt may have written part: what was planned is stored now, so
            // planned again it goes the slow way, which recomputes from the store.
            None => match agg.plan(&**store, &b.readings).await {
                Ok(p) => aggregate(agg, &**store, groups, p).await,
                Err(e) => Err(e),
            },
        };
        match done {
            Ok(n) => break n,
            Err(e) => {
                if !backoff("aggregating", &e, stats, stop, &mut wait).await {
                    return false;
                }
            }
        }
    };
    stats.aggregates.fetch_add(aggs as u64, Ordering::Relaxed);
    stats
        .aggregate_us
        .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
    if let Some(cache) = &deps.cache {
        if let Err(e) = to_cache(&**cache, &b.readings, &b.events, &b.results).await {
            stats.cache_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "cache update failed (the store has the data)");
        }
    }
    // Counted last: a reader waiting for this count finds everything stored.
    stats
        .readings
        .fetch_add(b.readings.len() as u64, Ordering::Relaxed);
    stats
        .events
        .fetch_add(b.events.len() as u64, Ordering::Relaxed);
    true
}

/// Commits; a commit that fails (the broker restarting) only means the records come again,
/// and their effects are idempotent.
async fn commit_or_warn(consumer: &mut dyn Consumer, deliveries: Vec<Delivery>) {
    if let Err(e) = commit(consumer, deliveries).await {
        tracing::warn!(error = %e, "offset commit failed; the records will be delivered again");
    }
}

/// Latest values, presence and the live channels.
async fn to_cache(
    cache: &dyn Cache,
    readings: &[ValidatedReading],
    events: &[Event],
    results: &[JobResult],
) -> Result<(), hes_cache::CacheError> {
    // The newest of each (meter, object) in the batch: the cache keeps the newest anyway.
    let mut newest: HashMap<(&MeterId, dlms::ObisCode, i8), &ValidatedReading> = HashMap::new();
    let mut seen: HashMap<&MeterId, i64> = HashMap::new();
    for v in readings {
        let r = &v.reading;
        let k = (&r.meter, r.obis, r.attribute);
        if newest.get(&k).is_none_or(|o| o.reading.time <= r.time) {
            newest.insert(k, v);
        }
        let s = seen.entry(&r.meter).or_insert(r.received_at);
        *s = (*s).max(r.received_at);
    }
    for e in events {
        let s = seen.entry(&e.meter).or_insert(e.received_at);
        *s = (*s).max(e.received_at);
    }
    let latest: Vec<hes_model::Reading> = newest.values().map(|v| v.reading.clone()).collect();
    cache.put_latest(&latest).await?;
    for (m, at) in &seen {
        cache.mark_seen(m, *at).await?;
    }
    for v in newest.values() {
        let msg = serde_json::json!({
            "type": "reading", "meter": v.reading.meter, "data": v.reading,
            "quality": v.quality.0,
        });
        cache
            .publish(LIVE_READINGS, msg.to_string().as_bytes())
            .await?;
    }
    for e in events {
        let msg = serde_json::json!({"type": "event", "meter": e.meter, "data": e});
        cache
            .publish(LIVE_EVENTS, msg.to_string().as_bytes())
            .await?;
    }
    for r in results {
        let msg = serde_json::json!({"type": "job", "meter": r.meter, "data": r});
        cache.publish(LIVE_JOBS, msg.to_string().as_bytes()).await?;
    }
    Ok(())
}

/// The slow way, for late or overlapping data: recomputes and upserts the aggregates of the
/// meters the batch touches from what is stored: hours from the stored readings (with gaps
/// estimated), days from hours, months from days. Returns the rows written.
pub async fn recompute_meters(
    store: &dyn Store,
    rules: &Rules,
    cfg: &StageConfig,
    batch: &[ValidatedReading],
) -> Result<Vec<Aggregate>, hes_store::StoreError> {
    let interval = rules.interval.max(1);
    // Each meter's span of cumulative readings in the batch, bucketed by day so that one late
    // meter does not widen everyone's read-back.
    let mut spans: HashMap<&MeterId, (i64, i64)> = HashMap::new();
    for v in batch {
        if !is_cumulative(&v.reading) {
            continue;
        }
        let t = v.reading.time;
        let s = spans.entry(&v.reading.meter).or_insert((t, t));
        s.0 = s.0.min(t);
        s.1 = s.1.max(t);
    }
    if spans.is_empty() {
        return Ok(Vec::new());
    }
    let mut buckets: BTreeMap<(i64, i64), Vec<MeterId>> = BTreeMap::new();
    for (m, (lo, hi)) in &spans {
        // The hours whose intervals a reading at t can change: the one holding t - interval
        // (the interval ending at t) up to the one holding t (the interval starting at t).
        let a = Period::Hour.start(lo - interval);
        let b = Period::Hour.end(Period::Hour.start(*hi));
        buckets.entry((a, b)).or_default().push((*m).clone());
    }
    let mut touched_days: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut hour_rows: Vec<Aggregate> = Vec::new();
    for ((a, b), meters) in &buckets {
        let ctx = cfg.context_s.max(interval);
        let stored = store.readings_of_meters(meters, a - ctx, b + ctx).await?;
        let ivs = intervals_with(&stored, rules);
        let filled = estimate_gaps_with(&ivs, interval);
        let hours: Vec<Aggregate> = aggregate_with(&filled, Period::Hour, interval)
            .into_iter()
            .filter(|h| h.period_start >= *a && h.period_start < *b)
            .collect();
        for h in &hours {
            touched_days.insert((h.subject.clone(), Period::Day.start(h.period_start)));
        }
        hour_rows.extend(hours);
    }
    store.upsert_aggregates(&hour_rows).await?;
    // Days from hours, months from days.
    let mut touched: BTreeSet<(String, i64)> = touched_days;
    let mut period = Period::Day;
    let mut all_rows: Vec<Aggregate> = hour_rows;
    while let Some(finer) = finer(period) {
        // One read of the finer aggregates over the whole span touched, then only the touched
        // (subject, period) pairs are rolled up.
        let mut rows = Vec::new();
        if let (Some(lo), Some(hi)) = (
            touched.iter().map(|t| t.1).min(),
            touched.iter().map(|t| t.1).max(),
        ) {
            let subjects: Vec<String> = touched
                .iter()
                .map(|t| t.0.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let fine = store
                .aggregates(&subjects, None, finer, lo, period.end(hi) - 1)
                .await?;
            rows = rollup(&fine, period)
                .into_iter()
                .filter(|r| touched.contains(&(r.subject.clone(), r.period_start)))
                .collect();
        }
        store.upsert_aggregates(&rows).await?;
        let Some(next) = period.coarser() else {
            all_rows.extend(rows);
            break;
        };
        touched = rows
            .iter()
            .map(|r| (r.subject.clone(), next.start(r.period_start)))
            .collect();
        all_rows.extend(rows);
        period = next;
    }
    Ok(all_rows)
}

/// Recomputes the day and month totals of the groups the meters of `rows` are in, from their
/// members' stored aggregates. (A group's hours are summed from its members' when asked for.)
/// Returns how many were written.
pub async fn group_totals(
    store: &dyn Store,
    groups: &dyn Groups,
    rows: &[Aggregate],
) -> Result<usize, hes_store::StoreError> {
    let mut group_keys: BTreeSet<(String, Period, i64)> = BTreeSet::new();
    let mut of_meter: HashMap<&str, Vec<String>> = HashMap::new();
    for r in rows.iter().filter(|r| r.period != Period::Hour) {
        let gs = of_meter
            .entry(&r.subject)
            .or_insert_with(|| groups.of(&MeterId(r.subject.clone())));
        for g in gs.iter() {
            group_keys.insert((g.clone(), r.period, r.period_start));
        }
    }
    // One read per (group, period kind) over the span touched.
    let mut by_group: BTreeMap<(String, Period), BTreeSet<i64>> = BTreeMap::new();
    for (g, period, start) in group_keys {
        by_group.entry((g, period)).or_default().insert(start);
    }
    let mut group_rows = Vec::new();
    for ((g, period), starts) in &by_group {
        let (Some(lo), Some(hi)) = (starts.first(), starts.last()) else {
            continue;
        };
        let members: Vec<String> = groups.members(g).into_iter().map(|m| m.0).collect();
        let of = store.aggregates(&members, None, *period, *lo, *hi).await?;
        let mut buckets: BTreeMap<(&str, i64), Vec<Aggregate>> = BTreeMap::new();
        for a in &of {
            if starts.contains(&a.period_start) {
                buckets
                    .entry((&a.channel, a.period_start))
                    .or_default()
                    .push(a.clone());
            }
        }
        for list in buckets.values() {
            if let Some(t) = group_total(g, members.len(), list) {
                group_rows.push(t);
            }
        }
    }
    Ok(store.upsert_aggregates(&group_rows).await? as usize)
}

fn finer(p: Period) -> Option<Period> {
    match p {
        Period::Hour => None,
        Period::Day => Some(Period::Hour),
        Period::Month => Some(Period::Day),
    }
}
