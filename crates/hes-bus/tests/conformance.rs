//! One conformance suite for every adapter of the bus port: the in-process `MemoryBus` and
//! `KafkaBus` against the broker named by `HES_KAFKA_BROKERS` (`eval "$(scripts/services up)"`).
//! Each Kafka test uses topics and groups of its own, unique per run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hes_bus::kafka::{KafkaBus, BROKERS_ENV};
use hes_bus::{Bus, BusError, Consumer, Delivery, MemoryBus, Record};

/// A bus under test and how long to wait for things on it.
struct Fixture {
    bus: Arc<dyn Bus>,
    /// Unique prefix of the topics and groups of one test.
    prefix: String,
    /// Longest wait for records that must come.
    patience: Duration,
    /// How long to listen to be sure that nothing more comes.
    quiet: Duration,
}

impl Fixture {
    fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }
}

fn unique(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "conformance-{}-{nanos}-{}-{test}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn memory(test: &str) -> Fixture {
    Fixture {
        bus: Arc::new(MemoryBus::new()),
        prefix: unique(test),
        patience: Duration::from_secs(5),
        quiet: Duration::from_millis(100),
    }
}

fn memory_bounded(test: &str) -> Fixture {
    Fixture {
        bus: Arc::new(MemoryBus::bounded()),
        prefix: unique(test),
        patience: Duration::from_secs(5),
        quiet: Duration::from_millis(100),
    }
}

fn kafka(test: &str) -> Fixture {
    let brokers = std::env::var(BROKERS_ENV).unwrap_or_default();
    if brokers.trim().is_empty() {
        panic!(
            "{BROKERS_ENV} is not set: the Kafka conformance tests need a broker. \
             Run `eval \"$(scripts/services up)\"` first (and `scripts/services down` after)."
        );
    }
    Fixture {
        bus: Arc::new(KafkaBus::connect(&brokers).expect("Kafka bus")),
        prefix: unique(test),
        patience: Duration::from_secs(25),
        quiet: Duration::from_secs(2),
    }
}

/// `n` records over `keys` keys; the payload says which key and which sequence number.
fn records(tag: &str, keys: usize, per_key: usize) -> Vec<Record> {
    let mut out = Vec::new();
    for seq in 0..per_key {
        for k in 0..keys {
            out.push(Record {
                key: format!("meter-{k}"),
                payload: format!("{tag}:meter-{k}:{seq}").into_bytes(),
            });
        }
    }
    out
}

fn text(d: &Delivery) -> String {
    String::from_utf8(d.payload.clone()).unwrap()
}

/// Receives until `want` deliveries came (or patience runs out); commits each if asked.
async fn receive(
    f: &Fixture,
    c: &mut Box<dyn Consumer>,
    want: usize,
    commit: bool,
) -> Vec<Delivery> {
    let deadline = Instant::now() + f.patience;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        if let Some(d) = c.next(Duration::from_millis(500)).await.unwrap() {
            if commit {
                c.commit(&d).await.unwrap();
            }
            got.push(d);
        }
    }
    got
}

/// Asserts that nothing more arrives within the quiet time.
async fn assert_quiet(f: &Fixture, c: &mut Box<dyn Consumer>) {
    let deadline = Instant::now() + f.quiet;
    while Instant::now() < deadline {
        if let Some(d) = c.next(Duration::from_millis(200)).await.unwrap() {
            panic!("nothing more was expected, got {} ({d:?})", text(&d));
        }
    }
}

fn payloads(ds: &[Delivery]) -> Vec<String> {
    let mut v: Vec<String> = ds.iter().map(text).collect();
    v.sort();
    v
}

fn expected(rs: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = rs
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    v.sort();
    v
}

