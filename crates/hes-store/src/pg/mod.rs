//! The production store: PostgreSQL through a `deadpool-postgres` pool.
//!
//! Writes go as one binary COPY into a session-local staging table, then one
//! `INSERT … SELECT … ON CONFLICT DO NOTHING` into the real table, in one transaction: the bulk
//! rate of COPY with the idempotency of the natural key. `readings` is partitioned by month on
//! `time` (partitions are created on demand before a batch that needs them), or a TimescaleDB
//! hypertable when the extension is available (see the migration).

use std::collections::HashSet;
use std::pin::pin;
use std::sync::Mutex;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use dlms::ObisCode;
use hes_model::{Aggregate, Event, MeterId, Period, Quality, Reading, ValidatedReading};
use time::{Date, Month, OffsetDateTime};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row};

pub mod failover;
mod partitions;
mod rows;

use partitions::*;
use rows::*;

use crate::migrations::migrate_pg;
use crate::{
    narrow, page, parse_obis, parse_period, parse_source, quality_of, source_text, unflagged,
    BoxFuture, Neighbours, Pruned, ReadingKey, Retention, Store, StoreError,
};

/// Connections in the pool unless told otherwise.
pub const DEFAULT_POOL_SIZE: usize = 8;

pub use failover::CONNECT_TIMEOUT;

/// The PostgreSQL adapter of [`Store`].
pub struct PgStore {
    pub(crate) pool: Pool,
    /// `readings` is natively partitioned (false: a TimescaleDB hypertable, which makes its
    /// own chunks).
    partitioned: bool,
    /// Month starts (Unix s) whose partition is known to exist.
    partitions: Mutex<HashSet<i64>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("partitioned", &self.partitioned)
            .finish_non_exhaustive()
    }
}

const READING_COLUMNS: &str =
    "meter, obis, attribute, time, class_id, value, scaler, unit, status, source, received_at";
const VALIDATED_COLUMNS: &str = "meter, obis, attribute, time, class_id, value, scaler, unit, \
     status, source, received_at, quality";
const AGGREGATE_COLUMNS: &str =
    "subject, channel, period, period_start, period_end, total, count, complete, quality";
