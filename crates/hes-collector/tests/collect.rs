//! Collection against a simulated fleet over TCP: with faults, every reading the meters hold
//! reaches the bus exactly as they hold it, once; two collector loops never read a meter twice;
//! commands take effect, resume, and are audited.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use dlms::SystemTitle;
use hes_collector::bus::MemoryBus;
use hes_collector::counters::Counters;
use hes_collector::jobs::{Audit, Engine, EngineConfig};
use hes_collector::registry::Registry;
use hes_collector::secrets::Kek;
use hes_collector::session::Env;
use hes_model::{topics, Event, JobKind, JobResult, JobState, MeterId, Priority, Reading};
use hes_sim::data::Quantity;
use hes_sim::fleet::{Faults, Fleet, FleetConfig};
use hes_sim::Profile;

struct Rig {
    fleet: Arc<Fleet>,
    registry: Arc<Registry>,
    bus: Arc<MemoryBus>,
    engine: Arc<Engine>,
    stop: tokio::sync::watch::Sender<bool>,
}

async fn rig(first: [u8; 4], n: u32, loops: usize) -> Rig {
    let mut cfg = FleetConfig::new(n);
    cfg.first_host = IpAddr::from(first);
    cfg.profile_entries = 96;
    let fleet = Fleet::start(cfg).await.unwrap();
    let registry = Registry::in_memory(Kek::from_bytes(&[5; 32]).unwrap())
        .await
        .unwrap();
    let mut entries = fleet.inventory();
    for e in &mut entries {
        // Four meters per radio cell.
        let cell = e.serial.parse::<u32>().unwrap() / 4;
        e.groups = BTreeMap::from([("cell".to_string(), format!("cell-{cell}"))]);
    }
    registry.import(&entries, false).await.unwrap();
    let env = Arc::new(Env {
        registry: registry.clone(),
        counters: Arc::new(Counters::new(registry.state().clone())),
        client_title: SystemTitle(*b"HESTEST1"),
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(2),
    });
    let bus = Arc::new(MemoryBus::new());
    let engine = Engine::new(
        env,
        bus.clone(),
        EngineConfig {
            concurrency: 16,
            per_group: 2,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(1),
            job_timeout: Duration::from_secs(20),
            max_attempts: 6,
            ..EngineConfig::default()
        },
        Audit::in_memory(),
    );
    let (stop, rx) = tokio::sync::watch::channel(false);
    for _ in 0..loops {
        tokio::spawn(engine.clone().run(rx.clone()));
    }
    Rig {
        fleet,
        registry,
        bus,
        engine,
        stop,
    }
}

impl Rig {
    fn results(&self) -> Vec<JobResult> {
        self.bus.decode_all(topics::JOB_RESULTS)
    }

    fn readings(&self) -> Vec<Reading> {
        self.bus.decode_all(topics::READINGS_RAW)
    }

    fn finish(self) {
        let _ = self.stop.send(true);
        self.fleet.shutdown();
    }
}

