//! The stages as consumer groups on the bus (at-least-once, idempotent effects):
//!
//! - **validate** (group `validate`): `hes.readings.raw` → [`Validator`] →
//!   `hes.readings.validated`. Offsets are committed once the validated batch is published.
//! - **process** (group `process`): `hes.readings.validated`, `hes.events` and
//!   `hes.job-results` → the store (readings with their flags, events), then transform,
//!   estimate and aggregate: the hours, days and months the batch touches are recomputed from
//!   the stored readings (so late data updates them and a replay changes nothing), per meter
//!   and per group, and upserted. Then what was stored (the intervals and every aggregate
//!   written) is published on `hes.readings.processed`, then the cache (latest values, last
//!   seen) and the live channels. Offsets are committed only after the store has committed
//!   and the processed records are published.
//!
//! A record that does not decode goes to `hes.dead-letter` with the reason (and is counted),
//! never silently dropped. A store that fails (PostgreSQL restarting) is retried with backoff
//! and nothing is committed meanwhile; the cache is derived state: its failures are counted
//! and retried on the next batch's values, they never hold the pipeline.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hes_bus::{Bus, Consumer, Delivery, Payload};
use hes_cache::Cache;
use hes_model::{topics, Event, JobResult, MeterId, ValidatedReading};
use hes_rules::{Rules, Validator};
use hes_store::Store;
use tokio::sync::watch;

use crate::consume::{backoff, commit, dead_letter, ensure, gather, now_s, retry, sample_lag};
use crate::recompute::group_rows;
use crate::stage::metrics;
use crate::stream::{Applied, Plan, StreamAggregator};
use hes_rules::IntervalConsumption;
use tracing::Instrument;

pub use crate::recompute::{group_totals, recompute_meters, Groups, NoGroups};
pub use crate::stage::{
    StageConfig, StageError, StageStats, DEAD_LETTER, LIVE_EVENTS, LIVE_JOBS, LIVE_READINGS,
};

/// Aggregates a stored (or being stored) batch: per meter, then the groups' days and months.
/// Returns the intervals and every aggregate written (the meters', then the groups').
async fn aggregate(
    agg: &mut StreamAggregator,
    store: &dyn Store,
    groups: &dyn Groups,
    plan: Plan,
) -> Result<Applied, hes_store::StoreError> {
    let mut applied = agg.apply_processed(store, plan).await?;
    let g = group_rows(store, groups, &applied.aggregates).await?;
    applied.aggregates.extend(g);
    Ok(applied)
}

