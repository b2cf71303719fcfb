//! The embedded store: one SQLite writer connection (a file in WAL mode, or in memory) and,
//! for a file, a few read-only connections for the pure read queries, all used from
//! `spawn_blocking` so that the async runtime never waits on disk.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use dlms::ObisCode;
use hes_model::{Aggregate, Event, MeterId, Period, Reading, ValidatedReading};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::migrations::migrate_sqlite;
use crate::{
    narrow, page, parse_obis, parse_period, parse_source, quality_of, source_text, unflagged,
    BoxFuture, Neighbours, Pruned, ReadingKey, Retention, Store, StoreError,
};

/// The SQLite adapter of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Every write and transaction goes through this one connection, so SQLite never has two
    /// writers to arbitrate (and the state port's transactions stay serialised).
    writer: Writer,
    /// Read-only connections for the pure reads (`None` in memory: a private in-memory
    /// database is not shared across connections, so reads use the writer).
    readers: Option<ReadPool>,
}

/// One call on the writer connection: whether it succeeded, and how to answer once the
/// transaction it ran in has ended (`Some(why)` when the commit failed).
type Call = Box<dyn FnOnce(&mut Connection) -> (bool, Reply) + Send>;
type Reply = Box<dyn FnOnce(Option<String>) + Send>;

/// The writer connection, owned by one thread that runs the calls queued to it: all those
/// waiting when it looks are run in one transaction, each inside a savepoint of its own (a
/// group commit). Under load (a collector's claims, counter leases and job ends) a transaction
/// serves dozens of calls, without a thread hand-off or a lock per call; alone, a call commits
/// at once. Calls from one caller keep their order, and none is answered before its commit.
#[derive(Debug, Clone)]
struct Writer {
    queue: std::sync::mpsc::Sender<Call>,
}

/// Calls one transaction takes at most, so that none waits behind an unbounded batch.
const BATCH: usize = 256;

impl Writer {
    fn start(mut conn: Connection) -> Result<Self, StoreError> {
        let (queue, calls) = std::sync::mpsc::channel::<Call>();
        // Statements of the per-job calls stay parsed (the default keeps 16).
        conn.set_prepared_statement_cache_capacity(128);
        std::thread::Builder::new()
            .name("hes-sqlite-writer".into())
            .spawn(move || {
                // Ends when the last handle to the store is dropped (the database with it,
                // in memory).
                while let Ok(first) = calls.recv() {
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match calls.try_recv() {
                            Ok(c) => batch.push(c),
                            Err(_) => break,
                        }
                    }
                    run_batch(&mut conn, batch);
                }
            })
            .map_err(|e| StoreError::Task(format!("starting the SQLite writer: {e}")))?;
        Ok(Self { queue })
    }
}

fn run_batch(conn: &mut Connection, batch: Vec<Call>) {
    // IMMEDIATE: another connection to the file (the accounts') cannot slip a write in
    // between a call's read and its write.
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Not run: dropping a call drops its reply, and each caller gets an error.
        tracing::warn!(error = %e, calls = batch.len(), "the store could not begin a transaction");
        return;
    }
    let mut replies = Vec::with_capacity(batch.len());
    for call in batch {
        if let Err(e) = conn.execute_batch("SAVEPOINT call") {
            tracing::warn!(error = %e, "a store call was not run");
            continue;
        }
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(conn)));
        let ok = matches!(run, Ok((true, _)));
        let undo = if ok {
            "RELEASE call"
        } else {
            "ROLLBACK TO call; RELEASE call"
        };
        if let Err(e) = conn.execute_batch(undo) {
            tracing::error!(error = %e, "ending a store call's savepoint");
        }
        if let Ok((_, reply)) = run {
            replies.push(reply);
        }
        // A call that panicked dropped its reply: its caller gets an error.
    }
    let failed = match conn.execute_batch("COMMIT") {
        Ok(()) => None,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Some(e.to_string())
        }
    };
    for reply in replies {
        reply(failed.clone());
    }
}

/// A fixed set of read-only connections to one database file, each lent to one query at a
/// time: WAL lets them read while another connection writes, and a reader sees every
/// transaction committed before its query began. A query waits only when all are lent.
///
/// Hand-made rather than r2d2/deadpool: the connections are fixed (opened once, never
/// recycled or health-checked: a file connection does not go stale), and a mutex and a condvar
/// are all that lending them takes.
#[derive(Debug, Clone)]
pub struct ReadPool(Arc<Readers>);

