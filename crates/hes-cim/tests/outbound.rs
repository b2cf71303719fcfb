//! Delivery to an MDM that fails, then recovers: every event and the complete day arrive, each
//! a valid EventMessage (xmllint); an MDM that keeps refusing leaves dead letters.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use hes_cim::outbound::{last_complete_day, Outbound, OutboundConfig};
use hes_cim::xsd::validate;
use hes_model::{Event, MeterId, Reading, Source};
use hes_store::{CimOutbox, SqliteStore, Store};

#[derive(Clone, Default)]
struct Mdm {
    /// Answers this many requests with 503 before accepting (usize::MAX: never accepts).
    fail_first: usize,
    seen: Arc<AtomicUsize>,
    accepted: Arc<Mutex<Vec<(String, String)>>>,
}

async fn mdm(m: Mdm) -> String {
    let app = axum::Router::new().route(
        "/cim",
        post(
            |axum::extract::State(m): axum::extract::State<Mdm>,
             headers: axum::http::HeaderMap,
             body: String| async move {
                let n = m.seen.fetch_add(1, Ordering::SeqCst);
                if n < m.fail_first {
                    return (StatusCode::SERVICE_UNAVAILABLE, String::new());
                }
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                m.accepted.lock().unwrap().push((auth, body));
                (StatusCode::OK, "<ok/>".to_string())
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.with_state(m)).await.unwrap();
    });
    format!("http://{addr}/cim")
}

async fn store() -> (Arc<SqliteStore>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "hes_cim_out_{}_{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    (
        Arc::new(SqliteStore::open(dir.join("hes.db")).await.unwrap()),
        dir,
    )
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn outbound(url: String, s: &Arc<SqliteStore>, max_attempts: u32) -> Outbound {
    Outbound::new(
        OutboundConfig {
            url,
            authorization: Some("Bearer mdm-token".into()),
            node: "n1".into(),
            backoff_base_s: 0,
            max_attempts,
            timeout: Duration::from_secs(10),
            ..OutboundConfig::default()
        },
        s.clone() as Arc<dyn CimOutbox>,
        s.clone() as Arc<dyn Store>,
        Arc::new(|| vec![MeterId("M1".into())]),
        |c| format!("event {c}"),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mdm_that_fails_then_recovers_gets_everything_valid() {
    let (s, dir) = store().await;
    let now = hes_model::clock::unix_now();
    let day = last_complete_day(now, 2 * 3600);
    let readings: Vec<Reading> = (0..=96)
        .map(|i| Reading {
            meter: MeterId("M1".into()),
            obis: "1.0.1.8.0.255".parse().unwrap(),
            class_id: 3,
            attribute: 2,
            time: day + i * 900,
            value: 10_000 + i * 100,
            scaler: 0,
            unit: 30,
            status: 0,
            source: Source::Scheduled,
            received_at: now,
        })
        .collect();
    s.insert_readings(&readings).await.unwrap();
    let m = Mdm {
        fail_first: 2,
        ..Mdm::default()
    };
    let out = outbound(mdm(m.clone()).await, &s, 10);
    // The first round queues the day (nothing else is there yet) and meets the failures.
    out.produce(now).await.unwrap();
    s.insert_events(&[
        Event {
            meter: MeterId("M1".into()),
            log: "0.0.99.98.1.255".parse().unwrap(),
            time: now - 5,
            code: 44,
            source: Source::Push,
            received_at: now,
        },
        Event {
            meter: MeterId("M1".into()),
            log: "0.0.99.98.0.255".parse().unwrap(),
            time: now - 4,
            code: 1,
            source: Source::Push,
            received_at: now,
        },
    ])
    .await
    .unwrap();
    // Rounds of the worker until the receiver has all three (it refuses the first two tries).
    let delivered = hes_testkit::wait_until_async(
        Duration::from_secs(60),
        "three messages delivered",
        || async {
            out.produce(hes_model::clock::unix_now()).await.unwrap();
            out.deliver(hes_model::clock::unix_now()).await.unwrap();
            (m.accepted.lock().unwrap().len() >= 3).then_some(())
        },
    )
    .await;
    if let Err(e) = delivered {
        panic!("{e}; pending: {:?}", s.cim_items("pending", 10).await);
    }
    let accepted = m.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 3, "each once");
    for (auth, body) in &accepted {
        assert_eq!(auth, "Bearer mdm-token");
        validate(body).unwrap();
        assert!(body.contains("<Verb>created</Verb>"), "{body}");
    }
    let day_msg = accepted
        .iter()
        .find(|(_, b)| b.contains("<Noun>MeterReadings</Noun>"))
        .unwrap();
    // The 96 intervals of the day, 0.1 kWh each.
    assert_eq!(day_msg.1.matches("<IntervalReadings>").count(), 96);
    assert!(day_msg.1.contains("<value>0.1</value>"));
    let types: Vec<bool> = ["3.12.29.212", "3.26.0.185"]
        .iter()
        .map(|t| accepted.iter().any(|(_, b)| b.contains(t)))
        .collect();
    assert_eq!(types, [true, true]);
    assert_eq!(s.cim_items("delivered", 10).await.unwrap().len(), 3);
    assert!(s.cim_items("dead", 10).await.unwrap().is_empty());
    drop(out);
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mdm_that_keeps_failing_leaves_dead_letters() {
    let (s, dir) = store().await;
    let now = hes_model::clock::unix_now();
    s.insert_events(&[Event {
        meter: MeterId("M1".into()),
        log: "0.0.99.98.1.255".parse().unwrap(),
        time: now - 5,
        code: 40,
        source: Source::Push,
        received_at: now,
    }])
    .await
    .unwrap();
    let m = Mdm {
        fail_first: usize::MAX,
        ..Mdm::default()
    };
    let out = outbound(mdm(m.clone()).await, &s, 3);
    // No readings at all: the day sends nothing and is done; the event fails three times.
    s.cim_set_cursor("events", now - 60).await.unwrap();
    for _ in 0..3 {
        out.produce(now).await.unwrap();
        out.deliver(now).await.unwrap();
    }
    let dead = s.cim_items("dead", 10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("HTTP 503 Service Unavailable")
    );
    assert_eq!(m.seen.load(Ordering::SeqCst), 3);
    assert!(m.accepted.lock().unwrap().is_empty());
    drop(out);
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_claims_go_to_another_node() {
    let (s, dir) = store().await;
    let now = hes_model::clock::unix_now();
    s.insert_events(&[Event {
        meter: MeterId("M1".into()),
        log: "0.0.99.98.1.255".parse().unwrap(),
        time: now - 5,
        code: 42,
        source: Source::Push,
        received_at: now,
    }])
    .await
    .unwrap();
    let m = Mdm::default();
    let out = outbound(mdm(m.clone()).await, &s, 3);
    s.cim_set_cursor("events", now - 60).await.unwrap();
    out.produce(now).await.unwrap();
    // Another node claimed everything due and died before sending.
    let lease = OutboundConfig::default().lease_s;
    let taken = s.cim_claim("killed", now, lease, 50).await.unwrap();
    assert!(!taken.is_empty());
    assert_eq!(
        out.deliver(now).await.unwrap(),
        0,
        "claimed by the other node"
    );
    // Once its claims run out, this node sends them.
    assert_eq!(out.deliver(now + lease + 1).await.unwrap(), taken.len());
    let accepted = m.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1, "the event (the day has no readings)");
    validate(&accepted[0].1).unwrap();
    assert!(accepted[0].1.contains("3.12.66.257"), "{}", accepted[0].1);
    drop(out);
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}
