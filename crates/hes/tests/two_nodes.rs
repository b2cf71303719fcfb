//! State lives in the store, not in a node: node A rotates a meter's keys through its API and
//! stops; node B, started afterwards on the same PostgreSQL database and Kafka namespace, reads
//! that meter with the new keys (the registry's, sealed under the KEK) and counters that go on
//! from A's (leased from the store): the meter saw no replayed invocation counter.
//!
//! Needs PostgreSQL and Kafka (`eval "$(scripts/services up)"`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{env, NodeConfig};
use hes_bus::kafka::{KafkaBus, BROKERS_ENV};
use hes_bus::Bus;
use hes_collector::distributed::{dispatch, JobRequest};
use hes_model::{topics, JobKind, MeterId, Priority};
use hes_sim::fleet::{Fleet, FleetConfig};
use hes_sim::Profile;
use hes_store::Store;
use hes_testkit::{unique, wait_until_async, TempDir, TestDb};

const METERS: u32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_reads_with_the_keys_the_first_rotated() {
    let brokers = env(BROKERS_ENV);
    let namespace = format!("{}.", unique("two-nodes"));
    let mut cfg = FleetConfig::new(METERS);
    cfg.first_host = IpAddr::from([127, 92, 0, 1]);
    cfg.first_serial = hes_testkit::inventory::fresh_serials(METERS);
    cfg.profile_entries = 96;
    let fleet = Fleet::start(cfg).await.unwrap();
    let cell = fleet.meters()[0].clone();
    let meter = cell.spec.id();

    // The inventory goes into the store once; no node reads a file afterwards.
    let dir = TempDir::new("hes-two-nodes").unwrap();
    let inventory = dir.join("inventory.json");
    hes_testkit::inventory::write_json(&inventory, &fleet.inventory()).unwrap();
    let db = TestDb::create().await.unwrap();
    common::import(&inventory, db.url());
    let version_before = common::key_version(db.url(), &meter);
    let (sim_version_before, sim_keys_before) = {
        let m = cell.lock();
        (m.key_version(), m.keys())
    };

    // Node A: rotates the meter's keys through its API.
    let node = |roles: Vec<&'static str>, api: Option<&str>| NodeConfig {
        roles,
        database_url: db.url().to_string(),
        brokers: brokers.clone(),
        namespace: namespace.clone(),
        partitions: 2,
        api_node: api.map(str::to_string),
    };
    let config_a =
        node(vec!["api", "collector", "validate", "process"], Some("a")).write(&dir.join("a.toml"));
    let mut a = common::start("node A", &config_a).await;
    let api = common::api(&a).await;
    let (code, accepted) = api
        .post(
            &format!("/api/v1/meters/{meter}/commands"),
            &serde_json::json!({"command": "key_rotation"}),
        )
        .unwrap();
    assert_eq!(code, 202, "{accepted}");
    let job = accepted["job_id"].as_u64().unwrap();
    let mut state = serde_json::Value::Null;
    wait_until_async(Duration::from_secs(90), "the rotation finished", || {
        common::assert_running(&mut a);
        (_, state) = api.get(&format!("/api/v1/jobs/{job}")).unwrap();
        let done = state["state"] == "succeeded" || state["state"] == "failed";
        async move { done.then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {state}"));
    assert_eq!(state["state"], "succeeded", "{state}");

    // The meter holds new keys, and the registry has them under a higher version.
    {
        let m = cell.lock();
        assert!(
            m.key_version() > sim_version_before,
            "the meter's keys did not change"
        );
        assert_ne!(m.keys().ek, sim_keys_before.ek);
        assert_ne!(m.keys().ak, sim_keys_before.ak);
    }
    let version_after = common::key_version(db.url(), &meter);
    assert!(
        version_after > version_before,
        "registry key version {version_before} -> {version_after}"
    );
    common::stop(&mut a).await;

    // Node B: no api, started after A has gone; a load-profile read put on its jobs topic.
    let config_b = node(vec!["collector", "validate", "process"], None).write(&dir.join("b.toml"));
    let mut b = common::start("node B", &config_b).await;
    let bus: Arc<dyn Bus> = Arc::new(
        KafkaBus::connect(&brokers)
            .unwrap()
            .with_namespace(&namespace),
    );
    let read = JobRequest {
        request: unique("read"),
        meter: MeterId(meter.clone()),
        kind: JobKind::ReadLoadProfile { from: None },
        priority: Priority::OnDemand,
        requested_by: "two-nodes test".into(),
        not_before_ms: 0,
        // No row yet: the collector creates it.
        job: 0,
    };
    dispatch(&*bus, topics::JOBS, &[read]).await.unwrap();

    // Stored readings of that meter prove B associated with the new keys.
    let store = hes_store::PgStore::connect(db.url()).await.unwrap();
    let id = MeterId(meter.clone());
    let energy = dlms::ObisCode::new(1, 0, 1, 8, 0, 255);
    let stored = wait_until_async(Duration::from_secs(120), "B's readings stored", || {
        common::assert_running(&mut b);
        let (store, id) = (&store, &id);
        async move {
            let r = store
                .meter_readings(id, Some(energy), i64::MIN, i64::MAX, 100_000)
                .await
                .unwrap();
            (!r.is_empty()).then_some(r)
        }
    })
    .await
    .unwrap();
    // What was stored is what the meter holds.
    let truth = cell.lock().profile_rows(Profile::Load, i64::MIN, i64::MAX);
    for r in &stored {
        let row = truth
            .iter()
            .find(|(t, _)| *t == r.reading.time)
            .unwrap_or_else(|| panic!("no profile entry at {}", r.reading.time));
        assert_eq!(
            row.1[1],
            dlms::Data::DoubleLongUnsigned(r.reading.value as u32),
            "{meter} at {}",
            r.reading.time
        );
    }
    assert_eq!(fleet.total_replays(), 0, "a meter saw a replayed counter");
    drop(store);
    common::stop(&mut b).await;
    fleet.shutdown();
}
