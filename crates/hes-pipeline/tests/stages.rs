//! The stages as consumer groups, end to end: raw readings in, validated readings, events and
//! per-meter and per-group aggregates out, with late data, replays and bad records. One
//! scenario, run on the embedded adapters (in-process bus, SQLite, in-process cache) and on
//! the real services (Kafka, PostgreSQL, Redis from `scripts/services up`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dlms::ObisCode;
use hes_bus::{Bus, MemoryBus, Record};
use hes_cache::{Cache, MemoryCache};
use hes_model::{topics, Aggregate, MeterId, Period, Quality, Reading, Source};
use hes_pipeline::run::{
    run_process, run_validate, Groups, ProcessDeps, StageConfig, StageStats, DEAD_LETTER,
};
use hes_pipeline::Rules;
use hes_store::Store;
use tokio::sync::watch;

const A_PLUS: ObisCode = ObisCode([1, 0, 1, 8, 0, 255]);

/// Midnight UTC two days before now: recent enough for validation, wholly in the past.
fn day0() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now - now.rem_euclid(86_400) - 2 * 86_400
}

fn reading(meter: &str, time: i64, value: i64) -> Reading {
    Reading {
        meter: meter.into(),
        obis: A_PLUS,
        class_id: 3,
        attribute: 2,
        time,
        value,
        scaler: 0,
        unit: 30,
        status: 0,
        source: Source::Scheduled,
        received_at: time + 60,
    }
}

/// One day of a meter's 15-minute register, 250 Wh per interval: 97 entries, midnight to
/// midnight.
fn day_of(meter: &str, d0: i64) -> Vec<Reading> {
    (0..=96)
        .map(|k| reading(meter, d0 + k * 900, 10_000 + k * 250))
        .collect()
}

struct OneGroup {
    name: String,
    members: Vec<MeterId>,
}

impl Groups for OneGroup {
    fn of(&self, m: &MeterId) -> Vec<String> {
        if self.members.contains(m) {
            vec![self.name.clone()]
        } else {
            Vec::new()
        }
    }
    fn members(&self, g: &str) -> Vec<MeterId> {
        if g == self.name {
            self.members.clone()
        } else {
            Vec::new()
        }
    }
}

struct Running {
    stop: watch::Sender<bool>,
    validate: tokio::task::JoinHandle<()>,
    process: tokio::task::JoinHandle<()>,
    stats: Arc<StageStats>,
    vstats: Arc<StageStats>,
}

fn start(bus: Arc<dyn Bus>, deps: ProcessDeps, tag: &str) -> Running {
    let (stop, rx) = watch::channel(false);
    let stats = Arc::new(StageStats::default());
    let vstats = Arc::new(StageStats::default());
    let mut vcfg = StageConfig::new(&format!("validate-{tag}"));
    vcfg.linger = Duration::from_millis(100);
    let mut pcfg = StageConfig::new(&format!("process-{tag}"));
    pcfg.linger = Duration::from_millis(100);
    let validate = tokio::spawn({
        let (bus, vstats, rx) = (bus.clone(), vstats.clone(), rx.clone());
        async move {
            run_validate(bus, Rules::default(), vcfg, vstats, rx)
                .await
                .unwrap();
        }
    });
    let process = tokio::spawn({
        let (stats, rx) = (stats.clone(), rx);
        async move {
            run_process(deps, pcfg, stats, rx).await.unwrap();
        }
    });
    Running {
        stop,
        validate,
        process,
        stats,
        vstats,
    }
}

impl Running {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.validate)
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.process)
            .await
            .unwrap()
            .unwrap();
    }
}

/// Waits (bounded) until `f` holds.
async fn until<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn day_aggregate(store: &dyn Store, subject: &str, d0: i64) -> Option<Aggregate> {
    store
        .aggregates(
            &[subject.to_string()],
            Some("energy.active.import"),
            Period::Day,
            d0,
            d0,
        )
        .await
        .unwrap()
        .into_iter()
        .next()
}

