//! Invocation counters of the management client, per meter: strictly increasing across
//! sessions, restarts and collectors, because they live in the store.
//!
//! A session leases a block of counters in one atomic increment before it starts
//! ([`Counters::begin`]); any collector on any node continues above the last lease, and a crash
//! never lowers a counter. A session that used more than its block raises the floor at its end
//! ([`Counters::end`]). When a meter still refuses a counter (another head-end used it, or state
//! was lost), the collector reads the meter's own record (0.0.43.1.0.255 through the public
//! client) and raises the floor ([`Counters::raise_floor`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hes_model::MeterId;
use hes_store::{StateStore, StoreError};

/// Counters one lease covers unless configured otherwise: far more than a session uses, and
/// still a million sessions per key.
pub const LEASE: u32 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error("counter store: {0}")]
    Store(#[from] StoreError),
    #[error("the invocation counters of meter {0} are exhausted: the keys must be rotated")]
    Exhausted(MeterId),
}

/// The counters of every meter, in the state store.
pub struct Counters {
    state: Arc<dyn StateStore>,
    block: u32,
    /// The end of each meter's current lease (this process's sessions).
    leased: Mutex<HashMap<MeterId, u64>>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

impl Counters {
    pub fn new(state: Arc<dyn StateStore>) -> Self {
        Self::with_block(state, LEASE)
    }

    pub fn with_block(state: Arc<dyn StateStore>, block: u32) -> Self {
        Self {
            state,
            block: block.max(16),
            leased: Mutex::new(HashMap::new()),
        }
    }

    /// The first counter a new session may use; the lease above it is durable on return.
    pub async fn begin(&self, meter: &MeterId) -> Result<u32, CounterError> {
        let start = self
            .state
            .lease_counters(meter, self.block)
            .await?
            .ok_or_else(|| CounterError::Exhausted(meter.clone()))?;
        self.leased
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(meter.clone(), u64::from(start) + u64::from(self.block));
        Ok(start)
    }

    /// The session used counters below `next`: durable only when it went past its lease.
    pub async fn end(&self, meter: &MeterId, next: u32) -> Result<(), CounterError> {
        let end = self
            .leased
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(meter);
        if end.is_none_or(|e| u64::from(next) > e) {
            self.state
                .raise_counter_floor(meter, u64::from(next))
                .await?;
        }
        Ok(())
    }

    /// The meter has seen `last`: nothing at or below it is handed out again.
    pub async fn raise_floor(&self, meter: &MeterId, last: u32) -> Result<(), CounterError> {
        self.state
            .raise_counter_floor(meter, u64::from(last) + 1)
            .await?;
        Ok(())
    }

    /// Whether a counter was ever leased or learnt for `meter` (if not, the meter's own record
    /// is read first, so that no counter the meter has seen is used).
    pub async fn knows(&self, meter: &MeterId) -> Result<bool, CounterError> {
        Ok(self.state.counter_known(meter).await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn counters_only_grow_across_processes() {
        let store: Arc<dyn StateStore> =
            Arc::new(hes_store::SqliteStore::in_memory().await.unwrap());
        let m: MeterId = "MTR1".into();
        let a = Counters::with_block(store.clone(), 100);
        assert!(!a.knows(&m).await.unwrap());
        let first = a.begin(&m).await.unwrap();
        assert_eq!(first, 1);
        a.end(&m, 9).await.unwrap();
        // Another collector (or this one after a crash) continues above the lease.
        let b = Counters::with_block(store.clone(), 100);
        let second = b.begin(&m).await.unwrap();
        assert_eq!(second, 101);
        // A session that went past its lease makes that durable.
        b.end(&m, 500).await.unwrap();
        assert_eq!(a.begin(&m).await.unwrap(), 500);
        a.raise_floor(&m, 1_000_000).await.unwrap();
        assert_eq!(b.begin(&m).await.unwrap(), 1_000_001);
    }
}
