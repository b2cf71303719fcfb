//! The distributed mode: jobs travel on the bus topic `hes.jobs`, keyed (so partitioned) by
//! meter id; collectors form one consumer group on it. A meter's jobs all go to one collector at
//! a time, so no meter is read twice at once and every meter is read; a collector commits a
//! job's offset only once the job has finished and its output is on the bus, so a collector
//! killed mid-job leaves the job to the collector that inherits its partition.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hes_bus::{Bus, BusError, Consumer, Delivery, Record};
use hes_model::JobId;
pub use hes_model::JobRequest;

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

/// What a collector has taken from one partition and not yet committed.
#[derive(Debug, Default)]
struct Partition {
    /// Offset → the local job running it (`None` once it finished).
    open: BTreeMap<i64, Option<JobId>>,
    /// The newest finished delivery of the contiguous finished prefix, to commit.
    last: Option<Delivery>,
    done: BTreeMap<i64, Delivery>,
}

/// Runs one collector: takes jobs from the group's partitions into `engine` (which must be
/// running), and commits each partition's offsets up to the first job not yet finished.
/// Returns when `shutdown` turns true; what it has not committed is delivered again to the
/// group.
pub async fn run_collector(
    mut consumer: Box<dyn Consumer>,
    engine: Arc<Engine>,
    max_in_flight: usize,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), BusError> {
    let mut parts: HashMap<(String, i32), Partition> = HashMap::new();
    let mut in_flight = 0usize;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        // Take a job when there is room.
        if in_flight < max_in_flight.max(1) {
            let next = tokio::select! {
                d = consumer.next(Duration::from_millis(50)) => d?,
                _ = shutdown.changed() => return Ok(()),
            };
            if let Some(d) = next {
                let p = parts.entry((d.topic.clone(), d.partition)).or_default();
                match hes_proto::decode_job_request(&d.payload) {
                    Ok(req) => {
                        let id = engine.submit_request(&req);
                        p.open.insert(d.offset, Some(id));
                        p.done.insert(d.offset, d);
                        in_flight += 1;
                    }
                    Err(e) => {
                        // Not a job: nothing to run; skip it (and say so) rather than stall.
                        tracing::warn!(offset = d.offset, error = %e, "not a job request");
                        p.open.insert(d.offset, None);
                        p.done.insert(d.offset, d);
                    }
                }
            }
        } else {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = shutdown.changed() => return Ok(()),
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
                    in_flight = in_flight.saturating_sub(1);
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
}