/// Every load-profile reading on the bus equals the meter's own entry at its timestamp, every
/// entry the meter held when it was read is there, and nothing is there twice.
fn check_profile_against_truth(rig: &Rig) {
    let readings = rig.readings();
    let mut seen = HashSet::new();
    let mut by_meter: HashMap<MeterId, Vec<&Reading>> = HashMap::new();
    for r in &readings {
        assert!(seen.insert(r.key()), "duplicate {:?}", r.key());
        by_meter.entry(r.meter.clone()).or_default().push(r);
    }
    assert_eq!(by_meter.len(), rig.fleet.len(), "every meter delivered");
    for cell in rig.fleet.meters() {
        let id = MeterId(cell.spec.id());
        let got = &by_meter[&id];
        let last = got.iter().map(|r| r.time).max().unwrap();
        let meter = cell.lock();
        let truth = meter.profile_rows(Profile::Load, i64::MIN, last);
        // Four register columns per entry. The buffer may have moved on by one entry since it
        // was read (a quarter hour passed in between): the oldest entry read is then no longer
        // in the truth.
        assert!(
            got.len() == truth.len() * 4 || got.len() == (truth.len() + 1) * 4,
            "{id}: {} readings for {} entries",
            got.len(),
            truth.len()
        );
        let cols = [
            ("1.0.1.8.0.255", 1),
            ("1.0.2.8.0.255", 2),
            ("1.0.3.8.0.255", 3),
            ("1.0.4.8.0.255", 4),
        ];
        let index: HashMap<(String, i64), i64> = got
            .iter()
            .map(|r| ((r.obis.to_string(), r.time), r.value))
            .collect();
        for (t, row) in &truth {
            for (obis, col) in cols {
                let want = match row[col] {
                    dlms::Data::DoubleLongUnsigned(v) => i64::from(v),
                    _ => panic!(),
                };
                assert_eq!(
                    index.get(&(obis.to_string(), *t)),
                    Some(&want),
                    "{id} {obis} at {t}"
                );
            }
        }
        let units: HashSet<u8> = got.iter().map(|r| r.unit).collect();
        assert_eq!(units, HashSet::from([30, 32]), "Wh and varh");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reading_arrives_once_and_exact_despite_faults() {
    let rig = rig([127, 71, 0, 1], 24, 1).await;
    let ids: Vec<String> = rig.fleet.meters().iter().map(|c| c.spec.id()).collect();
    let fault = |i: usize| match i / 4 {
        0 => Faults {
            slow_ms: 150,
            ..Faults::default()
        },
        1 => Faults {
            ic_jump: 500_000,
            ..Faults::default()
        },
        2 => Faults {
            drop_mid_block: true,
            ..Faults::default()
        },
        3 => Faults {
            corrupt_frame: true,
            ..Faults::default()
        },
        4 => Faults {
            profile_anomalies_per_mille: 100,
            ..Faults::default()
        },
        _ => Faults {
            refused: true,
            ..Faults::default()
        },
    };
    for (i, id) in ids.iter().enumerate() {
        rig.fleet.set_faults(id, fault(i)).await.unwrap();
    }
    for id in &ids {
        rig.engine
            .submit(
                MeterId(id.clone()),
                JobKind::ReadLoadProfile { from: None },
                Priority::Scheduled,
                "scheduler",
            )
            .await
            .unwrap();
    }
    // The network heals after a while: the transient faults go, the retries succeed.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for (i, id) in ids.iter().enumerate() {
        if matches!(i / 4, 2 | 3 | 5) {
            rig.fleet.set_faults(id, Faults::default()).await.unwrap();
        }
    }
    assert!(
        rig.engine.wait_idle(Duration::from_secs(60)).await,
        "jobs left"
    );
    let results = rig.results();
    assert_eq!(results.len(), ids.len());
    for r in &results {
        assert_eq!(r.state, JobState::Succeeded, "{r:?}");
        let i = ids.iter().position(|id| *id == r.meter.0).unwrap();
        if matches!(i / 4, 2 | 3 | 5) {
            assert!(
                r.attempts > 1,
                "{} succeeded at once despite its fault",
                r.meter
            );
        }
    }
    check_profile_against_truth(&rig);
    // The next read continues after the last stored entry: nothing new, nothing twice.
    let before = rig.readings().len();
    for id in &ids {
        rig.engine
            .submit(
                MeterId(id.clone()),
                JobKind::ReadLoadProfile { from: None },
                Priority::Scheduled,
                "scheduler",
            )
            .await
            .unwrap();
    }
    assert!(rig.engine.wait_idle(Duration::from_secs(30)).await);
    let after = rig.readings();
    assert!(
        after.len() - before <= ids.len() * 4,
        "only entries captured since"
    );
    let keys: HashSet<_> = after.iter().map(Reading::key).collect();
    assert_eq!(keys.len(), after.len(), "no duplicates downstream");
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collector_loops_read_every_meter_once() {
    let rig = rig([127, 72, 0, 1], 40, 2).await;
    for c in rig.fleet.meters() {
        // Submitting twice does not queue twice.
        for _ in 0..2 {
            rig.engine
                .submit(
                    MeterId(c.spec.id()),
                    JobKind::ReadLoadProfile { from: None },
                    Priority::Scheduled,
                    "scheduler",
                )
                .await
                .unwrap();
        }
    }
    assert!(rig.engine.wait_idle(Duration::from_secs(60)).await);
    let results = rig.results();
    let per_meter: HashMap<MeterId, usize> = results.iter().fold(HashMap::new(), |mut m, r| {
        *m.entry(r.meter.clone()).or_default() += 1;
        m
    });
    assert_eq!(per_meter.len(), 40, "every meter read");
    assert!(per_meter.values().all(|&n| n == 1), "no meter read twice");
    let sessions = rig
        .fleet
        .stats()
        .connections
        .load(std::sync::atomic::Ordering::Relaxed);
    // One management session per meter, after one public read of the meter's counter record
    // (first contact: the collector starts above what the meter has seen).
    assert_eq!(sessions, 80, "two connections per meter");
    check_profile_against_truth(&rig);
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_take_effect_resume_and_are_audited() {
    let rig = rig([127, 73, 0, 1], 3, 1).await;
    let id = |i: usize| MeterId(rig.fleet.meters()[i].spec.id());
    // Relay: open, read back.
    let j = rig
        .engine
        .submit(
            id(0),
            JobKind::Relay { connect: false },
            Priority::OnDemand,
            "alice",
        )
        .await
        .unwrap();
    // Clock sync on a meter two minutes behind.
    rig.fleet
        .set_faults(
            &id(1).0,
            Faults {
                clock_drift_s: -120,
                ..Faults::default()
            },
        )
        .await
        .unwrap();
    let c = rig
        .engine
        .submit(id(1), JobKind::ClockSync, Priority::OnDemand, "bob")
        .await
        .unwrap();
    assert!(rig.engine.wait_idle(Duration::from_secs(30)).await);
    assert!(!rig.fleet.meters()[0].lock().relay_connected());
    let results = rig.results();
    let by_job = |j| results.iter().find(|r| r.job == j).unwrap().clone();
    assert_eq!(by_job(j).detail["relay_connected"], false);
    let drift = by_job(c).detail["drift_s"].as_i64().unwrap();
    assert!((-122..=-118).contains(&drift), "{drift}");
    assert!(rig.fleet.meters()[1].lock().clock_offset().abs() <= 2);

    // Firmware: a transfer that stopped half-way (another session sent some blocks) resumes.
    let image = hes_sim::objects::image::build_image("HES-SIM 2.0.0", &vec![0xA5; 4000]);
    rig.engine.add_image("fw-2.0.0", image.clone());
    {
        let m = &rig.fleet.meters()[2];
        let mut meter = m.lock();
        let ctx = dlms::server::RequestContext {
            client_sap: 1,
            mechanism: dlms::Mechanism::HighGmac,
            security: dlms::SecurityLevel::AuthenticatedEncrypted,
        };
        use dlms::server::Objects;
        let md = |method| dlms::MethodDescriptor {
            class_id: 18,
            instance: hes_sim::obis::IMAGE_TRANSFER,
            method,
        };
        let init = dlms::cosem::image_transfer::image_transfer_initiate_params(
            b"fw-2.0.0",
            image.len() as u32,
        );
        meter.action(&ctx, &md(1), Some(init)).unwrap();
        for (n, b) in image
            .chunks(hes_sim::IMAGE_BLOCK_SIZE as usize)
            .enumerate()
            .take(5)
        {
            let p = dlms::cosem::image_transfer::image_block_transfer_params(n as u32, b);
            meter.action(&ctx, &md(2), Some(p)).unwrap();
        }
    }
    let f = rig
        .engine
        .submit(
            id(2),
            JobKind::FirmwareUpgrade {
                image: "fw-2.0.0".into(),
            },
            Priority::OnDemand,
            "carol",
        )
        .await
        .unwrap();
    let k = rig
        .engine
        .submit(id(0), JobKind::RotateKeys, Priority::OnDemand, "dave")
        .await
        .unwrap();
    let cal = |name: &str, activate_at| JobKind::SetCalendar {
        name: name.into(),
        day_from_min: 6 * 60,
        day_to_min: 22 * 60,
        activate_at,
    };
    let now_cal = rig
        .engine
        .submit(id(1), cal("HES-TOU-2", None), Priority::OnDemand, "frank")
        .await
        .unwrap();
    assert!(rig.engine.wait_idle(Duration::from_secs(60)).await);
    let results = rig.results();
    let by_job = |j| {
        results
            .iter()
            .find(|r| r.job == j)
            .unwrap_or_else(|| panic!("no result of job {j} in {results:#?}"))
            .clone()
    };
    let fw = by_job(f);
    assert_eq!(fw.state, JobState::Succeeded, "{fw:?}");
    assert_eq!(fw.detail["blocks_already_there"], 5);
    assert_eq!(fw.detail["firmware"], "HES-SIM 2.0.0");
    assert_eq!(
        rig.fleet.meters()[2].lock().firmware_version(),
        "HES-SIM 2.0.0"
    );
    // The calendar is active on the meter, as the job read back.
    assert_eq!(by_job(now_cal).detail["active"], "HES-TOU-2");
    assert_eq!(rig.fleet.meters()[1].lock().calendar_name(), b"HES-TOU-2");
    // A calendar for later stays passive until then.
    let later = rig
        .engine
        .submit(
            id(1),
            cal(
                "HES-TOU-3",
                Some(hes_collector::session::unix_now() + 86_400),
            ),
            Priority::OnDemand,
            "frank",
        )
        .await
        .unwrap();
    assert!(rig.engine.wait_idle(Duration::from_secs(30)).await);
    assert_eq!(rig.engine.job(later).unwrap().state, JobState::Succeeded);
    assert_eq!(rig.fleet.meters()[1].lock().calendar_name(), b"HES-TOU-2");
    // Keys: the meter and the registry agree on the new keys, and reads go on with them.
    let kr = by_job(k);
    assert_eq!(kr.state, JobState::Succeeded, "{kr:?}");
    let record = rig.registry.get(&id(0)).unwrap();
    let open = rig.registry.open_keys(&record).unwrap();
    assert_eq!(open.ek, rig.fleet.meters()[0].lock().keys().ek);
    let r = rig
        .engine
        .submit(id(0), JobKind::ReadInstant, Priority::OnDemand, "erin")
        .await
        .unwrap();
    assert!(rig.engine.wait_idle(Duration::from_secs(30)).await);
    assert_eq!(rig.engine.job(r).unwrap().state, JobState::Succeeded);
    let truth = rig.fleet.meters()[0]
        .lock()
        .energy(Quantity::ImportActive, 0, i64::MAX / 4);
    assert!(truth > 0);
    // Every command is in the audit trail with who asked; reads are not.
    let audit = rig.engine.audit.records();
    let who: Vec<&str> = audit.iter().map(|a| a.requested_by.as_str()).collect();
    assert_eq!(who.len(), 6, "{who:?}");
    for name in ["alice", "bob", "carol", "dave", "frank"] {
        assert!(who.contains(&name), "{name} missing from {who:?}");
    }
    let events: Vec<Event> = rig.bus.decode_all(topics::EVENTS);
    assert!(events.is_empty());
    rig.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_read_each_meter_once_per_cycle_within_the_window() {
    use hes_collector::schedule::{self, Schedule, ScheduleExt, When};
    let rig = rig([127, 74, 0, 1], 8, 1).await;
    let s = Schedule {
        name: "instant".into(),
        group: Some(("cell".into(), "cell-1".into())),
        read: JobKind::ReadInstant,
        when: When::Every(2),
        window_s: 1,
        jitter_s: 0,
        deadline_s: None,
    };
    // Cell 1 holds serials 4..=7.
    assert_eq!(s.meters(&rig.registry).len(), 4);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(schedule::run(
        vec![s],
        rig.engine.clone(),
        rig.registry.clone(),
        rx,
    ));
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let _ = stop.send(true);
    let _ = task.await;
    assert!(rig.engine.wait_idle(Duration::from_secs(20)).await);
    let results = rig.results();
    let mut cycles: HashMap<MeterId, Vec<i64>> = HashMap::new();
    for r in &results {
        assert_eq!(r.state, JobState::Succeeded, "{r:?}");
        cycles
            .entry(r.meter.clone())
            .or_default()
            .push(r.started_at.unwrap());
    }
    assert_eq!(
        cycles.len(),
        4,
        "only the group's meters: {:?}",
        cycles.keys()
    );
    for (m, starts) in &cycles {
        // The slot due just before the start (caught up at once), then two or three cycles
        // in 5.5 s, each read in its own 2 s cycle.
        assert!((3..=4).contains(&starts.len()), "{m}: {starts:?}");
        let mut s = starts.clone();
        s.sort_unstable();
        assert!(s.windows(2).all(|w| w[1] - w[0] >= 1), "{m}: {s:?}");
    }
    rig.finish();
}

/// A read asked for again while the first is queued is one job, and its result names both
/// requests (what an API node or a scheduler waits for on `hes.job-results`).
#[tokio::test]
async fn a_repeated_request_joins_the_queued_job_and_its_result_names_both() {
    let rig = rig([127, 45, 0, 1], 1, 0).await;
    let meter = MeterId(rig.fleet.meters()[0].spec.id());
    let ask = |request: &str| hes_model::JobRequest {
        request: request.into(),
        meter: meter.clone(),
        kind: JobKind::ReadLoadProfile { from: None },
        priority: Priority::Scheduled,
        requested_by: "test".into(),
        not_before_ms: 0,
        job: 0,
    };
    let a = rig.engine.submit_request(&ask("node1-1")).await.unwrap();
    let b = rig.engine.submit_request(&ask("sched@0/m")).await.unwrap();
    assert_eq!(a, b, "one job for both");
    // No engine loop was running: start one now, and wait for the result.
    let (_stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(rig.engine.clone().run(rx));
    assert!(rig.engine.wait_idle(Duration::from_secs(30)).await);
    let results = rig.results();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].state, JobState::Succeeded);
    assert_eq!(
        results[0].requests,
        vec!["node1-1".to_string(), "sched@0/m".to_string()]
    );
    rig.finish();
}
