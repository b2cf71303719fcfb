//! One configuration for one node: every role (`validate`, `process`, `collector`, `api`,
//! `scheduler`) reads its settings from here, in `hes serve` and in `hes demo`. Layers, each
//! over the one before: the defaults (what `hes config default` prints, annotated), a TOML
//! file, then the environment: any key as `HES__SECTION__KEY` (e.g.
//! `HES__COLLECTOR__CONCURRENCY=256`) over everything; `HES_DATABASE_URL`, `HES_REDIS_URL` and
//! `HES_KAFKA_BROKERS` where the file leaves those empty. Unknown keys are refused wherever
//! they come from.

pub mod config;

pub use config::{Cim, Config, ConfigError, Engine, Role, DEFAULT_TOML};
