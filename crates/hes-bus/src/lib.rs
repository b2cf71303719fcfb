//! The bus port: topics keyed by meter id (one partition per meter's key), and its adapters.
//! Collection publishes raw readings, events and job results on it; the pipeline stages
//! consume it through consumer groups. `MemoryBus` is the embedded mode's in-process bus,
//! `kafka::KafkaBus` the production adapter. See `docs/bus.md`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hes_model::{topics, Event, JobResult, Reading, ValidatedReading};

pub mod kafka;
mod memory;

pub use memory::{MemoryBus, MemoryConsumer, DEFAULT_PARTITIONS};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One message: the key (a meter id: one partition per meter) and the encoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus refused the batch: {0}")]
    Refused(String),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
    /// A record whose payload is not the topic's protobuf message.
    #[error("payload: {0}")]
    Payload(#[from] hes_proto::ProtoError),
    #[error("not supported by this bus: {0}")]
    Unsupported(String),
    #[error("configuration: {0}")]
    Config(String),
    /// A commit for a partition this consumer no longer owns (the group rebalanced): the
    /// records will be delivered again to the partition's new owner.
    #[error("commit refused, the group rebalanced: {0}")]
    Rebalanced(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("kafka: {0}")]
    Kafka(String),
}

/// One consumed record: where it is in the log (topic, partition, offset) and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub payload: Vec<u8>,
}

impl Delivery {
    /// Decodes the payload: the entries of one record (see [`Payload`]).
    pub fn decode<T: Payload>(&self) -> Result<Vec<T>, BusError> {
        T::decode_record(&self.payload)
    }
}

/// What a topic's records carry, as the protobuf contract (`proto/hes/v1/hes.proto`) says:
/// batches of readings, validated readings and events, one job result per record.
pub trait Payload: Sized {
    /// The entries of one record, from untrusted bytes.
    fn decode_record(bytes: &[u8]) -> Result<Vec<Self>, BusError>;
}

impl Payload for Reading {
    fn decode_record(bytes: &[u8]) -> Result<Vec<Self>, BusError> {
        Ok(hes_proto::decode_readings(bytes)?)
    }
}

impl Payload for ValidatedReading {
    fn decode_record(bytes: &[u8]) -> Result<Vec<Self>, BusError> {
        Ok(hes_proto::decode_validated(bytes)?)
    }
}

impl Payload for Event {
    fn decode_record(bytes: &[u8]) -> Result<Vec<Self>, BusError> {
        Ok(hes_proto::decode_events(bytes)?)
    }
}

impl Payload for JobResult {
    fn decode_record(bytes: &[u8]) -> Result<Vec<Self>, BusError> {
        Ok(vec![hes_proto::decode_job_result(bytes)?])
    }
}

impl Payload for hes_proto::Processed {
    fn decode_record(bytes: &[u8]) -> Result<Vec<Self>, BusError> {
        Ok(vec![hes_proto::decode_processed(bytes)?])
    }
}

/// The most entries one record holds: a meter's batch is split beyond it.
pub const RECORD_ENTRIES: usize = 1000;

/// Records of `items` grouped by meter (in first-seen order, keeping each meter's order),
/// at most [`RECORD_ENTRIES`] per record, each keyed by its meter and encoded by `encode`.
pub fn records_by_meter<T>(
    items: &[T],
    meter: impl Fn(&T) -> &str,
    encode: impl Fn(&[T]) -> Vec<u8>,
) -> Vec<Record>
where
    T: Clone,
{
    let mut order: Vec<&str> = Vec::new();
    let mut by: std::collections::HashMap<&str, Vec<T>> = std::collections::HashMap::new();
    for it in items {
        let m = meter(it);
        by.entry(m)
            .or_insert_with(|| {
                order.push(m);
                Vec::new()
            })
            .push(it.clone());
    }
    let mut out = Vec::new();
    for m in order {
        if let Some(list) = by.get(m) {
            for chunk in list.chunks(RECORD_ENTRIES) {
                out.push(Record {
                    key: m.to_string(),
                    payload: encode(chunk),
                });
            }
        }
    }
    out
}

/// A member of a consumer group. The group's partitions are shared among its live members;
/// each partition is read by one member at a time, in offset order.
///
/// At-least-once: call `commit` only after the effects of a delivery are durable. Whatever
/// was delivered but not committed is delivered again (to this or another member) after a
/// rebalance, a crash or a new subscription of the same group.
pub trait Consumer: Send {
    /// The next record of one of this member's partitions, or `None` when nothing arrived
    /// within `timeout`. Cancellation safe: dropping the future loses no record.
    fn next(&mut self, timeout: Duration) -> BoxFuture<'_, Result<Option<Delivery>, BusError>>;

