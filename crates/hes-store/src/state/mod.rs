//! The state port: what every role shares and no process keeps to itself. The meter registry
//! (secrets sealed, bound to meter, field and key version), invocation-counter leases taken by
//! atomic increment, jobs with their state machine, leader leases with fencing tokens, the
//! schedule slots already fired, and the audit trail. Adapters: SQLite (`sqlite.rs`) and
//! PostgreSQL (`pg.rs`), both passing `tests/state_conformance.rs`.

use hes_model::meter::{MeterRecord, MeterStatus, SealedKeys};
use hes_model::{Job, JobId, JobKind, JobResult, JobState, MeterId, Priority};

use crate::{BoxFuture, StoreError};

pub mod cim;
mod pg;
pub(crate) mod sqlite;

/// A job to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub meter: MeterId,
    pub kind: JobKind,
    pub priority: Priority,
    pub requested_by: String,
    /// Not to start before (Unix seconds).
    pub not_before: i64,
    pub max_attempts: u32,
    /// The request this job answers (tracing; a read asked for again joins the open one and
    /// its request is added).
    pub request: Option<String>,
}

/// A created job, and whether it is new (`false`: an open read of the same meter and kind
/// that this request joined).
pub type Created = (Job, bool);

/// What [`StateStore::claim_job`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Taken: running here now, one attempt more.
    Claimed(Box<Job>),
    /// Running elsewhere, alive (its heartbeat is recent): look again later.
    Busy,
    /// Final (finished or cancelled) or unknown: not to run.
    Done,
}

/// Which jobs a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub meter: Option<MeterId>,
    pub state: Option<JobState>,
    /// Only jobs of these meters (a caller's group scope); `None`: every meter.
    pub meters: Option<Vec<MeterId>>,
    /// Commands only (`Some(true)`), reads only (`Some(false)`).
    pub commands: Option<bool>,
}

/// Jobs by state: open ones now, finished ones since a moment (see
/// [`StateStore::job_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Queued or retrying.
    pub queued: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Of those succeeded and failed, the reads (not commands).
    pub reads_succeeded: u64,
    pub reads_failed: u64,
}

/// One line of the audit trail: who did what to which target, when.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub time: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

/// A meter record as its row holds it (what changed it last: `revision`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMeter {
    pub record: MeterRecord,
    pub revision: i64,
}

/// The shared state of every role. Every method is one atomic step in the store. The webhook
/// queue ([`crate::webhooks::WebhookStore`]) lives in the same store.
pub trait StateStore: crate::webhooks::WebhookStore + Send + Sync {
    // ---- the meter registry ----

