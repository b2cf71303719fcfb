//! The push listener against the simulator's fleet: a thousand meters pushing at once all
//! arrive, exactly once and equal to the meters' truth; alarms become events; hostile input is
//! rejected, counted, and does not stop the listener. Each test uses its own 127.x range.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dlms::security::{CipherKeys, SecurityContext};
use dlms::xdlms::{Apdu, DataNotification};
use dlms::{Codec, Data, ObisCode, SecurityLevel, SystemTitle};
use hes_collector::bus::{Bus, MemoryBus};
use hes_collector::push::{serve_pushes, PushListenerConfig, PushStats};
use hes_collector::registry::Registry;
use hes_collector::secrets::Kek;
use hes_model::inventory::InventoryEntry;
use hes_model::{topics, Event, Reading, Source};
use hes_sim::data::Quantity;
use hes_sim::fleet::{Clock, Fleet, FleetConfig, ListenMode, PushConfig, PushKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct Listener {
    addr: SocketAddr,
    stats: Arc<PushStats>,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Listener {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the listener stops")
            .unwrap()
            .unwrap();
    }
}

/// Serves pushes from an already bound socket (so that meters may connect before the registry
/// is filled: they wait in the backlog).
fn serve(
    socket: TcpListener,
    registry: Arc<Registry>,
    bus: Arc<MemoryBus>,
    cfg: PushListenerConfig,
) -> Listener {
    let addr = socket.local_addr().unwrap();
    let stats = cfg.stats.clone();
    let (stop, shutdown) = watch::channel(false);
    let bus: Arc<dyn Bus> = bus;
    let task = tokio::spawn(serve_pushes(socket, registry, bus, cfg, shutdown));
    Listener {
        addr,
        stats,
        stop,
        task,
    }
}

async fn registry(entries: &[InventoryEntry]) -> Arc<Registry> {
    let r = Registry::in_memory(Kek::from_bytes(&[1; 32]).unwrap())
        .await
        .unwrap();
    r.import(entries, false).await.unwrap();
    r
}

async fn fleet(first: [u8; 4], n: u32, f: impl FnOnce(&mut FleetConfig)) -> Arc<Fleet> {
    let mut cfg = FleetConfig::new(n);
    cfg.first_host = IpAddr::from(first);
    cfg.profile_entries = 96;
    f(&mut cfg);
    Fleet::start(cfg).await.unwrap()
}

fn count(c: &AtomicU64) -> u64 {
    PushStats::get(c)
}

/// Waits (at most `limit`) until `done` holds.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

const ENERGY: [(ObisCode, Quantity); 4] = [
    (ObisCode::new(1, 0, 1, 8, 0, 255), Quantity::ImportActive),
    (ObisCode::new(1, 0, 2, 8, 0, 255), Quantity::ExportActive),
    (ObisCode::new(1, 0, 3, 8, 0, 255), Quantity::ImportReactive),
    (ObisCode::new(1, 0, 4, 8, 0, 255), Quantity::ExportReactive),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_meters_pushing_at_once_are_all_received() {
    let socket = TcpListener::bind("127.61.255.1:0").await.unwrap();
    let dest = socket.local_addr().unwrap();
    let started = Instant::now();
    let f = fleet([127, 62, 0, 1], 1000, |c| {
        c.listen = ListenMode::Shared;
        c.port = 0;
        c.push = Some(PushConfig::new(dest));
        // 900 s of meter time every quarter of a real second.
        c.clock = Clock::new(None, 3600.0);
    })
    .await;
    let inv = f.inventory();
    let bus = Arc::new(MemoryBus::new());
    let l = serve(
        socket,
        registry(&inv).await,
        bus.clone(),
        PushListenerConfig::default(),
    );
    let serving = Instant::now();

    // (meter, obis, time) -> value, and per boundary the meters with all four registers.
    let mut values: HashMap<(String, String, i64), i64> = HashMap::new();
    let mut per_time: HashMap<i64, HashMap<String, usize>> = HashMap::new();
    let mut duplicates = Vec::new();
    let mut offset = 0;
    let mut complete = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while complete.is_none() && Instant::now() < deadline {
        bus.changed(Duration::from_millis(100)).await;
        let (records, next) = bus.read(topics::READINGS_RAW, offset);
        offset = next;
        for r in records
            .iter()
            .flat_map(|rec| hes_collector::bus::Payload::decode_record(&rec.payload).unwrap())
        {
            let r: Reading = r;
            assert_eq!(r.source, Source::Push);
            let key = (r.meter.0.clone(), r.obis.to_string(), r.time);
            if values.insert(key.clone(), r.value).is_some() {
                duplicates.push(key);
            }
            let n = per_time
                .entry(r.time)
                .or_default()
                .entry(r.meter.0)
                .or_default();
            *n += 1;
        }
        complete = per_time
            .iter()
            .find(|(_, m)| m.len() == inv.len() && m.values().all(|&n| n == 4))
            .map(|(&t, _)| t);
    }
    eprintln!(
        "1,000 meters: a complete boundary on the bus {:?} after the fleet started, {:?} \
         after the listener did ({} readings, {} pushes sent, {} connections)",
        started.elapsed(),
        serving.elapsed(),
        values.len(),
        PushStats::get(&f.stats().pushes_sent),
        count(&l.stats.connections)
    );
    let t = complete.expect("every meter's interval push of one boundary within 20 s");
    assert!(duplicates.is_empty(), "duplicates: {duplicates:?}");
    for m in &inv {
        assert!(per_time[&t].contains_key(&m.id), "{} missing", m.id);
    }
    // Every reading received, of every boundary, is the meter's truth at that time.
    for ((meter, obis, time), value) in &values {
        let q = ENERGY
            .iter()
            .find(|(o, _)| o.to_string() == *obis)
            .map(|&(_, q)| q)
            .unwrap();
        let truth = f.meter(meter).unwrap().lock().energy(q, 0, *time);
        assert_eq!(*value, i64::from(truth as u32), "{meter} {obis} at {time}");
    }
    assert_eq!(count(&l.stats.rejected_unknown_meter), 0);
    assert_eq!(count(&l.stats.rejected_crypto), 0);
    assert_eq!(count(&l.stats.rejected_malformed), 0);
    assert!(count(&l.stats.notifications) >= 1000);
    f.shutdown();
    l.stop().await;
}

#[tokio::test]
async fn a_tamper_alarm_arrives_as_events_40_and_41() {
    let socket = TcpListener::bind("127.61.255.2:0").await.unwrap();
    let dest = socket.local_addr().unwrap();
    let f = fleet([127, 63, 0, 1], 2, |c| {
        let mut p = PushConfig::new(dest);
        p.interval_s = None;
        c.push = Some(p);
    })
    .await;
    let inv = f.inventory();
    let bus = Arc::new(MemoryBus::new());
    let l = serve(
        socket,
        registry(&inv).await,
        bus.clone(),
        PushListenerConfig::default(),
    );
    let id = &inv[1].id;
    let before = f.meter(id).unwrap().lock().now();
    f.tamper(id).unwrap();
    let got = until(Duration::from_secs(10), || {
        bus.decode_all::<Event>(topics::EVENTS).len() >= 2
    })
    .await;
    assert!(got, "two alarm pushes");
    let events = bus.decode_all::<Event>(topics::EVENTS);
    let codes: HashSet<u16> = events.iter().map(|e| e.code).collect();
    assert_eq!(codes, HashSet::from([40, 41]));
    for e in &events {
        assert_eq!(e.meter.0, *id);
        assert_eq!(e.log, ObisCode::new(0, 0, 25, 9, 1, 255));
        assert_eq!(e.source, Source::Push);
        assert!(
            (e.time - before).abs() <= 5,
            "event time {} ~ {before}",
            e.time
        );
    }
    let alarms = bus.decode_all::<Reading>(topics::READINGS_RAW);
    assert_eq!(alarms.len(), 2);
    for r in &alarms {
        assert_eq!(r.obis, ObisCode::new(0, 0, 97, 98, 0, 255));
        assert_eq!((r.class_id, r.attribute, r.unit), (1, 2, 255));
        assert_ne!(r.value & i64::from(hes_sim::alarm::TAMPER), 0);
    }
    assert_eq!(count(&l.stats.events), 2);
    f.shutdown();
    l.stop().await;
}

fn hex16(s: &str) -> [u8; 16] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn title(m: &InventoryEntry) -> SystemTitle {
    SystemTitle::from_slice(&hex::decode(&m.system_title).unwrap()).unwrap()
}

/// A wrapper frame to `wport` carrying `apdu`.
fn wrap(wport: u16, apdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    dlms::wrapper::encode(1, wport, apdu, &mut out).unwrap();
    out
}

/// `n` ciphered with general-glo under `title` and the keys of `keys_of`, at counter `ic`.
fn cipher(
    level: SecurityLevel,
    title: SystemTitle,
    keys_of: &InventoryEntry,
    ic: u32,
    n: DataNotification,
) -> Vec<u8> {
    let mut ctx = SecurityContext::new(
        level,
        title,
        CipherKeys {
            ek: hex16(&keys_of.ek),
            ak: hex16(&keys_of.ak),
        },
        ic,
    );
    let apdu = ctx
        .protect_general_glo(&Apdu::DataNotification(n).to_bytes())
        .unwrap();
    wrap(102, &apdu)
}

/// Sends `bytes` on a new connection and waits until the listener closes it (all of it has
/// been handled by then).
async fn send(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The listener may close (even reset) a connection it gave up on before all is written.
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("the listener closes the connection")
        .ok();
}

#[tokio::test]
async fn hostile_input_is_rejected_counted_and_survived() {
    let socket = TcpListener::bind("127.61.255.3:0").await.unwrap();
    let f = fleet([127, 64, 0, 1], 3, |c| {
        let mut p = PushConfig::new(socket.local_addr().unwrap());
        p.interval_s = None;
        c.push = Some(p);
    })
    .await;
    let inv = f.inventory();
    // The third meter is not in the registry.
    let bus = Arc::new(MemoryBus::new());
    let cfg = PushListenerConfig {
        idle_timeout: Duration::from_millis(300),
        max_frame: 1024,
        ..PushListenerConfig::default()
    };
    let l = serve(socket, registry(&inv[..2]).await, bus.clone(), cfg);
    let s = l.stats.clone();
    let (m0, m1, m2) = (&inv[0], &inv[1], &inv[2]);
    let cell = |m: &InventoryEntry| f.meter(&m.id).unwrap().clone();
    let t0 = cell(m0).lock().now().div_euclid(900) * 900;
    let interval =
        |m: &InventoryEntry, t: i64| cell(m).lock().push_notification(PushKind::Interval(t), 1);
    let readings = || bus.decode_all::<Reading>(topics::READINGS_RAW).len();

    // A good push (the simulator's own frame), then the same bytes again: a replay.
    let good = cell(m0)
        .lock()
        .push_frame(PushKind::Interval(t0), 102)
        .unwrap();
    send(l.addr, &good).await;
    assert_eq!((count(&s.notifications), readings()), (1, 4));
    send(l.addr, &good).await;
    assert_eq!(count(&s.rejected_replay), 1);

    // Garbage: not a wrapper header; a frame cut short; a frame above max_frame.
    send(l.addr, b"GET / HTTP/1.1\r\nHost: meter\r\n\r\n").await;
    send(l.addr, &wrap(102, &[0xDB; 40])[..20]).await;
    let mut big = wrap(102, &[0; 2000]);
    big.truncate(100);
    send(l.addr, &big).await;
    assert_eq!(count(&s.rejected_malformed), 3);
    // The wrong wrapper port; an unknown body layout; another meter's logical device name.
    let ok = cipher(
        SecurityLevel::AuthenticatedEncrypted,
        title(m0),
        m0,
        100,
        interval(m0, t0 + 900),
    );
    let mut wrong_port = ok.clone();
    wrong_port[5] = 103;
    send(l.addr, &wrong_port).await;
    let mut n = interval(m0, t0 + 900);
    let Data::Structure(body) = &mut n.body else {
        panic!()
    };
    body.push(Data::Null);
    send(
        l.addr,
        &cipher(SecurityLevel::AuthenticatedEncrypted, title(m0), m0, 101, n),
    )
    .await;
    send(
        l.addr,
        &cipher(
            SecurityLevel::AuthenticatedEncrypted,
            title(m0),
            m0,
            102,
            interval(m1, t0),
        ),
    )
    .await;
    assert_eq!(count(&s.rejected_malformed), 6);

    // An unknown system title (a meter of the fleet the registry does not have).
    let unknown = cell(m2)
        .lock()
        .push_frame(PushKind::Interval(t0), 102)
        .unwrap();
    send(l.addr, &unknown).await;
    assert_eq!(count(&s.rejected_unknown_meter), 1);

    // Meter 0's title with meter 1's keys; a plain push; an authenticated-only push.
    send(
        l.addr,
        &cipher(
            SecurityLevel::AuthenticatedEncrypted,
            title(m0),
            m1,
            103,
            interval(m0, t0),
        ),
    )
    .await;
    send(
        l.addr,
        &wrap(102, &Apdu::DataNotification(interval(m0, t0)).to_bytes()),
    )
    .await;
    send(
        l.addr,
        &cipher(
            SecurityLevel::Authenticated,
            title(m0),
            m0,
            104,
            interval(m0, t0),
        ),
    )
    .await;
    assert_eq!(count(&s.rejected_crypto), 3);

    // An idle connection is closed after the idle timeout.
    let mut idle = TcpStream::connect(l.addr).await.unwrap();
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(3), idle.read(&mut byte))
        .await
        .expect("closed when idle");
    assert!(matches!(n, Ok(0) | Err(_)));

    // Still serving: the push the wrong port spoiled is accepted now, and two pushes of two
    // meters on one connection both are.
    send(l.addr, &ok).await;
    let mut two = cipher(
        SecurityLevel::AuthenticatedEncrypted,
        title(m0),
        m0,
        110,
        interval(m0, t0 + 1800),
    );
    two.extend(
        cell(m1)
            .lock()
            .push_frame(PushKind::Interval(t0), 102)
            .unwrap(),
    );
    send(l.addr, &two).await;
    assert_eq!(count(&s.notifications), 4);
    assert_eq!(readings(), 16, "nothing rejected reached the bus");
    assert_eq!(
        (
            count(&s.rejected_replay),
            count(&s.rejected_malformed),
            count(&s.rejected_unknown_meter),
            count(&s.rejected_crypto),
        ),
        (1, 6, 1, 3)
    );
    let on_bus: HashSet<(String, i64)> = bus
        .decode_all::<Reading>(topics::READINGS_RAW)
        .into_iter()
        .map(|r| (r.meter.0, r.time))
        .collect();
    assert_eq!(
        on_bus,
        HashSet::from([
            (m0.id.clone(), t0),
            (m0.id.clone(), t0 + 900),
            (m0.id.clone(), t0 + 1800),
            (m1.id.clone(), t0),
        ])
    );
    f.shutdown();
    l.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let socket = TcpListener::bind("127.61.255.4:0").await.unwrap();
    let cfg = PushListenerConfig {
        max_connections: 1,
        idle_timeout: Duration::from_secs(5),
        ..PushListenerConfig::default()
    };
    let l = serve(socket, registry(&[]).await, Arc::new(MemoryBus::new()), cfg);
    let _first = TcpStream::connect(l.addr).await.unwrap();
    assert!(until(Duration::from_secs(2), || count(&l.stats.connections) == 1).await);
    let mut second = TcpStream::connect(l.addr).await.unwrap();
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(2), second.read(&mut byte))
        .await
        .expect("turned away at once");
    assert!(matches!(n, Ok(0) | Err(_)));
    assert_eq!(count(&l.stats.connections_turned_away), 1);
    l.stop().await;
}

