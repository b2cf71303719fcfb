//! The distributed mode: jobs travel on the bus topic `hes.jobs`, keyed (so partitioned) by
//! meter id; collectors form one consumer group on it. A meter's jobs all go to one collector at
//! a time, so no meter is read twice at once and every meter is read; a collector commits a
//! job's offset only once the job has finished and its output is on the bus, so a collector
//! killed mid-job leaves the job to the collector that inherits its partition.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hes_bus::{Bus, BusError, Consumer, Delivery, Record};
pub use hes_model::JobRequest;
use hes_model::{Job, JobId, JobKind, MeterId, Priority};
use hes_store::{NewJob, StateStore};

use crate::jobs::Engine;

/// Puts jobs on the jobs topic (`hes.jobs` in production), keyed by meter.
pub async fn dispatch(bus: &dyn Bus, topic: &str, jobs: &[JobRequest]) -> Result<(), BusError> {
    let records = jobs
        .iter()
        .map(|j| {
            Ok(Record {
                key: j.meter.0.clone(),
                payload: hes_proto::encode_job_request(j),
            })
        })
        .collect::<Result<Vec<_>, BusError>>()?;
    bus.publish(topic, records).await
}

/// The request that carries a job (created in the store) to the collectors.
pub fn request_of(job: &Job) -> JobRequest {
    JobRequest {
        request: job
            .requests
            .first()
            .cloned()
            .unwrap_or_else(|| format!("job-{}", job.id)),
        meter: job.meter.clone(),
        kind: job.kind.clone(),
        priority: job.priority,
        requested_by: job.requested_by.clone(),
        not_before_ms: job.not_before.saturating_mul(1000),
        job: job.id,
    }
}

/// Puts jobs created in the store on the jobs topic.
pub async fn dispatch_jobs(bus: &dyn Bus, topic: &str, jobs: &[Job]) -> Result<(), BusError> {
    let requests: Vec<JobRequest> = jobs.iter().map(request_of).collect();
    dispatch(bus, topic, &requests).await
}

/// Commands of the distributed mode: each becomes a row in the store (where every node reads
/// its state and can cancel it), then a record on the jobs topic for the collectors' group.
pub struct BusDispatcher {
    pub bus: Arc<dyn Bus>,
    pub topic: String,
    pub state: Arc<dyn StateStore>,
    /// Attempts per job.
    pub max_attempts: u32,
}

impl std::fmt::Debug for BusDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusDispatcher")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl hes_model::CommandSink for BusDispatcher {
    fn submit<'a>(
        &'a self,
        meter: MeterId,
        kind: JobKind,
        requested_by: &'a str,
    ) -> hes_model::BoxFuture<'a, Result<JobId, String>> {
        Box::pin(async move {
            let new = NewJob {
                meter,
                kind,
                priority: Priority::OnDemand,
                requested_by: requested_by.to_string(),
                not_before: 0,
                max_attempts: self.max_attempts,
                request: None,
            };
            let created = self
                .state
                .create_jobs(std::slice::from_ref(&new))
                .await
                .map_err(|e| format!("store: {e}"))?;
            let Some((job, new)) = created.into_iter().next() else {
                return Err("no job created".into());
            };
            if new {
                if let Err(e) =
                    dispatch_jobs(&*self.bus, &self.topic, std::slice::from_ref(&job)).await
                {
                    // Not on the bus: the job must not wait for ever (the stale-job sweep
                    // would send it again, but the caller is told now).
                    let _ = self
                        .state
                        .cancel_job(job.id, crate::session::unix_now())
                        .await;
                    return Err(format!("the jobs topic: {e}"));
                }
            }
            Ok(job.id)
        })
    }
}

/// What a collector has taken from one partition and not yet committed.
#[derive(Debug, Default)]
struct Partition {
    /// Offset → the local job running it (`None` once it finished).
    open: BTreeMap<i64, Option<JobId>>,
    /// The newest finished delivery of the contiguous finished prefix, to commit.
    last: Option<Delivery>,
    done: BTreeMap<i64, Delivery>,
}

/// Whether a bus error may pass by itself (a broker restart, a rebalance, a commit refused,
/// a timeout): the collector waits and goes on. Anything else (a configuration the bus
/// refuses, an operation it does not support) ends the collector.
fn transient(e: &BusError) -> bool {
    matches!(
        e,
        BusError::Rebalanced(_) | BusError::Timeout(_) | BusError::Kafka(_) | BusError::Refused(_)
    )
}

/// How long the bus may keep failing before the collector gives up (and the process exits
/// non-zero for its supervisor to restart it).
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

/// Runs one collector: takes jobs from the group's partitions into `engine` (which must be
/// running), and commits each partition's offsets up to the first job not yet finished.
/// Transient bus errors (a broker restart, a rebalance, a refused commit) are logged and
/// retried with backoff: the consumer rejoins its group by itself, and what was not committed
/// is delivered again. Returns `Ok` when `shutdown` turns true, `Err` on an error that is not
/// transient or that lasts longer than five minutes.
pub async fn run_collector(
    consumer: Box<dyn Consumer>,
    engine: Arc<Engine>,
    max_in_flight: usize,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), BusError> {
    run_collector_reporting(consumer, engine, max_in_flight, shutdown, None).await
}

