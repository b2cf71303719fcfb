//! Exports read back with the parquet crate's own reader, every value checked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::fs::File;

use common::*;
use dlms::ObisCode;
use hes_model::Period;
use hes_warehouse::{Error, ExportOptions, Exporter, Summary};
use parquet::basic::{LogicalType, TimeUnit};
use parquet::file::reader::{FileReader, SerializedFileReader};

#[test]
fn readings_round_trip_every_value() {
    let dir = temp_dir("readings");
    let want = sample_readings();
    let mut ex = Exporter::new(&dir).unwrap();
    ex.write_readings(&want).unwrap();
    let s = ex.finish().unwrap();
    assert_eq!(s.rows, want.len() as u64);
    // 1969-12-31, 2000-02-29, 2026-11-27, -28 and -29.
    assert_eq!(s.partitions, 5, "{s:?}");
    assert_eq!(s.files, 5);
    check_readings(&dir, &want);
    assert_clean(&dir);
}

#[test]
fn the_schema_carries_utc_timestamps_and_strings() {
    let dir = temp_dir("schema");
    let mut ex = Exporter::new(&dir).unwrap();
    ex.write_readings(&sample_readings()).unwrap();
    ex.write_aggregates(&sample_aggregates()).unwrap();
    ex.finish().unwrap();
    for f in parquet_files(&dir) {
        let reader = SerializedFileReader::new(File::open(&f).unwrap()).unwrap();
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        for c in schema.columns() {
            let name = c.name();
            let logical = c.logical_type_ref().cloned();
            match name {
                "time" | "received_at" | "period_start" | "period_end" => assert_eq!(
                    logical,
                    Some(LogicalType::timestamp(true, TimeUnit::MICROS)),
                    "{name}"
                ),
                "meter" | "obis" | "flags" | "source" | "subject" | "channel" => {
                    assert_eq!(logical, Some(LogicalType::String), "{name}")
                }
                _ => assert_eq!(logical, None, "{name}"),
            }
        }
        let compression = reader.metadata().row_group(0).column(0).compression();
        assert_eq!(compression, parquet::basic::Compression::SNAPPY);
    }
}

#[test]
fn aggregates_round_trip_every_value() {
    let dir = temp_dir("aggregates");
    let want = sample_aggregates();
    let mut ex = Exporter::new(&dir).unwrap();
    ex.write_aggregates(&want).unwrap();
    let s = ex.finish().unwrap();
    assert_eq!(s.rows, want.len() as u64);
    // hour: 2 dates; day: 2; month: 2.
    assert_eq!(s.partitions, 6, "{s:?}");
    check_aggregates(&dir, &want);
    assert!(dir.join("aggregates/period=hour/date=2026-11-28").is_dir());
    assert!(dir.join("aggregates/period=month/date=2026-11-01").is_dir());
    assert!(dir.join("aggregates/period=month/date=2026-10-01").is_dir());
    assert_clean(&dir);
}

#[test]
fn small_row_groups_and_few_open_files_keep_every_row() {
    let dir = temp_dir("bounded");
    let energy = ObisCode::new(1, 0, 1, 8, 0, 255);
    // Interleaved dates, so that files are closed and reopened as further parts.
    let want: Vec<_> = (0..1000)
        .map(|i| {
            reading(
                &format!("m-{}", i % 7),
                energy,
                T0 + (i % 5) * DAY + i,
                i,
                -2,
                0,
            )
        })
        .collect();
    let options = ExportOptions::default()
        .row_group_rows(16)
        .max_open_files(2);
    let mut ex = Exporter::with_options(&dir, options).unwrap();
    for chunk in want.chunks(33) {
        ex.write_readings(chunk).unwrap();
    }
    let s = ex.finish().unwrap();
    assert_eq!(s.rows, 1000);
    assert_eq!(s.partitions, 5);
    assert!(s.files > 5, "{s:?}");
    assert_eq!(s.files as usize, parquet_files(&dir).len());
    let groups: usize = parquet_files(&dir)
        .iter()
        .map(|f| {
            SerializedFileReader::new(File::open(f).unwrap())
                .unwrap()
                .num_row_groups()
        })
        .sum();
    assert!(groups >= 1000 / 16, "{groups}");
    check_readings(&dir, &want);
}

