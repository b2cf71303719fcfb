//! One suite, every adapter of the store port: SQLite (a fresh file per test) and PostgreSQL
//! (a fresh database per test on `HES_DATABASE_URL`, dropped at the end).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Instant;

use dlms::ObisCode;
use hes_model::{Aggregate, Event, MeterId, Period, Quality, Reading, Source, ValidatedReading};
use hes_store::{migrate, PgStore, SqliteStore, Store, PG_MIGRATIONS, SQLITE_MIGRATIONS};

const ENERGY: ObisCode = ObisCode([1, 0, 1, 8, 0, 255]);
const EXPORT: ObisCode = ObisCode([1, 0, 2, 8, 0, 255]);
const LOG: ObisCode = ObisCode([0, 0, 99, 98, 0, 255]);
/// 2026-11-01T00:00:00Z
const T0: i64 = 1_793_491_200;

fn reading(meter: &str, obis: ObisCode, time: i64, value: i64) -> Reading {
    Reading {
        meter: MeterId::from(meter),
        obis,
        class_id: 3,
        attribute: 2,
        time,
        value,
        scaler: -3,
        unit: 30,
        status: 0,
        source: Source::Scheduled,
        received_at: time + 7,
    }
}

fn event(meter: &str, time: i64, code: u16) -> Event {
    Event {
        meter: MeterId::from(meter),
        log: LOG,
        time,
        code,
        source: Source::Push,
        received_at: time + 1,
    }
}

/// `n` readings of meter `m`, every 15 minutes from `T0`.
fn series(meter: &str, obis: ObisCode, n: i64) -> Vec<Reading> {
    (0..n)
        .map(|i| reading(meter, obis, T0 + i * 900, 1000 + i))
        .collect()
}

// ---- the cases ----

async fn round_trip(s: &dyn Store) {
    let mut r = reading("m1", ENERGY, T0, 42);
    r.class_id = 7;
    r.attribute = -1;
    r.scaler = -128;
    r.unit = 255;
    r.status = 0x80;
    r.value = i64::MIN;
    r.source = Source::OnDemand;
    let other = reading("m1", EXPORT, T0, 1);
    assert_eq!(s.insert_readings(&[r.clone(), other]).await.unwrap(), 2);
    assert_eq!(s.readings(&r.meter, ENERGY, T0, T0).await.unwrap(), vec![r]);
    assert_eq!(s.count_readings().await.unwrap(), 2);
    assert_eq!(s.insert_readings(&[]).await.unwrap(), 0);
}

async fn idempotent_replay(s: &dyn Store) {
    let batch = series("m1", ENERGY, 50);
    assert_eq!(s.insert_readings(&batch).await.unwrap(), 50);
    assert_eq!(s.insert_readings(&batch).await.unwrap(), 0);
    assert_eq!(s.count_readings().await.unwrap(), 50);
    // A replay with changed values keeps the first stored copy.
    let mut changed = batch.clone();
    for r in &mut changed {
        r.value += 1;
        r.received_at += 100;
    }
    assert_eq!(s.insert_readings(&changed).await.unwrap(), 0);
    let got = s
        .readings(&MeterId::from("m1"), ENERGY, T0, T0 + 49 * 900)
        .await
        .unwrap();
    assert_eq!(got, batch);
    // Overlapping batch: only the new keys count; duplicates inside a batch count once.
    let mut more = series("m1", ENERGY, 60);
    more.push(more[55].clone());
    assert_eq!(s.insert_readings(&more).await.unwrap(), 10);
    assert_eq!(s.count_readings().await.unwrap(), 60);
    // Another attribute of the same object at the same time is another key.
    let mut a3 = batch[0].clone();
    a3.attribute = 3;
    assert_eq!(s.insert_readings(&[a3]).await.unwrap(), 1);
}

async fn ordering(s: &dyn Store) {
    let mut batch = series("m1", ENERGY, 20);
    batch.reverse();
    batch.swap(3, 11);
    s.insert_readings(&batch).await.unwrap();
    let got = s
        .readings(&MeterId::from("m1"), ENERGY, T0, T0 + 100_000)
        .await
        .unwrap();
    let times: Vec<i64> = got.iter().map(|r| r.time).collect();
    let want: Vec<i64> = (0..20).map(|i| T0 + i * 900).collect();
    assert_eq!(times, want);
}