    /// Marks everything up to and including `d`'s offset in its partition as processed.
    /// `Err(BusError::Rebalanced)` when the partition went to another member meanwhile.
    fn commit(&mut self, d: &Delivery) -> BoxFuture<'_, Result<(), BusError>>;

    /// Commits each of `ds` (at most one per partition), in one request where the adapter
    /// can.
    fn commit_all<'a>(&'a mut self, ds: &'a [Delivery]) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            for d in ds {
                self.commit(d).await?;
            }
            Ok(())
        })
    }

    /// How far this member is behind on each of its partitions: `(topic, partition, records
    /// not yet consumed)`, for the metrics. Independent of the consumer once made (the future
    /// may be spawned); adapters that cannot tell give nothing.
    fn lag(&self) -> BoxFuture<'static, Vec<(String, i32, i64)>> {
        Box::pin(async { Vec::new() })
    }

    /// Leaves the group, waiting at most `timeout` for it. Dropping a consumer leaves the
    /// group too, in the background.
    fn close(self: Box<Self>, timeout: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        let _ = timeout;
        drop(self);
        Box::pin(async { Ok(()) })
    }

    /// Nothing to create: the counting bus keeps no topics. `subscribe` is not supported.
    fn ensure_topics(
        &self,
        _topics: &[&str],
        _partitions: i32,
    ) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async { Ok(()) })
    }
}

impl std::fmt::Debug for dyn Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Consumer")
    }
}

/// A message bus: a batch is durable (acknowledged) when `publish` returns `Ok`.
pub trait Bus: Send + Sync {
    /// Appends `records` to `topic`, each to the partition of its key; returns when every
    /// record is acknowledged. On `Err` some records may have been written anyway: a retry
    /// can duplicate them (consumers are idempotent).
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        records: Vec<Record>,
    ) -> BoxFuture<'a, Result<(), BusError>>;

    /// Joins consumer group `group` on `topics`. Members of one group share the partitions;
    /// every group sees every record. A group without committed offsets starts at the
    /// beginning of each partition.
    fn subscribe(
        &self,
        topics: &[&str],
        group: &str,
    ) -> BoxFuture<'_, Result<Box<dyn Consumer>, BusError>> {
        let _ = (topics, group);
        Box::pin(async { Err(BusError::Unsupported("subscribe".into())) })
    }

    /// Creates the topics that do not exist yet, with `partitions` partitions each. Existing
    /// topics are left as they are.
    fn ensure_topics(
        &self,
        topics: &[&str],
        partitions: i32,
    ) -> BoxFuture<'_, Result<(), BusError>> {
        let _ = (topics, partitions);
        Box::pin(async { Err(BusError::Unsupported("ensure_topics".into())) })
    }
}

impl std::fmt::Debug for dyn Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bus")
    }
}

/// Publishes readings on `hes.readings.raw`, one `ReadingBatch` per meter.
pub async fn publish_readings(bus: &dyn Bus, readings: &[Reading]) -> Result<(), BusError> {
    if readings.is_empty() {
        return Ok(());
    }
    let records = records_by_meter(readings, |r| &r.meter.0, hes_proto::encode_readings);
    bus.publish(topics::READINGS_RAW, records).await
}

/// Publishes validated readings on `hes.readings.validated`, one `ValidatedBatch` per meter.
pub async fn publish_validated(
    bus: &dyn Bus,
    readings: &[ValidatedReading],
) -> Result<(), BusError> {
    if readings.is_empty() {
        return Ok(());
    }
    let records = records_by_meter(
        readings,
        |v| &v.reading.meter.0,
        hes_proto::encode_validated,
    );
    bus.publish(topics::READINGS_VALIDATED, records).await
}

/// Publishes events on `hes.events`, one `EventBatch` per meter.
pub async fn publish_events(bus: &dyn Bus, events: &[Event]) -> Result<(), BusError> {
    if events.is_empty() {
        return Ok(());
    }
    let records = records_by_meter(events, |e| &e.meter.0, hes_proto::encode_events);
    bus.publish(topics::EVENTS, records).await
}