#[derive(Debug)]
struct Readers {
    free: Mutex<Vec<Connection>>,
    returned: Condvar,
}

/// Returns the borrowed connection to the free list, even when the query panicked.
struct Lent<'a> {
    readers: &'a Readers,
    conn: Option<Connection>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let mut free = self
                .readers
                .free
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            free.push(c);
            self.readers.returned.notify_one();
        }
    }
}

/// How much of the file the read connections map (address space, not memory: the pages are
/// the kernel's page cache, shared by all of them).
const READ_MMAP_BYTES: i64 = 2 << 30;

impl ReadPool {
    /// Read connections of a file store unless told otherwise: enough to keep the cores busy
    /// and the disk queue fed, few enough that their page caches stay small.
    pub fn default_size() -> usize {
        std::thread::available_parallelism()
            .map_or(2, std::num::NonZeroUsize::get)
            .saturating_mul(2)
            .clamp(2, 8)
    }

    /// Opens `size` (at least one) read-only connections to the database file at `path`, which
    /// must exist (in WAL mode for the readers not to wait on writers). Blocking.
    pub fn open(path: impl AsRef<Path>, size: usize) -> Result<Self, rusqlite::Error> {
        let conns = (0..size.max(1))
            .map(|_| {
                let c = Connection::open_with_flags(
                    path.as_ref(),
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(5))?;
                // Pages read through a shared mapping of the file instead of a `pread` copy
                // into each connection's own cache (the reads' largest system cost).
                c.pragma_update(None, "mmap_size", READ_MMAP_BYTES)?;
                // Plans that do not depend on bound values: with STAT4 (which the bundled
                // SQLite has) a statement comparing a parameter with an indexed column is
                // otherwise prepared again whenever the value changes, i.e. every request.
                c.set_db_config(
                    rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
                    true,
                )?;
                Ok(c)
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()?;
        Ok(Self(Arc::new(Readers {
            free: Mutex::new(conns),
            returned: Condvar::new(),
        })))
    }

    /// Runs `f` on a free connection in a blocking thread. `f` gets no `&mut`, so it cannot
    /// open a transaction (and the connection is read-only anyway).
    pub async fn run<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<tokio::task::JoinError> + From<rusqlite::Error> + Send + 'static,
    {
        let readers = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            let lent = readers.lend();
            match &lent.conn {
                Some(c) => f(c),
                // `conn` is only taken back in `drop`.
                None => Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
                    Some("read connection already returned".into()),
                )
                .into()),
            }
        })
        .await?
    }
}

impl Readers {
    /// Blocks until a connection is free, then lends it.
    fn lend(&self) -> Lent<'_> {
        let mut free = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if let Some(c) = free.pop() {
                return Lent {
                    readers: self,
                    conn: Some(c),
                };
            }
            free = self
                .returned
                .wait(free)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

impl SqliteStore {
    /// Opens (creating it if needed) the database file at `path`, in WAL mode, and applies the
    /// pending migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let reader_path = path.clone();
        let mut store = Self::init(move || {
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            Ok(conn)
        })
        .await?;
        // After the migrations, so that the readers start on the current schema.
        let readers = tokio::task::spawn_blocking(move || {
            ReadPool::open(reader_path, ReadPool::default_size())
        })
        .await??;
        store.readers = Some(readers);
        Ok(store)
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
            writer: Writer::start(conn)?,
            readers: None,
        })
    }

    /// Runs `f` on the writer connection (in its thread), in a transaction of its own or
    /// shared with the calls queued at the same time; the answer comes once that transaction
    /// is committed. A call that fails leaves nothing behind, whatever it wrote before failing.
    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let call: Call = Box::new(move |conn: &mut Connection| {
            let r = f(conn);
            let ok = r.is_ok();
            let send: Box<dyn FnOnce(Option<String>) + Send> =
                Box::new(move |commit_failed: Option<String>| {
                    let r = match (commit_failed, r) {
                        (Some(why), Ok(_)) => Err(StoreError::Task(format!("commit: {why}"))),
                        (_, r) => r,
                    };
                    // The caller may have gone (a cancelled request): nothing to tell then.
                    let _ = reply.send(r);
                });
            (ok, send)
        });
        self.writer
            .queue
            .send(call)
            .map_err(|_| StoreError::Task("the SQLite writer has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Task("the store call was not run, or panicked (see the log)".into())
        })?
    }

    /// Runs the read-only `f` on a free read connection in a blocking thread (on the writer
    /// when the store is in memory).
    pub(crate) async fn with_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        match &self.readers {
            Some(r) => r.run(f).await,
            None => self.with(move |c| f(c)).await,
        }
    }
}

