//! The differential test of the two processing engines (driven by `scripts/flink-check`): the
//! same validated input goes to the Rust process stage and to the Flink job (`flink/`), each
//! with a database of its own, and the stored aggregates and readings are compared row by row.
//!
//! `eval "$(scripts/services up)"`, then
//! `cargo run --release -p hes-pipeline --example flink_diff -- COMMAND NAME [METERS DAYS]`:
//!
//! - `setup NAME METERS DAYS`: creates the databases `NAME_rust` and `NAME_flink` (migrated,
//!   with a registry of the meters in cells of 10) and the topics of the Kafka namespace `NAME.`;
//! - `publish NAME METERS DAYS PART PARTS`: validates the whole input (deterministic: a fixed
//!   start day, gaps, a wrap, duplicates, and late entries sent last) and publishes part PART
//!   (1-based) of PARTS of it on `NAME.hes.readings.validated`;
//! - `rust NAME METERS DAYS`: runs the Rust process stage over that topic into `NAME_rust` until
//!   every reading is processed;
//! - `compare NAME TIMEOUT_S`: waits until `NAME_flink` holds what `NAME_rust` holds (readings
//!   with their flags, every aggregate row: subject, channel, period, start, end, total, count,
//!   complete, quality); prints the differences and fails when they remain;
//! - `rawcopy NAME METERS DAYS`: the rate of a binary COPY of the same readings into a scratch
//!   database (the ceiling of `scripts/flink-bench`);
//! - `drop NAME`: drops both databases.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dlms::ObisCode;
use hes_model::{MeterId, Reading, Source, ValidatedReading};
use hes_pipeline::run::{run_process, Groups, ProcessDeps, StageConfig, StageStats};
use hes_pipeline::{Rules, Validator};
use hes_store::PgStore;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// 2025-11-20 00:00 UTC: two weeks cross a month boundary.
const D0: i64 = 20_412 * 86_400;
const A_PLUS: ObisCode = ObisCode([1, 0, 1, 8, 0, 255]);
const A_MINUS: ObisCode = ObisCode([1, 0, 2, 8, 0, 255]);
const VOLTAGE: ObisCode = ObisCode([1, 0, 32, 7, 0, 255]);
const CELL: usize = 10;

fn meter(m: usize) -> MeterId {
    MeterId(format!("DIFF{m:05}"))
}

/// A small deterministic hash (no randomness: every run gives the same input).
fn mix(a: u64, b: u64) -> u64 {
    let mut x = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0x632B_E59B_D9B4_E019);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

fn reading(m: usize, obis: ObisCode, time: i64, value: i64, scaler: i8, unit: u8) -> Reading {
    Reading {
        meter: meter(m),
        obis,
        class_id: 3,
        attribute: 2,
        time,
        value,
        scaler,
        unit,
        status: 0,
        source: Source::Scheduled,
        received_at: time + 30,
    }
}

