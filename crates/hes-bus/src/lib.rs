//! The bus port: topics keyed by meter id (one partition per meter's key), and its adapters.
//! Collection publishes raw readings, events and job results on it; the pipeline stages
//! consume it through consumer groups. `MemoryBus` is the embedded mode's in-process bus,
//! `kafka::KafkaBus` the production adapter. See `docs/bus.md`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hes_model::{topics, Event, JobResult, Reading};
use serde::Serialize;

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
    /// Decodes the JSON payload (what `publish_readings` and friends write).
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, BusError> {
        Ok(serde_json::from_slice(&self.payload)?)
    }
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

fn encode<T: Serialize>(key: &str, v: &T) -> Result<Record, BusError> {
    Ok(Record {
        key: key.to_string(),
        payload: serde_json::to_vec(v)?,
    })
}

/// Publishes readings on `hes.readings.raw`.
pub async fn publish_readings(bus: &dyn Bus, readings: &[Reading]) -> Result<(), BusError> {
    if readings.is_empty() {
        return Ok(());
    }
    let records = readings
        .iter()
        .map(|r| encode(&r.meter.0, r))
        .collect::<Result<Vec<_>, _>>()?;
    bus.publish(topics::READINGS_RAW, records).await
}

/// Publishes events on `hes.events`.
pub async fn publish_events(bus: &dyn Bus, events: &[Event]) -> Result<(), BusError> {
    if events.is_empty() {
        return Ok(());
    }
    let records = events
        .iter()
        .map(|e| encode(&e.meter.0, e))
        .collect::<Result<Vec<_>, _>>()?;
    bus.publish(topics::EVENTS, records).await
}

/// Publishes a job's result on `hes.job-results`.
pub async fn publish_result(bus: &dyn Bus, result: &JobResult) -> Result<(), BusError> {
    let r = encode(&result.meter.0, result)?;
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
