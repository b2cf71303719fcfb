//! One suite, every adapter of the state port (registry, counters, jobs, leases, slots, the
//! webhook queue): SQLite (a fresh file per test) and PostgreSQL (a fresh database per test on
//! `HES_DATABASE_URL`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hes_model::inventory::{Endpoint, InventoryEntry, Transport};
use hes_model::meter::{MeterRecord, MeterStatus};
use hes_model::secrets::Kek;
use hes_model::{JobKind, JobResult, JobState, MeterId, Priority};
use hes_store::{
    Claim, DeliveryState, JobFilter, NewDelivery, NewJob, Outcome, PgStore, StateStore, StoreError,
    Webhook,
};

fn claimed(c: Claim) -> hes_model::Job {
    match c {
        Claim::Claimed(j) => *j,
        other => panic!("not claimed: {other:?}"),
    }
}

mod common;
use common::*;

fn kek() -> Kek {
    Kek::from_bytes(&[5u8; 32]).unwrap()
}

fn entry(i: u32) -> InventoryEntry {
    InventoryEntry {
        id: format!("MTR{i:08}"),
        serial: format!("{i:08}"),
        logical_device_name: format!("HES{i:013}"),
        endpoint: Endpoint {
            host: format!("127.1.0.{i}"),
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
        system_title: format!("48455300{i:08X}"),
        security: "hls-gmac-authenticated-encrypted".into(),
        max_pdu: 1024,
        quirks: vec![],
        groups: BTreeMap::from([("cell".into(), format!("cell-{}", i % 2))]),
    }
}

fn meter(i: u32) -> MeterRecord {
    MeterRecord::from_entry(&entry(i), &kek()).unwrap()
}

fn new_job(meter: &str, kind: JobKind, request: &str) -> NewJob {
    NewJob {
        meter: MeterId::from(meter),
        kind,
        priority: Priority::OnDemand,
        requested_by: "alice".into(),
        not_before: 0,
        max_attempts: 4,
        request: Some(request.into()),
    }
}

fn conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match r {
        Err(StoreError::Conflict(why)) => why,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

// ---- the cases ----

async fn registry_import_is_all_or_nothing(s: &dyn StateStore) {
    assert_eq!(s.registry_revision().await.unwrap(), 0);
    assert_eq!(
        s.import_meters(&[meter(1), meter(2)], false).await.unwrap(),
        2
    );
    let r1 = s.registry_revision().await.unwrap();
    assert!(r1 > 0);
    assert_eq!(
        s.meter(&"MTR00000001".into()).await.unwrap(),
        Some(meter_like(s, 1).await)
    );
    // An existing id without `replace`: refused, and the new meter of the batch not added.
    let why = conflict(s.import_meters(&[meter(3), meter(1)], false).await);
    assert!(why.contains("MTR00000001"), "{why}");
    assert_eq!(s.meter(&"MTR00000003".into()).await.unwrap(), None);
    // A system title another meter has: refused even with `replace`.
    let mut thief = meter(4);
    thief.system_title = meter(2).system_title;
    let why = conflict(s.import_meters(&[thief], true).await);
    assert!(why.contains("MTR00000002"), "{why}");
    // Twice in one batch: refused.
    conflict(s.import_meters(&[meter(5), meter(5)], false).await);
    assert_eq!(s.registry_revision().await.unwrap(), r1);
    // Replace: the row changes, the revision grows.
    let mut moved = meter(1);
    moved.endpoint.port = 4100;
    assert_eq!(s.import_meters(&[moved.clone()], true).await.unwrap(), 1);
    let got = s.meter(&moved.id).await.unwrap().unwrap();
    assert_eq!(got.endpoint.port, 4100);
    assert_eq!(got.open_keys(&kek()).unwrap().ek[15], 0x0F);
    let (all, rev) = s.meters_since(0, None, 100).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(rev > r1);
    // Only what changed after a revision.
    let (changed, _) = s.meters_since(r1, None, 100).await.unwrap();
    assert_eq!(
        changed
            .iter()
            .map(|m| m.record.id.0.as_str())
            .collect::<Vec<_>>(),
        ["MTR00000001"]
    );
    s.set_meter_groups(&moved.id, &BTreeMap::from([("feeder".into(), "F7".into())]))
        .await
        .unwrap();
    s.set_meter_status(&moved.id, MeterStatus::Inactive)
        .await
        .unwrap();
    let got = s.meter(&moved.id).await.unwrap().unwrap();
    assert_eq!(
        (got.groups.get("feeder").map(String::as_str), got.status),
        (Some("F7"), MeterStatus::Inactive)
    );
    let (changed, rev2) = s.meters_since(rev, None, 100).await.unwrap();
    assert_eq!((changed.len(), rev2 > rev), (1, true));
    // One import, one revision for all its meters: pages of 2 go on by id within it, and
    // every meter comes exactly once.
    let batch: Vec<MeterRecord> = (10..15).map(meter).collect();
    s.import_meters(&batch, false).await.unwrap();
    let (mut since, mut after, mut seen) = (rev2, None::<String>, Vec::new());
    for _ in 0..10 {
        let (page, _) = s.meters_since(since, after.as_deref(), 2).await.unwrap();
        for m in &page {
            since = m.revision;
            after = Some(m.record.id.0.clone());
            seen.push(m.record.id.0.clone());
        }
        if page.len() < 2 {
            break;
        }
    }
    let want: Vec<String> = batch.iter().map(|m| m.id.0.clone()).collect();
    assert_eq!(seen, want);
    assert!(matches!(
        s.set_meter_status(&"nope".into(), MeterStatus::Active)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// Meter `i` as stored (sealing is random, so compare against what was stored).
async fn meter_like(s: &dyn StateStore, i: u32) -> MeterRecord {
    let stored = s
        .meter(&MeterId(format!("MTR{i:08}")))
        .await
        .unwrap()
        .unwrap();
    let mut expected = meter(i);
    expected.keys = stored.keys.clone();
    assert_eq!(stored.open_keys(&kek()).unwrap().ak[0], 0xD0);
    expected
}

async fn key_rotation_commits_once(s: &dyn StateStore) {
    s.import_meters(&[meter(1)], false).await.unwrap();
    let m = s.meter(&"MTR00000001".into()).await.unwrap().unwrap();
    let next = m.next_keys(&kek(), &[7; 16], &[6; 16]).unwrap();
    s.rotate_keys(&m.id, 0, &next).await.unwrap();
    // A second rotation from the same version loses.
    let again = m.next_keys(&kek(), &[1; 16], &[1; 16]).unwrap();
    conflict(s.rotate_keys(&m.id, 0, &again).await);
    let now = s.meter(&m.id).await.unwrap().unwrap();
    let keys = now.open_keys(&kek()).unwrap();
    assert_eq!((now.keys.version, keys.ek, keys.ak), (1, [7; 16], [6; 16]));
    // A version that does not follow: refused.
    assert!(matches!(
        s.rotate_keys(&m.id, 1, &next).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.rotate_keys(&"nope".into(), 0, &next).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn counters_only_grow(s: &dyn StateStore) {
    let m = MeterId::from("MTR1");
    assert!(!s.counter_known(&m).await.unwrap());
    assert_eq!(s.lease_counters(&m, 100).await.unwrap(), Some(1));
    assert!(s.counter_known(&m).await.unwrap());
    assert_eq!(s.lease_counters(&m, 100).await.unwrap(), Some(101));
    // The meter says it has seen 5,000: nothing at or below it again.
    s.raise_counter_floor(&m, 5_001).await.unwrap();
    assert_eq!(s.lease_counters(&m, 10).await.unwrap(), Some(5_001));
    // A lower floor changes nothing.
    s.raise_counter_floor(&m, 7).await.unwrap();
    assert_eq!(s.lease_counters(&m, 10).await.unwrap(), Some(5_011));
    // A floor set before the first lease is where it starts.
    let fresh = MeterId::from("MTR2");
    s.raise_counter_floor(&fresh, 900).await.unwrap();
    assert_eq!(s.lease_counters(&fresh, 10).await.unwrap(), Some(900));
    // Exhausted: a lease whose last counter does not fit 32 bits.
    s.raise_counter_floor(&fresh, u64::from(u32::MAX) - 5)
        .await
        .unwrap();
    assert_eq!(s.lease_counters(&fresh, 10).await.unwrap(), None);
}

async fn push_counters_accept_each_once(s: &dyn StateStore) {
    let m = MeterId::from("MTR1");
    let take = |ic: u32| s.accept_push_counter(&m, ic);
    assert!(take(100).await.unwrap());
    assert!(!take(100).await.unwrap(), "a copy passed");
    // Pushes overtake each other: older ones within the window pass, once.
    assert!(take(98).await.unwrap());
    assert!(!take(98).await.unwrap());
    assert!(take(163).await.unwrap());
    // 100 is 63 below 163: the window's last place, and taken already.
    assert!(take(100).await.is_ok_and(|ok| !ok));
    assert!(take(101).await.unwrap());
    assert!(!take(101).await.unwrap());
    // Older than the window: refused, even if never seen.
    assert!(
        !take(99).await.unwrap(),
        "99 is 64 below 163: outside the window"
    );
    // A jump beyond the window forgets the old bits and keeps the new counter.
    assert!(take(1_000).await.unwrap());
    assert!(!take(1_000).await.unwrap());
    assert!(take(999).await.unwrap());
    // The top bit of the window (63 below the highest) works like the others.
    assert!(take(937).await.unwrap());
    assert!(!take(937).await.unwrap());
    // A push that was not delivered gives its counter back, once.
    s.release_push_counter(&m, 999).await.unwrap();
    assert!(take(999).await.unwrap());
    assert!(!take(999).await.unwrap());
    s.release_push_counter(&m, 5).await.unwrap();
    assert!(
        !take(5).await.unwrap(),
        "a release outside the window opens nothing"
    );
    // The extremes of the counter space.
    let top = MeterId::from("MTR2");
    assert!(s.accept_push_counter(&top, u32::MAX).await.unwrap());
    assert!(!s.accept_push_counter(&top, u32::MAX).await.unwrap());
    assert!(s.accept_push_counter(&top, u32::MAX - 63).await.unwrap());
    // Meters do not share windows.
    assert!(s.accept_push_counter(&top, 100).await.is_ok_and(|ok| !ok));
    assert!(s
        .accept_push_counter(&MeterId::from("MTR3"), 100)
        .await
        .unwrap());
}

async fn push_counters_are_taken_once_under_concurrency(s: Arc<dyn StateStore>) {
    let m = MeterId::from("MTR1");
    // Two listeners get the same 40 pushes at once: each counter is accepted exactly once.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (s, m) = (s.clone(), m.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for ic in 1..=40u32 {
                if s.accept_push_counter(&m, ic).await.unwrap() {
                    got.push(ic);
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<_>>());
}

async fn counter_leases_are_disjoint_under_concurrency(s: Arc<dyn StateStore>) {
    let m = MeterId::from("MTR1");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, m) = (s.clone(), m.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..10 {
                got.push(s.lease_counters(&m, 64).await.unwrap().unwrap());
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all.len(), 80);
    for w in all.windows(2) {
        assert_eq!(w[1] - w[0], 64, "overlapping or skipped leases: {all:?}");
    }
}

async fn jobs_state_machine(s: &dyn StateStore) {
    let read = JobKind::ReadLoadProfile { from: None };
    let created = s
        .create_jobs(&[
            new_job("m1", read.clone(), "r1"),
            new_job("m1", read.clone(), "r2"),
            new_job("m1", JobKind::ClockSync, "c1"),
            new_job("m1", JobKind::ClockSync, "c2"),
        ])
        .await
        .unwrap();
    // The second read of the batch joins the first; commands never join.
    assert_eq!(created.len(), 3);
    let (read_job, new) = &created[0];
    assert!(new);
    assert_eq!(read_job.requests, ["r1", "r2"]);
    assert_eq!(read_job.state, JobState::Queued);
    assert_ne!(created[1].0.id, created[2].0.id);
    // A read asked for again while open joins it, across calls.
    let again = s
        .create_jobs(&[new_job("m1", read.clone(), "r3")])
        .await
        .unwrap();
    assert_eq!((again[0].0.id, again[0].1), (read_job.id, false));
    assert_eq!(again[0].0.requests, ["r1", "r2", "r3"]);
    // Claim: running, one attempt.
    let first = claimed(s.claim_job(read_job.id, 1000, 0).await.unwrap());
    assert_eq!(
        (first.state, first.attempts, first.started_at),
        (JobState::Running, 1, Some(1000))
    );
    // A running job cannot be cancelled; a queued one can, and is then never claimed.
    assert!(!s.cancel_job(read_job.id, 1001).await.unwrap());
    let cmd = created[1].0.id;
    assert!(s.cancel_job(cmd, 1001).await.unwrap());
    assert_eq!(s.claim_job(cmd, 1002, 0).await.unwrap(), Claim::Done);
    // An id no row can have is no job, not an error.
    assert_eq!(s.job(u64::MAX).await.unwrap(), None);
    assert!(!s.cancel_job(u64::MAX, 1002).await.unwrap());
    assert_eq!(
        s.job(cmd).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    // Retry, then requeue (a limit was full: the attempt does not count), then finish.
    s.retry_job(read_job.id, "timeout", 1010).await.unwrap();
    let j = s.job(read_job.id).await.unwrap().unwrap();
    assert_eq!(
        (j.state, j.last_error.as_deref(), j.not_before),
        (JobState::Retrying, Some("timeout"), 1010)
    );
    let j = claimed(s.claim_job(read_job.id, 1011, 0).await.unwrap());
    // Running with a recent sign of life: another collector finds it busy; once the signs
    // stop (its collector died), another takes it over, one attempt more.
    s.touch_jobs(&[j.id], 1011).await.unwrap();
    assert_eq!(s.claim_job(j.id, 1012, 1000).await.unwrap(), Claim::Busy);
    let j = claimed(s.claim_job(j.id, 1011, 1012).await.unwrap());
    assert_eq!(j.attempts, 3);
    s.requeue_job(read_job.id, 1012).await.unwrap();
    assert_eq!(s.job(read_job.id).await.unwrap().unwrap().attempts, 2);
    let j = claimed(s.claim_job(read_job.id, 1013, 0).await.unwrap());
    s.finish_job(&JobResult {
        job: j.id,
        meter: j.meter.clone(),
        kind: j.kind.clone(),
        state: JobState::Succeeded,
        attempts: j.attempts,
        started_at: j.started_at,
        finished_at: 1020,
        error: None,
        readings: 96,
        events: 0,
        detail: serde_json::json!({"x": 1}),
        requests: j.requests.clone(),
    })
    .await
    .unwrap();
    let done = s.job(read_job.id).await.unwrap().unwrap();
    assert_eq!(
        (done.state, done.finished_at, done.last_error),
        (JobState::Succeeded, Some(1020), None)
    );
    // Final: never claimed again, and a new read of the same kind is a new job.
    assert_eq!(
        s.claim_job(read_job.id, 1030, i64::MAX).await.unwrap(),
        Claim::Done
    );
    let next = s
        .create_jobs(&[new_job("m1", read.clone(), "r4")])
        .await
        .unwrap();
    assert!(next[0].1 && next[0].0.id != read_job.id);
    // Lists: newest first, filtered, scoped, paged.
    s.create_jobs(&[new_job("m2", read.clone(), "x")])
        .await
        .unwrap();
    let (all, total) = s.list_jobs(&JobFilter::default(), 0, 100).await.unwrap();
    assert_eq!((all.len(), total), (5, 5));
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    let (page, total) = s.list_jobs(&JobFilter::default(), 1, 2).await.unwrap();
    assert_eq!((page.len(), total, page[0].id), (2, 5, all[1].id));
    let f = JobFilter {
        meter: Some("m2".into()),
        ..Default::default()
    };
    assert_eq!(s.list_jobs(&f, 0, 10).await.unwrap().1, 1);
    let f = JobFilter {
        state: Some(JobState::Cancelled),
        ..Default::default()
    };
    assert_eq!(s.list_jobs(&f, 0, 10).await.unwrap().0[0].id, cmd);
    let f = JobFilter {
        commands: Some(true),
        ..Default::default()
    };
    assert_eq!(s.list_jobs(&f, 0, 10).await.unwrap().1, 2);
    let f = JobFilter {
        meters: Some(vec!["m2".into(), "m9".into()]),
        ..Default::default()
    };
    assert_eq!(s.list_jobs(&f, 0, 10).await.unwrap().1, 1);
    let f = JobFilter {
        meters: Some(vec![]),
        ..Default::default()
    };
    assert_eq!(s.list_jobs(&f, 0, 10).await.unwrap().1, 0);
    // Stale: open jobs not touched since; prune: final jobs finished before.
    let far = i64::MAX / 2;
    assert_eq!(s.stale_jobs(far, 100).await.unwrap().len(), 3);
    assert_eq!(s.stale_jobs(0, 100).await.unwrap().len(), 0);
    assert_eq!(s.prune_jobs(1021).await.unwrap(), 2);
    assert_eq!(
        s.list_jobs(&JobFilter::default(), 0, 100).await.unwrap().1,
        3
    );
}

async fn leases_fence_and_expire(s: &dyn StateStore) {
    let a = s
        .acquire_lease("scheduler", "node-a", 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.acquire_lease("scheduler", "node-b", 60_000)
            .await
            .unwrap(),
        None
    );
    // Renewal keeps the token.
    assert_eq!(
        s.acquire_lease("scheduler", "node-a", 60_000)
            .await
            .unwrap(),
        Some(a)
    );
    s.release_lease("scheduler", "node-b").await.unwrap();
    assert_eq!(
        s.acquire_lease("scheduler", "node-b", 60_000)
            .await
            .unwrap(),
        None
    );
    s.release_lease("scheduler", "node-a").await.unwrap();
    let b = s
        .acquire_lease("scheduler", "node-b", 200)
        .await
        .unwrap()
        .unwrap();
    assert!(b > a);
    // Expiry: another node takes over once the lease runs out, with a larger token.
    let deadline = Instant::now() + Duration::from_secs(10);
    let c = loop {
        if let Some(t) = s
            .acquire_lease("scheduler", "node-a", 60_000)
            .await
            .unwrap()
        {
            break t;
        }
        assert!(Instant::now() < deadline, "the lease never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(c > b);
    // Slots: fired once, and only with the current token.
    let jobs = [new_job("m1", JobKind::ReadEvents { from: None }, "s1")];
    assert_eq!(
        s.fire_slot("scheduler", b, "daily", 86_400, &jobs)
            .await
            .unwrap(),
        None
    );
    let fired = s
        .fire_slot("scheduler", c, "daily", 86_400, &jobs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(
        s.fire_slot("scheduler", c, "daily", 86_400, &jobs)
            .await
            .unwrap(),
        None
    );
    assert!(s
        .fire_slot("scheduler", c, "daily", 2 * 86_400, &[])
        .await
        .unwrap()
        .is_some());
    let (listed, _) = s.list_jobs(&JobFilter::default(), 0, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    s.append_audit(&hes_store::AuditEntry {
        time: 1,
        actor: "scheduler".into(),
        action: "schedule.fire".into(),
        target: "daily".into(),
        detail: serde_json::json!({"slot": 86_400}),
    })
    .await
    .unwrap();
}

async fn scheduled_jobs_are_dispatched_when_due(s: &dyn StateStore) {
    let read = JobKind::ReadLoadProfile { from: None };
    let at = |m: &str, not_before: i64| NewJob {
        priority: Priority::Scheduled,
        requested_by: "scheduler".into(),
        not_before,
        ..new_job(m, read.clone(), &format!("lp@{not_before}/{m}"))
    };
    let created = s
        .create_jobs(&[
            at("m3", 2000),
            at("m1", 1000),
            at("m2", 1000),
            at("m4", 3000),
        ])
        .await
        .unwrap();
    let id = |m: &str| {
        created
            .iter()
            .find(|(j, _)| j.meter.0 == m)
            .map(|(j, _)| j.id)
            .unwrap()
    };
    // An on-demand job (due at once, published when created) is never the pacer's.
    s.create_jobs(&[new_job("m9", JobKind::ReadInstant, "now")])
        .await
        .unwrap();
    assert!(s.due_jobs(999, 100).await.unwrap().is_empty());
    let due: Vec<_> = s
        .due_jobs(2000, 100)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(due, [id("m1"), id("m2"), id("m3")], "by time, then id");
    // Paged: the first of them only; published ones leave the list.
    assert_eq!(s.due_jobs(2000, 1).await.unwrap()[0].id, id("m1"));
    s.mark_dispatched(&[id("m1"), id("m2")], 990).await.unwrap();
    let left: Vec<_> = s
        .due_jobs(i64::MAX / 2, 100)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(left, [id("m3"), id("m4")]);
    // A job taken, cancelled or finished before its record went out is not sent any more.
    assert!(s.cancel_job(id("m4"), 1001).await.unwrap());
    claimed(s.claim_job(id("m3"), 1002, 0).await.unwrap());
    assert!(s.due_jobs(i64::MAX / 2, 100).await.unwrap().is_empty());
}

async fn pushed_intervals_show_the_meters_that_missed_one(s: &dyn StateStore) {
    let (a, b, c) = (MeterId::from("a"), MeterId::from("b"), MeterId::from("c"));
    // No push accepted yet: nothing to note.
    s.note_pushed_interval(&a, 900).await.unwrap();
    assert_eq!(s.newest_pushed_interval(i64::MAX).await.unwrap(), None);
    for (m, ic) in [(&a, 1), (&b, 1), (&c, 1)] {
        assert!(s.accept_push_counter(m, ic).await.unwrap());
    }
    s.note_pushed_interval(&a, 1800).await.unwrap();
    s.note_pushed_interval(&b, 900).await.unwrap();
    s.note_pushed_interval(&c, 1800).await.unwrap();
    // An older interval arriving late does not move a meter back.
    s.note_pushed_interval(&a, 900).await.unwrap();
    assert_eq!(
        s.newest_pushed_interval(i64::MAX).await.unwrap(),
        Some(1800)
    );
    // A meter whose clock is ahead is not the fleet's boundary.
    s.note_pushed_interval(&c, 99_000).await.unwrap();
    assert_eq!(s.newest_pushed_interval(2000).await.unwrap(), Some(1800));
    assert_eq!(
        s.push_gaps(1800, 0, 10).await.unwrap(),
        vec![(b.clone(), 900)]
    );
    // Outside the look-back: forgotten (that meter stopped pushing altogether).
    assert!(s.push_gaps(1800, 901, 10).await.unwrap().is_empty());
}

async fn failed_reads_of_a_schedule_are_found(s: &dyn StateStore) {
    let read = JobKind::ReadLoadProfile { from: None };
    let job = |m: &str, request: &str| NewJob {
        priority: Priority::Scheduled,
        requested_by: "scheduler".into(),
        ..new_job(m, read.clone(), request)
    };
    let end = |id, state, at| JobResult {
        job: id,
        meter: MeterId::from("x"),
        kind: JobKind::ReadInstant,
        state,
        attempts: 1,
        started_at: Some(at),
        finished_at: at,
        error: (state == JobState::Failed).then(|| "timeout".into()),
        readings: 0,
        events: 0,
        detail: serde_json::Value::Null,
        requests: Vec::new(),
    };
    // m1 failed then succeeded; m2 succeeded then failed; m3 failed on another schedule;
    // m4 failed (a schedule whose name has LIKE's wildcards in it must not match "lp_x").
    let run = |m: &'static str, req: &'static str, state, at| async move {
        let (j, _) = s.create_jobs(&[job(m, req)]).await.unwrap().remove(0);
        claimed(s.claim_job(j.id, at, 0).await.unwrap());
        s.finish_job(&end(j.id, state, at)).await.unwrap();
    };
    run("m1", "lp@100/m1", JobState::Failed, 110).await;
    run("m1", "lp@200/m1", JobState::Succeeded, 210).await;
    run("m2", "lp@100/m2", JobState::Succeeded, 110).await;
    run("m2", "lp@200/m2", JobState::Failed, 210).await;
    run("m3", "ev@200/m3", JobState::Failed, 210).await;
    run("m4", "lpAx@200/m4", JobState::Failed, 210).await;
    assert_eq!(
        s.failed_requests("lp@", 0, 10).await.unwrap(),
        vec![MeterId::from("m2")]
    );
    assert_eq!(
        s.failed_requests("lp_x@", 0, 10).await.unwrap(),
        Vec::<MeterId>::new()
    );
    // Only jobs finished since: m2's failure is older than 211.
    assert!(s.failed_requests("lp@", 211, 10).await.unwrap().is_empty());
    assert_eq!(
        s.failed_requests("ev@", 0, 10).await.unwrap(),
        vec![MeterId::from("m3")]
    );
}

// ---- webhooks: subscriptions, enqueueing once per event, claims in order per meter under a
// lease, retries, dead letters, and nodes claiming at once (`hes_store::WebhookStore`, a
// supertrait of the state port) ----

fn webhook(id: &str) -> Webhook {
    Webhook {
        id: id.into(),
        url: "http://127.0.0.1:1/hook".into(),
        events: vec!["event".into(), "job_result".into()],
        groups: vec!["cell=cell-1".into()],
        secret: "sealed-text".into(),
        max_attempts: 3,
        created_by: "alice".into(),
        created_at: 1_000,
        allow_private: false,
    }
}

fn delivery(webhook: &str, event: &str, meter: &str) -> NewDelivery {
    NewDelivery {
        webhook: webhook.into(),
        event_id: event.into(),
        kind: "event".into(),
        meter: meter.into(),
        body: format!("{{\"id\":\"{event}\"}}"),
    }
}

fn event_ids(ds: &[hes_store::Delivery]) -> Vec<&str> {
    ds.iter().map(|d| d.event_id.as_str()).collect()
}

async fn webhook_subscriptions(s: &dyn StateStore) {
    assert!(s.webhooks().await.unwrap().is_empty());
    s.create_webhook(&webhook("wh-1")).await.unwrap();
    assert!(matches!(
        s.create_webhook(&webhook("wh-1")).await,
        Err(StoreError::Conflict(_))
    ));
    let mut second = webhook("wh-2");
    second.created_at = 2_000;
    second.groups = vec![];
    second.allow_private = true;
    s.create_webhook(&second).await.unwrap();
    assert_eq!(
        s.webhooks().await.unwrap(),
        vec![webhook("wh-1"), second.clone()]
    );
    let resealed = [("wh-2".to_string(), "resealed".to_string())];
    assert_eq!(s.replace_webhook_secrets(&resealed).await.unwrap(), 1);
    assert_eq!(s.webhooks().await.unwrap()[1].secret, "resealed");
    s.enqueue_deliveries(&[delivery("wh-1", "e1", "m1")], 5)
        .await
        .unwrap();
    assert!(s.delete_webhook("wh-1").await.unwrap());
    assert!(!s.delete_webhook("wh-1").await.unwrap());
    assert_eq!(s.webhooks().await.unwrap().len(), 1);
    // Its deliveries went with it; none can be added for it any more.
    assert!(s
        .deliveries("wh-1", None, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.enqueue_deliveries(&[delivery("wh-1", "e2", "m1")], 5)
            .await
            .unwrap(),
        0
    );
    assert!(s
        .claim_deliveries("n1", 10, 1000, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn webhook_deliveries_once_in_order_per_meter(s: &dyn StateStore) {
    s.create_webhook(&webhook("wh")).await.unwrap();
    let batch = [
        delivery("wh", "a", "m1"),
        delivery("wh", "b", "m1"),
        delivery("wh", "c", "m2"),
        delivery("wh", "a", "m1"),
    ];
    assert_eq!(s.enqueue_deliveries(&batch, 100).await.unwrap(), 3);
    // Seen again (a replay of the bus): nothing new.
    assert_eq!(s.enqueue_deliveries(&batch, 100).await.unwrap(), 0);
    // Not due before its time.
    assert!(s
        .claim_deliveries("n1", 99, 1000, 10)
        .await
        .unwrap()
        .is_empty());
    // The oldest of each meter; b waits behind a.
    let got = s.claim_deliveries("n1", 100, 1000, 10).await.unwrap();
    assert_eq!(event_ids(&got), ["a", "c"]);
    assert!(got
        .iter()
        .all(|d| d.attempts == 1 && d.state == DeliveryState::Pending));
    assert!(s
        .claim_deliveries("n2", 101, 1000, 10)
        .await
        .unwrap()
        .is_empty());
    let (a, c) = (got[0].id, got[1].id);
    assert!(s
        .finish_delivery(a, "n1", &Outcome::Delivered { status: 200 }, 110)
        .await
        .unwrap());
    // Another node cannot finish what it does not hold.
    let failed = Outcome::Failed {
        status: Some(503),
        error: "503 Service Unavailable".into(),
        retry_at: Some(500),
    };
    assert!(!s.finish_delivery(c, "n2", &failed, 110).await.unwrap());
    assert!(s.finish_delivery(c, "n1", &failed, 110).await.unwrap());
    // b is next for m1; c waits for its retry time.
    let got = s.claim_deliveries("n2", 120, 1000, 10).await.unwrap();
    assert_eq!(event_ids(&got), ["b"]);
    let c_again = s.claim_deliveries("n2", 500, 1000, 10).await.unwrap();
    assert_eq!(event_ids(&c_again), ["c"]);
    assert_eq!(c_again[0].attempts, 2);
    assert_eq!(c_again[0].last_status, Some(503));
    let dead = Outcome::Failed {
        status: None,
        error: "connection refused".into(),
        retry_at: None,
    };
    assert!(s.finish_delivery(c, "n2", &dead, 510).await.unwrap());
    // The log, newest first, with states, attempts and the last error.
    let log = s.deliveries("wh", None, None, 10).await.unwrap();
    assert_eq!(event_ids(&log), ["c", "b", "a"]);
    assert_eq!(log[0].state, DeliveryState::Dead);
    assert_eq!(log[0].last_error.as_deref(), Some("connection refused"));
    assert_eq!(log[0].finished_at, Some(510));
    assert_eq!(log[2].state, DeliveryState::Delivered);
    assert_eq!(log[2].last_status, Some(200));
    let dead_only = s
        .deliveries("wh", Some(DeliveryState::Dead), None, 10)
        .await
        .unwrap();
    assert_eq!(event_ids(&dead_only), ["c"]);
    let page = s.deliveries("wh", None, Some(log[0].id), 1).await.unwrap();
    assert_eq!(event_ids(&page), ["b"]);
    // A dead delivery does not hold its meter: the next one of m2 goes.
    s.enqueue_deliveries(&[delivery("wh", "d", "m2")], 600)
        .await
        .unwrap();
    assert_eq!(
        event_ids(&s.claim_deliveries("n1", 600, 1000, 10).await.unwrap()),
        ["d"]
    );
}

async fn webhook_claims_expire(s: &dyn StateStore) {
    s.create_webhook(&webhook("wh")).await.unwrap();
    s.enqueue_deliveries(&[delivery("wh", "a", "m1")], 0)
        .await
        .unwrap();
    let got = s.claim_deliveries("n1", 0, 1000, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    // n1 died: its claim is taken again once the lease is over, one attempt more.
    assert!(s
        .claim_deliveries("n2", 1000, 1000, 10)
        .await
        .unwrap()
        .is_empty());
    let again = s.claim_deliveries("n2", 1001, 1000, 10).await.unwrap();
    assert_eq!((again[0].id, again[0].attempts), (got[0].id, 2));
    let ok = Outcome::Delivered { status: 204 };
    assert!(!s.finish_delivery(got[0].id, "n1", &ok, 1100).await.unwrap());
    assert!(s.finish_delivery(got[0].id, "n2", &ok, 1100).await.unwrap());
}

/// Nodes claiming at once: every delivery is held by one node at a time and finished once,
/// and each meter's deliveries go out in the order they were enqueued.
async fn webhook_claims_under_concurrency(s: Arc<dyn StateStore>) {
    s.create_webhook(&webhook("wh")).await.unwrap();
    let mut batch = Vec::new();
    for i in 0..60 {
        batch.push(delivery("wh", &format!("e{i:03}"), &format!("m{}", i % 6)));
    }
    s.enqueue_deliveries(&batch, 0).await.unwrap();
    // Appended while the claim is held (before it is finished): a meter's next delivery can
    // only be claimed after that, so this is the order the receiver would see.
    let sent = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let mut tasks = Vec::new();
    for n in 0..4 {
        let (s, sent) = (s.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let holder = format!("n{n}");
            let mut idle = 0;
            while idle < 20 {
                let got = s.claim_deliveries(&holder, 0, 60_000, 3).await.unwrap();
                if got.is_empty() {
                    idle += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                idle = 0;
                for d in got {
                    sent.lock()
                        .unwrap()
                        .push((d.meter.clone(), d.event_id.clone()));
                    let ok = Outcome::Delivered { status: 200 };
                    assert!(s.finish_delivery(d.id, &holder, &ok, 1).await.unwrap());
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 60, "every delivery sent once");
    let log = s.deliveries("wh", None, None, 100).await.unwrap();
    assert!(log
        .iter()
        .all(|d| d.state == DeliveryState::Delivered && d.attempts == 1));
    let mut by_meter: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (m, e) in &sent {
        by_meter.entry(m).or_default().push(e);
    }
    for list in by_meter.values() {
        let mut sorted = list.clone();
        sorted.sort_unstable();
        assert_eq!(*list, sorted, "in order per meter");
    }
}

macro_rules! state_conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let f = super::sqlite_fixture().await;
                    super::$case(&f.store).await;
                    f.finish().await;
                }
            )*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn counter_leases_are_disjoint_under_concurrency() {
                let f = super::sqlite_fixture().await;
                super::counter_leases_are_disjoint_under_concurrency(std::sync::Arc::new(f.store.clone())).await;
                f.finish().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn push_counters_are_taken_once_under_concurrency() {
                let f = super::sqlite_fixture().await;
                super::push_counters_are_taken_once_under_concurrency(std::sync::Arc::new(f.store.clone())).await;
                f.finish().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn webhook_claims_under_concurrency() {
                let f = super::sqlite_fixture().await;
                super::webhook_claims_under_concurrency(std::sync::Arc::new(f.store.clone())).await;
                f.finish().await;
            }
        }
        mod pg {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = super::pg_database().await;
                    let store = super::PgStore::connect(&db.url).await.unwrap();
                    super::$case(&store).await;
                    drop(store);
                    db.drop_database().await;
                }
            )*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn counter_leases_are_disjoint_under_concurrency() {
                let db = super::pg_database().await;
                let store = super::PgStore::connect(&db.url).await.unwrap();
                super::counter_leases_are_disjoint_under_concurrency(std::sync::Arc::new(store)).await;
                db.drop_database().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn push_counters_are_taken_once_under_concurrency() {
                let db = super::pg_database().await;
                let store = super::PgStore::connect(&db.url).await.unwrap();
                super::push_counters_are_taken_once_under_concurrency(std::sync::Arc::new(store)).await;
                db.drop_database().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn webhook_claims_under_concurrency() {
                let db = super::pg_database().await;
                let store = super::PgStore::connect(&db.url).await.unwrap();
                super::webhook_claims_under_concurrency(std::sync::Arc::new(store)).await;
                db.drop_database().await;
            }
        }
    };
}

state_conformance!(
    registry_import_is_all_or_nothing,
    key_rotation_commits_once,
    counters_only_grow,
    push_counters_accept_each_once,
    jobs_state_machine,
    leases_fence_and_expire,
    scheduled_jobs_are_dispatched_when_due,
    pushed_intervals_show_the_meters_that_missed_one,
    failed_reads_of_a_schedule_are_found,
    webhook_subscriptions,
    webhook_deliveries_once_in_order_per_meter,
    webhook_claims_expire,
);
