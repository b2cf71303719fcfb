//! Limits shared by collectors, in the real Redis named by `HES_REDIS_URL`: two engines, each
//! allowed 8 sessions, never hold more than the global limit together, nor more than the cell
//! limit in one cell; a lease left by a dead collector expires.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use dlms::SystemTitle;
use hes_collector::bus::MemoryBus;
use hes_collector::counters::Counters;
use hes_collector::jobs::{Audit, Engine, EngineConfig};
use hes_collector::limits::SharedLimits;
use hes_collector::registry::Registry;
use hes_collector::secrets::Kek;
use hes_collector::session::Env;
use hes_model::{JobKind, MeterId, Priority};
use hes_sim::fleet::{Faults, Fleet, FleetConfig};

fn redis_url() -> String {
    let url = std::env::var("HES_REDIS_URL").unwrap_or_default();
    assert!(
        !url.trim().is_empty(),
        "HES_REDIS_URL is not set: run `eval \"$(scripts/services up)\"` (scripts/test does)"
    );
    url
}

fn prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test-{}-{nanos}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_stay_within_the_shared_limits() {
    let url = redis_url();
    let name = prefix();
    let mut cfg = FleetConfig::new(24);
    cfg.first_host = IpAddr::from([127, 78, 0, 1]);
    cfg.profile_entries = 96;
    let fleet = Fleet::start(cfg).await.unwrap();
    for m in fleet.meters() {
        let slow = Faults {
            slow_ms: 60,
            ..Faults::default()
        };
        fleet.set_faults(&m.spec.id(), slow).await.unwrap();
    }
    let (stop, rx) = tokio::sync::watch::channel(false);
    let mut engines = Vec::new();
    for c in 0..2u8 {
        let registry = Registry::in_memory(Kek::from_bytes(&[c; 32]).unwrap())
            .await
            .unwrap();
        let mut entries = fleet.inventory();
        for e in &mut entries {
            // Two cells: serials 1..=12 and 13..=24.
            let cell = (e.serial.parse::<u32>().unwrap() - 1) / 12;
            e.groups = BTreeMap::from([("cell".to_string(), format!("cell-{cell}"))]);
        }
        registry.import(&entries, false).await.unwrap();
        let env = Arc::new(Env {
            counters: Arc::new(Counters::new(registry.state().clone())),
            registry,
            client_title: SystemTitle(*b"HESLIM\0\0"),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(3),
        });
        let engine = Engine::new(
            env,
            Arc::new(MemoryBus::new()),
            EngineConfig {
                concurrency: 8,
                per_group: 8,
                ..EngineConfig::default()
            },
            Audit::in_memory(),
        );
        let limits = SharedLimits::connect(&url, &name, 3, 2, Duration::from_secs(60))
            .await
            .unwrap();
        engine.set_shared_limits(limits);
        tokio::spawn(engine.clone().run(rx.clone()));
        engines.push(engine);
    }
    // Each engine gets half the meters.
    for (i, m) in fleet.meters().iter().enumerate() {
        engines[i % 2]
            .submit(
                MeterId(m.spec.id()),
                JobKind::ReadLoadProfile { from: None },
                Priority::Scheduled,
                "scheduler",
            )
            .await
            .unwrap();
    }
    for e in &engines {
        assert!(e.wait_idle(Duration::from_secs(60)).await);
    }
    let _ = stop.send(true);
    let ok: u64 = engines
        .iter()
        .map(|e| e.stats.succeeded.load(Ordering::Relaxed))
        .sum();
    assert_eq!(ok, 24);
    // Connections at once across both collectors (each allowed 8 on its own), as the meters saw
    // them. A job holds its place from before it connects until its session is released; the
    // meter notices the closed socket a moment later, so connections in teardown may overlap
    // the next jobs' (two were seen on a loaded machine). Without the limit, 16 would run.
    let peak = fleet.stats().peak_sessions.load(Ordering::Relaxed);
    assert!(
        peak <= 3 + 2,
        "{peak} connections at once with a global limit of 3"
    );
    assert!(peak >= 2, "the limit was never reached: {peak}");
    // A cell's limit holds whatever the global room.
    let cells = SharedLimits::connect(&url, &prefix(), 10, 1, Duration::from_secs(60))
        .await
        .unwrap();
    let c1 = cells.try_acquire(Some("c")).await.unwrap().unwrap();
    assert!(
        cells.try_acquire(Some("c")).await.unwrap().is_none(),
        "cell c full"
    );
    let d1 = cells.try_acquire(Some("d")).await.unwrap().unwrap();
    cells.release(c1).await.unwrap();
    cells.release(d1).await.unwrap();
    // A place held by a collector that died expires with its lease.
    let short = SharedLimits::connect(&url, &prefix(), 1, 1, Duration::from_millis(300))
        .await
        .unwrap();
    let first = short.try_acquire(Some("c")).await.unwrap();
    assert!(first.is_some());
    assert!(
        short.try_acquire(Some("c")).await.unwrap().is_none(),
        "full"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = short.try_acquire(Some("c")).await.unwrap();
    assert!(again.is_some(), "the dead holder's place expired");
    short.release(again.unwrap()).await.unwrap();
    assert!(short.try_acquire(None).await.unwrap().is_some(), "released");
    fleet.shutdown();
}
