//! One configuration for one node: every role (`validate`, `process`, `collector`, `api`,
//! `scheduler`) reads its settings from here, in `hes serve` and in `hes demo`. Layers, each
//! over the one before: the defaults (what `hes config default` prints, annotated), a TOML
//! file, then the environment (`HES_DATABASE_URL`, `HES_REDIS_URL`, `HES_KAFKA_BROKERS`, and
//! any key as `HES__SECTION__KEY`, e.g. `HES__COLLECTOR__CONCURRENCY=256`). Unknown keys are
//! refused wherever they come from.

pub mod config;

pub use config::{Config, ConfigError, Role, DEFAULT_TOML};
