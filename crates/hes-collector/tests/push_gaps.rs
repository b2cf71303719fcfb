//! Pushes that never arrive are noticed and read by pull: a fleet pushes its intervals, two
//! meters' pushes get lost on the way (the simulator's `lose_pushes` fault: the data stays in
//! their load profiles), and the head-end reads those intervals from them, equal to the
//! meters' truth, while the other meters go on pushing.

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

use dlms::{ObisCode, SystemTitle};
use hes_collector::bus::{Bus, MemoryBus};
use hes_collector::counters::Counters;
use hes_collector::gaps::{fill_push_gaps, GapConfig, REQUESTED_BY};
use hes_collector::jobs::{Audit, Engine, EngineConfig};
use hes_collector::push::{serve_pushes, PushListenerConfig};
use hes_collector::registry::Registry;
use hes_collector::schedule::Sink;
use hes_collector::secrets::Kek;
use hes_collector::session::Env;
use hes_model::{topics, Reading, Source};
use hes_sim::data::Quantity;
use hes_sim::faults::Faults;
use hes_sim::fleet::{Clock, Fleet, FleetConfig, ListenMode, PushConfig};
use hes_store::JobFilter;
use tokio::net::TcpListener;

const A_PLUS: ObisCode = ObisCode::new(1, 0, 1, 8, 0, 255);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn intervals_whose_push_was_lost_are_read_by_pull() {
    let socket = TcpListener::bind("127.63.255.1:0").await.unwrap();
    let dest = socket.local_addr().unwrap();
    let mut cfg = FleetConfig::new(20);
    cfg.first_host = IpAddr::from([127, 64, 0, 1]);
    cfg.profile_entries = 96;
    cfg.listen = ListenMode::Shared;
    cfg.port = 0;
    cfg.push = Some(PushConfig::new(dest));
    // A boundary every two real seconds; meter time a day behind, never ahead of the clock.
    cfg.clock = Clock::catching_up(86_400, 450.0);
    let fleet = Fleet::start(cfg).await.unwrap();
    let inventory = fleet.inventory();
    let registry = Registry::in_memory(Kek::from_bytes(&[7; 32]).unwrap())
        .await
        .unwrap();
    registry.import(&inventory, false).await.unwrap();
    let bus = Arc::new(MemoryBus::new());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let dyn_bus: Arc<dyn Bus> = bus.clone();
    let listener = tokio::spawn(serve_pushes(
        socket,
        registry.clone(),
        dyn_bus.clone(),
        PushListenerConfig::default(),
        rx.clone(),
    ));
    let env = Arc::new(Env {
        registry: registry.clone(),
        counters: Arc::new(Counters::new(registry.state().clone())),
        client_title: SystemTitle(*b"HESTEST1"),
        connect_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(5),
    });
    let engine = Engine::new(
        env,
        dyn_bus,
        EngineConfig {
            concurrency: 8,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(1),
            job_timeout: Duration::from_secs(20),
            ..EngineConfig::default()
        },
        Audit::in_memory(),
    );
    tokio::spawn(engine.clone().run(rx.clone()));
    tokio::spawn(fill_push_gaps(
        registry.clone(),
        Sink::Engine(engine.clone()),
        GapConfig {
            grace: Duration::from_secs(3),
            every: Duration::from_millis(250),
            ..GapConfig::default()
        },
        rx.clone(),
    ));

    // (meter, time) of A+ by source, from the bus.
    let mut offset = 0;
    let mut pushed: HashMap<i64, HashSet<String>> = HashMap::new();
    let mut pulled: HashMap<(String, i64), i64> = HashMap::new();
    let mut read = |pushed: &mut HashMap<i64, HashSet<String>>,
                    pulled: &mut HashMap<(String, i64), i64>| {
        let (records, next) = bus.read(topics::READINGS_RAW, offset);
        offset = next;
        for r in records
            .iter()
            .flat_map(|rec| hes_collector::bus::Payload::decode_record(&rec.payload).unwrap())
        {
            let r: Reading = r;
            if r.obis != A_PLUS {
                continue;
            }
            if r.source == Source::Push {
                pushed.entry(r.time).or_default().insert(r.meter.0.clone());
            } else {
                pulled.insert((r.meter.0.clone(), r.time), r.value);
            }
        }
    };

    // A boundary every meter pushed; then two meters' pushes are lost from there on.
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        assert!(Instant::now() < deadline, "no boundary pushed by all 20");
        bus.changed(Duration::from_millis(100)).await;
        read(&mut pushed, &mut pulled);
        if let Some(t) = pushed
            .iter()
            .filter(|(_, m)| m.len() == inventory.len())
            .map(|(&t, _)| t)
            .max()
        {
            break t;
        }
    };
    let lost: Vec<String> = [3usize, 7]
        .iter()
        .map(|&i| inventory[i].id.clone())
        .collect();
    for id in &lost {
        fleet
            .set_faults(
                id,
                Faults {
                    lose_pushes: true,
                    ..Faults::default()
                },
            )
            .await
            .unwrap();
    }

    // A later boundary the other eighteen pushed and the two did not, read from the two by
    // pull, as the meters hold it.
    let deadline = Instant::now() + Duration::from_secs(90);
    let filled = loop {
        assert!(
            Instant::now() < deadline,
            "the lost pushes were not read by pull within 90 s (pulled: {:?})",
            pulled.keys().collect::<Vec<_>>()
        );
        bus.changed(Duration::from_millis(100)).await;
        read(&mut pushed, &mut pulled);
        let found = pushed
            .iter()
            .filter(|(&t, m)| {
                t > first + 900
                    && m.len() == inventory.len() - lost.len()
                    && lost.iter().all(|id| !m.contains(id))
                    && lost.iter().all(|id| pulled.contains_key(&(id.clone(), t)))
            })
            .map(|(&t, _)| t)
            .next();
        if let Some(t) = found {
            break t;
        }
    };
    for id in &lost {
        let truth = fleet
            .meter(id)
            .unwrap()
            .lock()
            .energy(Quantity::ImportActive, 0, filled);
        assert_eq!(
            pulled[&(id.clone(), filled)],
            i64::from(truth as u32),
            "{id} at {filled}"
        );
    }
    // The reads are jobs in the store, on behalf of the gap finder.
    let (jobs, _) = registry
        .state()
        .list_jobs(&JobFilter::default(), 0, 1000)
        .await
        .unwrap();
    let mut per_meter: BTreeMap<String, usize> = BTreeMap::new();
    for j in jobs.iter().filter(|j| j.requested_by == REQUESTED_BY) {
        *per_meter.entry(j.meter.0.clone()).or_default() += 1;
    }
    for id in &lost {
        assert!(
            per_meter.contains_key(id),
            "no pull read of {id}: {per_meter:?}"
        );
    }
    let _ = stop.send(true);
    fleet.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(5), listener).await;
}
