//! The warehouse: readings and aggregates exported to Parquet files partitioned by UTC date in
//! the Hive layout, for DuckDB, Spark, DataFusion and the like. See `docs/warehouse.md`.

mod date;
mod exporter;
mod range;
mod schema;

pub use date::{MAX_TIME, MIN_TIME};
pub use exporter::{ExportOptions, Exporter, Summary};
pub use range::{export_range, PAGE};
pub use schema::{flags, value_si, AGGREGATES as AGGREGATES_SCHEMA, READINGS as READINGS_SCHEMA};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("store: {0}")]
    Store(#[from] hes_store::StoreError),
    /// A time outside the years 1..=9999 (UTC): no date partition or Parquet timestamp for it.
    #[error("{what} {time} is outside the years 1 to 9999")]
    TimeOutOfRange { what: &'static str, time: i64 },
    /// A value wider than its column.
    #[error("{what} {value} does not fit its column")]
    ValueOutOfRange { what: &'static str, value: i64 },
    /// The writer and the schema disagree (a bug here, never the data).
    #[error("schema: {0}")]
    Schema(&'static str),
}
