//! The cache conformance suite: every case runs against `MemoryCache` and against `RedisCache`
//! on the real Redis named by `HES_REDIS_URL` (`eval "$(scripts/services up)"`), each Redis
//! case under its own key prefix, deleted at the end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use dlms::ObisCode;
use hes_cache::{Cache, MemoryCache, RecvError, RedisCache, Subscription};
use hes_model::{MeterId, Reading, Source};

/// Small, so that the lag case overflows it quickly.
const CAPACITY: usize = 8;
const WAIT: Duration = Duration::from_secs(5);

fn obis(c: u8, e: u8) -> ObisCode {
    ObisCode([1, 0, c, 8, e, 255])
}

fn reading(meter: &str, obis: ObisCode, attribute: i8, time: i64, value: i64) -> Reading {
    Reading {
        meter: MeterId::from(meter),
        obis,
        class_id: 3,
        attribute,
        time,
        value,
        scaler: -3,
        unit: 30,
        status: 0,
        source: Source::Scheduled,
        received_at: 1_800_000_000 + time,
    }
}

async fn recv(s: &mut Subscription) -> Result<Vec<u8>, RecvError> {
    tokio::time::timeout(WAIT, s.recv())
        .await
        .expect("no payload within 5 s")
}

async fn latest_wins_by_meter_time(c: &dyn Cache) {
    let m = MeterId::from("m1");
    let energy = obis(1, 0);
    assert_eq!(
        c.put_latest(&[reading("m1", energy, 2, 200, 2)])
            .await
            .unwrap(),
        1
    );
    // An older reading arriving late does not replace the newer one.
    assert_eq!(
        c.put_latest(&[reading("m1", energy, 2, 100, 1)])
            .await
            .unwrap(),
        0
    );
    assert_eq!(c.latest_one(&m, energy, 2).await.unwrap().unwrap().value, 2);
    // Within one batch too: the newest by meter time wins, not the last in the batch.
    let batch = [
        reading("m1", energy, 2, 300, 3),
        reading("m1", energy, 2, 250, 25),
    ];
    assert_eq!(c.put_latest(&batch).await.unwrap(), 1);
    assert_eq!(c.latest_one(&m, energy, 2).await.unwrap().unwrap().value, 3);
    // The same meter time replaces (a re-read or a correction of the same value).
    assert_eq!(
        c.put_latest(&[reading("m1", energy, 2, 300, 30)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        c.latest_one(&m, energy, 2).await.unwrap().unwrap().value,
        30
    );
    // Negative times order correctly too.
    let other = obis(2, 0);
    c.put_latest(&[reading("m1", other, 2, -5, 1)])
        .await
        .unwrap();
    c.put_latest(&[reading("m1", other, 2, -10, 2)])
        .await
        .unwrap();
    assert_eq!(c.latest_one(&m, other, 2).await.unwrap().unwrap().value, 1);
    assert_eq!(c.latest(&m).await.unwrap().len(), 2);
}

async fn per_key_independence(c: &dyn Cache) {
    let (a, b) = (MeterId::from("a"), MeterId::from("b"));
    let (x, y) = (obis(1, 0), obis(2, 0));
    let mut full = reading("a", x, 3, 500, i64::MIN);
    full.status = 0x80;
    full.source = Source::Push;
    full.scaler = -128;
    let batch = vec![
        reading("a", x, 2, 1000, 1),
        reading("a", y, 2, 10, 2),
        full.clone(),
        reading("b", x, 2, 5, i64::MAX),
    ];
    assert_eq!(c.put_latest(&batch).await.unwrap(), 4);
    // An older value of one key leaves the others alone, and is itself ignored.
    assert_eq!(
        c.put_latest(&[reading("a", x, 2, 999, 9)]).await.unwrap(),
        0
    );
    // A newer value of a key whose neighbours are newer still is stored.
    assert_eq!(
        c.put_latest(&[reading("a", y, 2, 11, 22)]).await.unwrap(),
        1
    );

    let got_a = c.latest(&a).await.unwrap();
    let keys: Vec<_> = got_a
        .iter()
        .map(|r| (r.obis, r.attribute, r.value))
        .collect();
    assert_eq!(keys, vec![(x, 2, 1), (x, 3, i64::MIN), (y, 2, 22)]);
    // Every field survives the round trip.
    assert_eq!(c.latest_one(&a, x, 3).await.unwrap(), Some(full));
    assert_eq!(c.latest(&b).await.unwrap(), vec![batch[3].clone()]);
    assert_eq!(c.latest_one(&b, y, 2).await.unwrap(), None);
    assert_eq!(c.latest_one(&b, x, 3).await.unwrap(), None);
    assert!(c.latest(&MeterId::from("nobody")).await.unwrap().is_empty());
    assert_eq!(c.put_latest(&[]).await.unwrap(), 0);
}

async fn last_seen_and_online_window(c: &dyn Cache) {
    let (a, b, n) = (
        MeterId::from("a"),
        MeterId::from("b"),
        MeterId::from("never"),
    );
    assert_eq!(c.last_seen(&a).await.unwrap(), None);
    c.mark_seen(&a, 1_000).await.unwrap();
    // Last seen never goes back.
    c.mark_seen(&a, 900).await.unwrap();
    c.mark_seen(&b, 500).await.unwrap();
    assert_eq!(c.last_seen(&a).await.unwrap(), Some(1_000));
    assert_eq!(c.last_seen(&b).await.unwrap(), Some(500));
    let meters = [a.clone(), b.clone(), n.clone()];
    let on = c.online(&meters, 1_100, 300).await.unwrap();
    assert_eq!(
        on,
        vec![(a.clone(), true), (b.clone(), false), (n.clone(), false)]
    );
    // The window's edge is inclusive.
    let on = c.online(&meters, 1_300, 300).await.unwrap();
    assert_eq!(on[0], (a.clone(), true));
    let on = c.online(&meters, 1_301, 300).await.unwrap();
    assert_eq!(on[0], (a.clone(), false));
    c.mark_seen(&b, 1_290).await.unwrap();
    let on = c
        .online(std::slice::from_ref(&b), 1_301, 300)
        .await
        .unwrap();
    assert_eq!(on, vec![(b, true)]);
    assert!(c.online(&[], 0, 0).await.unwrap().is_empty());
    // Unix-second times of this century are exact.
    c.mark_seen(&n, 1_893_456_000).await.unwrap();
    assert_eq!(c.last_seen(&n).await.unwrap(), Some(1_893_456_000));
}

async fn pubsub_delivers_to_two_subscribers(c: &dyn Cache) {
    let mut s1 = c.subscribe("live").await.unwrap();
    let mut s2 = c.subscribe("live").await.unwrap();
    let mut other = c.subscribe("other").await.unwrap();
    assert_eq!(c.publish("live", b"a").await.unwrap(), 2);
    assert_eq!(c.publish("live", b"b").await.unwrap(), 2);
    assert_eq!(c.publish("other", b"o").await.unwrap(), 1);
    for s in [&mut s1, &mut s2] {
        assert_eq!(recv(s).await.unwrap(), b"a");
        assert_eq!(recv(s).await.unwrap(), b"b");
    }
    assert_eq!(recv(&mut other).await.unwrap(), b"o");
    // A dropped subscriber no longer counts.
    drop(s2);
    let deadline = Instant::now() + WAIT;
    loop {
        let n = c.publish("live", b"c").await.unwrap();
        assert_eq!(recv(&mut s1).await.unwrap(), b"c");
        if n == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dropped subscription is still counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn late_subscriber_misses_earlier_payloads(c: &dyn Cache) {
    assert_eq!(c.publish("late", b"before").await.unwrap(), 0);
    let mut s = c.subscribe("late").await.unwrap();
    c.publish("late", b"after").await.unwrap();
    assert_eq!(recv(&mut s).await.unwrap(), b"after");
    assert!(tokio::time::timeout(Duration::from_millis(100), s.recv())
        .await
        .is_err());
}

async fn slow_subscriber_loses_the_oldest(c: &dyn Cache) {
    let mut s = c.subscribe("slow").await.unwrap();
    let total = 3 * CAPACITY as u64;
    for i in 0..total {
        c.publish("slow", i.to_string().as_bytes()).await.unwrap();
    }
    let (mut got, mut lost) = (Vec::new(), 0);
    while got.last() != Some(&(total - 1)) {
        match recv(&mut s).await {
            Ok(p) => got.push(String::from_utf8(p).unwrap().parse::<u64>().unwrap()),
            Err(RecvError::Lagged(n)) => lost += n,
            Err(RecvError::Closed) => panic!("closed"),
        }
    }
    // What arrives is in order and what is lost is counted: nothing vanishes unannounced.
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    assert_eq!(got.len() as u64 + lost, total, "got {got:?}, lost {lost}");
    assert!(got.len() >= CAPACITY);
}

async fn many_keys(c: &dyn Cache) {
    // 100 meters x 50 objects x 2 attributes = 10 000 readings in one batch.
    let batch: Vec<Reading> = (0..100)
        .flat_map(|m| {
            (0..50u8).flat_map(move |o| {
                (2..4).map(move |a| reading(&format!("m{m:03}"), obis(o, 0), a, 1_000, m))
            })
        })
        .collect();
    assert_eq!(batch.len(), 10_000);
    let t = Instant::now();
    assert_eq!(c.put_latest(&batch).await.unwrap(), 10_000);
    let put = t.elapsed();
    // Half of them again, older; the other half newer.
    let again: Vec<Reading> = batch
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            r.time += if i % 2 == 0 { -1 } else { 1 };
            r.value += 1_000;
            r
        })
        .collect();
    assert_eq!(c.put_latest(&again).await.unwrap(), 5_000);
    let t = Instant::now();
    for m in 0..100 {
        let got = c
            .latest(&MeterId::from(format!("m{m:03}").as_str()))
            .await
            .unwrap();
        assert_eq!(got.len(), 100);
        assert!(got.iter().all(
            |r| (r.time == 1_000 && r.value == m) || (r.time == 1_001 && r.value == m + 1_000)
        ));
    }
    eprintln!(
        "10 000 readings: put {put:?}, latest of 100 meters {:?}",
        t.elapsed()
    );
}

fn redis_url() -> String {
    match std::env::var("HES_REDIS_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "HES_REDIS_URL is not set: run `eval \"$(scripts/services up)\"` (scripts/test does)"
        ),
    }
}

async fn redis_cache(case: &str) -> RedisCache {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("hes-cache-test:{}-{nanos}:{case}", std::process::id());
    RedisCache::connect(&redis_url(), &prefix)
        .await
        .unwrap()
        .with_subscriber_capacity(CAPACITY)
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let c = super::MemoryCache::with_subscriber_capacity(super::CAPACITY);
                    super::$case(&c).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let c = super::redis_cache(stringify!($case)).await;
                    // In a task, so that the keys are deleted when the case fails too.
                    let run = c.clone();
                    let outcome = tokio::spawn(async move { super::$case(&run).await }).await;
                    c.purge().await.unwrap();
                    if let Err(e) = outcome {
                        std::panic::resume_unwind(e.into_panic());
                    }
                    // Nothing is left under the prefix.
                    assert_eq!(c.purge().await.unwrap(), 0);
                }
            )*
        }
    };
}

