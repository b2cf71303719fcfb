//! The pipeline's end-to-end rate against the raw COPY rate, on this machine:
//!
//! 1. raw: one binary COPY per batch straight into `readings` (no validation, no conflict
//!    handling, no aggregates): the ceiling;
//! 2. pipeline: the same readings put on the raw topic in Kafka first (not timed), then the
//!    validate and process stages started and timed from their start until every reading is
//!    stored with its flags and every touched hour, day and month (per meter and per group) is
//!    aggregated: Kafka → validate → Kafka → store → aggregates.
//!
//! `eval "$(scripts/services up)"`, then
//! `cargo run --release -p hes-pipeline --example pipeline_bench [METERS] [DAYS] [BATCH]`
//! (default 2,000 meters × 5 days of 15-minute entries = 962,000 readings). Works in a
//! database of its own and a Kafka namespace of its own; drops the database at the end.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dlms::ObisCode;
use hes_model::{MeterId, Reading, Source};
use hes_pipeline::run::{run_process, run_validate, Groups, ProcessDeps, StageConfig, StageStats};
use hes_pipeline::Rules;
use hes_store::{PgStore, Store};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn readings(meters: usize, days: i64, d0: i64) -> Vec<Reading> {
    let mut out = Vec::with_capacity(meters * (days as usize * 96 + 1));
    for m in 0..meters {
        let meter = MeterId(format!("BENCH{m:07}"));
        for k in 0..=(days * 96) {
            out.push(Reading {
                meter: meter.clone(),
                obis: ObisCode([1, 0, 1, 8, 0, 255]),
                class_id: 3,
                attribute: 2,
                time: d0 + k * 900,
                value: 1_000_000 + k * 250 + (k % 7) * 3,
                scaler: 0,
                unit: 30,
                status: 0,
                source: Source::Scheduled,
                received_at: d0 + k * 900 + 30,
            });
        }
    }
    out
}

/// Cells of 50 meters, as the demo groups them.
struct Cells(usize);

impl Groups for Cells {
    fn of(&self, m: &MeterId) -> Vec<String> {
        let n: usize = m.0.trim_start_matches("BENCH").parse().unwrap_or(0);
        vec![format!("cell=c{}", n / 50)]
    }
    fn members(&self, g: &str) -> Vec<MeterId> {
        let c: usize = g.trim_start_matches("cell=c").parse().unwrap_or(usize::MAX);
        (c.saturating_mul(50)..(c.saturating_mul(50) + 50).min(self.0))
            .map(|n| MeterId(format!("BENCH{n:07}")))
            .collect()
    }
}

async fn admin(url: &str, sql: &str) -> Result<(), Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await?;
    drop(client);
    let _ = task.await;
    Ok(())
}

