//! `hes serve --config FILE`: the distributed roles in one process, each scaled out by
//! running more processes with the same config (the stages are Kafka consumer groups, the
//! collectors share the jobs topic's partitions). Example: `deploy/hes.toml`.
//!
//! ```toml
//! roles = ["validate", "process"]        # also "collector", "api", "scheduler"
//! database_url = "postgres://…"          # else HES_DATABASE_URL
//! redis_url = "redis://…"                # else HES_REDIS_URL (optional: no cache without)
//! inventory = "meters.csv"               # groups for aggregates; meters for collectors
//! [kafka]
//! brokers = "127.0.0.1:19092"            # else HES_KAFKA_BROKERS
//! namespace = ""                         # prefix of every topic
//! partitions = 12
//! [stages]
//! max_batch = 20000
//! linger_ms = 200
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hes_bus::kafka::KafkaBus;
use hes_pipeline::run::{
    run_process, run_validate, NoGroups, ProcessDeps, StageConfig, StageStats,
};
use serde::Deserialize;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TOML configuration (see `deploy/hes.toml`).
    #[arg(long)]
    pub config: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Validate,
    Process,
    Collector,
    Api,
    /// Runs the schedules kept through the API, putting each cycle's jobs on `hes.jobs`.
    /// Every node may have it: one leads at a time (a lease in the store), another takes
    /// over within seconds of its death.
    Scheduler,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiRoleConfig {
    /// Where the UI and API listen.
    pub listen: std::net::SocketAddr,
    /// This node's name (in the scheduler lease, logs); the host name unless set.
    pub node: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub brokers: Option<String>,
    #[serde(default)]
    pub namespace: String,
    pub partitions: Option<i32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagesConfig {
    pub max_batch: Option<usize>,
    pub linger_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub readings_days: Option<u32>,
    pub events_days: Option<u32>,
    pub hourly_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub roles: Vec<Role>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub inventory: Option<PathBuf>,
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub stages: StagesConfig,
    /// Applied hourly by the process role.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// The API role (needs `inventory`, `database_url`; `redis_url` for live updates across
    /// nodes).
    pub api: Option<ApiRoleConfig>,
}

impl Config {
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let cfg: Config =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if cfg.roles.is_empty() {
            anyhow::bail!("{}: `roles` is empty: nothing to run", path.display());
        }
        Ok(cfg)
    }
}

fn setting(v: &Option<String>, env: &str, what: &str) -> anyhow::Result<String> {
    match v {
        Some(s) if !s.trim().is_empty() => Ok(s.clone()),
        _ => std::env::var(env)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .with_context(|| format!("no {what}: set it in the config or {env}")),
    }
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
    let cfg = Config::load(&args.config)?;
    let brokers = setting(&cfg.kafka.brokers, "HES_KAFKA_BROKERS", "Kafka brokers")?;
    let partitions = cfg.kafka.partitions.unwrap_or(12).max(1);
    let bus: Arc<dyn hes_bus::Bus> =
        Arc::new(KafkaBus::connect(&brokers)?.with_namespace(&cfg.kafka.namespace));
    let stage = |name: &str| {
        let mut s = StageConfig::new(name);
        if let Some(n) = cfg.stages.max_batch {
            s.max_batch = n.max(1);
        }
        if let Some(ms) = cfg.stages.linger_ms {
            s.linger = Duration::from_millis(ms.max(1));
        }
        s.partitions = partitions;
        s
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let validate = Arc::new(StageStats::default());
    let process = Arc::new(StageStats::default());
    if cfg.roles.contains(&Role::Validate) {
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
    let (store, registry) = if wants_store {
        let url = setting(&cfg.database_url, "HES_DATABASE_URL", "database URL")?;
        let kek = crate::meters::kek_from_env()?;
        let (store, state) = crate::meters::open_stores(&url).await?;
        let registry = hes_store::Registry::open(state, kek).await?;
        if let Some(p) = &cfg.inventory {
            let n =
                crate::meters::import_new(&registry, &crate::meters::read_inventory(p)?).await?;
            println!(
                "inventory {}: {n} new meters imported ({} in the registry)",
                p.display(),
                registry.len()
            );
        }
        registry.spawn_refresh(Duration::from_secs(5), rx.clone());
        (Some(store), Some(registry))
    } else {
        (None, None)
    };
    let cache: Option<Arc<dyn hes_cache::Cache>> = match (
        wants_store,
        setting(&cfg.redis_url, "HES_REDIS_URL", "Redis URL"),
    ) {
        (true, Ok(u)) => Some(Arc::new(
            hes_cache::RedisCache::connect(&u, &format!("hes:{}", cfg.kafka.namespace)).await?,
        )),
        _ => None,
    };
    if let (true, Some(store)) = (cfg.roles.contains(&Role::Process), store.clone()) {
        let groups: Arc<dyn hes_pipeline::run::Groups> = match &registry {
            Some(r) => Arc::new(crate::pipeline::RegistryGroups(r.clone())),
            None => Arc::new(NoGroups),
        };
        let retention = hes_store::Retention {
            readings_days: cfg.retention.readings_days,
            events_days: cfg.retention.events_days,
            hourly_days: cfg.retention.hourly_days,
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
        tasks.push(tokio::spawn(run_process(
            deps,
            stage("process"),
            process.clone(),
            rx.clone(),
        )));
    }
    let collector = if cfg.roles.contains(&Role::Collector) {
        let url = setting(&cfg.database_url, "HES_DATABASE_URL", "database URL")?;
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
                concurrency: 64,
                redis_url: cfg
                    .redis_url
                    .clone()
                    .or_else(|| std::env::var("HES_REDIS_URL").ok()),
                global_limit: 512,
                per_cell_limit: 8,
                counters: None,
                timeout: 10.0,
            },
        )))
    } else {
        None
    };
    if cfg.roles.contains(&Role::Api) {
        let api = cfg
            .api
            .as_ref()
            .context("the api role needs an [api] section")?;
        let url = setting(&cfg.database_url, "HES_DATABASE_URL", "database URL")?;
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
            max_attempts: 4,
        });
        crate::http::start(
            api.listen,
            &url,
            store,
            cache,
            registry,
            commands.clone(),
            rx.clone(),
        )
        .await?;
    }
    if cfg.roles.contains(&Role::Scheduler) {
        let url = setting(&cfg.database_url, "HES_DATABASE_URL", "database URL")?;
        let registry = registry
            .clone()
            .context("the scheduler role opens the registry")?;
        bus.ensure_topics(&[hes_model::topics::JOBS], partitions)
            .await?;
        // Unique per process: two nodes never share a lease holder name.
        let node = format!(
            "{}-{}",
            cfg.api
                .as_ref()
                .and_then(|a| a.node.clone())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "node".into()),
            std::process::id()
        );
        tasks.push(tokio::spawn(crate::scheduler::lead(
            url,
            hes_collector::schedule::Sink::Bus {
                bus: bus.clone(),
                topic: hes_model::topics::JOBS.to_string(),
            },
            registry,
            node,
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
        {
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
