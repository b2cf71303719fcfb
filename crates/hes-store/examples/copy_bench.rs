//! Write rates of the store on this machine, for 1 M readings (1000 meters x 1000 quarter
//! hours, across a month boundary so two partitions are involved):
//!
//! 1. raw binary COPY straight into the partitioned `readings` table (no conflict path);
//! 2. the idempotent path (`Store::insert_readings`: COPY into staging, then
//!    INSERT … SELECT … ON CONFLICT DO NOTHING), new rows, in batches;
//! 3. the same batches replayed (every row conflicts, nothing stored);
//! 4. for comparison, the SQLite adapter (a WAL file) on the same batches.
//!
//! Run with `eval "$(scripts/services up)"` then
//! `cargo run --release -p hes-store --example copy_bench [ROWS] [BATCH]`. It works in a
//! database of its own, dropped at the end.

use std::sync::Arc;
use std::time::Instant;

use dlms::ObisCode;
use hes_model::{MeterId, Reading, Source};
use hes_store::{PgStore, SqliteStore, Store, StoreError};

/// 2026-10-27T00:00:00Z: the series crosses into November.
const T0: i64 = 1_793_059_200;

fn readings(rows: usize) -> Vec<Reading> {
    let meters = 1000usize;
    let per_meter = rows.div_ceil(meters);
    let mut out = Vec::with_capacity(rows);
    for m in 0..meters {
        let meter = MeterId(format!("SIM{m:08}"));
        for i in 0..per_meter as i64 {
            if out.len() == rows {
                return out;
            }
            out.push(Reading {
                meter: meter.clone(),
                obis: ObisCode([1, 0, 1, 8, 0, 255]),
                class_id: 3,
                attribute: 2,
                time: T0 + i * 900,
                value: 1_000_000 + i * 250,
                scaler: 0,
                unit: 30,
                status: 0,
                source: Source::Scheduled,
                received_at: T0 + i * 900 + 30,
            });
        }
    }
    out
}

fn rate(label: &str, rows: usize, secs: f64, stored: u64) {
    println!(
        "{label:<48} {rows:>9} rows {secs:>7.2} s {:>10.0} rows/s  (stored {stored})",
        rows as f64 / secs
    );
}

async fn run_batches(
    store: &dyn Store,
    all: &[Reading],
    batch: usize,
) -> Result<(f64, u64), StoreError> {
    let t = Instant::now();
    let mut stored = 0;
    for chunk in all.chunks(batch) {
        stored += store.insert_readings(chunk).await?;
    }
    Ok((t.elapsed().as_secs_f64(), stored))
}

async fn admin(url: &str, sql: &str) -> Result<(), StoreError> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await?;
    drop(client);
    let _ = task.await;
    Ok(())
}

fn with_db(url: &str, db: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (rest, String::new()),
    };
    let authority = rest.split('/').next()?;
    Some(format!("{scheme}://{authority}/{db}{query}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rows: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let batch: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let url = std::env::var("HES_DATABASE_URL")
        .map_err(|_| "HES_DATABASE_URL is not set: run `eval \"$(scripts/services up)\"` first")?;
    let all = readings(rows);
    println!("{rows} readings, batches of {batch}");

    let name = format!("hes_copy_bench_{}", std::process::id());
    admin(&url, &format!("CREATE DATABASE \"{name}\"")).await?;
    let db_url = with_db(&url, &name).ok_or("HES_DATABASE_URL is not a postgres:// URL")?;
    let result = async {
        let store = PgStore::connect(&db_url).await?;

        let t = Instant::now();
        let n = store.copy_readings_unchecked(&all).await?;
        rate(
            "pg: raw COPY BINARY into readings, one COPY",
            rows,
            t.elapsed().as_secs_f64(),
            n,
        );
        store.truncate().await?;

        let t = Instant::now();
        let mut n = 0;
        for chunk in all.chunks(batch) {
            n += store.copy_readings_unchecked(chunk).await?;
        }
        rate(
            "pg: raw COPY BINARY into readings, batched",
            rows,
            t.elapsed().as_secs_f64(),
            n,
        );
        store.truncate().await?;

        let (secs, n) = run_batches(&store, &all, batch).await?;
        rate("pg: idempotent insert_readings, new rows", rows, secs, n);
        let (secs, n) = run_batches(&store, &all, batch).await?;
        rate("pg: idempotent insert_readings, replay", rows, secs, n);
        store.truncate().await?;

        let t = Instant::now();
        let n = store.insert_readings(&all).await?;
        rate(
            "pg: idempotent insert_readings, one batch",
            rows,
            t.elapsed().as_secs_f64(),
            n,
        );
        store.truncate().await?;

        // Two writers at once (the pipeline's consumers do this), each on every other batch.
        let store = Arc::new(store);
        let all = Arc::new(all.clone());
        let t = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..2usize {
            let (store, all) = (Arc::clone(&store), Arc::clone(&all));
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                for chunk in all.chunks(batch).skip(w).step_by(2) {
                    n += store.insert_readings(chunk).await?;
                }
                Ok::<_, StoreError>(n)
            }));
        }
        let mut n = 0;
        for task in tasks {
            n += task.await.map_err(|e| StoreError::Task(e.to_string()))??;
        }
        rate(
            "pg: idempotent insert_readings, 2 writers",
            rows,
            t.elapsed().as_secs_f64(),
            n,
        );
        Ok::<_, StoreError>(())
    }
    .await;
    admin(&url, &format!("DROP DATABASE \"{name}\" WITH (FORCE)")).await?;
    result?;

    let dir = std::env::temp_dir().join(format!("hes_copy_bench_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = SqliteStore::open(dir.join("bench.db")).await?;
    let (secs, n) = run_batches(&sqlite, &all, batch).await?;
    rate(
        "sqlite (WAL file): insert_readings, new rows",
        rows,
        secs,
        n,
    );
    let (secs, n) = run_batches(&sqlite, &all, batch).await?;
    rate("sqlite (WAL file): insert_readings, replay", rows, secs, n);
    drop(sqlite);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
