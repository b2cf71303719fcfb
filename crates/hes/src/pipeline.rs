//! The processing pipeline's stages as the `hes` binary runs them: in-process for `hes demo`,
//! and as roles of `hes serve`. The meter registry tells the aggregate stage which groups a
//! meter is in.

use std::sync::Arc;

use hes_collector::registry::Registry;
use hes_model::MeterId;
use hes_pipeline::run::{
    run_process, run_validate, Groups, ProcessDeps, StageConfig, StageError, StageStats,
};
use hes_pipeline::Rules;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Groups as the registry has them: `key=value` for each of a meter's group entries.
#[derive(Debug)]
pub struct RegistryGroups(pub Arc<Registry>);

impl Groups for RegistryGroups {
    fn of(&self, meter: &MeterId) -> Vec<String> {
        self.0.get(meter).map_or_else(Vec::new, |m| {
            m.groups.iter().map(|(k, v)| format!("{k}={v}")).collect()
        })
    }

    fn members(&self, group: &str) -> Vec<MeterId> {
        let Some((k, v)) = group.split_once('=') else {
            return Vec::new();
        };
        self.0
            .in_group(k, v)
            .into_iter()
            .map(|m| m.id.clone())
            .collect()
    }
}

/// The running stages and their counters.
#[derive(Debug)]
pub struct Stages {
    pub validate: Arc<StageStats>,
    pub process: Arc<StageStats>,
    pub tasks: Vec<JoinHandle<Result<(), StageError>>>,
}

impl Stages {
    /// Whether a stage ended (it only ends on `stop` or a fatal bus error).
    pub fn any_finished(&self) -> bool {
        self.tasks.iter().any(JoinHandle::is_finished)
    }
}

/// Starts the validate and process stages (one consumer each) until `stop`.
pub fn start(deps: ProcessDeps, stop: watch::Receiver<bool>) -> Stages {
    let validate = Arc::new(StageStats::default());
    let process = Arc::new(StageStats::default());
    let rules: Rules = (*deps.rules).clone();
    let tasks = vec![
        tokio::spawn(run_validate(
            deps.bus.clone(),
            rules,
            StageConfig::new("validate"),
            validate.clone(),
            stop.clone(),
        )),
        tokio::spawn(run_process(
            deps,
            StageConfig::new("process"),
            process.clone(),
            stop,
        )),
    ];
    Stages {
        validate,
        process,
        tasks,
    }
}
