//! Kill drill: two `hes serve` nodes (api, collector, validate, process, scheduler) share one
//! database and Kafka namespace; node A leads the scheduler and is killed (SIGKILL) in the
//! middle of a scheduled collection. Node B takes the scheduler lease, the jobs A had queued
//! come to B with A's partitions, the jobs A was running are taken over once their heartbeat
//! is stale, and every job of the slot ends succeeded: every meter's load profile is stored
//! exactly once, equal to the meter's, no meter saw a replayed invocation counter, and each
//! slot was fired once (by the leader of its moment) with one job per meter.
//!
//! Needs PostgreSQL and Kafka (`eval "$(scripts/services up)"`); kills only its own node. About
//! 70 s: the schedule's first slot (up to 45 s), the takeover of A's running jobs (35 s after
//! their last heartbeat) and the next slot, fired by B.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::{env, NodeConfig};
use hes_bus::kafka::BROKERS_ENV;
use hes_sim::fleet::{Clock, Faults, Fleet, FleetConfig};
use hes_sim::Profile;
use hes_testkit::{unique, wait_until_async, Proc, TempDir, TestDb};

const METERS: u32 = 200;
const ENERGY: &str = "1.0.1.8.0.255";
const SCHEDULE: &str = "kill-drill";
/// Each answer of a meter is this late: a read takes a few seconds, so a good share of the
/// slot is running or waiting when A dies.
const SLOW_MS: u32 = 250;
/// The slot's meters are spread over this many seconds.
const WINDOW_S: i64 = 20;

/// One job of the store: (id, meter, state, attempts, requests).
type JobRow = (i64, String, String, i32, Vec<String>);

async fn jobs(db: &tokio_postgres::Client) -> Vec<JobRow> {
    db.query("SELECT id, meter, state, attempts, requests FROM jobs", &[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let requests: String = r.get(4);
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                serde_json::from_str(&requests).unwrap(),
            )
        })
        .collect()
}

/// The jobs that answer slot `slot` of the drill's schedule (a job of a later slot that joined
/// an open read carries that slot's request too).
fn of_slot(all: &[JobRow], slot: i64) -> Vec<&JobRow> {
    let tag = format!("{SCHEDULE}@{slot}/");
    all.iter()
        .filter(|j| j.4.iter().any(|r| r.starts_with(&tag)))
        .collect()
}

/// Fired slots: slot → (fencing token, jobs asked for).
async fn slots(db: &tokio_postgres::Client) -> BTreeMap<i64, (i64, i64)> {
    db.query(
        "SELECT slot, token, jobs FROM schedule_slots WHERE schedule = $1",
        &[&SCHEDULE],
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2))))
    .collect()
}

/// Stored load-profile energy readings per meter: time → value.
async fn stored(db: &tokio_postgres::Client) -> HashMap<String, HashMap<i64, i64>> {
    let rows = db
        .query(
            "SELECT meter, time, value FROM readings WHERE obis = $1",
            &[&ENERGY],
        )
        .await
        .unwrap();
    let mut out: HashMap<String, HashMap<i64, i64>> = HashMap::new();
    for r in rows {
        out.entry(r.get(0)).or_default().insert(r.get(1), r.get(2));
    }
    out
}

async fn stored_count(db: &tokio_postgres::Client) -> i64 {
    db.query_one("SELECT count(*) FROM readings WHERE obis = $1", &[&ENERGY])
        .await
        .unwrap()
        .get(0)
}

