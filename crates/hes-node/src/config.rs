//! The node's configuration (see the crate's documentation for the layers).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The defaults, annotated: what `hes config default` prints. A test checks that it parses to
/// [`Config::default`], so the two never drift apart.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Raw readings in, flagged readings out (`hes.readings.validated`).
    Validate,
    /// Storage, aggregates, the cache, retention.
    Process,
    /// Takes jobs from `hes.jobs` (a consumer group) and runs them against the meters.
    Collector,
    /// The REST and WebSocket API and the web UI.
    Api,
    /// Runs the API's schedules; every node may have it, one leads (a lease in the store).
    Scheduler,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub roles: Vec<Role>,
    /// `postgres://…` or an SQLite path (`HES_DATABASE_URL`).
    pub database_url: String,
    /// `redis://…` (`HES_REDIS_URL`); empty: no shared cache (live updates stay on the node).
    pub redis_url: String,
    /// Redis through Sentinel (wins over `redis_url`): `host:port,…` (`HES_REDIS_SENTINELS`).
    pub redis_sentinels: String,
    /// The name the sentinels monitor the master under (`HES_REDIS_MASTER_NAME`).
    pub redis_master_name: String,
    /// An inventory file whose meters the registry does not have yet are imported at start
    /// (a first import; `hes meters import` is the usual way). Empty: none.
    pub inventory: PathBuf,
    pub kafka: Kafka,
    pub stages: Stages,
    pub retention: Retention,
    pub api: Api,
    pub collector: Collector,
    pub processing: Processing,
    pub cim: Cim,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kafka {
    /// Bootstrap servers (`HES_KAFKA_BROKERS`).
    pub brokers: String,
    /// A prefix of every topic and consumer group (several deployments on one cluster).
    pub namespace: String,
    /// Partitions of the topics the node creates.
    pub partitions: i32,
    /// Replication factor of the topics the node creates (3 in production, with
    /// `min.insync.replicas` = 2).
    pub replication: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stages {
    /// Records per batch at most.
    pub max_batch: usize,
    /// How long a batch waits to fill.
    pub linger_ms: u64,
}

/// How long data is kept; 0 keeps it for ever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub readings_days: u32,
    pub events_days: u32,
    pub hourly_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// Where the UI and the API listen.
    pub listen: SocketAddr,
    /// This node's name (logs, the scheduler lease); the host name when empty.
    pub node: String,
}

/// Which engine processes the validated readings (intervals, estimates, aggregates, the
/// processed topic): docs/flink.md.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// The process role's consumer group (`hes_pipeline::run::run_process`).
    #[default]
    Rust,
    /// The Flink job (`flink/`, submitted with `scripts/flink submit`) takes the process role's
    /// place on readings; the role does not consume them.
    Flink,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Processing {
    pub engine: Engine,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collector {
    /// Sessions at once in this collector.
    pub concurrency: usize,
    /// Jobs taken from the jobs topic ahead of the sessions.
    pub max_in_flight: usize,
    /// Sessions at once across all collectors (shared through Redis when configured).
    pub global_limit: usize,
    /// Sessions at once per group value (a radio cell, a concentrator) across all collectors.
    pub per_cell_limit: usize,
    /// The meter group the per-cell limit applies to.
    pub group_key: String,
    pub connect_timeout_s: f64,
    pub response_timeout_s: f64,
    /// A job that takes longer is cut and retried.
    pub job_timeout_s: f64,
    /// Attempts per job, the first included.
    pub max_attempts: u32,
    /// Retries wait from this, doubling with jitter, up to `backoff_max_s`.
    pub backoff_base_ms: u64,
    pub backoff_max_s: u64,
    /// Invocation counters leased per session (one atomic increment in the store).
    pub counter_block: u32,
}

/// The delivery of CIM (IEC 61968-9) messages to an MDM, run by every node with the api role
/// (docs/cim.md). The `Authorization` header's value is a secret: it comes from the
/// environment (`HES_CIM_AUTHORIZATION`), never from here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cim {
    /// Where the messages are POSTed, `http://…` or `https://…`; empty: no delivery.
    pub mdm_url: String,
    /// The CA certificates (PEM) an `https` MDM's certificate must chain to.
    pub ca_file: PathBuf,
    /// `created EndDeviceEvents`, one message per event as it arrives.
    pub events: bool,
    /// `created MeterReadings`, one message per meter and UTC day once the day is complete.
    pub readings: bool,
    /// A day is sent this long after its end (readings still arriving late are in it):
    /// 7200 sends each day at 02:00 UTC the next day.
    pub day_delay_s: i64,
    /// Attempts per message, the first included; then it is kept as a dead letter.
    pub max_attempts: u32,
    /// Retries wait from this, doubling, up to `backoff_max_s`.
    pub backoff_base_s: i64,
    pub backoff_max_s: i64,
    /// How long a node's claim on a message holds (a killed node's go to another after it).
    pub lease_s: i64,
    /// How often the queue is looked at.
    pub poll_ms: u64,
    /// Longest one POST may take (shorter than `lease_s`).
    pub timeout_s: u64,
}

