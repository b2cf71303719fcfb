//! What the export tests share: samples, a reader that checks every value, temp directories.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use dlms::ObisCode;
use hes_model::{Aggregate, MeterId, Period, Quality, Reading, Source, ValidatedReading};
use hes_store::Store;
use hes_warehouse::{export_range, value_si};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Row, RowAccessor};

pub const DAY: i64 = 86_400;
/// 2026-11-27T00:00:00Z.
pub const T0: i64 = 1_795_737_600;

/// A directory of its own for one test, removed when the test ends.
pub struct TempDir(pub PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir(name: &str) -> TempDir {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("hes-wh-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

pub fn reading(
    meter: &str,
    obis: ObisCode,
    time: i64,
    value: i64,
    scaler: i8,
    q: u32,
) -> ValidatedReading {
    ValidatedReading {
        reading: Reading {
            meter: MeterId::from(meter),
            obis,
            class_id: 3,
            attribute: 2,
            time,
            value,
            scaler,
            unit: 30,
            status: 0,
            source: Source::Scheduled,
            received_at: time.saturating_add(60),
        },
        quality: Quality(q),
    }
}

/// Readings over several dates (before 1970, a leap day, today and tomorrow), every flag
/// alone and together, an unknown bit, negative and extreme scalers, every source, extremes.
pub fn sample_readings() -> Vec<ValidatedReading> {
    let energy = ObisCode::new(1, 0, 1, 8, 0, 255);
    let mut out = Vec::new();
    for (i, (bit, _)) in (0..).zip(Quality::NAMES) {
        out.push(reading("m-1", energy, T0 + i * 900, 1000 + i, -3, bit));
    }
    let all = Quality::NAMES.iter().fold(0, |a, (b, _)| a | b);
    out.push(reading("m-2", energy, T0 + DAY + 5, 12345, -3, all));
    out.push(reading("m-2", energy, T0 + DAY + 6, -7, -1, 1 << 31));
    out.push(reading("m-3", energy, T0 + DAY - 1, i64::MAX, 127, 0));
    out.push(reading("m-3", energy, T0 + DAY + 900, i64::MIN, -128, 0));
    out.push(reading("m-3", energy, 951_782_400 + 3600, 42, 0, 0)); // 2000-02-29
    out.push(reading("m-4", energy, -1, 5, 2, 0)); // 1969-12-31T23:59:59Z
    let mut odd = reading(
        "m-5",
        ObisCode::new(0, 0, 96, 3, 10, 255),
        T0 + 2 * DAY,
        1,
        0,
        0,
    );
    odd.reading.class_id = u16::MAX;
    odd.reading.attribute = i8::MIN;
    odd.reading.unit = u8::MAX;
    odd.reading.status = u8::MAX;
    odd.reading.source = Source::Push;
    odd.reading.received_at = hes_warehouse::MAX_TIME;
    out.push(odd);
    let mut od = reading("m-5", energy, T0 + 2 * DAY + 1, 0, 0, 0);
    od.reading.source = Source::OnDemand;
    od.reading.received_at = hes_warehouse::MIN_TIME;
    out.push(od);
    out
}

pub fn aggregate(subject: &str, period: Period, start: i64, total: f64, q: u32) -> Aggregate {
    Aggregate {
        subject: subject.to_string(),
        period,
        channel: "energy.active.import".to_string(),
        period_start: start,
        period_end: period.end(start),
        total,
        count: 4,
        complete: q == 0,
        quality_worst: Quality(q),
    }
}

pub fn sample_aggregates() -> Vec<Aggregate> {
    let mut out = Vec::new();
    for h in 0..30 {
        let q = Quality::NAMES.get(h as usize % 11).map_or(0, |(b, _)| *b);
        out.push(aggregate(
            "m-1",
            Period::Hour,
            T0 + h * 3600,
            h as f64 * 0.25,
            q,
        ));
    }
    out.push(aggregate("m-1", Period::Day, T0, 1.5, 0));
    out.push(aggregate(
        "cell=cell-3",
        Period::Day,
        T0 + DAY,
        -0.125,
        Quality::ESTIMATED | Quality::SPIKE,
    ));
    out.push(aggregate(
        "m-1",
        Period::Month,
        Period::Month.start(T0),
        1e9,
        0,
    ));
    let mut big = aggregate(
        "m-2",
        Period::Month,
        Period::Month.start(T0 - 40 * DAY),
        f64::MAX,
        0,
    );
    big.count = i32::MAX as u32;
    out.push(big);
    out
}

pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every row of every file under `dir`, with the file's path relative to `dir`.
pub fn rows_under(dir: &Path) -> Vec<(String, Row)> {
    let mut out = Vec::new();
    for f in parquet_files(dir) {
        let rel = f.strip_prefix(dir).unwrap().to_string_lossy().to_string();
        assert!(rel.ends_with(".parquet"), "{rel}");
        let reader = SerializedFileReader::new(File::open(&f).unwrap()).unwrap();
        for row in reader.get_row_iter(None).unwrap() {
            out.push((rel.clone(), row.unwrap()));
        }
    }
    out
}

pub fn date_of(t: i64) -> String {
    // Only for the test's own sample: civil date by the `time`-free algorithm in the crate is
    // what is under test, so compute it here independently via days-from-civil search.
    let days = t.div_euclid(DAY);
    let (mut y, mut m, mut d) = (1970i64, 1i64, 1i64);
    let mut n = 0i64;
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mlen = |y: i64, m: i64| match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    while n < days {
        d += 1;
        if d > mlen(y, m) {
            d = 1;
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
        }
        n += 1;
    }
    while n > days {
        d -= 1;
        if d < 1 {
            m -= 1;
            if m < 1 {
                m = 12;
                y -= 1;
            }
            d = mlen(y, m);
        }
        n -= 1;
    }
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn check_reading_row(rel: &str, row: &Row, want: &ValidatedReading) {
    let r = &want.reading;
    assert_eq!(
        rel.split('/').next(),
        Some(format!("date={}", date_of(r.time)).as_str()),
        "{rel}"
    );
    assert_eq!(row.get_string(0).unwrap(), &r.meter.0);
    assert_eq!(row.get_string(1).unwrap(), &r.obis.to_string());
    assert_eq!(row.get_int(2).unwrap(), i32::from(r.class_id));
    assert_eq!(row.get_int(3).unwrap(), i32::from(r.attribute));
    assert_eq!(row.get_timestamp_micros(4).unwrap(), r.time * 1_000_000);
    assert_eq!(row.get_long(5).unwrap(), r.value);
    assert_eq!(row.get_int(6).unwrap(), i32::from(r.scaler));
    assert_eq!(row.get_int(7).unwrap(), i32::from(r.unit));
    assert_eq!(
        row.get_double(8).unwrap().to_bits(),
        value_si(r.value, r.scaler).to_bits()
    );
    assert_eq!(row.get_int(9).unwrap(), i32::from(r.status));
    assert_eq!(row.get_int(10).unwrap() as u32, want.quality.0);
    assert_eq!(row.get_string(11).unwrap(), &want.quality.names().join(","));
    let source = match r.source {
        Source::Scheduled => "scheduled",
        Source::OnDemand => "on_demand",
        Source::Push => "push",
    };
    assert_eq!(row.get_string(12).unwrap(), source);
    assert_eq!(
        row.get_timestamp_micros(13).unwrap(),
        r.received_at * 1_000_000
    );
    assert_eq!(row.len(), 14);
}

pub fn reading_key(row: &Row) -> (String, String, i64) {
    (
        row.get_string(0).unwrap().clone(),
        row.get_string(1).unwrap().clone(),
        row.get_timestamp_micros(4).unwrap() / 1_000_000,
    )
}

pub fn check_readings(dir: &Path, want: &[ValidatedReading]) {
    let got = rows_under(&dir.join("readings"));
    assert_eq!(got.len(), want.len());
    let by_key: BTreeMap<_, _> = want
        .iter()
        .map(|v| {
            (
                (
                    v.reading.meter.0.clone(),
                    v.reading.obis.to_string(),
                    v.reading.time,
                ),
                v,
            )
        })
        .collect();
    assert_eq!(by_key.len(), want.len(), "sample keys are unique");
    for (rel, row) in &got {
        let w = by_key
            .get(&reading_key(row))
            .unwrap_or_else(|| panic!("unexpected row {row}"));
        check_reading_row(rel, row, w);
    }
}

pub fn check_aggregates(dir: &Path, want: &[Aggregate]) {
    let got = rows_under(&dir.join("aggregates"));
    assert_eq!(got.len(), want.len());
    let by_key: BTreeMap<_, _> = want
        .iter()
        .map(|a| {
            (
                (
                    a.subject.clone(),
                    format!("{:?}", a.period).to_lowercase(),
                    a.period_start,
                ),
                a,
            )
        })
        .collect();
    for (rel, row) in &got {
        let period = rel
            .split('/')
            .next()
            .unwrap()
            .strip_prefix("period=")
            .unwrap()
            .to_string();
        let start = row.get_timestamp_micros(2).unwrap() / 1_000_000;
        let a = by_key
            .get(&(row.get_string(0).unwrap().clone(), period.clone(), start))
            .unwrap_or_else(|| panic!("unexpected row {rel} {row}"));
        assert_eq!(
            rel.split('/').nth(1),
            Some(format!("date={}", date_of(a.period_start)).as_str())
        );
        assert_eq!(row.get_string(1).unwrap(), &a.channel);
        assert_eq!(
            row.get_timestamp_micros(3).unwrap(),
            a.period_end * 1_000_000
        );
        assert_eq!(row.get_double(4).unwrap().to_bits(), a.total.to_bits());
        assert_eq!(row.get_int(5).unwrap() as u32, a.count);
        assert_eq!(row.get_bool(6).unwrap(), a.complete);
        assert_eq!(row.get_int(7).unwrap() as u32, a.quality_worst.0);
        assert_eq!(
            row.get_string(8).unwrap(),
            &a.quality_worst.names().join(",")
        );
        assert_eq!(row.len(), 9);
    }
}

/// Nothing but the dataset under `dir` (no staging directory left behind).
pub fn assert_clean(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            name == "readings" || name == "aggregates",
            "left behind: {name}"
        );
    }
}

/// `export_range` over a store: more than a page of readings and of aggregates, a range
/// starting and ending mid-day, and a rerun.
pub async fn export_range_case(store: &dyn Store) {
    let dir = temp_dir("range");
    let energy = ObisCode::new(1, 0, 1, 8, 0, 255);
    let power = ObisCode::new(1, 0, 1, 7, 0, 255);
    // 3 days of 15-minute readings for 80 meters and two objects: 23,040 rows, over two
    // pages of the store.
    let mut all = Vec::new();
    for m in 0..80 {
        for slot in 0..(3 * 96) {
            let t = T0 - DAY + slot * 900;
            let q = if slot % 50 == 0 { Quality::SPIKE } else { 0 };
            all.push(reading(
                &format!("m-{m:03}"),
                energy,
                t,
                slot * 10 + m,
                -3,
                q,
            ));
            if slot % 2 == 0 {
                all.push(reading(&format!("m-{m:03}"), power, t, 5, 0, 0));
            }
        }
    }
    assert!(all.len() > 2 * hes_warehouse::PAGE);
    store.insert_validated(&all).await.unwrap();
    // Hourly aggregates of 420 subjects over a day: more than a page of one period.
    let mut aggs = sample_aggregates();
    for m in 0..420 {
        for h in 0..24 {
            let q = if m % 3 == 0 { Quality::ESTIMATED } else { 0 };
            aggs.push(aggregate(
                &format!("s-{m:03}"),
                Period::Hour,
                T0 - DAY + h * 3600,
                f64::from(m) + f64::from(h as u8) / 8.0,
                q,
            ));
        }
    }
    assert!(aggs.len() > hes_warehouse::PAGE);
    store.upsert_aggregates(&aggs).await.unwrap();

    // A range from mid-day to mid-day covers whole days: every row of the three days.
    let s = export_range(store, &dir, T0 - DAY + 3600, T0 + DAY + 3600)
        .await
        .unwrap();
    assert_eq!(
        s.rows as usize,
        all.len()
            + aggs
                .iter()
                .filter(|a| a.period_start >= T0 - DAY && a.period_start < T0 + 2 * DAY)
                .count()
    );
    let stored = store
        .scan_readings(T0 - 10 * DAY, T0 + 10 * DAY, None, 100_000)
        .await
        .unwrap();
    check_readings(&dir, &stored);
    assert_eq!(stored.len(), all.len());
    let in_range: Vec<_> = aggs
        .iter()
        .filter(|a| a.period_start >= T0 - DAY && a.period_start < T0 + 2 * DAY)
        .cloned()
        .collect();
    check_aggregates(&dir, &in_range);

    // A rerun gives the same dataset, without duplicates.
    let again = export_range(store, &dir, T0 - DAY, T0 + DAY).await.unwrap();
    assert_eq!(again.rows, s.rows);
    check_readings(&dir, &stored);
    check_aggregates(&dir, &in_range);
    assert_clean(&dir);
}
