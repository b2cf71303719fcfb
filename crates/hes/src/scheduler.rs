//! The scheduler role, the same in `hes demo` and `hes serve`: every node with the role tries
//! to hold the scheduler lease in the store; the holder runs the API's schedules (each slot
//! fired once, fenced by the lease's token) and sweeps jobs whose bus record or collector was
//! lost; another node takes over within seconds of the holder's death.

use std::sync::Arc;
use std::time::Duration;

use hes_collector::schedule::{Fence, Sink};
use hes_store::Registry;

pub const SCHEDULER_LEASE: &str = "scheduler";
const LEASE_TTL_MS: i64 = 10_000;
const LEASE_RENEW: Duration = Duration::from_secs(2);
/// Open jobs untouched for this long are dispatched again (their record or collector was
/// lost); running ones are then taken over by whichever collector claims them.
const STALE_AFTER_S: i64 = 300;
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Finished jobs are kept this long.
const KEEP_JOBS_S: i64 = 30 * 86_400;

/// Runs until `stop`; `node` names this node in the lease.
pub async fn lead(
    accounts_at: String,
    sink: Sink,
    registry: Arc<Registry>,
    node: String,
    health: Option<Arc<hes_model::health::Health>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), hes_pipeline::run::StageError> {
    use hes_model::health::RoleState;
    let report = |s: RoleState| {
        if let Some(h) = &health {
            h.set("scheduler", s);
        }
    };
    let state = registry.state().clone();
    // The running schedules: their stop switch, the lease token they run under, their task.
    let mut leading: Option<(
        tokio::sync::watch::Sender<bool>,
        i64,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    )> = None;
    let mut renewed = std::time::Instant::now();
    let mut swept = std::time::Instant::now();
    loop {
        match state
            .acquire_lease(SCHEDULER_LEASE, &node, LEASE_TTL_MS)
            .await
        {
            Ok(Some(token)) => {
                renewed = std::time::Instant::now();
                report(RoleState::Ok(format!("leading (token {token})")));
                // Schedules that ended while this node leads (their store unreadable): said
                // loudly and started again below, never left stopped.
                if leading
                    .as_ref()
                    .is_some_and(|(_, _, task)| task.is_finished())
                {
                    if let Some((_, _, task)) = leading.take() {
                        let why = match task.await {
                            Ok(Ok(())) => "ended".to_string(),
                            Ok(Err(e)) => format!("{e:#}"),
                            Err(e) => e.to_string(),
                        };
                        tracing::error!(error = %why, "the schedules stopped while leading; starting them again");
                        report(RoleState::Degraded(format!("schedules restarted: {why}")));
                    }
                }
                if leading.as_ref().map(|(_, t, _)| *t) != Some(token) {
                    if let Some((old, _, _)) = leading.take() {
                        let _ = old.send(true);
                    }
                    let (tx, rx) = tokio::sync::watch::channel(false);
                    println!("SCHEDULER leading (token {token})");
                    let fence = Fence {
                        lease: SCHEDULER_LEASE.to_string(),
                        token,
                    };
                    // Pushes that never came are read by pull, by the leader only.
                    tokio::spawn(hes_collector::gaps::fill_push_gaps(
                        registry.clone(),
                        sink.clone(),
                        hes_collector::gaps::GapConfig::default(),
                        rx.clone(),
                    ));
                    let task = tokio::spawn(crate::http::run_api_schedules(
                        accounts_at.clone(),
                        sink.clone(),
                        registry.clone(),
                        fence,
                        rx,
                    ));
                    leading = Some((tx, token, task));
                }
                if swept.elapsed() >= SWEEP_EVERY {
                    swept = std::time::Instant::now();
                    sweep(&registry, &sink).await;
                }
            }
            Ok(None) => {
                report(RoleState::Ok("standing by (another node leads)".into()));
                if let Some((tx, _, _)) = leading.take() {
                    println!("SCHEDULER another node leads: stopped");
                    let _ = tx.send(true);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "renewing the scheduler lease");
                report(RoleState::Degraded(format!("the lease: {e}")));
                // Not renewed in time: another node may take over; stop before it can.
                if renewed.elapsed() > Duration::from_millis(LEASE_TTL_MS as u64 / 2) {
                    if let Some((tx, _, _)) = leading.take() {
                        println!("SCHEDULER lease not renewed: stopped");
                        let _ = tx.send(true);
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(LEASE_RENEW) => {}
            _ = stop.changed() => {
                if let Some((tx, _, _)) = leading.take() {
                    let _ = tx.send(true);
                    let _ = state.release_lease(SCHEDULER_LEASE, &node).await;
                }
                return Ok(());
            }
        }
    }
}

/// Dispatches stale open jobs again and forgets old finished ones.
async fn sweep(registry: &Registry, sink: &Sink) {
    let now = hes_collector::session::unix_now();
    let state = registry.state();
    match state.stale_jobs(now - STALE_AFTER_S, 10_000).await {
        Ok(jobs) if !jobs.is_empty() => {
            tracing::warn!(jobs = jobs.len(), "dispatching stale jobs again");
            if let Err(e) = sink.deliver(jobs).await {
                tracing::warn!(error = %e, "dispatching stale jobs");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "looking for stale jobs"),
    }
    if let Err(e) = state.prune_jobs(now - KEEP_JOBS_S).await {
        tracing::warn!(error = %e, "pruning old jobs");
    }
}