    /// Adds meters, all or none. A meter whose id exists is refused (`Conflict`) unless
    /// `replace`; a system title another meter has is always refused. Returns how many rows
    /// were added or replaced.
    fn import_meters<'a>(
        &'a self,
        meters: &'a [MeterRecord],
        replace: bool,
    ) -> BoxFuture<'a, Result<usize, StoreError>>;

    fn meter<'a>(
        &'a self,
        id: &'a MeterId,
    ) -> BoxFuture<'a, Result<Option<MeterRecord>, StoreError>>;

    /// Meters changed after `revision` (every meter for 0), in (revision, id) order, at most
    /// `limit`; with `after_id`, those of `revision` itself whose id comes after it too (the
    /// next page: one import gives all its meters one revision); and the registry's current
    /// revision.
    fn meters_since<'a>(
        &'a self,
        revision: i64,
        after_id: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<(Vec<StoredMeter>, i64), StoreError>>;

    /// The registry's revision: it grows with every change.
    fn registry_revision(&self) -> BoxFuture<'_, Result<i64, StoreError>>;

    /// Commits a meter's next keys if its key version is still `from_version` (else
    /// `Conflict`: another rotation won). `keys.version` must be `from_version + 1`.
    fn rotate_keys<'a>(
        &'a self,
        id: &'a MeterId,
        from_version: u32,
        keys: &'a SealedKeys,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    fn set_meter_groups<'a>(
        &'a self,
        id: &'a MeterId,
        groups: &'a std::collections::BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    fn set_meter_status<'a>(
        &'a self,
        id: &'a MeterId,
        status: MeterStatus,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    // ---- invocation counters ----

    /// Takes `block` counters of `meter` in one atomic increment and returns the first; the
    /// next lease starts after them. The first lease of a meter starts at `max(1, floor)`
    /// where the floor is what [`StateStore::raise_counter_floor`] set. `None` when the
    /// counter space is exhausted (keys must be rotated).
    fn lease_counters<'a>(
        &'a self,
        meter: &'a MeterId,
        block: u32,
    ) -> BoxFuture<'a, Result<Option<u32>, StoreError>>;

    /// Nothing below `next` is handed out again (a counter never goes down).
    fn raise_counter_floor<'a>(
        &'a self,
        meter: &'a MeterId,
        next: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Whether a counter of `meter` was ever leased or learnt.
    fn counter_known<'a>(&'a self, meter: &'a MeterId) -> BoxFuture<'a, Result<bool, StoreError>>;

    // ---- pushed invocation counters (replay protection) ----

    /// Accepts the invocation counter `ic` of a push from `meter` unless it was accepted
    /// before or is older than the [`PUSH_WINDOW`] counters below the highest accepted
    /// (pushes travel over separate connections and overtake each other). Atomic: of two
    /// listeners given the same push, one gets `true`.
    fn accept_push_counter<'a>(
        &'a self,
        meter: &'a MeterId,
        ic: u32,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Gives back a counter accepted for a push that could not be delivered, so that the
    /// meter's next attempt with the same frame passes.
    fn release_push_counter<'a>(
        &'a self,
        meter: &'a MeterId,
        ic: u32,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Notes that `meter` pushed its interval at `time` (meter time, Unix seconds); the newest
    /// one is kept. A meter without a push counter yet (no push accepted) is left alone.
    fn note_pushed_interval<'a>(
        &'a self,
        meter: &'a MeterId,
        time: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The newest interval any meter pushed that is at most `at_most`.
    fn newest_pushed_interval(
        &self,
        at_most: i64,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>>;

    /// Meters whose newest pushed interval is in `since..before`: they pushed lately but not
    /// the interval at `before`. Each with its newest, oldest first, at most `limit`.
    fn push_gaps(
        &self,
        before: i64,
        since: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<(MeterId, i64)>, StoreError>>;

    // ---- jobs ----

    /// Creates jobs (in one transaction), each queued; a read for a meter and kind that has
    /// one open already joins it.
    fn create_jobs<'a>(
        &'a self,
        jobs: &'a [NewJob],
    ) -> BoxFuture<'a, Result<Vec<Created>, StoreError>>;

    fn job(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>, StoreError>>;

    /// Takes a job to run it now: a queued or retrying job, or a running one whose last sign of
    /// life is older than `stale_before` (its collector died), turns running with one attempt
    /// more. Atomic: of two collectors claiming at once, one wins.
    fn claim_job(
        &self,
        id: JobId,
        now: i64,
        stale_before: i64,
    ) -> BoxFuture<'_, Result<Claim, StoreError>>;

    /// A sign of life of running jobs (their collector is alive).
    fn touch_jobs<'a>(
        &'a self,
        ids: &'a [JobId],
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// A failed attempt to be tried again not before `not_before`.
    fn retry_job<'a>(
        &'a self,
        id: JobId,
        error: &'a str,
        not_before: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// A job taken but not started (a limit was full): queued again, the attempt not counted.
    fn requeue_job(&self, id: JobId, not_before: i64) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Records a final state (succeeded or failed) with what the job produced.
    fn finish_job<'a>(&'a self, result: &'a JobResult) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Cancels a job that has not started; `false` when it is running or final already.
    fn cancel_job(&self, id: JobId, now: i64) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Jobs `filter` selects, newest first: `limit` of them from `offset`, and how many in all.
    fn list_jobs<'a>(
        &'a self,
        filter: &'a JobFilter,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<(Vec<Job>, u64), StoreError>>;

    /// Jobs by state: the open ones, and those finished at or after `since`; of the meters in
    /// `meters` only, when given (a caller's scope).
    fn job_counts<'a>(
        &'a self,
        since: i64,
        meters: Option<&'a [MeterId]>,
    ) -> BoxFuture<'a, Result<JobCounts, StoreError>>;

    /// Open jobs not changed since `before` and due before it: queued or retrying ones whose
    /// bus record may have been lost, and running ones whose collector stopped giving signs of
    /// life; to dispatch again.
    fn stale_jobs(&self, before: i64, limit: usize) -> BoxFuture<'_, Result<Vec<Job>, StoreError>>;

    /// Queued jobs of scheduled cycles (`not_before` > 0) whose record was never published and
    /// that are due at or before `until`, in (`not_before`, id) order, at most `limit`.
    fn due_jobs(&self, until: i64, limit: usize) -> BoxFuture<'_, Result<Vec<Job>, StoreError>>;

    /// Records that the records of `ids` were published (they leave [`Self::due_jobs`]).
    fn mark_dispatched<'a>(
        &'a self,
        ids: &'a [JobId],
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The meters whose latest job with a request starting `prefix` (a schedule's cycles:
    /// `"NAME@"`) failed, of those finished at or after `since`; at most `limit`.
    fn failed_requests<'a>(
        &'a self,
        prefix: &'a str,
        since: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<MeterId>, StoreError>>;

    /// Deletes final jobs finished before `before`; returns how many.
    fn prune_jobs(&self, before: i64) -> BoxFuture<'_, Result<u64, StoreError>>;

    // ---- leader leases and schedule slots ----

    /// Takes or renews the lease `name` for `holder` for `ttl_ms` (by the store's clock): the
    /// fencing token when held, `None` when another holder's lease is still valid. A new
    /// holder gets a larger token than any before.
    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl_ms: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>>;

    /// Gives the lease up (when `holder` holds it).
    fn release_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Fires one slot of a schedule: if the lease `lease` still has `token` and the slot was
    /// never fired, records it and creates its jobs in the same transaction. `None` when the
    /// slot was fired already or the token is stale.
    fn fire_slot<'a>(
        &'a self,
        lease: &'a str,
        token: i64,
        schedule: &'a str,
        slot: i64,
        jobs: &'a [NewJob],
    ) -> BoxFuture<'a, Result<Option<Vec<Created>>, StoreError>>;

    // ---- audit ----

    /// Appends to the audit trail (the one the API shows).
    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// How many counters below the highest accepted may still arrive in a push.
pub const PUSH_WINDOW: u32 = 64;

pub(crate) fn kind_text(k: &JobKind) -> Result<String, StoreError> {
    serde_json::to_string(k).map_err(|e| StoreError::Invalid(e.to_string()))
}

pub(crate) fn state_text(s: JobState) -> &'static str {
    match s {
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Succeeded => "succeeded",
        JobState::Failed => "failed",
        JobState::Retrying => "retrying",
        JobState::Cancelled => "cancelled",
    }
}

pub(crate) fn parse_state(s: &str) -> Result<JobState, StoreError> {
    Ok(match s {
        "queued" => JobState::Queued,
        "running" => JobState::Running,
        "succeeded" => JobState::Succeeded,
        "failed" => JobState::Failed,
        "retrying" => JobState::Retrying,
        "cancelled" => JobState::Cancelled,
        other => return Err(StoreError::Corrupt(format!("job state {other:?}"))),
    })
}

pub(crate) fn priority_text(p: Priority) -> &'static str {
    match p {
        Priority::Scheduled => "scheduled",
        Priority::OnDemand => "on_demand",
    }
}