async fn range_bounds_inclusive(s: &dyn Store) {
    s.insert_readings(&series("m1", ENERGY, 10)).await.unwrap();
    s.insert_readings(&series("m1", EXPORT, 10)).await.unwrap();
    s.insert_readings(&series("m2", ENERGY, 10)).await.unwrap();
    let m1 = MeterId::from("m1");
    let got = s
        .readings(&m1, ENERGY, T0 + 900, T0 + 3 * 900)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|r| r.time).collect::<Vec<_>>(),
        [1, 2, 3].map(|i| T0 + i * 900)
    );
    assert!(got.iter().all(|r| r.meter == m1 && r.obis == ENERGY));
    assert_eq!(
        s.readings(&m1, ENERGY, T0 + 1, T0 + 899).await.unwrap(),
        vec![]
    );
    assert_eq!(
        s.readings(&m1, ENERGY, T0 + 900, T0 + 900)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.readings(&m1, ENERGY, T0 + 900, T0).await.unwrap(), vec![]);
    assert_eq!(
        s.readings(&MeterId::from("m3"), ENERGY, 0, i64::MAX)
            .await
            .unwrap(),
        vec![]
    );
}

async fn latest_time(s: &dyn Store) {
    let m1 = MeterId::from("m1");
    assert_eq!(s.latest_reading_time(&m1, ENERGY).await.unwrap(), None);
    // Across a month boundary (two partitions in PostgreSQL).
    let late = reading("m1", ENERGY, T0 + 40 * 86_400, 5);
    s.insert_readings(&series("m1", ENERGY, 10)).await.unwrap();
    s.insert_readings(&[late]).await.unwrap();
    s.insert_readings(&[reading("m1", EXPORT, T0 + 90 * 86_400, 5)])
        .await
        .unwrap();
    assert_eq!(
        s.latest_reading_time(&m1, ENERGY).await.unwrap(),
        Some(T0 + 40 * 86_400)
    );
    // An older reading arriving late does not move the watermark back.
    s.insert_readings(&[reading("m1", ENERGY, T0 - 86_400, 5)])
        .await
        .unwrap();
    assert_eq!(
        s.latest_reading_time(&m1, ENERGY).await.unwrap(),
        Some(T0 + 40 * 86_400)
    );
    assert_eq!(
        s.readings(&m1, ENERGY, i64::MIN, i64::MAX)
            .await
            .unwrap()
            .len(),
        12
    );
}

async fn events_idempotent(s: &dyn Store) {
    let batch = vec![
        event("m1", T0, 1),
        event("m1", T0, 2),
        event("m1", T0 + 5, 1),
    ];
    assert_eq!(s.insert_events(&batch).await.unwrap(), 3);
    assert_eq!(s.insert_events(&batch).await.unwrap(), 0);
    let mut dup = batch.clone();
    dup.push(event("m2", T0, 1));
    dup.push(event("m2", T0, 1));
    assert_eq!(s.insert_events(&dup).await.unwrap(), 1);
    assert_eq!(s.count_events().await.unwrap(), 4);
    assert_eq!(s.insert_events(&[]).await.unwrap(), 0);
}

async fn batch_100k(s: &dyn Store) {
    // 100 meters x 1000 quarter hours: 100,000 readings over ~10 days.
    let batch: Vec<Reading> = (0..100)
        .flat_map(|m| series(&format!("meter-{m:04}"), ENERGY, 1000))
        .collect();
    let t = Instant::now();
    assert_eq!(s.insert_readings(&batch).await.unwrap(), 100_000);
    let first = t.elapsed();
    let t = Instant::now();
    assert_eq!(s.insert_readings(&batch).await.unwrap(), 0);
    let replay = t.elapsed();
    let test = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("{test}: 100k readings stored in {first:?}, replayed in {replay:?}");
    assert_eq!(s.count_readings().await.unwrap(), 100_000);
    let m = MeterId::from("meter-0042");
    let got = s.readings(&m, ENERGY, T0, T0 + 999 * 900).await.unwrap();
    assert_eq!(got.len(), 1000);
    assert_eq!(got[999], batch[42 * 1000 + 999]);
    assert_eq!(
        s.latest_reading_time(&m, ENERGY).await.unwrap(),
        Some(T0 + 999 * 900)
    );
}

fn flagged(r: Reading, q: u32) -> ValidatedReading {
    ValidatedReading {
        reading: r,
        quality: Quality(q),
    }
}