/// The records of `hes.readings.processed` for what one batch stored: per subject (a meter,
/// with its intervals and aggregates, or a group, with its aggregates) in first-seen order,
/// one `ProcessedBatch` of at most [`RECORD_ENTRIES`] entries per record (intervals first),
/// keyed by the subject.
pub fn processed_records(
    intervals: &[hes_proto::ProcessedInterval],
    aggregates: &[hes_model::Aggregate],
) -> Vec<Record> {
    let mut order: Vec<&str> = Vec::new();
    let mut by: std::collections::HashMap<&str, hes_proto::Processed> =
        std::collections::HashMap::new();
    for i in intervals {
        by.entry(&i.meter.0)
            .or_insert_with(|| {
                order.push(&i.meter.0);
                hes_proto::Processed::default()
            })
            .intervals
            .push(i.clone());
    }
    for a in aggregates {
        by.entry(&a.subject)
            .or_insert_with(|| {
                order.push(&a.subject);
                hes_proto::Processed::default()
            })
            .aggregates
            .push(a.clone());
    }
    let mut out = Vec::new();
    for k in order {
        let Some(p) = by.remove(k) else { continue };
        let mut ivs = p.intervals.into_iter().peekable();
        let mut aggs = p.aggregates.into_iter().peekable();
        while ivs.peek().is_some() || aggs.peek().is_some() {
            let mut rec = hes_proto::Processed::default();
            rec.intervals.extend(ivs.by_ref().take(RECORD_ENTRIES));
            let room = RECORD_ENTRIES - rec.intervals.len();
            rec.aggregates.extend(aggs.by_ref().take(room));
            out.push(Record {
                key: k.to_string(),
                payload: hes_proto::encode_processed(&rec),
            });
        }
    }
    out
}

/// Publishes what a batch stored on `hes.readings.processed` ([`processed_records`]).
pub async fn publish_processed(
    bus: &dyn Bus,
    intervals: &[hes_proto::ProcessedInterval],
    aggregates: &[hes_model::Aggregate],
) -> Result<(), BusError> {
    if intervals.is_empty() && aggregates.is_empty() {
        return Ok(());
    }
    let records = processed_records(intervals, aggregates);
    bus.publish(topics::READINGS_PROCESSED, records).await
}

/// Publishes a job's result on `hes.job-results`.
pub async fn publish_result(bus: &dyn Bus, result: &JobResult) -> Result<(), BusError> {
    let r = Record {
        key: result.meter.0.clone(),
        payload: hes_proto::encode_job_result(result),
    };
    bus.publish(topics::JOB_RESULTS, vec![r]).await
}

/// A bus that counts what it is given and keeps nothing: for benchmarks of collection alone.
#[derive(Debug, Default)]
pub struct CountingBus {
    pub records: std::sync::atomic::AtomicU64,
    pub bytes: std::sync::atomic::AtomicU64,
}

impl Bus for CountingBus {
    fn publish<'a>(
        &'a self,
        _topic: &'a str,
        records: Vec<Record>,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        use std::sync::atomic::Ordering::Relaxed;
        let bytes: usize = records.iter().map(|r| r.payload.len()).sum();
        self.records.fetch_add(records.len() as u64, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
        Box::pin(async { Ok(()) })
    }

    /// Nothing to create: the counting bus keeps no topics. `subscribe` is not supported.
    fn ensure_topics(
        &self,
        _topics: &[&str],
        _partitions: i32,
    ) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async { Ok(()) })
    }
}

/// One record of `hes.readings.raw` or `hes.events` as JSON lines, one entry per line (for
/// files and people; the bus itself carries protobuf). Undecodable records give an error line.
pub fn json_lines(topic: &str, payload: &[u8]) -> String {
    fn lines<T: serde::Serialize>(items: Result<Vec<T>, BusError>) -> String {
        match items {
            Ok(items) => items
                .iter()
                .filter_map(|i| serde_json::to_string(i).ok())
                .map(|l| l + "\n")
                .collect(),
            Err(e) => format!("{}\n", serde_json::json!({ "error": e.to_string() })),
        }
    }
    match topic {
        topics::READINGS_RAW => lines(Reading::decode_record(payload)),
        topics::READINGS_VALIDATED => lines(ValidatedReading::decode_record(payload)),
        topics::EVENTS => lines(Event::decode_record(payload)),
        topics::JOB_RESULTS => lines(JobResult::decode_record(payload)),
        other => format!(
            "{}\n",
            serde_json::json!({ "error": format!("topic {other}") })
        ),
    }
}