const READING_TYPES: &[Type] = &[
    Type::TEXT,
    Type::TEXT,
    Type::INT2,
    Type::INT8,
    Type::INT4,
    Type::INT8,
    Type::INT2,
    Type::INT2,
    Type::INT2,
    Type::TEXT,
    Type::INT8,
    Type::INT4,
];
const EVENT_COLUMNS: &str = "meter, log, time, code, source, received_at";
const EVENT_TYPES: &[Type] = &[
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT4,
    Type::TEXT,
    Type::INT8,
];

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`), applies pending migrations and
    /// keeps a pool of [`DEFAULT_POOL_SIZE`] connections.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, DEFAULT_POOL_SIZE).await
    }

    pub async fn connect_with(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let cfg = failover::config(url)?;
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(pool_size.max(1))
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let mut client = pool.get().await?;
        migrate_pg(&mut client).await?;
        let partitioned: bool = client
            .query_one(
                "SELECT coalesce((SELECT relkind = 'p' FROM pg_class
                                  WHERE oid = to_regclass('readings')), false)",
                &[],
            )
            .await?
            .try_get(0)?;
        Ok(Self {
            pool,
            partitioned,
            partitions: Mutex::new(HashSet::new()),
        })
    }

    /// Whether `readings` is natively partitioned (else a TimescaleDB hypertable).
    pub fn is_partitioned(&self) -> bool {
        self.partitioned
    }

    /// Raw bulk load: one binary COPY straight into `readings`, without the conflict path.
    /// Fails (and stores nothing) if any key is stored already; for loading into empty time
    /// ranges and for measuring the ceiling. Returns the rows copied.
    pub async fn copy_readings_unchecked(&self, readings: &[Reading]) -> Result<u64, StoreError> {
        let mut client = self.pool.get().await?;
        self.ensure_partitions(&client, readings.iter().map(|r| r.time))
            .await?;
        let tx = client.transaction().await?;
        let n = copy_readings(&tx, "readings", readings.iter().map(|r| (r, 0))).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Empties `readings` and `events` (for tests and benchmarks).
    pub async fn truncate(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .batch_execute("TRUNCATE readings, events, aggregates")
            .await?;
        Ok(())
    }
}

impl Store for PgStore {
    fn insert_readings<'a>(
        &'a self,
        readings: &'a [Reading],
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move { self.insert_validated(&unflagged(readings)).await })
    }

    fn insert_events<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(failover::retrying(
            &self.pool,
            "insert events",
            move || async move {
                if events.is_empty() {
                    return Ok(0);
                }
                let mut client = self.pool.get().await?;
                let tx = client.transaction().await?;
                tx.batch_execute(
                    "CREATE TEMP TABLE IF NOT EXISTS events_stage (
                    meter text, log text, time bigint, code integer, source text,
                    received_at bigint) ON COMMIT DELETE ROWS",
                )
                .await?;
                copy_events(&tx, events).await?;
                let stored = tx
                    .execute(
                        &format!(
                            "INSERT INTO events ({EVENT_COLUMNS})
                         SELECT {EVENT_COLUMNS} FROM events_stage ON CONFLICT DO NOTHING"
                        ),
                        &[],
                    )
                    .await?;
                tx.commit().await?;
                Ok(stored)
            },
        ))
    }

    fn readings<'a>(
        &'a self,
        meter: &'a MeterId,
        obis: ObisCode,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<Reading>, StoreError>> {
        Box::pin(failover::retrying(
            &self.pool,
            "readings",
            move || async move {
                let client = self.pool.get().await?;
                let st = client
                    .prepare_cached(&format!(
                        "SELECT {READING_COLUMNS} FROM readings
                         WHERE meter = $1 AND obis = $2 AND time BETWEEN $3 AND $4
                         ORDER BY time, attribute"
                    ))
                    .await?;
                let rows = client
                    .query(&st, &[&meter.0, &obis.to_string(), &from, &to])
                    .await?;
                rows.iter().map(reading_from_row).collect()
            },
        ))
    }

    fn latest_reading_time<'a>(
        &'a self,
        meter: &'a MeterId,
        obis: ObisCode,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        Box::pin(failover::retrying(
            &self.pool,
            "latest reading time",
            move || async move {
                let client = self.pool.get().await?;
                let st = client
                    .prepare_cached("SELECT max(time) FROM readings WHERE meter = $1 AND obis = $2")
                    .await?;
                let row = client
                    .query_one(&st, &[&meter.0, &obis.to_string()])
                    .await?;
                Ok(row.try_get(0)?)
            },
        ))
    }

    fn count_readings(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(failover::retrying(
            &self.pool,
            "count readings",
            move || self.count("readings"),
        ))
    }

    fn count_events(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(failover::retrying(&self.pool, "count events", move || {
            self.count("events")
        }))
    }

    fn insert_validated<'a>(
        &'a self,
        readings: &'a [ValidatedReading],
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(failover::retrying(
            &self.pool,
            "insert validated",
            move || async move {
                if readings.is_empty() {
                    return Ok(0);
                }
                let mut rows = Vec::with_capacity(readings.len());
                for v in readings {
                    rows.push((&v.reading, quality_i32(v.quality)?));
                }
                let mut client = self.pool.get().await?;
                self.ensure_partitions(&client, readings.iter().map(|v| v.reading.time))
                    .await?;
                let tx = client.transaction().await?;
                // Optimistically COPY straight into `readings`: with no key stored yet (the usual
                // case: replays are rare) that is the raw bulk rate. A duplicate key aborts it; then
                // the batch goes the idempotent way, through a staging table and ON CONFLICT.
                tx.batch_execute("SAVEPOINT direct").await?;
                match copy_readings(&tx, "readings", rows.iter().copied()).await {
                    Ok(n) => {
                        tx.commit().await?;
                        return Ok(n);
                    }
                    Err(StoreError::Postgres(e))
                        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
                    {
                        tx.batch_execute("ROLLBACK TO SAVEPOINT direct").await?;
                    }
                    Err(e) => return Err(e),
                }
                // Session-local; emptied at every commit.
                tx.batch_execute(
                    "CREATE TEMP TABLE IF NOT EXISTS readings_stage (
                    meter text, obis text, attribute smallint, time bigint, class_id integer,
                    value bigint, scaler smallint, unit smallint, status smallint, source text,
                    received_at bigint, quality integer) ON COMMIT DELETE ROWS",
                )
                .await?;
                copy_readings(&tx, "readings_stage", rows.into_iter()).await?;
                let stored = tx
                    .execute(
                        &format!(
                            "INSERT INTO readings ({VALIDATED_COLUMNS})
                         SELECT {VALIDATED_COLUMNS} FROM readings_stage
                         ON CONFLICT DO NOTHING"
                        ),
                        &[],
                    )
                    .await?;
                tx.commit().await?;
                Ok(stored)
            },
        ))
    }

    fn meter_readings<'a>(
        &'a self,
        meter: &'a MeterId,
        obis: Option<ObisCode>,
        from: i64,
        to: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ValidatedReading>, StoreError>> {
        Box::pin(failover::retrying(
            &self.pool,
            "meter readings",
            move || async move {
                let client = self.pool.get().await?;
                let obis = obis.map(|o| o.to_string());
                let st = client
                    .prepare_cached(&format!(
                        "SELECT {VALIDATED_COLUMNS} FROM readings
                         WHERE meter = $1 AND ($2::text IS NULL OR obis = $2)
                           AND time BETWEEN $3 AND $4
                         ORDER BY time, obis, attribute LIMIT $5"
                    ))
                    .await?;
                let rows = client
                    .query(&st, &[&meter.0, &obis, &from, &to, &page(limit)])
                    .await?;
                rows.iter().map(validated_from_row).collect()
            },
        ))
    }

    fn readings_of_meters<'a>(
        &'a self,
        meters: &'a [MeterId],
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<ValidatedReading>, StoreError>> {
        Box::pin(failover::retrying(
            &self.pool,
            "readings of meters",
            move || async move {
                let client = self.pool.get().await?;
                let meters: Vec<&str> = meters.iter().map(|m| m.0.as_str()).collect();
                let st = client
                    .prepare_cached(&format!(
                        "SELECT {VALIDATED_COLUMNS} FROM readings
                         WHERE meter = ANY($1) AND time BETWEEN $2 AND $3
                         ORDER BY meter, obis, attribute, time"
                    ))
                    .await?;
                let rows = client.query(&st, &[&meters, &from, &to]).await?;
                rows.iter().map(validated_from_row).collect()
            },
        ))
    }

    fn scan_readings<'a>(
        &'a self,
        from: i64,
        to: i64,
        after: Option<ReadingKey>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ValidatedReading>, StoreError>> {
        Box::pin(async move {
            // Owned here: every attempt borrows it.
            let after = &after;
            failover::retrying(&self.pool, "scan readings", move || async move {
                let client = self.pool.get().await?;
                let (t, m, o, a) = match after.clone() {
                    Some((m, o, a, t)) => (t, m.0, o.to_string(), i16::from(a)),
                    None => (
                        from.saturating_sub(1),
                        String::new(),
                        String::new(),
                        i16::MIN,
                    ),
                };
                let st = client
                    .prepare_cached(&format!(
                        "SELECT {VALIDATED_COLUMNS} FROM readings
                         WHERE time BETWEEN $1 AND $2
                           AND (time, meter, obis, attribute) > ($3, $4, $5, $6)
                         ORDER BY time, meter, obis, attribute LIMIT $7"
                    ))
                    .await?;
                let rows = client
                    .query(&st, &[&from, &to, &t, &m, &o, &a, &page(limit)])
                    .await?;
                rows.iter().map(validated_from_row).collect()
            })
            .await
        })
    }

    fn apply_retention<'a>(
        &'a self,
        retention: &'a Retention,
        now: i64,
    ) -> BoxFuture<'a, Result<Pruned, StoreError>> {
        Box::pin(failover::retrying(
            &self.pool,
            "apply retention",
            move || async move {
                let client = self.pool.get().await?;
                let mut pruned = Pruned::default();
                if let Some(d) = retention.readings_days {
                    let cut = crate::cutoff(now, d);
                    if self.partitioned {
                        // Monthly partitions wholly before the cutoff; the month holding it stays.
                        let rows = client
                            .query(
                                "SELECT c.relname::text FROM pg_inherits i
                             JOIN pg_class c ON c.oid = i.inhrelid
                             WHERE i.inhparent = 'readings'::regclass ORDER BY 1",
                                &[],
                            )
                            .await?;
                        for r in rows {
                            let name: String = r.try_get(0)?;
                            let Some(start) = partition_start(&name) else {
                                continue;
                            };
                            let (_, end) = partition_of(start)?;
                            if end <= cut {
                                client
                                    .batch_execute(&format!("DROP TABLE IF EXISTS \"{name}\""))
                                    .await?;
                                if let Ok(mut known) = self.partitions.lock() {
                                    known.remove(&start);
                                }
                                pruned.partitions.push(name);
                            }
                        }
                    } else {
                        let rows = client
                            .query(
                                "SELECT drop_chunks('readings', older_than => $1::bigint)::text",
                                &[&cut],
                            )
                            .await?;
                        for r in rows {
                            pruned.partitions.push(r.try_get(0)?);
                        }
                    }
                }
                if let Some(d) = retention.events_days {
                    pruned.rows += client
                        .execute(
                            "DELETE FROM events WHERE time < $1",
                            &[&crate::cutoff(now, d)],
                        )
                        .await?;
                }
                if let Some(d) = retention.hourly_days {
                    pruned.rows += client
                        .execute(
                            "DELETE FROM aggregates WHERE period = 'hour' AND period_start < $1",
                            &[&crate::cutoff(now, d)],
                        )
                        .await?;
                }
                Ok(pruned)
            },
        ))
    }

    fn neighbours<'a>(
        &'a self,
        keys: &'a [ReadingKey],
    ) -> BoxFuture<'a, Result<Vec<Neighbours>, StoreError>> {
        Box::pin(failover::retrying(
            &self.pool,
            "neighbours",
            move || async move {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                let meters: Vec<&str> = keys.iter().map(|k| k.0 .0.as_str()).collect();
                let obis: Vec<String> = keys.iter().map(|k| k.1.to_string()).collect();
                let attrs: Vec<i16> = keys.iter().map(|k| i16::from(k.2)).collect();
                let times: Vec<i64> = keys.iter().map(|k| k.3).collect();
                let cols = VALIDATED_COLUMNS
                    .split(", ")
                    .map(|c| format!("p.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let client = self.pool.get().await?;
                // One round trip: each key's two index lookups side by side.
                let st = client
                    .prepare_cached(&format!(
                        "SELECT k.i, {cols},
                           EXISTS (SELECT 1 FROM readings r WHERE r.meter = k.m AND r.obis = k.o
                                   AND r.attribute = k.a AND r.time >= k.t) AS later
                         FROM unnest($1::text[], $2::text[], $3::int2[], $4::int8[])
                              WITH ORDINALITY AS k(m, o, a, t, i)
                         LEFT JOIN LATERAL (
                           SELECT * FROM readings r WHERE r.meter = k.m AND r.obis = k.o
                             AND r.attribute = k.a AND r.time < k.t
                           ORDER BY r.time DESC LIMIT 1) p ON true
                         ORDER BY k.i"
                    ))
                    .await?;
                let rows = client.query(&st, &[&meters, &obis, &attrs, &times]).await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    // Columns shifted by one (the ordinal first).
                    let prev = match r.try_get::<_, Option<String>>(1)? {
                        None => None,
                        Some(_) => Some(validated_from_row_at(r, 1)?),
                    };
                    out.push((prev, r.try_get::<_, bool>(13)?));
                }
                Ok(out)
            },
        ))
    }

    fn insert_aggregates<'a>(
        &'a self,
        aggregates: &'a [Aggregate],
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(failover::retrying(
            &self.pool,
            "insert aggregates",
            move || async move {
                if aggregates.is_empty() {
                    return Ok(0);
                }
                let now = OffsetDateTime::now_utc().unix_timestamp();
                let mut client = self.pool.get().await?;
                let tx = client.transaction().await?;
                let sink = tx
                    .copy_in(&format!(
                    "COPY aggregates ({AGGREGATE_COLUMNS}, updated_at) FROM STDIN (FORMAT binary)"
                ))
                    .await?;
                let types = [
                    Type::TEXT,
                    Type::TEXT,
                    Type::TEXT,
                    Type::INT8,
                    Type::INT8,
                    Type::FLOAT8,
                    Type::INT4,
                    Type::BOOL,
                    Type::INT4,
                    Type::INT8,
                ];
                let copied = async {
                    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
                    for a in aggregates {
                        let count = i32::try_from(a.count).map_err(|_| {
                            StoreError::Invalid(format!("aggregate count {} out of range", a.count))
                        })?;
                        let q = quality_i32(a.quality_worst)?;
                        let row: [&(dyn ToSql + Sync); 10] = [
                            &a.subject,
                            &a.channel,
                            &a.period.as_str(),
                            &a.period_start,
                            &a.period_end,
                            &a.total,
                            &count,
                            &a.complete,
                            &q,
                            &now,
                        ];
                        writer.as_mut().write(&row).await?;
                    }
                    Ok::<_, StoreError>(writer.finish().await?)
                }
                .await;
                match copied {
                    Ok(n) => {
                        tx.commit().await?;
                        Ok(n)
                    }
                    Err(StoreError::Postgres(e))
                        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
                    {
                        drop(tx);
                        drop(client);
                        self.upsert_aggregates(aggregates).await
                    }
                    Err(e) => Err(e),
                }
            },
        ))
    }

    fn upsert_aggregates<'a>(
        &'a self,
        aggregates: &'a [Aggregate],
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(failover::retrying(
            &self.pool,
            "upsert aggregates",
            move || async move {
                if aggregates.is_empty() {
                    return Ok(0);
                }
                let now = OffsetDateTime::now_utc().unix_timestamp();
                // One statement for the whole batch: columns as arrays, unnested.
                type Keys<'k> = (Vec<&'k str>, Vec<&'k str>, Vec<&'k str>, Vec<i64>, Vec<i64>);
                let mut cols: Keys<'_> = Default::default();
                let mut nums: (Vec<f64>, Vec<i32>, Vec<bool>, Vec<i32>) = Default::default();
                // The last of duplicates in the batch wins (ON CONFLICT cannot touch a row twice).
                let mut seen = std::collections::HashMap::new();
                for (i, a) in aggregates.iter().enumerate() {
                    seen.insert((&a.subject, &a.channel, a.period, a.period_start), i);
                }
                let mut idx: Vec<usize> = seen.into_values().collect();
                idx.sort_unstable();
                for i in idx {
                    let Some(a) = aggregates.get(i) else { continue };
                    cols.0.push(&a.subject);
                    cols.1.push(&a.channel);
                    cols.2.push(a.period.as_str());
                    cols.3.push(a.period_start);
                    cols.4.push(a.period_end);
                    nums.0.push(a.total);
                    nums.1.push(i32::try_from(a.count).map_err(|_| {
                        StoreError::Invalid(format!("aggregate count {} out of range", a.count))
                    })?);
                    nums.2.push(a.complete);
                    nums.3.push(quality_i32(a.quality_worst)?);
                }
                let client = self.pool.get().await?;
                let n = client
                    .execute(
                        &format!(
                            "INSERT INTO aggregates ({AGGREGATE_COLUMNS}, updated_at)
                         SELECT *, $10::bigint FROM unnest($1::text[], $2::text[], $3::text[],
                           $4::bigint[], $5::bigint[], $6::float8[], $7::int4[], $8::bool[],
                           $9::int4[])
                         ON CONFLICT (subject, channel, period, period_start) DO UPDATE SET
                           period_end = excluded.period_end, total = excluded.total,
                           count = excluded.count, complete = excluded.complete,
                           quality = excluded.quality, updated_at = excluded.updated_at"
                        ),
                        &[
                            &cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &nums.0, &nums.1, &nums.2,
                            &nums.3, &now,
                        ],
                    )
                    .await?;
                Ok(n)
            },
        ))
    }

    fn aggregates<'a>(
        &'a self,
        subjects: &'a [String],
        channel: Option<&'a str>,
        period: Period,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<Aggregate>, StoreError>> {
        Box::pin(failover::retrying(
            &self.pool,
            "aggregates",
            move || async move {
                let client = self.pool.get().await?;
                let st = client
                    .prepare_cached(&format!(
                        "SELECT {AGGREGATE_COLUMNS} FROM aggregates
                         WHERE subject = ANY($1) AND ($2::text IS NULL OR channel = $2)
                           AND period = $3 AND period_start BETWEEN $4 AND $5
                         ORDER BY subject, channel, period_start"
                    ))
                    .await?;
                let rows = client
                    .query(&st, &[&subjects, &channel, &period.as_str(), &from, &to])
                    .await?;
                rows.iter().map(aggregate_from_row).collect()
            },
        ))
    }

    fn scan_aggregates<'a>(
        &'a self,
        period: Period,
        from: i64,
        to: i64,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Aggregate>, StoreError>> {
        Box::pin(failover::retrying(
            &self.pool,
            "scan aggregates",
            move || async move {
                let client = self.pool.get().await?;
                let offset = i64::try_from(offset).unwrap_or(i64::MAX);
                let st = client
                    .prepare_cached(&format!(
                        "SELECT {AGGREGATE_COLUMNS} FROM aggregates
                         WHERE period = $1 AND period_start BETWEEN $2 AND $3
                         ORDER BY period_start, subject, channel LIMIT $4 OFFSET $5"
                    ))
                    .await?;
                let rows = client
                    .query(&st, &[&period.as_str(), &from, &to, &page(limit), &offset])
                    .await?;
                rows.iter().map(aggregate_from_row).collect()
            },
        ))
    }
}

impl PgStore {
    async fn count(&self, table: &'static str) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .try_get(0)?;
        narrow(n, "count")
    }
}
