//! Faults against the real services: the stages crash and restart, and PostgreSQL, Redis and
//! Kafka each restart while readings flow. Afterwards every reading is stored exactly once and
//! every meter's day adds up. Restarts the shared services: run alone (scripts/test runs this
//! binary on its own, after the others).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dlms::ObisCode;
use hes_bus::Bus;
use hes_model::{MeterId, Period, Reading, Source};
use hes_pipeline::run::{
    run_process, run_validate, NoGroups, ProcessDeps, StageConfig, StageStats,
};
use hes_pipeline::Rules;
use hes_store::Store;
use tokio::sync::watch;

const A_PLUS: ObisCode = ObisCode([1, 0, 1, 8, 0, 255]);
const METERS: usize = 120;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `eval \"$(scripts/services up)\"` first (scripts/test does)")
    })
}

fn services(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services");
    let t = Instant::now();
    let out = Command::new(script).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "scripts/services {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("scripts/services {args:?} took {:?}", t.elapsed());
}

fn day0() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now - now.rem_euclid(86_400) - 2 * 86_400
}

/// Meter `m`'s readings of quarter `q` (0..4) of the day: 24 or 25 entries.
fn quarter(tag: &str, m: usize, q: i64, d0: i64) -> Vec<Reading> {
    let (lo, hi) = (q * 24, if q == 3 { 96 } else { q * 24 + 23 });
    (lo..=hi)
        .map(|k| Reading {
            meter: MeterId(format!("{tag}-{m:04}")),
            obis: A_PLUS,
            class_id: 3,
            attribute: 2,
            time: d0 + k * 900,
            value: 5_000 + k * 250,
            scaler: 0,
            unit: 30,
            status: 0,
            source: Source::Scheduled,
            received_at: d0 + k * 900 + 30,
        })
        .collect()
}

struct Stage {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn validate(bus: Arc<dyn Bus>, tag: &str) -> Stage {
    let (stop, rx) = watch::channel(false);
    let cfg = StageConfig::new(&format!("validate-{tag}"));
    let task = tokio::spawn(async move {
        run_validate(
            bus,
            Rules::default(),
            cfg,
            Arc::new(StageStats::default()),
            rx,
        )
        .await
        .unwrap();
    });
    Stage { stop, task }
}

fn process(deps: ProcessDeps, tag: &str) -> Stage {
    let (stop, rx) = watch::channel(false);
    let cfg = StageConfig::new(&format!("process-{tag}"));
    let task = tokio::spawn(async move {
        run_process(deps, cfg, Arc::new(StageStats::default()), rx)
            .await
            .unwrap();
    });
    Stage { stop, task }
}

async fn stored_of(store: &dyn Store, tag: &str, d0: i64) -> usize {
    let mut n = 0;
    for m in 0..METERS {
        let id = MeterId(format!("{tag}-{m:04}"));
        n += store
            .meter_readings(&id, None, d0, d0 + 86_400, 1000)
            .await
            .unwrap()
            .len();
    }
    n
}

async fn publish(bus: &dyn Bus, tag: &str, q: i64, d0: i64) {
    let batch: Vec<Reading> = (0..METERS).flat_map(|m| quarter(tag, m, q, d0)).collect();
    // The broker may still be settling after a restart: retry, bounded.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match hes_bus::publish_readings(bus, &batch).await {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("publish: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => panic!("publish: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_and_services_restart_without_loss_or_duplicates() {
    let tag = format!(
        "r{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let d0 = day0();
    let bus: Arc<dyn Bus> = Arc::new(
        hes_bus::kafka::KafkaBus::connect(&env("HES_KAFKA_BROKERS"))
            .unwrap()
            .with_namespace(&format!("{tag}.")),
    );
    let store: Arc<dyn Store> = Arc::new(
        hes_store::PgStore::connect(&env("HES_DATABASE_URL"))
            .await
            .unwrap(),
    );
    let cache = Arc::new(
        hes_cache::RedisCache::connect(&env("HES_REDIS_URL"), &format!("{tag}:"))
            .await
            .unwrap(),
    );
    let deps = ProcessDeps {
        bus: bus.clone(),
        store: store.clone(),
        cache: Some(cache.clone()),
        groups: Arc::new(NoGroups),
        rules: Arc::new(Rules::default()),
    };
    let mut v = validate(bus.clone(), &tag);
    let mut p = process(deps.clone(), &tag);

    // 1. Both stages crash (aborted: nothing graceful, offsets not committed) mid-stream.
    publish(&*bus, &tag, 0, d0).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    v.task.abort();
    p.task.abort();
    let _ = v.task.await;
    let _ = p.task.await;
    drop((v.stop, p.stop));
    publish(&*bus, &tag, 1, d0).await;
    v = validate(bus.clone(), &tag);
    p = process(deps.clone(), &tag);

    // 2. PostgreSQL restarts while the batch is processed.
    publish(&*bus, &tag, 2, d0).await;
    services(&["restart", "pg"]);
    // 3. Redis restarts.
    services(&["restart", "redis"]);
    // 4. Kafka restarts; the last quarter is published once it is back.
    services(&["restart", "kafka"]);
    publish(&*bus, &tag, 3, d0).await;

    let expected = METERS * 97;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut n = 0;
    while Instant::now() < deadline {
        n = stored_of(&*store, &tag, d0).await;
        if n >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        n, expected,
        "readings stored (each key is stored once by construction)"
    );
    // Every meter's day adds up to 24 kWh and is complete: nothing lost, nothing counted twice.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let subjects: Vec<String> = (0..METERS).map(|m| format!("{tag}-{m:04}")).collect();
        let days = store
            .aggregates(&subjects, Some("energy.active.import"), Period::Day, d0, d0)
            .await
            .unwrap();
        let good = days
            .iter()
            .filter(|d| d.total == 24_000.0 && d.count == 96 && d.complete)
            .count();
        if good == METERS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{good} of {METERS} meters' days add up; e.g. {:?}",
            days.iter().find(|d| d.total != 24_000.0 || !d.complete)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The cache came back with Redis: the newest value of a meter is the last entry.
    let latest = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            use hes_cache::Cache;
            let l = cache.latest(&MeterId(format!("{tag}-0000"))).await;
            if let Ok(l) = l {
                if l.first().is_some_and(|r| r.time == d0 + 86_400) {
                    break l;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the cache never got the last entry"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    assert_eq!(latest.len(), 1);
    v.stop.send(true).unwrap();
    p.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), v.task)
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), p.task)
        .await
        .unwrap()
        .unwrap();
}
