//! The store port: readings and events, written idempotently on their natural keys, and its
//! adapters. `SqliteStore` is the embedded mode's store, `PgStore` the production one
//! (PostgreSQL, time-partitioned; TimescaleDB when the extension is available). Both pass the
//! same conformance suite (`tests/conformance.rs`). See `docs/store.md`.

use std::future::Future;
use std::pin::Pin;

use dlms::ObisCode;
use hes_model::{Event, MeterId, Reading, Source};

mod migrations;
pub mod pg;
pub mod sqlite;

pub use migrations::{migrate, Migration, PG_MIGRATIONS, SQLITE_MIGRATIONS};
pub use pg::PgStore;
pub use sqlite::SqliteStore;

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
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Pool(e.to_string())
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
}

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
