//! `hes serve --config` runs the pipeline's stages against Kafka and PostgreSQL: readings put on
//! the raw topic come out stored, flagged and aggregated, and Ctrl-C stops it cleanly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dlms::ObisCode;
use hes_model::{MeterId, Period, Reading, Source};
use hes_store::Store;
use hes_testkit::{service_env, wait_until_async, Proc, TempDir, TestDb};

fn env(name: &str) -> String {
    service_env(name).unwrap()
}

/// Ctrl-C: the roles finish what they hold, commit and stop; the process says `STOPPED` and
/// exits with success.
async fn stop(serve: &mut Proc) {
    serve.interrupt().unwrap();
    let status = serve
        .wait_exit_async(Duration::from_secs(40))
        .await
        .unwrap();
    assert!(status.success(), "{status}: {}", serve.stderr.tail(30));
    assert!(
        serve.stdout.any(|l| l.starts_with("SERVING")),
        "{}",
        serve.stdout.text()
    );
    assert!(
        serve.stdout.any(|l| l == "STOPPED"),
        "{}",
        serve.stdout.text()
    );
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
    let dir = TempDir::new("hes-serve").unwrap();
    let db = TestDb::create().await.unwrap();
    let config = dir.join("hes.toml");
    std::fs::write(
        &config,
        format!(
            "roles = [\"validate\", \"process\"]\n\
             database_url = \"{}\"\n\
             [kafka]\nbrokers = \"{}\"\nnamespace = \"{tag}.\"\npartitions = 4\n\
             [stages]\nlinger_ms = 100\n",
            db.url(),
            env("HES_KAFKA_BROKERS")
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hes"));
    cmd.args(["serve", "--metrics-addr", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("HES_KEK", TEST_KEK)
        .env_remove("HES_REDIS_URL");
    let mut serve = Proc::spawn("hes serve", cmd).unwrap();
    let metrics_line = serve
        .wait_for_async(Duration::from_secs(30), "the metrics endpoint", |l| {
            l.starts_with("METRICS ")
        })
        .await
        .unwrap();
    let metrics_addr = metrics_line
        .trim_start_matches("METRICS http://")
        .trim_end_matches("/metrics")
        .to_string();

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

    let store = hes_store::PgStore::connect(db.url()).await.unwrap();
    let day = wait_until_async(Duration::from_secs(90), "a day aggregate", || async {
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
        assert!(
            !serve.stdout.is_closed(),
            "hes serve exited early: {}",
            serve.stderr.tail(30)
        );
        day.into_iter().next()
    })
    .await
    .unwrap();
    assert_eq!((day.total, day.count, day.complete), (9_600.0, 96, true));
    let stored = store
        .meter_readings(&meter, None, d0, d0 + 86_400, 1000)
        .await
        .unwrap();
    assert_eq!(stored.len(), 97);
    drop(store);
    // The node's metrics (`--metrics-addr`, no API role): the stages' rows, batches and store
    // latency (a batch's duration is recorded once committed, after its rows are counted),
    // and the store's job counts.
    let series = [
        "hes_pipeline_rows_total{stage=\"validate\",kind=\"readings\"}",
        "hes_pipeline_batch_duration_seconds_count{stage=\"process\"}",
        "hes_pipeline_batch_duration_seconds_count{stage=\"validate\"}",
        "hes_store_operation_duration_seconds_count{op=\"insert_readings\"}",
    ];
    let process_rows = "hes_pipeline_rows_total{stage=\"process\",kind=\"readings\"}";
    let text = wait_until_async(Duration::from_secs(30), "the stages' metrics", || {
        let addr = metrics_addr.clone();
        async move {
            let text = scrape(&addr).await;
            (value(&text, process_rows) >= Some(97.0)
                && series.iter().all(|s| value(&text, s) >= Some(1.0)))
            .then_some(text)
        }
    })
    .await
    .unwrap();
    assert!(
        value(&text, "hes_jobs{state=\"queued\"}").is_some(),
        "{text}"
    );
    assert!(
        value(&text, "process_resident_memory_bytes") > Some(0.0),
        "{text}"
    );
    assert!(
        !text.contains(&meter.0),
        "a meter id in the metrics: {text}"
    );
    stop(&mut serve).await;
}

/// `GET /metrics` of `addr` (host:port), the body.
async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    text
}

/// The value of the sample `series` (name and labels as exposed), if there.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn serve_refuses_a_bad_config() {
    let dir = TempDir::new("hes-serve-bad").unwrap();
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
    // A role that opens the registry needs the KEK: missing or malformed, serve refuses to
    // start (it never makes up a key).
    std::fs::write(
        &config,
        "roles = [\"process\"]\ndatabase_url = \"postgres://127.0.0.1:1/none\"\n\
         [kafka]\nbrokers = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    for kek in [None, Some("zz"), Some("00")] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hes"));
        cmd.args(["serve", "--config"])
            .arg(&config)
            .env_remove("HES_KEK")
            .env_remove("HES_KEK_FILE");
        if let Some(k) = kek {
            cmd.env("HES_KEK", k);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{kek:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("key-encryption key"), "{kek:?}: {err}");
    }
}

/// The KEK the tests' nodes seal the registry's secrets under.
const TEST_KEK: &str = "0000000000000000000000000000000000000000000000000000000000000001";

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
    let dir = TempDir::new("hes-serve-api").unwrap();
    let mut fleet_cfg = hes_sim::fleet::FleetConfig::new(3);
    fleet_cfg.first_host = std::net::IpAddr::from([127, 66, 0, 1]);
    fleet_cfg.first_serial = hes_testkit::inventory::fresh_serials(3);
    let fleet = hes_sim::fleet::Fleet::start(fleet_cfg).await.unwrap();
    let inventory = dir.join("inventory.json");
    hes_testkit::inventory::write_json(&inventory, &fleet.inventory()).unwrap();
    let meter = fleet.inventory()[0].id.clone();
    let db = TestDb::create().await.unwrap();
    let config = dir.join("hes.toml");
    std::fs::write(
        &config,
        format!(
            "roles = [\"api\", \"collector\", \"validate\", \"process\"]\n\
             database_url = \"{}\"\n\
             inventory = \"{}\"\n\
             [kafka]\nbrokers = \"{}\"\nnamespace = \"{tag}.\"\npartitions = 2\n\
             [api]\nlisten = \"127.0.0.1:0\"\nnode = \"n1\"\n",
            db.url(),
            inventory.display(),
            env("HES_KAFKA_BROKERS")
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hes"));
    cmd.args(["serve", "--config"])
        .arg(&config)
        .env("HES_ADMIN_PASSWORD", "serve-test-admin-password")
        .env("HES_KEK", TEST_KEK)
        .env_remove("HES_REDIS_URL");
    let mut serve = Proc::spawn("hes serve", cmd).unwrap();
    // The UI's address, from the first lines.
    let line = serve
        .wait_for_async(Duration::from_secs(60), "the UI's address", |l| {
            l.starts_with("Web UI: open ")
        })
        .await
        .unwrap();
    let base = line
        .trim_start_matches("Web UI: open ")
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
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
    let mut job = serde_json::Value::Null;
    wait_until_async(Duration::from_secs(90), "the job finished", || {
        (_, job) = curl(&["-H", &auth, &format!("{base}/api/v1/jobs/{id}")]);
        let done = job["state"] == "succeeded" || job["state"] == "failed";
        async move { done.then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {job}"));
    assert_eq!(job["state"], "succeeded", "{job}");
    // /readyz names each role and how it is doing.
    let out = std::process::Command::new("curl")
        .args(["-sS", "-m", "10", &format!("{base}/readyz")])
        .output()
        .unwrap();
    let ready = String::from_utf8_lossy(&out.stdout).to_string();
    for role in [
        "api: listening",
        "collector: taking jobs",
        "validate: consuming",
        "process: consuming",
    ] {
        assert!(ready.contains(role), "{role} in {ready}");
    }
    // What it read went through the pipeline into the store.
    let store = hes_store::PgStore::connect(db.url()).await.unwrap();
    wait_until_async(Duration::from_secs(60), "readings stored", || async {
        (store.count_readings().await.unwrap() > 0).then_some(())
    })
    .await
    .unwrap();
    drop(store);
    stop(&mut serve).await;
    fleet.shutdown();
}
