//! Running schedules: a schedule's meters come from the registry, its cycles become job
//! requests queued on a local engine or sent to the jobs topic. The schedules themselves (and
//! their cron expressions) are `hes_model::schedule`'s, re-exported here under their old names.

use std::sync::Arc;
use std::time::Duration;

use hes_model::{JobRequest, MeterId, Priority};
use rand::Rng;

pub use hes_model::schedule::{Cron, CronError, Schedule, When};

use crate::jobs::Engine;
use crate::registry::Registry;
use crate::session::unix_now;

/// What running a schedule takes beyond the schedule: the registry that says which meters are
/// in its group, and an engine to queue on.
pub trait ScheduleExt {
    /// The meters of this schedule.
    fn meters(&self, registry: &Registry) -> Vec<MeterId>;
    /// One cycle starting at `start` (Unix seconds) as job requests: each meter at its place in
    /// the window, plus jitter (`not_before_ms`).
    fn cycle_requests(&self, registry: &Registry, start: i64) -> Vec<JobRequest>;
    /// Queues one cycle starting at `start` (Unix seconds) on a local engine. Returns how many
    /// jobs were queued.
    fn queue_cycle(&self, engine: &Engine, registry: &Registry, start: i64) -> usize;
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
                }
            })
            .collect()
    }

    /// Queues one cycle starting at `start` (Unix seconds) on a local engine. Returns how many
    /// jobs were queued.
    fn queue_cycle(&self, engine: &Engine, registry: &Registry, start: i64) -> usize {
        let requests = self.cycle_requests(registry, start);
        let n = requests.len();
        for r in requests {
            engine.submit_at(
                r.meter,
                r.kind,
                r.priority,
                &r.requested_by,
                r.not_before_ms,
            );
        }
        n
    }
}

/// Where a scheduler puts a cycle's jobs.
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

/// Runs schedules into `sink` until `shutdown` (see [`run`]).
pub async fn run_into(
    schedules: Vec<Schedule>,
    sink: Sink,
    registry: Arc<Registry>,
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
                let queued = match &sink {
                    Sink::Engine(engine) => s.queue_cycle(engine, &registry, due),
                    Sink::Bus { bus, topic } => {
                        let requests = s.cycle_requests(&registry, due);
                        match crate::distributed::dispatch(&**bus, topic, &requests).await {
                            Ok(()) => requests.len(),
                            Err(e) => {
                                tracing::warn!(schedule = %s.name, error = %e, "dispatching a cycle");
                                0
                            }
                        }
                    }
                };
                tracing::info!(schedule = %s.name, queued, "cycle queued");
                *n = s.when.next_after(due);
            }
        }
    }
}

/// Runs schedules: at each cycle start, queue the cycle's jobs (spread over the window).
pub async fn run(
    schedules: Vec<Schedule>,
    engine: Arc<Engine>,
    registry: Arc<Registry>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    run_into(schedules, Sink::Engine(engine), registry, shutdown).await;
}
