//! `hes collector`: a collector of the distributed mode. It joins the consumer group of the jobs
//! topic (`hes.jobs`, partitioned by meter), runs the jobs it is given against the meters, puts
//! readings, events and results on the bus, and commits a job only once it has finished. Start
//! as many as needed; a collector that dies leaves its uncommitted jobs to the others.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use dlms::SystemTitle;
use hes_bus::kafka::KafkaBus;
use hes_bus::Bus;
use hes_collector::counters::Counters;

use hes_collector::jobs::{Audit, Engine, EngineConfig};
use hes_collector::session::Env;
use hes_model::topics;

#[derive(Debug, Args)]
pub struct CollectorArgs {
    /// The registry's database (`postgres://…` or an SQLite path): meters, keys and
    /// invocation counters shared with every other node. Without it, `--inventory` is read
    /// into a registry of this process alone.
    #[arg(long, env = "HES_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Meters (JSON, or CSV for `.csv`): with `--database-url`, the ones the registry does not
    /// have yet are imported at start (a first import; `hes meters import` is the usual way).
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// Kafka bootstrap servers.
    #[arg(long, env = "HES_KAFKA_BROKERS")]
    pub brokers: String,
    /// The jobs topic.
    #[arg(long, default_value = hes_model::topics::JOBS)]
    pub jobs_topic: String,
    /// The consumer group of the collectors.
    #[arg(long, default_value = "hes-collectors")]
    pub group: String,
    /// A prefix of every Kafka topic (as `[kafka] namespace` in `hes serve`).
    #[arg(long, default_value = "")]
    pub namespace: String,
    /// Partitions of the jobs topic when it is created.
    #[arg(long, default_value_t = 12)]
    pub partitions: i32,
    /// Sessions at once in this collector.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Redis for the limits shared by every collector (global and per cell); without it each
    /// collector only keeps its own limits.
    #[arg(long, env = "HES_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Redis through Sentinel instead of --redis-url: the sentinels, `host:port,…`.
    #[arg(long, env = "HES_REDIS_SENTINELS")]
    pub redis_sentinels: Option<String>,
    /// The name the sentinels monitor the master under (with --redis-sentinels).
    #[arg(long, env = "HES_REDIS_MASTER_NAME")]
    pub redis_master_name: Option<String>,
    /// Sessions at once across all collectors (with --redis-url).
    #[arg(long, default_value_t = 512)]
    pub global_limit: usize,
    /// Sessions at once per cell across all collectors (with --redis-url).
    #[arg(long, default_value_t = 8)]
    pub per_cell_limit: usize,
    /// Without `--database-url`: keep the registry and invocation counters in this SQLite file
    /// (default: in memory, resynchronised from each meter).
    #[arg(long)]
    pub counters: Option<PathBuf>,
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Serve Prometheus metrics on this address (`GET /metrics`), e.g. `127.0.0.1:9464`.
    #[arg(long, env = "HES_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Replication factor of the topics this collector creates.
    #[arg(long, env = "HES_KAFKA_REPLICATION", default_value_t = 1)]
    pub replication: i32,
    /// Every collector setting from a node configuration (`hes serve`): overrides the flags.
    #[arg(skip)]
    pub tuning: Option<hes_node::config::Collector>,
    /// Where the role reports its state (`hes serve`'s `/readyz`).
    #[arg(skip)]
    pub health: Option<Arc<hes_model::health::Health>>,
}

pub async fn run(args: CollectorArgs) -> u8 {
    match collector(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hes collector: {e:#}");
            1
        }
    }
}