/// The validated input, in publishing order: one daily read per meter per day, then the late
/// entries. Faults: gaps of 1.5 h and 5 h (estimated), a register wrap, duplicated entries,
/// entries withheld and sent after everything else, and a scaler of -1 (fractional Wh).
fn input(meters: usize, days: i64) -> Vec<Vec<ValidatedReading>> {
    let mut validator = Validator::new(Rules::default(), 4_000_000);
    let mut late: Vec<Reading> = Vec::new();
    let mut reg: Vec<[i64; 2]> = (0..meters)
        .map(|m| {
            if m == 0 {
                [(1i64 << 32) - 6_000, 10_000]
            } else {
                [1_000_000 + 1_000 * m as i64, 50_000]
            }
        })
        .collect();
    let mut out = Vec::new();
    for d in 0..days {
        let mut day = Vec::new();
        for (m, r) in reg.iter_mut().enumerate() {
            let mut batch = Vec::new();
            for k in 0..96i64 {
                let slot = d * 96 + k;
                let t = D0 + slot * 900;
                let h = mix(m as u64, slot as u64);
                r[0] = (r[0] + 100 + (h % 400) as i64).rem_euclid(1 << 32);
                r[1] += (h >> 20) as i64 % 37;
                let gap = (m % 7 == 1 && (40..46).contains(&slot))
                    || (m % 11 == 2 && (300..320).contains(&slot));
                if gap {
                    continue;
                }
                let a_minus_scaler = if m % 3 == 0 { -1 } else { 0 };
                let entries = [
                    reading(m, A_PLUS, t, r[0], 0, 30),
                    reading(m, A_MINUS, t, r[1], a_minus_scaler, 30),
                ];
                if m % 5 == 3 && (500..503).contains(&slot) {
                    late.extend(entries);
                    continue;
                }
                batch.extend(entries.iter().cloned());
                if m % 13 == 4 && slot % 97 == 5 {
                    // Sent again with the next day's read.
                    late.push(entries[0].clone());
                }
                if k % 4 == 0 {
                    batch.push(reading(m, VOLTAGE, t, 2300 + (h % 50) as i64, -1, 35));
                }
            }
            let now = D0 + (d + 1) * 86_400 + 3600;
            day.extend(validator.validate(batch, now));
        }
        out.push(day);
    }
    let now = D0 + days * 86_400 + 7200;
    let mut by_meter: BTreeMap<MeterId, Vec<Reading>> = BTreeMap::new();
    for mut r in late {
        r.received_at = now - 60;
        by_meter.entry(r.meter.clone()).or_default().push(r);
    }
    let mut last = Vec::new();
    for (_, batch) in by_meter {
        last.extend(validator.validate(batch, now));
    }
    out.push(last);
    out
}

struct Cells(usize);

impl Groups for Cells {
    fn of(&self, m: &MeterId) -> Vec<String> {
        let n: usize = m.0.trim_start_matches("DIFF").parse().unwrap_or(0);
        vec![format!("cell=c{}", n / CELL)]
    }
    fn members(&self, g: &str) -> Vec<MeterId> {
        let c: usize = g.trim_start_matches("cell=c").parse().unwrap_or(usize::MAX);
        (c.saturating_mul(CELL)..(c.saturating_mul(CELL) + CELL).min(self.0))
            .map(meter)
            .collect()
    }
}

async fn client(url: &str) -> Result<tokio_postgres::Client, Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

fn with_db(url: &str, db: &str) -> Result<String, Error> {
    let (scheme, rest) = url.split_once("://").ok_or("not a postgres:// URL")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    Ok(format!("{scheme}://{authority}/{db}"))
}

