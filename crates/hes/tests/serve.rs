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

/// A fresh PostgreSQL database for one test (accounts included), on the server of
/// `HES_DATABASE_URL`; its URL.
async fn fresh_database(tag: &str) -> String {
    let url = env("HES_DATABASE_URL");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE \"{tag}\""))
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{tag}")
}

fn curl(args: &[&str]) -> (u16, serde_json::Value) {
    let out = Command::new("curl")
        .args(["-sS", "-m", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (
        code.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// The distributed mode end to end: `hes serve` with the api, collector, validate and process
/// roles against Kafka and PostgreSQL and simulated meters. A command through the API becomes a
/// job on `hes.jobs`, a collector runs it against the meter, and the API reports it succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_the_api_role_runs_commands_through_the_collectors() {
    let tag = format!(
        "sapi{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let dir = std::env::temp_dir().join(format!("hes-serve-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut fleet_cfg = hes_sim::fleet::FleetConfig::new(3);
    fleet_cfg.first_host = std::net::IpAddr::from([127, 66, 0, 1]);
    fleet_cfg.first_serial = 20_000_000
        + (SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 9_000_000) as u32;
    let fleet = hes_sim::fleet::Fleet::start(fleet_cfg).await.unwrap();
    let inventory = dir.join("inventory.json");
    std::fs::write(&inventory, serde_json::to_vec(&fleet.inventory()).unwrap()).unwrap();
    let meter = fleet.inventory()[0].id.clone();
    let db = fresh_database(&tag).await;
    let config = dir.join("hes.toml");
    std::fs::write(
        &config,
        format!(
            "roles = [\"api\", \"collector\", \"validate\", \"process\"]\n\
             database_url = \"{db}\"\n\
             inventory = \"{}\"\n\
             [kafka]\nbrokers = \"{}\"\nnamespace = \"{tag}.\"\npartitions = 2\n\
             [api]\nlisten = \"127.0.0.1:0\"\nnode = \"n1\"\n",
            inventory.display(),
            env("HES_KAFKA_BROKERS")
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hes"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("HES_ADMIN_PASSWORD", "serve-test-admin-password")
        .env_remove("HES_REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // The UI's address, from the first lines.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let base = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("no UI address from hes serve");
        if let Some(rest) = line.strip_prefix("Web UI: open ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_string();
        }
    };
    let (code, login) = curl(&[
        "-X",
        "POST",
        &format!("{base}/api/v1/auth/token"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"username":"admin","password":"serve-test-admin-password"}"#,
    ]);
    assert_eq!(code, 200, "{login}");
    let auth = format!(
        "Authorization: Bearer {}",
        login["access_token"].as_str().unwrap()
    );
    let (code, meters) = curl(&["-H", &auth, &format!("{base}/api/v1/meters")]);
    assert_eq!((code, meters["total"].as_u64()), (200, Some(3)), "{meters}");
    let (code, accepted) = curl(&[
        "-X",
        "POST",
        &format!("{base}/api/v1/meters/{meter}/commands"),
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"command":"read_profile"}"#,
    ]);
    assert_eq!(code, 202, "{accepted}");
    let id = accepted["job_id"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let job = loop {
        let (_, job) = curl(&["-H", &auth, &format!("{base}/api/v1/jobs/{id}")]);
        if job["state"] == "succeeded" || job["state"] == "failed" {
            break job;
        }
        assert!(Instant::now() < deadline, "the job did not finish: {job}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(job["state"], "succeeded", "{job}");
    // What it read went through the pipeline into the store.
    let store = hes_store::PgStore::connect(&db).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.count_readings().await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "nothing stored");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(store);
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(40);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hes serve did not stop on SIGINT");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fleet.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}
