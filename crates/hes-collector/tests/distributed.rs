//! The distributed mode on both bus adapters (in-process, and the real Kafka named by
//! `HES_KAFKA_BROKERS`): jobs dispatched on a jobs topic keyed by meter, two collectors in one
//! consumer group; every meter is read exactly once and every reading equals the meter's own.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dlms::SystemTitle;
use hes_bus::kafka::{KafkaBus, BROKERS_ENV};
use hes_bus::{Bus, MemoryBus};
use hes_collector::counters::Counters;
use hes_collector::distributed::{dispatch, run_collector, JobRequest};
use hes_collector::jobs::{Audit, Engine, EngineConfig};
use hes_collector::registry::Registry;
use hes_collector::secrets::Kek;
use hes_collector::session::Env;
use hes_model::{topics, JobKind, JobResult, JobState, MeterId, Priority, Reading};
use hes_sim::fleet::{Fleet, FleetConfig};
use hes_sim::Profile;

/// A serial base no earlier run used: the output topics of a long-running Kafka keep the
/// readings of earlier runs, told apart by meter id.
fn fresh_serials() -> u32 {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 10;
    10_000_000 + (millis % 4_000_000) as u32 * 1000 + n * 100
}

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test-{}-{nanos}-{what}", std::process::id())
}

fn kafka() -> Arc<dyn Bus> {
    let brokers = std::env::var(BROKERS_ENV).unwrap_or_default();
    assert!(
        !brokers.trim().is_empty(),
        "{BROKERS_ENV} is not set: run `eval \"$(scripts/services up)\"` (scripts/test does)"
    );
    Arc::new(KafkaBus::connect(&brokers).unwrap())
}

