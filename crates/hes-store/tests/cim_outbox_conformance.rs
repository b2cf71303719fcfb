//! The CIM outbound queue, every adapter: events and days queued once, claims exclusive until
//! their lease runs out (a killed node's items go to another), retries and dead letters,
//! cursors that only move forward.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
use common::*;

use hes_model::{Event, MeterId, Source};
use hes_store::{CimOutbox, OutboxKind, PgStore, Store};

fn event(meter: &str, time: i64, code: u16, received_at: i64) -> Event {
    Event {
        meter: MeterId(meter.into()),
        log: "0.0.99.98.0.255".parse().unwrap(),
        time,
        code,
        source: Source::Scheduled,
        received_at,
    }
}

async fn outbox<S: CimOutbox + Store>(s: &S) {
    s.insert_events(&[
        event("M1", 100, 1, 1000),
        event("M1", 200, 2, 1010),
        event("M2", 150, 44, 2000),
    ])
    .await
    .unwrap();
    // Arrived in (900, 1500]: two; again: none new.
    assert_eq!(s.cim_enqueue_events(900, 1500, 5000).await.unwrap(), 2);
    assert_eq!(s.cim_enqueue_events(0, 1500, 5000).await.unwrap(), 0);
    assert_eq!(s.cim_enqueue_events(1500, 2000, 5000).await.unwrap(), 1);
    let meters = [MeterId("M1".into()), MeterId("M2".into())];
    assert_eq!(s.cim_enqueue_day(86_400, &meters, 5000).await.unwrap(), 2);
    assert_eq!(s.cim_enqueue_day(86_400, &meters, 5001).await.unwrap(), 0);
    // Cursors move forward only.
    assert_eq!(s.cim_cursor("events").await.unwrap(), None);
    s.cim_set_cursor("events", 2000).await.unwrap();
    s.cim_set_cursor("events", 1000).await.unwrap();
    assert_eq!(s.cim_cursor("events").await.unwrap(), Some(2000));
    // Node a claims three of the five; b gets the other two; nothing is left.
    let a = s.cim_claim("a", 5000, 60, 3).await.unwrap();
    assert_eq!(a.len(), 3);
    let b = s.cim_claim("b", 5000, 60, 10).await.unwrap();
    assert_eq!(b.len(), 2);
    assert!(s.cim_claim("c", 5010, 60, 10).await.unwrap().is_empty());
    let mut keys: Vec<String> = a.iter().chain(&b).map(|i| i.key.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 5, "each item claimed once");
    let ev = a
        .iter()
        .chain(&b)
        .find(|i| i.kind == OutboxKind::Event && i.code == 44)
        .unwrap();
    assert_eq!(
        (ev.meter.0.as_str(), ev.time, ev.log.as_str()),
        ("M2", 150, "0.0.99.98.0.255")
    );
    assert!(a
        .iter()
        .chain(&b)
        .any(|i| i.kind == OutboxKind::Day && i.time == 86_400));
    // a delivers its items; b is "killed": its claims run out and c takes them.
    for i in &a {
        s.cim_delivered(&i.key, 5020).await.unwrap();
    }
    let c = s.cim_claim("c", 5061, 60, 10).await.unwrap();
    let mut ck: Vec<&str> = c.iter().map(|i| i.key.as_str()).collect();
    let mut bk: Vec<&str> = b.iter().map(|i| i.key.as_str()).collect();
    ck.sort_unstable();
    bk.sort_unstable();
    assert_eq!(ck, bk);
    // One fails and waits; the other fails for the last time: a dead letter.
    s.cim_failed(&c[0].key, "503", 6000, false, 5070)
        .await
        .unwrap();
    s.cim_failed(&c[1].key, "refused", 0, true, 5070)
        .await
        .unwrap();
    assert!(s.cim_claim("c", 5999, 60, 10).await.unwrap().is_empty());
    let again = s.cim_claim("c", 6000, 60, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].attempts, again[0].last_error.as_deref()),
        (1, Some("503"))
    );
    let dead = s.cim_items("dead", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key, c[1].key);
    assert_eq!(s.cim_items("delivered", 10).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_outbox() {
    let f = sqlite_fixture().await;
    outbox(&f.store).await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_outbox() {
    let db = pg_database().await;
    let store = PgStore::connect(&db.url).await.unwrap();
    outbox(&store).await;
    drop(store);
    db.drop_database().await;
}
