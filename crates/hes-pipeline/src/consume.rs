//! Consuming as a stage does: gathering a batch, committing it, creating topics, dead
//! letters, and retrying with backoff while a store or broker restarts.

pub(crate) use hes_model::clock::unix_now as now_s;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hes_bus::{Bus, BusError, Consumer, Delivery, Record};
use tokio::sync::watch;

use crate::stage::{StageConfig, StageError, StageStats, DEAD_LETTER};

/// A batch gathered from a consumer: the deliveries (to commit) and their decoded entries.
pub(crate) struct Gathered {
    pub(crate) deliveries: Vec<Delivery>,
    pub(crate) entries: usize,
}

/// Gathers deliveries until `max_batch` entries or `linger`; `None` when told to stop.
pub(crate) async fn gather(
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
pub(crate) async fn commit(
    consumer: &mut dyn Consumer,
    deliveries: Vec<Delivery>,
) -> Result<(), StageError> {
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
pub(crate) async fn ensure(
    bus: &dyn Bus,
    names: &[&str],
    cfg: &StageConfig,
) -> Result<(), StageError> {
    match bus.ensure_topics(names, cfg.partitions).await {
        Ok(()) | Err(BusError::Unsupported(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Sends an undecodable record to [`DEAD_LETTER`], keyed as it was, with the reason.
pub(crate) async fn dead_letter(bus: &dyn Bus, d: &Delivery, why: &str, stats: &StageStats) {
    stats.dead_letters.fetch_add(1, Ordering::Relaxed);
    ::metrics::counter!(crate::stage::metrics::DEAD_LETTERS, "topic" => topic_label(&d.topic))
        .increment(1);
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

/// How often a stage samples its consumer lag.
const LAG_EVERY: Duration = Duration::from_secs(15);

/// Samples the consumer's lag per partition into the metrics, in the background, when the
/// last sample is older than [`LAG_EVERY`].
pub(crate) fn sample_lag(
    consumer: &dyn Consumer,
    stage: &'static str,
    last: &mut Option<tokio::time::Instant>,
) {
    if last.is_some_and(|t| t.elapsed() < LAG_EVERY) {
        return;
    }
    *last = Some(tokio::time::Instant::now());
    let lag = consumer.lag();
    tokio::spawn(async move {
        for (topic, partition, n) in lag.await {
            // Records behind: exact in an f64 far beyond any real lag.
            #[allow(clippy::cast_precision_loss)]
            ::metrics::gauge!(
                crate::stage::metrics::CONSUMER_LAG,
                "stage" => stage,
                "topic" => topic_label(&topic),
                "partition" => partition.to_string()
            )
            .set(n as f64);
        }
    });
}

/// A topic as a label: ours by name, anything else as one value.
fn topic_label(t: &str) -> &'static str {
    use hes_model::topics;
    [
        topics::READINGS_RAW,
        topics::READINGS_VALIDATED,
        topics::EVENTS,
        topics::JOB_RESULTS,
        topics::JOBS,
    ]
    .into_iter()
    .find(|k| *k == t)
    .unwrap_or("other")
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().take(4096).map(|x| format!("{x:02x}")).collect()
}

/// Retries `f` until it succeeds or the stage is told to stop (then `None`): a store or a
/// broker that is restarting is waited for, with backoff, and nothing is committed meanwhile.
pub(crate) async fn retry<T, E, F, Fut>(
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
    let mut attempt = 0;
    let (_, timed, op) = crate::stage::metrics::op_of(what);
    loop {
        let t = std::time::Instant::now();
        match f().await {
            Ok(v) => {
                if let Some(h) = timed {
                    ::metrics::histogram!(h, "op" => op).record(t.elapsed().as_secs_f64());
                }
                return Some(v);
            }
            Err(e) => {
                if !backoff(what, &e, stats, stop, &mut attempt).await {
                    return None;
                }
            }
        }
    }
}

/// The stages' retry: from 100 ms, doubling with jitter, up to 5 s (the head-end's one policy).
const RETRY: hes_model::backoff::Backoff =
    hes_model::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(5));

/// Waits before retry number `attempt + 1` after `e`; false when the stage is told to stop
/// instead.
pub(crate) async fn backoff(
    what: &str,
    e: &(dyn std::fmt::Display + Sync),
    stats: &StageStats,
    stop: &watch::Receiver<bool>,
    attempt: &mut u32,
) -> bool {
    stats.store_retries.fetch_add(1, Ordering::Relaxed);
    let (errors, _, op) = crate::stage::metrics::op_of(what);
    ::metrics::counter!(errors, "op" => op).increment(1);
    *attempt = attempt.saturating_add(1);
    let wait = RETRY.delay(*attempt);
    tracing::warn!(error = %e, "{what} failed; retrying in {wait:?}");
    if *stop.borrow() {
        return false;
    }
    tokio::time::sleep(wait).await;
    true
}
