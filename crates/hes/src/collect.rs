//! `hes collect`: one collection cycle over the meters of an inventory, with the job engine
//! (retries, limits) and HLS-GMAC sessions, printing a JSON summary. Readings go to a JSON-lines
//! file (`--out`) or are only counted (`--discard`, for benchmarks). The scheduled, persistent
//! collection runs in `hes serve`/`hes demo`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use clap::{Args, ValueEnum};
use dlms::SystemTitle;
use hes_collector::bus::{Bus, CountingBus, MemoryBus};
use hes_collector::counters::Counters;
use hes_collector::jobs::{Audit, Engine, EngineConfig};
use hes_collector::session::Env;
use hes_model::{topics, JobKind, JobResult, JobState, MeterId, Priority};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    LoadProfile,
    Instant,
    Daily,
    Billing,
    Events,
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The meters (JSON, or CSV for `.csv`), as `hes sim --inventory` writes them.
    #[arg(long)]
    pub inventory: PathBuf,
    #[arg(long, value_enum, default_value_t = Kind::LoadProfile)]
    pub kind: Kind,
    /// Read profiles from this meter time (Unix seconds); default: the whole buffer.
    #[arg(long)]
    pub from: Option<i64>,
    /// Sessions at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Sessions at once per cell (the inventory has no cells: unlimited).
    #[arg(long, default_value_t = 8)]
    pub per_cell: usize,
    /// Attempts per meter.
    #[arg(long, default_value_t = 3)]
    pub attempts: u32,
    /// Keep the registry and the invocation counters in this SQLite file, so that counters
    /// survive across runs (default: in memory, resynchronised from each meter).
    #[arg(long)]
    pub counters: Option<PathBuf>,
    /// Write every reading and event as a JSON line here.
    #[arg(long, conflicts_with = "discard")]
    pub out: Option<PathBuf>,
    /// Count readings without keeping them (benchmarks).
    #[arg(long)]
    pub discard: bool,
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Worker threads of the runtime (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub async fn run(args: CollectArgs) -> u8 {
    match collect(args).await {
        Ok(true) => 0,
        Ok(false) => 2,
        Err(e) => {
            eprintln!("hes collect: {e:#}");
            1
        }
    }
}

async fn collect(args: CollectArgs) -> anyhow::Result<bool> {
    let (registry, entries) =
        crate::meters::registry_from(&args.inventory, args.counters.as_deref()).await?;
    let counters = Arc::new(Counters::new(registry.state().clone()));
    let timeout = Duration::from_secs_f64(args.timeout.max(0.1));
    let env = Arc::new(Env {
        registry: registry.clone(),
        counters,
        client_title: SystemTitle(*b"HES\0\0\0\0\x01"),
        connect_timeout: timeout,
        response_timeout: timeout,
    });
    let counting = Arc::new(CountingBus::default());
    let memory = Arc::new(MemoryBus::new());
    let bus: Arc<dyn Bus> = if args.discard {
        counting.clone()
    } else {
        memory.clone()
    };
    let engine = Engine::new(
        env,
        bus,
        EngineConfig {
            concurrency: args.concurrency.max(1),
            per_group: args.per_cell.max(1),
            max_attempts: args.attempts.max(1),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
            job_timeout: timeout * 30,
            keep_finished: entries.len() + 16,
            ..EngineConfig::default()
        },
        Audit::in_memory(),
    );
    let kind = match args.kind {
        Kind::LoadProfile => JobKind::ReadLoadProfile { from: args.from },
        Kind::Instant => JobKind::ReadInstant,
        Kind::Daily => JobKind::ReadDaily { from: args.from },
        Kind::Billing => JobKind::ReadBilling { from: args.from },
        Kind::Events => JobKind::ReadEvents { from: args.from },
    };
    let started = Instant::now();
    let new: Vec<hes_store::NewJob> = entries
        .iter()
        .map(|e| hes_store::NewJob {
            meter: MeterId(e.id.clone()),
            kind: kind.clone(),
            priority: Priority::OnDemand,
            requested_by: "hes collect".into(),
            not_before: 0,
            max_attempts: 4,
            request: None,
        })
        .collect();
    // One transaction for the whole cycle's rows, then the local queue.
    let created = registry.state().create_jobs(&new).await?;
    let ids: Vec<hes_model::JobId> = created.iter().map(|(j, _)| j.id).collect();
    engine.enqueue_created(created.into_iter().map(|(j, _)| j).collect());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(engine.clone().run(rx));
    let finished = engine.wait_idle(Duration::from_secs(86_400)).await;
    let secs = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = runner.await;
    if !finished {
        return Err(anyhow!("jobs did not finish"));
    }
    let mut failed = Vec::new();
    for id in &ids {
        if let Some(j) = engine.job(*id) {
            if j.state != JobState::Succeeded {
                failed.push(serde_json::json!({
                    "meter": j.meter, "attempts": j.attempts, "error": j.last_error,
                }));
            }
        }
    }
    let s = &engine.stats;
    let n = entries.len();
    let ok = n - failed.len();
    let mut summary = serde_json::json!({
        "meters": n,
        "succeeded": ok,
        "failed": failed.len(),
        "retries": s.retried.load(Ordering::Relaxed),
        "readings": s.readings.load(Ordering::Relaxed),
        "events": s.events.load(Ordering::Relaxed),
        "seconds": (secs * 1000.0).round() / 1000.0,
        "meters_per_second": ((ok as f64 / secs) * 10.0).round() / 10.0,
        "hours_for_a_million_meters": ((1e6 / (ok as f64 / secs) / 3600.0) * 100.0).round() / 100.0,
        "failures": failed.iter().take(20).collect::<Vec<_>>(),
    });
    if args.discard {
        if let Some(o) = summary.as_object_mut() {
            o.insert(
                "bus_records".into(),
                counting.records.load(Ordering::Relaxed).into(),
            );
            o.insert(
                "bus_bytes".into(),
                counting.bytes.load(Ordering::Relaxed).into(),
            );
        }
    }
    if let Some(path) = &args.out {
        let mut out = String::new();
        for topic in [topics::READINGS_RAW, topics::EVENTS] {
            for r in memory.read(topic, 0).0 {
                out.push_str(&hes_collector::bus::json_lines(topic, &r.payload));
            }
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    } else if !args.discard {
        let results: Vec<JobResult> = memory.decode_all(topics::JOB_RESULTS);
        if let Some(o) = summary.as_object_mut() {
            o.insert("jobs".into(), results.len().into());
        }
    }
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(failed.is_empty())
}