fn bus(brokers: &str, name: &str) -> Result<Arc<dyn hes_bus::Bus>, Error> {
    Ok(Arc::new(
        hes_bus::kafka::KafkaBus::connect(brokers)?.with_namespace(&format!("{name}.")),
    ))
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, Error> {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("missing or bad {what}").into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let name: String = arg(&args, 1, "NAME")?;
    let url = std::env::var("HES_DATABASE_URL")?;
    let brokers = std::env::var("HES_KAFKA_BROKERS")?;
    let (rust_db, flink_db) = (format!("{name}_rust"), format!("{name}_flink"));
    match cmd {
        "setup" => {
            let meters: usize = arg(&args, 2, "METERS")?;
            let admin = client(&url).await?;
            for db in [&rust_db, &flink_db] {
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                    .await?;
                admin
                    .batch_execute(&format!("CREATE DATABASE \"{db}\""))
                    .await?;
                let db_url = with_db(&url, db)?;
                drop(PgStore::connect(&db_url).await?);
                let c = client(&db_url).await?;
                let mut sql = String::from(
                    "INSERT INTO meters (id, serial, logical_device_name, endpoint, system_title, \
                     max_pdu, groups, status, quirks, key_version, secrets, revision, updated_at) VALUES ",
                );
                for m in 0..meters {
                    let id = meter(m).0;
                    if m > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!(
                        "('{id}', '{m}', '{id}', '127.0.0.1:4059', '{:016X}', 1024, \
                         '{{\"cell\":\"c{}\"}}', 'active', '[]', 1, '{{}}', 1, 0)",
                        m,
                        m / CELL
                    ));
                }
                c.batch_execute(&sql).await?;
            }
            bus(&brokers, &name)?
                .ensure_topics(
                    &[
                        hes_model::topics::READINGS_VALIDATED,
                        hes_model::topics::EVENTS,
                        hes_model::topics::JOB_RESULTS,
                        "hes.readings.processed",
                    ],
                    4,
                )
                .await?;
            println!("setup {name}: databases {rust_db}, {flink_db}; namespace {name}.");
        }
        "publish" => {
            let meters: usize = arg(&args, 2, "METERS")?;
            let days: i64 = arg(&args, 3, "DAYS")?;
            let part: usize = arg(&args, 4, "PART")?;
            let parts: usize = arg(&args, 5, "PARTS")?;
            let all = input(meters, days);
            let (n, k) = (all.len(), part.saturating_sub(1));
            let bus = bus(&brokers, &name)?;
            let mut count = 0;
            for batch in all.get(k * n / parts..(k + 1) * n / parts).unwrap_or(&[]) {
                hes_bus::publish_validated(&*bus, batch).await?;
                count += batch.len();
            }
            println!("published part {part}/{parts}: {count} validated readings");
        }
        "rust" => {
            let meters: usize = arg(&args, 2, "METERS")?;
            let days: i64 = arg(&args, 3, "DAYS")?;
            let total: usize = input(meters, days).iter().map(Vec::len).sum();
            let store = Arc::new(PgStore::connect(&with_db(&url, &rust_db)?).await?);
            let (stop, rx) = tokio::sync::watch::channel(false);
            let stats = Arc::new(StageStats::default());
            // The namespace's processed topic is the Flink job's, checked for exactly-once
            // afterwards: the Rust stage here writes its own database only (its publishing of
            // the topic is tested in hes-pipeline's stages test).
            let mut stage = StageConfig::new("diff-rust-process");
            stage.publish_processed = false;
            let t = Instant::now();
            let task = tokio::spawn(run_process(
                ProcessDeps {
                    bus: bus(&brokers, &name)?,
                    store,
                    cache: None,
                    groups: Arc::new(Cells(meters)),
                    rules: Arc::new(Rules::default()),
                },
                stage,
                stats.clone(),
                rx,
            ));
            let deadline = Instant::now() + Duration::from_secs(1800);
            while StageStats::get(&stats.readings) < total as u64 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let secs = t.elapsed().as_secs_f64();
            let _ = stop.send(true);
            let _ = task.await;
            let done = StageStats::get(&stats.readings);
            println!(
                "rust process stage: {done} of {total} readings in {secs:.1} s ({:.0} readings/s), {} aggregates",
                done as f64 / secs,
                StageStats::get(&stats.aggregates)
            );
            if done < total as u64 {
                return Err("the Rust stage did not finish".into());
            }
        }
        "compare" => {
            let timeout: u64 = arg(&args, 2, "TIMEOUT_S")?;
            let rust = client(&with_db(&url, &rust_db)?).await?;
            let flink = client(&with_db(&url, &flink_db)?).await?;
            let t = Instant::now();
            let deadline = t + Duration::from_secs(timeout);
            loop {
                let (diffs, summary) = compare(&rust, &flink).await?;
                if diffs.is_empty() {
                    println!("equal after {:.1} s: {summary}", t.elapsed().as_secs_f64());
                    break;
                }
                if Instant::now() >= deadline {
                    println!("DIFFERENT ({summary}); first differences:");
                    for d in diffs.iter().take(20) {
                        println!("  {d}");
                    }
                    return Err(format!("{} differences", diffs.len()).into());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        "rawcopy" => {
            // The ceiling the engines are measured against: a binary COPY of the same readings
            // straight into `readings` (no conflict handling, no aggregates), 20,000 per COPY.
            let meters: usize = arg(&args, 2, "METERS")?;
            let days: i64 = arg(&args, 3, "DAYS")?;
            let all: Vec<Reading> = input(meters, days)
                .into_iter()
                .flatten()
                .map(|v| {
                    let r = v.reading;
                    ((r.meter.clone(), r.obis, r.attribute, r.time), r)
                })
                .collect::<BTreeMap<_, _>>()
                .into_values()
                .collect();
            let db = format!("{name}_raw");
            let admin = client(&url).await?;
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                .await?;
            admin
                .batch_execute(&format!("CREATE DATABASE \"{db}\""))
                .await?;
            let store = PgStore::connect(&with_db(&url, &db)?).await?;
            let t = Instant::now();
            for chunk in all.chunks(20_000) {
                store.copy_readings_unchecked(chunk).await?;
            }
            let secs = t.elapsed().as_secs_f64();
            drop(store);
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                .await?;
            println!(
                "raw COPY: {} readings in {secs:.1} s ({:.0} readings/s)",
                all.len(),
                all.len() as f64 / secs
            );
        }
        "drop" => {
            let admin = client(&url).await?;
            for db in [&rust_db, &flink_db] {
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                    .await?;
            }
        }
        _ => return Err("usage: flink_diff setup|publish|rust|compare|drop NAME …".into()),
    }
    Ok(())
}

const AGGREGATES: &str = "SELECT subject, channel, period, period_start, period_end, total, \
     count, complete, quality FROM aggregates ORDER BY subject, channel, period, period_start";
const READINGS: &str = "SELECT count(*), coalesce(md5(string_agg(meter || '/' || obis || '/' || \
     attribute || '/' || time || '/' || value || '/' || scaler || '/' || unit || '/' || quality \
     || '/' || source || '/' || received_at, ',' ORDER BY meter, obis, attribute, time)), '') FROM readings";

type Row = (String, String, String, i64, i64, f64, i32, bool, i32);

async fn rows(
    c: &tokio_postgres::Client,
) -> Result<BTreeMap<(String, String, String, i64), Row>, Error> {
    let mut out = BTreeMap::new();
    for r in c.query(AGGREGATES, &[]).await? {
        let row: Row = (
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
            r.try_get(6)?,
            r.try_get(7)?,
            r.try_get(8)?,
        );
        out.insert((row.0.clone(), row.1.clone(), row.2.clone(), row.3), row);
    }
    Ok(out)
}

/// The differences between the two databases (empty: equal) and a summary.
async fn compare(
    rust: &tokio_postgres::Client,
    flink: &tokio_postgres::Client,
) -> Result<(Vec<String>, String), Error> {
    let mut diffs = Vec::new();
    let r = rust.query_one(READINGS, &[]).await?;
    let f = flink.query_one(READINGS, &[]).await?;
    let (rn, rh): (i64, String) = (r.try_get(0)?, r.try_get(1)?);
    let (fn_, fh): (i64, String) = (f.try_get(0)?, f.try_get(1)?);
    if (rn, &rh) != (fn_, &fh) {
        diffs.push(format!(
            "readings: rust {rn} rows ({rh}), flink {fn_} rows ({fh})"
        ));
    }
    let a = rows(rust).await?;
    let b = rows(flink).await?;
    let mut exact = 0;
    for (k, ra) in &a {
        match b.get(k) {
            None => diffs.push(format!("missing in flink: {ra:?}")),
            Some(fb) => {
                // Totals are sums of the same values in the same order; allow only rounding.
                let close = (ra.5 - fb.5).abs() <= 1e-9 * ra.5.abs().max(1.0);
                if ra.4 != fb.4 || !close || ra.6 != fb.6 || ra.7 != fb.7 || ra.8 != fb.8 {
                    diffs.push(format!("rust {ra:?} != flink {fb:?}"));
                } else if ra.5 == fb.5 {
                    exact += 1;
                }
            }
        }
    }
    for (k, fb) in &b {
        if !a.contains_key(k) {
            diffs.push(format!("only in flink: {fb:?}"));
        }
    }
    let summary = format!(
        "{rn} readings, {} aggregate rows (rust) vs {} (flink), {exact} with bit-identical totals",
        a.len(),
        b.len()
    );
    Ok((diffs, summary))
}
