//! Meters behind emulated links: round trips and stalls a client can measure, refusals at the
//! configured rate, drops, the bad-input faults (a trickling meter, one that hangs mid-block),
//! and pushes retried as the push setup says. Every bound is a lower one or loose: the machine
//! may be loaded. Each test uses its own 127.x range so they can run in parallel.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dlms::client::ClientConfig;
use dlms::{AttributeDescriptor, SystemTitle};
use dlms_net::{Connection, NetError};
use hes_sim::fleet::{Faults, Fleet, FleetConfig, InventoryEntry, PushConfig, Role};
use hes_sim::link::{LinkProfile, NetworkMix};
use hes_sim::obis;
use tokio::io::AsyncReadExt;

fn config(m: &InventoryEntry, timeout: Duration) -> ClientConfig {
    let mut cfg = m
        .client_config(
            Role::Public,
            SystemTitle(*b"TST\0\0\0\0\x01"),
            1,
            vec![7; 16],
        )
        .unwrap();
    cfg.response_timeout = timeout;
    cfg
}

async fn open(m: &InventoryEntry, timeout: Duration) -> Result<Connection, NetError> {
    Connection::connect(
        &m.endpoint.host,
        m.endpoint.port,
        config(m, timeout),
        Duration::from_secs(5),
    )
    .await
}

fn clock() -> AttributeDescriptor {
    AttributeDescriptor {
        class_id: 8,
        instance: obis::CLOCK,
        attribute: 2,
    }
}

fn load_profile() -> AttributeDescriptor {
    AttributeDescriptor {
        class_id: 7,
        instance: obis::LOAD_PROFILE,
        attribute: 2,
    }
}

/// A profile for every meter of the fleet.
fn only(p: LinkProfile) -> NetworkMix {
    NetworkMix {
        shares: vec![(Arc::new(p), 1.0)],
    }
}

fn profile(name: &str, f: impl FnOnce(&mut LinkProfile)) -> LinkProfile {
    let mut p = LinkProfile::ideal();
    p.name = name.into();
    f(&mut p);
    p
}

async fn fleet(first: [u8; 4], n: u32, f: impl FnOnce(&mut FleetConfig)) -> Arc<Fleet> {
    let mut cfg = FleetConfig::new(n);
    cfg.first_host = IpAddr::from(first);
    cfg.profile_entries = 96;
    f(&mut cfg);
    Fleet::start(cfg).await.unwrap()
}

