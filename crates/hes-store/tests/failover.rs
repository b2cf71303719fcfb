//! `PgStore` through a PostgreSQL failover, for real: the test makes its own primary and a
//! synchronous standby (`pg_basebackup -R`) on loopback, connects the store with the two-host
//! URL and `target_session_attrs=read-write`, writes without pause, kills the primary
//! (`pg_ctl stop -m immediate`), promotes the standby, and checks that the store goes on
//! writing to the new primary and that every write it acknowledged is there.
//!
//! Needs the PostgreSQL server binaries (`/usr/lib/postgresql/*/bin`, as `scripts/services`
//! installs them); without them the test fails, saying so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dlms::ObisCode;
use hes_model::{MeterId, Reading, Source};
use hes_store::{PgStore, Store};

mod common;
use common::cluster::{self, Server};

const ENERGY: ObisCode = ObisCode([1, 0, 1, 8, 0, 255]);
/// 2026-11-01T00:00:00Z
const T0: i64 = 1_793_491_200;

fn reading(n: i64) -> Reading {
    Reading {
        meter: MeterId::from("failover-meter"),
        obis: ENERGY,
        class_id: 3,
        attribute: 2,
        time: T0 + n * 900,
        value: n,
        scaler: 0,
        unit: 30,
        status: 0,
        source: Source::Scheduled,
        received_at: T0 + n * 900 + 7,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_follows_the_primary_through_a_failover_and_loses_nothing_acknowledged() {
    let bin = cluster::pg_bin();
    let root = cluster::root_dir("hes_failover");
    // The primary: commits wait for the standby's flush (`synchronous_standby_names`), as the
    // zones' synchronous replica does, so an acknowledged write survives the primary.
    let primary = Server::init(&bin, &root, "primary", "synchronous_standby_names = '*'\n");

    let standby = Server {
        bin: bin.clone(),
        data: root.join("standby"),
        port: cluster::free_port(),
    };
    let pport = primary.port.to_string();
    Server::run(
        &bin,
        "pg_basebackup",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &pport,
            "-U",
            "postgres",
            "-D",
            standby.data.to_str().unwrap(),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        ],
    );
    // The copied configuration names the primary's port and its synchronous standby: the
    // later lines win. Once promoted it is alone, and a primary whose synchronous standby is
    // missing waits for ever at every commit (a failover manager changes the setting then).
    cluster::append(
        &standby.data.join("postgresql.conf"),
        &format!("port = {}\nsynchronous_standby_names = ''\n", standby.port),
    );
    standby.start();

    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let store = Arc::new(PgStore::connect(&url).await.unwrap());

    // One writer, one reading per call, as fast as the store acknowledges them.
    let acked: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, acked, failed, stop) =
            (store.clone(), acked.clone(), failed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                match store.insert_readings(&[reading(n)]).await {
                    Ok(_) => acked.lock().unwrap().push((n, Instant::now())),
                    Err(e) => failed.lock().unwrap().push(format!("reading {n}: {e}")),
                }
                n += 1;
            }
        })
    };
    let acked_count = || acked.lock().unwrap().len();
    let wait_for = |target: usize, what: &'static str| {
        let (acked_count, failed) = (&acked_count, &failed);
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while acked_count() < target {
                if Instant::now() >= deadline {
                    let failed = failed.lock().unwrap().clone();
                    panic!("{what}: {} acked; failed: {failed:?}", acked_count());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for(100, "writes on the first primary").await;

    // The primary dies; the failover manager promotes the standby.
    let killing = Instant::now();
    primary.stop_immediately();
    let killed = Instant::now();
    let before = acked_count();
    standby.ctl(&["-w", "-t", "60", "promote"]);
    let promoted = killed.elapsed();
    wait_for(before + 100, "writes on the promoted standby").await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    let acked = acked.lock().unwrap().clone();
    let resumed = acked
        .iter()
        .find(|(_, at)| *at > killed)
        .map(|(_, at)| at.duration_since(killed))
        .unwrap();
    // The writer's longest wait between two acknowledgements: what the failover cost it.
    let gap = acked
        .windows(2)
        .map(|w| w[1].1.duration_since(w[0].1))
        .max()
        .unwrap();
    println!(
        "failover: {} writes acknowledged; the kill took {:?}, the promotion {promoted:?}; \
         the first write on the new primary was acknowledged {resumed:?} after the old one was \
         gone; longest wait between two acknowledged writes {gap:?}",
        acked.len(),
        killed.duration_since(killing)
    );
    assert!(
        failed.lock().unwrap().is_empty(),
        "calls failed instead of waiting for the new primary: {:?}",
        failed.lock().unwrap()
    );

    // Every acknowledged reading is on the new primary (read there alone).
    let on_new = PgStore::connect(&standby.url()).await.unwrap();
    let stored: std::collections::BTreeSet<i64> = on_new
        .readings(&MeterId::from("failover-meter"), ENERGY, T0, i64::MAX)
        .await
        .unwrap()
        .iter()
        .map(|r| r.value)
        .collect();
    let lost: Vec<i64> = acked
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !stored.contains(n))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    drop(on_new);
    drop(store);
    drop(standby);
    drop(primary);
    let _ = std::fs::remove_dir_all(&root);
}
