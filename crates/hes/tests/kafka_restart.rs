//! Restart drills: Kafka, then PostgreSQL, is restarted while `hes serve` is collecting.
//! Collection resumes by itself: jobs in flight during the outage and jobs put on the topic
//! during and after it all end with every meter's load profile stored exactly once (per meter,
//! as many entries as the meter holds, each equal to the meter's), no meter saw a replayed
//! invocation counter, and no role of the node stopped.
//!
//! Restarting a service would break every other test using it at the same moment, so these
//! tests are ignored by `cargo test` and run one after the other by `scripts/drill-restart`,
//! which starts services of its own (own ports and data), sets `HES_DRILL_RESTART=1`, and
//! restarts only those (see docs/collection.md).

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
use hes_testkit::{unique, wait_until_async, Proc, TempDir, TestDb, WaitError};

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

/// What both drills start: the fleet (slow meters, a load profile that does not change during
/// the drill), its database with the meters imported, the node, and a bus on its namespace.
struct Drill {
    started: Instant,
    fleet: Arc<Fleet>,
    ids: Vec<String>,
    db: TestDb,
    node: Proc,
    bus: Arc<dyn Bus>,
    _dir: TempDir,
}

async fn start(first_host: [u8; 4], roles: Vec<&'static str>, api: Option<&str>) -> Drill {
    assert_eq!(
        std::env::var("HES_DRILL_RESTART").as_deref(),
        Ok("1"),
        "this test restarts a service: run it with scripts/drill-restart, which gives it \
         services of its own"
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
    cfg.first_host = IpAddr::from(first_host);
    cfg.first_serial = hes_testkit::inventory::fresh_serials(METERS);
    cfg.profile_entries = 96;
    cfg.clock = Clock::new(Some(now - now.rem_euclid(900) + 30), 1.0);
    let fleet = Fleet::start(cfg).await.unwrap();
    // Meters of different speeds: their jobs finish over several seconds, some of them while
    // the service is away. The last meter read before the restart answers 3 s late (a session
    // of 20 s and more), so that it is still being read when the first meter is stored, however
    // slow the machine: the restart always comes mid-collection.
    for (i, m) in fleet.meters().iter().enumerate() {
        let slow = Faults {
            slow_ms: if i == BEFORE - 1 {
                3_000
            } else {
                50 + 60 * i as u32
            },
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
        roles,
        database_url: db.url().to_string(),
        brokers: brokers.clone(),
        namespace: namespace.clone(),
        partitions: 4,
        api_node: api.map(str::to_string),
    }
    .write(&dir.join("node.toml"));
    let node = common::start("hes serve", &config).await;
    let bus: Arc<dyn Bus> = Arc::new(
        KafkaBus::connect(&brokers)
            .unwrap()
            .with_namespace(&namespace),
    );
    Drill {
        started,
        fleet,
        ids,
        db,
        node,
        bus,
        _dir: dir,
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (pg, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(pg)
}

/// `scripts/services restart SERVICE` (the drill's services: the script's environment).
async fn restart(service: &'static str) {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(services_script())
            .args(["restart", service])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "scripts/services restart {service}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until the first meter's readings are stored (the others are being read, or waiting
/// to be published, or to be stored); returns how many meters are stored.
async fn first_stored(d: &mut Drill, pg: &tokio_postgres::Client) -> usize {
    let node = &mut d.node;
    wait_until_async(Duration::from_secs(60), "the first readings stored", || {
        common::assert_running(node);
        async move { (!stored(pg).await.is_empty()).then_some(()) }
    })
    .await
    .unwrap();
    let done_before = stored(pg).await.len();
    assert!(
        done_before < BEFORE,
        "every meter was stored before the restart: nothing to prove"
    );
    done_before
}

/// Every meter ends stored: each meter's entries, no more and no fewer (the natural key
/// (meter, object, attribute, time) keeps a redelivered batch from being stored twice), each
/// the meter's value; and no meter saw a replayed counter.
async fn check(d: &mut Drill, pg: &tokio_postgres::Client) {
    let node = &mut d.node;
    let n = d.ids.len();
    let waited: Result<_, WaitError> =
        wait_until_async(Duration::from_secs(90), "every meter stored", || {
            common::assert_running(node);
            async move {
                let s = stored(pg).await;
                (s.len() == n && s.values().all(|v| v.len() >= 96)).then_some(s)
            }
        })
        .await;
    let all = match waited {
        Ok(all) => all,
        Err(e) => {
            let counts: HashMap<String, usize> = stored(pg)
                .await
                .into_iter()
                .map(|(m, v)| (m, v.len()))
                .collect();
            panic!("{e}: entries stored per meter {counts:?}")
        }
    };
    for cell in d.fleet.meters() {
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
    assert_eq!(d.fleet.total_replays(), 0, "a meter saw a replayed counter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts Kafka: run by scripts/drill-restart on services of its own"]
async fn collection_resumes_after_a_kafka_restart_and_stores_everything_once() {
    let mut d = start(
        [127, 93, 0, 1],
        vec!["collector", "validate", "process"],
        None,
    )
    .await;
    let before: Vec<JobRequest> = d.ids[..BEFORE].iter().map(|m| read_job(m)).collect();
    dispatch(&*d.bus, topics::JOBS, &before).await.unwrap();
    let pg = connect(d.db.url()).await.unwrap();
    let done_before = first_stored(&mut d, &pg).await;
    restart("kafka").await;
    eprintln!(
        "kafka restarted at {:?}; {done_before} of {BEFORE} meters stored before",
        d.started.elapsed()
    );
    // New jobs after the restart: the collector consumes again without being restarted.
    let after: Vec<JobRequest> = d.ids[BEFORE..].iter().map(|m| read_job(m)).collect();
    let bus = d.bus.clone();
    wait_until_async(Duration::from_secs(30), "jobs published again", || {
        let (bus, after) = (&bus, &after);
        async move { dispatch(&**bus, topics::JOBS, after).await.ok() }
    })
    .await
    .unwrap();
    check(&mut d, &pg).await;
    eprintln!("drill done in {:?}", d.started.elapsed());
    common::stop(&mut d.node).await;
    d.fleet.shutdown();
}

/// PostgreSQL restarted under a node with every role: the collector's job-store calls, the
/// process stage's writes, the API's and the scheduler's connections all fail for a moment
/// and recover by themselves (pooled connections are replaced), and no role stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts PostgreSQL: run by scripts/drill-restart on services of its own"]
async fn collection_resumes_after_a_postgresql_restart_and_stores_everything_once() {
    let mut d = start(
        [127, 97, 0, 1],
        vec!["api", "collector", "validate", "process", "scheduler"],
        Some("drill"),
    )
    .await;
    d.node
        .wait_for_async(Duration::from_secs(30), "SCHEDULER leading", |l| {
            l.starts_with("SCHEDULER leading")
        })
        .await
        .unwrap();
    let before: Vec<JobRequest> = d.ids[..BEFORE].iter().map(|m| read_job(m)).collect();
    dispatch(&*d.bus, topics::JOBS, &before).await.unwrap();
    let pg = connect(d.db.url()).await.unwrap();
    let done_before = first_stored(&mut d, &pg).await;
    drop(pg);
    // Jobs put on the topic one by one while the server restarts: some reach the collector
    // while the job store is away (a request without a row needs one created first).
    let restarting = tokio::spawn(restart("pg"));
    let mut during = d.ids[BEFORE..].iter();
    while !restarting.is_finished() {
        let Some(m) = during.next() else { break };
        dispatch(&*d.bus, topics::JOBS, &[read_job(m)])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    restarting.await.unwrap();
    let sent_during = d.ids.len() - BEFORE - during.len();
    eprintln!(
        "postgres restarted at {:?}; {done_before} of {BEFORE} meters stored before, \
         {sent_during} jobs sent during the restart",
        d.started.elapsed()
    );
    let after: Vec<JobRequest> = during.map(|m| read_job(m)).collect();
    dispatch(&*d.bus, topics::JOBS, &after).await.unwrap();
    let url = d.db.url().to_string();
    let pg = wait_until_async(Duration::from_secs(30), "postgres answers again", || {
        let url = &url;
        async move { connect(url).await.ok() }
    })
    .await
    .unwrap();
    check(&mut d, &pg).await;
    // The API's pooled connections recovered too.
    // The API's pooled connections recovered too, and every job ended succeeded (its row is
    // finished just after its readings are on the bus: waited for).
    let api = common::api(&d.node).await;
    let mut last = serde_json::Value::Null;
    let n = d.ids.len();
    wait_until_async(Duration::from_secs(30), "every job succeeded", || {
        let (code, jobs) = api.get("/api/v1/jobs?state=succeeded").unwrap();
        let done = code == 200 && jobs["total"] == n;
        last = jobs;
        async move { done.then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {last}"));
    eprintln!("drill done in {:?}", d.started.elapsed());
    common::stop(&mut d.node).await;
    d.fleet.shutdown();
}
