//! `hes serve --config FILE`: the distributed roles in one process, each scaled out by
//! running more processes with the same config (the stages are Kafka consumer groups, the
//! collectors share the jobs topic's partitions). Example: `deploy/hes.toml`.
//!
//! The configuration is `hes_node::Config` (layered: defaults, the file, the environment);
//! `hes config default` prints every key, annotated.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hes_bus::kafka::KafkaBus;
use hes_model::health::RoleState;
use hes_node::{Config, Role};
use hes_pipeline::run::{
    run_process, run_validate, NoGroups, ProcessDeps, StageConfig, StageStats,
};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TOML configuration (see `deploy/hes.toml`).
    #[arg(long)]
    pub config: PathBuf,
    /// Serve Prometheus metrics on this address (`GET /metrics`), for a node without the api
    /// role (the API serves them at its own `/metrics` too).
    #[arg(long, env = "HES_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// How often the store's job counts are sampled into the metrics.
const JOB_COUNTS_EVERY: Duration = Duration::from_secs(15);

/// Samples the store's job counts (open ones, and those finished in the last hour) into
/// `hes_jobs{state}` until `stop`: the queue's depth seen by every node alike, whichever
/// collector runs the jobs.
async fn sample_job_counts(
    store: Arc<dyn hes_store::StateStore>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    ::metrics::describe_gauge!(
        "hes_jobs",
        "Jobs in the store by state: queued (or retrying) and running now; succeeded and failed in the last hour."
    );
    loop {
        let since = time::OffsetDateTime::now_utc().unix_timestamp() - 3600;
        match store.job_counts(since, None).await {
            Ok(n) => {
                for (state, v) in [
                    ("queued", n.queued),
                    ("running", n.running),
                    ("succeeded", n.succeeded),
                    ("failed", n.failed),
                ] {
                    // Job counts: exact in an f64.
                    #[allow(clippy::cast_precision_loss)]
                    ::metrics::gauge!("hes_jobs", "state" => state).set(v as f64);
                }
                ::metrics::gauge!("hes_jobs_sampled_timestamp_seconds")
                    .set(time::OffsetDateTime::now_utc().unix_timestamp() as f64);
            }
            Err(e) => {
                ::metrics::counter!("hes_store_errors_total", "op" => "job_counts").increment(1);
                tracing::warn!(error = %e, "sampling the job counts");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(JOB_COUNTS_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A setting that must be there (from the file or the environment).
fn required(v: &str, what: &str, env: &str) -> anyhow::Result<String> {
    if v.trim().is_empty() {
        anyhow::bail!("no {what}: set it in the config or {env}");
    }
    Ok(v.to_string())
}

/// Applies the retention now and every hour until `stop`.
async fn apply_retention(
    store: Arc<dyn hes_store::Store>,
    retention: hes_store::Retention,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match store.apply_retention(&retention, now).await {
            Ok(p) if !p.partitions.is_empty() || p.rows > 0 => println!(
                "retention: dropped {:?}, deleted {} rows",
                p.partitions, p.rows
            ),
            Ok(_) => {}
            Err(e) => eprintln!("retention: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.changed() => return,
        }
    }
}

pub async fn run(args: ServeArgs) -> u8 {
    match serve(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hes serve: {e:#}");
            1
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg =
        Config::load(Some(&args.config)).with_context(|| format!("{}", args.config.display()))?;
    let brokers = required(&cfg.kafka.brokers, "Kafka brokers", "HES_KAFKA_BROKERS")?;
    let partitions = cfg.kafka.partitions;
    let bus: Arc<dyn hes_bus::Bus> = Arc::new(
        KafkaBus::connect(&brokers)?
            .with_namespace(&cfg.kafka.namespace)
            .with_partitions(cfg.kafka.partitions)
            .with_replication(cfg.kafka.replication),
    );
    let stage = |name: &str| {
        let mut s = StageConfig::new(name);
        s.max_batch = cfg.stages.max_batch.max(1);
        s.linger = Duration::from_millis(cfg.stages.linger_ms.max(1));
        s.partitions = partitions;
        s
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    hes_collector::metrics::describe();
    if let Some(addr) = args.metrics_addr {
        let local = hes_metrics::serve(addr, rx.clone())
            .await
            .with_context(|| format!("binding the metrics endpoint on {addr}"))?;
        println!("METRICS http://{local}/metrics");
    }
    // What each role is doing, for /readyz.
    let health = Arc::new(hes_model::health::Health::default());
    let mut tasks = Vec::new();
    let validate = Arc::new(StageStats::default());
    let process = Arc::new(StageStats::default());
    if cfg.roles.contains(&Role::Validate) {
        health.set("validate", RoleState::Ok("consuming".into()));
        tasks.push(tokio::spawn(run_validate(
            bus.clone(),
            hes_pipeline::Rules::default(),
            stage("validate"),
            validate.clone(),
            rx.clone(),
        )));
    }
    // The store, the registry (in the store, keys sealed under HES_KEK) and the cache, opened
    // once for the roles that use them.
    let wants_store = cfg.roles.iter().any(|r| *r != Role::Validate);
    let (store, registry, outbox) = if wants_store {
        let url = required(&cfg.database_url, "database URL", "HES_DATABASE_URL")?;
        let kek = crate::meters::kek_from_env()?;
        let (store, state, outbox) = crate::meters::open_all(&url).await?;
        let registry = hes_store::Registry::open(state, kek).await?;
        if let Some(p) = Some(&cfg.inventory).filter(|p| !p.as_os_str().is_empty()) {
            let n =
                crate::meters::import_new(&registry, &crate::meters::read_inventory(p)?).await?;
            println!(
                "inventory {}: {n} new meters imported ({} in the registry)",
                p.display(),
                registry.len()
            );
        }
        registry.spawn_refresh(Duration::from_secs(5), rx.clone());
        tokio::spawn(sample_job_counts(registry.state().clone(), rx.clone()));
        (Some(store), Some(registry), Some(outbox))
    } else {
        (None, None, None)
    };
    // Unique per process: two nodes never share a lease holder name (the scheduler's lease,
    // the claims on CIM messages).
    let node = format!(
        "{}-{}",
        Some(cfg.api.node.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "node".into()),
        std::process::id()
    );
    let redis = hes_cache::RedisTarget::from_parts(
        &cfg.redis_url,
        &cfg.redis_sentinels,
        &cfg.redis_master_name,
    )?;
    let cache: Option<Arc<dyn hes_cache::Cache>> = match (wants_store, redis) {
        (true, Some(target)) => Some(Arc::new(
            hes_cache::RedisCache::connect_to(&target, &format!("hes:{}", cfg.kafka.namespace))
                .await?,
        )),
        _ => None,
    };
    if let (true, Some(store)) = (cfg.roles.contains(&Role::Process), store.clone()) {
        let groups: Arc<dyn hes_pipeline::run::Groups> = match &registry {
            Some(r) => Arc::new(crate::pipeline::RegistryGroups(r.clone())),
            None => Arc::new(NoGroups),
        };
        let retention = hes_store::Retention {
            readings_days: cfg.retention_days()[0],
            events_days: cfg.retention_days()[1],
            hourly_days: cfg.retention_days()[2],
        };
        if retention != hes_store::Retention::default() {
            tokio::spawn(apply_retention(store.clone(), retention, rx.clone()));
        }
        let deps = ProcessDeps {
            bus: bus.clone(),
            store,
            cache: cache.clone(),
            groups,
            rules: Arc::new(hes_pipeline::Rules::default()),
        };
        if cfg.processing.engine == hes_node::Engine::Flink {
            // The Flink job (docs/flink.md) consumes the validated readings in this role's place.
            drop(deps);
            health.set(
                "process",
                RoleState::Ok("readings processed by the Flink job".into()),
            );
        } else {
            health.set("process", RoleState::Ok("consuming".into()));
            tasks.push(tokio::spawn(run_process(
                deps,
                stage("process"),
                process.clone(),
                rx.clone(),
            )));
        }
    }
    let collector = if cfg.roles.contains(&Role::Collector) {
        let url = required(&cfg.database_url, "database URL", "HES_DATABASE_URL")?;
        Some(tokio::spawn(crate::collector::run(
            crate::collector::CollectorArgs {
                database_url: Some(url),
                inventory: None,
                brokers: brokers.clone(),
                jobs_topic: hes_model::topics::JOBS.to_string(),
                // One group per namespace: deployments (and tests) sharing a Kafka cluster
                // never rebalance each other's collectors.
                group: format!("{}hes-collectors", cfg.kafka.namespace),
                namespace: cfg.kafka.namespace.clone(),
                partitions,
                concurrency: cfg.collector.concurrency,
                redis_url: Some(cfg.redis_url.clone()).filter(|u| !u.is_empty()),
                redis_sentinels: Some(cfg.redis_sentinels.clone()).filter(|u| !u.is_empty()),
                redis_master_name: Some(cfg.redis_master_name.clone()).filter(|u| !u.is_empty()),
                global_limit: cfg.collector.global_limit,
                per_cell_limit: cfg.collector.per_cell_limit,
                counters: None,
                timeout: cfg.collector.response_timeout_s,
                replication: cfg.kafka.replication,
                metrics_addr: None,
                tuning: Some(cfg.collector.clone()),
                health: Some(health.clone()),
            },
        )))
    } else {
        None
    };
    let mut api_task = None;
    if cfg.roles.contains(&Role::Api) {
        let api = &cfg.api;
        let url = required(&cfg.database_url, "database URL", "HES_DATABASE_URL")?;
        let store = store.clone().context("the api role opens the store")?;
        let registry = registry
            .clone()
            .context("the api role opens the registry")?;
        // Without Redis, live updates reach this node's clients only.
        let cache: Arc<dyn hes_cache::Cache> = cache
            .clone()
            .unwrap_or_else(|| Arc::new(hes_cache::MemoryCache::new()));
        bus.ensure_topics(
            &[hes_model::topics::JOBS, hes_model::topics::JOB_RESULTS],
            partitions,
        )
        .await?;
        let commands = Arc::new(hes_collector::distributed::BusDispatcher {
            bus: bus.clone(),
            topic: hes_model::topics::JOBS.to_string(),
            state: registry.state().clone(),
            max_attempts: cfg.collector.max_attempts,
        });
        // Webhooks: every API node fans events out into the store's delivery queue and sends
        // what it claims from it (docs/api.md); a node that dies leaves nothing behind.
        let hooks = hes_api::webhooks::WebhookConfig {
            node: format!(
                "{}-{}",
                Some(api.node.clone())
                    .filter(|n| !n.is_empty())
                    .or_else(|| std::env::var("HOSTNAME").ok())
                    .unwrap_or_else(|| "api".into()),
                std::process::id()
            ),
            ..hes_api::webhooks::WebhookConfig::default()
        };
        tokio::spawn({
            let (bus, registry, hooks, rx) =
                (bus.clone(), registry.clone(), hooks.clone(), rx.clone());
            async move {
                if let Err(e) = hes_api::webhooks::run_fanout(bus, registry, hooks, rx).await {
                    eprintln!("hes serve: the webhook fan-out stopped: {e}");
                }
            }
        });
        tokio::spawn(hes_api::webhooks::run_deliveries(
            registry.clone(),
            hooks,
            rx.clone(),
        ));
        let (_, task) = crate::http::start(
            api.listen,
            &url,
            crate::http::Backends {
                store: store.clone(),
                cache,
                registry: registry.clone(),
                commands: commands.clone(),
                health: Some(health.clone()),
            },
            rx.clone(),
        )
        .await?;
        api_task = Some(task);
        health.set("api", RoleState::Ok(format!("listening on {}", api.listen)));
        // The CIM messages to the MDM: every api node delivers from the shared queue.
        // It ends on the same stop; a failed send is retried, never fatal to the node.
        if crate::cim::spawn(
            &cfg.cim,
            &node,
            outbox.clone().context("the api role opens the store")?,
            store,
            registry,
            rx.clone(),
        )?
        .is_some()
        {
            health.set(
                "cim",
                RoleState::Ok(format!("delivering to {}", cfg.cim.mdm_url)),
            );
        }
    }
    if cfg.roles.contains(&Role::Scheduler) {
        let url = required(&cfg.database_url, "database URL", "HES_DATABASE_URL")?;
        let registry = registry
            .clone()
            .context("the scheduler role opens the registry")?;
        bus.ensure_topics(&[hes_model::topics::JOBS], partitions)
            .await?;
        tasks.push(tokio::spawn(crate::scheduler::lead(
            url,
            hes_collector::schedule::Sink::Bus {
                bus: bus.clone(),
                topic: hes_model::topics::JOBS.to_string(),
            },
            registry,
            node.clone(),
            Some(health.clone()),
            rx.clone(),
        )));
    }
    println!("SERVING roles={:?} brokers={brokers}", cfg.roles);
    let n = StageStats::get;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        // A role never ends unseen: when one stops, the process stops (non-zero).
        if tasks.iter().any(|t| t.is_finished())
            || collector.as_ref().is_some_and(|c| c.is_finished())
            || api_task.as_ref().is_some_and(|t| t.is_finished())
        {
            eprintln!("hes serve: a role stopped; stopping the node");
            break;
        }
        println!(
            "validated {} flagged {} dead {} | stored {} events {} aggregates {} retries {} cache errors {}",
            n(&validate.readings),
            n(&validate.flagged),
            n(&validate.dead_letters) + n(&process.dead_letters),
            n(&process.stored),
            n(&process.events),
            n(&process.aggregates),
            n(&process.store_retries),
            n(&process.cache_errors),
        );
    }
    let _ = stop.send(true);
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(30), t).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(anyhow::Error::new(e).context("a stage failed")),
            Ok(Err(e)) => return Err(anyhow::anyhow!("a stage panicked: {e}")),
            Err(_) => return Err(anyhow::anyhow!("a stage did not stop within 30 s")),
        }
    }
    if let Some(c) = collector {
        if c.is_finished() {
            match c.await {
                Ok(0) => {}
                _ => anyhow::bail!("the collector role stopped (see above)"),
            }
        } else {
            // It stops on the same Ctrl-C.
            let _ = tokio::time::timeout(Duration::from_secs(30), c).await;
        }
    }
    println!("STOPPED");
    Ok(())
}
