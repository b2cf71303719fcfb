//! The state port on SQLite (the embedded mode): one process, one connection, each method a
//! transaction.

use hes_model::clock::{unix_ms as now_ms, unix_now as now_s};
use hes_model::meter::{MeterRecord, MeterStatus, SealedKeys};
use hes_model::{Job, JobId, JobResult, MeterId};
use rusqlite::{params, Connection, OptionalExtension};

use super::{
    check_batch, dedupe_new, job_from_parts, kind_text, meter_from_parts, meter_row, priority_text,
    secrets_text, state_text, AuditEntry, Claim, Created, JobCounts, JobFilter, NewJob, StateStore,
    StoredMeter, JOB_COLUMNS, MAX_REQUESTS, METER_COLUMNS, PUSH_WINDOW,
};
use crate::sqlite::Cached;
use crate::{BoxFuture, SqliteStore, StoreError};

fn job_from_row(r: &rusqlite::Row<'_>) -> Result<Job, StoreError> {
    let kind: String = r.get(2)?;
    let priority: String = r.get(3)?;
    let state: String = r.get(4)?;
    let requests: String = r.get(13)?;
    job_from_parts(
        r.get(0)?,
        r.get(1)?,
        &kind,
        &priority,
        &state,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        &requests,
    )
}

fn meter_from_row(r: &rusqlite::Row<'_>) -> Result<MeterRecord, StoreError> {
    let endpoint: String = r.get(3)?;
    let groups: String = r.get(6)?;
    let status: String = r.get(7)?;
    let quirks: String = r.get(8)?;
    let secrets: String = r.get(10)?;
    meter_from_parts(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        &endpoint,
        r.get(4)?,
        r.get(5)?,
        &groups,
        &status,
        &quirks,
        r.get(9)?,
        &secrets,
    )
}

fn bump_revision(tx: &Connection) -> Result<i64, StoreError> {
    Ok(tx.row_cached(
        "UPDATE registry_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision",
        [],
        |r| r.get(0),
    )?)
}

fn job_by_id(c: &Connection, id: i64) -> Result<Option<Job>, StoreError> {
    let mut st = c.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?;
    let mut rows = st.query([id])?;
    match rows.next()? {
        Some(r) => Ok(Some(job_from_row(r)?)),
        None => Ok(None),
    }
}

fn job_id(id: JobId) -> Result<i64, StoreError> {
    i64::try_from(id).map_err(|_| StoreError::Invalid(format!("job id {id}")))
}

