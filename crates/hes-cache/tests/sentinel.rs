//! `RedisCache` through Redis Sentinel, for real: the test starts a master, a replica and
//! three sentinels of its own on loopback, connects the cache through the sentinels, kills
//! the master (SIGKILL) and checks that the cache goes on working on the promoted replica,
//! pub/sub included (a new subscription, as the API's live hub makes when its old one ends).
//!
//! Sentinels run as `redis-server CONF --sentinel` (the same binary; Debian's
//! `redis-sentinel` package is only a link to it). Without `redis-server` the test fails,
//! saying so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use dlms::ObisCode;
use hes_cache::{Cache, RecvError, RedisCache, RedisTarget};
use hes_model::{MeterId, Reading, Source};
use hes_testkit::{wait_until_async, Proc, TempDir};

const MASTER_NAME: &str = "hes";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn redis(name: &str, dir: &TempDir, port: u16, extra: &[&str]) -> Proc {
    let mut c = Command::new("redis-server");
    c.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .args(extra);
    Proc::spawn(name, c).unwrap()
}

fn sentinel(i: usize, dir: &TempDir, port: u16, master_port: u16) -> Proc {
    // Sentinel rewrites its configuration file: one per sentinel.
    let conf = dir.join(format!("sentinel{i}.conf"));
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 10000\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut c = Command::new("redis-server");
    c.arg(&conf).arg("--sentinel");
    Proc::spawn(&format!("sentinel{i}"), c).unwrap()
}

/// `cmd` on the server at `port`, or `None` when it does not answer.
async fn ask<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut con = client.get_multiplexed_async_connection().await.ok()?;
    cmd.query_async(&mut con).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_follows_the_master_through_a_sentinel_failover() {
    assert!(
        Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok(),
        "no redis-server: run scripts/services up (it installs it)"
    );
    let dir = TempDir::new("hes_sentinel").unwrap();
    let (mport, rport) = (free_port(), free_port());
    let mut master = redis("master", &dir, mport, &[]);
    let _replica = redis(
        "replica",
        &dir,
        rport,
        &["--replicaof", "127.0.0.1", &mport.to_string()],
    );
    let sports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let _sentinels: Vec<Proc> = sports
        .iter()
        .enumerate()
        .map(|(i, p)| sentinel(i, &dir, *p, mport))
        .collect();

    // Ready when the replica is in sync and every sentinel knows the replica and the two
    // other sentinels (a failover needs the quorum to agree).
    wait_until_async(
        Duration::from_secs(30),
        "replica in sync, sentinels acquainted",
        || async {
            let info: String = ask(rport, redis::cmd("INFO").arg("replication")).await?;
            if !info.contains("master_link_status:up") {
                return None;
            }
            for p in &sports {
                let others: Vec<redis::Value> =
                    ask(*p, redis::cmd("SENTINEL").arg("sentinels").arg(MASTER_NAME)).await?;
                let replicas: Vec<redis::Value> =
                    ask(*p, redis::cmd("SENTINEL").arg("replicas").arg(MASTER_NAME)).await?;
                if others.len() < 2 || replicas.is_empty() {
                    return None;
                }
            }
            Some(())
        },
    )
    .await
    .unwrap();

    let sentinels = sports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let target = RedisTarget::from_parts("", &sentinels, MASTER_NAME)
        .unwrap()
        .unwrap();
    let cache = RedisCache::connect_to(&target, "hes-sentinel-test")
        .await
        .unwrap();
    let m = MeterId::from("sentinel-meter");
    cache.mark_seen(&m, 100).await.unwrap();
    assert_eq!(cache.last_seen(&m).await.unwrap(), Some(100));
    let mut before = cache.subscribe("live").await.unwrap();
    cache.publish("live", b"one").await.unwrap();
    assert_eq!(before.recv().await.unwrap(), b"one".to_vec());

    let killed = Instant::now();
    master.kill();

    // The cache's calls wait for the promotion and then succeed on the new master.
    let mut t = 200;
    wait_until_async(Duration::from_secs(60), "a write on the new master", || {
        t += 1;
        let (cache, m, t) = (&cache, &m, t);
        async move { cache.mark_seen(m, t).await.ok() }
    })
    .await
    .unwrap();
    let resumed = killed.elapsed();
    assert_eq!(cache.last_seen(&m).await.unwrap(), Some(t));
    let role: Vec<redis::Value> = ask(rport, &redis::cmd("ROLE")).await.unwrap();
    assert_eq!(
        role.first(),
        Some(&redis::Value::BulkString(b"master".to_vec())),
        "the replica was promoted"
    );
    println!("redis failover: writes succeed again {resumed:?} after the master was killed");

    // The subscription on the old master ends; a new one lands on the new master.
    let ended = tokio::time::timeout(Duration::from_secs(10), before.recv())
        .await
        .unwrap();
    assert_eq!(ended, Err(RecvError::Closed));
    let mut after = cache.subscribe("live").await.unwrap();
    assert_eq!(cache.publish("live", b"two").await.unwrap(), 1);
    assert_eq!(after.recv().await.unwrap(), b"two".to_vec());
    for i in 0..20 {
        cache.mark_seen(&m, 1_000 + i).await.unwrap();
    }
    assert_eq!(cache.last_seen(&m).await.unwrap(), Some(1_019));
    // The latest-value script, which the new master never saw loaded.
    let r = Reading {
        meter: m.clone(),
        obis: ObisCode([1, 0, 1, 8, 0, 255]),
        class_id: 3,
        attribute: 2,
        time: 1_000,
        value: 42,
        scaler: 0,
        unit: 30,
        status: 0,
        source: Source::Scheduled,
        received_at: 1_001,
    };
    assert_eq!(cache.put_latest(std::slice::from_ref(&r)).await.unwrap(), 1);
    assert_eq!(cache.latest(&m).await.unwrap(), vec![r]);
    cache.purge().await.unwrap();
}
