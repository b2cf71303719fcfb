//! The bus port: topics keyed by meter id (one partition per meter's key), and its adapters.
//! Collection publishes raw readings, events and job results on it; the pipeline stages
//! consume it. `MemoryBus` is the embedded mode's in-process bus.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use hes_model::{topics, Event, JobResult, Reading};
use serde::Serialize;
use tokio::sync::Notify;

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
}

/// A message bus: a batch is durable (acknowledged) when `publish` returns `Ok`.
pub trait Bus: Send + Sync {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        records: Vec<Record>,
    ) -> BoxFuture<'a, Result<(), BusError>>;
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

/// The in-process bus of the embedded mode: topics are in-memory logs, read by offset.
#[derive(Debug, Default)]
pub struct MemoryBus {
    topics: Mutex<HashMap<String, Vec<Record>>>,
    notify: Notify,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records of `topic` from `offset` on, and the next offset.
    pub fn read(&self, topic: &str, offset: usize) -> (Vec<Record>, usize) {
        let t = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        let log = t.get(topic).map(Vec::as_slice).unwrap_or_default();
        let from = offset.min(log.len());
        (log.get(from..).unwrap_or_default().to_vec(), log.len())
    }

    pub fn len(&self, topic: &str) -> usize {
        self.topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .map_or(0, Vec::len)
    }

    /// Decodes every record of `topic`.
    pub fn decode_all<T: serde::de::DeserializeOwned>(&self, topic: &str) -> Vec<T> {
        self.read(topic, 0)
            .0
            .iter()
            .filter_map(|r| serde_json::from_slice(&r.payload).ok())
            .collect()
    }

    /// Waits until something is published (or `timeout` passes).
    pub async fn changed(&self, timeout: std::time::Duration) {
        let _ = tokio::time::timeout(timeout, self.notify.notified()).await;
    }
}

impl Bus for MemoryBus {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        records: Vec<Record>,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            self.topics
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(topic.to_string())
                .or_default()
                .extend(records);
            self.notify.notify_waiters();
            Ok(())
        })
    }
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
}
