//! The CIM outbound queue (what the MDM is to receive: a meter's day of readings, an event),
//! shared by the API nodes: any node claims due items for a lease, so a node killed mid-send
//! loses nothing (its claims run out and another node takes them); an item is retried with
//! backoff and kept as a dead letter after its last attempt. Both adapters here, checked by
//! `tests/state_conformance.rs`.

use hes_model::MeterId;
use rusqlite::params;

use crate::sqlite::Cached;
use crate::{BoxFuture, PgStore, SqliteStore, StoreError};

/// What an item sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxKind {
    /// One meter's readings of the UTC day starting at `time`.
    Day,
    /// One event (meter, log, time, code).
    Event,
}

impl OutboxKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Event => "event",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "day" => Ok(Self::Day),
            "event" => Ok(Self::Event),
            other => Err(StoreError::Corrupt(format!("cim_outbox kind {other}"))),
        }
    }
}

/// One item of the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Unique: `day~METER~START` or `event~METER~LOG~TIME~CODE`.
    pub key: String,
    pub kind: OutboxKind,
    pub meter: MeterId,
    pub time: i64,
    pub log: String,
    pub code: u16,
    /// pending, delivered or dead.
    pub state: String,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_at: i64,
    pub last_error: Option<String>,
}

/// Where a producer takes up again.
pub const EVENTS_CURSOR: &str = "events";
pub const DAYS_CURSOR: &str = "days";

/// The queue. Times are Unix seconds.
pub trait CimOutbox: Send + Sync {
    /// Queues every event that arrived (`received_at`) in `(after, upto]`; an event queued
    /// before is not queued again. Returns how many were new.
    fn cim_enqueue_events(
        &self,
        after: i64,
        upto: i64,
        now: i64,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Queues the day starting at `day` for each of `meters` (those queued before are not).
    fn cim_enqueue_day<'a>(
        &'a self,
        day: i64,
        meters: &'a [MeterId],
        now: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    fn cim_cursor<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<i64>, StoreError>>;

    /// Moves a cursor forward (never back).
    fn cim_set_cursor<'a>(
        &'a self,
        name: &'a str,
        value: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Claims up to `limit` pending items due at `now` that no other holder's claim covers,
    /// oldest first, until `now + lease_s`.
    fn cim_claim<'a>(
        &'a self,
        holder: &'a str,
        now: i64,
        lease_s: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<OutboxItem>, StoreError>>;

    /// Delivered: done.
    fn cim_delivered<'a>(&'a self, key: &'a str, now: i64)
        -> BoxFuture<'a, Result<(), StoreError>>;

    /// An attempt failed: tried again from `next_at`, or (`dead`) kept as a dead letter.
    fn cim_failed<'a>(
        &'a self,
        key: &'a str,
        error: &'a str,
        next_at: i64,
        dead: bool,
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Items in `state` (pending, delivered, dead), oldest first: the dead letters for an
    /// operator.
    fn cim_items<'a>(
        &'a self,
        state: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<OutboxItem>, StoreError>>;
}

const ITEM_COLUMNS: &str =
    "key, kind, meter, time, log, code, state, attempts, next_at, last_error";

fn day_key(meter: &MeterId, day: i64) -> String {
    format!("day~{}~{day}", meter.0)
}

fn narrow_u32(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn item_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxItemRow> {
    Ok(OutboxItemRow {
        key: r.get(0)?,
        kind: r.get(1)?,
        meter: r.get(2)?,
        time: r.get(3)?,
        log: r.get(4)?,
        code: r.get(5)?,
        state: r.get(6)?,
        attempts: r.get(7)?,
        next_at: r.get(8)?,
        last_error: r.get(9)?,
    })
}

/// A row before its kind is checked.
struct OutboxItemRow {
    key: String,
    kind: String,
    meter: String,
    time: i64,
    log: String,
    code: i64,
    state: String,
    attempts: i64,
    next_at: i64,
    last_error: Option<String>,
}

impl OutboxItemRow {
    fn item(self) -> Result<OutboxItem, StoreError> {
        Ok(OutboxItem {
            kind: OutboxKind::parse(&self.kind)?,
            key: self.key,
            meter: MeterId(self.meter),
            time: self.time,
            log: self.log,
            code: u16::try_from(self.code)
                .map_err(|_| StoreError::Corrupt(format!("cim_outbox code {}", self.code)))?,
            state: self.state,
            attempts: narrow_u32(self.attempts),
            next_at: self.next_at,
            last_error: self.last_error,
        })
    }
}

fn item_pg(r: &tokio_postgres::Row) -> Result<OutboxItem, StoreError> {
    OutboxItemRow {
        key: r.try_get(0)?,
        kind: r.try_get(1)?,
        meter: r.try_get(2)?,
        time: r.try_get(3)?,
        log: r.try_get(4)?,
        code: i64::from(r.try_get::<_, i32>(5)?),
        state: r.try_get(6)?,
        attempts: i64::from(r.try_get::<_, i32>(7)?),
        next_at: r.try_get(8)?,
        last_error: r.try_get(9)?,
    }
    .item()
}

const EVENT_INSERT: &str = "INSERT INTO cim_outbox (key, kind, meter, time, log, code, next_at, created_at) \
     SELECT 'event~' || meter || '~' || log || '~' || time || '~' || code, 'event', meter, time, log, code, {now}, {now} \
     FROM events WHERE received_at > {after} AND received_at <= {upto} \
     ON CONFLICT (key) DO NOTHING";

impl CimOutbox for SqliteStore {
    fn cim_enqueue_events(
        &self,
        after: i64,
        upto: i64,
        now: i64,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.with(move |c| {
            let sql = EVENT_INSERT
                .replace("{now}", "?1")
                .replace("{after}", "?2")
                .replace("{upto}", "?3");
            Ok(c.exec_cached(&sql, params![now, after, upto])? as u64)
        }))
    }

    fn cim_enqueue_day<'a>(
        &'a self,
        day: i64,
        meters: &'a [MeterId],
        now: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let meters = meters.to_vec();
        Box::pin(self.with(move |c| {
            let mut n = 0u64;
            for m in &meters {
                n += c.exec_cached(
                    "INSERT INTO cim_outbox (key, kind, meter, time, next_at, created_at) \
                     VALUES (?1, 'day', ?2, ?3, ?4, ?4) ON CONFLICT (key) DO NOTHING",
                    params![day_key(m, day), m.0, day, now],
                )? as u64;
            }
            Ok(n)
        }))
    }