conformance!(
    latest_wins_by_meter_time,
    per_key_independence,
    last_seen_and_online_window,
    pubsub_delivers_to_two_subscribers,
    late_subscriber_misses_earlier_payloads,
    slow_subscriber_loses_the_oldest,
    many_keys,
);

/// In process the loss is exact: the oldest payloads beyond the capacity.
#[tokio::test]
async fn memory_lag_is_exact() {
    let c = MemoryCache::with_subscriber_capacity(CAPACITY);
    let mut s = c.subscribe("slow").await.unwrap();
    for i in 0..20u8 {
        c.publish("slow", &[i]).await.unwrap();
    }
    assert_eq!(s.recv().await, Err(RecvError::Lagged(20 - CAPACITY as u64)));
    assert_eq!(s.recv().await.unwrap(), vec![20 - CAPACITY as u8]);
}

/// A subscription outlives nothing: dropping the cache closes it.
#[tokio::test]
async fn memory_subscription_closes_with_the_cache() {
    let c = MemoryCache::new();
    let mut s = c.subscribe("x").await.unwrap();
    drop(c);
    assert_eq!(s.recv().await, Err(RecvError::Closed));
}

const RACED_CHANNELS: u8 = 16;

async fn write_in_order(c: &dyn Cache, m: &MeterId, times: Vec<i64>) {
    for t in times {
        let batch: Vec<Reading> = (0..RACED_CHANNELS)
            .map(|o| reading(&m.0, obis(o, 0), 2, t, t))
            .collect();
        c.put_latest(&batch).await.unwrap();
        c.mark_seen(m, t).await.unwrap();
    }
}

