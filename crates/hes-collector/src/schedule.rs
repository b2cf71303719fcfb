//! Running schedules: a schedule's meters come from the registry, its cycles become job
//! requests queued on a local engine or sent to the jobs topic. The schedules themselves (and
//! their cron expressions) are `hes_model::schedule`'s, re-exported here under their old names.

use std::sync::Arc;
use std::time::Duration;

use hes_model::{JobRequest, MeterId, Priority};
use hes_store::NewJob;
use rand::Rng;

pub use hes_model::schedule::{Cron, CronError, Schedule, When};

use crate::jobs::Engine;
use crate::registry::Registry;
use crate::session::unix_now;

/// What running a schedule takes beyond the schedule: the registry that says which meters are
/// in its group.
pub trait ScheduleExt {
    /// The meters of this schedule.
    fn meters(&self, registry: &Registry) -> Vec<MeterId>;
    /// One cycle starting at `start` (Unix seconds) as job requests: each meter at its place in
    /// the window, plus jitter (`not_before_ms`).
    fn cycle_requests(&self, registry: &Registry, start: i64) -> Vec<JobRequest>;
    /// One cycle starting at `start` as jobs to create in the store.
    fn cycle_jobs(&self, registry: &Registry, start: i64, max_attempts: u32) -> Vec<NewJob>;
}

impl ScheduleExt for Schedule {
    /// The meters of this schedule.
    fn meters(&self, registry: &Registry) -> Vec<MeterId> {
        let (k, v) = self
            .group
            .as_ref()
            .map_or(("", ""), |(k, v)| (k.as_str(), v.as_str()));
        registry
            .in_group(k, v)
            .into_iter()
            .map(|m| m.id.clone())
            .collect()
    }

    /// One cycle starting at `start` (Unix seconds) as job requests: each meter at its place in
    /// the window, plus jitter (`not_before_ms`).
    fn cycle_requests(&self, registry: &Registry, start: i64) -> Vec<JobRequest> {
        let mut rng = rand::thread_rng();
        self.meters(registry)
            .into_iter()
            .map(|meter| {
                let jitter = if self.jitter_s > 0 {
                    rng.gen_range(0..=self.jitter_s * 1000)
                } else {
                    0
                };
                JobRequest {
                    request: format!("{}@{start}/{}", self.name, meter.0),
                    not_before_ms: (start + self.offset(&meter)) * 1000 + jitter,
                    meter,
                    kind: self.read.clone(),
                    priority: Priority::Scheduled,
                    requested_by: "scheduler".into(),
                    job: 0,
                }
            })
            .collect()
    }

    /// One cycle starting at `start` as jobs to create in the store.
    fn cycle_jobs(&self, registry: &Registry, start: i64, max_attempts: u32) -> Vec<NewJob> {
        self.cycle_requests(registry, start)
            .into_iter()
            .map(|r| NewJob {
                meter: r.meter,
                kind: r.kind,
                priority: r.priority,
                requested_by: r.requested_by,
                not_before: (r.not_before_ms + 999) / 1000,
                max_attempts,
                request: Some(r.request),
            })
            .collect()
    }
}

/// Where a scheduler puts a cycle's jobs once they are in the store.
#[derive(Clone)]
pub enum Sink {
    /// A local job engine (the embedded mode).
    Engine(Arc<Engine>),
    /// The jobs topic of the bus (the distributed mode: the collectors' group takes them).
    Bus {
        bus: Arc<dyn hes_bus::Bus>,
        topic: String,
    },
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Engine(_) => f.write_str("Sink::Engine"),
            Sink::Bus { topic, .. } => write!(f, "Sink::Bus({topic})"),
        }
    }
}

impl Sink {
    /// Hands jobs created in the store to the collectors.
    pub async fn deliver(&self, jobs: Vec<hes_model::Job>) -> Result<(), hes_bus::BusError> {
        match self {
            Sink::Engine(engine) => {
                engine.enqueue_created(jobs);
                Ok(())
            }
            Sink::Bus { bus, topic } => {
                crate::distributed::dispatch_jobs(&**bus, topic, &jobs).await
            }
        }
    }
}

/// The lease a scheduler holds (its name and fencing token): a cycle is created only while the
/// token is current, and each slot of a schedule only once, however many schedulers run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease: String,
    pub token: i64,
}

/// Attempts per scheduled job.
const MAX_ATTEMPTS: u32 = 4;

/// Creates one cycle of `s` starting at `due` in the store (fenced: once per slot) and hands
/// the new jobs to `sink`. Returns how many jobs the cycle created, `None` when the slot had
/// fired already or the lease is no longer this scheduler's.
pub async fn fire(
    s: &Schedule,
    due: i64,
    sink: &Sink,
    registry: &Registry,
    fence: &Fence,
) -> Result<Option<usize>, hes_store::StoreError> {
    let jobs = s.cycle_jobs(registry, due, MAX_ATTEMPTS);
    let Some(created) = registry
        .state()
        .fire_slot(&fence.lease, fence.token, &s.name, due, &jobs)
        .await?
    else {
        return Ok(None);
    };
    let new: Vec<hes_model::Job> = created
        .into_iter()
        .filter_map(|(j, new)| new.then_some(j))
        .collect();
    let n = new.len();
    if let Err(e) = sink.deliver(new).await {
        // In the store but not on the bus: the stale-job sweep sends them again.
        tracing::warn!(schedule = %s.name, error = %e, "dispatching a cycle");
    }
    Ok(Some(n))
}

/// Runs schedules into `sink` until `shutdown`: at each cycle start, the cycle's jobs (spread
/// over the window) are created in the store under `fence` and handed to `sink`.
pub async fn run_into(
    schedules: Vec<Schedule>,
    sink: Sink,
    registry: Arc<Registry>,
    fence: Fence,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut next: Vec<Option<i64>> = schedules
        .iter()
        .map(|s| s.when.next_after(unix_now()))
        .collect();
    loop {
        let Some(due) = next.iter().flatten().min().copied() else {
            return;
        };
        let wait = Duration::from_secs((due - unix_now()).max(0) as u64);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        for (s, n) in schedules.iter().zip(next.iter_mut()) {
            if *n == Some(due) {
                match fire(s, due, &sink, &registry, &fence).await {
                    Ok(Some(queued)) => tracing::info!(schedule = %s.name, queued, "cycle queued"),
                    Ok(None) => {
                        tracing::info!(schedule = %s.name, due, "slot fired already or lease lost")
                    }
                    Err(e) => tracing::warn!(schedule = %s.name, error = %e, "creating a cycle"),
                }
                *n = s.when.next_after(due);
            }
        }
    }
}

/// Runs schedules on a local engine, holding the scheduler lease of `holder` (the embedded
/// mode: one process, which takes the lease at once).
pub async fn run(
    schedules: Vec<Schedule>,
    engine: Arc<Engine>,
    registry: Arc<Registry>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    // One holder name for every start: a restart keeps the token, and the slots table still
    // fires each slot once.
    let token = match registry
        .state()
        .acquire_lease(LOCAL_LEASE, "local", i64::MAX / 4)
        .await
    {
        Ok(Some(t)) => t,
        Ok(None) => {
            tracing::warn!("another scheduler holds the local schedules' lease");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "taking the local schedules' lease");
            return;
        }
    };
    let fence = Fence {
        lease: LOCAL_LEASE.to_string(),
        token,
    };
    run_into(schedules, Sink::Engine(engine), registry, fence, shutdown).await;
}

/// The lease of schedules run by [`run`] (built-in schedules of one process).
const LOCAL_LEASE: &str = "local-schedules";
