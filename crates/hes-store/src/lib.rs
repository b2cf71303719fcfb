//! The store port: readings and events, written idempotently on their natural keys, and its
//! adapters. `SqliteStore` is the embedded mode's store, `PgStore` the production one
//! (PostgreSQL, time-partitioned; TimescaleDB when the extension is available). Both pass the
//! same conformance suite (`tests/conformance.rs`). See `docs/store.md`.

use std::future::Future;
use std::pin::Pin;

use dlms::ObisCode;
use hes_model::{Aggregate, Event, MeterId, Period, Reading, Source, ValidatedReading};

pub mod accounts;
mod migrations;
pub mod pg;
pub mod registry;
pub mod sqlite;
pub mod state;
pub mod webhooks;

pub use accounts::{Accounts, AccountsError, PgAccounts, SqliteAccounts};
pub use migrations::{migrate, Migration, PG_MIGRATIONS, SQLITE_MIGRATIONS};
pub use pg::PgStore;
pub use registry::{Registry, RegistryError};
pub use sqlite::SqliteStore;
pub use state::cim::{CimOutbox, OutboxItem, OutboxKind};
pub use state::{
    AuditEntry, Claim, Created, JobCounts, JobFilter, NewJob, StateStore, StoredMeter,
};
pub use webhooks::{Delivery, DeliveryState, NewDelivery, Outcome, Webhook, WebhookStore};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("connection pool: {0}")]
    Pool(String),
    /// A value the schema cannot hold (a time beyond the calendar, for instance).
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("migration {version}: {why}")]
    Migration { version: u32, why: String },
    /// A stored row that does not decode into the domain types (edited by hand, or a newer
    /// schema).
    #[error("stored data: {0}")]
    Corrupt(String),
    #[error("background task: {0}")]
    Task(String),
    /// What the caller asked contradicts what is stored (an id or system title taken, a key
    /// version moved on).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            // Kept typed: a failed connect is how a failover shows (`pg::failover`).
            deadpool_postgres::PoolError::Backend(e) => Self::Postgres(e),
            e => Self::Pool(e.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for StoreError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Task(e.to_string())
    }
}

/// Where readings and events are kept. Every write is idempotent on the natural key: a batch
/// delivered again (at-least-once) stores nothing new, and the first stored copy stays.
pub trait Store: Send + Sync {
    /// Stores the readings whose key (meter, obis, attribute, time) is not stored yet; returns
    /// how many rows were newly stored. Duplicates inside the batch count once.
    fn insert_readings<'a>(
        &'a self,
        readings: &'a [Reading],
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Stores the events whose key (meter, log, time, code) is not stored yet; returns how many
    /// rows were newly stored.
    fn insert_events<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// One meter's readings of one object with `from <= time <= to`, ordered by time (then
    /// attribute).
    fn readings<'a>(
        &'a self,
        meter: &'a MeterId,
        obis: ObisCode,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<Reading>, StoreError>>;

    /// The newest stored time of one meter's object: collection's watermark.
    fn latest_reading_time<'a>(
        &'a self,
        meter: &'a MeterId,
        obis: ObisCode,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>>;

    /// How many readings are stored.
    fn count_readings(&self) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// How many events are stored.
    fn count_events(&self) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// [`Store::insert_readings`] for validated readings: the quality flags are stored with
    /// each (the first stored copy of a key keeps its flags).
    fn insert_validated<'a>(
        &'a self,
        readings: &'a [ValidatedReading],
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// One meter's readings with their flags, of one object or (`None`) of all, with
    /// `from <= time <= to`, ordered by (time, obis, attribute); at most `limit` (capped at
    /// [`MAX_PAGE`]).
    fn meter_readings<'a>(
        &'a self,
        meter: &'a MeterId,
        obis: Option<ObisCode>,
        from: i64,
        to: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ValidatedReading>, StoreError>>;

    /// The readings of several meters (all objects) with `from <= time <= to`, ordered by
    /// (meter, obis, attribute, time): what recomputing their aggregates needs.
    fn readings_of_meters<'a>(
        &'a self,
        meters: &'a [MeterId],
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<ValidatedReading>, StoreError>>;

    /// Every reading with `from <= time <= to`, in key order (time, meter, obis, attribute),
    /// from just after `after`; at most `limit` (capped at [`MAX_PAGE`]). For exports.
    fn scan_readings<'a>(
        &'a self,
        from: i64,
        to: i64,
        after: Option<ReadingKey>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ValidatedReading>, StoreError>>;

