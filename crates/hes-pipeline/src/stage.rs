//! What every stage shares: its batching configuration, its counters, its error, and the
//! topics and live channels it writes besides its output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hes_bus::BusError;

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

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("store: {0}")]
    Store(#[from] hes_store::StoreError),
}
