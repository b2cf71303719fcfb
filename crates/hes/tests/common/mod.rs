//! What the tests that run whole `hes serve` nodes share: the `hes` binary with the test KEK,
//! a node's configuration file, starting a node and stopping it cleanly, its API, and the
//! registry as `hes meters list` shows it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hes_testkit::http::{base_from_ui_line, Api};
use hes_testkit::{service_env, Proc};

/// The KEK the tests' nodes seal the registry's secrets under.
pub const TEST_KEK: &str = "0000000000000000000000000000000000000000000000000000000000000003";

/// The admin password the nodes with the api role start with.
pub const ADMIN_PASSWORD: &str = "two-nodes-admin-password";

pub fn env(name: &str) -> String {
    service_env(name).unwrap_or_else(|e| panic!("{e}"))
}

/// `hes ARGS` against `database_url`, to its end: success, stdout, stderr.
pub fn hes(args: &[&str], database_url: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hes"))
        .args(args)
        .env("HES_DATABASE_URL", database_url)
        .env("HES_KEK", TEST_KEK)
        .output()
        .unwrap_or_else(|e| panic!("hes {args:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `hes meters import FILE` into `database_url`; panics when it fails.
pub fn import(file: &Path, database_url: &str) {
    let (ok, out, err) = hes(&["meters", "import", &file.to_string_lossy()], database_url);
    assert!(ok, "hes meters import: {out}{err}");
}

/// The key version of meter `id` in the registry, as `hes meters list` prints it.
pub fn key_version(database_url: &str, id: &str) -> u32 {
    let (ok, out, err) = hes(&["meters", "list", "--limit", "100000"], database_url);
    assert!(ok, "hes meters list: {out}{err}");
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "keys")?;
            words.get(at + 1)?.strip_prefix('v')?.parse().ok()
        })
        .unwrap_or_else(|| panic!("{id} not in `hes meters list`:\n{out}"))
}

/// One node's configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub roles: Vec<&'static str>,
    pub database_url: String,
    pub brokers: String,
    /// The test's own topics: every topic's prefix.
    pub namespace: String,
    pub partitions: u32,
    /// The node's name when it has the api role.
    pub api_node: Option<String>,
}

impl NodeConfig {
    pub fn write(&self, path: &Path) -> PathBuf {
        let roles: Vec<String> = self.roles.iter().map(|r| format!("\"{r}\"")).collect();
        let mut text = format!(
            "roles = [{}]\ndatabase_url = \"{}\"\n\
             [kafka]\nbrokers = \"{}\"\nnamespace = \"{}\"\npartitions = {}\n\
             [stages]\nlinger_ms = 100\n",
            roles.join(", "),
            self.database_url,
            self.brokers,
            self.namespace,
            self.partitions
        );
        if let Some(node) = &self.api_node {
            text.push_str(&format!(
                "[api]\nlisten = \"127.0.0.1:0\"\nnode = \"{node}\"\n"
            ));
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path.to_path_buf()
    }
}

/// Starts `hes serve --config CONFIG` and waits until it serves.
pub async fn start(name: &str, config: &Path) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hes"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .env("HES_KEK", TEST_KEK)
        .env("HES_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("HES_REDIS_URL");
    let node = Proc::spawn(name, cmd).unwrap();
    node.wait_for_async(Duration::from_secs(90), "SERVING", |l| {
        l.starts_with("SERVING")
    })
    .await
    .unwrap();
    node
}

/// The API of a node with the api role, logged in as admin.
pub async fn api(node: &Proc) -> Api {
    let line = node
        .wait_for_async(Duration::from_secs(30), "the UI's address", |l| {
            l.starts_with("Web UI: open ")
        })
        .await
        .unwrap();
    let base = base_from_ui_line(&line).unwrap();
    Api::login(&base, "admin", ADMIN_PASSWORD).unwrap()
}

/// Ctrl-C: the node finishes what it holds, commits, says `STOPPED` and exits with success.
pub async fn stop(node: &mut Proc) {
    node.interrupt().unwrap();
    let status = node.wait_exit_async(Duration::from_secs(60)).await.unwrap();
    assert!(status.success(), "{status}: {}", node.stderr.tail(30));
    assert!(
        node.stdout.any(|l| l == "STOPPED"),
        "{}",
        node.stdout.text()
    );
}

/// Fails the test at once when `node` has exited (a role stopped).
pub fn assert_running(node: &mut Proc) {
    if let Ok(Some(status)) = node.try_wait() {
        panic!(
            "{} exited ({status}): {}",
            node.name(),
            node.stderr.tail(30)
        );
    }
}