/// Waits until `f` holds (a generous deadline: the machine may be loaded).
async fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    hes_testkit::wait_until_async(Duration::from_secs(secs), what, || {
        std::future::ready(f().then_some(()))
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_one_second_round_trip_shows_in_every_exchange() {
    let slow = profile("slow", |p| p.rtt_ms = [1000, 1000]);
    let f = fleet([127, 150, 0, 1], 1, |c| c.network = only(slow)).await;
    let m = f.meters()[0].inventory_entry();
    assert_eq!(m.groups.get("link").map(String::as_str), Some("slow"));
    let t = Instant::now();
    let mut c = open(&m, Duration::from_secs(20)).await.unwrap();
    // The TCP handshake and the association: two round trips.
    let associated = t.elapsed();
    assert!(associated >= Duration::from_secs(2), "{associated:?}");
    let t = Instant::now();
    c.get(clock(), None).await.unwrap();
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    let truth = f.meters()[0].link.truth();
    assert_eq!((truth.profile.as_str(), truth.rtt_ms), ("slow", 1000));
    assert_eq!(truth.sessions, 1);
    f.shutdown();
}

#[tokio::test]
async fn connects_fail_at_the_configured_rate_and_are_counted() {
    let flaky = profile("flaky", |p| p.connect_fail = 0.5);
    let f = fleet([127, 151, 0, 1], 1, |c| c.network = only(flaky)).await;
    let m = f.meters()[0].inventory_entry();
    let mut failed = 0;
    for _ in 0..60 {
        match open(&m, Duration::from_secs(5)).await {
            Ok(c) => {
                let _ = c.release().await;
            }
            Err(_) => failed += 1,
        }
    }
    // Binomial(60, 0.5): 10..50 holds but for one run in ten million.
    assert!((10..=50).contains(&failed), "{failed} of 60 failed");
    let truth = f.meters()[0].link.truth();
    assert_eq!(truth.connects_refused, failed);
    assert_eq!(truth.sessions, 60 - failed);
    f.shutdown();
}

#[tokio::test]
async fn drops_and_stalls_happen_and_are_recorded() {
    let lossy = profile("lossy", |p| p.drop = 1.0);
    let stalling = profile("stalling", |p| {
        p.stall = 1.0;
        p.stall_ms = [500, 500];
    });
    let f = fleet([127, 152, 0, 1], 2, |c| {
        c.network = NetworkMix {
            shares: vec![(Arc::new(lossy), 0.5), (Arc::new(stalling), 0.5)],
        }
    })
    .await;
    let by = |name: &str| {
        f.meters()
            .iter()
            .find(|c| c.link.profile.name == name)
            .cloned()
    };
    if let Some(cell) = by("lossy") {
        // The association's answer gets through; the link goes at the next one.
        let mut c = open(&cell.inventory_entry(), Duration::from_secs(5))
            .await
            .unwrap();
        let e = c.get(clock(), None).await.unwrap_err();
        assert!(matches!(e.reason(), "link" | "timeout"), "{e}");
        wait_for("the drop counted", 10, || cell.link.truth().drops == 1).await;
    }
    if let Some(cell) = by("stalling") {
        let t = Instant::now();
        let mut c = open(&cell.inventory_entry(), Duration::from_secs(10))
            .await
            .unwrap();
        c.get(clock(), None).await.unwrap();
        // The handshake, the association and the read each stalled half a second.
        assert!(
            t.elapsed() >= Duration::from_millis(1500),
            "{:?}",
            t.elapsed()
        );
        let truth = cell.link.truth();
        assert_eq!((truth.stalls, truth.stall_ms), (3, 1500));
    }
    assert!(by("lossy").is_some() && by("stalling").is_some());
    f.shutdown();
}

#[tokio::test]
async fn a_trickling_or_hanging_meter_ends_by_timeout_and_slows_no_other() {
    let f = fleet([127, 153, 0, 1], 3, |_| {}).await;
    let inv = f.inventory();
    let trickle = Faults {
        trickle: true,
        ..Faults::default()
    };
    let hang = Faults {
        stall_mid_block: true,
        ..Faults::default()
    };
    f.set_faults(&inv[0].id, trickle).await.unwrap();
    f.set_faults(&inv[1].id, hang).await.unwrap();
    let short = Duration::from_secs(2);
    let trickled = tokio::spawn({
        let m = inv[0].clone();
        async move { open(&m, short).await.map(|_| ()) }
    });
    let hung = tokio::spawn({
        let m = inv[1].clone();
        async move {
            let mut c = open(&m, short).await.unwrap();
            // A clock read fits one APDU; the load profile needs blocks, and hangs.
            c.get(clock(), None).await.unwrap();
            c.get(load_profile(), None).await.map(|_| ())
        }
    });
    // Meanwhile a healthy meter answers at once.
    let mut c = open(&inv[2], Duration::from_secs(5)).await.unwrap();
    c.get(load_profile(), None).await.unwrap();
    let e = trickled.await.unwrap().unwrap_err();
    assert_eq!(e.reason(), "timeout", "{e}");
    let e = hung.await.unwrap().unwrap_err();
    assert_eq!(e.reason(), "timeout", "{e}");
    f.shutdown();
}

#[tokio::test]
async fn pushes_are_retried_after_the_repetition_delay_until_delivered() {
    // A free address with nothing listening yet: the first attempt is refused.
    let dest = std::net::TcpListener::bind("127.154.255.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let f = fleet([127, 154, 0, 1], 1, |c| {
        let mut p = PushConfig::new(dest);
        p.interval_s = None;
        p.attempts = 6;
        p.repetition_delay_s = 1;
        c.push = Some(p);
    })
    .await;
    let cell = f.meters()[0].clone();
    assert_eq!(cell.lock().push_retry(true), (5, 1));
    f.tamper(&cell.spec.id()).unwrap();
    wait_for("a refused attempt", 30, || {
        cell.link.truth().push_attempts >= 1
    })
    .await;
    let listener = tokio::net::TcpListener::bind(dest).await.unwrap();
    // A tamper raises two alarms (cover opened, cover closed): two pushes.
    for _ in 0..2 {
        let (mut s, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
            .await
            .unwrap()
            .unwrap();
        let mut all = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut all))
            .await
            .unwrap()
            .unwrap();
        assert!(!all.is_empty());
    }
    wait_for("the deliveries counted", 10, || {
        cell.link.truth().pushes_delivered == 2
    })
    .await;
    let truth = cell.link.truth();
    assert!(truth.push_attempts >= 3, "{truth:?}");
    assert_eq!(truth.pushes_given_up, 0);
    let sent = f
        .stats()
        .pushes_sent
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(sent, 2);
    f.shutdown();
}

