//! `hes demo`: the embedded head-end with a simulated fleet, in one process and with no set-up.
//! The fleet runs in accelerated time and pushes; the collector reads every meter's load profile
//! and event logs on a schedule; the push listener takes the pushes; all of it goes on the
//! in-process bus, and from there into an SQLite store. A line every few seconds says where
//! things stand. (The pipeline, the API and the web UI join it as they are built.)

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use dlms::SystemTitle;
use hes_collector::bus::MemoryBus;
use hes_collector::counters::Counters;
use hes_collector::jobs::{Audit, Engine, EngineConfig};
use hes_collector::push::{serve_pushes, PushListenerConfig, PushStats};
use hes_collector::registry::Registry;
use hes_collector::schedule::{self, Schedule, When};
use hes_collector::secrets::Kek;
use hes_collector::session::Env;
use hes_model::JobKind;
use hes_pipeline::run::StageStats;
use hes_sim::fleet::{Clock, Fleet, FleetConfig, PushConfig};
use rand::RngCore;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Simulated meters.
    #[arg(long, default_value_t = 1000)]
    pub meters: u32,
    /// Meter time starts `--history-days` back and runs this many times faster until it
    /// reaches real time, then follows it (readings are never from the future).
    #[arg(long, default_value_t = 96.0)]
    pub speed: f64,
    /// How far back meter time starts (days).
    #[arg(long, default_value_t = 1.0)]
    pub history_days: f64,
    /// The first meter's address (the others count up from it).
    #[arg(long, default_value = "127.1.0.1")]
    pub host: IpAddr,
    /// Where meters push.
    #[arg(long, default_value = "127.0.0.1:4060")]
    pub push_listen: SocketAddr,
    /// Seconds between collection cycles.
    #[arg(long, default_value_t = 60)]
    pub every: i64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Keep readings and events in an SQLite database in this directory (`hes.db`).
    #[arg(long, default_value = ".hes-demo")]
    pub data_dir: std::path::PathBuf,
    /// Serve the web UI and the REST/WebSocket API here.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Do not serve the UI and API.
    #[arg(long)]
    pub no_http: bool,
    /// Serve the simulated fleet's control API here (ground truth, faults, tamper: what
    /// `hes sim --control` serves), for tests and benchmarks.
    #[arg(long)]
    pub sim_control: Option<SocketAddr>,
    /// A node configuration whose collector settings (concurrency, limits, timeouts, retries)
    /// and `[cim]` MDM delivery the demo uses; the roles and stores of the file are not used
    /// (the demo's are embedded).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
}

