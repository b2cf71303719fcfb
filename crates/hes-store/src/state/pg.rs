//! The state port on PostgreSQL: every method one statement or one transaction, so that any
//! number of nodes share it. Leases and slots use the server's clock, never a node's.

use deadpool_postgres::GenericClient;
use hes_model::clock::unix_now as now_s;
use hes_model::meter::{MeterRecord, MeterStatus, SealedKeys};
use hes_model::{Job, JobId, JobResult, MeterId};
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

use super::{
    check_batch, dedupe_new, job_from_parts, kind_text, meter_from_parts, meter_row, priority_text,
    secrets_text, state_text, AuditEntry, Claim, Created, JobCounts, JobFilter, NewJob, StateStore,
    StoredMeter, JOB_COLUMNS, MAX_REQUESTS, METER_COLUMNS, PUSH_WINDOW,
};
use crate::{BoxFuture, PgStore, StoreError};

/// The server's clock in Unix milliseconds.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

fn job_from_row(r: &Row) -> Result<Job, StoreError> {
    job_from_parts(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        i64::from(r.try_get::<_, i32>(5)?),
        i64::from(r.try_get::<_, i32>(6)?),
        r.try_get(7)?,
        r.try_get(8)?,
        r.try_get(9)?,
        r.try_get(10)?,
        r.try_get(11)?,
        r.try_get(12)?,
        r.try_get(13)?,
    )
}

fn meter_from_row(r: &Row) -> Result<MeterRecord, StoreError> {
    meter_from_parts(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        i64::from(r.try_get::<_, i32>(5)?),
        r.try_get(6)?,
        r.try_get(7)?,
        r.try_get(8)?,
        r.try_get(9)?,
        r.try_get(10)?,
    )
}

fn job_id(id: JobId) -> Result<i64, StoreError> {
    i64::try_from(id).map_err(|_| StoreError::Invalid(format!("job id {id}")))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(e.to_string()))
}

async fn bump_revision(c: &impl GenericClient) -> Result<i64, StoreError> {
    Ok(c.query_one(
        "UPDATE registry_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision",
        &[],
    )
    .await?
    .try_get(0)?)
}

async fn job_by_id(c: &impl GenericClient, id: i64) -> Result<Option<Job>, StoreError> {
    c.query_opt(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
        &[&id],
    )
    .await?
    .map(|r| job_from_row(&r))
    .transpose()
}

async fn create_in(c: &impl GenericClient, jobs: &[NewJob]) -> Result<Vec<Created>, StoreError> {
    let now = now_s();
    let mut out = Vec::with_capacity(jobs.len());
    for (j, mut requests) in dedupe_new(jobs)? {
        let kind = kind_text(&j.kind)?;
        requests.truncate(MAX_REQUESTS);
        let text = json(&requests)?;
        let is_read = !j.kind.is_command();
        let max_attempts = i32::try_from(j.max_attempts).unwrap_or(i32::MAX);
        // A read joins the open one of its meter and kind (the partial unique index decides,
        // also between nodes inserting at once): its requests are appended.
        let row = c
            .query_one(
                &format!(
                    "INSERT INTO jobs (meter, kind, is_read, priority, state, max_attempts, \
                     created_at, not_before, requested_by, requests, updated_at) \
                     VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $6) \
                     ON CONFLICT (meter, kind) WHERE is_read AND state IN ('queued', 'running', 'retrying') \
                     DO UPDATE SET requests = (SELECT coalesce(jsonb_agg(r), '[]'::jsonb)::text FROM \
                       (SELECT r FROM jsonb_array_elements_text(jobs.requests::jsonb || excluded.requests::jsonb) r \
                        LIMIT {MAX_REQUESTS}) s) \
                     RETURNING {JOB_COLUMNS}, (xmax = 0) AS inserted"
                ),
                &[
                    &j.meter.0,
                    &kind,
                    &is_read,
                    &priority_text(j.priority),
                    &max_attempts,
                    &now,
                    &j.not_before,
                    &j.requested_by,
                    &text,
                ],
            )
            .await?;
        let inserted: bool = row.try_get(14)?;
        out.push((job_from_row(&row)?, inserted));
    }
    Ok(out)
}