#[tokio::test]
async fn a_head_end_sets_the_push_retries_as_on_a_real_meter() {
    let f = fleet([127, 157, 0, 1], 1, |c| {
        let mut p = PushConfig::new("127.157.255.1:4059".parse().unwrap());
        p.interval_s = None;
        c.push = Some(p);
    })
    .await;
    let m = f.meters()[0].inventory_entry();
    let mut cfg = m
        .client_config(
            Role::Management,
            SystemTitle(*b"TST\0\0\0\0\x01"),
            1,
            vec![7; 16],
        )
        .unwrap();
    cfg.response_timeout = Duration::from_secs(5);
    let mut c = Connection::connect(
        &m.endpoint.host,
        m.endpoint.port,
        cfg,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let at = |attribute| AttributeDescriptor {
        class_id: 40,
        instance: obis::PUSH_ALARM,
        attribute,
    };
    use dlms::xdlms::{DataAccessResult, GetDataResult};
    use dlms::Data;
    let ok = DataAccessResult::Success;
    assert_eq!(c.set(at(6), None, Data::Unsigned(7)).await.unwrap(), ok);
    assert_eq!(
        c.set(at(7), None, Data::LongUnsigned(30)).await.unwrap(),
        ok
    );
    let bad = c.set(at(7), None, Data::Unsigned(3)).await.unwrap();
    assert_eq!(bad, DataAccessResult::TypeUnmatched);
    match c.get(at(6), None).await.unwrap() {
        GetDataResult::Data(d) => assert_eq!(d, Data::Unsigned(7)),
        e => panic!("{e:?}"),
    }
    assert_eq!(f.meters()[0].lock().push_retry(true), (7, 30));
    // The interval push setup keeps its own.
    assert_eq!(f.meters()[0].lock().push_retry(false), (2, 1));
    f.shutdown();
}

#[tokio::test]
async fn a_push_is_given_up_after_its_last_retry() {
    let dest = std::net::TcpListener::bind("127.155.255.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let f = fleet([127, 155, 0, 1], 1, |c| {
        let mut p = PushConfig::new(dest);
        p.interval_s = None;
        p.attempts = 3;
        p.repetition_delay_s = 0;
        c.push = Some(p);
    })
    .await;
    let cell = f.meters()[0].clone();
    f.tamper(&cell.spec.id()).unwrap();
    // Two alarms (cover opened and closed), three attempts each.
    wait_for("the pushes given up", 30, || {
        cell.link.truth().pushes_given_up == 2
    })
    .await;
    let truth = cell.link.truth();
    assert_eq!((truth.push_attempts, truth.pushes_delivered), (6, 0));
    f.shutdown();
}

async fn control(
    fleet: &Arc<Fleet>,
    path: &str,
    host: Option<&str>,
) -> (axum::http::StatusCode, serde_json::Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut req = axum::http::Request::get(path);
    if let Some(h) = host {
        req = req.header("host", h);
    }
    let r = hes_sim::control::router(fleet.clone())
        .oneshot(req.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = r.status();
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn the_control_api_answers_loopback_names_only_and_keys_on_request() {
    let gprs = NetworkMix::parse("gprs=1", None).unwrap();
    let f = fleet([127, 156, 0, 1], 2, |c| c.network = gprs).await;
    for host in [
        "localhost:8059",
        "127.0.0.1:8059",
        "127.9.9.9",
        "[::1]:8059",
        "LOCALHOST",
    ] {
        let (status, _) = control(&f, "/stats", Some(host)).await;
        assert_eq!(status, 200, "{host}");
    }
    // DNS rebinding: a page of evil.example resolved to loopback sends its own name.
    for host in [
        "evil.example",
        "evil.example:8059",
        "10.0.0.1",
        "localhost.evil.example",
    ] {
        let (status, _) = control(&f, "/stats", Some(host)).await;
        assert_eq!(status, 421, "{host}");
    }
    assert_eq!(control(&f, "/stats", None).await.0, 400);

    let (_, inv) = control(&f, "/meters", Some("localhost")).await;
    let first = &inv[0];
    for secret in ["ek", "ak", "kek", "password"] {
        assert_eq!(first[secret], "", "{secret} given without being asked for");
    }
    assert_eq!(first["groups"]["link"], "gprs");
    let (_, inv) = control(&f, "/meters?with_keys=true", Some("localhost")).await;
    assert_eq!(inv[0]["ek"], f.meters()[0].inventory_entry().ek);

    let id = f.meters()[0].spec.id();
    let (_, m) = control(&f, &format!("/meters/{id}"), Some("localhost")).await;
    assert_eq!(m["link"]["profile"], "gprs");
    assert!(m
        .to_string()
        .find(&f.meters()[0].inventory_entry().ek)
        .is_none());
    let (_, links) = control(&f, "/links", Some("localhost")).await;
    assert_eq!(links.as_object().unwrap().len(), 2);
    let rtt = links[&id]["rtt_ms"].as_u64().unwrap();
    assert!((300..=1500).contains(&rtt), "{rtt}");
    f.shutdown();
}