/// A bus that refuses the first batch, then passes everything to a `MemoryBus`.
struct RefusesOnce {
    refused: std::sync::atomic::AtomicBool,
    inner: MemoryBus,
}

impl Bus for RefusesOnce {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        records: Vec<hes_collector::bus::Record>,
    ) -> hes_collector::bus::BoxFuture<'a, Result<(), hes_collector::bus::BusError>> {
        if !self.refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(async {
                Err(hes_collector::bus::BusError::Refused("broker down".into()))
            });
        }
        self.inner.publish(topic, records)
    }
}

#[tokio::test]
async fn a_push_the_bus_refused_is_counted_and_accepted_when_sent_again() {
    let socket = TcpListener::bind("127.61.255.5:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let f = fleet([127, 65, 0, 1], 1, |c| {
        let mut p = PushConfig::new(addr);
        p.interval_s = None;
        c.push = Some(p);
    })
    .await;
    let inv = f.inventory();
    let bus = Arc::new(RefusesOnce {
        refused: false.into(),
        inner: MemoryBus::new(),
    });
    let (stop, shutdown) = watch::channel(false);
    let cfg = PushListenerConfig::default();
    let stats = cfg.stats.clone();
    let task = tokio::spawn(serve_pushes(
        socket,
        registry(&inv).await,
        bus.clone(),
        cfg,
        shutdown,
    ));
    let cell = f.meter(&inv[0].id).unwrap().clone();
    let t = cell.lock().now().div_euclid(900) * 900;
    let frame = cell.lock().push_frame(PushKind::Interval(t), 102).unwrap();
    send(addr, &frame).await;
    assert_eq!(count(&stats.bus_failures), 1);
    assert_eq!(count(&stats.notifications), 0);
    // The meter (or anyone holding the bytes) sends it again: not a replay, it never landed.
    send(addr, &frame).await;
    assert_eq!(count(&stats.notifications), 1);
    assert_eq!(
        bus.inner.decode_all::<Reading>(topics::READINGS_RAW).len(),
        4
    );
    // Once landed, the same bytes are a replay.
    send(addr, &frame).await;
    assert_eq!(count(&stats.rejected_replay), 1);
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    f.shutdown();
}