/// Two head-ends (two connections, for Redis) write the same channels at once, neck and neck
/// (one the even times, the other the odd ones, both ascending): the newest meter time wins
/// on every channel, and last seen ends at the greatest time. (A regression check: a
/// compare-then-write that is not atomic fails it only now and then; atomicity rests on the
/// Lua script.)
async fn two_writers_keep_the_newest(a: &dyn Cache, b: &dyn Cache) {
    let m = MeterId::from("raced");
    let evens: Vec<i64> = (0..400).map(|i| 2 * i).collect();
    let odds: Vec<i64> = (0..400).map(|i| 2 * i + 1).collect();
    tokio::join!(write_in_order(a, &m, evens), write_in_order(b, &m, odds));
    for c in [a, b] {
        let got = c.latest(&m).await.unwrap();
        assert_eq!(got.len(), usize::from(RACED_CHANNELS));
        for r in got {
            assert_eq!((r.time, r.value), (799, 799), "{}", r.obis);
        }
        assert_eq!(c.last_seen(&m).await.unwrap(), Some(799));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_two_writers_keep_the_newest() {
    let c = MemoryCache::new();
    two_writers_keep_the_newest(&c, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_writers_keep_the_newest() {
    let a = redis_cache("two_writers").await;
    let b = RedisCache::connect(&redis_url(), a.prefix()).await.unwrap();
    let (ra, rb) = (a.clone(), b.clone());
    let outcome = tokio::spawn(async move { two_writers_keep_the_newest(&ra, &rb).await }).await;
    a.purge().await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
