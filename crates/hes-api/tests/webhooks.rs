//! Webhooks end to end: subscriptions through the API, events from the bus, a receiver (a
//! small axum server) that fails and then recovers, and one that never does; and who may
//! subscribe to what.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use common::{fixture, fixture_on_state, Fx, PgDb};
use dlms::ObisCode;
use hes_api::webhooks::{run_deliveries, run_fanout, verify, WebhookConfig, SIGNATURE_HEADER};
use hes_bus::{Bus, MemoryBus};
use hes_model::backoff::Backoff;
use hes_model::{Aggregate, Event, JobKind, JobResult, JobState, MeterId, Period, Quality, Source};
use serde_json::{json, Value};
use tokio::sync::watch;

/// What a receiver saw: every request (accepted or not) and the accepted bodies in order.
#[derive(Default)]
struct Seen {
    requests: usize,
    bad_signatures: usize,
    accepted: Vec<Value>,
}

struct Receiver {
    url: String,
    seen: Arc<Mutex<Seen>>,
    secret: Arc<Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A receiver that answers 503 to its first `fail_first` requests (500 to all when `None`),
/// then 200 to those whose signature verifies.
async fn receiver(fail_first: Option<usize>) -> Receiver {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let secret = Arc::new(Mutex::new(Vec::new()));
    let (s, k) = (seen.clone(), secret.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (seen, secret) = (s.clone(), k.clone());
            async move {
                let mut seen = seen.lock().unwrap();
                seen.requests += 1;
                match fail_first {
                    Some(n) if seen.requests <= n => return StatusCode::SERVICE_UNAVAILABLE,
                    None => return StatusCode::INTERNAL_SERVER_ERROR,
                    _ => {}
                }
                let sig = headers
                    .get(SIGNATURE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let now = hes_model::clock::unix_now();
                if !verify(&secret.lock().unwrap(), sig, &body, now, 300) {
                    seen.bad_signatures += 1;
                    return StatusCode::UNAUTHORIZED;
                }
                seen.accepted.push(serde_json::from_slice(&body).unwrap());
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver {
        url,
        seen,
        secret,
        task,
    }
}

fn cfg() -> WebhookConfig {
    WebhookConfig {
        node: "test-node".into(),
        concurrency: 4,
        poll: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        retry: Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
        max_attempts: 8,
        batch: 100,
        linger: Duration::from_millis(50),
    }
}

struct Loops {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn start(fx: &Fx, bus: Arc<dyn Bus>) -> Loops {
    let (stop, rx) = watch::channel(false);
    let registry = fx.state.registry.clone();
    let fan = tokio::spawn({
        let (registry, rx) = (registry.clone(), rx.clone());
        async move { run_fanout(bus, registry, cfg(), rx).await.unwrap() }
    });
    let send = tokio::spawn(run_deliveries(registry, cfg(), rx));
    Loops {
        stop,
        tasks: vec![fan, send],
    }
}

impl Loops {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        for t in self.tasks {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .unwrap()
                .unwrap();
        }
    }
}

async fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    hes_testkit::wait_until_async(Duration::from_secs(secs), what, || {
        let done = f();
        async move { done.then_some(()) }
    })
    .await
    .unwrap();
}

/// The webhook's dead deliveries, once there are `n` of them.
async fn dead_deliveries(fx: &Fx, token: &str, hook: &str, n: usize) -> Vec<serde_json::Value> {
    let path = format!("/api/v1/webhooks/{hook}/deliveries?state=dead");
    hes_testkit::wait_until_async(Duration::from_secs(60), "the dead deliveries", || async {
        let r = fx.call(Method::GET, &path, Some(token), None).await;
        let items = r.json()["items"].as_array().cloned().unwrap_or_default();
        (items.len() == n).then_some(items)
    })
    .await
    .unwrap()
}

async fn subscribe(fx: &Fx, user: &str, body: Value) -> Value {
    let t = fx.login(user).await;
    let r = fx
        .call(Method::POST, "/api/v1/webhooks", Some(&t), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

fn meter(i: u32) -> String {
    format!("MTR{i:08}")
}

fn event(i: u32, k: i64) -> Event {
    Event {
        meter: MeterId(meter(i)),
        log: ObisCode::new(0, 0, 99, 98, 0, 255),
        time: 1_795_651_200 + k * 60,
        code: 40,
        source: Source::Push,
        received_at: 1_795_651_200 + k * 60 + 5,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_once_signed_in_order_after_the_receiver_recovers() {
    recovering_receiver(fixture().await).await;
}

/// The same with the state (subscriptions, the delivery queue, the registry) on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_once_signed_in_order_after_the_receiver_recovers_on_postgres() {
    let db = PgDb::create().await;
    let store = Arc::new(hes_store::PgStore::connect(&db.url).await.unwrap());
    recovering_receiver(fixture_on_state(store.clone()).await).await;
    drop(store);
    db.drop_database().await;
}

async fn recovering_receiver(fx: Fx) {
    let all = receiver(Some(8)).await;
    let cell = receiver(Some(0)).await;
    // The receivers are on loopback: only an admin's subscription with allow_private reaches
    // them.
    let admin_hook = subscribe(
        &fx,
        "admin",
        json!({"url": all.url, "events": ["event", "job_result", "day_complete"], "max_attempts": 50, "allow_private": true}),
    )
    .await;
    let cell_hook = subscribe(
        &fx,
        "admin",
        json!({"url": cell.url, "events": ["event"], "groups": ["cell=cell-1"], "allow_private": true}),
    )
    .await;
    assert_eq!(cell_hook["groups"], json!(["cell=cell-1"]));
    for (r, h) in [(&all, &admin_hook), (&cell, &cell_hook)] {
        let secret = h["secret"].as_str().unwrap();
        assert!(secret.starts_with("whsec_"));
        *r.secret.lock().unwrap() = secret.as_bytes().to_vec();
    }
    let bus = Arc::new(MemoryBus::new());
    let loops = start(&fx, bus.clone());
    // Five events per meter for six meters, interleaved across meters and records; a job
    // result; a processed record with a complete day (and a group's, not announced).
    for k in 0..5 {
        let batch: Vec<Event> = (1..=6).map(|i| event(i, k)).collect();
        hes_bus::publish_events(&*bus, &batch).await.unwrap();
    }
    let result = JobResult {
        job: 7,
        meter: MeterId(meter(2)),
        kind: JobKind::Relay { connect: false },
        state: JobState::Succeeded,
        attempts: 1,
        started_at: Some(10),
        finished_at: 12,
        error: None,
        readings: 0,
        events: 0,
        detail: json!({"relay_connected": false}),
        requests: vec![],
    };
    hes_bus::publish_result(&*bus, &result).await.unwrap();
    let day = |subject: &str| Aggregate {
        subject: subject.into(),
        period: Period::Day,
        channel: "energy.active.import".into(),
        period_start: 1_795_651_200,
        period_end: 1_795_651_200 + 86_400,
        total: 24_000.0,
        count: 96,
        complete: true,
        quality_worst: Quality::OK,
    };
    hes_bus::publish_processed(&*bus, &[], &[day(&meter(1)), day("cell=cell-1")])
        .await
        .unwrap();

    until("the admin's receiver to accept 32 events", 60, || {
        all.seen.lock().unwrap().accepted.len() >= 32
    })
    .await;
    until("the cell's receiver to accept 15 events", 60, || {
        cell.seen.lock().unwrap().accepted.len() >= 15
    })
    .await;
    // A replay of everything, then one new event: once the new one is in, the replay has
    // been through the fan-out (same partition, earlier) and added nothing.
    for k in 0..5 {
        let batch: Vec<Event> = (1..=6).map(|i| event(i, k)).collect();
        hes_bus::publish_events(&*bus, &batch).await.unwrap();
    }
    hes_bus::publish_result(&*bus, &result).await.unwrap();
    hes_bus::publish_events(&*bus, &[event(1, 99)])
        .await
        .unwrap();
    until("the sentinel event", 60, || {
        all.seen.lock().unwrap().accepted.len() >= 33
            && cell.seen.lock().unwrap().accepted.len() >= 16
    })
    .await;
    loops.stop().await;

    let seen = std::mem::take(&mut *all.seen.lock().unwrap());
    assert_eq!(seen.bad_signatures, 0);
    assert!(
        seen.requests > seen.accepted.len(),
        "the first attempts failed"
    );
    let ids: Vec<&str> = seen
        .accepted
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "each event once: {ids:?}");
    assert_eq!(ids.len(), 33);
    let kinds: BTreeMap<&str, usize> = seen.accepted.iter().fold(BTreeMap::new(), |mut m, b| {
        *m.entry(b["kind"].as_str().unwrap()).or_default() += 1;
        m
    });
    assert_eq!(
        kinds,
        BTreeMap::from([("day_complete", 1), ("event", 31), ("job_result", 1)])
    );
    // In order per meter: each meter's event times only grow.
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for b in seen.accepted.iter().filter(|b| b["kind"] == "event") {
        let m = b["meter"].as_str().unwrap();
        let t = b["data"]["time"].as_i64().unwrap();
        assert!(last.get(m).is_none_or(|p| *p < t), "{m} out of order");
        last.insert(m, t);
    }
    let day = seen
        .accepted
        .iter()
        .find(|b| b["kind"] == "day_complete")
        .unwrap();
    assert_eq!(day["meter"], meter(1));
    assert_eq!(day["data"]["total"], 24_000.0);
    drop(seen);
    // The cell's subscription got its own meters' events only, once each.
    let seen = std::mem::take(&mut *cell.seen.lock().unwrap());
    let metered: BTreeSet<&str> = seen
        .accepted
        .iter()
        .map(|b| b["meter"].as_str().unwrap())
        .collect();
    assert_eq!(
        metered,
        BTreeSet::from([meter(1).as_str(), meter(2).as_str(), meter(3).as_str()])
    );
    assert_eq!(seen.accepted.len(), 16);
    drop(seen);

    // The delivery log: every delivery delivered, some after retries, newest first.
    let t = fx.login("admin").await;
    let id = admin_hook["id"].as_str().unwrap();
    let log = fx
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/{id}/deliveries?limit=1000"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text());
    let items = log.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 33);
    assert!(items.iter().all(|d| d["state"] == "delivered"));
    assert!(items.iter().any(|d| d["attempts"].as_u64().unwrap() > 1));
    assert!(items
        .iter()
        .any(|d| d["last_status"] == 200 && d["finished_at"].is_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_after_max_attempts_and_the_next_goes_on() {
    let fx = fixture().await;
    let down = receiver(None).await;
    let hook = subscribe(
        &fx,
        "admin",
        json!({"url": down.url, "events": ["event"], "max_attempts": 3, "allow_private": true}),
    )
    .await;
    // The same receiver by a name that resolves to loopback, without allow_private: refused
    // at every attempt after resolving (no request reaches it), then dead.
    let port = down.url.rsplit(':').next().unwrap();
    let by_name = subscribe(
        &fx,
        "admin",
        json!({"url": format!("http://localhost:{port}"), "events": ["event"], "max_attempts": 2}),
    )
    .await;
    let bus = Arc::new(MemoryBus::new());
    let loops = start(&fx, bus.clone());
    hes_bus::publish_events(&*bus, &[event(1, 0), event(1, 1)])
        .await
        .unwrap();
    let t = fx.login("admin").await;
    let id = hook["id"].as_str().unwrap().to_string();
    let items = dead_deliveries(&fx, &t, &id, 2).await;
    let by_name = by_name["id"].as_str().unwrap().to_string();
    let refused = dead_deliveries(&fx, &t, &by_name, 2).await;
    loops.stop().await;
    for d in &items {
        assert_eq!(d["attempts"], 3);
        assert_eq!(d["last_status"], 500);
        assert_eq!(d["last_error"], "the receiver answered 500");
    }
    for d in &refused {
        assert_eq!(d["attempts"], 2);
        assert!(d["last_status"].is_null());
        let e = d["last_error"].as_str().unwrap();
        assert!(e.contains("no public address"), "{e}");
    }
    // Both were tried three times, the first given up before the second started.
    assert_eq!(down.seen.lock().unwrap().requests, 6);
}

#[tokio::test]
async fn nobody_subscribes_beyond_their_rights_or_groups() {
    let fx = fixture().await;
    let (admin, cell1, viewer) = (
        fx.login("admin").await,
        fx.login("cell1").await,
        fx.login("viewer").await,
    );
    let post = |t: String, body: Value| {
        let fx = &fx;
        async move {
            fx.call(Method::POST, "/api/v1/webhooks", Some(&t), Some(body))
                .await
        }
    };
    let url = "http://203.0.113.10/hook";
    // A viewer may not push data out at all.
    let r = post(viewer.clone(), json!({"url": url, "events": ["event"]})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // A cell-1 operator: not another cell's meters, not every meter.
    for groups in [
        json!(["cell=cell-2"]),
        json!(["cell=cell-1", "cell=cell-2"]),
        json!([]),
    ] {
        let r = post(
            cell1.clone(),
            json!({"url": url, "events": ["event"], "groups": groups}),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{groups}: {}", r.text());
    }
    // Nobody but an admin reaches internal addresses: an internal IP literal is refused, and
    // allow_private is the admin's alone.
    for internal in [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0:9/hook",
    ] {
        let r = post(cell1.clone(), json!({"url": internal, "events": ["event"]})).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{internal}: {}",
            r.text()
        );
    }
    let r = post(
        cell1.clone(),
        json!({"url": "http://127.0.0.1:9/hook", "events": ["event"], "allow_private": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let internal = post(
        admin.clone(),
        json!({"url": "http://127.0.0.1:9/hook", "events": ["event"], "groups": ["cell=cell-1"], "allow_private": true}),
    )
    .await;
    assert_eq!(internal.status, StatusCode::CREATED, "{}", internal.text());
    assert_eq!(internal.json()["allow_private"], true);
    let internal = internal.json()["id"].as_str().unwrap().to_string();
    // Bad input.
    for body in [
        json!({"url": "http://user:pw@203.0.113.10/hook", "events": ["event"]}),
        json!({"url": "https://example.com/hook", "events": ["event"]}),
        json!({"url": "not a url", "events": ["event"]}),
        json!({"url": url, "events": ["everything"]}),
        json!({"url": url, "events": []}),
        json!({"url": url, "events": ["event"], "max_attempts": 0}),
        json!({"url": url, "events": ["event"], "groups": ["cell"]}),
    ] {
        let r = post(admin.clone(), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
    }
    let everything = post(admin.clone(), json!({"url": url, "events": ["event"]})).await;
    assert_eq!(everything.status, StatusCode::CREATED);
    let everything = everything.json()["id"].as_str().unwrap().to_string();
    let own = post(cell1.clone(), json!({"url": url, "events": ["job_result"]})).await;
    assert_eq!(own.status, StatusCode::CREATED);
    // By default, the caller's own groups.
    assert_eq!(own.json()["groups"], json!(["cell=cell-1"]));
    assert_eq!(own.json()["allow_private"], false);
    let own = own.json()["id"].as_str().unwrap().to_string();
    // The cell operator sees, reads the log of and deletes only subscriptions within its
    // groups; the admin's unrestricted one does not exist for it, nor the admin's internal
    // one (within its groups, but allowed internal addresses).
    let list = fx
        .call(Method::GET, "/api/v1/webhooks", Some(&cell1), None)
        .await
        .json();
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [own.as_str()]);
    for (m, uri) in [
        (Method::GET, format!("/api/v1/webhooks/{everything}")),
        (
            Method::GET,
            format!("/api/v1/webhooks/{everything}/deliveries"),
        ),
        (Method::DELETE, format!("/api/v1/webhooks/{everything}")),
        (Method::GET, format!("/api/v1/webhooks/{internal}")),
        (Method::DELETE, format!("/api/v1/webhooks/{internal}")),
    ] {
        let r = fx.call(m, &uri, Some(&cell1), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.text());
    }
    // Secrets are shown once: never in a list or a detail.
    let list = fx
        .call(Method::GET, "/api/v1/webhooks", Some(&admin), None)
        .await;
    assert_eq!(list.json()["items"].as_array().unwrap().len(), 3);
    assert!(!list.text().contains("whsec_"));
    let r = fx
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/{own}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json().get("secret").is_none());
    // Stored sealed: the database does not hold the secret.
    let stored = fx.state.registry.state().webhooks().await.unwrap();
    assert!(stored.iter().all(|w| !w.secret.contains("whsec_")));
    // An integrator's token subscribes only with the webhooks scope.
    for (scopes, status) in [
        (json!(["read"]), StatusCode::FORBIDDEN),
        (json!(["read", "webhooks"]), StatusCode::CREATED),
    ] {
        let tok = fx
            .call(
                Method::POST,
                "/api/v1/tokens",
                Some(&admin),
                Some(json!({"name": "mdm", "role": "integrator", "scopes": scopes, "groups": ["cell=cell-2"]})),
            )
            .await;
        assert_eq!(tok.status, StatusCode::CREATED, "{}", tok.text());
        let secret = tok.json()["token"].as_str().unwrap().to_string();
        let r = post(secret, json!({"url": url, "events": ["event"]})).await;
        assert_eq!(r.status, status, "{scopes}: {}", r.text());
    }
    let r = fx
        .call(
            Method::DELETE,
            &format!("/api/v1/webhooks/{own}"),
            Some(&cell1),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = fx
        .call(
            Method::DELETE,
            &format!("/api/v1/webhooks/{own}"),
            Some(&cell1),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