/// An interval as `hes.readings.processed` carries it: energy in Wh (varh, VAh), the DLMS
/// unit's symbol as its unit.
pub fn processed_interval(iv: &IntervalConsumption) -> hes_proto::ProcessedInterval {
    hes_proto::ProcessedInterval {
        meter: iv.meter.clone(),
        channel: iv.channel.clone(),
        interval_end: iv.end,
        interval_seconds: iv.seconds(),
        value: iv.wh(),
        unit: dlms::cosem::Unit(iv.unit)
            .symbol()
            .map_or_else(|| format!("unit {}", iv.unit), str::to_string),
        quality: iv.quality,
    }
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
    metrics::describe();
    let mut lag_sampled = None;
    // Per-meter state for at most a million channels (older ones are forgotten first).
    let mut validator = Validator::new(rules, 1_000_000);
    loop {
        let mut batch = Vec::new();
        let mut bad = Vec::new();
        sample_lag(&*consumer, "validate", &mut lag_sampled);
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
        let t = std::time::Instant::now();
        for (d, why) in &bad {
            dead_letter(&*bus, d, why, &stats).await;
        }
        metrics::rows("validate", "readings", batch.len());
        stats
            .readings
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let validated = validator.validate(batch, now_s());
        let flagged = validated.iter().filter(|v| !v.quality.is_ok()).count();
        stats.flagged.fetch_add(flagged as u64, Ordering::Relaxed);
        ::metrics::counter!(metrics::FLAGGED, "stage" => "validate").increment(flagged as u64);
        let published = retry("publishing validated readings", &stats, &stop, || {
            hes_bus::publish_validated(&*bus, &validated)
        })
        .await;
        if published.is_none() {
            return Ok(());
        }
        commit_or_warn(&mut *consumer, g.deliveries).await;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        ::metrics::histogram!(metrics::BATCH_DURATION, "stage" => "validate")
            .record(t.elapsed().as_secs_f64());
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
    ensure(&*deps.bus, &[DEAD_LETTER, topics::READINGS_PROCESSED], &cfg).await?;
    let mut consumer = deps.bus.subscribe(&inputs, &cfg.group).await?;
    metrics::describe();
    let mut lag_sampled = None;
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
        sample_lag(&*consumer, "process", &mut lag_sampled);
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
        let t = std::time::Instant::now();
        for (d, why) in &batch.bad {
            dead_letter(&*deps.bus, d, why, &stats).await;
        }
        // The next batch is taken from the bus (and decoded, and validated when inline) while
        // this one goes to the store: the CPU work of one overlaps the store's of the other.
        // Offsets are still committed in order, each after its own batch is stored.
        let (done, following) = tokio::join!(
            store_batch(
                &deps,
                cfg.publish_processed,
                &mut agg,
                &batch,
                &stats,
                &stop
            )
            .instrument(tracing::info_span!(
                "batch",
                stage = "process",
                readings = batch.readings.len(),
                events = batch.events.len()
            )),
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
        ::metrics::histogram!(metrics::BATCH_DURATION, "stage" => "process")
            .record(t.elapsed().as_secs_f64());
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
        ::metrics::counter!(metrics::FLAGGED, "stage" => "process").increment(flagged as u64);
        b.readings.extend(validated);
    }
    Ok(Some(b))
}

/// Stores a batch (readings, events), aggregates it and updates the cache, retrying the store
/// until it answers. False when told to stop before it was all stored.
async fn store_batch(
    deps: &ProcessDeps,
    publish_processed: bool,
    agg: &mut StreamAggregator,
    b: &Batch,
    stats: &StageStats,
    stop: &watch::Receiver<bool>,
) -> bool {
    let store = &deps.store;
    let groups = &*deps.groups;
    let t = std::time::Instant::now();
    let mut attempt = 0;
    let plan = loop {
        match agg.plan(&**store, &b.readings).await {
            Ok(p) => break p,
            Err(e) => {
                if !backoff("planning aggregation", &e, stats, stop, &mut attempt).await {
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
    let mut attempt = 0;
    let mut planned = Some(plan);
    let applied = loop {
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
                if !backoff("aggregating", &e, stats, stop, &mut attempt).await {
                    return false;
                }
            }
        }
    };
    stats
        .aggregates
        .fetch_add(applied.aggregates.len() as u64, Ordering::Relaxed);
    ::metrics::histogram!(metrics::STORE_DURATION, "op" => "aggregate")
        .record(t.elapsed().as_secs_f64());
    stats
        .aggregate_us
        .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
    if publish_processed {
        // Only now that the store has it all: a consumer of the processed topic never sees
        // what the store does not hold. Offsets are committed after this, so a crash before
        // it replays the batch, which publishes again (consumers keep the latest per key).
        let intervals: Vec<hes_proto::ProcessedInterval> =
            applied.intervals.iter().map(processed_interval).collect();
        let Some(()) = retry("publishing processed", stats, stop, || {
            hes_bus::publish_processed(&*deps.bus, &intervals, &applied.aggregates)
        })
        .await
        else {
            return false;
        };
        stats
            .processed
            .fetch_add(intervals.len() as u64, Ordering::Relaxed);
    }
    if let Some(cache) = &deps.cache {
        // The cache is derived: a failed update is tried again a few times, briefly (the first
        // command after a Redis restart fails while the client reconnects), then left for the
        // next values; the store has the data either way.
        for attempt in 1..=CACHE_ATTEMPTS {
            let t = std::time::Instant::now();
            match to_cache(&**cache, &b.readings, &b.events, &b.results).await {
                Ok(()) => {
                    ::metrics::histogram!(metrics::CACHE_DURATION, "op" => "update")
                        .record(t.elapsed().as_secs_f64());
                    break;
                }
                Err(e) => {
                    stats.cache_errors.fetch_add(1, Ordering::Relaxed);
                    ::metrics::counter!(metrics::CACHE_ERRORS, "op" => "update").increment(1);
                    tracing::warn!(error = %e, attempt, "cache update failed (the store has the data)");
                    if attempt < CACHE_ATTEMPTS {
                        tokio::time::sleep(CACHE_RETRY.delay(attempt)).await;
                    }
                }
            }
        }
    }
    // Counted last: a reader waiting for this count finds everything stored.
    metrics::rows("process", "readings", b.readings.len());
    metrics::rows("process", "events", b.events.len());
    metrics::rows("process", "results", b.results.len());
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

/// Attempts at a cache update, and the wait between them (at most a few seconds in all).
const CACHE_ATTEMPTS: u32 = 4;
const CACHE_RETRY: hes_model::backoff::Backoff =
    hes_model::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(1));

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