pub(crate) fn parse_priority(s: &str) -> Result<Priority, StoreError> {
    match s {
        "scheduled" => Ok(Priority::Scheduled),
        "on_demand" => Ok(Priority::OnDemand),
        other => Err(StoreError::Corrupt(format!("job priority {other:?}"))),
    }
}

/// The columns a job row is read from, in this order.
pub(crate) const JOB_COLUMNS: &str = "id, meter, kind, priority, state, attempts, max_attempts, \
     created_at, not_before, started_at, finished_at, last_error, requested_by, requests";

/// A job from its columns as text and numbers (shared by both adapters).
#[allow(clippy::too_many_arguments)]
pub(crate) fn job_from_parts(
    id: i64,
    meter: String,
    kind: &str,
    priority: &str,
    state: &str,
    attempts: i64,
    max_attempts: i64,
    created_at: i64,
    not_before: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    last_error: Option<String>,
    requested_by: String,
    requests: &str,
) -> Result<Job, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    Ok(Job {
        id: crate::narrow(id, "job id")?,
        meter: MeterId(meter),
        kind: serde_json::from_str(kind).map_err(corrupt)?,
        priority: parse_priority(priority)?,
        state: parse_state(state)?,
        attempts: crate::narrow(attempts, "attempts")?,
        max_attempts: crate::narrow(max_attempts, "max_attempts")?,
        created_at,
        not_before,
        started_at,
        finished_at,
        last_error,
        requested_by,
        requests: serde_json::from_str(requests).map_err(corrupt)?,
    })
}

/// The columns a meter row is written from and read into, in this order.
pub(crate) const METER_COLUMNS: &str = "id, serial, logical_device_name, endpoint, system_title, \
     max_pdu, groups, status, quirks, key_version, secrets";

