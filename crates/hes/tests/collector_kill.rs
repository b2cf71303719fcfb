//! A collector killed mid-job loses no job: two `hes collector` processes in one consumer group
//! on the real Kafka (`HES_KAFKA_BROKERS`); the first is killed (SIGKILL) while it holds jobs;
//! the second inherits its partitions and every meter ends up read, with every value the
//! meter's own.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hes_bus::kafka::{KafkaBus, BROKERS_ENV};
use hes_bus::Bus;
use hes_collector::distributed::{dispatch, JobRequest};
use hes_model::{topics, JobKind, JobResult, JobState, MeterId, Priority, Reading};
use hes_sim::fleet::{Faults, Fleet, FleetConfig};
use hes_sim::Profile;
use hes_testkit::{service_env, Proc, TempDir};

fn unique(what: &str) -> String {
    hes_testkit::unique(&format!("kill-{what}"))
}

fn collector(brokers: &str, inventory: &std::path::Path, topic: &str, group: &str) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hes"));
    // Both collectors share the registry and the invocation counters in PostgreSQL.
    cmd.env(
        "HES_KEK",
        "0000000000000000000000000000000000000000000000000000000000000002",
    );
    cmd.args(["collector", "--inventory"])
        .arg(inventory)
        .args([
            "--brokers",
            brokers,
            "--jobs-topic",
            topic,
            "--group",
            group,
        ])
        .args(["--concurrency", "4", "--timeout", "5"]);
    Proc::spawn("hes collector", cmd).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_killed_mid_job_loses_no_job() {
    let brokers = service_env(BROKERS_ENV).unwrap();
    let bus: Arc<dyn Bus> = Arc::new(KafkaBus::connect(&brokers).unwrap());
    let topic = unique("jobs");
    let group = unique("collectors");
    let mut cfg = FleetConfig::new(24);
    cfg.first_host = IpAddr::from([127, 77, 0, 1]);
    cfg.first_serial = hes_testkit::inventory::fresh_serials(24);
    cfg.profile_entries = 96;
    let fleet = Fleet::start(cfg).await.unwrap();
    // Slow meters: every job takes a while, so the first collector is mid-job when killed.
    for m in fleet.meters() {
        let slow = Faults {
            slow_ms: 150,
            ..Faults::default()
        };
        fleet.set_faults(&m.spec.id(), slow).await.unwrap();
    }
    let dir = TempDir::new("hes-collector-kill").unwrap();
    let inventory = dir.join("inventory.json");
    hes_testkit::inventory::write_json(&inventory, &fleet.inventory()).unwrap();
    bus.ensure_topics(&[&topic, topics::READINGS_RAW, topics::JOB_RESULTS], 6)
        .await
        .unwrap();
    let mut out = bus
        .subscribe(
            &[topics::READINGS_RAW, topics::JOB_RESULTS],
            &unique("observer"),
        )
        .await
        .unwrap();
    let mut first = collector(&brokers, &inventory, &topic, &group);
    let ids: Vec<MeterId> = fleet
        .meters()
        .iter()
        .map(|m| MeterId(m.spec.id()))
        .collect();
    let jobs: Vec<JobRequest> = ids
        .iter()
        .map(|m| JobRequest {
            request: unique(&m.0),
            meter: m.clone(),
            kind: JobKind::ReadLoadProfile { from: None },
            priority: Priority::Scheduled,
            requested_by: "dispatcher".into(),
            not_before_ms: 0,
            job: 0,
        })
        .collect();
    dispatch(&*bus, &topic, &jobs).await.unwrap();
    let ours: HashSet<&MeterId> = ids.iter().collect();
    let mut results: Vec<JobResult> = Vec::new();
    let mut readings: Vec<Reading> = Vec::new();
    let take = |d: hes_bus::Delivery, results: &mut Vec<JobResult>, readings: &mut Vec<Reading>| {
        if d.topic == topics::JOB_RESULTS {
            for r in d.decode::<JobResult>().unwrap() {
                if ours.contains(&r.meter) {
                    results.push(r);
                }
            }
        } else {
            for r in d.decode::<Reading>().unwrap() {
                if ours.contains(&r.meter) {
                    readings.push(r);
                }
            }
        }
    };
    // Let the first collector finish a few jobs, then kill it mid-way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while results.len() < 3 && Instant::now() < deadline {
        if let Some(d) = out.next(Duration::from_millis(200)).await.unwrap() {
            take(d, &mut results, &mut readings);
        }
    }
    assert!(results.len() >= 3, "the first collector did not work");
    assert!(
        results.len() < ids.len(),
        "killed too late to prove anything"
    );
    first.kill();
    let killed_at = results.len();
    let second = collector(&brokers, &inventory, &topic, &group);
    let done = |results: &Vec<JobResult>| {
        results
            .iter()
            .filter(|r| r.state == JobState::Succeeded)
            .map(|r| &r.meter)
            .collect::<HashSet<_>>()
            .len()
    };
    // Every meter read, and its readings delivered: they precede their job's result on the
    // bus, but on other partitions, so they may come a little later.
    let has_readings = |readings: &Vec<Reading>| {
        readings
            .iter()
            .map(|r| &r.meter)
            .collect::<HashSet<_>>()
            .len()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while (done(&results) < ids.len() || has_readings(&readings) < ids.len())
        && Instant::now() < deadline
    {
        if let Some(d) = out.next(Duration::from_millis(200)).await.unwrap() {
            take(d, &mut results, &mut readings);
        }
    }
    assert_eq!(
        has_readings(&readings),
        ids.len(),
        "every meter's readings on the bus"
    );
    assert_eq!(done(&results), ids.len(), "every meter read after the kill");
    assert!(results.len() > killed_at, "the second collector took over");
    // Every entry of every meter is there, equal to the meter's; a job the killed collector had
    // finished but not committed may have run twice (same values: downstream keeps one).
    let mut values: HashMap<(MeterId, String, i64), HashSet<i64>> = HashMap::new();
    for r in &readings {
        values
            .entry((r.meter.clone(), r.obis.to_string(), r.time))
            .or_default()
            .insert(r.value);
    }
    assert!(
        values.values().all(|v| v.len() == 1),
        "a value changed between reads"
    );
    for cell in fleet.meters() {
        let id = MeterId(cell.spec.id());
        let last = values
            .keys()
            .filter(|k| k.0 == id)
            .map(|k| k.2)
            .max()
            .unwrap_or_else(|| panic!("{id}: no readings"));
        let truth = cell.lock().profile_rows(Profile::Load, i64::MIN, last);
        for (t, row) in truth {
            let want = match row[1] {
                dlms::Data::DoubleLongUnsigned(v) => i64::from(v),
                _ => panic!(),
            };
            let got = values.get(&(id.clone(), "1.0.1.8.0.255".to_string(), t));
            assert_eq!(got, Some(&HashSet::from([want])), "{id} at {t}");
        }
    }
    drop((first, second));
    fleet.shutdown();
}