/// Statements run once per job or session (claims, counters, finishes): parsed once per
/// connection and kept in its statement cache, not parsed again on every call (the parser was
/// a tenth of a collector's CPU).
pub(crate) trait Cached {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize>;
    fn row_cached<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        p: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(p)
    }

    fn row_cached<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        p: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(p, f)
    }
}

const READING_COLUMNS: &str =
    "meter, obis, attribute, time, class_id, value, scaler, unit, status, source, received_at";
const VALIDATED_COLUMNS: &str = "meter, obis, attribute, time, class_id, value, scaler, unit, \
     status, source, received_at, quality";
const AGGREGATE_COLUMNS: &str =
    "subject, channel, period, period_start, period_end, total, count, complete, quality";

fn validated_from_row(r: &rusqlite::Row<'_>) -> Result<ValidatedReading, StoreError> {
    Ok(ValidatedReading {
        reading: reading_from_row(r)?,
        quality: quality_of(r.get(11)?)?,
    })
}

fn aggregate_from_row(r: &rusqlite::Row<'_>) -> Result<Aggregate, StoreError> {
    let period: String = r.get(2)?;
    Ok(Aggregate {
        subject: r.get(0)?,
        channel: r.get(1)?,
        period: parse_period(&period)?,
        period_start: r.get(3)?,
        period_end: r.get(4)?,
        total: r.get(5)?,
        count: narrow(r.get(6)?, "count")?,
        complete: r.get(7)?,
        quality_worst: quality_of(r.get(8)?)?,
    })
}

/// Collects a query's rows with `f`.
fn collect<T>(
    mut rows: rusqlite::Rows<'_>,
    f: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(f(row)?);
    }
    Ok(out)
}