/// [`run_collector`], reporting the collector's state to `health` (role `collector`): degraded
/// with the reason while the bus fails, ok again when it answers.
pub async fn run_collector_reporting(
    mut consumer: Box<dyn Consumer>,
    engine: Arc<Engine>,
    max_in_flight: usize,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    health: Option<Arc<hes_model::health::Health>>,
) -> Result<(), BusError> {
    use hes_model::health::RoleState;
    let report = |s: RoleState| {
        if let Some(h) = &health {
            h.set("collector", s);
        }
    };
    report(RoleState::Ok("taking jobs".into()));
    crate::metrics::describe();
    let mut parts: HashMap<(String, i32), Partition> = HashMap::new();
    let mut in_flight = 0usize;
    let mut held: Option<Delivery> = None;
    let mut failing_since: Option<tokio::time::Instant> = None;
    let mut failures = 0u32;
    loop {
        match step(
            &mut *consumer,
            &engine,
            max_in_flight,
            &mut parts,
            &mut in_flight,
            &mut held,
            &mut shutdown,
        )
        .await
        {
            Ok(true) => return Ok(()),
            Ok(false) => {
                if failing_since.take().is_some() {
                    tracing::info!("the jobs topic answers again");
                    report(RoleState::Ok("taking jobs".into()));
                }
                failures = 0;
            }
            Err(e) if transient(&e) => {
                let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > GIVE_UP_AFTER {
                    report(RoleState::Stopped(format!("bus: {e}")));
                    return Err(e);
                }
                report(RoleState::Degraded(format!("retrying: {e}")));
                failures = failures.saturating_add(1);
                let wait = hes_model::backoff::Backoff::new(
                    Duration::from_millis(200),
                    Duration::from_secs(10),
                )
                .delay(failures);
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "collector: bus error, retrying");
                ::metrics::counter!("hes_collector_bus_errors_total").increment(1);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// One turn of the collector: take a job if there is room, commit what finished. `Ok(true)`
/// on shutdown. `held` is a delivery the job store refused: it is taken again before any
/// other (the consumer has moved past it, and a later commit of its partition would skip it).
async fn step(
    consumer: &mut dyn Consumer,
    engine: &Arc<Engine>,
    max_in_flight: usize,
    parts: &mut HashMap<(String, i32), Partition>,
    in_flight: &mut usize,
    held: &mut Option<Delivery>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<bool, BusError> {
    {
        if *shutdown.borrow() {
            return Ok(true);
        }
        // Take a job when there is room.
        if *in_flight < max_in_flight.max(1) {
            let next = match held.take() {
                Some(d) => Some(d),
                None => tokio::select! {
                    d = consumer.next(Duration::from_millis(50)) => d?,
                    _ = shutdown.changed() => return Ok(true),
                },
            };
            if let Some(d) = next {
                let p = parts.entry((d.topic.clone(), d.partition)).or_default();
                match hes_proto::decode_job_request(&d.payload) {
                    Ok(req) => match engine.submit_request(&req).await {
                        Ok(id) => {
                            p.open.insert(d.offset, Some(id));
                            p.done.insert(d.offset, d);
                            *in_flight += 1;
                            requests("accepted");
                        }
                        // The store is away: kept, and submitted again after a backoff.
                        Err(e) => {
                            requests("store_refused");
                            *held = Some(d);
                            return Err(BusError::Refused(format!("the job store: {e}")));
                        }
                    },
                    Err(e) => {
                        // Not a job: nothing to run; skip it (and say so) rather than stall.
                        tracing::warn!(offset = d.offset, error = %e, "not a job request");
                        requests("not_a_job");
                        p.open.insert(d.offset, None);
                        p.done.insert(d.offset, d);
                    }
                }
            }
        } else {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = shutdown.changed() => return Ok(true),
            }
        }
        // Commit each partition's contiguous finished prefix.
        for p in parts.values_mut() {
            let mut commit = None;
            while let Some((&offset, &job)) = p.open.iter().next() {
                let finished = match job {
                    None => true,
                    Some(id) => engine.job(id).is_none_or(|j| j.state.is_final()),
                };
                if !finished {
                    break;
                }
                p.open.remove(&offset);
                if job.is_some() {
                    *in_flight = in_flight.saturating_sub(1);
                }
                if let Some(d) = p.done.remove(&offset) {
                    commit = Some(d);
                }
            }
            if let Some(d) = commit {
                consumer.commit(&d).await?;
                p.last = Some(d);
            }
        }
    }
    // Jobs in flight as f64: exact.
    #[allow(clippy::cast_precision_loss)]
    ::metrics::gauge!(crate::metrics::JOBS_IN_FLIGHT).set(*in_flight as f64);
    Ok(false)
}

fn requests(outcome: &'static str) {
    ::metrics::counter!(crate::metrics::JOB_REQUESTS, "outcome" => outcome).increment(1);
}
