//! Running schedules: a schedule's meters come from the registry, its cycles become job
//! requests queued on a local engine or sent to the jobs topic. The schedules themselves (and
//! their cron expressions) are `hes_model::schedule`'s, re-exported here under their old names.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use hes_model::{JobRequest, MeterId, Priority};
use hes_store::NewJob;
use rand::Rng;

pub use hes_model::schedule::{Cron, CronError, PlanMeter, Schedule, When};

use crate::jobs::Engine;
use crate::registry::Registry;
use crate::session::unix_now;

/// What running a schedule takes beyond the schedule: the registry that says which meters are
/// in its group, their links and cells.
pub trait ScheduleExt {
    /// The meters of this schedule.
    fn meters(&self, registry: &Registry) -> Vec<MeterId>;
    /// One cycle starting at `start` (Unix seconds) as job requests, in the order of the plan
    /// ([`Schedule::plan`]: the meters in `failed_last` first, then the slowest links, the cells
    /// taken in turn, spread evenly over the window), plus jitter (`not_before_ms`).
    fn cycle_requests(
        &self,
        registry: &Registry,
        start: i64,
        failed_last: &HashSet<MeterId>,
    ) -> Vec<JobRequest>;
    /// One cycle starting at `start` as jobs to create in the store.
    fn cycle_jobs(
        &self,
        registry: &Registry,
        start: i64,
        max_attempts: u32,
        failed_last: &HashSet<MeterId>,
    ) -> Vec<NewJob>;
}

impl ScheduleExt for Schedule {
    /// The meters of this schedule.
    fn meters(&self, registry: &Registry) -> Vec<MeterId> {
        records(self, registry)
            .into_iter()
            .map(|m| m.id.clone())
            .collect()
    }

    fn cycle_requests(
        &self,
        registry: &Registry,
        start: i64,
        failed_last: &HashSet<MeterId>,
    ) -> Vec<JobRequest> {
        let meters: Vec<PlanMeter> = records(self, registry)
            .iter()
            .map(|m| PlanMeter {
                id: m.id.clone(),
                link: m.group("link").map(str::to_string),
                cell: m.group("cell").map(str::to_string),
                failed_last: failed_last.contains(&m.id),
            })
            .collect();
        let mut rng = rand::thread_rng();
        self.plan(&meters)
            .into_iter()
            .map(|(meter, offset)| {
                let jitter = if self.jitter_s > 0 {
                    rng.gen_range(0..=self.jitter_s * 1000)
                } else {
                    0
                };
                JobRequest {
                    request: format!("{}@{start}/{}", self.name, meter.0),
                    not_before_ms: (start + offset) * 1000 + jitter,
                    meter,
                    kind: self.read.clone(),
                    priority: Priority::Scheduled,
                    requested_by: "scheduler".into(),
                    job: 0,
                }
            })
            .collect()
    }

