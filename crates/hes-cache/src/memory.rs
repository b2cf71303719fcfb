//! The in-process cache of the embedded mode: maps behind mutexes, tokio broadcast channels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use dlms::ObisCode;
use hes_model::{MeterId, Reading};
use tokio::sync::broadcast;

use crate::{BoxFuture, Cache, CacheError, Subscription, DEFAULT_SUBSCRIBER_CAPACITY};

type Channels = HashMap<(ObisCode, i8), Reading>;

/// The in-process cache. Cheap to share behind an `Arc`; nothing survives the process.
#[derive(Debug)]
pub struct MemoryCache {
    latest: Mutex<HashMap<MeterId, Channels>>,
    seen: Mutex<HashMap<MeterId, i64>>,
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<[u8]>>>>,
    capacity: usize,
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

/// A poisoned lock only means another thread panicked mid-update of a plain map; the map is
/// still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryCache {
    pub fn new() -> Self {
        Self::with_subscriber_capacity(DEFAULT_SUBSCRIBER_CAPACITY)
    }

    /// `capacity`: how many payloads a subscriber may fall behind before it loses the oldest.
    pub fn with_subscriber_capacity(capacity: usize) -> Self {
        Self {
            latest: Mutex::default(),
            seen: Mutex::default(),
            channels: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    fn put_sync(&self, readings: &[Reading]) -> usize {
        let mut latest = lock(&self.latest);
        let mut stored = 0;
        for r in readings {
            let channels = latest.entry(r.meter.clone()).or_default();
            let key = (r.obis, r.attribute);
            let newer = channels.get(&key).is_none_or(|held| held.time <= r.time);
            if newer {
                channels.insert(key, r.clone());
                stored += 1;
            }
        }
        stored
    }
}

impl Cache for MemoryCache {
    fn put_latest<'a>(
        &'a self,
        readings: &'a [Reading],
    ) -> BoxFuture<'a, Result<usize, CacheError>> {
        Box::pin(async move { Ok(self.put_sync(readings)) })
    }

    fn latest<'a>(&'a self, meter: &'a MeterId) -> BoxFuture<'a, Result<Vec<Reading>, CacheError>> {
        Box::pin(async move {
            let latest = lock(&self.latest);
            let mut out: Vec<Reading> = latest
                .get(meter)
                .map(|c| c.values().cloned().collect())
                .unwrap_or_default();
            out.sort_by_key(|r| (r.obis, r.attribute));
            Ok(out)
        })
    }

    fn latest_one<'a>(
        &'a self,
        meter: &'a MeterId,
        obis: ObisCode,
        attribute: i8,
    ) -> BoxFuture<'a, Result<Option<Reading>, CacheError>> {
        Box::pin(async move {
            let latest = lock(&self.latest);
            Ok(latest
                .get(meter)
                .and_then(|c| c.get(&(obis, attribute)))
                .cloned())
        })
    }

    fn mark_seen<'a>(
        &'a self,
        meter: &'a MeterId,
        at: i64,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            let mut seen = lock(&self.seen);
            let t = seen.entry(meter.clone()).or_insert(at);
            *t = (*t).max(at);
            Ok(())
        })
    }

    fn last_seen<'a>(
        &'a self,
        meter: &'a MeterId,
    ) -> BoxFuture<'a, Result<Option<i64>, CacheError>> {
        Box::pin(async move { Ok(lock(&self.seen).get(meter).copied()) })
    }

    fn online<'a>(
        &'a self,
        meters: &'a [MeterId],
        now: i64,
        within_s: i64,
    ) -> BoxFuture<'a, Result<Vec<(MeterId, bool)>, CacheError>> {
        Box::pin(async move {
            let seen = lock(&self.seen);
            Ok(meters
                .iter()
                .map(|m| {
                    let on = seen
                        .get(m)
                        .is_some_and(|t| now.saturating_sub(*t) <= within_s);
                    (m.clone(), on)
                })
                .collect())
        })
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<usize, CacheError>> {
        Box::pin(async move {
            let mut channels = lock(&self.channels);
            let Some(tx) = channels.get(channel) else {
                return Ok(0);
            };
            match tx.send(Arc::from(payload)) {
                Ok(n) => Ok(n),
                Err(_) => {
                    // Every subscriber is gone: forget the channel.
                    channels.remove(channel);
                    Ok(0)
                }
            }
        })
    }

    fn subscribe<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Subscription, CacheError>> {
        Box::pin(async move {
            let mut channels = lock(&self.channels);
            let tx = channels
                .entry(channel.to_string())
                .or_insert_with(|| broadcast::channel(self.capacity).0);
            Ok(Subscription::new(tx.subscribe(), None))
        })
    }
}
