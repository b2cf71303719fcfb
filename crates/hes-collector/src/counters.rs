//! Invocation counters of the management client, per meter: strictly increasing across
//! sessions, restarts and collectors.
//!
//! A session takes a lease of counters before it starts ([`CounterStore::begin`]), which is
//! made durable first; at its end it records how far it got ([`CounterStore::end`]). After a
//! crash the next session starts above the last durable lease. When a meter still refuses a
//! counter (another head-end used it, or state was lost), the collector reads the meter's own
//! record (0.0.43.1.0.255 through the public client) and raises the floor
//! ([`CounterStore::raise_floor`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hes_model::MeterId;

/// Counters one lease covers; a session that needs more is resynchronised by the meter.
pub const LEASE: u32 = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error("counter log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the invocation counters of meter {0} are exhausted: the keys must be rotated")]
    Exhausted(MeterId),
}

/// Where counters live: a file in the embedded mode, the database in the distributed one.
pub trait CounterStore: Send + Sync {
    /// The first counter a new session may use; the lease above it is durable on return.
    fn begin(&self, meter: &MeterId) -> Result<u32, CounterError>;
    /// The session used counters below `next`.
    fn end(&self, meter: &MeterId, next: u32) -> Result<(), CounterError>;
    /// The meter has seen `last`: nothing at or below it is handed out again.
    fn raise_floor(&self, meter: &MeterId, last: u32) -> Result<(), CounterError>;
    /// Whether this store has ever handed out or learnt a counter for `meter` (if not, the
    /// meter's own record is read first, so that no counter the meter has seen is used).
    fn knows(&self, meter: &MeterId) -> bool;
}

#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    /// The next counter to hand out.
    next: u32,
    /// Everything below this is durable as used or leased.
    durable: u32,
}

/// Counters kept in memory with an append-only log of leases (`meter high-water` lines,
/// synced before a lease is used); compacted when opened.
#[derive(Debug)]
pub struct FileCounters {
    path: Option<PathBuf>,
    state: Mutex<(HashMap<MeterId, Slot>, Option<std::fs::File>)>,
}

impl FileCounters {
    /// Counters that do not survive the process (tests, one-off reads).
    pub fn in_memory() -> Self {
        Self {
            path: None,
            state: Mutex::new((HashMap::new(), None)),
        }
    }

    pub fn open(path: &Path) -> Result<Self, CounterError> {
        let io = |source| CounterError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut map: HashMap<MeterId, Slot> = HashMap::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for line in text.lines() {
                    let mut it = line.split_whitespace();
                    if let (Some(id), Some(hw)) =
                        (it.next(), it.next().and_then(|v| v.parse().ok()))
                    {
                        let s = map.entry(MeterId(id.to_string())).or_default();
                        // Everything up to a logged high-water mark may have been used.
                        s.next = s.next.max(hw);
                        s.durable = s.next;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        // Compact: one line per meter.
        let mut text = String::new();
        for (id, s) in &map {
            text.push_str(&format!("{} {}\n", id.0, s.durable));
        }
        crate::write_atomically(path, text.as_bytes()).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Self {
            path: Some(path.to_path_buf()),
            state: Mutex::new((map, Some(file))),
        })
    }

    fn log(
        &self,
        file: &mut Option<std::fs::File>,
        meter: &MeterId,
        hw: u32,
    ) -> Result<(), CounterError> {
        let Some(f) = file.as_mut() else {
            return Ok(());
        };
        let path = self.path.clone().unwrap_or_default();
        f.write_all(format!("{} {hw}\n", meter.0).as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|source| CounterError::Io { path, source })
    }
}

impl CounterStore for FileCounters {
    fn begin(&self, meter: &MeterId) -> Result<u32, CounterError> {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (map, file) = &mut *guard;
        let slot = map.entry(meter.clone()).or_default();
        let start = slot.next.max(1);
        let hw = start
            .checked_add(LEASE)
            .ok_or_else(|| CounterError::Exhausted(meter.clone()))?;
        let mut s = *slot;
        s.next = start;
        if s.durable < hw {
            self.log(file, meter, hw)?;
            s.durable = hw;
        }
        *map.entry(meter.clone()).or_default() = s;
        Ok(start)
    }

    fn end(&self, meter: &MeterId, next: u32) -> Result<(), CounterError> {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (map, file) = &mut *guard;
        let slot = map.entry(meter.clone()).or_default();
        slot.next = slot.next.max(next);
        if slot.next > slot.durable {
            // The session went past its lease: make that durable too.
            let hw = slot.next;
            slot.durable = hw;
            self.log(file, meter, hw)?;
        }
        Ok(())
    }

    fn raise_floor(&self, meter: &MeterId, last: u32) -> Result<(), CounterError> {
        self.end(meter, last.saturating_add(1))
    }

    fn knows(&self, meter: &MeterId) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .contains_key(meter)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counters_only_grow_across_restarts() {
        let dir = std::env::temp_dir().join(format!("hes-counters-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("counters.log");
        let _ = std::fs::remove_file(&path);
        let m: MeterId = "MTR1".into();
        let c = FileCounters::open(&path).unwrap();
        let a = c.begin(&m).unwrap();
        assert_eq!(a, 1);
        c.end(&m, 9).unwrap();
        assert_eq!(c.begin(&m).unwrap(), 9);
        // A crash mid-session (no `end`): the next process starts above the lease.
        drop(c);
        let c = FileCounters::open(&path).unwrap();
        let b = c.begin(&m).unwrap();
        assert!(b > 9 + LEASE - 10, "{b}");
        c.raise_floor(&m, b + 1_000_000).unwrap();
        assert_eq!(c.begin(&m).unwrap(), b + 1_000_001);
        drop(c);
        let c = FileCounters::open(&path).unwrap();
        assert!(c.begin(&m).unwrap() > b + 1_000_001);
        // Compacted to one line per meter on open.
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