    fn cycle_jobs(
        &self,
        registry: &Registry,
        start: i64,
        max_attempts: u32,
        failed_last: &HashSet<MeterId>,
    ) -> Vec<NewJob> {
        self.cycle_requests(registry, start, failed_last)
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

/// The registry's records of the meters in `s`'s group.
fn records(s: &Schedule, registry: &Registry) -> Vec<Arc<hes_model::meter::MeterRecord>> {
    let (k, v) = s
        .group
        .as_ref()
        .map_or(("", ""), |(k, v)| (k.as_str(), v.as_str()));
    registry.in_group(k, v)
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
    // The meters whose read failed in the schedule's last day go first.
    let failed: HashSet<MeterId> = match registry
        .state()
        .failed_requests(&format!("{}@", s.name), due - 86_400, 1_000_000)
        .await
    {
        Ok(v) => v.into_iter().collect(),
        Err(e) => {
            tracing::warn!(schedule = %s.name, error = %e, "reading last cycle's failures");
            HashSet::new()
        }
    };
    let jobs = s.cycle_jobs(registry, due, MAX_ATTEMPTS, &failed);
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
    // The cycle's deadline (by default its window's end, when the last job is due). An alert
    // compares it with the open jobs over the rate they finish at (deploy/prometheus/).
    let deadline = s.deadline(due);
    #[allow(clippy::cast_precision_loss)]
    {
        ::metrics::gauge!(crate::metrics::COLLECTION_DEADLINE, "schedule" => s.name.clone())
            .set(deadline as f64);
        ::metrics::gauge!(crate::metrics::COLLECTION_JOBS, "schedule" => s.name.clone())
            .set(n as f64);
    }
    let delivered = match sink {
        // The local engine keeps a job until its time without holding anything else back.
        Sink::Engine(_) => sink.deliver(new).await.map_err(PaceError::from),
        // On the bus a job waiting for its place in the window would hold back the commits of
        // its partition, and count against the collector's jobs in flight: the pacer publishes
        // each when it comes due (those due now at once).
        Sink::Bus { bus, topic } => pace(&**bus, topic, registry.state().as_ref())
            .await
            .map(drop),
    };
    if let Err(e) = delivered {
        // In the store but not on the bus: the pacer, or else the stale-job sweep, sends them.
        tracing::warn!(schedule = %s.name, error = %e, "dispatching a cycle");
    }
    Ok(Some(n))
}

/// How long before its time a scheduled job's record goes to the jobs topic: enough for the
/// record to reach a collector, small enough that nothing waits there for long.
pub const DISPATCH_LEAD_S: i64 = 2;

/// How often the leading scheduler publishes the jobs that came due.
pub const PACE_EVERY: Duration = Duration::from_secs(1);

/// Jobs published per store query.
const PACE_PAGE: usize = 2_000;

/// Why pacing stopped.
#[derive(Debug, thiserror::Error)]
pub enum PaceError {
    #[error("the store: {0}")]
    Store(#[from] hes_store::StoreError),
    #[error("the jobs topic: {0}")]
    Bus(#[from] hes_bus::BusError),
}

/// Publishes the scheduled jobs in the store that are due within [`DISPATCH_LEAD_S`] and have
/// not been published, oldest first, and records them as published. Returns how many. A
/// crash between the two publishes some again: a collector claims a job in the store before
/// running it, so a second record of a job taken or finished runs nothing.
pub async fn pace(
    bus: &dyn hes_bus::Bus,
    topic: &str,
    state: &dyn hes_store::StateStore,
) -> Result<usize, PaceError> {
    let mut sent = 0;
    // Bounded: a page at a time, and no more pages than a million jobs' worth per call.
    for _ in 0..500 {
        let now = unix_now();
        let jobs = state.due_jobs(now + DISPATCH_LEAD_S, PACE_PAGE).await?;
        if jobs.is_empty() {
            break;
        }
        crate::distributed::dispatch_jobs(bus, topic, &jobs).await?;
        let ids: Vec<hes_model::JobId> = jobs.iter().map(|j| j.id).collect();
        state.mark_dispatched(&ids, now).await?;
        sent += jobs.len();
        if jobs.len() < PACE_PAGE {
            break;
        }
    }
    Ok(sent)
}

/// How late a scheduler that starts (a new leader, schedules read again) still fires a slot
/// due before it started: a failover leaves no node leading for up to the lease's time to live
/// (10 s) and a renewal, and the schedules are read every 15 s. The slots table keeps a slot
/// fired already from firing again.
const CATCH_UP_S: i64 = 30;

/// The first slot a scheduler starting at `start` fires: the latest one due at most
/// [`CATCH_UP_S`] before it, else the next one.
fn first_due(when: &When, start: i64) -> Option<i64> {
    let mut due = when.next_after(start - CATCH_UP_S - 1)?;
    while let Some(later) = when.next_after(due).filter(|t| *t <= start) {
        due = later;
    }
    Some(due)
}

/// Runs schedules into `sink` until `shutdown`: at each cycle start, the cycle's jobs (spread
/// over the window) are created in the store under `fence` and handed to `sink`. A slot due
/// shortly before the start (see [`CATCH_UP_S`]) is fired at once unless it was already.
pub async fn run_into(
    schedules: Vec<Schedule>,
    sink: Sink,
    registry: Arc<Registry>,
    fence: Fence,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let start = unix_now();
    let mut next: Vec<Option<i64>> = schedules
        .iter()
        .map(|s| first_due(&s.when, start))
        .collect();
    let pacing = matches!(sink, Sink::Bus { .. });
    loop {
        let due = next.iter().flatten().min().copied();
        if due.is_none() && !pacing {
            return;
        }
        let to_slot = due.map_or(Duration::MAX, |d| {
            Duration::from_secs((d - unix_now()).max(0) as u64)
        });
        let wait = if pacing {
            to_slot.min(PACE_EVERY)
        } else {
            to_slot
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        if let Sink::Bus { bus, topic } = &sink {
            if let Err(e) = pace(&**bus, topic, registry.state().as_ref()).await {
                tracing::warn!(error = %e, "publishing the jobs that came due");
            }
        }
        let Some(due) = due.filter(|d| *d <= unix_now()) else {
            continue;
        };
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(y: i64, mo: u8, d: u8, h: i64, mi: i64) -> i64 {
        dlms::axdr::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60
    }

    #[test]
    fn a_starting_scheduler_fires_a_slot_due_just_before_it() {
        let t = at(2026, 11, 26, 10, 0);
        let every = When::Every(60);
        // Due 10 s ago (a failover, schedules read late): fired at once.
        assert_eq!(first_due(&every, t + 10), Some(t));
        assert_eq!(first_due(&every, t + CATCH_UP_S), Some(t));
        // Due longer ago: the next one.
        assert_eq!(first_due(&every, t + CATCH_UP_S + 1), Some(t + 60));
        // Short periods: only the latest slot is caught up, not every one of the last 30 s.
        assert_eq!(first_due(&When::Every(1), t), Some(t));
        let c: Cron = "*/15 * * * *".parse().unwrap();
        assert_eq!(first_due(&When::Cron(c.clone()), t + 20), Some(t));
        assert_eq!(first_due(&When::Cron(c), t + 60), Some(t + 900));
    }
}
