//! `hes serve --config` runs the pipeline's stages against Kafka and PostgreSQL: readings put on
//! the raw topic come out stored, flagged and aggregated, and Ctrl-C stops it cleanly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dlms::ObisCode;
use hes_model::{MeterId, Period, Reading, Source};
use hes_store::Store;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `eval \"$(scripts/services up)\"` first (scripts/test does)")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_stages_from_a_config_file() {
    let tag = format!(
        "s{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let dir = std::env::temp_dir().join(format!("hes-serve-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("hes.toml");
    std::fs::write(
        &config,
        format!(
            "roles = [\"validate\", \"process\"]\n\
             database_url = \"{}\"\n\
             [kafka]\nbrokers = \"{}\"\nnamespace = \"{tag}.\"\npartitions = 4\n\
             [stages]\nlinger_ms = 100\n",
            env("HES_DATABASE_URL"),
            env("HES_KAFKA_BROKERS")
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hes"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("HES_REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let d0 = now - now.rem_euclid(86_400) - 86_400;
    let meter = MeterId(format!("{tag}-m1"));
    let readings: Vec<Reading> = (0..=96)
        .map(|k| Reading {
            meter: meter.clone(),
            obis: ObisCode([1, 0, 1, 8, 0, 255]),
            class_id: 3,
            attribute: 2,
            time: d0 + k * 900,
            value: 1_000 + k * 100,
            scaler: 0,
            unit: 30,
            status: 0,
            source: Source::Scheduled,
            received_at: d0 + k * 900 + 5,
        })
        .collect();
    let bus = hes_bus::kafka::KafkaBus::connect(&env("HES_KAFKA_BROKERS"))
        .unwrap()
        .with_namespace(&format!("{tag}."));
    hes_bus::publish_readings(&bus, &readings).await.unwrap();

    let store = hes_store::PgStore::connect(&env("HES_DATABASE_URL"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let day = loop {
        let day = store
            .aggregates(
                std::slice::from_ref(&meter.0),
                Some("energy.active.import"),
                Period::Day,
                d0,
                d0,
            )
            .await
            .unwrap();
        if let Some(d) = day.into_iter().next() {
            break d;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "hes serve exited early"
        );
        assert!(Instant::now() < deadline, "no day aggregate from hes serve");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!((day.total, day.count, day.complete), (9_600.0, 96, true));
    let stored = store
        .meter_readings(&meter, None, d0, d0 + 86_400, 1000)
        .await
        .unwrap();
    assert_eq!(stored.len(), 97);

    // Ctrl-C: the stages finish their batch, commit and stop.
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hes serve did not stop on SIGINT");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(out.contains("SERVING") && out.contains("STOPPED"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_refuses_a_bad_config() {
    let dir = std::env::temp_dir().join(format!("hes-serve-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("hes.toml");
    std::fs::write(&config, "roles = [\"validate\"]\nbogus = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hes"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bogus"), "{err}");
    std::fs::write(&config, "roles = []\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hes"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to run"));
    std::fs::remove_dir_all(&dir).unwrap();
}
