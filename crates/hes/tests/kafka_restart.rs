//! Restart drill: Kafka is restarted while `hes serve` (collector, validate, process) is
//! collecting. Collection resumes by itself: jobs in flight during the outage and jobs put on
//! the topic after it all end with every meter's load profile stored exactly once (per meter,
//! as many entries as the meter holds, each equal to the meter's), and no meter saw a replayed
//! invocation counter.
//!
//! Restarting Kafka would break every other test using it at the same moment, so this test is
//! ignored by `cargo test` and run by `scripts/drill-restart`, which starts services of its own
//! (own ports and data), sets `HES_DRILL_RESTART=1`, and restarts only those (see
//! docs/collection.md).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{env, NodeConfig};
use hes_bus::kafka::{KafkaBus, BROKERS_ENV};
use hes_bus::Bus;
use hes_collector::distributed::{dispatch, JobRequest};
use hes_model::{topics, JobKind, MeterId, Priority};
use hes_sim::fleet::{Clock, Faults, Fleet, FleetConfig};
use hes_sim::Profile;
use hes_testkit::{unique, wait_until_async, TempDir, TestDb};

const METERS: u32 = 12;
/// Meters whose jobs are put on the topic before the restart; the others after it.
const BEFORE: usize = 8;
const ENERGY: &str = "1.0.1.8.0.255";

fn services_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services")
}

fn read_job(meter: &str) -> JobRequest {
    JobRequest {
        request: unique("drill"),
        meter: MeterId(meter.to_string()),
        kind: JobKind::ReadLoadProfile { from: None },
        priority: Priority::Scheduled,
        requested_by: "restart drill".into(),
        not_before_ms: 0,
        // No row yet: the collector creates it.
        job: 0,
    }
}

/// Stored load-profile energy readings per meter: time → value.
async fn stored(db: &tokio_postgres::Client) -> HashMap<String, HashMap<i64, i64>> {
    let rows = db
        .query(
            "SELECT meter, time, value FROM readings WHERE obis = $1",
            &[&ENERGY],
        )
        .await
        .unwrap();
    let mut out: HashMap<String, HashMap<i64, i64>> = HashMap::new();
    for r in rows {
        out.entry(r.get(0)).or_default().insert(r.get(1), r.get(2));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts Kafka: run by scripts/drill-restart on services of its own"]
async fn collection_resumes_after_a_kafka_restart_and_stores_everything_once() {
    assert_eq!(
        std::env::var("HES_DRILL_RESTART").as_deref(),
        Ok("1"),
        "this test restarts Kafka: run it with scripts/drill-restart, which gives it services \
         of its own"
    );
    let started = Instant::now();
    let brokers = env(BROKERS_ENV);
    let namespace = format!("{}.", unique("drill"));
    // The meters' clock starts just after a 15-minute boundary: the load profile holds the
    // same entries for the whole drill, so the truth does not move under the check.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut cfg = FleetConfig::new(METERS);
    cfg.first_host = IpAddr::from([127, 93, 0, 1]);
    cfg.first_serial = hes_testkit::inventory::fresh_serials(METERS);
    cfg.profile_entries = 96;
    cfg.clock = Clock::new(Some(now - now.rem_euclid(900) + 30), 1.0);
    let fleet = Fleet::start(cfg).await.unwrap();
    // Meters of different speeds: their jobs finish over several seconds, some of them while
    // the broker is away.
    for (i, m) in fleet.meters().iter().enumerate() {
        let slow = Faults {
            slow_ms: 50 + 60 * i as u32,
            ..Faults::default()
        };
        fleet.set_faults(&m.spec.id(), slow).await.unwrap();
    }
    let ids: Vec<String> = fleet.meters().iter().map(|m| m.spec.id()).collect();

    let dir = TempDir::new("hes-drill-restart").unwrap();
    let inventory = dir.join("inventory.json");
    hes_testkit::inventory::write_json(&inventory, &fleet.inventory()).unwrap();
    let db = TestDb::create().await.unwrap();
    common::import(&inventory, db.url());
    let config = NodeConfig {
        roles: vec!["collector", "validate", "process"],
        database_url: db.url().to_string(),
        brokers: brokers.clone(),
        namespace: namespace.clone(),
        partitions: 4,
        api_node: None,
    }
    .write(&dir.join("node.toml"));
    let mut node = common::start("hes serve", &config).await;
    let bus: Arc<dyn Bus> = Arc::new(
        KafkaBus::connect(&brokers)
            .unwrap()
            .with_namespace(&namespace),
    );
    let before: Vec<JobRequest> = ids[..BEFORE].iter().map(|m| read_job(m)).collect();
    dispatch(&*bus, topics::JOBS, &before).await.unwrap();

    let (pg, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // Restart the broker as soon as the first meter's readings are stored: the others are
    // being read, or waiting to be published, or to be stored.
    wait_until_async(Duration::from_secs(60), "the first readings stored", || {
        common::assert_running(&mut node);
        let pg = &pg;
        async move { (!stored(pg).await.is_empty()).then_some(()) }
    })
    .await
    .unwrap();
    let done_before = stored(&pg).await.len();
    assert!(
        done_before < BEFORE,
        "every meter was stored before the restart: nothing to prove"
    );
    let restart = tokio::task::spawn_blocking(|| {
        Command::new(services_script())
            .args(["restart", "kafka"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        restart.status.success(),
        "scripts/services restart kafka: {}",
        String::from_utf8_lossy(&restart.stderr)
    );
    eprintln!(
        "kafka restarted at {:?}; {done_before} of {BEFORE} meters stored before",
        started.elapsed()
    );
    // New jobs after the restart: the collector consumes again without being restarted.
    let after: Vec<JobRequest> = ids[BEFORE..].iter().map(|m| read_job(m)).collect();
    wait_until_async(Duration::from_secs(30), "jobs published again", || {
        let (bus, after) = (&bus, &after);
        async move { dispatch(&**bus, topics::JOBS, after).await.ok() }
    })
    .await
    .unwrap();

    let waited = wait_until_async(Duration::from_secs(90), "every meter stored", || {
        common::assert_running(&mut node);
        let (pg, n) = (&pg, ids.len());
        async move {
            let s = stored(pg).await;
            (s.len() == n && s.values().all(|v| v.len() >= 96)).then_some(s)
        }
    })
    .await;
    let all = match waited {
        Ok(all) => all,
        Err(e) => {
            let counts: HashMap<String, usize> = stored(&pg)
                .await
                .into_iter()
                .map(|(m, v)| (m, v.len()))
                .collect();
            panic!("{e}: entries stored per meter {counts:?}")
        }
    };
    // Each meter's entries, no more and no fewer (the natural key (meter, object, attribute,
    // time) keeps a redelivered batch from being stored twice), each the meter's value.
    for cell in fleet.meters() {
        let id = cell.spec.id();
        let truth = cell.lock().profile_rows(Profile::Load, i64::MIN, i64::MAX);
        let got = &all[&id];
        assert_eq!(got.len(), truth.len(), "{id}: entries stored");
        for (t, row) in &truth {
            let want = match row[1] {
                dlms::Data::DoubleLongUnsigned(v) => i64::from(v),
                ref d => panic!("{id}: {d:?}"),
            };
            assert_eq!(got.get(t), Some(&want), "{id} at {t}");
        }
    }
    assert_eq!(fleet.total_replays(), 0, "a meter saw a replayed counter");
    eprintln!("drill done in {:?}", started.elapsed());
    common::stop(&mut node).await;
    fleet.shutdown();
}
