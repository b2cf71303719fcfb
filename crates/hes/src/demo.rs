//! `hes demo`: the embedded head-end with a simulated fleet, in one process and with no set-up.
//! The fleet runs in accelerated time and pushes; the collector reads every meter's load profile
//! and event logs on a schedule; the push listener takes the pushes; all of it goes on the
//! in-process bus, and from there into an SQLite store. A line every few seconds says where
//! things stand. (The pipeline, the API and the web UI join it as they are built.)

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use dlms::SystemTitle;
use hes_collector::bus::MemoryBus;
use hes_collector::counters::FileCounters;
use hes_collector::jobs::{Audit, Engine, EngineConfig};
use hes_collector::push::{serve_pushes, PushListenerConfig, PushStats};
use hes_collector::registry::Registry;
use hes_collector::schedule::{self, Schedule, When};
use hes_collector::secrets::Kek;
use hes_collector::session::Env;
use hes_model::{topics, JobKind};
use hes_sim::fleet::{Clock, Fleet, FleetConfig, PushConfig};
use rand::RngCore;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Simulated meters.
    #[arg(long, default_value_t = 1000)]
    pub meters: u32,
    /// Meter time runs this many times faster (1440: a day per minute).
    #[arg(long, default_value_t = 96.0)]
    pub speed: f64,
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
    /// Serve the REST and WebSocket API on this address (e.g. 127.0.0.1:8080).
    #[arg(long)]
    pub http: Option<SocketAddr>,
}

/// Moves readings and events from the bus into the store, committing the bus offsets only after
/// the store has committed (at-least-once; the store keeps one row per natural key).
async fn store_from_bus(
    bus: Arc<MemoryBus>,
    store: Arc<dyn hes_store::Store>,
    stored: Arc<std::sync::atomic::AtomicU64>,
    cache: Option<Arc<dyn hes_cache::Cache>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use hes_collector::bus::Bus;
    let mut consumer = bus
        .subscribe(&[topics::READINGS_RAW, topics::EVENTS], "store")
        .await?;
    loop {
        let mut readings = Vec::new();
        let mut events = Vec::new();
        let mut last = Vec::new();
        // Up to 5,000 records or 200 ms, whichever first.
        let until = tokio::time::Instant::now() + Duration::from_millis(200);
        while readings.len() + events.len() < 5000 {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let next = tokio::select! {
                d = consumer.next(left) => d?,
                _ = stop.changed() => return Ok(()),
            };
            let Some(d) = next else {
                break;
            };
            if d.topic == topics::READINGS_RAW {
                if let Ok(r) = serde_json::from_slice(&d.payload) {
                    readings.push(r);
                }
            } else if let Ok(e) = serde_json::from_slice(&d.payload) {
                events.push(e);
            }
            last.push(d);
        }
        if last.is_empty() {
            continue;
        }
        let n = store.insert_readings(&readings).await?;
        store.insert_events(&events).await?;
        stored.fetch_add(n, Ordering::Relaxed);
        if let Some(c) = &cache {
            crate::http::feed_cache(&**c, &readings, &events).await;
        }
        // Commit the newest delivery of each partition.
        let mut newest: BTreeMap<(String, i32), hes_collector::bus::Delivery> = BTreeMap::new();
        for d in last {
            newest.insert((d.topic.clone(), d.partition), d);
        }
        for d in newest.values() {
            consumer.commit(d).await?;
        }
    }
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
    cfg.clock = Clock::new(None, args.speed);
    // A day of 15-minute entries per meter: the first cycle reads it all (the in-process bus
    // keeps what it is given until storage takes over).
    cfg.profile_entries = 96;
    let mut push = PushConfig::new(push_addr);
    push.interval_s = Some(900);
    cfg.push = Some(push);
    let fleet = Fleet::start(cfg).await?;
    let mut kek = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut kek);
    let registry = Arc::new(Registry::in_memory(Kek::from_bytes(&kek)?));
    registry.import(&fleet.inventory(), |e| {
        // Cells of 50 meters, as a data concentrator or a radio cell would group them.
        let n: u32 = e.serial.parse().unwrap_or(0);
        BTreeMap::from([("cell".to_string(), format!("cell-{}", n / 50))])
    })?;
    let bus = Arc::new(MemoryBus::new());
    let env = Arc::new(Env {
        registry: registry.clone(),
        counters: Arc::new(FileCounters::in_memory()),
        client_title: SystemTitle(*b"HESDEMO\x01"),
        connect_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(5),
    });
    let engine = Engine::new(
        env,
        bus.clone(),
        EngineConfig {
            concurrency: 32,
            ..EngineConfig::default()
        },
        Audit::in_memory(),
    );
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(engine.clone().run(rx.clone()));
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let db = args.data_dir.join("hes.db");
    let store: Arc<dyn hes_store::Store> = Arc::new(hes_store::SqliteStore::open(&db).await?);
    let stored = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cache: Option<Arc<dyn hes_cache::Cache>> = args
        .http
        .map(|_| Arc::new(hes_cache::MemoryCache::new()) as Arc<dyn hes_cache::Cache>);
    if let (Some(addr), Some(cache)) = (args.http, &cache) {
        crate::http::start(
            addr,
            &db,
            store.clone(),
            cache.clone(),
            registry.clone(),
            engine.clone(),
            rx.clone(),
        )
        .await?;
        tokio::spawn(crate::http::relay_jobs(
            bus.clone(),
            cache.clone(),
            rx.clone(),
        ));
    }
    let storing = tokio::spawn(store_from_bus(
        bus.clone(),
        store,
        stored.clone(),
        cache,
        rx.clone(),
    ));
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
        },
        Schedule {
            name: "events".into(),
            group: None,
            read: JobKind::ReadEvents { from: None },
            when: When::Every(every * 5),
            window_s: every,
            jitter_s: 1,
        },
    ];
    // A first read right away, then on schedule.
    for m in registry.ids() {
        engine.submit(
            m,
            JobKind::ReadLoadProfile { from: None },
            hes_model::Priority::Scheduled,
            "demo",
        );
    }
    tokio::spawn(schedule::run(
        schedules,
        engine.clone(),
        registry.clone(),
        rx,
    ));
    let first = fleet.meters().first().map(|m| m.addr());
    println!(
        "hes demo: {} simulated meters from {} (a day of meter time every {:.0} s), pushes to {}",
        fleet.len(),
        first.map_or_else(String::new, |a| a.to_string()),
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
        println!(
            "[{:>4} s] jobs ok {} failed {} retried {} | readings {} events {} on the bus | stored {} | pushes {} | queued {}",
            started.elapsed().as_secs(),
            s.succeeded.load(Ordering::Relaxed),
            s.failed.load(Ordering::Relaxed),
            s.retried.load(Ordering::Relaxed),
            bus.len(topics::READINGS_RAW),
            bus.len(topics::EVENTS),
            stored.load(Ordering::Relaxed),
            PushStats::get(&push_stats.notifications),
            engine.pending(),
        );
        if args
            .seconds
            .is_some_and(|t| started.elapsed().as_secs() >= t)
            || storing.is_finished()
        {
            break;
        }
    }
    if storing.is_finished() {
        let _ = stop.send(true);
        fleet.shutdown();
        return match storing.await {
            Ok(Err(e)) => Err(e.context("storing")),
            _ => Err(anyhow::anyhow!("the store task ended")),
        };
    }
    let _ = stop.send(true);
    fleet.shutdown();
    Ok(())
}
