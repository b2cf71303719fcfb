//! The job engine of one collector: every read and command is a job whose state lives in the
//! store (`hes_store::StateStore`: created queued by whoever asked, claimed here atomically
//! before it runs, kept alive by a heartbeat while it runs, retried or finished there), so any
//! node answers for any job and a job whose collector died is taken over by another. Locally,
//! jobs wait in a priority queue (on-demand before scheduled), run at most one per meter at a
//! time, within a global limit and a limit per group (a gateway or radio cell), with a timeout;
//! failures are retried with exponential backoff and jitter. Output goes to the bus before a
//! job counts as done (at-least-once); commands are audited in the store's audit trail.

use hes_model::clock::unix_ms;
use hes_store::{AuditEntry, Claim, NewJob, StateStore, StoreError};
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hes_model::{
    Event, Job, JobId, JobKind, JobResult, JobState, MeterId, Priority, Reading, Source,
};
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{Notify, Semaphore};

use crate::bus::{self, Bus};
use crate::session::{unix_now, Env, MeterSession, SessionError};

mod audit;
mod execute;
mod reads;

pub use audit::{Audit, AuditRecord};

/// Standard logical names the reads use.
pub mod obis {
    use dlms::ObisCode;
    pub const LOAD_PROFILE: ObisCode = ObisCode::new(1, 0, 99, 1, 0, 255);
    pub const DAILY_PROFILE: ObisCode = ObisCode::new(1, 0, 99, 2, 0, 255);
    pub const BILLING_PROFILE: ObisCode = ObisCode::new(0, 0, 98, 1, 0, 255);
    pub const EVENT_LOGS: [ObisCode; 3] = [
        ObisCode::new(0, 0, 99, 98, 0, 255),
        ObisCode::new(0, 0, 99, 98, 1, 255),
        ObisCode::new(0, 0, 99, 98, 4, 255),
    ];
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Jobs running at once in this collector.
    pub concurrency: usize,
    /// The group key that limits concurrency per value (e.g. `cell`), and the limit.
    pub group_key: String,
    pub per_group: usize,
    /// Attempts per job (the first included).
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A job that takes longer is cut and retried.
    pub job_timeout: Duration,
    /// Finished jobs kept for inspection (the oldest are forgotten first).
    pub keep_finished: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            group_key: "cell".into(),
            per_group: 8,
            max_attempts: 4,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            job_timeout: Duration::from_secs(300),
            keep_finished: 100_000,
        }
    }
}

/// Queue order: on-demand first, then the earliest due, then the oldest.
#[derive(Debug, PartialEq, Eq)]
struct Queued {
    priority: Priority,
    /// Unix milliseconds.
    not_before: i64,
    id: JobId,
}

impl Ord for Queued {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        self.priority
            .cmp(&o.priority)
            .then(o.not_before.cmp(&self.not_before))
            .then(o.id.cmp(&self.id))
    }
}

impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}

#[derive(Debug, Default)]
struct State {
    jobs: HashMap<JobId, Job>,
    queue: BinaryHeap<Queued>,
    busy: HashSet<MeterId>,
    running: usize,
    finished: std::collections::VecDeque<JobId>,
    /// The newest entry time stored per meter and profile: reads continue from there.
    watermarks: HashMap<(MeterId, dlms::ObisCode), i64>,
}

/// Counters of what the engine did.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub readings: AtomicU64,
    pub events: AtomicU64,
}