async fn hour_aggregates(store: &dyn Store, subject: &str, d0: i64) -> Vec<Aggregate> {
    store
        .aggregates(
            &[subject.to_string()],
            Some("energy.active.import"),
            Period::Hour,
            d0,
            d0 + 86_399,
        )
        .await
        .unwrap()
}

/// The scenario: three meters in one group, one with a missing entry that arrives late, a
/// replay of everything, a reading from the future, and an undecodable record.
async fn scenario(bus: Arc<dyn Bus>, store: Arc<dyn Store>, cache: Arc<dyn Cache>, tag: &str) {
    let d0 = day0();
    let m: Vec<String> = (1..=3).map(|i| format!("{tag}-m{i}")).collect();
    let group = format!("feeder={tag}");
    let groups = Arc::new(OneGroup {
        name: group.clone(),
        members: m.iter().map(|x| MeterId(x.clone())).collect(),
    });
    let deps = ProcessDeps {
        bus: bus.clone(),
        store: store.clone(),
        cache: Some(cache.clone()),
        groups,
        rules: Arc::new(Rules::default()),
    };
    let run = start(bus.clone(), deps, tag);
    let mut all = Vec::new();
    for meter in &m {
        all.extend(day_of(meter, d0));
    }
    // Meter 2 misses 10:15 (it comes later).
    let late_t = d0 + 41 * 900;
    let late = all
        .iter()
        .position(|r| r.meter.0 == m[1] && r.time == late_t)
        .unwrap();
    let late = all.remove(late);
    // Meter 3 has a register entry from tomorrow: flagged, stored, not aggregated.
    let future = reading(&m[2], d0 + 3 * 86_400, 99_999);
    all.push(future.clone());
    let total = all.len() as u64;
    hes_bus::publish_readings(&*bus, &all).await.unwrap();
    // An undecodable record among them.
    bus.publish(
        topics::READINGS_RAW,
        vec![Record {
            key: m[0].clone(),
            payload: b"\xff\xffnot a batch".to_vec(),
        }],
    )
    .await
    .unwrap();

    let s = store.clone();
    let g = group.clone();
    until("the group's day aggregate", 60, || {
        let (s, g) = (s.clone(), g.clone());
        async move { day_aggregate(&*s, &g, d0).await.is_some() }
    })
    .await;
    until("every reading stored", 60, || async {
        StageStats::get(&run.stats.readings) >= total
    })
    .await;
    // The undecodable record came after the readings: it may be handled a batch later.
    until("the dead letter", 30, || async {
        StageStats::get(&run.vstats.dead_letters) >= 1
    })
    .await;
    assert_eq!(StageStats::get(&run.vstats.dead_letters), 1);
    // Everything stored once, the future entry flagged.
    let stored_m3 = store
        .meter_readings(&MeterId(m[2].clone()), None, d0, d0 + 4 * 86_400, 1000)
        .await
        .unwrap();
    assert_eq!(stored_m3.len(), 98);
    let f = stored_m3
        .iter()
        .find(|v| v.reading.time == future.time)
        .unwrap();
    assert!(f.quality.has(Quality::FUTURE), "{:?}", f.quality);

    // Meter 1: 24 complete hours of 1 kWh, a complete day of 24 kWh, measured.
    let hours = hour_aggregates(&*store, &m[0], d0).await;
    assert_eq!(hours.len(), 24);
    assert!(hours
        .iter()
        .all(|h| h.total == 1000.0 && h.complete && h.count == 4));
    let day1 = day_aggregate(&*store, &m[0], d0).await.unwrap();
    assert_eq!(
        (day1.total, day1.count, day1.complete),
        (24_000.0, 96, true)
    );
    assert!(day1.quality_worst.is_ok(), "{:?}", day1.quality_worst);
    // Meter 2: the gap is estimated (same energy, flagged), the day still adds up.
    let day2 = day_aggregate(&*store, &m[1], d0).await.unwrap();
    assert_eq!(day2.total, 24_000.0);
    assert!(day2.quality_worst.has(Quality::ESTIMATED), "{day2:?}");
    // The month holds the day.
    let month = store
        .aggregates(
            &[m[0].clone()],
            Some("energy.active.import"),
            Period::Month,
            Period::Month.start(d0),
            Period::Month.start(d0),
        )
        .await
        .unwrap();
    assert_eq!(month.len(), 1);
    assert!(month[0].total >= 24_000.0);
    // The group: the sum of its three meters.
    let gday = day_aggregate(&*store, &group, d0).await.unwrap();
    assert_eq!(gday.total, 72_000.0);
    assert_eq!(gday.count, 3 * 96);
    // The cache has each meter's newest value and its presence.
    let latest = cache.latest(&MeterId(m[0].clone())).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].time, d0 + 86_400);
    assert!(cache
        .last_seen(&MeterId(m[0].clone()))
        .await
        .unwrap()
        .is_some());

    // The late entry: meter 2's hour and day are recomputed as measured.
    hes_bus::publish_readings(&*bus, std::slice::from_ref(&late))
        .await
        .unwrap();
    let s = store.clone();
    let m2 = m[1].clone();
    let g = group.clone();
    // The group's day is written after its members' in the same batch: waited for too, or a
    // loaded machine reads it in between.
    until("meter 2's day and the group's to be measured", 60, || {
        let (s, m2, g) = (s.clone(), m2.clone(), g.clone());
        async move {
            day_aggregate(&*s, &m2, d0)
                .await
                .is_some_and(|d| d.quality_worst.is_ok() && d.complete)
                && day_aggregate(&*s, &g, d0)
                    .await
                    .is_some_and(|d| !d.quality_worst.has(Quality::ESTIMATED))
        }
    })
    .await;
    let gday = day_aggregate(&*store, &group, d0).await.unwrap();
    assert_eq!(gday.total, 72_000.0);
    assert!(!gday.quality_worst.has(Quality::ESTIMATED), "{gday:?}");

    // A replay of everything stores nothing new and changes no aggregate.
    let before = store.count_readings().await.unwrap();
    let aggs_before = hour_aggregates(&*store, &m[1], d0).await;
    let seen = StageStats::get(&run.stats.readings);
    hes_bus::publish_readings(&*bus, &all).await.unwrap();
    until("the replay processed", 60, || async {
        StageStats::get(&run.stats.readings) >= seen + total
    })
    .await;
    assert_eq!(store.count_readings().await.unwrap(), before);
    let aggs_after = hour_aggregates(&*store, &m[1], d0).await;
    assert_eq!(
        aggs_before
            .iter()
            .map(|a| (a.period_start, a.total))
            .collect::<BTreeMap<_, _>>(),
        aggs_after
            .iter()
            .map(|a| (a.period_start, a.total))
            .collect::<BTreeMap<_, _>>()
    );
    run.stop().await;
    processed_is_what_is_stored(&*bus, &*store, &m, &group, d0, tag).await;
}

