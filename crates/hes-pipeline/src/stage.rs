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
    /// The process stage publishes what each batch stored (intervals and the aggregates
    /// written) on `hes.readings.processed`. On unless another engine publishes that topic.
    pub publish_processed: bool,
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
            publish_processed: true,
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
    /// Intervals published on `hes.readings.processed`.
    pub processed: AtomicU64,
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

/// The stages' Prometheus metrics (the process's recorder, crate `hes-metrics`). Labels: the
/// stage (`validate`, `process`), a fixed operation or kind of row, a topic, a partition.
pub mod metrics {
    pub const BATCH_DURATION: &str = "hes_pipeline_batch_duration_seconds";
    pub const ROWS: &str = "hes_pipeline_rows_total";
    pub const FLAGGED: &str = "hes_pipeline_flagged_total";
    pub const DEAD_LETTERS: &str = "hes_pipeline_dead_letters_total";
    pub const CONSUMER_LAG: &str = "hes_pipeline_consumer_lag_records";
    pub const STORE_DURATION: &str = "hes_store_operation_duration_seconds";
    pub const STORE_ERRORS: &str = "hes_store_errors_total";
    pub const CACHE_DURATION: &str = "hes_cache_operation_duration_seconds";
    pub const CACHE_ERRORS: &str = "hes_cache_errors_total";
    pub const BUS_ERRORS: &str = "hes_bus_errors_total";

    pub fn describe() {
        use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
        describe_histogram!(
            BATCH_DURATION,
            Unit::Seconds,
            "From a batch gathered to its offsets committed, by stage."
        );
        describe_counter!(ROWS, "Rows a stage has processed, by stage and kind.");
        describe_counter!(FLAGGED, "Readings flagged by validation, by stage.");
        describe_counter!(
            DEAD_LETTERS,
            "Records sent to the dead-letter topic, by the topic they came from."
        );
        describe_gauge!(
            CONSUMER_LAG,
            "Records of a partition not yet consumed by the stage's group member."
        );
        describe_histogram!(
            STORE_DURATION,
            Unit::Seconds,
            "Store operations of the pipeline, by operation."
        );
        describe_counter!(STORE_ERRORS, "Failed store operations, by operation.");
        describe_histogram!(
            CACHE_DURATION,
            Unit::Seconds,
            "Cache updates (latest values, presence, live channels)."
        );
        describe_counter!(CACHE_ERRORS, "Failed cache updates.");
        describe_counter!(
            BUS_ERRORS,
            "Failed bus operations of the pipeline, by operation."
        );
    }

    /// What a retried operation is, as a metric and label: (errors counter, duration
    /// histogram if timed, operation).
    pub(crate) fn op_of(what: &str) -> (&'static str, Option<&'static str>, &'static str) {
        match what {
            "storing readings" => (STORE_ERRORS, Some(STORE_DURATION), "insert_readings"),
            "storing events" => (STORE_ERRORS, Some(STORE_DURATION), "insert_events"),
            "planning aggregation" => (STORE_ERRORS, None, "plan"),
            "aggregating" => (STORE_ERRORS, None, "aggregate"),
            "publishing validated readings" | "publishing processed" => {
                (BUS_ERRORS, None, "publish")
            }
            _ => (STORE_ERRORS, None, "other"),
        }
    }

    pub(crate) fn rows(stage: &'static str, kind: &'static str, n: usize) {
        ::metrics::counter!(ROWS, "stage" => stage, "kind" => kind).increment(n as u64);
    }
}