async fn validated_keep_flags_and_first_copy(s: &dyn Store) {
    let a = flagged(
        reading("m1", ENERGY, T0, 1),
        Quality::SPIKE | Quality::ESTIMATED,
    );
    let b = flagged(reading("m1", EXPORT, T0 + 900, 2), 0);
    assert_eq!(
        s.insert_validated(&[a.clone(), b.clone()]).await.unwrap(),
        2
    );
    // A replay with other flags stores nothing and changes nothing (the first copy stays),
    // whether it comes alone or with new keys (the direct path falls back to the slow one).
    let again = flagged(a.reading.clone(), Quality::DUPLICATE);
    let c = flagged(reading("m1", ENERGY, T0 + 900, 3), Quality::FUTURE);
    assert_eq!(
        s.insert_validated(std::slice::from_ref(&again))
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.insert_validated(&[again, c.clone()]).await.unwrap(), 1);
    // Duplicates inside one batch count once.
    let d = flagged(reading("m1", ENERGY, T0 + 1800, 4), 0);
    assert_eq!(
        s.insert_validated(&[d.clone(), d.clone()]).await.unwrap(),
        1
    );
    let m = MeterId::from("m1");
    let all = s
        .meter_readings(&m, None, T0, T0 + 1800, 100)
        .await
        .unwrap();
    assert_eq!(all, vec![a.clone(), c.clone(), b, d.clone()]);
    let energy = s
        .meter_readings(&m, Some(ENERGY), T0, T0 + 1800, 2)
        .await
        .unwrap();
    assert_eq!(energy, vec![a, c]);
    // Plain inserts are unflagged.
    s.insert_readings(&[reading("m2", ENERGY, T0, 9)])
        .await
        .unwrap();
    let m2 = s
        .meter_readings(&MeterId::from("m2"), None, T0, T0, 10)
        .await
        .unwrap();
    assert_eq!(m2[0].quality, Quality::OK);
    assert!(s
        .meter_readings(&m, None, T0 + 1, T0, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn readings_of_several_meters(s: &dyn Store) {
    let mut batch = series("m1", ENERGY, 4);
    batch.extend(series("m2", ENERGY, 4));
    batch.extend(series("m3", ENERGY, 4));
    s.insert_readings(&batch).await.unwrap();
    let got = s
        .readings_of_meters(
            &[MeterId::from("m3"), MeterId::from("m1")],
            T0 + 900,
            T0 + 1800,
        )
        .await
        .unwrap();
    let keys: Vec<(String, i64)> = got
        .iter()
        .map(|v| (v.reading.meter.0.clone(), v.reading.time))
        .collect();
    assert_eq!(
        keys,
        [
            ("m1", T0 + 900),
            ("m1", T0 + 1800),
            ("m3", T0 + 900),
            ("m3", T0 + 1800)
        ]
        .map(|(m, t)| (m.to_string(), t))
    );
    assert!(s
        .readings_of_meters(&[], T0, T0 + 9000)
        .await
        .unwrap()
        .is_empty());
}

async fn scan_pages_in_key_order(s: &dyn Store) {
    let mut batch = Vec::new();
    for m in ["b", "a", "c"] {
        batch.extend(series(m, ENERGY, 5));
        batch.extend(series(m, EXPORT, 5));
    }
    s.insert_readings(&batch).await.unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .scan_readings(T0 + 900, T0 + 3 * 900, after, 4)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        after = page.last().map(|v| v.reading.key());
        seen.extend(page.into_iter().map(|v| v.reading.key()));
    }
    // 3 times x 3 meters x 2 objects, each once, ordered by (time, meter, obis, attribute).
    assert_eq!(seen.len(), 18);
    let mut sorted = seen.clone();
    sorted.sort_by(|x, y| {
        (x.3, &x.0 .0, x.1.to_string(), x.2).cmp(&(y.3, &y.0 .0, y.1.to_string(), y.2))
    });
    assert_eq!(seen, sorted);
    assert_eq!(seen[0].0, MeterId::from("a"));
}

fn agg(subject: &str, channel: &str, period: Period, start: i64, total: f64) -> Aggregate {
    Aggregate {
        subject: subject.into(),
        channel: channel.into(),
        period,
        period_start: start,
        period_end: period.end(start),
        total,
        count: 4,
        complete: true,
        quality_worst: Quality(Quality::ESTIMATED),
    }
}

async fn aggregates_upsert_and_query(s: &dyn Store) {
    let h0 = agg("m1", "energy_import", Period::Hour, T0, 1.5);
    let h1 = agg("m1", "energy_import", Period::Hour, T0 + 3600, 2.5);
    let e0 = agg("m1", "energy_export", Period::Hour, T0, 0.5);
    let d0 = agg("m1", "energy_import", Period::Day, T0, 4.0);
    let g0 = agg("cell=c1", "energy_import", Period::Hour, T0, 9.0);
    assert_eq!(
        s.upsert_aggregates(&[h0.clone(), h1.clone(), e0.clone(), d0.clone(), g0.clone()])
            .await
            .unwrap(),
        5
    );
    // Recomputed with late data: replaced, not added; the last of duplicates in a batch wins.
    let mut h0b = h0.clone();
    h0b.total = 1.75;
    h0b.complete = false;
    let mut h0c = h0b.clone();
    h0c.total = 2.0;
    s.upsert_aggregates(&[h0b, h0c.clone()]).await.unwrap();
    let subjects = vec!["m1".to_string()];
    let got = s
        .aggregates(
            &subjects,
            Some("energy_import"),
            Period::Hour,
            T0,
            T0 + 3600,
        )
        .await
        .unwrap();
    assert_eq!(got, vec![h0c.clone(), h1.clone()]);
    let got = s
        .aggregates(&subjects, None, Period::Hour, T0, T0)
        .await
        .unwrap();
    assert_eq!(got, vec![e0, h0c]);
    let both = vec!["m1".to_string(), "cell=c1".to_string()];
    let got = s
        .aggregates(&both, None, Period::Day, T0, T0 + 86_400)
        .await
        .unwrap();
    assert_eq!(got, vec![d0]);
    let scan = s
        .scan_aggregates(Period::Hour, T0, T0 + 7200, 0, 10)
        .await
        .unwrap();
    assert_eq!(scan.len(), 4);
    assert_eq!(scan[0].subject, "cell=c1");
    let rest = s
        .scan_aggregates(Period::Hour, T0, T0 + 7200, 3, 10)
        .await
        .unwrap();
    assert_eq!(rest, vec![h1]);
}

async fn neighbours_before_and_after(s: &dyn Store) {
    let batch = series("m1", ENERGY, 4); // T0, +900, +1800, +2700
    s.insert_validated(&[flagged(batch[0].clone(), Quality::SPIKE)])
        .await
        .unwrap();
    s.insert_readings(&batch[1..]).await.unwrap();
    let m1 = MeterId::from("m1");
    let keys = vec![
        (m1.clone(), ENERGY, 2, T0 + 1800),
        (m1.clone(), ENERGY, 2, T0),
        (m1.clone(), ENERGY, 2, T0 + 2701),
        (m1.clone(), EXPORT, 2, T0 + 1800),
        (MeterId::from("nobody"), ENERGY, 2, T0),
        (m1.clone(), ENERGY, 2, T0 + 900),
    ];
    let got = s.neighbours(&keys).await.unwrap();
    assert_eq!(got.len(), keys.len());
    assert_eq!(got[0].0.as_ref().unwrap().reading, batch[1]);
    assert!(got[0].1);
    assert_eq!((got[1].0.is_none(), got[1].1), (true, true));
    assert_eq!(got[2].0.as_ref().unwrap().reading, batch[3]);
    assert!(!got[2].1);
    assert_eq!((got[3].0.is_none(), got[3].1), (true, false));
    assert_eq!((got[4].0.is_none(), got[4].1), (true, false));
    let first = got[5].0.as_ref().unwrap();
    assert_eq!(
        (first.reading.time, first.quality),
        (T0, Quality(Quality::SPIKE))
    );
    assert!(s.neighbours(&[]).await.unwrap().is_empty());
}

async fn insert_aggregates_new_then_existing(s: &dyn Store) {
    let a = agg("m1", "energy_import", Period::Hour, T0, 1.0);
    let b = agg("m1", "energy_import", Period::Hour, T0 + 3600, 2.0);
    assert_eq!(
        s.insert_aggregates(&[a.clone(), b.clone()]).await.unwrap(),
        2
    );
    // One exists already: the batch still lands, replacing it.
    let mut a2 = a.clone();
    a2.total = 5.0;
    let c = agg("m1", "energy_import", Period::Hour, T0 + 7200, 3.0);
    s.insert_aggregates(&[a2.clone(), c.clone()]).await.unwrap();
    let got = s
        .aggregates(&["m1".to_string()], None, Period::Hour, T0, T0 + 7200)
        .await
        .unwrap();
    assert_eq!(got, vec![a2, b, c]);
}

async fn retention_removes_only_what_is_old(s: &dyn Store) {
    let day = 86_400;
    // September 22nd, October 22nd, November 1st.
    let times = [T0 - 40 * day, T0 - 10 * day, T0];
    let rs: Vec<Reading> = times.iter().map(|t| reading("m1", ENERGY, *t, 1)).collect();
    s.insert_readings(&rs).await.unwrap();
    let es: Vec<Event> = times.iter().map(|t| event("m1", *t, 7)).collect();
    s.insert_events(&es).await.unwrap();
    s.upsert_aggregates(&[
        agg("m1", "e", Period::Hour, T0 - 10 * day, 1.0),
        agg("m1", "e", Period::Hour, T0, 1.0),
        agg("m1", "e", Period::Day, T0 - 10 * day, 1.0),
    ])
    .await
    .unwrap();
    let keep_all = hes_store::Retention::default();
    let pruned = s.apply_retention(&keep_all, T0 + day).await.unwrap();
    assert_eq!(pruned, hes_store::Pruned::default());
    let r = hes_store::Retention {
        readings_days: Some(20),
        events_days: Some(5),
        hourly_days: Some(5),
    };
    s.apply_retention(&r, T0 + day).await.unwrap();
    let m = MeterId::from("m1");
    let left: Vec<i64> = s
        .meter_readings(&m, None, 0, T0 + day, 100)
        .await
        .unwrap()
        .iter()
        .map(|v| v.reading.time)
        .collect();
    assert_eq!(left, vec![T0 - 10 * day, T0]);
    assert_eq!(s.count_events().await.unwrap(), 1);
    let subjects = vec!["m1".to_string()];
    let hours = s
        .aggregates(&subjects, None, Period::Hour, 0, T0 + day)
        .await
        .unwrap();
    assert_eq!(hours.len(), 1);
    let days = s
        .aggregates(&subjects, None, Period::Day, 0, T0 + day)
        .await
        .unwrap();
    assert_eq!(days.len(), 1);
    // Again: nothing more to remove; new data in a dropped month's range is stored again.
    s.apply_retention(&r, T0 + day).await.unwrap();
    assert_eq!(
        s.insert_readings(&[reading("m1", ENERGY, T0 - 41 * day, 2)])
            .await
            .unwrap(),
        1
    );
}

mod common;
use common::*;

macro_rules! conformance {
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
        }
        mod pg {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = super::pg_database().await;
                    let store = super::PgStore::connect(&db.url).await.unwrap();
                    assert!(store.is_partitioned());
                    super::$case(&store).await;
                    drop(store);
                    db.drop_database().await;
                }
            )*
        }
    };
}