async fn two_collectors_share_a_fleet(bus: Arc<dyn Bus>, first: [u8; 4], settle: Duration) {
    let jobs_topic = unique("jobs");
    let group = unique("collectors");
    let n = 30u32;
    let mut cfg = FleetConfig::new(n);
    cfg.first_host = IpAddr::from(first);
    cfg.first_serial = fresh_serials();
    cfg.profile_entries = 96;
    let fleet = Fleet::start(cfg).await.unwrap();
    bus.ensure_topics(
        &[
            &jobs_topic,
            topics::READINGS_RAW,
            topics::JOB_RESULTS,
            topics::EVENTS,
        ],
        6,
    )
    .await
    .unwrap();
    // What the test reads back, from the start of the output topics.
    let mut out = bus
        .subscribe(
            &[topics::READINGS_RAW, topics::JOB_RESULTS],
            &unique("observer"),
        )
        .await
        .unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let state: Arc<dyn hes_store::StateStore> =
        Arc::new(hes_store::SqliteStore::in_memory().await.unwrap());
    for c in 0..2 {
        // Both collectors share one store, as two nodes share PostgreSQL.
        let registry = Registry::open(state.clone(), Kek::from_bytes(&[9; 32]).unwrap())
            .await
            .unwrap();
        if c == 0 {
            registry.import(&fleet.inventory(), false).await.unwrap();
        } else {
            registry.refresh().await.unwrap();
        }
        let env = Arc::new(Env {
            counters: Arc::new(Counters::new(registry.state().clone())),
            registry,
            client_title: SystemTitle(*b"HESCOL\0\0"),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(3),
        });
        let engine = Engine::new(
            env,
            bus.clone(),
            EngineConfig {
                concurrency: 8,
                ..EngineConfig::default()
            },
            Audit::in_memory(),
        );
        tokio::spawn(engine.clone().run(rx.clone()));
        let consumer = bus.subscribe(&[&jobs_topic], &group).await.unwrap();
        tokio::spawn(run_collector(consumer, engine, 32, rx.clone()));
    }
    // Let the group settle: jobs taken before the second member joins would move with their
    // partition and run twice (at-least-once across a rebalance; downstream keeps one).
    tokio::time::sleep(settle).await;
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
    dispatch(&*bus, &jobs_topic, &jobs).await.unwrap();
    let ours: HashSet<&MeterId> = ids.iter().collect();
    let mut results: Vec<JobResult> = Vec::new();
    let mut readings: Vec<Reading> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while results.len() < ids.len() && Instant::now() < deadline {
        let Some(d) = out.next(Duration::from_millis(500)).await.unwrap() else {
            continue;
        };
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
    }
    // Readings precede their job's result on the bus, but on other partitions: drain a little.
    let drain = Instant::now() + Duration::from_secs(3);
    while Instant::now() < drain {
        if let Some(d) = out.next(Duration::from_millis(200)).await.unwrap() {
            if d.topic == topics::READINGS_RAW {
                for r in d.decode::<Reading>().unwrap() {
                    if ours.contains(&r.meter) {
                        readings.push(r);
                    }
                }
            }
        }
    }
    let _ = stop.send(true);
    let per_meter = results.iter().fold(HashMap::new(), |mut m, r| {
        *m.entry(r.meter.clone()).or_insert(0) += 1;
        m
    });
    assert_eq!(per_meter.len(), ids.len(), "every meter read");
    assert!(per_meter.values().all(|&k| k == 1), "no meter read twice");
    assert!(results.iter().all(|r| r.state == JobState::Succeeded));
    // Each result names the request it answered.
    for r in &results {
        let asked = jobs.iter().find(|j| j.meter == r.meter).unwrap();
        assert!(r.requests.contains(&asked.request), "{r:?}");
    }
    let keys: HashSet<_> = readings.iter().map(Reading::key).collect();
    assert_eq!(keys.len(), readings.len(), "no duplicate readings");
    for cell in fleet.meters() {
        let id = MeterId(cell.spec.id());
        let got: HashMap<(String, i64), i64> = readings
            .iter()
            .filter(|r| r.meter == id)
            .map(|r| ((r.obis.to_string(), r.time), r.value))
            .collect();
        let last = got.keys().map(|k| k.1).max().unwrap();
        let truth = cell.lock().profile_rows(Profile::Load, i64::MIN, last);
        // The meter's buffer may have moved on by one entry since it was read (a quarter hour
        // passed in between): the oldest entry read is then no longer in the truth.
        assert!(
            got.len() == truth.len() * 4 || got.len() == (truth.len() + 1) * 4,
            "{id}: {} readings for {} rows",
            got.len(),
            truth.len()
        );
        for (t, row) in truth {
            let want = match row[1] {
                dlms::Data::DoubleLongUnsigned(v) => i64::from(v),
                _ => panic!(),
            };
            assert_eq!(
                got.get(&("1.0.1.8.0.255".to_string(), t)),
                Some(&want),
                "{id} {t}"
            );
        }
    }
    fleet.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_share_a_fleet_in_process() {
    two_collectors_share_a_fleet(Arc::new(MemoryBus::new()), [127, 75, 0, 1], Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_share_a_fleet_over_kafka() {
    two_collectors_share_a_fleet(kafka(), [127, 76, 0, 1], Duration::from_secs(6)).await;
}

/// The distributed scheduler: each cycle's jobs go on the jobs topic, one request per meter of
/// the schedule's group, each at its place in the window.
#[tokio::test]
async fn a_schedule_dispatches_its_cycles_on_the_jobs_topic() {
    use hes_collector::schedule::{run_into, Schedule, Sink, When};
    let registry = Registry::in_memory(Kek::from_bytes(&[9u8; 32]).unwrap())
        .await
        .unwrap();
    use hes_model::inventory::{Endpoint, InventoryEntry, Transport};
    let fleet_inventory: Vec<InventoryEntry> = (1..=4u32)
        .map(|i| InventoryEntry {
            id: format!("SCH{i:05}"),
            serial: format!("{i:08}"),
            logical_device_name: format!("SCH{i:013}"),
            endpoint: Endpoint {
                host: format!("127.3.0.{i}"),
                port: 4059,
                transport: Transport::Wrapper,
                client_sap_public: 16,
                client_sap_reader: 17,
                client_sap_management: 1,
                hdlc_server_logical: 1,
                hdlc_server_physical: 16,
            },
            password: "12345678".into(),
            ek: "000102030405060708090A0B0C0D0E0F".into(),
            ak: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF".into(),
            kek: "101112131415161718191A1B1C1D1E1F".into(),
            system_title: format!("53434800{i:08X}"),
            security: "hls-gmac-authenticated-encrypted".into(),
            max_pdu: 1024,
            quirks: vec![],
            groups: Default::default(),
        })
        .collect();
    let mut fleet_inventory = fleet_inventory;
    for e in &mut fleet_inventory {
        let n: u32 = e.serial.parse().unwrap();
        e.groups = BTreeMap::from([("feeder".to_string(), format!("f{}", n % 2))]);
    }
    registry.import(&fleet_inventory, false).await.unwrap();
    let bus = Arc::new(MemoryBus::new());
    let schedule = Schedule {
        name: "lp".into(),
        group: Some(("feeder".into(), "f1".into())),
        read: JobKind::ReadLoadProfile { from: None },
        when: When::Every(1),
        window_s: 10,
        jitter_s: 0,
        deadline_s: None,
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let token = registry
        .state()
        .acquire_lease("scheduler", "test", 60_000)
        .await
        .unwrap()
        .unwrap();
    let fence = hes_collector::schedule::Fence {
        lease: "scheduler".into(),
        token,
    };
    let sink = Sink::Bus {
        bus: bus.clone(),
        topic: "sched.jobs".into(),
    };
    let task = tokio::spawn(run_into(
        vec![schedule.clone()],
        sink.clone(),
        registry.clone(),
        fence.clone(),
        rx,
    ));
    // Each record goes out when its job comes due (its place in the window), not with the
    // cycle: a record seen is never early. Waits for one cycle of both meters.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut seen_at: Vec<i64> = Vec::new();
    while seen_at.len() < 2 && std::time::Instant::now() < deadline {
        let n = bus.len("sched.jobs");
        let now = hes_collector::session::unix_now();
        seen_at.resize(n, now);
        bus.changed(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    task.await.unwrap();
    let (records, _) = bus.read("sched.jobs", 0);
    assert!(records.len() >= 2, "one cycle of two meters at least");
    let requests: Vec<JobRequest> = records
        .iter()
        .map(|r| hes_proto::decode_job_request(&r.payload).unwrap())
        .collect();
    for (r, seen) in requests.iter().zip(&seen_at) {
        // Published at most the lead early (one more second: the pacer's clock is in seconds).
        let earliest = r.not_before_ms / 1000 - hes_collector::schedule::DISPATCH_LEAD_S - 1;
        assert!(*seen >= earliest, "{r:?} seen at {seen}, before {earliest}");
    }
    // Only feeder f1 (odd serials), each placed in the 10 s window by its own offset.
    for r in &requests {
        assert!(
            ["SCH00001", "SCH00003"].contains(&r.meter.0.as_str()),
            "{r:?}"
        );
        assert_eq!(r.requested_by, "scheduler");
        assert_eq!(r.kind, JobKind::ReadLoadProfile { from: None });
        // Each request names its job's row in the store, where every node sees it.
        let job = registry.state().job(r.job).await.unwrap().unwrap();
        // The cycle's start is in the job's request (`name@start/meter`); the read is placed
        // within the 10 s window after it.
        let start: i64 = r
            .request
            .strip_prefix("lp@")
            .and_then(|rest| rest.split('/').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{r:?}"));
        let offset_ms = r.not_before_ms - start * 1000;
        assert!((0..10_000).contains(&offset_ms), "{r:?} at {offset_ms} ms");
        assert_eq!(
            (job.meter.clone(), job.requested_by.as_str()),
            (r.meter.clone(), "scheduler")
        );
    }
    // A slot fires once, and only under the current token.
    use hes_collector::schedule::fire;
    let slot = 1_700_000_000;
    assert!(fire(&schedule, slot, &sink, &registry, &fence)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        fire(&schedule, slot, &sink, &registry, &fence)
            .await
            .unwrap(),
        None
    );
    let stale = hes_collector::schedule::Fence {
        lease: "scheduler".into(),
        token: token - 1,
    };
    assert_eq!(
        fire(&schedule, slot + 60, &sink, &registry, &stale)
            .await
            .unwrap(),
        None
    );
}
