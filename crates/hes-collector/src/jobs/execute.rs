//! Running one job: the shared limits, the claim in the store, the attempt, and how it
//! settled (a retry, or a final state recorded in the store, audited and published); the
//! heartbeat of running jobs.

use super::*;

/// How an attempt settled.
enum Settled {
    /// To be tried again not before (Unix seconds).
    Retry {
        error: String,
        not_before: i64,
    },
    Final(JobResult, String),
    /// Not in this engine any more.
    Gone,
}

/// How often running jobs tell the store they are alive, and after how long without a sign a
/// job is taken over by another collector (its own died).
const HEARTBEAT: Duration = Duration::from_secs(10);
const TAKEOVER_AFTER_S: i64 = 35;
/// When a job is running alive elsewhere (a record delivered twice), look again after this.
const TAKEOVER_RECHECK: Duration = Duration::from_secs(5);

/// What running a job produced.
pub(super) struct Outcome {
    pub(super) readings: u32,
    pub(super) events: u32,
    pub(super) detail: Value,
}

pub(super) fn backoff(cfg: &EngineConfig, attempt: u32) -> Duration {
    hes_model::backoff::Backoff::new(cfg.backoff_base, cfg.backoff_max).delay(attempt)
}

impl Engine {
    #[tracing::instrument(name = "job", skip_all, fields(job = job.id, meter = %job.meter, trace = job.requests.first().map(String::as_str)))]
    pub(super) async fn execute(&self, job: Job) {
        let shared = self
            .shared_limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut lease = None;
        if let Some(limits) = &shared {
            let cell = self
                .env
                .registry
                .get(&job.meter)
                .and_then(|m| m.group(&self.cfg.group_key).map(String::from));
            match limits.try_acquire(cell.as_deref()).await {
                Ok(Some(l)) => lease = Some(l),
                Ok(None) => {
                    let wait = rand::thread_rng().gen_range(50..250);
                    self.defer(&job, Duration::from_millis(wait));
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "shared limits unavailable: waiting");
                    self.defer(&job, Duration::from_secs(1));
                    return;
                }
            }
        }
        // The store decides whether the job runs here: cancelled, finished or running alive
        // elsewhere, it does not.
        let claim = self
            .state_store
            .claim_job(job.id, unix_now(), unix_now() - TAKEOVER_AFTER_S)
            .await;
        let job = match claim {
            Ok(Claim::Claimed(stored)) => {
                let mut st = self.state();
                if let Some(j) = st.jobs.get_mut(&job.id) {
                    j.attempts = stored.attempts;
                }
                drop(st);
                Job {
                    attempts: stored.attempts,
                    ..job
                }
            }
            other => {
                if let (Some(limits), Some(l)) = (&shared, lease) {
                    let _ = limits.release(l).await;
                }
                match other {
                    Ok(Claim::Busy) => self.defer(&job, TAKEOVER_RECHECK),
                    Ok(_) => self.forget(&job),
                    Err(e) => {
                        tracing::warn!(job = job.id, error = %e, "claiming a job: store unavailable");
                        self.defer(&job, Duration::from_secs(1));
                    }
                }
                return;
            }
        };
        let r = tokio::time::timeout(self.cfg.job_timeout, self.attempt(&job)).await;
        if let (Some(limits), Some(l)) = (&shared, lease) {
            if let Err(e) = limits.release(l).await {
                tracing::warn!(error = %e, "a shared limit place is left to expire");
            }
        }
        let r = match r {
            Ok(r) => r,
            Err(_) => Err(SessionError::Unexpected("job timed out".into())),
        };
        let now = unix_now();
        let (result, requested_by) = match self.settle(&job, r, now) {
            Settled::Final(result, by) => (result, by),
            Settled::Retry { error, not_before } => {
                if let Err(e) = self.state_store.retry_job(job.id, &error, not_before).await {
                    tracing::warn!(job = job.id, error = %e, "recording a retry");
                }
                return;
            }
            Settled::Gone => return,
        };
        // The row first: once the store says final, any node answers so.
        self.record_final(&result).await;
        let state = result.state;
        let error = result.error.clone();
        crate::metrics::job_finished(state, job.priority);
        match state {
            JobState::Succeeded => self.stats.succeeded.fetch_add(1, Ordering::Relaxed),
            _ => self.stats.failed.fetch_add(1, Ordering::Relaxed),
        };
        if job.kind.is_command() {
            let entry = AuditEntry {
                time: now,
                actor: requested_by.clone(),
                action: "command.finished".into(),
                target: job.meter.0.clone(),
                detail: json!({
                    "job": job.id,
                    "command": job.kind,
                    "state": state,
                    "error": error,
                    "detail": result.detail,
                }),
            };
            if let Err(e) = self.state_store.append_audit(&entry).await {
                tracing::error!(job = job.id, error = %e, "the audit trail refused a command's outcome");
            }
            self.audit.record(AuditRecord {
                at: now,
                job: job.id,
                meter: job.meter.clone(),
                requested_by,
                command: job.kind.clone(),
                state,
                error,
                detail: result.detail.clone(),
            });
        }
        if let Err(e) = bus::publish_result(&*self.bus, &result).await {
            tracing::warn!(job = job.id, error = %e, "job result not published");
        }
        self.finalize(&result);
    }

    /// Records how an attempt ended: a retry is queued again, a final state gives the result
    /// to publish.
    fn settle(&self, job: &Job, r: Result<Outcome, SessionError>, now: i64) -> Settled {
        let mut st = self.state();
        st.busy.remove(&job.meter);
        st.running = st.running.saturating_sub(1);
        let Some(j) = st.jobs.get_mut(&job.id) else {
            return Settled::Gone;
        };
        let (state, outcome, error) = match r {
            Ok(o) => (JobState::Succeeded, Some(o), None),
            // Every job but key rotation may run again: reads and the other commands are
            // idempotent (a firmware upgrade resumes); a key transfer whose answer was lost
            // must not be repeated blindly.
            Err(e)
                if e.retryable()
                    && j.attempts < j.max_attempts
                    && job.kind != JobKind::RotateKeys =>
            {
                let delay = backoff(&self.cfg, j.attempts);
                j.state = JobState::Retrying;
                j.last_error = Some(e.to_string());
                let due_ms = unix_ms() + delay.as_millis() as i64;
                j.not_before = (due_ms + 999) / 1000;
                let q = Queued {
                    priority: j.priority,
                    not_before: due_ms,
                    id: j.id,
                };
                st.queue.push(q);
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                crate::metrics::job_retry(e.reason());
                tracing::debug!(job = job.id, meter = %job.meter, error = %e, "retrying");
                return Settled::Retry {
                    error: e.to_string(),
                    not_before: (due_ms + 999) / 1000,
                };
            }
            Err(e) => (JobState::Failed, None, Some(e.to_string())),
        };
        // The job stays running here until its end is in the store and on the bus
        // (`finalize`): whoever waits for it, or commits its record, sees it done only then.
        let result = JobResult {
            job: j.id,
            meter: j.meter.clone(),
            kind: j.kind.clone(),
            state,
            attempts: j.attempts,
            started_at: j.started_at,
            finished_at: now,
            error,
            readings: outcome.as_ref().map_or(0, |o| o.readings),
            events: outcome.as_ref().map_or(0, |o| o.events),
            detail: outcome.map_or(Value::Null, |o| o.detail),
            requests: j.requests.clone(),
        };
        let requested_by = j.requested_by.clone();
        Settled::Final(result, requested_by)
    }

    /// Marks a job final here, once its end is recorded and published.
    fn finalize(&self, result: &JobResult) {
        let mut st = self.state();
        if let Some(j) = st.jobs.get_mut(&result.job) {
            j.state = result.state;
            j.finished_at = Some(result.finished_at);
            j.last_error.clone_from(&result.error);
        }
        st.finished.push_back(result.job);
        while st.finished.len() > self.cfg.keep_finished {
            if let Some(old) = st.finished.pop_front() {
                st.jobs.remove(&old);
            }
        }
    }

    /// Writes a final state to the store, trying again for a while when the store is away
    /// (a failover); a row left running is taken over later, so nothing is lost either way.
    async fn record_final(&self, result: &JobResult) {
        let policy =
            hes_model::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        for attempt in 1..=12 {
            match self.state_store.finish_job(result).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(job = result.job, error = %e, attempt, "recording a job's end");
                    tokio::time::sleep(policy.delay(attempt)).await;
                }
            }
        }
        tracing::error!(
            job = result.job,
            "a job's end is not in the store: it will run again"
        );
    }

    /// Drops a job the store says is not to run here (cancelled, or finished elsewhere).
    fn forget(&self, job: &Job) {
        let mut st = self.state();
        st.busy.remove(&job.meter);
        st.running = st.running.saturating_sub(1);
        if let Some(j) = st.jobs.get_mut(&job.id) {
            if !j.state.is_final() {
                j.state = JobState::Cancelled;
                j.finished_at = Some(unix_now());
            }
        }
        st.finished.push_back(job.id);
    }

    /// Tells the store, every [`HEARTBEAT`], that the jobs running here are alive.
    pub(super) async fn heartbeat(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT) => {}
                _ = shutdown.changed() => return,
            }
            let running: Vec<JobId> = self
                .state()
                .jobs
                .values()
                .filter(|j| j.state == JobState::Running)
                .map(|j| j.id)
                .collect();
            if running.is_empty() {
                continue;
            }
            if let Err(e) = self.state_store.touch_jobs(&running, unix_now()).await {
                tracing::warn!(error = %e, "job heartbeat");
            }
        }
    }
}