/// Creates (or joins) each job in `tx`.
fn create_in(tx: &Connection, jobs: &[NewJob]) -> Result<Vec<Created>, StoreError> {
    let now = now_s();
    let mut out = Vec::with_capacity(jobs.len());
    for (j, requests) in dedupe_new(jobs)? {
        let kind = kind_text(&j.kind)?;
        if !j.kind.is_command() {
            let open: Option<(i64, String)> = tx
                .row_cached(
                    "SELECT id, requests FROM jobs WHERE meter = ?1 AND kind = ?2 AND is_read = 1 \
                     AND state IN ('queued', 'running', 'retrying')",
                    params![j.meter.0, kind],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((id, old)) = open {
                let mut all: Vec<String> =
                    serde_json::from_str(&old).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                all.extend(requests);
                all.truncate(MAX_REQUESTS);
                let text =
                    serde_json::to_string(&all).map_err(|e| StoreError::Invalid(e.to_string()))?;
                tx.exec_cached(
                    "UPDATE jobs SET requests = ?2 WHERE id = ?1",
                    params![id, text],
                )?;
                let job = job_by_id(tx, id)?
                    .ok_or_else(|| StoreError::Corrupt(format!("job {id} vanished")))?;
                out.push((job, false));
                continue;
            }
        }
        let mut requests = requests;
        requests.truncate(MAX_REQUESTS);
        let text =
            serde_json::to_string(&requests).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let id: i64 = tx.row_cached(
            "INSERT INTO jobs (meter, kind, is_read, priority, state, max_attempts, created_at, \
             not_before, requested_by, requests, updated_at) \
             VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, ?8, ?9, ?6) RETURNING id",
            params![
                j.meter.0,
                kind,
                !j.kind.is_command(),
                priority_text(j.priority),
                j.max_attempts,
                now,
                j.not_before,
                j.requested_by,
                text
            ],
            |r| r.get(0),
        )?;
        let job = job_by_id(tx, id)?.ok_or_else(|| StoreError::Corrupt(format!("job {id}")))?;
        out.push((job, true));
    }
    Ok(out)
}

impl StateStore for SqliteStore {
    fn import_meters<'a>(
        &'a self,
        meters: &'a [MeterRecord],
        replace: bool,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        let meters = meters.to_vec();
        Box::pin(self.with(move |c| {
            check_batch(&meters)?;
            let tx = c.savepoint()?;
            let rev = bump_revision(&tx)?;
            let now = now_s();
            for m in &meters {
                let title = m.system_title.to_ascii_uppercase();
                let owner: Option<String> = tx
                    .row_cached(
                        "SELECT id FROM meters WHERE system_title = ?1",
                        [&title],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(owner) = owner.filter(|o| *o != m.id.0) {
                    return Err(StoreError::Conflict(format!(
                        "meter {}: system title {title} belongs to meter {owner}",
                        m.id
                    )));
                }
                let exists: bool = tx.row_cached(
                    "SELECT EXISTS (SELECT 1 FROM meters WHERE id = ?1)",
                    [&m.id.0],
                    |r| r.get(0),
                )?;
                if exists && !replace {
                    return Err(StoreError::Conflict(format!(
                        "meter {} exists (import with replace to overwrite it)",
                        m.id
                    )));
                }
                let row = meter_row(m)?;
                tx.exec_cached(
                    &format!(
                        "INSERT INTO meters ({METER_COLUMNS}, revision, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                         ON CONFLICT (id) DO UPDATE SET serial = excluded.serial, \
                         logical_device_name = excluded.logical_device_name, \
                         endpoint = excluded.endpoint, system_title = excluded.system_title, \
                         max_pdu = excluded.max_pdu, groups = excluded.groups, \
                         status = excluded.status, quirks = excluded.quirks, \
                         key_version = excluded.key_version, secrets = excluded.secrets, \
                         revision = excluded.revision, updated_at = excluded.updated_at"
                    ),
                    params![
                        m.id.0,
                        m.serial,
                        m.logical_device_name,
                        row.endpoint,
                        title,
                        m.max_pdu,
                        row.groups,
                        m.status.as_str(),
                        row.quirks,
                        m.keys.version,
                        row.secrets,
                        rev,
                        now
                    ],
                )?;
            }
            tx.commit()?;
            Ok(meters.len())
        }))
    }

    fn meter<'a>(
        &'a self,
        id: &'a MeterId,
    ) -> BoxFuture<'a, Result<Option<MeterRecord>, StoreError>> {
        let id = id.0.clone();
        Box::pin(self.with(move |c| {
            let mut st =
                c.prepare_cached(&format!("SELECT {METER_COLUMNS} FROM meters WHERE id = ?1"))?;
            let mut rows = st.query([id])?;
            match rows.next()? {
                Some(r) => Ok(Some(meter_from_row(r)?)),
                None => Ok(None),
            }
        }))
    }

    fn meters_since<'a>(
        &'a self,
        revision: i64,
        after_id: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<(Vec<StoredMeter>, i64), StoreError>> {
        let after_id = after_id.map(str::to_string);
        Box::pin(self.with(move |c| {
            let tx = c.savepoint()?;
            let current: i64 =
                tx.row_cached("SELECT revision FROM registry_revision", [], |r| r.get(0))?;
            let mut out = Vec::new();
            {
                let mut st = tx.prepare_cached(&format!(
                    "SELECT {METER_COLUMNS}, revision FROM meters WHERE revision > ?1 \
                     OR (revision = ?1 AND ?3 IS NOT NULL AND id > ?3) \
                     ORDER BY revision, id LIMIT ?2"
                ))?;
                let mut rows = st.query(params![revision, crate::page(limit), after_id])?;
                while let Some(r) = rows.next()? {
                    out.push(StoredMeter {
                        record: meter_from_row(r)?,
                        revision: r.get(11)?,
                    });
                }
            }
            tx.commit()?;
            Ok((out, current))
        }))
    }

    fn registry_revision(&self) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(self.with(|c| {
            Ok(c.row_cached("SELECT revision FROM registry_revision", [], |r| r.get(0))?)
        }))
    }

    fn rotate_keys<'a>(
        &'a self,
        id: &'a MeterId,
        from_version: u32,
        keys: &'a SealedKeys,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let id = id.0.clone();
        let keys = keys.clone();
        Box::pin(self.with(move |c| {
            if Some(keys.version) != from_version.checked_add(1) {
                return Err(StoreError::Invalid(format!(
                    "meter {id}: key version {} does not follow {from_version}",
                    keys.version
                )));
            }
            let secrets = secrets_text(&keys)?;
            let tx = c.savepoint()?;
            let rev = bump_revision(&tx)?;
            let n = tx.exec_cached(
                "UPDATE meters SET secrets = ?3, key_version = ?4, revision = ?5, updated_at = ?6 \
                 WHERE id = ?1 AND key_version = ?2",
                params![id, from_version, secrets, keys.version, rev, now_s()],
            )?;
            if n == 0 {
                let exists: bool = tx.row_cached(
                    "SELECT EXISTS (SELECT 1 FROM meters WHERE id = ?1)",
                    [&id],
                    |r| r.get(0),
                )?;
                return Err(if exists {
                    StoreError::Conflict(format!(
                        "meter {id}: its keys are no longer version {from_version}"
                    ))
                } else {
                    StoreError::NotFound(format!("meter {id}"))
                });
            }
            tx.commit()?;
            Ok(())
        }))
    }

    fn set_meter_groups<'a>(
        &'a self,
        id: &'a MeterId,
        groups: &'a std::collections::BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let id = id.0.clone();
        let text = serde_json::to_string(groups);
        Box::pin(self.with(move |c| {
            let text = text.map_err(|e| StoreError::Invalid(e.to_string()))?;
            update_meter(c, &id, "groups", &text)
        }))
    }

    fn set_meter_status<'a>(
        &'a self,
        id: &'a MeterId,
        status: MeterStatus,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let id = id.0.clone();
        Box::pin(self.with(move |c| update_meter(c, &id, "status", status.as_str())))
    }

    fn lease_counters<'a>(
        &'a self,
        meter: &'a MeterId,
        block: u32,
    ) -> BoxFuture<'a, Result<Option<u32>, StoreError>> {
        let meter = meter.0.clone();
        Box::pin(self.with(move |c| {
            let block = i64::from(block.max(1));
            let end: i64 = c.row_cached(
                "INSERT INTO invocation_counters (meter, next) VALUES (?1, 1 + ?2) \
                 ON CONFLICT (meter) DO UPDATE SET next = max(next, 1) + ?2 RETURNING next",
                params![meter, block],
                |r| r.get(0),
            )?;
            let start = end - block;
            // The last counter of the lease must fit 32 bits.
            Ok(u32::try_from(end - 1)
                .ok()
                .and_then(|_| u32::try_from(start).ok()))
        }))
    }

    fn raise_counter_floor<'a>(
        &'a self,
        meter: &'a MeterId,
        next: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let meter = meter.0.clone();
        Box::pin(self.with(move |c| {
            let next = i64::try_from(next).unwrap_or(i64::MAX);
            c.exec_cached(
                "INSERT INTO invocation_counters (meter, next) VALUES (?1, ?2) \
                 ON CONFLICT (meter) DO UPDATE SET next = max(next, excluded.next)",
                params![meter, next],
            )?;
            Ok(())
        }))
    }

    fn counter_known<'a>(&'a self, meter: &'a MeterId) -> BoxFuture<'a, Result<bool, StoreError>> {
        let meter = meter.0.clone();
        Box::pin(self.with(move |c| {
            Ok(c.row_cached(
                "SELECT EXISTS (SELECT 1 FROM invocation_counters WHERE meter = ?1)",
                [meter],
                |r| r.get(0),
            )?)
        }))
    }

    fn accept_push_counter<'a>(
        &'a self,
        meter: &'a MeterId,
        ic: u32,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let meter = meter.0.clone();
        Box::pin(self.with(move |c| {
            // Every SET expression sees the row before the update.
            Ok(c.row_cached(
                "INSERT INTO push_counters (meter, highest, seen) VALUES (?1, ?2, 1) \
                 ON CONFLICT (meter) DO UPDATE SET \
                 seen = CASE WHEN excluded.highest > highest THEN \
                   (CASE WHEN excluded.highest - highest >= ?3 THEN 0 \
                    ELSE seen << (excluded.highest - highest) END) | 1 \
                   ELSE seen | (1 << (highest - excluded.highest)) END, \
                 highest = max(highest, excluded.highest) \
                 WHERE excluded.highest > highest OR (highest - excluded.highest < ?3 \
                   AND (seen & (1 << (highest - excluded.highest))) = 0) \
                 RETURNING 1",
                params![meter, i64::from(ic), i64::from(PUSH_WINDOW)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        }))
    }

    fn release_push_counter<'a>(
        &'a self,
        meter: &'a MeterId,
        ic: u32,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let meter = meter.0.clone();
        Box::pin(self.with(move |c| {
            c.exec_cached(
                "UPDATE push_counters SET seen = seen & ~(1 << (highest - ?2)) \
                 WHERE meter = ?1 AND highest >= ?2 AND highest - ?2 < ?3",
                params![meter, i64::from(ic), i64::from(PUSH_WINDOW)],
            )?;
            Ok(())
        }))
    }

    fn note_pushed_interval<'a>(
        &'a self,
        meter: &'a MeterId,
        time: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let meter = meter.0.clone();
        Box::pin(self.with(move |c| {
            c.exec_cached(
                "UPDATE push_counters SET last_interval = ?2 WHERE meter = ?1 \
                 AND (last_interval IS NULL OR last_interval < ?2)",
                params![meter, time],
            )?;
            Ok(())
        }))
    }

    fn newest_pushed_interval(
        &self,
        at_most: i64,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(self.with(move |c| {
            let mut st = c.prepare_cached(
                "SELECT max(last_interval) FROM push_counters WHERE last_interval <= ?1",
            )?;
            Ok(st.query_row(params![at_most], |r| r.get(0))?)
        }))
    }

    fn push_gaps(
        &self,
        before: i64,
        since: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<(MeterId, i64)>, StoreError>> {
        Box::pin(self.with(move |c| {
            let mut st = c.prepare_cached(
                "SELECT meter, last_interval FROM push_counters \
                 WHERE last_interval >= ?2 AND last_interval < ?1 \
                 ORDER BY last_interval, meter LIMIT ?3",
            )?;
            let mut rows = st.query(params![before, since, crate::page(limit)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push((MeterId(r.get(0)?), r.get(1)?));
            }
            Ok(out)
        }))
    }

    fn create_jobs<'a>(
        &'a self,
        jobs: &'a [NewJob],
    ) -> BoxFuture<'a, Result<Vec<Created>, StoreError>> {
        let jobs = jobs.to_vec();
        Box::pin(self.with(move |c| {
            let tx = c.savepoint()?;
            let out = create_in(&tx, &jobs)?;
            tx.commit()?;
            Ok(out)
        }))
    }

    fn job(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>, StoreError>> {
        // An id beyond the table's range is no job (not an error).
        Box::pin(self.with(move |c| match i64::try_from(id) {
            Ok(id) => job_by_id(c, id),
            Err(_) => Ok(None),
        }))
    }

    fn claim_job(
        &self,
        id: JobId,
        now: i64,
        stale_before: i64,
    ) -> BoxFuture<'_, Result<Claim, StoreError>> {
        Box::pin(self.with(move |c| {
            let id = job_id(id)?;
            let n = c.exec_cached(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, started_at = ?2, \
                 updated_at = ?2 WHERE id = ?1 AND (state IN ('queued', 'retrying') \
                 OR (state = 'running' AND updated_at < ?3))",
                params![id, now, stale_before],
            )?;
            match job_by_id(c, id)? {
                Some(j) if n == 1 => Ok(Claim::Claimed(Box::new(j))),
                Some(j) if j.state == hes_model::JobState::Running => Ok(Claim::Busy),
                _ => Ok(Claim::Done),
            }
        }))
    }

    fn touch_jobs<'a>(
        &'a self,
        ids: &'a [JobId],
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let ids = ids.to_vec();
        Box::pin(self.with(move |c| {
            let tx = c.savepoint()?;
            {
                let mut st = tx.prepare_cached(
                    "UPDATE jobs SET updated_at = ?2 WHERE id = ?1 AND state = 'running'",
                )?;
                for id in ids {
                    st.execute(params![job_id(id)?, now])?;
                }
            }
            tx.commit()?;
            Ok(())
        }))
    }

    fn retry_job<'a>(
        &'a self,
        id: JobId,
        error: &'a str,
        not_before: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let error = error.to_string();
        Box::pin(self.with(move |c| {
            c.exec_cached(
                "UPDATE jobs SET state = 'retrying', last_error = ?2, not_before = ?3, \
                 updated_at = ?4 WHERE id = ?1 AND state = 'running'",
                params![job_id(id)?, error, not_before, now_s()],
            )?;
            Ok(())
        }))
    }

    fn requeue_job(&self, id: JobId, not_before: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.with(move |c| {
            c.exec_cached(
                "UPDATE jobs SET state = 'queued', attempts = max(attempts - 1, 0), \
                 not_before = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'running'",
                params![job_id(id)?, not_before, now_s()],
            )?;
            Ok(())
        }))
    }

    fn finish_job<'a>(&'a self, r: &'a JobResult) -> BoxFuture<'a, Result<(), StoreError>> {
        let r = r.clone();
        Box::pin(self.with(move |c| {
            let detail =
                serde_json::to_string(&r.detail).map_err(|e| StoreError::Invalid(e.to_string()))?;
            c.exec_cached(
                "UPDATE jobs SET state = ?2, attempts = max(attempts, ?3), finished_at = ?4, \
                 last_error = ?5, readings = ?6, events = ?7, detail = ?8, updated_at = ?4, \
                 started_at = coalesce(started_at, ?9) \
                 WHERE id = ?1 AND state NOT IN ('succeeded', 'failed', 'cancelled')",
                params![
                    job_id(r.job)?,
                    state_text(r.state),
                    r.attempts,
                    r.finished_at,
                    r.error,
                    r.readings,
                    r.events,
                    detail,
                    r.started_at
                ],
            )?;
            Ok(())
        }))
    }

    fn cancel_job(&self, id: JobId, now: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.with(move |c| {
            let Ok(id) = i64::try_from(id) else {
                return Ok(false);
            };
            Ok(c.exec_cached(
                "UPDATE jobs SET state = 'cancelled', finished_at = ?2, updated_at = ?2 \
                 WHERE id = ?1 AND state IN ('queued', 'retrying')",
                params![id, now],
            )? == 1)
        }))
    }

    fn list_jobs<'a>(
        &'a self,
        filter: &'a JobFilter,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<(Vec<Job>, u64), StoreError>> {
        let filter = filter.clone();
        Box::pin(self.with(move |c| {
            let mut wh = vec!["1 = 1".to_string()];
            let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
            if let Some(m) = &filter.meter {
                args.push(Box::new(m.0.clone()));
                wh.push(format!("meter = ?{}", args.len()));
            }
            if let Some(s) = filter.state {
                args.push(Box::new(state_text(s)));
                wh.push(format!("state = ?{}", args.len()));
            }
            if let Some(cmd) = filter.commands {
                wh.push(format!("is_read = {}", i32::from(!cmd)));
            }
            let scoped;
            if let Some(ms) = &filter.meters {
                scoped = serde_json::to_string(&ms.iter().map(|m| &m.0).collect::<Vec<_>>())
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                args.push(Box::new(scoped));
                wh.push(format!(
                    "meter IN (SELECT value FROM json_each(?{}))",
                    args.len()
                ));
            }
            let wh = wh.join(" AND ");
            let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.as_ref()).collect();
            let total: i64 = c.row_cached(
                &format!("SELECT count(*) FROM jobs WHERE {wh}"),
                refs.as_slice(),
                |r| r.get(0),
            )?;
            let mut st = c.prepare(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE {wh} ORDER BY id DESC LIMIT {} OFFSET {}",
                crate::page(limit),
                offset.min(i64::MAX as usize)
            ))?;
            let mut rows = st.query(refs.as_slice())?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(job_from_row(r)?);
            }
            Ok((out, u64::try_from(total).unwrap_or(0)))
        }))
    }

    fn job_counts<'a>(
        &'a self,
        since: i64,
        meters: Option<&'a [MeterId]>,
    ) -> BoxFuture<'a, Result<JobCounts, StoreError>> {
        let scope =
            meters.map(|ms| serde_json::to_string(&ms.iter().map(|m| &m.0).collect::<Vec<_>>()));
        Box::pin(self.with(move |c| {
            let scope = scope
                .transpose()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            let mut st = c.prepare_cached(
                "SELECT state, is_read, count(*) FROM jobs \
                 WHERE (state IN ('queued', 'retrying', 'running') OR finished_at >= ?1) \
                 AND (?2 IS NULL OR meter IN (SELECT value FROM json_each(?2))) \
                 GROUP BY state, is_read",
            )?;
            let mut rows = st.query(params![since, scope])?;
            let mut n = JobCounts::default();
            while let Some(r) = rows.next()? {
                let state: String = r.get(0)?;
                let read: bool = r.get(1)?;
                let count = u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0);
                super::count_into(&mut n, &state, read, count);
            }
            Ok(n)
        }))
    }

    fn stale_jobs(&self, before: i64, limit: usize) -> BoxFuture<'_, Result<Vec<Job>, StoreError>> {
        Box::pin(self.with(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('queued', 'retrying', 'running') \
                 AND updated_at < ?1 AND not_before < ?1 ORDER BY id LIMIT ?2"
            ))?;
            let mut rows = st.query(params![before, crate::page(limit)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(job_from_row(r)?);
            }
            Ok(out)
        }))
    }

    fn due_jobs(&self, until: i64, limit: usize) -> BoxFuture<'_, Result<Vec<Job>, StoreError>> {
        Box::pin(self.with(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE dispatched_at IS NULL \
                 AND state = 'queued' AND not_before > 0 AND not_before <= ?1 \
                 ORDER BY not_before, id LIMIT ?2"
            ))?;
            let mut rows = st.query(params![until, crate::page(limit)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(job_from_row(r)?);
            }
            Ok(out)
        }))
    }

    fn mark_dispatched<'a>(
        &'a self,
        ids: &'a [JobId],
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let ids = ids.to_vec();
        Box::pin(self.with(move |c| {
            let tx = c.savepoint()?;
            {
                let mut st =
                    tx.prepare_cached("UPDATE jobs SET dispatched_at = ?2 WHERE id = ?1")?;
                for id in ids {
                    st.execute(params![job_id(id)?, now])?;
                }
            }
            tx.commit()?;
            Ok(())
        }))
    }

    fn failed_requests<'a>(
        &'a self,
        prefix: &'a str,
        since: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<MeterId>, StoreError>> {
        let prefix = prefix.to_string();
        Box::pin(self.with(move |c| {
            let mut st = c.prepare_cached(
                "SELECT meter FROM jobs j WHERE state = 'failed' AND finished_at >= ?2 \
                 AND substr(requests, 1, length(?1) + 2) = '[\"' || ?1 \
                 AND id = (SELECT max(id) FROM jobs k WHERE k.meter = j.meter \
                   AND k.finished_at >= ?2 \
                   AND substr(k.requests, 1, length(?1) + 2) = '[\"' || ?1) \
                 ORDER BY meter LIMIT ?3",
            )?;
            let mut rows = st.query(params![prefix, since, crate::page(limit)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(MeterId(r.get(0)?));
            }
            Ok(out)
        }))
    }

    fn prune_jobs(&self, before: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.with(move |c| {
            Ok(c.exec_cached(
                "DELETE FROM jobs WHERE finished_at < ?1 \
                 AND state IN ('succeeded', 'failed', 'cancelled')",
                [before],
            )? as u64)
        }))
    }

    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl_ms: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        let (name, holder) = (name.to_string(), holder.to_string());
        Box::pin(self.with(move |c| {
            let now = now_ms();
            let token: Option<i64> = c
                .row_cached(
                    "INSERT INTO leases (name, holder, token, expires_ms) VALUES (?1, ?2, 1, ?3 + ?4) \
                     ON CONFLICT (name) DO UPDATE SET \
                     token = CASE WHEN holder = excluded.holder AND expires_ms > ?3 \
                             THEN token ELSE token + 1 END, \
                     holder = excluded.holder, expires_ms = excluded.expires_ms \
                     WHERE holder = excluded.holder OR expires_ms <= ?3 \
                     RETURNING token",
                    params![name, holder, now, ttl_ms.max(1)],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(token)
        }))
    }

    fn release_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (name, holder) = (name.to_string(), holder.to_string());
        Box::pin(self.with(move |c| {
            c.exec_cached(
                "UPDATE leases SET expires_ms = 0 WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )?;
            Ok(())
        }))
    }

    fn fire_slot<'a>(
        &'a self,
        lease: &'a str,
        token: i64,
        schedule: &'a str,
        slot: i64,
        jobs: &'a [NewJob],
    ) -> BoxFuture<'a, Result<Option<Vec<Created>>, StoreError>> {
        let (lease, schedule, jobs) = (lease.to_string(), schedule.to_string(), jobs.to_vec());
        Box::pin(self.with(move |c| {
            let tx = c.savepoint()?;
            let n = tx.exec_cached(
                "INSERT INTO schedule_slots (schedule, slot, token, fired_at, jobs) \
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM leases \
                 WHERE name = ?6 AND token = ?3 AND expires_ms > ?7) \
                 ON CONFLICT DO NOTHING",
                params![
                    schedule,
                    slot,
                    token,
                    now_s(),
                    jobs.len() as i64,
                    lease,
                    now_ms()
                ],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let out = create_in(&tx, &jobs)?;
            tx.commit()?;
            Ok(Some(out))
        }))
    }

    fn append_audit<'a>(&'a self, e: &'a AuditEntry) -> BoxFuture<'a, Result<(), StoreError>> {
        let e = e.clone();
        Box::pin(self.with(move |c| {
            c.exec_cached(
                "INSERT INTO api_audit (time, actor, action, target, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![e.time, e.actor, e.action, e.target, e.detail.to_string()],
            )?;
            Ok(())
        }))
    }
}

/// Sets one text column of a meter and bumps the registry's revision.
fn update_meter(c: &mut Connection, id: &str, column: &str, value: &str) -> Result<(), StoreError> {
    let tx = c.savepoint()?;
    let rev = bump_revision(&tx)?;
    let n = tx.exec_cached(
        &format!("UPDATE meters SET {column} = ?2, revision = ?3, updated_at = ?4 WHERE id = ?1"),
        params![id, value, rev, now_s()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("meter {id}")));
    }
    tx.commit()?;
    Ok(())
}