/// The fencing token of a node's `SCHEDULER leading (token N)` line.
async fn leads(node: &Proc, within: Duration) -> i64 {
    let line = node
        .wait_for_async(within, "SCHEDULER leading", |l| {
            l.starts_with("SCHEDULER leading")
        })
        .await
        .unwrap();
    line.trim_end_matches(')')
        .rsplit(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no token in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_collection_leaves_its_slot_to_the_other() {
    let started = Instant::now();
    let brokers = env(BROKERS_ENV);
    let namespace = format!("{}.", unique("kill"));
    // The meters' clock starts just after a 15-minute boundary: the load profile holds the
    // same entries for the whole drill, so the truth does not move under the check.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut cfg = FleetConfig::new(METERS);
    cfg.first_host = IpAddr::from([127, 95, 0, 1]);
    cfg.first_serial = hes_testkit::inventory::fresh_serials(METERS);
    cfg.profile_entries = 96;
    cfg.clock = Clock::new(Some(now - now.rem_euclid(900) + 30), 1.0);
    let fleet = Fleet::start(cfg).await.unwrap();
    let slow = Faults {
        slow_ms: SLOW_MS,
        ..Faults::default()
    };
    for m in fleet.meters() {
        fleet.set_faults(&m.spec.id(), slow).await.unwrap();
    }

    let dir = TempDir::new("hes-kill-node").unwrap();
    let inventory = dir.join("inventory.json");
    hes_testkit::inventory::write_json(&inventory, &fleet.inventory()).unwrap();
    let db = TestDb::create().await.unwrap();
    common::import(&inventory, db.url());
    let node = |name: &str| NodeConfig {
        roles: vec!["api", "collector", "validate", "process", "scheduler"],
        database_url: db.url().to_string(),
        brokers: brokers.clone(),
        namespace: namespace.clone(),
        partitions: 4,
        api_node: Some(name.to_string()),
    };
    // A first, so that it leads; B once it does.
    let mut a = common::start("node A", &node("a").write(&dir.join("a.toml"))).await;
    let token_a = leads(&a, Duration::from_secs(30)).await;
    let mut b = common::start("node B", &node("b").write(&dir.join("b.toml"))).await;
    let api_a = common::api(&a).await;
    let (code, body) = api_a
        .post(
            "/api/v1/schedules",
            &serde_json::json!({
                "name": SCHEDULE,
                "read": "load_profile",
                "every_s": 60,
                "window_s": WINDOW_S,
            }),
        )
        .unwrap();
    assert_eq!(code, 201, "{body}");

    let (pg, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // The first slot (the next minute, or the one after when A reads the schedules late).
    let (slot, (token, asked)) = wait_until_async(Duration::from_secs(100), "a slot fired", || {
        common::assert_running(&mut a);
        common::assert_running(&mut b);
        let pg = &pg;
        async move { slots(pg).await.into_iter().next() }
    })
    .await
    .unwrap();
    assert_eq!(token, token_a, "the first slot was not fired by A");
    assert_eq!(asked, i64::from(METERS), "jobs of the first slot");
    eprintln!("slot {slot} fired at {:?}", started.elapsed());
    wait_until_async(Duration::from_secs(60), "the first readings stored", || {
        common::assert_running(&mut a);
        common::assert_running(&mut b);
        let pg = &pg;
        async move { (stored_count(pg).await > 0).then_some(()) }
    })
    .await
    .unwrap();

    a.kill();
    let killed = Instant::now();
    let status = a.try_wait().unwrap().expect("A reaped");
    assert_eq!(
        status.signal(),
        Some(9),
        "A was not killed by SIGKILL: {status}"
    );
    let at_kill = jobs(&pg).await;
    let at_kill = of_slot(&at_kill, slot);
    let open: Vec<i64> = at_kill
        .iter()
        .filter(|j| j.2 != "succeeded")
        .map(|j| j.0)
        .collect();
    let running: HashSet<i64> = at_kill
        .iter()
        .filter(|j| j.2 == "running")
        .map(|j| j.0)
        .collect();
    eprintln!(
        "A killed at {:?}: {} of {METERS} jobs of the slot open, {} running (on A or B)",
        started.elapsed(),
        open.len(),
        running.len()
    );
    assert!(
        !running.is_empty(),
        "no job was running when A died: nothing to take over"
    );

    // B leads within a lease's time to live (10 s) and a renewal.
    let token_b = leads(&b, Duration::from_secs(15)).await;
    let took_lease = killed.elapsed();
    assert!(token_b > token_a, "B's token {token_b}, A's {token_a}");
    assert!(
        took_lease <= Duration::from_secs(15),
        "B took the lease {took_lease:?} after the kill"
    );
    eprintln!("B leads {took_lease:?} after the kill");

    // Every job of the slot ends, succeeded.
    let finished = wait_until_async(Duration::from_secs(120), "the slot's jobs finished", || {
        common::assert_running(&mut b);
        let pg = &pg;
        async move {
            let all = jobs(pg).await;
            let done = of_slot(&all, slot)
                .iter()
                .all(|j| matches!(j.2.as_str(), "succeeded" | "failed" | "cancelled"));
            done.then_some(all)
        }
    })
    .await;
    let all = match finished {
        Ok(all) => all,
        Err(e) => {
            let all = jobs(&pg).await;
            let mut states: HashMap<String, usize> = HashMap::new();
            for j in of_slot(&all, slot) {
                *states.entry(j.2.clone()).or_default() += 1;
            }
            panic!("{e}: {states:?}")
        }
    };
    eprintln!(
        "every job of the slot finished {:?} after the kill",
        killed.elapsed()
    );
    let mine = of_slot(&all, slot);
    let failed: Vec<&&JobRow> = mine.iter().filter(|j| j.2 != "succeeded").collect();
    assert!(failed.is_empty(), "jobs not succeeded: {failed:?}");
    // One job per meter: the slot was not fired twice.
    let meters: HashSet<&str> = mine.iter().map(|j| j.1.as_str()).collect();
    assert_eq!(mine.len(), METERS as usize, "jobs of the slot");
    assert_eq!(meters.len(), METERS as usize, "meters of the slot");
    // The jobs A was running were taken over by B: a second attempt.
    let taken_over = mine
        .iter()
        .filter(|j| running.contains(&j.0) && j.3 >= 2)
        .count();
    assert!(taken_over > 0, "no running job of A was taken over");
    eprintln!(
        "{taken_over} of the {} jobs running at the kill taken over",
        running.len()
    );
    // The store's job list through B's API agrees: nothing failed.
    let api_b = common::api(&b).await;
    let (code, failed) = api_b.get("/api/v1/jobs?state=failed").unwrap();
    assert_eq!(code, 200, "{failed}");
    assert_eq!(failed["total"], 0, "{failed}");

    // Each meter's entries, no more and no fewer, each the meter's value.
    let all_stored = stored(&pg).await;
    assert_eq!(all_stored.len(), METERS as usize, "meters with readings");
    for cell in fleet.meters() {
        let id = cell.spec.id();
        let truth = cell.lock().profile_rows(Profile::Load, i64::MIN, i64::MAX);
        let got = &all_stored[&id];
        assert_eq!(got.len(), truth.len(), "{id}: entries stored");
        for (t, row) in &truth {
            let want = match row[1] {
                dlms::Data::DoubleLongUnsigned(v) => i64::from(v),
                ref d => panic!("{id}: {d:?}"),
            };
            assert_eq!(got.get(t), Some(&want), "{id} at {t}");
        }
    }
    assert_eq!(fleet.total_replays(), 0, "a meter saw a replayed counter");

    // The next slot is B's, fired once, one job per meter.
    let next = slot + 60;
    let (token, asked) = wait_until_async(Duration::from_secs(75), "the next slot fired", || {
        common::assert_running(&mut b);
        let pg = &pg;
        async move { slots(pg).await.get(&next).copied() }
    })
    .await
    .unwrap();
    assert_eq!(token, token_b, "the next slot was not fired by B");
    assert_eq!(asked, i64::from(METERS), "jobs of the next slot");
    let all = jobs(&pg).await;
    let after = of_slot(&all, next);
    let meters: HashSet<&str> = after.iter().map(|j| j.1.as_str()).collect();
    assert_eq!(after.len(), METERS as usize, "jobs of the next slot");
    assert_eq!(meters.len(), METERS as usize, "meters of the next slot");
    // No slot was fired by both nodes: every fired slot asked one job per meter, and every
    // meter's request of a slot is in one job only.
    for (s, (_, asked)) in slots(&pg).await {
        assert_eq!(asked, i64::from(METERS), "slot {s}");
        let tag = format!("{SCHEDULE}@{s}/");
        let requests = all
            .iter()
            .flat_map(|j| j.4.iter())
            .filter(|r| r.starts_with(&tag))
            .count();
        assert_eq!(requests, METERS as usize, "requests of slot {s}");
    }
    assert_eq!(fleet.total_replays(), 0, "a meter saw a replayed counter");
    eprintln!("drill done in {:?}", started.elapsed());
    common::stop(&mut b).await;
    fleet.shutdown();
}