/// A row of [`VALIDATED_COLUMNS`] whose meter and OBIS code are known already.
fn channel_row(
    r: &rusqlite::Row<'_>,
    meter: &MeterId,
    obis: ObisCode,
) -> Result<ValidatedReading, StoreError> {
    let source = r
        .get_ref(9)?
        .as_str()
        .map_err(|e| StoreError::Corrupt(format!("source: {e}")))?;
    Ok(ValidatedReading {
        reading: Reading {
            meter: meter.clone(),
            obis,
            attribute: narrow(r.get(2)?, "attribute")?,
            time: r.get(3)?,
            class_id: narrow(r.get(4)?, "class_id")?,
            value: r.get(5)?,
            scaler: narrow(r.get(6)?, "scaler")?,
            unit: narrow(r.get(7)?, "unit")?,
            status: narrow(r.get(8)?, "status")?,
            source: parse_source(source)?,
            received_at: r.get(10)?,
        },
        quality: quality_of(r.get(11)?)?,
    })
}

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
        Box::pin(async move { self.insert_validated(&unflagged(readings)).await })
    }

    fn insert_events<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(0);
            }
            let batch = events.to_vec();
            self.with(move |conn| {
                let tx = conn.savepoint()?;
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
            self.with_read(move |conn| {
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
            self.with_read(move |conn| {
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
        Box::pin(self.with_read(|conn| count(conn, "readings")))
    }

    fn count_events(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.with_read(|conn| count(conn, "events")))
    }

    fn insert_validated<'a>(
        &'a self,
        readings: &'a [ValidatedReading],
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            if readings.is_empty() {
                return Ok(0);
            }
            let batch = readings.to_vec();
            self.with(move |conn| Self::insert_validated_now(conn, &batch))
                .await
        })
    }

    fn meter_readings<'a>(
        &'a self,
        meter: &'a MeterId,
        obis: Option<ObisCode>,
        from: i64,
        to: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ValidatedReading>, StoreError>> {
        Box::pin(async move {
            let meter = meter.clone();
            let obis = obis.map(|o| o.to_string());
            self.with_read(move |conn| {
                // One query over the meter would read every row of all its channels and sort
                // them. Instead: its channels (obis, attribute), one index seek each (a loose
                // index scan), then per channel a range of the primary key that holds only
                // the rows asked for, already in time order.
                let mut next = conn.prepare_cached(
                    "SELECT obis, attribute FROM readings
                     WHERE meter = ?1 AND (obis, attribute) > (?2, ?3)
                     ORDER BY obis, attribute LIMIT 1",
                )?;
                let mut channels: Vec<(String, i64)> = Vec::new();
                let mut after = (obis.clone().unwrap_or_default(), i64::MIN);
                while let Some((o, a)) = next
                    .query_row(params![meter.0, after.0, after.1], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })
                    .optional()?
                {
                    if obis.as_ref().is_some_and(|wanted| *wanted != o) {
                        break;
                    }
                    channels.push((o.clone(), a));
                    after = (o, a);
                }
                let mut st = conn.prepare_cached(&format!(
                    "SELECT {VALIDATED_COLUMNS} FROM readings
                     WHERE meter = ?1 AND obis = ?2 AND attribute = ?3 AND time BETWEEN ?4 AND ?5
                     ORDER BY time LIMIT ?6"
                ))?;
                let limit = page(limit);
                let mut out = Vec::new();
                for (o, a) in &channels {
                    let code = parse_obis(o)?;
                    let mut rows = st.query(params![meter.0, o, a, from, to, limit])?;
                    while let Some(r) = rows.next()? {
                        out.push(channel_row(r, &meter, code)?);
                    }
                }
                // Channels came in (obis, attribute) order and each in time order, so a stable
                // sort by time gives (time, obis, attribute), as the one query did.
                out.sort_by_key(|v| v.reading.time);
                out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                Ok(out)
            })
            .await
        })
    }

    fn readings_of_meters<'a>(
        &'a self,
        meters: &'a [MeterId],
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<ValidatedReading>, StoreError>> {
        Box::pin(async move {
            let mut meters: Vec<String> = meters.iter().map(|m| m.0.clone()).collect();
            meters.sort_unstable();
            meters.dedup();
            self.with_read(move |conn| {
                let mut st = conn.prepare_cached(&format!(
                    "SELECT {VALIDATED_COLUMNS} FROM readings
                     WHERE meter = ?1 AND time BETWEEN ?2 AND ?3
                     ORDER BY obis, attribute, time"
                ))?;
                let mut out = Vec::new();
                for m in meters {
                    let rows = st.query(params![m, from, to])?;
                    out.extend(collect(rows, validated_from_row)?);
                }
                Ok(out)
            })
            .await
        })
    }

    fn scan_readings<'a>(
        &'a self,
        from: i64,
        to: i64,
        after: Option<ReadingKey>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ValidatedReading>, StoreError>> {
        Box::pin(async move {
            self.with_read(move |conn| {
                // Row values compare lexicographically: (time, meter, obis, attribute) > after.
                let (t, m, o, a) = match after {
                    Some((m, o, a, t)) => (t, m.0, o.to_string(), i64::from(a)),
                    None => (
                        from.saturating_sub(1),
                        String::new(),
                        String::new(),
                        i64::MIN,
                    ),
                };
                let mut st = conn.prepare_cached(&format!(
                    "SELECT {VALIDATED_COLUMNS} FROM readings
                     WHERE time BETWEEN ?1 AND ?2
                       AND (time, meter, obis, attribute) > (?3, ?4, ?5, ?6)
                     ORDER BY time, meter, obis, attribute LIMIT ?7"
                ))?;
                let rows = st.query(params![from, to, t, m, o, a, page(limit)])?;
                collect(rows, validated_from_row)
            })
            .await
        })
    }

    fn apply_retention<'a>(
        &'a self,
        retention: &'a Retention,
        now: i64,
    ) -> BoxFuture<'a, Result<Pruned, StoreError>> {
        let r = *retention;
        Box::pin(self.with(move |conn| {
            let tx = conn.savepoint()?;
            let mut rows = 0u64;
            if let Some(d) = r.readings_days {
                rows += tx.execute(
                    "DELETE FROM readings WHERE time < ?1",
                    params![crate::cutoff(now, d)],
                )? as u64;
            }
            if let Some(d) = r.events_days {
                rows += tx.execute(
                    "DELETE FROM events WHERE time < ?1",
                    params![crate::cutoff(now, d)],
                )? as u64;
            }
            if let Some(d) = r.hourly_days {
                rows += tx.execute(
                    "DELETE FROM aggregates WHERE period = 'hour' AND period_start < ?1",
                    params![crate::cutoff(now, d)],
                )? as u64;
            }
            tx.commit()?;
            Ok(Pruned {
                partitions: Vec::new(),
                rows,
            })
        }))
    }

    fn neighbours<'a>(
        &'a self,
        keys: &'a [ReadingKey],
    ) -> BoxFuture<'a, Result<Vec<Neighbours>, StoreError>> {
        Box::pin(async move {
            let keys = keys.to_vec();
            self.with_read(move |conn| {
                let mut before = conn.prepare_cached(&format!(
                    "SELECT {VALIDATED_COLUMNS} FROM readings
                     WHERE meter = ?1 AND obis = ?2 AND attribute = ?3 AND time < ?4
                     ORDER BY time DESC LIMIT 1"
                ))?;
                let mut after = conn.prepare_cached(
                    "SELECT 1 FROM readings
                     WHERE meter = ?1 AND obis = ?2 AND attribute = ?3 AND time >= ?4 LIMIT 1",
                )?;
                let mut out = Vec::with_capacity(keys.len());
                for (m, o, a, t) in keys {
                    let o = o.to_string();
                    let rows = before.query(params![m.0, o, a, t])?;
                    let prev = collect(rows, validated_from_row)?.into_iter().next();
                    let later = after.exists(params![m.0, o, a, t])?;
                    out.push((prev, later));
                }
                Ok(out)
            })
            .await
        })
    }

    fn upsert_aggregates<'a>(
        &'a self,
        aggregates: &'a [Aggregate],
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            if aggregates.is_empty() {
                return Ok(0);
            }
            let batch = aggregates.to_vec();
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            self.with(move |conn| {
                let tx = conn.savepoint()?;
                let mut n = 0u64;
                {
                    let mut st = tx.prepare_cached(&format!(
                        "INSERT INTO aggregates ({AGGREGATE_COLUMNS}, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                         ON CONFLICT (subject, channel, period, period_start) DO UPDATE SET
                           period_end = excluded.period_end, total = excluded.total,
                           count = excluded.count, complete = excluded.complete,
                           quality = excluded.quality, updated_at = excluded.updated_at"
                    ))?;
                    for a in &batch {
                        n += st.execute(params![
                            a.subject,
                            a.channel,
                            a.period.as_str(),
                            a.period_start,
                            a.period_end,
                            a.total,
                            a.count,
                            a.complete,
                            i64::from(a.quality_worst.0),
                            now,
                        ])? as u64;
                    }
                }
                tx.commit()?;
                Ok(n)
            })
            .await
        })
    }

    fn aggregates<'a>(
        &'a self,
        subjects: &'a [String],
        channel: Option<&'a str>,
        period: Period,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<Aggregate>, StoreError>> {
        Box::pin(async move {
            let mut subjects = subjects.to_vec();
            subjects.sort_unstable();
            subjects.dedup();
            let channel = channel.map(str::to_string);
            self.with_read(move |conn| {
                let mut st = conn.prepare_cached(&format!(
                    "SELECT {AGGREGATE_COLUMNS} FROM aggregates
                     WHERE subject = ?1 AND (?2 IS NULL OR channel = ?2) AND period = ?3
                       AND period_start BETWEEN ?4 AND ?5
                     ORDER BY channel, period_start"
                ))?;
                let mut out = Vec::new();
                for s in subjects {
                    let rows = st.query(params![s, channel, period.as_str(), from, to])?;
                    out.extend(collect(rows, aggregate_from_row)?);
                }
                Ok(out)
            })
            .await
        })
    }

    fn scan_aggregates<'a>(
        &'a self,
        period: Period,
        from: i64,
        to: i64,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Aggregate>, StoreError>> {
        Box::pin(async move {
            self.with_read(move |conn| {
                let mut st = conn.prepare_cached(&format!(
                    "SELECT {AGGREGATE_COLUMNS} FROM aggregates
                     WHERE period = ?1 AND period_start BETWEEN ?2 AND ?3
                     ORDER BY period_start, subject, channel LIMIT ?4 OFFSET ?5"
                ))?;
                let offset = i64::try_from(offset).unwrap_or(i64::MAX);
                let rows = st.query(params![period.as_str(), from, to, page(limit), offset])?;
                collect(rows, aggregate_from_row)
            })
            .await
        })
    }
}