#[test]
fn empty_input_writes_nothing() {
    let dir = temp_dir("empty");
    let mut ex = Exporter::new(&dir).unwrap();
    ex.write_readings(&[]).unwrap();
    ex.write_aggregates(&[]).unwrap();
    assert_eq!(ex.finish().unwrap(), Summary::default());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn a_rerun_replaces_its_dates_and_leaves_the_others() {
    let dir = temp_dir("rerun");
    let want = sample_readings();
    let aggs = sample_aggregates();
    for _ in 0..3 {
        let mut ex = Exporter::new(&dir).unwrap();
        ex.write_readings(&want).unwrap();
        ex.write_aggregates(&aggs).unwrap();
        ex.finish().unwrap();
    }
    check_readings(&dir, &want);
    check_aggregates(&dir, &aggs);

    // Another export of one date only, with other values: that date is replaced, others stay.
    let day2: Vec<_> = want
        .iter()
        .filter(|v| v.reading.time / DAY == T0 / DAY + 1)
        .cloned()
        .collect();
    assert!(!day2.is_empty());
    let changed: Vec<_> = day2
        .iter()
        .take(1)
        .map(|v| {
            let mut v = v.clone();
            v.reading.value = 777;
            v
        })
        .collect();
    let mut ex = Exporter::new(&dir).unwrap();
    ex.write_readings(&changed).unwrap();
    let s = ex.finish().unwrap();
    assert_eq!((s.partitions, s.rows), (1, 1));
    let mut expected: Vec<_> = want
        .iter()
        .filter(|v| v.reading.time / DAY != T0 / DAY + 1)
        .cloned()
        .collect();
    expected.extend(changed);
    check_readings(&dir, &expected);
    check_aggregates(&dir, &aggs);
    assert_clean(&dir);
}

#[test]
fn a_claimed_range_without_rows_is_removed() {
    let dir = temp_dir("claim");
    let want = sample_readings();
    let mut ex = Exporter::new(&dir).unwrap();
    ex.write_readings(&want).unwrap();
    ex.write_aggregates(&sample_aggregates()).unwrap();
    ex.finish().unwrap();
    // The store now has nothing for 2026-11-27 and 2026-11-28.
    let mut ex = Exporter::new(&dir).unwrap();
    ex.claim_range(T0, T0 + DAY).unwrap();
    let s = ex.finish().unwrap();
    // readings 2 dates, hour aggregates 2, day aggregates 2.
    assert_eq!(s.removed, 6, "{s:?}");
    let left: Vec<_> = want
        .iter()
        .filter(|v| !(T0..T0 + 2 * DAY).contains(&v.reading.time))
        .cloned()
        .collect();
    check_readings(&dir, &left);
    assert!(dir.join("aggregates/period=month/date=2026-11-01").is_dir());
    assert!(!dir
        .join("aggregates/period=day")
        .join("date=2026-11-27")
        .exists());
    assert_clean(&dir);
}

#[test]
fn times_beyond_the_calendar_are_typed_errors() {
    let dir = temp_dir("bad");
    let good = sample_readings();
    let energy = ObisCode::new(1, 0, 1, 8, 0, 255);
    let mut ex = Exporter::new(&dir).unwrap();
    ex.write_readings(&good).unwrap();
    for t in [
        i64::MIN,
        i64::MAX,
        hes_warehouse::MIN_TIME - 1,
        hes_warehouse::MAX_TIME + 1,
    ] {
        let batch = vec![
            reading("m-1", energy, T0, 1, 0, 0),
            reading("m-1", energy, t, 1, 0, 0),
        ];
        match ex.write_readings(&batch) {
            Err(Error::TimeOutOfRange { time, .. }) => assert_eq!(time, t),
            other => panic!("{t}: {other:?}"),
        }
        let mut r = reading("m-1", energy, T0, 1, 0, 0);
        r.reading.received_at = t;
        assert!(matches!(
            ex.write_readings(&[r]),
            Err(Error::TimeOutOfRange { .. })
        ));
        let mut a = aggregate("m-1", Period::Hour, T0, 1.0, 0);
        a.period_start = t;
        assert!(matches!(
            ex.write_aggregates(&[a]),
            Err(Error::TimeOutOfRange { .. })
        ));
        let mut a = aggregate("m-1", Period::Hour, T0, 1.0, 0);
        a.period_end = t;
        assert!(matches!(
            ex.write_aggregates(&[a]),
            Err(Error::TimeOutOfRange { .. })
        ));
    }
    let mut a = aggregate("m-1", Period::Hour, T0, 1.0, 0);
    a.count = u32::MAX;
    assert!(matches!(
        ex.write_aggregates(&[a]),
        Err(Error::ValueOutOfRange { .. })
    ));
    // Refused batches are refused whole: only the good rows are there.
    ex.finish().unwrap();
    check_readings(&dir, &good);
    assert!(!dir.join("aggregates").exists());
}

#[test]
fn an_unfinished_export_leaves_the_dataset_as_it_was() {
    let dir = temp_dir("abort");
    let want = sample_readings();
    let mut ex = Exporter::new(&dir).unwrap();
    ex.write_readings(&want).unwrap();
    ex.finish().unwrap();
    let mut ex = Exporter::new(&dir).unwrap();
    ex.write_readings(&want[..1]).unwrap();
    drop(ex);
    check_readings(&dir, &want);
    assert_clean(&dir);
}

#[tokio::test]
async fn export_range_pages_through_the_sqlite_store() {
    let store = hes_store::SqliteStore::in_memory().await.unwrap();
    export_range_case(&store).await;
}