    /// For each (meter, obis, attribute, t): the newest stored reading of that object before
    /// `t`, and whether any is stored at or after `t`. How the streaming aggregator picks up
    /// where it left off, and tells late data from new.
    fn neighbours<'a>(
        &'a self,
        keys: &'a [ReadingKey],
    ) -> BoxFuture<'a, Result<Vec<Neighbours>, StoreError>>;

    /// Removes what is older than the retention allows at `now`: PostgreSQL drops whole
    /// monthly partitions that end before the readings' cutoff (TimescaleDB: chunks), SQLite
    /// deletes rows; events and hourly aggregates are deleted by time.
    fn apply_retention<'a>(
        &'a self,
        retention: &'a Retention,
        now: i64,
    ) -> BoxFuture<'a, Result<Pruned, StoreError>>;

    /// Stores aggregates that are new; returns how many. Faster than
    /// [`Store::upsert_aggregates`] when none exists yet (a bulk copy), and falls back to it
    /// when one does, so it is always safe.
    fn insert_aggregates<'a>(
        &'a self,
        aggregates: &'a [Aggregate],
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.upsert_aggregates(aggregates)
    }

    /// Stores aggregates, replacing those of the same (subject, channel, period, start): they
    /// are recomputed from the stored data, so the newest computation is the right one.
    fn upsert_aggregates<'a>(
        &'a self,
        aggregates: &'a [Aggregate],
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// The aggregates of the given subjects (meter ids or `key=value` groups) for one period
    /// kind with `from <= period_start <= to`, of one channel or (`None`) all, ordered by
    /// (subject, channel, period_start).
    fn aggregates<'a>(
        &'a self,
        subjects: &'a [String],
        channel: Option<&'a str>,
        period: Period,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<Aggregate>, StoreError>>;

    /// Every aggregate of one period kind with `from <= period_start <= to`, ordered by
    /// (period_start, subject, channel), skipping `offset`; at most `limit` (capped at
    /// [`MAX_PAGE`]). For exports.
    fn scan_aggregates<'a>(
        &'a self,
        period: Period,
        from: i64,
        to: i64,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Aggregate>, StoreError>>;
}

/// Readings as validated with nothing to say about them (quality 0).
pub(crate) fn unflagged(readings: &[Reading]) -> Vec<ValidatedReading> {
    readings
        .iter()
        .map(|r| ValidatedReading {
            reading: r.clone(),
            quality: hes_model::Quality::OK,
        })
        .collect()
}

pub(crate) fn parse_period(s: &str) -> Result<Period, StoreError> {
    Period::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown period {s:?}")))
}

/// A quality stored as a signed 32-bit integer.
pub(crate) fn quality_of(q: i64) -> Result<hes_model::Quality, StoreError> {
    u32::try_from(q)
        .map(hes_model::Quality)
        .map_err(|_| StoreError::Corrupt(format!("quality out of range: {q}")))
}

/// A limit the store honours: at least 1, at most [`MAX_PAGE`].
pub(crate) fn page(limit: usize) -> i64 {
    limit.clamp(1, MAX_PAGE) as i64
}

/// A reading's natural key, (meter, obis, attribute, time): where a scan resumes.
pub type ReadingKey = (MeterId, ObisCode, i8, i64);

/// How long data is kept; `None` keeps it for ever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Readings (raw values with their flags).
    pub readings_days: Option<u32>,
    /// Events and alarms.
    pub events_days: Option<u32>,
    /// Hourly aggregates (days and months are kept: they are small).
    pub hourly_days: Option<u32>,
}

/// What [`Store::apply_retention`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Whole time partitions (PostgreSQL months, TimescaleDB chunks) dropped.
    pub partitions: Vec<String>,
    /// Rows deleted one by one (SQLite, events, hourly aggregates).
    pub rows: u64,
}

/// The first second kept by a retention of `days` at `now`.
pub(crate) fn cutoff(now: i64, days: u32) -> i64 {
    now.saturating_sub(i64::from(days).saturating_mul(86_400))
}

/// What [`Store::neighbours`] says of one key: the newest stored reading before its time, and
/// whether any is stored at or after it.
pub type Neighbours = (Option<ValidatedReading>, bool);

/// The most rows one query returns: callers page beyond it.
pub const MAX_PAGE: usize = 100_000;

pub(crate) fn source_text(s: Source) -> &'static str {
    match s {
        Source::Scheduled => "scheduled",
        Source::OnDemand => "on_demand",
        Source::Push => "push",
    }
}

pub(crate) fn parse_source(s: &str) -> Result<Source, StoreError> {
    match s {
        "scheduled" => Ok(Source::Scheduled),
        "on_demand" => Ok(Source::OnDemand),
        "push" => Ok(Source::Push),
        other => Err(StoreError::Corrupt(format!("unknown source {other:?}"))),
    }
}

pub(crate) fn parse_obis(s: &str) -> Result<ObisCode, StoreError> {
    s.parse::<ObisCode>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A stored integer that must fit a narrower domain type.
pub(crate) fn narrow<T: TryFrom<i64>>(v: i64, what: &str) -> Result<T, StoreError> {
    T::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {v}")))
}

/// Whether `url_or_path` names a PostgreSQL database (else it is a SQLite file path).
pub fn is_postgres_url(url_or_path: &str) -> bool {
    url_or_path.starts_with("postgres://") || url_or_path.starts_with("postgresql://")
}
