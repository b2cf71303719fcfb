//! Fixtures the integration tests share, so that each test says what it checks rather than
//! how it starts processes, waits, or makes databases. Used as a dev-dependency only.
//!
//! - [`proc`]: child processes whose stdout and stderr are captured line by line, waited on
//!   by predicate with a deadline (never a fixed sleep), killed when dropped.
//! - [`wait`]: polling any condition with a deadline, blocking or async.
//! - [`pg`]: a fresh PostgreSQL database per test on the server of `HES_DATABASE_URL`.
//! - [`inventory`]: inventory entries as the simulator writes them, serials no earlier run used.
//! - [`dir`]: temporary directories, kept when the test fails.
//! - [`http`]: a node's REST API through `curl`, logged in as a user.
//!
//! Failures are returned as errors (tests unwrap them), with enough context to diagnose them:
//! what was awaited, for how long, and the last lines the process wrote.

pub mod dir;
pub mod http;
pub mod inventory;
pub mod pg;
pub mod proc;
pub mod wait;

pub use dir::TempDir;
pub use pg::TestDb;
pub use proc::{Lines, Proc};
pub use wait::{wait_until, wait_until_async, WaitError};

use std::sync::atomic::{AtomicU32, Ordering};

/// A name no other test of this or an earlier run uses: `prefix`, the process id, a counter
/// within the process and the clock (process ids are reused across runs).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

/// The value of a variable the services set (`eval "$(scripts/services up)"`), or an error
/// saying how to set it.
pub fn service_env(name: &str) -> Result<String, MissingEnv> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(MissingEnv(name.to_string())),
    }
}

/// A service variable that is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingEnv(pub String);

impl std::fmt::Display for MissingEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is not set: run `eval \"$(scripts/services up)\"` first (scripts/test does)",
            self.0
        )
    }
}

impl std::error::Error for MissingEnv {}