impl StateStore for PgStore {
    fn import_meters<'a>(
        &'a self,
        meters: &'a [MeterRecord],
        replace: bool,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            check_batch(meters)?;
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let rev = bump_revision(&tx).await?;
            let now = now_s();
            for m in meters {
                let title = m.system_title.to_ascii_uppercase();
                if let Some(r) = tx
                    .query_opt("SELECT id FROM meters WHERE system_title = $1", &[&title])
                    .await?
                {
                    let owner: String = r.try_get(0)?;
                    if owner != m.id.0 {
                        return Err(StoreError::Conflict(format!(
                            "meter {}: system title {title} belongs to meter {owner}",
                            m.id
                        )));
                    }
                }
                let row = meter_row(m)?;
                let conflict = if replace {
                    "DO UPDATE SET serial = excluded.serial, \
                     logical_device_name = excluded.logical_device_name, \
                     endpoint = excluded.endpoint, system_title = excluded.system_title, \
                     max_pdu = excluded.max_pdu, groups = excluded.groups, \
                     status = excluded.status, quirks = excluded.quirks, \
                     key_version = excluded.key_version, secrets = excluded.secrets, \
                     revision = excluded.revision, updated_at = excluded.updated_at"
                } else {
                    "DO NOTHING"
                };
                let n = tx
                    .execute(
                        &format!(
                            "INSERT INTO meters ({METER_COLUMNS}, revision, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                             ON CONFLICT (id) {conflict}"
                        ),
                        &[
                            &m.id.0,
                            &m.serial,
                            &m.logical_device_name,
                            &row.endpoint,
                            &title,
                            &i32::from(m.max_pdu),
                            &row.groups,
                            &m.status.as_str(),
                            &row.quirks,
                            &i64::from(m.keys.version),
                            &row.secrets,
                            &rev,
                            &now,
                        ],
                    )
                    .await
                    .map_err(|e| title_conflict(e, m))?;
                if n == 0 {
                    return Err(StoreError::Conflict(format!(
                        "meter {} exists (import with replace to overwrite it)",
                        m.id
                    )));
                }
            }
            tx.commit().await?;
            Ok(meters.len())
        })
    }

    fn meter<'a>(
        &'a self,
        id: &'a MeterId,
    ) -> BoxFuture<'a, Result<Option<MeterRecord>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            client
                .query_opt(
                    &format!("SELECT {METER_COLUMNS} FROM meters WHERE id = $1"),
                    &[&id.0],
                )
                .await?
                .map(|r| meter_from_row(&r))
                .transpose()
        })
    }

    fn meters_since<'a>(
        &'a self,
        revision: i64,
        after_id: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<(Vec<StoredMeter>, i64), StoreError>> {
        Box::pin(async move {
            let mut client = self.pool.get().await?;
            // One snapshot: the revision read matches the rows.
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let current: i64 = tx
                .query_one("SELECT revision FROM registry_revision", &[])
                .await?
                .try_get(0)?;
            let rows = tx
                .query(
                    &format!(
                        "SELECT {METER_COLUMNS}, revision FROM meters WHERE revision > $1 \
                         OR (revision = $1 AND $3::text IS NOT NULL AND id > $3) \
                         ORDER BY revision, id LIMIT $2"
                    ),
                    &[&revision, &crate::page(limit), &after_id],
                )
                .await?;
            tx.commit().await?;
            let meters = rows
                .iter()
                .map(|r| {
                    Ok(StoredMeter {
                        record: meter_from_row(r)?,
                        revision: r.try_get(11)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok((meters, current))
        })
    }

    fn registry_revision(&self) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            Ok(client
                .query_one("SELECT revision FROM registry_revision", &[])
                .await?
                .try_get(0)?)
        })
    }

    fn rotate_keys<'a>(
        &'a self,
        id: &'a MeterId,
        from_version: u32,
        keys: &'a SealedKeys,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if Some(keys.version) != from_version.checked_add(1) {
                return Err(StoreError::Invalid(format!(
                    "meter {id}: key version {} does not follow {from_version}",
                    keys.version
                )));
            }
            let secrets = secrets_text(keys)?;
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let rev = bump_revision(&tx).await?;
            let n = tx
                .execute(
                    "UPDATE meters SET secrets = $3, key_version = $4, revision = $5, \
                     updated_at = $6 WHERE id = $1 AND key_version = $2",
                    &[
                        &id.0,
                        &i64::from(from_version),
                        &secrets,
                        &i64::from(keys.version),
                        &rev,
                        &now_s(),
                    ],
                )
                .await?;
            if n == 0 {
                let exists = tx
                    .query_opt("SELECT 1 FROM meters WHERE id = $1", &[&id.0])
                    .await?
                    .is_some();
                return Err(if exists {
                    StoreError::Conflict(format!(
                        "meter {id}: its keys are no longer version {from_version}"
                    ))
                } else {
                    StoreError::NotFound(format!("meter {id}"))
                });
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn set_meter_groups<'a>(
        &'a self,
        id: &'a MeterId,
        groups: &'a std::collections::BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.update_meter(id, "groups", &json(groups)?).await })
    }

    fn set_meter_status<'a>(
        &'a self,
        id: &'a MeterId,
        status: MeterStatus,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.update_meter(id, "status", status.as_str()).await })
    }

    fn lease_counters<'a>(
        &'a self,
        meter: &'a MeterId,
        block: u32,
    ) -> BoxFuture<'a, Result<Option<u32>, StoreError>> {
        Box::pin(async move {
            let block = i64::from(block.max(1));
            let client = self.pool.get().await?;
            let end: i64 = client
                .query_one(
                    "INSERT INTO invocation_counters AS c (meter, next) VALUES ($1, 1 + $2::bigint) \
                     ON CONFLICT (meter) DO UPDATE SET next = greatest(c.next, 1) + $2::bigint \
                     RETURNING next",
                    &[&meter.0, &block],
                )
                .await?
                .try_get(0)?;
            let start = end - block;
            Ok(u32::try_from(end - 1)
                .ok()
                .and_then(|_| u32::try_from(start).ok()))
        })
    }

    fn raise_counter_floor<'a>(
        &'a self,
        meter: &'a MeterId,
        next: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let next = i64::try_from(next).unwrap_or(i64::MAX);
            let client = self.pool.get().await?;
            client
                .execute(
                    "INSERT INTO invocation_counters AS c (meter, next) VALUES ($1, $2) \
                     ON CONFLICT (meter) DO UPDATE SET next = greatest(c.next, excluded.next)",
                    &[&meter.0, &next],
                )
                .await?;
            Ok(())
        })
    }

    fn counter_known<'a>(&'a self, meter: &'a MeterId) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            Ok(client
                .query_opt(
                    "SELECT 1 FROM invocation_counters WHERE meter = $1",
                    &[&meter.0],
                )
                .await?
                .is_some())
        })
    }

    fn accept_push_counter<'a>(
        &'a self,
        meter: &'a MeterId,
        ic: u32,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            // Every SET expression sees the row before the update.
            let row = client
                .query_opt(
                    "INSERT INTO push_counters (meter, highest, seen) VALUES ($1, $2, 1) \
                     ON CONFLICT (meter) DO UPDATE SET \
                     seen = CASE WHEN excluded.highest > push_counters.highest THEN \
                       (CASE WHEN excluded.highest - push_counters.highest >= $3 THEN 0 \
                        ELSE push_counters.seen \
                          << (excluded.highest - push_counters.highest)::int END) | 1 \
                       ELSE push_counters.seen \
                         | (1::bigint << (push_counters.highest - excluded.highest)::int) END, \
                     highest = GREATEST(push_counters.highest, excluded.highest) \
                     WHERE excluded.highest > push_counters.highest \
                       OR (push_counters.highest - excluded.highest < $3 \
                       AND (push_counters.seen \
                         & (1::bigint << (push_counters.highest - excluded.highest)::int)) = 0) \
                     RETURNING 1",
                    &[&meter.0, &i64::from(ic), &i64::from(PUSH_WINDOW)],
                )
                .await?;
            Ok(row.is_some())
        })
    }

    fn release_push_counter<'a>(
        &'a self,
        meter: &'a MeterId,
        ic: u32,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            client
                .execute(
                    "UPDATE push_counters SET seen = seen & ~(1::bigint << (highest - $2)::int) \
                     WHERE meter = $1 AND highest >= $2 AND highest - $2 < $3",
                    &[&meter.0, &i64::from(ic), &i64::from(PUSH_WINDOW)],
                )
                .await?;
            Ok(())
        })
    }

    fn note_pushed_interval<'a>(
        &'a self,
        meter: &'a MeterId,
        time: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            client
                .execute(
                    "UPDATE push_counters SET last_interval = $2 WHERE meter = $1 \
                     AND (last_interval IS NULL OR last_interval < $2)",
                    &[&meter.0, &time],
                )
                .await?;
            Ok(())
        })
    }

    fn newest_pushed_interval(
        &self,
        at_most: i64,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let row = client
                .query_one(
                    "SELECT max(last_interval) FROM push_counters WHERE last_interval <= $1",
                    &[&at_most],
                )
                .await?;
            Ok(row.try_get(0)?)
        })
    }

    fn push_gaps(
        &self,
        before: i64,
        since: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<(MeterId, i64)>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let rows = client
                .query(
                    "SELECT meter, last_interval FROM push_counters \
                     WHERE last_interval >= $2 AND last_interval < $1 \
                     ORDER BY last_interval, meter LIMIT $3",
                    &[&before, &since, &crate::page(limit)],
                )
                .await?;
            rows.iter()
                .map(|r| Ok((MeterId(r.try_get(0)?), r.try_get(1)?)))
                .collect()
        })
    }

    fn create_jobs<'a>(
        &'a self,
        jobs: &'a [NewJob],
    ) -> BoxFuture<'a, Result<Vec<Created>, StoreError>> {
        Box::pin(async move {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let out = create_in(&tx, jobs).await?;
            tx.commit().await?;
            Ok(out)
        })
    }

    fn job(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>, StoreError>> {
        Box::pin(async move {
            // An id beyond the table's range is no job (not an error).
            let Ok(id) = i64::try_from(id) else {
                return Ok(None);
            };
            let client = self.pool.get().await?;
            job_by_id(&client, id).await
        })
    }

    fn claim_job(
        &self,
        id: JobId,
        now: i64,
        stale_before: i64,
    ) -> BoxFuture<'_, Result<Claim, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let id = job_id(id)?;
            if let Some(r) = client
                .query_opt(
                    &format!(
                        "UPDATE jobs SET state = 'running', attempts = attempts + 1, \
                         started_at = $2, updated_at = $2 \
                         WHERE id = $1 AND (state IN ('queued', 'retrying') \
                         OR (state = 'running' AND updated_at < $3)) \
                         RETURNING {JOB_COLUMNS}"
                    ),
                    &[&id, &now, &stale_before],
                )
                .await?
            {
                return Ok(Claim::Claimed(Box::new(job_from_row(&r)?)));
            }
            Ok(match job_by_id(&client, id).await? {
                Some(j) if j.state == hes_model::JobState::Running => Claim::Busy,
                _ => Claim::Done,
            })
        })
    }

    fn touch_jobs<'a>(
        &'a self,
        ids: &'a [JobId],
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let ids = ids
                .iter()
                .map(|&i| job_id(i))
                .collect::<Result<Vec<i64>, _>>()?;
            let client = self.pool.get().await?;
            client
                .execute(
                    "UPDATE jobs SET updated_at = $2 WHERE id = ANY($1) AND state = 'running'",
                    &[&ids, &now],
                )
                .await?;
            Ok(())
        })
    }

    fn retry_job<'a>(
        &'a self,
        id: JobId,
        error: &'a str,
        not_before: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            client
                .execute(
                    "UPDATE jobs SET state = 'retrying', last_error = $2, not_before = $3, \
                     updated_at = $4 WHERE id = $1 AND state = 'running'",
                    &[&job_id(id)?, &error, &not_before, &now_s()],
                )
                .await?;
            Ok(())
        })
    }

    fn requeue_job(&self, id: JobId, not_before: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            client
                .execute(
                    "UPDATE jobs SET state = 'queued', attempts = greatest(attempts - 1, 0), \
                     not_before = $2, updated_at = $3 WHERE id = $1 AND state = 'running'",
                    &[&job_id(id)?, &not_before, &now_s()],
                )
                .await?;
            Ok(())
        })
    }

    fn finish_job<'a>(&'a self, r: &'a JobResult) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            client
                .execute(
                    "UPDATE jobs SET state = $2, attempts = greatest(attempts, $3), \
                     finished_at = $4, last_error = $5, readings = $6, events = $7, detail = $8, \
                     updated_at = $4, started_at = coalesce(started_at, $9) \
                     WHERE id = $1 AND state NOT IN ('succeeded', 'failed', 'cancelled')",
                    &[
                        &job_id(r.job)?,
                        &state_text(r.state),
                        &i32::try_from(r.attempts).unwrap_or(i32::MAX),
                        &r.finished_at,
                        &r.error,
                        &i64::from(r.readings),
                        &i64::from(r.events),
                        &json(&r.detail)?,
                        &r.started_at,
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn cancel_job(&self, id: JobId, now: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let Ok(id) = i64::try_from(id) else {
                return Ok(false);
            };
            let client = self.pool.get().await?;
            Ok(client
                .execute(
                    "UPDATE jobs SET state = 'cancelled', finished_at = $2, updated_at = $2 \
                     WHERE id = $1 AND state IN ('queued', 'retrying')",
                    &[&id, &now],
                )
                .await?
                == 1)
        })
    }

    fn list_jobs<'a>(
        &'a self,
        filter: &'a JobFilter,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<(Vec<Job>, u64), StoreError>> {
        Box::pin(async move {
            let meter = filter.meter.as_ref().map(|m| m.0.clone());
            let state = filter.state.map(state_text);
            let is_read = filter.commands.map(|c| !c);
            let scope: Option<Vec<String>> = filter
                .meters
                .as_ref()
                .map(|ms| ms.iter().map(|m| m.0.clone()).collect());
            let wh = "($1::text IS NULL OR meter = $1) AND ($2::text IS NULL OR state = $2) \
                      AND ($3::boolean IS NULL OR is_read = $3) \
                      AND ($4::text[] IS NULL OR meter = ANY($4))";
            let client = self.pool.get().await?;
            let total: i64 = client
                .query_one(
                    &format!("SELECT count(*) FROM jobs WHERE {wh}"),
                    &[&meter, &state, &is_read, &scope],
                )
                .await?
                .try_get(0)?;
            let offset = i64::try_from(offset).unwrap_or(i64::MAX);
            let rows = client
                .query(
                    &format!(
                        "SELECT {JOB_COLUMNS} FROM jobs WHERE {wh} ORDER BY id DESC \
                         LIMIT $5 OFFSET $6"
                    ),
                    &[
                        &meter,
                        &state,
                        &is_read,
                        &scope,
                        &crate::page(limit),
                        &offset,
                    ],
                )
                .await?;
            let jobs = rows
                .iter()
                .map(job_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            Ok((jobs, u64::try_from(total).unwrap_or(0)))
        })
    }

    fn job_counts<'a>(
        &'a self,
        since: i64,
        meters: Option<&'a [MeterId]>,
    ) -> BoxFuture<'a, Result<JobCounts, StoreError>> {
        Box::pin(async move {
            let scope: Option<Vec<String>> =
                meters.map(|ms| ms.iter().map(|m| m.0.clone()).collect());
            let client = self.pool.get().await?;
            let rows = client
                .query(
                    "SELECT state, is_read, count(*) FROM jobs \
                     WHERE (state IN ('queued', 'retrying', 'running') OR finished_at >= $1) \
                     AND ($2::text[] IS NULL OR meter = ANY($2)) \
                     GROUP BY state, is_read",
                    &[&since, &scope],
                )
                .await?;
            let mut n = JobCounts::default();
            for r in rows {
                let state: String = r.try_get(0)?;
                let read: bool = r.try_get(1)?;
                let count = u64::try_from(r.try_get::<_, i64>(2)?).unwrap_or(0);
                super::count_into(&mut n, &state, read, count);
            }
            Ok(n)
        })
    }

    fn stale_jobs(&self, before: i64, limit: usize) -> BoxFuture<'_, Result<Vec<Job>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {JOB_COLUMNS} FROM jobs \
                         WHERE state IN ('queued', 'retrying', 'running') \
                         AND updated_at < $1 AND not_before < $1 ORDER BY id LIMIT $2"
                    ),
                    &[&before, &crate::page(limit)],
                )
                .await?;
            rows.iter().map(job_from_row).collect()
        })
    }

    fn due_jobs(&self, until: i64, limit: usize) -> BoxFuture<'_, Result<Vec<Job>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let st = client
                .prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE dispatched_at IS NULL \
                     AND state = 'queued' AND not_before > 0 AND not_before <= $1 \
                     ORDER BY not_before, id LIMIT $2"
                ))
                .await?;
            let rows = client.query(&st, &[&until, &crate::page(limit)]).await?;
            rows.iter().map(job_from_row).collect()
        })
    }

    fn mark_dispatched<'a>(
        &'a self,
        ids: &'a [JobId],
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let ids = ids
                .iter()
                .map(|&i| job_id(i))
                .collect::<Result<Vec<i64>, _>>()?;
            let client = self.pool.get().await?;
            client
                .execute(
                    "UPDATE jobs SET dispatched_at = $2 WHERE id = ANY($1)",
                    &[&ids, &now],
                )
                .await?;
            Ok(())
        })
    }

    fn failed_requests<'a>(
        &'a self,
        prefix: &'a str,
        since: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<MeterId>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let rows = client
                .query(
                    "SELECT meter FROM (SELECT DISTINCT ON (meter) meter, state FROM jobs \
                     WHERE finished_at >= $2 AND left(requests, length($1) + 2) = '[\"' || $1 \
                     ORDER BY meter, id DESC) latest WHERE state = 'failed' \
                     ORDER BY meter LIMIT $3",
                    &[&prefix, &since, &crate::page(limit)],
                )
                .await?;
            rows.iter().map(|r| Ok(MeterId(r.try_get(0)?))).collect()
        })
    }

    fn prune_jobs(&self, before: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            Ok(client
                .execute(
                    "DELETE FROM jobs WHERE finished_at < $1 \
                     AND state IN ('succeeded', 'failed', 'cancelled')",
                    &[&before],
                )
                .await?)
        })
    }

    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl_ms: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let row = client
                .query_opt(
                    &format!(
                        "INSERT INTO leases AS l (name, holder, token, expires_ms) \
                         VALUES ($1, $2, 1, {NOW_MS} + $3) \
                         ON CONFLICT (name) DO UPDATE SET \
                         token = CASE WHEN l.holder = excluded.holder AND l.expires_ms > {NOW_MS} \
                                 THEN l.token ELSE l.token + 1 END, \
                         holder = excluded.holder, expires_ms = excluded.expires_ms \
                         WHERE l.holder = excluded.holder OR l.expires_ms <= {NOW_MS} \
                         RETURNING token"
                    ),
                    &[&name, &holder, &ttl_ms.max(1)],
                )
                .await?;
            row.map(|r| r.try_get(0)).transpose().map_err(Into::into)
        })
    }

    fn release_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            client
                .execute(
                    "UPDATE leases SET expires_ms = 0 WHERE name = $1 AND holder = $2",
                    &[&name, &holder],
                )
                .await?;
            Ok(())
        })
    }

    fn fire_slot<'a>(
        &'a self,
        lease: &'a str,
        token: i64,
        schedule: &'a str,
        slot: i64,
        jobs: &'a [NewJob],
    ) -> BoxFuture<'a, Result<Option<Vec<Created>>, StoreError>> {
        Box::pin(async move {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            // The lease row is locked until the commit: a new leader's takeover waits for it,
            // so a fenced-off leader cannot slip a slot in after losing the lease.
            let held = tx
                .query_opt(
                    &format!(
                        "SELECT 1 FROM leases WHERE name = $1 AND token = $2 \
                         AND expires_ms > {NOW_MS} FOR UPDATE"
                    ),
                    &[&lease, &token],
                )
                .await?
                .is_some();
            if !held {
                return Ok(None);
            }
            let n = tx
                .execute(
                    "INSERT INTO schedule_slots (schedule, slot, token, fired_at, jobs) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[&schedule, &slot, &token, &now_s(), &(jobs.len() as i64)],
                )
                .await?;
            if n == 0 {
                return Ok(None);
            }
            let out = create_in(&tx, jobs).await?;
            tx.commit().await?;
            Ok(Some(out))
        })
    }

    fn append_audit<'a>(&'a self, e: &'a AuditEntry) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            client
                .execute(
                    "INSERT INTO api_audit (time, actor, action, target, detail) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &e.time,
                        &e.actor,
                        &e.action,
                        &e.target,
                        &e.detail.to_string(),
                    ],
                )
                .await?;
            Ok(())
        })
    }
}

impl PgStore {
    async fn update_meter(
        &self,
        id: &MeterId,
        column: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let rev = bump_revision(&tx).await?;
        let n = tx
            .execute(
                &format!(
                    "UPDATE meters SET {column} = $2, revision = $3, updated_at = $4 WHERE id = $1"
                ),
                &[&id.0, &value, &rev, &now_s()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("meter {id}")));
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A system title taken by a meter inserted at the same moment elsewhere.
fn title_conflict(e: tokio_postgres::Error, m: &MeterRecord) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(format!(
            "meter {}: system title {} belongs to another meter",
            m.id, m.system_title
        ))
    } else {
        e.into()
    }
}