async fn collector(args: CollectorArgs) -> anyhow::Result<()> {
    let (stop, rx) = tokio::sync::watch::channel(false);
    hes_collector::metrics::describe();
    if let Some(addr) = args.metrics_addr {
        let local = hes_metrics::serve(addr, rx.clone())
            .await
            .with_context(|| format!("binding the metrics endpoint on {addr}"))?;
        println!("METRICS http://{local}/metrics");
    }
    let registry = match (&args.database_url, &args.inventory) {
        (Some(url), inventory) => {
            let state = crate::meters::open_state(url).await?;
            let registry = hes_store::Registry::open(state, crate::meters::kek_from_env()?).await?;
            if let Some(p) = inventory {
                let n = crate::meters::import_new(&registry, &crate::meters::read_inventory(p)?)
                    .await?;
                if n > 0 {
                    println!("imported {n} new meters from {}", p.display());
                }
            }
            registry.spawn_refresh(Duration::from_secs(5), rx.clone());
            registry
        }
        (None, Some(p)) => {
            crate::meters::registry_from(p, args.counters.as_deref())
                .await?
                .0
        }
        (None, None) => {
            anyhow::bail!("no meters: give --database-url (or HES_DATABASE_URL) or --inventory")
        }
    };
    // The node's collector settings (hes serve), else the flags over the defaults.
    let t = args.tuning.clone().unwrap_or_else(|| {
        let d = hes_node::Config::default().collector;
        hes_node::config::Collector {
            concurrency: args.concurrency,
            max_in_flight: args.concurrency.saturating_mul(4),
            global_limit: args.global_limit,
            per_cell_limit: args.per_cell_limit,
            connect_timeout_s: args.timeout,
            response_timeout_s: args.timeout,
            job_timeout_s: args.timeout * 30.0,
            ..d
        }
    });
    let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.1, 86_400.0));
    let counters = Arc::new(Counters::with_block(
        registry.state().clone(),
        t.counter_block,
    ));
    let env = Arc::new(Env {
        registry,
        counters,
        client_title: SystemTitle(*b"HES\0\0\0\0\x02"),
        connect_timeout: secs(t.connect_timeout_s),
        response_timeout: secs(t.response_timeout_s),
    });
    let bus = Arc::new(
        KafkaBus::connect(&args.brokers)?
            .with_namespace(&args.namespace)
            .with_partitions(args.partitions.max(1))
            .with_replication(args.replication.max(1)),
    );
    bus.ensure_topics(
        &[
            args.jobs_topic.as_str(),
            topics::READINGS_RAW,
            topics::EVENTS,
            topics::JOB_RESULTS,
        ],
        args.partitions,
    )
    .await?;
    let engine = Engine::new(
        env,
        bus.clone(),
        EngineConfig {
            concurrency: t.concurrency.max(1),
            group_key: t.group_key.clone(),
            per_group: t.per_cell_limit.max(1),
            max_attempts: t.max_attempts.max(1),
            backoff_base: Duration::from_millis(t.backoff_base_ms),
            backoff_max: Duration::from_secs(t.backoff_max_s),
            job_timeout: secs(t.job_timeout_s),
            ..EngineConfig::default()
        },
        Audit::in_memory(),
    );
    let redis = hes_cache::RedisTarget::from_parts(
        args.redis_url.as_deref().unwrap_or_default(),
        args.redis_sentinels.as_deref().unwrap_or_default(),
        args.redis_master_name.as_deref().unwrap_or_default(),
    )?;
    if let Some(target) = redis {
        // Limits every collector shares (global and per cell); a place a dead collector held
        // runs out after a job's time.
        let limits = hes_collector::limits::SharedLimits::connect_to(
            &target,
            &format!("hes:{}", args.namespace),
            t.global_limit.max(1),
            t.per_cell_limit.max(1),
            secs(t.job_timeout_s) + Duration::from_secs(60),
        )
        .await
        .context("the shared limits in Redis")?;
        engine.set_shared_limits(limits);
    }
    let consumer = bus
        .subscribe(&[args.jobs_topic.as_str()], &args.group)
        .await?;
    let runner = tokio::spawn(engine.clone().run(rx.clone()));
    println!(
        "COLLECTING group={} concurrency={}",
        args.group, t.concurrency
    );
    let mut collecting = tokio::spawn(hes_collector::distributed::run_collector_reporting(
        consumer,
        engine,
        t.max_in_flight,
        rx,
        args.health.clone(),
    ));
    // The collector never ends unseen: an error it could not survive stops the process
    // (non-zero) so that a supervisor restarts it.
    let ended = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        r = &mut collecting => Some(r),
    };
    let _ = stop.send(true);
    let _ = runner.await;
    match ended {
        Some(r) => {
            r??;
            anyhow::bail!("the collector stopped")
        }
        None => collecting.await??,
    }
    Ok(())
}
