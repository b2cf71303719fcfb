//! Pushes that never arrive. A meter pushes each interval's registers at the boundary (and
//! retries as its push setup says), but a push can still be lost on the way. The push
//! listeners note each meter's newest pushed interval in the state store
//! (`StateStore::note_pushed_interval`); the leading scheduler looks for the meters that pushed
//! lately but not the fleet's newest interval, once that interval is old enough for every
//! retry to have come, and reads their load profile from their last pushed interval by pull.
//!
//! The fleet's boundary is taken from the data (the newest interval any meter pushed, never one
//! ahead of this node's clock), not from the clock alone: a fleet whose meter time runs behind
//! (a catching-up simulator) or a meter whose clock is ahead does not make every other meter
//! look late. A fleet that goes silent as a whole is not a gap of one meter: the push-rate
//! alert (deploy/prometheus/) is for that.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hes_model::{JobKind, MeterId, Priority};
use hes_store::NewJob;

use crate::registry::Registry;
use crate::schedule::Sink;
use crate::session::unix_now;

/// A pushed interval whose time is further ahead of this node's clock is not the meter's
/// progress (its clock is wrong): it is not noted.
pub const FUTURE_TOLERANCE_S: i64 = 300;

/// Who the pull reads are requested by (the jobs list and the audit show it).
pub const REQUESTED_BY: &str = "push-gap";

#[derive(Debug, Clone)]
pub struct GapConfig {
    /// How long after an interval was first seen pushed the others' pushes of it may still
    /// come (their retries) before they are read by pull.
    pub grace: Duration,
    /// A meter whose newest push is older than this is not a pushing meter any more (a meter
    /// that stopped pushing altogether is read by its schedule).
    pub lookback_s: i64,
    /// How often to look.
    pub every: Duration,
    /// Pull reads queued per look, at most (the rest at the next look).
    pub max_per_round: usize,
    /// Attempts per pull read.
    pub max_attempts: u32,
}

impl Default for GapConfig {
    fn default() -> Self {
        Self {
            // Three attempts a few seconds apart, and a loaded listener.
            grace: Duration::from_secs(120),
            lookback_s: 86_400,
            every: Duration::from_secs(30),
            max_per_round: 10_000,
            max_attempts: 4,
        }
    }
}

/// Boundaries seen lately and when each was first seen (bounded).
#[derive(Debug, Default)]
pub struct Seen(BTreeMap<i64, Instant>);

impl Seen {
    /// Notes `newest`; returns the newest boundary first seen at least `grace` ago.
    fn aged(&mut self, newest: i64, grace: Duration) -> Option<i64> {
        self.0.entry(newest).or_insert_with(Instant::now);
        let aged = self
            .0
            .iter()
            .rev()
            .find(|(_, t)| t.elapsed() >= grace)
            .map(|(&b, _)| b);
        // Older boundaries than the aged one are of no more use; keep a bounded few.
        if let Some(b) = aged {
            self.0.retain(|&t, _| t >= b);
        }
        while self.0.len() > 64 {
            self.0.pop_first();
        }
        aged
    }
}

/// Why a look failed.
#[derive(Debug, thiserror::Error)]
pub enum GapError {
    #[error("the store: {0}")]
    Store(#[from] hes_store::StoreError),
    #[error("the jobs topic: {0}")]
    Bus(#[from] hes_bus::BusError),
}

/// One look: queues a pull read for each meter that missed the newest aged boundary, and
/// notes the boundary as covered for it. Returns the meters read.
pub async fn fill_once(
    registry: &Registry,
    sink: &Sink,
    cfg: &GapConfig,
    seen: &mut Seen,
) -> Result<Vec<MeterId>, GapError> {
    let state = registry.state();
    let Some(newest) = state.newest_pushed_interval(unix_now()).await? else {
        return Ok(Vec::new());
    };
    let Some(boundary) = seen.aged(newest, cfg.grace) else {
        return Ok(Vec::new());
    };
    let gaps = state
        .push_gaps(
            boundary,
            boundary.saturating_sub(cfg.lookback_s),
            cfg.max_per_round,
        )
        .await?;
    if gaps.is_empty() {
        return Ok(Vec::new());
    }
    let jobs: Vec<NewJob> = gaps
        .iter()
        .map(|(meter, last)| NewJob {
            meter: meter.clone(),
            kind: JobKind::ReadLoadProfile { from: Some(*last) },
            priority: Priority::Scheduled,
            requested_by: REQUESTED_BY.into(),
            not_before: 0,
            max_attempts: cfg.max_attempts,
            request: Some(format!("{REQUESTED_BY}@{boundary}/{}", meter.0)),
        })
        .collect();
    let created = state.create_jobs(&jobs).await?;
    let new: Vec<hes_model::Job> = created
        .into_iter()
        .filter_map(|(j, new)| new.then_some(j))
        .collect();
    sink.deliver(new).await?;
    // Covered: the pull reads it (a pull that fails ends as a failed job, with its reason).
    for (meter, _) in &gaps {
        state.note_pushed_interval(meter, boundary).await?;
    }
    ::metrics::counter!(crate::metrics::PUSH_GAPS).increment(gaps.len() as u64);
    let meters: Vec<MeterId> = gaps.into_iter().map(|(m, _)| m).collect();
    tracing::info!(
        boundary,
        meters = meters.len(),
        "pushes missing: read by pull"
    );
    Ok(meters)
}

/// Looks for missing pushes every `cfg.every` until `shutdown` (run by the node that leads
/// the schedules, or by the one process of the embedded mode).
pub async fn fill_push_gaps(
    registry: Arc<Registry>,
    sink: Sink,
    cfg: GapConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut seen = Seen::default();
    loop {
        if let Err(e) = fill_once(&registry, &sink, &cfg, &mut seen).await {
            tracing::warn!(error = %e, "looking for missing pushes");
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.every) => {}
            _ = shutdown.changed() => return,
        }
    }
}