/// The job engine of one collector.
pub struct Engine {
    env: Arc<Env>,
    bus: Arc<dyn Bus>,
    cfg: EngineConfig,
    state: Mutex<State>,
    notify: Notify,
    state_store: Arc<dyn StateStore>,
    global: Arc<Semaphore>,
    groups: Mutex<HashMap<String, Arc<Semaphore>>>,
    images: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    shared_limits: Mutex<Option<crate::limits::SharedLimits>>,
    pub audit: Audit,
    pub stats: EngineStats,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("cfg", &self.cfg)
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(env: Arc<Env>, bus: Arc<dyn Bus>, cfg: EngineConfig, audit: Audit) -> Arc<Self> {
        let state_store = env.registry.state().clone();
        Arc::new(Self {
            global: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
            env,
            bus,
            cfg,
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            state_store,
            groups: Mutex::new(HashMap::new()),
            images: Mutex::new(HashMap::new()),
            shared_limits: Mutex::new(None),
            audit,
            stats: EngineStats::default(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Limits shared with the other collectors (global and per cell, in Redis): a job runs only
    /// with a place in both; without one it waits, and the wait is not an attempt.
    pub fn set_shared_limits(&self, limits: crate::limits::SharedLimits) {
        *self.shared_limits.lock().unwrap_or_else(|p| p.into_inner()) = Some(limits);
    }

    /// Puts a job that could not start back in the queue, as if it had not been taken.
    fn defer(&self, job: &Job, delay: Duration) {
        let mut st = self.state();
        st.busy.remove(&job.meter);
        st.running = st.running.saturating_sub(1);
        if let Some(j) = st.jobs.get_mut(&job.id) {
            j.state = JobState::Queued;
            j.attempts = j.attempts.saturating_sub(1);
            let due = unix_ms() + delay.as_millis() as i64;
            let q = Queued {
                priority: j.priority,
                not_before: due,
                id: j.id,
            };
            st.queue.push(q);
        }
    }

    /// Makes a firmware image available to upgrade jobs under `identifier`.
    pub fn add_image(&self, identifier: &str, image: Vec<u8>) {
        self.images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(identifier.to_string(), Arc::new(image));
    }

    /// Creates a job in the store and queues it here. A read already open for the meter (here
    /// or anywhere) is not created twice: its id is returned instead.
    pub async fn submit(
        &self,
        meter: MeterId,
        kind: JobKind,
        priority: Priority,
        requested_by: &str,
    ) -> Result<JobId, StoreError> {
        self.submit_at(meter, kind, priority, requested_by, unix_ms())
            .await
    }

    /// [`Engine::submit`], not to start before `not_before_ms` (Unix milliseconds).
    pub async fn submit_at(
        &self,
        meter: MeterId,
        kind: JobKind,
        priority: Priority,
        requested_by: &str,
        not_before_ms: i64,
    ) -> Result<JobId, StoreError> {
        let new = NewJob {
            meter,
            kind,
            priority,
            requested_by: requested_by.to_string(),
            not_before: (not_before_ms + 999) / 1000,
            max_attempts: self.cfg.max_attempts,
            request: None,
        };
        let created = self
            .state_store
            .create_jobs(std::slice::from_ref(&new))
            .await?;
        let (job, _) = created
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt("no job created".into()))?;
        let id = job.id;
        self.enqueue(job, not_before_ms);
        Ok(id)
    }

    /// Queues jobs created in the store (by a scheduler's slot, for instance) here.
    pub fn enqueue_created(&self, jobs: Vec<Job>) {
        for j in jobs {
            let due = j.not_before.saturating_mul(1000);
            self.enqueue(j, due);
        }
    }

    /// Queues a job from the bus. A request that names its row in the store runs that job; one
    /// that does not (a dispatcher without a store) gets a row first.
    pub async fn submit_request(&self, r: &hes_model::JobRequest) -> Result<JobId, StoreError> {
        if r.job == 0 {
            let new = NewJob {
                meter: r.meter.clone(),
                kind: r.kind.clone(),
                priority: r.priority,
                requested_by: r.requested_by.clone(),
                not_before: (r.not_before_ms + 999) / 1000,
                max_attempts: self.cfg.max_attempts,
                request: Some(r.request.clone()),
            };
            let created = self
                .state_store
                .create_jobs(std::slice::from_ref(&new))
                .await?;
            let (job, _) = created
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::Corrupt("no job created".into()))?;
            let id = job.id;
            self.enqueue(job, r.not_before_ms);
            return Ok(id);
        }
        let job = Job {
            id: r.job,
            meter: r.meter.clone(),
            kind: r.kind.clone(),
            priority: r.priority,
            state: JobState::Queued,
            attempts: 0,
            max_attempts: self.cfg.max_attempts,
            created_at: unix_now(),
            not_before: (r.not_before_ms + 999) / 1000,
            started_at: None,
            finished_at: None,
            last_error: None,
            requested_by: r.requested_by.clone(),
            requests: vec![r.request.clone()],
        };
        self.enqueue(job, r.not_before_ms);
        Ok(r.job)
    }

    /// Puts a job in the local queue, unless it is here already and not finished (a record
    /// delivered again, a read joined by another request).
    fn enqueue(&self, job: Job, not_before_ms: i64) {
        let mut st = self.state();
        if let Some(old) = st.jobs.get_mut(&job.id) {
            if !old.state.is_final() {
                for r in job.requests {
                    if old.requests.len() < 64 && !old.requests.contains(&r) {
                        old.requests.push(r);
                    }
                }
                return;
            }
        }
        let q = Queued {
            priority: job.priority,
            not_before: not_before_ms,
            id: job.id,
        };
        let mut job = job;
        job.state = JobState::Queued;
        st.jobs.insert(job.id, job);
        st.queue.push(q);
        drop(st);
        self.notify.notify_one();
    }

    pub fn job(&self, id: JobId) -> Option<Job> {
        self.state().jobs.get(&id).cloned()
    }

    /// Cancels a job that has not started (a running one finishes its attempt), in the store
    /// (from any node: a collector claims a job before it runs it) and here.
    pub async fn cancel(&self, id: JobId) -> Result<bool, StoreError> {
        let now = unix_now();
        if !self.state_store.cancel_job(id, now).await? {
            return Ok(false);
        }
        let mut st = self.state();
        if let Some(j) = st.jobs.get_mut(&id) {
            if matches!(j.state, JobState::Queued | JobState::Retrying) {
                j.state = JobState::Cancelled;
                j.finished_at = Some(now);
            }
        }
        Ok(true)
    }

    /// The jobs `keep` accepts (queued, running and the finished ones still kept), newest
    /// first: `limit` of them from `offset`, and how many matched in all. For the API.
    pub fn list_jobs(
        &self,
        keep: &dyn Fn(&Job) -> bool,
        offset: usize,
        limit: usize,
    ) -> (Vec<Job>, usize) {
        let st = self.state();
        let mut ids: Vec<JobId> = st.jobs.values().filter(|j| keep(j)).map(|j| j.id).collect();
        let total = ids.len();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let page = ids
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|id| st.jobs.get(id).cloned())
            .collect();
        (page, total)
    }

    /// Jobs not finished yet.
    pub fn pending(&self) -> usize {
        let st = self.state();
        st.jobs.values().filter(|j| !j.state.is_final()).count()
    }

    /// Waits (bounded) until every job has finished.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.pending() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    fn group_permit(&self, meter: &MeterId) -> Option<Arc<Semaphore>> {
        let record = self.env.registry.get(meter)?;
        let value = record.group(&self.cfg.group_key)?.to_string();
        let mut g = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        Some(
            g.entry(value)
                .or_insert_with(|| Arc::new(Semaphore::new(self.cfg.per_group.max(1))))
                .clone(),
        )
    }