impl Default for Cim {
    fn default() -> Self {
        Self {
            mdm_url: String::new(),
            ca_file: PathBuf::new(),
            events: true,
            readings: true,
            day_delay_s: 7200,
            max_attempts: 12,
            backoff_base_s: 10,
            backoff_max_s: 3600,
            lease_s: 120,
            poll_ms: 5000,
            timeout_s: 30,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            roles: vec![Role::Validate, Role::Process],
            database_url: String::new(),
            redis_url: String::new(),
            redis_sentinels: String::new(),
            redis_master_name: String::new(),
            inventory: PathBuf::new(),
            kafka: Kafka {
                brokers: String::new(),
                namespace: String::new(),
                partitions: 12,
                replication: 1,
            },
            stages: Stages {
                max_batch: 20_000,
                linger_ms: 200,
            },
            retention: Retention {
                readings_days: 0,
                events_days: 0,
                hourly_days: 0,
            },
            api: Api {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                node: String::new(),
            },
            collector: Collector {
                concurrency: 64,
                max_in_flight: 256,
                global_limit: 512,
                per_cell_limit: 8,
                group_key: "cell".into(),
                connect_timeout_s: 10.0,
                response_timeout_s: 10.0,
                job_timeout_s: 300.0,
                max_attempts: 4,
                backoff_base_ms: 2000,
                backoff_max_s: 300,
                counter_block: 4096,
            },
            processing: Processing {
                engine: Engine::Rust,
            },
            cim: Cim::default(),
        }
    }
}

/// The replication factor of created topics when the file does not give one.
const REPLICATION_ENV: &str = "HES_KAFKA_REPLICATION";

/// Well-known environment names, and the keys they fill when the file leaves them empty.
const LEGACY_ENV: [(&str, &str); 5] = [
    ("HES_DATABASE_URL", "database_url"),
    ("HES_REDIS_URL", "redis_url"),
    ("HES_REDIS_SENTINELS", "redis_sentinels"),
    ("HES_REDIS_MASTER_NAME", "redis_master_name"),
    ("HES_KAFKA_BROKERS", "kafka.brokers"),
];