    fn cim_cursor<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        let name = name.to_string();
        Box::pin(self.with_read(move |c| {
            use rusqlite::OptionalExtension;
            Ok(c.row_cached(
                "SELECT value FROM cim_cursors WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?)
        }))
    }

    fn cim_set_cursor<'a>(
        &'a self,
        name: &'a str,
        value: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let name = name.to_string();
        Box::pin(self.with(move |c| {
            c.exec_cached(
                "INSERT INTO cim_cursors (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                params![name, value],
            )?;
            Ok(())
        }))
    }

    fn cim_claim<'a>(
        &'a self,
        holder: &'a str,
        now: i64,
        lease_s: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<OutboxItem>, StoreError>> {
        let holder = holder.to_string();
        Box::pin(self.with(move |c| {
            // One writer: the select and the update are one step for every other caller.
            let mut st = c.prepare_cached(&format!(
                "UPDATE cim_outbox SET claimed_by = ?1, claimed_until = ?2 + ?3 \
                 WHERE key IN (SELECT key FROM cim_outbox WHERE state = 'pending' \
                 AND next_at <= ?2 AND claimed_until <= ?2 ORDER BY next_at, key LIMIT ?4) \
                 RETURNING {ITEM_COLUMNS}"
            ))?;
            let rows = st
                .query_map(params![holder, now, lease_s, limit as i64], item_sqlite)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut items = rows
                .into_iter()
                .map(OutboxItemRow::item)
                .collect::<Result<Vec<_>, _>>()?;
            items.sort_by(|a, b| (a.next_at, &a.key).cmp(&(b.next_at, &b.key)));
            Ok(items)
        }))
    }

    fn cim_delivered<'a>(
        &'a self,
        key: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let key = key.to_string();
        Box::pin(self.with(move |c| {
            c.exec_cached(
                "UPDATE cim_outbox SET state = 'delivered', attempts = attempts + 1, \
                 done_at = ?2, claimed_until = 0, last_error = NULL WHERE key = ?1",
                params![key, now],
            )?;
            Ok(())
        }))
    }

    fn cim_failed<'a>(
        &'a self,
        key: &'a str,
        error: &'a str,
        next_at: i64,
        dead: bool,
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (key, error) = (key.to_string(), error.to_string());
        Box::pin(self.with(move |c| {
            c.exec_cached(
                "UPDATE cim_outbox SET attempts = attempts + 1, last_error = ?2, next_at = ?3, \
                 claimed_until = 0, state = CASE WHEN ?4 THEN 'dead' ELSE state END, \
                 done_at = CASE WHEN ?4 THEN ?5 ELSE done_at END WHERE key = ?1",
                params![key, error, next_at, dead, now],
            )?;
            Ok(())
        }))
    }

    fn cim_items<'a>(
        &'a self,
        state: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<OutboxItem>, StoreError>> {
        let state = state.to_string();
        Box::pin(self.with_read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {ITEM_COLUMNS} FROM cim_outbox WHERE state = ?1 \
                 ORDER BY created_at, key LIMIT ?2"
            ))?;
            let rows = st
                .query_map(params![state, limit as i64], item_sqlite)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter().map(OutboxItemRow::item).collect()
        }))
    }
}