impl SqliteStore {
    fn insert_validated_now(
        conn: &mut Connection,
        batch: &[ValidatedReading],
    ) -> Result<u64, StoreError> {
        let tx = conn.savepoint()?;
        let mut stored = 0u64;
        {
            let mut st = tx.prepare_cached(&format!(
                "INSERT INTO readings ({VALIDATED_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT DO NOTHING"
            ))?;
            for v in batch {
                let r = &v.reading;
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
                    i64::from(v.quality.0),
                ])?;
                stored += n as u64;
            }
        }
        tx.commit()?;
        Ok(stored)
    }
}

fn count(conn: &Connection, table: &str) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
    narrow(n, "count")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;

    /// Calls queued together share a transaction, yet each either happens whole or not at
    /// all, and each caller gets its own answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batched_calls_stay_separate() {
        let dir = std::env::temp_dir().join(format!("hes-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(dir.join("w.db")).await.unwrap();
        store
            .with(|c| Ok(c.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY)")?))
            .await
            .unwrap();
        let calls: Vec<_> = (0..400i64)
            .map(|k| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .with(move |c| {
                            c.execute("INSERT INTO t (k) VALUES (?1)", [k])?;
                            // Odd calls fail after writing: their row must not stay.
                            if k % 2 == 1 {
                                return Err(StoreError::Invalid(format!("call {k}")));
                            }
                            Ok(k)
                        })
                        .await
                })
            })
            .collect();
        for (k, call) in calls.into_iter().enumerate() {
            match call.await.unwrap() {
                Ok(v) => assert_eq!(v, k as i64),
                Err(e) => {
                    assert!(k % 2 == 1, "call {k} failed: {e}");
                    assert!(e.to_string().contains(&format!("call {k}")), "{e}");
                }
            }
        }
        // Read through another connection: what was answered is committed.
        let rows: Vec<i64> = store
            .with_read(|c| {
                let mut st = c.prepare("SELECT k FROM t ORDER BY k")?;
                let rows = st.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<Vec<i64>, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(rows, (0..400).filter(|k| k % 2 == 0).collect::<Vec<_>>());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn reading(t: i64) -> Reading {
        Reading {
            meter: MeterId("M1".into()),
            obis: ObisCode::new(1, 0, 1, 8, 0, 255),
            class_id: 3,
            attribute: 2,
            time: t,
            value: t,
            scaler: 0,
            unit: 30,
            status: 0,
            source: hes_model::Source::Scheduled,
            received_at: t,
        }
    }

    /// Reads go to the read connections: they see what the writer committed, and they answer
    /// while the writer is held by a transaction.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_see_commits_and_do_not_wait_for_the_writer() {
        let dir = std::env::temp_dir().join(format!("hes_store_readers_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(dir.join("hes.db")).await.unwrap();
        assert!(store.readers.is_some());
        let rows: Vec<Reading> = (0..10).map(|i| reading(i * 900)).collect();
        assert_eq!(store.insert_readings(&rows).await.unwrap(), 10);
        assert_eq!(store.count_readings().await.unwrap(), 10);
        let m = MeterId("M1".into());
        assert_eq!(
            store
                .meter_readings(&m, None, 0, 9 * 900, 100)
                .await
                .unwrap()
                .len(),
            10
        );

        // Hold the writer inside an open write transaction until told to let go.
        let (entered_tx, entered) = tokio::sync::oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let writer = store.clone();
        let held = tokio::spawn(async move {
            writer
                .with(move |c| {
                    let tx = c.savepoint()?;
                    tx.execute("DELETE FROM readings WHERE time = 0", [])?;
                    let _ = entered_tx.send(());
                    let _ = released.recv();
                    tx.commit()?;
                    Ok(())
                })
                .await
        });
        entered.await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(60), store.count_readings())
            .await
            .expect("a read waited for the writer")
            .unwrap();
        assert_eq!(n, 10, "a reader sees only committed rows");
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        assert_eq!(store.count_readings().await.unwrap(), 9);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn in_memory_reads_use_the_writer() {
        let store = SqliteStore::in_memory().await.unwrap();
        assert!(store.readers.is_none());
        assert_eq!(store.insert_readings(&[reading(0)]).await.unwrap(), 1);
        assert_eq!(store.count_readings().await.unwrap(), 1);
    }
}