    /// Takes the next job that may run now, with its permits; or when to look again.
    fn take(&self) -> Result<(Job, Vec<tokio::sync::OwnedSemaphorePermit>), Option<i64>> {
        let now_ms = unix_ms();
        let now = unix_now();
        let mut st = self.state();
        let mut skipped = Vec::new();
        let mut next_due: Option<i64> = None;
        let mut found = None;
        while let Some(q) = st.queue.pop() {
            let Some(job) = st.jobs.get(&q.id) else {
                continue;
            };
            if job.state.is_final() {
                continue;
            }
            if q.not_before > now_ms {
                next_due = Some(next_due.map_or(q.not_before, |d: i64| d.min(q.not_before)));
                skipped.push(q);
                continue;
            }
            if st.busy.contains(&job.meter) {
                skipped.push(q);
                continue;
            }
            let Ok(global) = self.global.clone().try_acquire_owned() else {
                skipped.push(q);
                break;
            };
            let mut permits = vec![global];
            if let Some(group) = self.group_permit(&job.meter) {
                match group.try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => {
                        skipped.push(q);
                        continue;
                    }
                }
            }
            found = Some((q.id, permits));
            break;
        }
        for q in skipped {
            st.queue.push(q);
        }
        let Some((id, permits)) = found else {
            return Err(next_due);
        };
        let job = match st.jobs.get_mut(&id) {
            Some(j) => {
                j.state = JobState::Running;
                j.attempts += 1;
                j.started_at = Some(now);
                j.clone()
            }
            None => return Err(next_due),
        };
        st.busy.insert(job.meter.clone());
        st.running += 1;
        Ok((job, permits))
    }

    /// Runs jobs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        tokio::spawn(self.clone().heartbeat(shutdown.clone()));
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.take() {
                Ok((job, permits)) => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        me.execute(job).await;
                        drop(permits);
                        me.notify.notify_one();
                    });
                }
                Err(next_due) => {
                    let wait = next_due
                        .map_or(Duration::from_millis(500), |t| {
                            Duration::from_millis((t - unix_ms()).max(0) as u64)
                        })
                        .clamp(Duration::from_millis(5), Duration::from_millis(500));
                    tokio::select! {
                        _ = self.notify.notified() => {}
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        }
    }
}

impl hes_model::CommandSink for Engine {
    fn submit<'a>(
        &'a self,
        meter: MeterId,
        kind: JobKind,
        requested_by: &'a str,
    ) -> hes_model::BoxFuture<'a, Result<JobId, String>> {
        Box::pin(async move {
            Engine::submit(self, meter, kind, Priority::OnDemand, requested_by)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
