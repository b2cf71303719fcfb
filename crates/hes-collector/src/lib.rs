//! Collection: the meter registry, invocation counters, jobs, sessions, pushes and commands.

/// The bus port (crate `hes-bus`).
pub use hes_bus as bus;
pub mod commands;
pub mod counters;
pub mod distributed;
pub mod gaps;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod push;
pub mod registry;
pub mod schedule;
pub use hes_model::secrets;
pub mod session;