/// A meter row's text fields: endpoint, groups, quirks and sealed secrets as JSON.
pub(crate) struct MeterRow {
    pub endpoint: String,
    pub groups: String,
    pub quirks: String,
    pub secrets: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Secrets {
    ek: hes_model::secrets::Sealed,
    ak: hes_model::secrets::Sealed,
    kek: hes_model::secrets::Sealed,
    password: hes_model::secrets::Sealed,
}

pub(crate) fn secrets_text(k: &SealedKeys) -> Result<String, StoreError> {
    serde_json::to_string(&Secrets {
        ek: k.ek.clone(),
        ak: k.ak.clone(),
        kek: k.kek.clone(),
        password: k.password.clone(),
    })
    .map_err(|e| StoreError::Invalid(e.to_string()))
}

pub(crate) fn meter_row(m: &MeterRecord) -> Result<MeterRow, StoreError> {
    let j =
        |r: Result<String, serde_json::Error>| r.map_err(|e| StoreError::Invalid(e.to_string()));
    Ok(MeterRow {
        endpoint: j(serde_json::to_string(&m.endpoint))?,
        groups: j(serde_json::to_string(&m.groups))?,
        quirks: j(serde_json::to_string(&m.quirks))?,
        secrets: secrets_text(&m.keys)?,
    })
}

/// A meter from its columns (shared by both adapters).
#[allow(clippy::too_many_arguments)]
pub(crate) fn meter_from_parts(
    id: String,
    serial: String,
    logical_device_name: String,
    endpoint: &str,
    system_title: String,
    max_pdu: i64,
    groups: &str,
    status: &str,
    quirks: &str,
    key_version: i64,
    secrets: &str,
) -> Result<MeterRecord, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("meter {id}: {e}"));
    let s: Secrets = serde_json::from_str(secrets).map_err(corrupt)?;
    Ok(MeterRecord {
        endpoint: serde_json::from_str(endpoint).map_err(corrupt)?,
        groups: serde_json::from_str(groups).map_err(corrupt)?,
        quirks: serde_json::from_str(quirks).map_err(corrupt)?,
        status: MeterStatus::parse(status)
            .ok_or_else(|| StoreError::Corrupt(format!("meter {id}: status {status:?}")))?,
        max_pdu: crate::narrow(max_pdu, "max_pdu")?,
        keys: SealedKeys {
            ek: s.ek,
            ak: s.ak,
            kek: s.kek,
            password: s.password,
            version: crate::narrow(key_version, "key_version")?,
        },
        id: MeterId(id.clone()),
        serial,
        logical_device_name,
        system_title,
    })
}

/// Checks a batch before it is imported: no id or system title twice in it.
pub(crate) fn check_batch(meters: &[MeterRecord]) -> Result<(), StoreError> {
    let mut ids = std::collections::HashSet::new();
    let mut titles = std::collections::HashSet::new();
    for m in meters {
        if !ids.insert(&m.id) {
            return Err(StoreError::Conflict(format!(
                "meter {} twice in the import",
                m.id
            )));
        }
        if !titles.insert(m.system_title.to_ascii_uppercase()) {
            return Err(StoreError::Conflict(format!(
                "system title {} twice in the import (meter {})",
                m.system_title, m.id
            )));
        }
    }
    Ok(())
}

/// Open reads of one (meter, kind) in a batch count once: the first carries every request.
pub(crate) fn dedupe_new(jobs: &[NewJob]) -> Result<Vec<(NewJob, Vec<String>)>, StoreError> {
    let mut out: Vec<(NewJob, Vec<String>)> = Vec::new();
    let mut index: std::collections::HashMap<(MeterId, String), usize> = Default::default();
    for j in jobs {
        let requests: Vec<String> = j.request.iter().cloned().collect();
        if !j.kind.is_command() {
            let key = (j.meter.clone(), kind_text(&j.kind)?);
            if let Some(&i) = index.get(&key) {
                if let Some((_, r)) = out.get_mut(i) {
                    r.extend(requests);
                }
                continue;
            }
            index.insert(key, out.len());
        }
        out.push((j.clone(), requests));
    }
    Ok(out)
}

pub(crate) fn count_into(n: &mut JobCounts, state: &str, read: bool, count: u64) {
    match state {
        "queued" | "retrying" => n.queued += count,
        "running" => n.running += count,
        "succeeded" => {
            n.succeeded += count;
            if read {
                n.reads_succeeded += count;
            }
        }
        "failed" => {
            n.failed += count;
            if read {
                n.reads_failed += count;
            }
        }
        _ => {}
    }
}

/// The most requests one job keeps a record of.
pub(crate) const MAX_REQUESTS: usize = 64;
