//! `HES_LOG_FORMAT=json`: every line `hes` writes to stderr is a JSON object, and the lines
//! of a meter session carry the job, meter and trace ids of the spans they happened in (what
//! a log aggregator is searched by).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashSet;
use std::net::IpAddr;
use std::process::Command;

use hes_sim::fleet::{Fleet, FleetConfig};
use hes_testkit::TempDir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_parse_and_carry_job_and_meter_ids() {
    let mut cfg = FleetConfig::new(3);
    cfg.first_host = IpAddr::from([127, 79, 0, 1]);
    cfg.first_serial = hes_testkit::inventory::fresh_serials(3);
    let fleet = Fleet::start(cfg).await.unwrap();
    let ids: HashSet<String> = fleet.meters().iter().map(|m| m.spec.id()).collect();
    let dir = TempDir::new("hes-logs-json").unwrap();
    let inventory = dir.join("inventory.json");
    hes_testkit::inventory::write_json(&inventory, &fleet.inventory()).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_hes"))
            .args(["collect", "--kind", "instant", "--inventory"])
            .arg(&inventory)
            .env("HES_LOG_FORMAT", "json")
            .env("HES_LOG", "hes_collector=debug")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    fleet.shutdown();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut sessions = HashSet::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        if v["message"] != "session ended" {
            continue;
        }
        assert_eq!(v["outcome"], "ok", "{line}");
        let spans = v["spans"].as_array().expect("a span list");
        let job = spans
            .iter()
            .find(|s| s["name"] == "job")
            .unwrap_or_else(|| panic!("no job span: {line}"));
        let session = spans
            .iter()
            .find(|s| s["name"] == "session")
            .unwrap_or_else(|| panic!("no session span: {line}"));
        assert!(job["job"].as_u64().is_some(), "a job id: {line}");
        let meter = job["meter"].as_str().unwrap().to_string();
        assert_eq!(session["meter"], meter.as_str(), "{line}");
        assert!(ids.contains(&meter), "{meter} is not a meter of the fleet");
        sessions.insert(meter);
    }
    assert_eq!(sessions, ids, "a session line for every meter:\n{stderr}");
}
