//! Collection: the meter registry, invocation counters, jobs, sessions, pushes and commands.

/// The bus port (crate `hes-bus`).
pub use hes_bus as bus;
pub mod commands;
pub mod counters;
pub mod distributed;
pub mod jobs;
pub mod limits;
pub mod push;
pub mod registry;
pub mod schedule;
pub mod secrets;
pub mod session;

/// Writes `bytes` to `path` so that a crash leaves the old or the new content, never a mix: a
/// temporary file beside it, synced, then renamed over it.
pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}