type IntervalKey = (String, String, i64);
type AggregateKey = (String, String, Period, i64);

/// What `hes.readings.processed` carried, the latest record per natural key winning (as a
/// consumer keeps it), against the store: every meter's and the group's aggregates equal the
/// stored rows, and the intervals equal those the stored readings give (gaps estimated).
async fn processed_is_what_is_stored(
    bus: &dyn Bus,
    store: &dyn Store,
    meters: &[String],
    group: &str,
    d0: i64,
    tag: &str,
) {
    let (lo, hi) = (d0 - 86_400, d0 + 4 * 86_400);
    let mut want_aggs: BTreeMap<AggregateKey, Aggregate> = BTreeMap::new();
    for period in Period::ALL {
        let mut subjects = meters.to_vec();
        // A group's hours are not stored (summed at query time), so never published.
        if period != Period::Hour {
            subjects.push(group.to_string());
        }
        for a in store
            .aggregates(&subjects, None, period, period.start(lo), hi)
            .await
            .unwrap()
        {
            want_aggs.insert(
                (
                    a.subject.clone(),
                    a.channel.clone(),
                    a.period,
                    a.period_start,
                ),
                a,
            );
        }
    }
    let ids: Vec<MeterId> = meters.iter().map(|m| MeterId(m.clone())).collect();
    let stored = store.readings_of_meters(&ids, lo, hi).await.unwrap();
    let rules = Rules::default();
    let want_ivs: BTreeMap<IntervalKey, hes_proto::ProcessedInterval> =
        hes_pipeline::estimate_gaps_with(
            &hes_pipeline::intervals_with(&stored, &rules),
            rules.interval,
        )
        .iter()
        .map(hes_pipeline::run::processed_interval)
        .map(|i| ((i.meter.0.clone(), i.channel.clone(), i.interval_end), i))
        .collect();
    assert!(want_ivs.len() >= 3 * 96 && want_aggs.len() > 3 * 24);
    let mut c = bus
        .subscribe(&[topics::READINGS_PROCESSED], &format!("check-{tag}"))
        .await
        .unwrap();
    let mut got_ivs: BTreeMap<IntervalKey, hes_proto::ProcessedInterval> = BTreeMap::new();
    let mut got_aggs: BTreeMap<AggregateKey, Aggregate> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got_ivs != want_ivs || got_aggs != want_aggs {
        assert!(
            Instant::now() < deadline,
            "the processed topic never matched the store: {} of {} intervals, {} of {} \
             aggregates equal",
            want_ivs
                .iter()
                .filter(|(k, v)| got_ivs.get(*k) == Some(*v))
                .count(),
            want_ivs.len(),
            want_aggs
                .iter()
                .filter(|(k, v)| got_aggs.get(*k) == Some(*v))
                .count(),
            want_aggs.len(),
        );
        let Some(d) = c.next(Duration::from_secs(1)).await.unwrap() else {
            continue;
        };
        for p in d.decode::<hes_proto::Processed>().unwrap() {
            for i in p.intervals {
                assert_eq!(i.meter.0, d.key, "keyed by its meter");
                got_ivs.insert((i.meter.0.clone(), i.channel.clone(), i.interval_end), i);
            }
            for a in p.aggregates {
                assert_eq!(a.subject, d.key, "keyed by its subject");
                got_aggs.insert(
                    (
                        a.subject.clone(),
                        a.channel.clone(),
                        a.period,
                        a.period_start,
                    ),
                    a,
                );
            }
        }
    }
    // Meter 2's late entry replaced the two estimates around it by measured intervals.
    let late = (
        meters[1].clone(),
        "energy.active.import".to_string(),
        d0 + 41 * 900,
    );
    assert!(got_ivs[&late].quality.is_ok(), "{:?}", got_ivs[&late]);
    let _ = c.close(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_adapters() {
    let dir = std::env::temp_dir().join(format!("hes-stages-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(
        hes_store::SqliteStore::open(dir.join("hes.db"))
            .await
            .unwrap(),
    );
    let bus = Arc::new(MemoryBus::new());
    scenario(bus.clone(), store, Arc::new(MemoryCache::new()), "mem").await;
    // The bad record went to the dead-letter topic with its reason.
    let (dead, _) = bus.read(DEAD_LETTER, 0);
    assert_eq!(dead.len(), 1);
    let note: serde_json::Value = serde_json::from_slice(&dead[0].payload).unwrap();
    assert_eq!(note["topic"], topics::READINGS_RAW);
    assert!(
        note["error"].as_str().unwrap().contains("protobuf"),
        "{note}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `eval \"$(scripts/services up)\"` first (scripts/test does)")
    })
}

fn run_tag() -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("t{n}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_services() {
    let tag = run_tag();
    let bus = Arc::new(
        hes_bus::kafka::KafkaBus::connect(&env("HES_KAFKA_BROKERS"))
            .unwrap()
            .with_namespace(&format!("{tag}.")),
    );
    let store = Arc::new(
        hes_store::PgStore::connect(&env("HES_DATABASE_URL"))
            .await
            .unwrap(),
    );
    let cache = Arc::new(
        hes_cache::RedisCache::connect(&env("HES_REDIS_URL"), &format!("{tag}:"))
            .await
            .unwrap(),
    );
    scenario(bus, store, cache, &tag).await;
}