/// The demo's KEK: `HES_KEK`/`HES_KEK_FILE` when set, else one generated at the first start
/// and kept in the data directory (readable by its owner only), said so once.
fn demo_kek(dir: &std::path::Path) -> anyhow::Result<Kek> {
    if std::env::var_os("HES_KEK").is_some() || std::env::var_os("HES_KEK_FILE").is_some() {
        return crate::meters::kek_from_env();
    }
    let path = dir.join("kek");
    match std::fs::read_to_string(&path) {
        Ok(text) => Kek::from_hex(&text).with_context(|| format!("{}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut k = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut k);
            write_private(&path, hex::encode(k).as_bytes())?;
            println!(
                "hes demo: generated a key-encryption key in {} (set HES_KEK to use your own)",
                path.display()
            );
            Ok(Kek::from_bytes(&k)?)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

pub async fn run(args: DemoArgs) -> u8 {
    match demo(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hes demo: {e:#}");
            1
        }
    }
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let listener = tokio::net::TcpListener::bind(args.push_listen)
        .await
        .with_context(|| format!("binding the push listener on {}", args.push_listen))?;
    let push_addr = listener.local_addr()?;
    let mut cfg = FleetConfig::new(args.meters.max(1));
    cfg.first_host = args.host;
    cfg.clock = Clock::catching_up((args.history_days.max(0.0) * 86_400.0) as i64, args.speed);
    // A day of 15-minute entries per meter: the first cycle reads it all (the in-process bus
    // keeps what it is given until storage takes over).
    cfg.profile_entries = 96;
    let mut push = PushConfig::new(push_addr);
    push.interval_s = Some(900);
    cfg.push = Some(push);
    let fleet = Fleet::start(cfg).await?;
    if let Some(addr) = args.sim_control {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the fleet's control API on {addr}"))?;
        println!("{}", hes_sim::control::describe(listener.local_addr()?));
        let f = fleet.clone();
        tokio::spawn(async move {
            if let Err(e) = hes_sim::control::serve(listener, f).await {
                eprintln!("hes demo: the fleet's control API: {e}");
            }
        });
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let db = args.data_dir.join("hes.db");
    let (store, state, outbox) = crate::meters::open_all(&db.to_string_lossy()).await?;
    // The registry in the store, like every node's; the fleet's meters (re)imported, since the
    // simulator starts again with its first keys.
    let registry = Registry::open(state, demo_kek(&args.data_dir)?).await?;
    registry.import(&fleet.inventory(), true).await?;
    // Bounded: a record is dropped once every stage has committed it.
    let bus = Arc::new(MemoryBus::bounded());
    let node_cfg = hes_node::Config::load(args.config.as_deref())?;
    let t = node_cfg.collector.clone();
    let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.1, 86_400.0));
    let env = Arc::new(Env {
        registry: registry.clone(),
        counters: Arc::new(Counters::with_block(
            registry.state().clone(),
            t.counter_block,
        )),
        client_title: SystemTitle(*b"HESDEMO\x01"),
        connect_timeout: secs(t.connect_timeout_s),
        response_timeout: secs(t.response_timeout_s),
    });
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
    // A firmware image operators can send from the UI or the API (`hes-demo-fw-2.0`): the
    // simulated meters verify and activate it.
    let payload: Vec<u8> = (0..48 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    engine.add_image(
        "hes-demo-fw-2.0",
        hes_sim::objects::image::build_image("HES-DEMO 2.0", &payload),
    );
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(engine.clone().run(rx.clone()));
    let cache: Arc<dyn hes_cache::Cache> = Arc::new(hes_cache::MemoryCache::new());
    if let Some(addr) = (!args.no_http).then_some(args.http) {
        // The demo serves until Ctrl-C; its status lines show whether the API still answers.
        let _api = crate::http::start(
            addr,
            &db.to_string_lossy(),
            crate::http::Backends {
                store: store.clone(),
                cache: cache.clone(),
                registry: registry.clone(),
                commands: engine.clone(),
                health: None,
            },
            rx.clone(),
        )
        .await?;
        tokio::spawn(crate::scheduler::lead(
            db.to_string_lossy().into_owned(),
            hes_collector::schedule::Sink::Engine(engine.clone()),
            registry.clone(),
            format!("demo-{}", std::process::id()),
            None,
            rx.clone(),
        ));
    }
    // The CIM messages to an MDM, when the configuration names one.
    crate::cim::spawn(
        &node_cfg.cim,
        &format!("demo-{}", std::process::id()),
        outbox,
        store.clone(),
        registry.clone(),
        rx.clone(),
    )?;
    // The pipeline: validate, then store, aggregate (per meter and per cell) and cache.
    let stages = crate::pipeline::start(
        hes_pipeline::run::ProcessDeps {
            bus: bus.clone(),
            store: store.clone(),
            cache: Some(cache.clone()),
            groups: Arc::new(crate::pipeline::RegistryGroups(registry.clone())),
            rules: Arc::new(hes_pipeline::Rules::default()),
        },
        rx.clone(),
    );
    let push_stats = Arc::new(PushStats::default());
    let pcfg = PushListenerConfig {
        stats: push_stats.clone(),
        ..PushListenerConfig::default()
    };
    tokio::spawn(serve_pushes(
        listener,
        registry.clone(),
        bus.clone(),
        pcfg,
        rx.clone(),
    ));
    let every = args.every.max(5);
    let schedules = vec![
        Schedule {
            name: "load-profile".into(),
            group: None,
            read: JobKind::ReadLoadProfile { from: None },
            when: When::Every(every),
            window_s: every / 2,
            jitter_s: 1,
            deadline_s: None,
        },
        Schedule {
            name: "events".into(),
            group: None,
            read: JobKind::ReadEvents { from: None },
            when: When::Every(every * 5),
            window_s: every,
            jitter_s: 1,
            deadline_s: None,
        },
    ];
    // A first read of profiles and event logs right away, then on schedule.
    let first_reads: Vec<hes_store::NewJob> = registry
        .ids()
        .into_iter()
        .flat_map(|m| {
            [
                JobKind::ReadLoadProfile { from: None },
                JobKind::ReadEvents { from: None },
            ]
            .map(|kind| hes_store::NewJob {
                meter: m.clone(),
                kind,
                priority: hes_model::Priority::Scheduled,
                requested_by: "demo".into(),
                not_before: 0,
                max_attempts: 4,
                request: None,
            })
        })
        .collect();
    let created = registry.state().create_jobs(&first_reads).await?;
    engine.enqueue_created(created.into_iter().map(|(j, _)| j).collect());
    // Intervals whose push never came are read by pull (once meter time has caught up and a
    // boundary stays the newest for the grace time).
    tokio::spawn(hes_collector::gaps::fill_push_gaps(
        registry.clone(),
        schedule::Sink::Engine(engine.clone()),
        hes_collector::gaps::GapConfig::default(),
        rx.clone(),
    ));
    tokio::spawn(schedule::run(
        schedules,
        engine.clone(),
        registry.clone(),
        rx,
    ));
    let first = fleet.meters().first().map(|m| m.addr());
    println!(
        "hes demo: {} simulated meters from {} (meter time {:.1} days back, a day every {:.0} s until it reaches now, then real time), pushes to {}",
        fleet.len(),
        first.map_or_else(String::new, |a| a.to_string()),
        args.history_days.max(0.0),
        86_400.0 / args.speed.max(1e-3),
        push_addr,
    );
    println!(
        "Read one yourself: hes read --host {} 7/1.0.99.1.0.255/2 (public client)",
        args.host
    );
    let s = &engine.stats;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let n = StageStats::get;
        println!(
            "[{:>4} s] jobs ok {} failed {} retried {} | validated {} (flagged {}) | stored {} events {} aggregates {} | pushes {} | queued {}",
            started.elapsed().as_secs(),
            s.succeeded.load(Ordering::Relaxed),
            s.failed.load(Ordering::Relaxed),
            s.retried.load(Ordering::Relaxed),
            n(&stages.validate.readings),
            n(&stages.validate.flagged),
            n(&stages.process.stored),
            n(&stages.process.events),
            n(&stages.process.aggregates),
            PushStats::get(&push_stats.notifications),
            engine.pending(),
        );
        if args
            .seconds
            .is_some_and(|t| started.elapsed().as_secs() >= t)
            || stages.any_finished()
        {
            break;
        }
    }
    if stages.any_finished() {
        let _ = stop.send(true);
        fleet.shutdown();
        for t in stages.tasks {
            if t.is_finished() {
                if let Ok(Err(e)) = t.await {
                    return Err(anyhow::Error::new(e).context("the pipeline"));
                }
            }
        }
        return Err(anyhow::anyhow!("a pipeline stage ended"));
    }
    let _ = stop.send(true);
    fleet.shutdown();
    Ok(())
}