async fn round_trip_with_keys(f: Fixture) {
    let topic = f.name("t");
    f.bus.ensure_topics(&[&topic], 4).await.unwrap();
    // Ensuring twice is harmless.
    f.bus.ensure_topics(&[&topic], 4).await.unwrap();
    let sent = records("rt", 5, 4);
    f.bus.publish(&topic, sent.clone()).await.unwrap();
    let mut c = f.bus.subscribe(&[&topic], &f.name("g")).await.unwrap();
    let got = receive(&f, &mut c, sent.len(), true).await;
    assert_eq!(payloads(&got), expected(&sent));
    for d in &got {
        assert_eq!(d.topic, topic);
        assert!((0..4).contains(&d.partition), "partition {}", d.partition);
        // The key travels with the record.
        assert!(text(d).contains(&format!(":{}:", d.key)), "{d:?}");
    }
    assert_quiet(&f, &mut c).await;
    c.close(Duration::from_secs(10)).await.unwrap();
}

async fn per_key_order(f: Fixture) {
    let topic = f.name("t");
    f.bus.ensure_topics(&[&topic], 3).await.unwrap();
    let sent = records("order", 6, 15);
    // Several batches, keys interleaved within each.
    for batch in sent.chunks(20) {
        f.bus.publish(&topic, batch.to_vec()).await.unwrap();
    }
    let mut c = f.bus.subscribe(&[&topic], &f.name("g")).await.unwrap();
    let got = receive(&f, &mut c, sent.len(), true).await;
    assert_eq!(payloads(&got), expected(&sent));
    let mut seq_of_key: HashMap<String, Vec<usize>> = HashMap::new();
    let mut partition_of_key: HashMap<String, i32> = HashMap::new();
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    for d in &got {
        let seq: usize = text(d).rsplit(':').next().unwrap().parse().unwrap();
        seq_of_key.entry(d.key.clone()).or_default().push(seq);
        let p = *partition_of_key.entry(d.key.clone()).or_insert(d.partition);
        assert_eq!(p, d.partition, "key {} moved partition", d.key);
        if let Some(prev) = last_offset.insert(d.partition, d.offset) {
            assert!(
                d.offset > prev,
                "offsets go forward in partition {}",
                d.partition
            );
        }
    }
    for (key, seqs) in seq_of_key {
        assert_eq!(seqs, (0..15).collect::<Vec<_>>(), "order of key {key}");
    }
    c.close(Duration::from_secs(10)).await.unwrap();
}

async fn two_groups_each_receive_everything(f: Fixture) {
    let topic = f.name("t");
    f.bus.ensure_topics(&[&topic], 4).await.unwrap();
    let sent = records("groups", 8, 5);
    f.bus.publish(&topic, sent.clone()).await.unwrap();
    let mut a = f.bus.subscribe(&[&topic], &f.name("ga")).await.unwrap();
    let mut b = f.bus.subscribe(&[&topic], &f.name("gb")).await.unwrap();
    let (got_a, got_b) = tokio::join!(
        receive(&f, &mut a, sent.len(), true),
        receive(&f, &mut b, sent.len(), true)
    );
    assert_eq!(payloads(&got_a), expected(&sent));
    assert_eq!(payloads(&got_b), expected(&sent));
    tokio::join!(assert_quiet(&f, &mut a), assert_quiet(&f, &mut b));
    let (ra, rb) = tokio::join!(
        a.close(Duration::from_secs(10)),
        b.close(Duration::from_secs(10))
    );
    ra.unwrap();
    rb.unwrap();
}

/// What the members of one group saw: every delivery, and the records whose commit succeeded.
#[derive(Default)]
struct Shared {
    /// Everything published, and whether publishing is over.
    sent: Vec<String>,
    done: bool,
    deliveries: Vec<(usize, String)>,
    committed: HashSet<String>,
    distinct: HashSet<String>,
    violations: Vec<String>,
}

impl Shared {
    fn finished(&self) -> bool {
        self.done && self.distinct.len() >= self.sent.len()
    }
}