conformance!(
    round_trip,
    idempotent_replay,
    ordering,
    range_bounds_inclusive,
    latest_time,
    events_idempotent,
    batch_100k,
    validated_keep_flags_and_first_copy,
    readings_of_several_meters,
    scan_pages_in_key_order,
    aggregates_upsert_and_query,
    neighbours_before_and_after,
    insert_aggregates_new_then_existing,
    retention_removes_only_what_is_old,
);

#[tokio::test]
async fn sqlite_migrations_apply_once() {
    let dir = std::env::temp_dir().join(unique("hes_store_migrate"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hes.db");
    let path = path.to_str().unwrap();
    let all: Vec<u32> = SQLITE_MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(migrate(path).await.unwrap(), all);
    assert_eq!(migrate(path).await.unwrap(), Vec::<u32>::new());
    // A store opened on it finds the schema current.
    let s = SqliteStore::open(path).await.unwrap();
    assert_eq!(s.count_readings().await.unwrap(), 0);
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn pg_migrations_apply_once() {
    let db = pg_database().await;
    let all: Vec<u32> = PG_MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(migrate(&db.url).await.unwrap(), all);
    assert_eq!(migrate(&db.url).await.unwrap(), Vec::<u32>::new());
    let s = PgStore::connect(&db.url).await.unwrap();
    assert_eq!(s.count_readings().await.unwrap(), 0);
    drop(s);
    db.drop_database().await;
}

#[tokio::test]
async fn pg_partitions_are_monthly() {
    let db = pg_database().await;
    let s = PgStore::connect(&db.url).await.unwrap();
    // Oct 31 23:45, Nov 1 00:00, Dec 15.
    let batch = [
        reading("m1", ENERGY, T0 - 900, 1),
        reading("m1", ENERGY, T0, 2),
        reading("m1", ENERGY, T0 + 44 * 86_400, 3),
    ];
    assert_eq!(s.insert_readings(&batch).await.unwrap(), 3);
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT c.relname::text, count(r.*) FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             LEFT JOIN readings r ON r.tableoid = c.oid
             WHERE i.inhparent = 'readings'::regclass GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let parts: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        parts,
        [
            ("readings_p202610", 1),
            ("readings_p202611", 1),
            ("readings_p202612", 1)
        ]
        .map(|(n, c)| (n.to_string(), c))
    );
    drop(client);
    let _ = task.await;
    drop(s);
    db.drop_database().await;
}
