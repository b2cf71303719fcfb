//! `hes push-listen --brokers`: pushes from a simulated fleet, deciphered by the listener, land
//! on the real Kafka (`HES_KAFKA_BROKERS`) as readings equal to the meters' own.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use hes_bus::kafka::{KafkaBus, BROKERS_ENV};
use hes_bus::Bus;
use hes_model::{topics, MeterId, Reading, Source};
use hes_sim::data::Quantity;
use hes_sim::fleet::{Clock, Fleet, FleetConfig, ListenMode, PushConfig};
use hes_testkit::{service_env, Proc, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_reach_kafka_through_the_listener() {
    let brokers = service_env(BROKERS_ENV).unwrap();
    let dir = TempDir::new("push-kafka").unwrap();
    // The inventory first (the fleet's keys depend on its serials, not on where it pushes).
    // Serials no earlier run used: the readings topic keeps earlier runs' readings.
    let mut cfg = FleetConfig::new(20);
    cfg.first_host = IpAddr::from([127, 79, 0, 1]);
    cfg.first_serial = hes_testkit::inventory::fresh_serials(20);
    cfg.listen = ListenMode::Shared;
    cfg.port = 0;
    let inventory = dir.join("inventory.json");
    {
        let f = Fleet::start(cfg.clone()).await.unwrap();
        hes_testkit::inventory::write_json(&inventory, &f.inventory()).unwrap();
        f.shutdown();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hes"));
    cmd.args([
        "push-listen",
        "--listen",
        "127.0.0.1:0",
        "--brokers",
        &brokers,
    ])
    .arg("--inventory")
    .arg(&inventory);
    let listener = Proc::spawn("hes push-listen", cmd).unwrap();
    let port: u16 = listener
        .wait_for_async(Duration::from_secs(60), "LISTENING", |l| {
            l.starts_with("LISTENING ")
        })
        .await
        .unwrap()
        .trim_start_matches("LISTENING ")
        .parse()
        .unwrap();
    let bus = KafkaBus::connect(&brokers).unwrap();
    let mut out = bus
        .subscribe(
            &[topics::READINGS_RAW],
            &hes_testkit::unique("push-observer"),
        )
        .await
        .unwrap();
    let mut push = PushConfig::new(format!("127.0.0.1:{port}").parse().unwrap());
    push.interval_s = Some(900);
    cfg.push = Some(push);
    cfg.clock = Clock::new(None, 3600.0);
    let fleet = Fleet::start(cfg).await.unwrap();
    let ids: HashSet<MeterId> = fleet
        .meters()
        .iter()
        .map(|m| MeterId(m.spec.id()))
        .collect();
    let mut seen: HashMap<MeterId, Vec<Reading>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < ids.len() && Instant::now() < deadline {
        if let Some(d) = out.next(Duration::from_millis(300)).await.unwrap() {
            for r in d.decode::<Reading>().unwrap() {
                if ids.contains(&r.meter) {
                    seen.entry(r.meter.clone()).or_default().push(r);
                }
            }
        }
    }
    fleet.shutdown();
    assert_eq!(seen.len(), ids.len(), "every meter's pushes on Kafka");
    for (id, readings) in &seen {
        let cell = fleet.meter(&id.0).unwrap();
        for r in readings
            .iter()
            .filter(|r| r.obis.to_string() == "1.0.1.8.0.255")
        {
            assert_eq!(r.source, Source::Push);
            let truth = cell.lock().energy(Quantity::ImportActive, 0, r.time);
            assert_eq!(r.value, truth as i64, "{id} at {}", r.time);
        }
    }
    drop(listener);
}