impl Config {
    /// The defaults, then `file` (when given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::figment(file, std::env::vars()).extract_config()
    }

    /// The layers, with `env` as the environment (tests pass their own).
    pub fn figment(file: Option<&Path>, env: impl Iterator<Item = (String, String)>) -> Figment {
        let mut f = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = file {
            f = f.merge(Toml::file_exact(p));
        }
        let env: Vec<(String, String)> = env.collect();
        // The well-known variables fill what the file leaves empty (as `eval "$(scripts/services
        // up)"` sets them in a shell); an explicit value in the file wins.
        let file_values: Figment = f.clone();
        for (name, key) in LEGACY_ENV {
            let unset = file_values
                .extract_inner::<String>(key)
                .map_or(true, |v| v.trim().is_empty());
            if let Some((_, v)) = env.iter().find(|(n, v)| n == name && !v.trim().is_empty()) {
                if unset {
                    f = f.merge(Serialized::default(key, v.clone()));
                }
            }
        }
        // `HES_KAFKA_REPLICATION` (as `scripts/zones up` prints it) sets the replication
        // factor unless the file does (`HES__KAFKA__REPLICATION`, merged below, wins over both).
        let file_sets_replication = file.is_some_and(|p| {
            Figment::from(Toml::file_exact(p))
                .find_value("kafka.replication")
                .is_ok()
        });
        if let Some((_, v)) = env.iter().find(|(n, _)| n == REPLICATION_ENV) {
            if !file_sets_replication {
                // Not a number: left as text, for the extraction to refuse with the key's name.
                f = match v.trim().parse::<i64>() {
                    Ok(r) => f.merge(Serialized::default("kafka.replication", r)),
                    Err(_) => f.merge(Serialized::default("kafka.replication", v.clone())),
                };
            }
        }
        // `HES__SECTION__KEY=value`: any key; the value read as a TOML value (a number, a
        // boolean, a list) when it is one, else as text.
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("HES__") else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            let typed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            f = f.merge(Serialized::default(&key, typed));
        }
        f
    }

    /// The retention as the store takes it (`None`: keep for ever).
    pub fn retention_days(&self) -> [Option<u32>; 3] {
        let r = &self.retention;
        [r.readings_days, r.events_days, r.hourly_days].map(|d| (d > 0).then_some(d))
    }
}

trait Extract {
    fn extract_config(self) -> Result<Config, ConfigError>;
}

