//! Commands of an API node in the distributed mode: a job the API accepts is put on `hes.jobs`
//! (the collectors' consumer group runs it), and its state follows the job results on
//! `hes.job-results`, which every API node reads in a group of its own. A result names the
//! requests it answered (`JobResult::requests`); this node's are `<node>-<job id>`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hes_api::CommandSink;
use hes_bus::Bus;
use hes_model::{topics, Job, JobId, JobKind, JobRequest, JobResult, JobState, MeterId, Priority};

/// The most jobs a node remembers (the oldest finished ones are forgotten first).
const KEEP: usize = 10_000;

#[derive(Debug)]
pub struct BusCommands {
    bus: Arc<dyn Bus>,
    jobs: Mutex<BTreeMap<JobId, Job>>,
    next: AtomicU64,
    node: String,
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl BusCommands {
    /// A sink publishing on `bus`; `node` names this API node (its job ids and result group).
    pub fn new(bus: Arc<dyn Bus>, node: &str) -> Arc<Self> {
        // Ids unique across nodes and restarts: the start time in ms, then a counter.
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
            << 12;
        Arc::new(Self {
            bus,
            jobs: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(base),
            node: node.to_string(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<JobId, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows `hes.job-results` until `stop`, updating the jobs this node submitted.
    pub async fn follow_results(
        self: Arc<Self>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let group = format!("api-{}", self.node);
        let mut consumer = self.bus.subscribe(&[topics::JOB_RESULTS], &group).await?;
        loop {
            let next = tokio::select! {
                d = consumer.next(Duration::from_millis(500)) => d,
                _ = stop.changed() => return Ok(()),
            };
            let d = match next {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "job results");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            for r in d.decode::<JobResult>().unwrap_or_default() {
                self.apply(&r);
            }
            let _ = consumer.commit(&d).await;
        }
    }

    fn apply(&self, r: &JobResult) {
        let prefix = format!("{}-", self.node);
        let mut jobs = self.lock();
        for req in &r.requests {
            let Some(id) = req
                .strip_prefix(&prefix)
                .and_then(|s| s.parse::<JobId>().ok())
            else {
                continue;
            };
            if let Some(j) = jobs.get_mut(&id) {
                j.state = r.state;
                j.attempts = r.attempts;
                j.started_at = r.started_at;
                j.finished_at = Some(r.finished_at);
                j.last_error = r.error.clone();
            }
        }
    }
}

impl CommandSink for BusCommands {
    fn submit(&self, meter: MeterId, kind: JobKind, requested_by: &str) -> JobId {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            id,
            meter: meter.clone(),
            kind: kind.clone(),
            priority: Priority::OnDemand,
            state: JobState::Queued,
            attempts: 0,
            max_attempts: 3,
            created_at: now_s(),
            not_before: now_s(),
            started_at: None,
            finished_at: None,
            last_error: None,
            requested_by: requested_by.to_string(),
            requests: Vec::new(),
        };
        {
            let mut jobs = self.lock();
            jobs.insert(id, job);
            while jobs.len() > KEEP {
                let oldest_done = jobs
                    .iter()
                    .find(|(_, j)| j.finished_at.is_some())
                    .map(|(k, _)| *k);
                match oldest_done.or_else(|| jobs.keys().next().copied()) {
                    Some(k) => jobs.remove(&k),
                    None => break,
                };
            }
        }
        let request = JobRequest {
            request: format!("{}-{id}", self.node),
            meter,
            kind,
            priority: Priority::OnDemand,
            requested_by: requested_by.to_string(),
            not_before_ms: 0,
        };
        let bus = self.bus.clone();
        tokio::spawn(async move {
            if let Err(e) =
                hes_collector::distributed::dispatch(&*bus, topics::JOBS, &[request]).await
            {
                tracing::warn!(job = id, error = %e, "dispatching a job");
            }
        });
        id
    }

    fn job(&self, id: JobId) -> Option<Job> {
        self.lock().get(&id).cloned()
    }

    /// A job on the bus cannot be called back: only one not yet published could be, and
    /// publishing is immediate. Always false.
    fn cancel(&self, _id: JobId) -> bool {
        false
    }

    fn list(&self, keep: &dyn Fn(&Job) -> bool, offset: usize, limit: usize) -> (Vec<Job>, usize) {
        let jobs = self.lock();
        let all: Vec<&Job> = jobs.values().rev().filter(|j| keep(j)).collect();
        let total = all.len();
        (
            all.into_iter().skip(offset).take(limit).cloned().collect(),
            total,
        )
    }
}