fn with_db(url: &str, db: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    Some(format!("{scheme}://{authority}/{db}"))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let meters: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let days: i64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let batch: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let url = std::env::var("HES_DATABASE_URL")?;
    let brokers = std::env::var("HES_KAFKA_BROKERS")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let d0 = now - now.rem_euclid(86_400) - (days + 1) * 86_400;
    let all = readings(meters, days, d0);
    let rows = all.len();
    println!("{meters} meters x {days} days: {rows} readings");

    let name = format!("hes_pipeline_bench_{}", std::process::id());
    admin(&url, &format!("CREATE DATABASE \"{name}\"")).await?;
    // HES_BENCH_PROCESSED=0: the process stage does not publish hes.readings.processed (the
    // stage as it was before it did, for comparison).
    let publish_processed = std::env::var("HES_BENCH_PROCESSED").map_or(true, |v| v != "0");
    println!("publishing hes.readings.processed: {publish_processed}");
    let db_url = with_db(&url, &name).ok_or("HES_DATABASE_URL is not a postgres:// URL")?;
    let result = async {
        let store = Arc::new(PgStore::connect(&db_url).await?);
        // 1. Raw COPY, batches as the process stage makes them.
        let t = Instant::now();
        for chunk in all.chunks(batch) {
            store.copy_readings_unchecked(chunk).await?;
        }
        let raw = rows as f64 / t.elapsed().as_secs_f64();
        println!("raw COPY into readings:             {raw:>10.0} readings/s");
        store.truncate().await?;

        // 2. The pipeline, as two stages (validate → topic → process) and fused (the process
        // stage validates inline).
        for (fused, consumers) in [(false, 1), (false, 2), (true, 2)] {
            store.truncate().await?;
            let ns = format!("bench{}{}{consumers}.", std::process::id(), if fused { "f" } else { "" });
            let bus: Arc<dyn hes_bus::Bus> =
                Arc::new(hes_bus::kafka::KafkaBus::connect(&brokers)?.with_namespace(&ns));
            bus.ensure_topics(
                &[
                    hes_model::topics::READINGS_RAW,
                    hes_model::topics::READINGS_VALIDATED,
                    hes_model::topics::EVENTS,
                    hes_model::topics::JOB_RESULTS,
                    hes_model::topics::READINGS_PROCESSED,
                ],
                8,
            )
            .await?;
            let t = Instant::now();
            for chunk in all.chunks(100_000) {
                hes_bus::publish_readings(&*bus, chunk).await?;
            }
            let load = t.elapsed().as_secs_f64();
            let (stop, rx) = tokio::sync::watch::channel(false);
            let vstats = Arc::new(StageStats::default());
            let pstats = Arc::new(StageStats::default());
            let t = Instant::now();
            let mut vcfg = StageConfig::new("bench-validate");
            vcfg.max_batch = batch;
            let v = (!fused).then(|| {
                tokio::spawn(run_validate(
                    bus.clone(),
                    Rules::default(),
                    vcfg,
                    vstats.clone(),
                    rx.clone(),
                ))
            });
            let mut pcfg = StageConfig::new("bench-process");
            pcfg.inline_validation = fused;
            pcfg.publish_processed = publish_processed;
            pcfg.max_batch = batch;
            let procs: Vec<_> = (0..consumers)
                .map(|_| {
                    tokio::spawn(run_process(
                        ProcessDeps {
                            bus: bus.clone(),
                            store: store.clone(),
                            cache: None,
                            groups: Arc::new(Cells(meters)),
                            rules: Arc::new(Rules::default()),
                        },
                        pcfg.clone(),
                        pstats.clone(),
                        rx.clone(),
                    ))
                })
                .collect();
            let deadline = Instant::now() + Duration::from_secs(1800);
            while StageStats::get(&pstats.readings) < rows as u64 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let secs = t.elapsed().as_secs_f64();
            let _ = stop.send(true);
            if let Some(v) = v {
                let _ = v.await;
            }
            for p in procs {
                let _ = p.await;
            }
            let stored = store.count_readings().await?;
            let piped = rows as f64 / secs;
            let label = if fused {
                format!("pipeline, fused (raw -> {consumers} x process):")
            } else {
                format!("pipeline, two stages (raw -> validate -> {consumers} x process):")
            };
            println!(
                "{label} {piped:>10.0} readings/s = {:.0} % of raw COPY  ({stored} stored, {} aggregates, {} batches; process stage busy {:.1} s; loading the raw topic {load:.1} s, not counted)",
                100.0 * piped / raw,
                StageStats::get(&pstats.aggregates),
                StageStats::get(&pstats.batches),
                (StageStats::get(&pstats.store_us) + StageStats::get(&pstats.aggregate_us)) as f64
                    / 1e6,
            );
            if stored != rows as u64 {
                return Err(format!("stored {stored} of {rows}").into());
            }
        }
        Ok::<_, Error>(())
    }
    .await;
    admin(&url, &format!("DROP DATABASE \"{name}\" WITH (FORCE)")).await?;
    result
}
