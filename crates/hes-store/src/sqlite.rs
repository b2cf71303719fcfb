//! The embedded store: one SQLite connection (a file in WAL mode, or in memory), used from
//! `spawn_blocking` so that the async runtime never waits on disk.

use std::path::Path;
use std::sync::{Arc, Mutex};

use dlms::ObisCode;
use hes_model::{Event, MeterId, Reading};
use rusqlite::{params, Connection, OptionalExtension};

use crate::migrations::migrate_sqlite;
use crate::{narrow, parse_obis, parse_source, source_text, BoxFuture, Store, StoreError};

/// The SQLite adapter of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating it if needed) the database file at `path`, in WAL mode, and applies the
    /// pending migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        Self::init(move || {
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            Ok(conn)
        })
        .await
    }

    /// A private database in memory (gone when the store is dropped).
    pub async fn in_memory() -> Result<Self, StoreError> {
        Self::init(|| Ok(Connection::open_in_memory()?)).await
    }

    async fn init(
        open: impl FnOnce() -> Result<Connection, StoreError> + Send + 'static,
    ) -> Result<Self, StoreError> {
        let conn = tokio::task::spawn_blocking(move || {
            let mut conn = open()?;
            migrate_sqlite(&mut conn)?;
            Ok::<_, StoreError>(conn)
        })
        .await??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection in a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Task("a previous call panicked".into()))?;
            f(&mut guard)
        })
        .await?
    }
}

const READING_COLUMNS: &str =
    "meter, obis, attribute, time, class_id, value, scaler, unit, status, source, received_at";

fn reading_from_row(r: &rusqlite::Row<'_>) -> Result<Reading, StoreError> {
    let obis: String = r.get(1)?;
    let source: String = r.get(9)?;
    Ok(Reading {
        meter: MeterId(r.get(0)?),
        obis: parse_obis(&obis)?,
        attribute: narrow(r.get(2)?, "attribute")?,
        time: r.get(3)?,
        class_id: narrow(r.get(4)?, "class_id")?,
        value: r.get(5)?,
        scaler: narrow(r.get(6)?, "scaler")?,
        unit: narrow(r.get(7)?, "unit")?,
        status: narrow(r.get(8)?, "status")?,
        source: parse_source(&source)?,
        received_at: r.get(10)?,
    })
}

impl Store for SqliteStore {
    fn insert_readings<'a>(
        &'a self,
        readings: &'a [Reading],
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            if readings.is_empty() {
                return Ok(0);
            }
            let batch = readings.to_vec();
            self.with(move |conn| {
                let tx = conn.transaction()?;
                let mut stored = 0u64;
                {
                    let mut st = tx.prepare_cached(&format!(
                        "INSERT INTO readings ({READING_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                         ON CONFLICT DO NOTHING"
                    ))?;
                    for r in &batch {
                        let n = st.execute(params![
                            r.meter.0,
                            r.obis.to_string(),
                            r.attribute,
                            r.time,
                            r.class_id,
                            r.value,
                            r.scaler,
                            r.unit,
                            r.status,
                            source_text(r.source),
                            r.received_at,
                        ])?;
                        stored += n as u64;
                    }
                }
                tx.commit()?;
                Ok(stored)
            })
            .await
        })
    }

    fn insert_events<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(0);
            }
            let batch = events.to_vec();
            self.with(move |conn| {
                let tx = conn.transaction()?;
                let mut stored = 0u64;
                {
                    let mut st = tx.prepare_cached(
                        "INSERT INTO events (meter, log, time, code, source, received_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                    )?;
                    for e in &batch {
                        let n = st.execute(params![
                            e.meter.0,
                            e.log.to_string(),
                            e.time,
                            e.code,
                            source_text(e.source),
                            e.received_at,
                        ])?;
                        stored += n as u64;
                    }
                }
                tx.commit()?;
                Ok(stored)
            })
            .await
        })
    }

    fn readings<'a>(
        &'a self,
        meter: &'a MeterId,
        obis: ObisCode,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<Reading>, StoreError>> {
        Box::pin(async move {
            let meter = meter.0.clone();
            self.with(move |conn| {
                let mut st = conn.prepare_cached(&format!(
                    "SELECT {READING_COLUMNS} FROM readings
                     WHERE meter = ?1 AND obis = ?2 AND time BETWEEN ?3 AND ?4
                     ORDER BY time, attribute"
                ))?;
                let mut rows = st.query(params![meter, obis.to_string(), from, to])?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(reading_from_row(row)?);
                }
                Ok(out)
            })
            .await
        })
    }

    fn latest_reading_time<'a>(
        &'a self,
        meter: &'a MeterId,
        obis: ObisCode,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let meter = meter.0.clone();
            self.with(move |conn| {
                let t = conn
                    .prepare_cached(
                        "SELECT time FROM readings WHERE meter = ?1 AND obis = ?2
                         ORDER BY time DESC LIMIT 1",
                    )?
                    .query_row(params![meter, obis.to_string()], |r| r.get(0))
                    .optional()?;
                Ok(t)
            })
            .await
        })
    }

    fn count_readings(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.with(|conn| count(conn, "readings")))
    }

    fn count_events(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.with(|conn| count(conn, "events")))
    }
}

fn count(conn: &mut Connection, table: &str) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
    narrow(n, "count")
}