async fn member(
    f: Arc<Fixture>,
    id: usize,
    mut c: Box<dyn Consumer>,
    seen: Arc<Mutex<Shared>>,
) -> Box<dyn Consumer> {
    let deadline = Instant::now() + f.patience;
    while Instant::now() < deadline && !seen.lock().unwrap().finished() {
        let Some(d) = c.next(Duration::from_millis(200)).await.unwrap() else {
            continue;
        };
        let p = text(&d);
        {
            let mut s = seen.lock().unwrap();
            if s.committed.contains(&p) {
                s.violations
                    .push(format!("{p} delivered to member {id} after its commit"));
            }
            s.deliveries.push((id, p.clone()));
            s.distinct.insert(p.clone());
        }
        // A commit refused because the partition moved is fine: that record is not
        // committed and may be delivered again.
        if c.commit(&d).await.is_ok() {
            seen.lock().unwrap().committed.insert(p);
        }
    }
    c
}

/// Two members of one group consume concurrently and commit as they go, while batches are
/// published until both have received something (a member joining takes a rebalance; until
/// it is done the first member may get everything).
async fn one_group_shares_the_records(f: Fixture) {
    let f = Arc::new(f);
    let topic = f.name("t");
    f.bus.ensure_topics(&[&topic], 4).await.unwrap();
    let group = f.name("g");
    let a = f.bus.subscribe(&[&topic], &group).await.unwrap();
    let b = f.bus.subscribe(&[&topic], &group).await.unwrap();
    let seen = Arc::new(Mutex::new(Shared::default()));
    let ta = tokio::spawn(member(Arc::clone(&f), 0, a, Arc::clone(&seen)));
    let tb = tokio::spawn(member(Arc::clone(&f), 1, b, Arc::clone(&seen)));
    let deadline = Instant::now() + f.patience;
    for wave in 0.. {
        let batch = records(&format!("share{wave}"), 40, 1);
        f.bus.publish(&topic, batch.clone()).await.unwrap();
        let both = {
            let mut s = seen.lock().unwrap();
            s.sent.extend(expected(&batch));
            let members: HashSet<usize> = s.deliveries.iter().map(|(id, _)| *id).collect();
            members.len() == 2
        };
        if both || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen.lock().unwrap().done = true;
    let (a, b) = (ta.await.unwrap(), tb.await.unwrap());
    {
        let s = seen.lock().unwrap();
        assert!(s.violations.is_empty(), "{:#?}", s.violations);
        let mut distinct: Vec<String> = s.distinct.iter().cloned().collect();
        distinct.sort();
        let mut sent = s.sent.clone();
        sent.sort();
        assert_eq!(distinct, sent, "the union is everything");
        let per_member: BTreeMap<usize, usize> =
            s.deliveries.iter().fold(BTreeMap::new(), |mut m, (id, _)| {
                *m.entry(*id).or_default() += 1;
                m
            });
        assert_eq!(
            per_member.len(),
            2,
            "both members got records: {per_member:?}"
        );
        let redelivered = s.deliveries.len() - s.distinct.len();
        eprintln!(
            "one group of two: {} records, per member {per_member:?}, {redelivered} redelivered (uncommitted)",
            sent.len()
        );
    }
    let (ra, rb) = tokio::join!(
        a.close(Duration::from_secs(10)),
        b.close(Duration::from_secs(10))
    );
    ra.unwrap();
    rb.unwrap();
}

async fn a_dropped_members_partitions_go_to_the_others(f: Fixture) {
    let topic = f.name("t");
    f.bus.ensure_topics(&[&topic], 4).await.unwrap();
    let group = f.name("g");
    let sent = records("handover", 12, 2);
    f.bus.publish(&topic, sent.clone()).await.unwrap();
    let mut a = f.bus.subscribe(&[&topic], &group).await.unwrap();
    let mut b = f.bus.subscribe(&[&topic], &group).await.unwrap();
    // `a` commits what it gets until `b` got something (so both own partitions), then
    // stops and is dropped without reading further: `b` must end up with the rest.
    let mut committed = Vec::new();
    let mut refused = Vec::new();
    let mut got_b = Vec::new();
    let deadline = Instant::now() + f.patience;
    while got_b.is_empty() && Instant::now() < deadline {
        let (da, db) = tokio::join!(
            a.next(Duration::from_millis(200)),
            b.next(Duration::from_millis(200))
        );
        if let Some(d) = da.unwrap() {
            // A commit refused mid-rebalance may still have reached the coordinator: such a
            // record was processed by `a` and may or may not come again to `b`.
            if a.commit(&d).await.is_ok() {
                committed.push(text(&d));
            } else {
                refused.push(text(&d));
            }
        }
        if let Some(d) = db.unwrap() {
            // `b`'s commits may be refused too while the group rebalances (IllegalGeneration):
            // such a record comes again, or its commit reached the coordinator anyway.
            match b.commit(&d).await {
                Ok(()) => got_b.push(text(&d)),
                Err(BusError::Rebalanced(_)) => refused.push(text(&d)),
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert!(!got_b.is_empty(), "the second member got nothing");
    drop(a);
    // `b` gets everything else: at least once overall, and never again what `a` committed.
    let want: std::collections::BTreeSet<String> = expected(&sent).into_iter().collect();
    let covered = |got_b: &[String], refused: &[String]| {
        want.iter()
            .all(|r| committed.contains(r) || refused.contains(r) || got_b.contains(r))
    };
    let deadline = Instant::now() + f.patience;
    while !covered(&got_b, &refused) && Instant::now() < deadline {
        if let Some(d) = b.next(Duration::from_millis(200)).await.unwrap() {
            match b.commit(&d).await {
                Ok(()) => got_b.push(text(&d)),
                Err(BusError::Rebalanced(_)) => refused.push(text(&d)),
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert!(
        covered(&got_b, &refused),
        "records lost: {:?}",
        want.iter()
            .filter(|r| !committed.contains(r) && !refused.contains(r) && !got_b.contains(r))
            .collect::<Vec<_>>()
    );
    for r in &committed {
        assert!(!got_b.contains(r), "{r} came again after its commit");
    }
    let mut seen_b = got_b.clone();
    seen_b.sort();
    seen_b.dedup();
    assert_eq!(
        seen_b.len(),
        got_b.len(),
        "the second member got a record twice"
    );
    assert_quiet(&f, &mut b).await;
    b.close(Duration::from_secs(10)).await.unwrap();
}

async fn uncommitted_records_are_delivered_again(f: Fixture) {
    let topic = f.name("t");
    f.bus.ensure_topics(&[&topic], 4).await.unwrap();
    let group = f.name("g");
    let sent = records("again", 6, 3);
    f.bus.publish(&topic, sent.clone()).await.unwrap();
    let mut c = f.bus.subscribe(&[&topic], &group).await.unwrap();
    let first = receive(&f, &mut c, sent.len(), false).await;
    assert_eq!(payloads(&first), expected(&sent));
    drop(c); // no commit, no close: as if the process had died after reading
    let mut c = f.bus.subscribe(&[&topic], &group).await.unwrap();
    let second = receive(&f, &mut c, sent.len(), true).await;
    assert_eq!(payloads(&second), expected(&sent), "delivered again");
    c.close(Duration::from_secs(10)).await.unwrap();
}

async fn committed_records_are_not_delivered_again(f: Fixture) {
    let topic = f.name("t");
    f.bus.ensure_topics(&[&topic], 4).await.unwrap();
    let group = f.name("g");
    let before = records("before", 6, 3);
    f.bus.publish(&topic, before.clone()).await.unwrap();
    let mut c = f.bus.subscribe(&[&topic], &group).await.unwrap();
    let got = receive(&f, &mut c, before.len(), true).await;
    assert_eq!(payloads(&got), expected(&before));
    c.close(Duration::from_secs(10)).await.unwrap();
    let after = records("after", 6, 2);
    f.bus.publish(&topic, after.clone()).await.unwrap();
    let mut c = f.bus.subscribe(&[&topic], &group).await.unwrap();
    let got = receive(&f, &mut c, after.len(), true).await;
    assert_eq!(
        payloads(&got),
        expected(&after),
        "only what came after the commit"
    );
    assert_quiet(&f, &mut c).await;
    c.close(Duration::from_secs(10)).await.unwrap();
}

macro_rules! conformance {
    ($adapter:ident) => {
        mod $adapter {
            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        super::$name(super::$adapter(stringify!($name))).await;
                    }
                };
            }
            case!(round_trip_with_keys);
            case!(per_key_order);
            case!(two_groups_each_receive_everything);
            case!(one_group_shares_the_records);
            case!(a_dropped_members_partitions_go_to_the_others);
            case!(uncommitted_records_are_delivered_again);
            case!(committed_records_are_not_delivered_again);
        }
    };
}

conformance!(memory);
conformance!(memory_bounded);
conformance!(kafka);

/// Buses without consumption say so instead of pretending.
#[tokio::test]
async fn counting_bus_does_not_subscribe() {
    let bus = hes_bus::CountingBus::default();
    assert!(bus.ensure_topics(&["t"], 4).await.is_ok());
    let err = bus.subscribe(&["t"], "g").await.err().unwrap();
    assert!(err.to_string().contains("not supported"), "{err}");
}

/// `read` and `decode_all` still see every record of a partitioned `MemoryBus`.
#[tokio::test]
async fn memory_bus_read_keeps_publish_order() {
    let bus = MemoryBus::new();
    let sent = records("read", 5, 3);
    bus.publish("t", sent.clone()).await.unwrap();
    let (all, next) = bus.read("t", 0);
    assert_eq!(all, sent);
    assert_eq!(next, sent.len());
    assert_eq!(bus.len("t"), sent.len());
    assert_eq!(bus.read("t", 10).0, sent[10..].to_vec());
    let p = bus.partition_for("t", "meter-1").unwrap();
    assert_eq!(bus.partition_for("t", "meter-1"), Some(p), "stable");
    assert!((0..hes_bus::DEFAULT_PARTITIONS).contains(&p));
}

/// A bounded `MemoryBus` holds a record until every group reading its topic has committed it.
#[tokio::test]
async fn bounded_memory_bus_drops_what_every_group_committed() {
    let bus = MemoryBus::bounded();
    bus.ensure_topics(&["t"], 1).await.unwrap();
    let mut fast = bus.subscribe(&["t"], "fast").await.unwrap();
    let mut slow = bus.subscribe(&["t"], "slow").await.unwrap();
    bus.publish("t", records("b", 2, 5)).await.unwrap();
    assert_eq!(bus.held("t"), 10);
    let mut last = None;
    for _ in 0..10 {
        last = fast.next(Duration::from_secs(1)).await.unwrap();
    }
    fast.commit(last.as_ref().unwrap()).await.unwrap();
    // The slow group has not committed: everything stays.
    assert_eq!(bus.held("t"), 10);
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(slow.next(Duration::from_secs(1)).await.unwrap().unwrap());
    }
    slow.commit(got.last().unwrap()).await.unwrap();
    assert_eq!(bus.held("t"), 6);
    // The slow group goes on from where it was; nothing it has not committed is lost.
    let rest = receive_n(&mut slow, 6).await;
    assert_eq!(rest.first().unwrap().offset, 4);
    slow.commit(rest.last().unwrap()).await.unwrap();
    assert_eq!(bus.held("t"), 0);
    assert_eq!(bus.len("t"), 10);
    assert!(bus.read("t", 0).0.is_empty());
    // A group that comes later starts at what is still held.
    bus.publish("t", records("c", 1, 2)).await.unwrap();
    let mut late = bus.subscribe(&["t"], "late").await.unwrap();
    let got = receive_n(&mut late, 2).await;
    assert_eq!(got.first().unwrap().offset, 10);
}

async fn receive_n(c: &mut Box<dyn Consumer>, n: usize) -> Vec<Delivery> {
    let mut out = Vec::new();
    while out.len() < n {
        match c.next(Duration::from_secs(2)).await.unwrap() {
            Some(d) => out.push(d),
            None => panic!("got {} of {n}", out.len()),
        }
    }
    out
}
