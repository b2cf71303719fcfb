//! The cache port: the latest value per meter and channel, each meter's last-seen time (its
//! online state), and a pub/sub channel the API uses to push live updates to browsers across
//! API nodes. `MemoryCache` is the embedded mode's in-process cache, `RedisCache` the
//! distributed adapter. Both pass `tests/conformance.rs`. See `docs/cache.md`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use dlms::ObisCode;
use hes_model::{MeterId, Reading};
use tokio::sync::broadcast;

pub mod link;
mod memory;
mod redis_cache;

pub use link::{RedisLink, RedisTarget};
pub use memory::MemoryCache;
pub use redis_cache::RedisCache;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How many payloads a subscriber may fall behind before it loses the oldest ones.
pub const DEFAULT_SUBSCRIBER_CAPACITY: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("a cached value does not decode: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("configuration: {0}")]
    Config(String),
}

/// Why `Subscription::recv` returned no payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The subscriber was too slow: this many of the oldest payloads were dropped. The next
    /// `recv` returns the oldest payload still held.
    #[error("the subscriber fell behind and lost {0} payloads")]
    Lagged(u64),
    /// No more payloads will come: the cache was dropped, or the connection to Redis was lost.
    /// Subscribe again (and re-read the latest values to cover the gap).
    #[error("the subscription is closed")]
    Closed,
}

/// Payloads published on one channel after the subscription was made, in publish order (per
/// publisher). Holds at most a bounded number of payloads not yet received: a subscriber that
/// falls further behind loses the oldest ones and is told how many (`RecvError::Lagged`).
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Arc<[u8]>>,
    /// The Redis adapter's forwarding task, stopped when the subscription is dropped.
    _task: Option<AbortOnDrop>,
}

impl Subscription {
    fn new(rx: broadcast::Receiver<Arc<[u8]>>, task: Option<tokio::task::JoinHandle<()>>) -> Self {
        Self {
            rx,
            _task: task.map(AbortOnDrop),
        }
    }

    /// The next payload. Cancellation safe.
    pub async fn recv(&mut self) -> Result<Vec<u8>, RecvError> {
        match self.rx.recv().await {
            Ok(p) => Ok(p.to_vec()),
            Err(broadcast::error::RecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => Err(RecvError::Closed),
        }
    }
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The cache. Times are Unix seconds, as everywhere in the head-end.
pub trait Cache: Send + Sync {
    /// Keeps, for each (meter, OBIS code, attribute), the reading with the greatest meter
    /// `time`: a reading older than the one held is ignored, whatever the arrival order; one
    /// with the same time replaces it. Each key is updated atomically. Returns how many of
    /// `readings` were stored (became the latest).
    fn put_latest<'a>(
        &'a self,
        readings: &'a [Reading],
    ) -> BoxFuture<'a, Result<usize, CacheError>>;

    /// The latest reading of each of the meter's channels, sorted by OBIS code and attribute.
    fn latest<'a>(&'a self, meter: &'a MeterId) -> BoxFuture<'a, Result<Vec<Reading>, CacheError>>;

    /// The latest reading of one channel.
    fn latest_one<'a>(
        &'a self,
        meter: &'a MeterId,
        obis: ObisCode,
        attribute: i8,
    ) -> BoxFuture<'a, Result<Option<Reading>, CacheError>>;

    /// Records that the meter was heard from at `at`. The last-seen time only moves forward:
    /// an older `at` than the one held is ignored.
    fn mark_seen<'a>(
        &'a self,
        meter: &'a MeterId,
        at: i64,
    ) -> BoxFuture<'a, Result<(), CacheError>>;

    /// When the meter was last heard from, if ever.
    fn last_seen<'a>(
        &'a self,
        meter: &'a MeterId,
    ) -> BoxFuture<'a, Result<Option<i64>, CacheError>>;

    /// For each of `meters`, in order: whether it was seen within `within_s` seconds before
    /// `now` (`now - last_seen <= within_s`). A meter never seen is offline.
    fn online<'a>(
        &'a self,
        meters: &'a [MeterId],
        now: i64,
        within_s: i64,
    ) -> BoxFuture<'a, Result<Vec<(MeterId, bool)>, CacheError>>;

    /// Sends `payload` to every current subscriber of `channel` (on every API node sharing the
    /// cache). Fire and forget: nothing is kept for later subscribers. Returns how many
    /// subscriptions it reached (for Redis: connections subscribed on that Redis server).
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<usize, CacheError>>;

    /// Subscribes to `channel`. Active when the future completes: every payload published
    /// after that is delivered (unless the subscriber lags, see `Subscription`).
    fn subscribe<'a>(&'a self, channel: &'a str)
        -> BoxFuture<'a, Result<Subscription, CacheError>>;
}

impl std::fmt::Debug for dyn Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cache")
    }
}