impl CimOutbox for PgStore {
    fn cim_enqueue_events(
        &self,
        after: i64,
        upto: i64,
        now: i64,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let sql = EVENT_INSERT
                .replace("{now}", "$1")
                .replace("{after}", "$2")
                .replace("{upto}", "$3");
            Ok(client.execute(&sql, &[&now, &after, &upto]).await?)
        })
    }

    fn cim_enqueue_day<'a>(
        &'a self,
        day: i64,
        meters: &'a [MeterId],
        now: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let keys: Vec<String> = meters.iter().map(|m| day_key(m, day)).collect();
            let ids: Vec<&str> = meters.iter().map(|m| m.0.as_str()).collect();
            Ok(client
                .execute(
                    "INSERT INTO cim_outbox (key, kind, meter, time, next_at, created_at) \
                     SELECT k, 'day', m, $3, $4, $4 FROM unnest($1::text[], $2::text[]) AS u(k, m) \
                     ON CONFLICT (key) DO NOTHING",
                    &[&keys, &ids, &day, &now],
                )
                .await?)
        })
    }

    fn cim_cursor<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let row = client
                .query_opt("SELECT value FROM cim_cursors WHERE name = $1", &[&name])
                .await?;
            row.map(|r| r.try_get(0)).transpose().map_err(Into::into)
        })
    }

    fn cim_set_cursor<'a>(
        &'a self,
        name: &'a str,
        value: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            client
                .execute(
                    "INSERT INTO cim_cursors AS c (name, value) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET value = greatest(c.value, excluded.value)",
                    &[&name, &value],
                )
                .await?;
            Ok(())
        })
    }

    fn cim_claim<'a>(
        &'a self,
        holder: &'a str,
        now: i64,
        lease_s: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<OutboxItem>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            // SKIP LOCKED: nodes claiming at once take different items, none waits.
            let rows = client
                .query(
                    &format!(
                        "UPDATE cim_outbox SET claimed_by = $1, claimed_until = $2 + $3 \
                         WHERE key IN (SELECT key FROM cim_outbox WHERE state = 'pending' \
                         AND next_at <= $2 AND claimed_until <= $2 ORDER BY next_at, key \
                         LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING {ITEM_COLUMNS}"
                    ),
                    &[&holder, &now, &lease_s, &(limit as i64)],
                )
                .await?;
            let mut items = rows.iter().map(item_pg).collect::<Result<Vec<_>, _>>()?;
            items.sort_by(|a, b| (a.next_at, &a.key).cmp(&(b.next_at, &b.key)));
            Ok(items)
        })
    }

    fn cim_delivered<'a>(
        &'a self,
        key: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            client
                .execute(
                    "UPDATE cim_outbox SET state = 'delivered', attempts = attempts + 1, \
                     done_at = $2, claimed_until = 0, last_error = NULL WHERE key = $1",
                    &[&key, &now],
                )
                .await?;
            Ok(())
        })
    }

    fn cim_failed<'a>(
        &'a self,
        key: &'a str,
        error: &'a str,
        next_at: i64,
        dead: bool,
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            client
                .execute(
                    "UPDATE cim_outbox SET attempts = attempts + 1, last_error = $2, next_at = $3, \
                     claimed_until = 0, state = CASE WHEN $4 THEN 'dead' ELSE state END, \
                     done_at = CASE WHEN $4 THEN $5 ELSE done_at END WHERE key = $1",
                    &[&key, &error, &next_at, &dead, &now],
                )
                .await?;
            Ok(())
        })
    }

    fn cim_items<'a>(
        &'a self,
        state: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<OutboxItem>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {ITEM_COLUMNS} FROM cim_outbox WHERE state = $1 \
                         ORDER BY created_at, key LIMIT $2"
                    ),
                    &[&state, &(limit as i64)],
                )
                .await?;
            rows.iter().map(item_pg).collect()
        })
    }
}