/// Replay protection lives in the store: a push replayed after the listener restarted, or
/// sent to another listener behind the same load balancer, is refused; the same push given
/// to two listeners at once lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_are_refused_across_restarts_and_listeners() {
    let first = TcpListener::bind("127.61.255.6:0").await.unwrap();
    let f = fleet([127, 66, 0, 1], 1, |c| {
        let mut p = PushConfig::new(first.local_addr().unwrap());
        p.interval_s = None;
        c.push = Some(p);
    })
    .await;
    let inv = f.inventory();
    // One store behind every listener (as PostgreSQL is behind every node).
    let reg = registry(&inv).await;
    let bus = Arc::new(MemoryBus::new());
    let cell = f.meter(&inv[0].id).unwrap().clone();
    let t = cell.lock().now().div_euclid(900) * 900;
    let frame = cell.lock().push_frame(PushKind::Interval(t), 102).unwrap();

    let a = serve(
        first,
        reg.clone(),
        bus.clone(),
        PushListenerConfig::default(),
    );
    send(a.addr, &frame).await;
    assert_eq!(count(&a.stats.notifications), 1);
    a.stop.send(true).unwrap();
    a.task.await.unwrap().unwrap();

    // "Restarted": a new listener process over the same store.
    let b = serve(
        TcpListener::bind("127.61.255.7:0").await.unwrap(),
        reg.clone(),
        bus.clone(),
        PushListenerConfig::default(),
    );
    send(b.addr, &frame).await;
    assert_eq!(count(&b.stats.rejected_replay), 1);
    assert_eq!(count(&b.stats.notifications), 0);

    // A fresh push sent to two listeners at once: one of them takes it.
    let c = serve(
        TcpListener::bind("127.61.255.8:0").await.unwrap(),
        reg.clone(),
        bus.clone(),
        PushListenerConfig::default(),
    );
    let fresh = cell
        .lock()
        .push_frame(PushKind::Interval(t + 900), 102)
        .unwrap();
    tokio::join!(send(b.addr, &fresh), send(c.addr, &fresh));
    let landed = count(&b.stats.notifications) + count(&c.stats.notifications);
    let refused = count(&b.stats.rejected_replay) + count(&c.stats.rejected_replay);
    assert_eq!(
        (landed, refused),
        (1, 2),
        "one copy lands, the other is a replay"
    );
    assert_eq!(
        bus.decode_all::<Reading>(topics::READINGS_RAW).len(),
        8,
        "two pushes of 4 readings each"
    );
    for l in [b, c] {
        l.stop.send(true).unwrap();
        l.task.await.unwrap().unwrap();
    }
    f.shutdown();
}