impl Extract for Figment {
    fn extract_config(self) -> Result<Config, ConfigError> {
        let c: Config = self.extract().map_err(|e| ConfigError(e.to_string()))?;
        if c.roles.is_empty() {
            return Err(ConfigError("`roles` is empty: nothing to run".into()));
        }
        if c.kafka.partitions < 1 || c.kafka.replication < 1 {
            return Err(ConfigError(
                "kafka.partitions and kafka.replication start at 1".into(),
            ));
        }
        if c.collector.concurrency == 0 || c.collector.max_attempts == 0 {
            return Err(ConfigError(
                "collector.concurrency and collector.max_attempts start at 1".into(),
            ));
        }
        if !c.cim.mdm_url.is_empty() {
            if !(c.cim.mdm_url.starts_with("http://") || c.cim.mdm_url.starts_with("https://")) {
                return Err(ConfigError(format!(
                    "cim.mdm_url {}: http://… or https://…",
                    c.cim.mdm_url
                )));
            }
            if c.cim.max_attempts == 0
                || c.cim.lease_s <= i64::try_from(c.cim.timeout_s).unwrap_or(i64::MAX)
            {
                return Err(ConfigError(
                    "cim.max_attempts starts at 1 and cim.lease_s must be longer than cim.timeout_s".into(),
                ));
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn load(toml_text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        // One directory per call: tests run in parallel, and two texts may have one length.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hes-node-config-{}-{}",
            std::process::id(),
            CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("hes.toml");
        std::fs::write(&p, toml_text).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let r = Config::figment(Some(&p), env).extract_config();
        std::fs::remove_dir_all(&dir).unwrap();
        r
    }

    #[test]
    fn the_annotated_defaults_are_the_defaults() {
        let parsed: Config = toml::from_str(DEFAULT_TOML).unwrap();
        assert_eq!(parsed, Config::default());
        // Every key is documented: each line with a key has a comment above it or on it.
        assert!(DEFAULT_TOML.lines().filter(|l| l.starts_with('#')).count() > 20);
    }

    #[test]
    fn layers_file_then_environment() {
        let c = load(
            "roles = [\"collector\", \"api\"]\n[collector]\nconcurrency = 128\n",
            &[
                ("HES_DATABASE_URL", "postgres://db/hes"),
                ("HES_KAFKA_BROKERS", "k1:9092"),
                ("HES__COLLECTOR__PER_CELL_LIMIT", "3"),
                ("HES__KAFKA__REPLICATION", "3"),
                // Other HES_ variables are not configuration keys.
                ("HES_KEK", "00"),
                ("HES_LOG", "info"),
            ],
        )
        .unwrap();
        assert_eq!(c.roles, [Role::Collector, Role::Api]);
        assert_eq!(c.collector.concurrency, 128);
        assert_eq!(c.collector.per_cell_limit, 3);
        assert_eq!(c.kafka.replication, 3);
        assert_eq!(c.database_url, "postgres://db/hes");
        assert_eq!(c.kafka.brokers, "k1:9092");
        assert_eq!(c.collector.max_attempts, 4);
        assert!(c.cim.mdm_url.is_empty(), "no MDM unless configured");
    }

    #[test]
    fn the_mdm_from_the_file_and_the_environment() {
        let c = load(
            "roles = [\"api\"]\n[cim]\nmdm_url = \"https://mdm.example/cim\"\nca_file = \"/etc/hes/mdm-ca.pem\"\n",
            &[("HES__CIM__MAX_ATTEMPTS", "5"), ("HES__CIM__EVENTS", "false")],
        )
        .unwrap();
        assert_eq!(c.cim.mdm_url, "https://mdm.example/cim");
        assert_eq!(c.cim.ca_file, PathBuf::from("/etc/hes/mdm-ca.pem"));
        assert_eq!(c.cim.max_attempts, 5);
        assert!(!c.cim.events && c.cim.readings);
        let e = load("roles = [\"api\"]\n[cim]\nmdm_url = \"ftp://mdm\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("cim.mdm_url"), "{e}");
        let e = load(
            "roles = [\"api\"]\n[cim]\nmdm_url = \"http://mdm\"\nlease_s = 10\n",
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("lease_s"), "{e}");
    }

    #[test]
    fn a_value_in_the_file_wins_over_the_well_known_variables() {
        let c = load(
            "roles = [\"process\"]\ndatabase_url = \"postgres://file/db\"\n",
            &[
                ("HES_DATABASE_URL", "postgres://env/db"),
                ("HES_REDIS_URL", "redis://env"),
                ("HES_REDIS_SENTINELS", "s1:26379,s2:26379"),
                ("HES_REDIS_MASTER_NAME", "hes"),
            ],
        )
        .unwrap();
        assert_eq!(c.database_url, "postgres://file/db");
        assert_eq!(c.redis_url, "redis://env");
        assert_eq!(c.redis_sentinels, "s1:26379,s2:26379");
        assert_eq!(c.redis_master_name, "hes");
        let c = load(
            "roles = [\"process\"]\ndatabase_url = \"postgres://file/db\"\n",
            &[("HES__DATABASE_URL", "postgres://override/db")],
        )
        .unwrap();
        assert_eq!(c.database_url, "postgres://override/db");
    }

    #[test]
    fn the_replication_variable_fills_what_the_file_leaves_out() {
        let c = load("roles = [\"process\"]\n", &[("HES_KAFKA_REPLICATION", "3")]).unwrap();
        assert_eq!(c.kafka.replication, 3);
        let c = load(
            "roles = [\"process\"]\n[kafka]\nreplication = 2\n",
            &[("HES_KAFKA_REPLICATION", "3")],
        )
        .unwrap();
        assert_eq!(c.kafka.replication, 2);
        let c = load(
            "roles = [\"process\"]\n",
            &[
                ("HES_KAFKA_REPLICATION", "3"),
                ("HES__KAFKA__REPLICATION", "1"),
            ],
        )
        .unwrap();
        assert_eq!(c.kafka.replication, 1);
        let e = load("roles = [\"process\"]\n", &[("HES_KAFKA_REPLICATION", "x")]).unwrap_err();
        assert!(e.to_string().contains("replication"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let e = load("roles = [\"validate\"]\nbogus = 1\n", &[]).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = load("roles = [\"validate\"]\n[collector]\nconcurency = 1\n", &[]).unwrap_err();
        assert!(e.to_string().contains("concurency"), "{e}");
        let e = load("roles = [\"validate\"]\n", &[("HES__COLLECTOR__NOPE", "1")]).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let e = load(
            "roles = [\"validate\"]\n",
            &[("HES__COLLECTOR__CONCURRENCY", "many")],
        )
        .unwrap_err();
        assert!(e.to_string().contains("concurrency"), "{e}");
        let e = load("roles = []\n", &[]).unwrap_err();
        assert!(e.to_string().contains("nothing to run"), "{e}");
        let e = load("roles = [\"cook\"]\n", &[]).unwrap_err();
        assert!(e.to_string().contains("cook"), "{e}");
    }
}
