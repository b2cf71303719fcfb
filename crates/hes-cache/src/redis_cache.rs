//! The distributed cache: Redis. Key layout and atomicity in `docs/cache.md`.

use std::collections::BTreeMap;
use std::sync::Arc;

use dlms::ObisCode;
use futures_util::StreamExt;
use hes_model::{MeterId, Reading};
use tokio::sync::broadcast;

use crate::link::{RedisLink, RedisTarget};

use crate::{BoxFuture, Cache, CacheError, Subscription, DEFAULT_SUBSCRIBER_CAPACITY};

/// KEYS[1]: the meter's hash of latest readings (field -> JSON); KEYS[2]: the hash of their
/// times (field -> sortable time). ARGV: triples (field, sortable time, JSON). A reading is
/// stored when no time is held for its field or the held one is not greater. Sortable times
/// are 20-digit strings, so string comparison is exact for the whole i64 range.
const PUT_LATEST: &str = r#"
local stored = 0
for i = 1, #ARGV, 3 do
  local field, t = ARGV[i], ARGV[i + 1]
  local held = redis.call('HGET', KEYS[2], field)
  if (not held) or held <= t then
    redis.call('HSET', KEYS[2], field, t)
    redis.call('HSET', KEYS[1], field, ARGV[i + 2])
    stored = stored + 1
  end
end
return stored
"#;

/// The Redis cache. `prefix` starts every key and channel name, so that several head-ends (or
/// test runs) can share one Redis. Clone it freely: clones share the connection.
#[derive(Clone)]
pub struct RedisCache {
    link: RedisLink,
    prefix: String,
    put_script: Arc<redis::Script>,
    capacity: usize,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("target", self.link.target())
            .field("prefix", &self.prefix)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Maps the i64 order onto the order of 20-digit decimal strings.
fn sortable_time(t: i64) -> String {
    format!("{:020}", (t as u64) ^ (1 << 63))
}

fn field(obis: ObisCode, attribute: i8) -> String {
    format!("{obis}:{attribute}")
}

impl RedisCache {
    /// Connects to `url` (`redis://host:port`, e.g. `HES_REDIS_URL`). The connection reconnects
    /// by itself; subscriptions use their own connections.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, CacheError> {
        Self::connect_to(&RedisTarget::Url(url.to_string()), prefix).await
    }

    /// Connects to the master of `target`: one server, or the master a set of sentinels names
    /// (followed through failovers, see [`crate::link`]).
    pub async fn connect_to(target: &RedisTarget, prefix: &str) -> Result<Self, CacheError> {
        if prefix.is_empty() || prefix.contains(['{', '}']) {
            return Err(CacheError::Config(format!(
                "the key prefix {prefix:?} must be non-empty and hold no braces"
            )));
        }
        let link = RedisLink::connect(target).await?;
        Ok(Self {
            link,
            prefix: prefix.to_string(),
            put_script: Arc::new(redis::Script::new(PUT_LATEST)),
            capacity: DEFAULT_SUBSCRIBER_CAPACITY,
        })
    }

    /// How many payloads a subscriber may fall behind before it loses the oldest.
    pub fn with_subscriber_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn latest_key(&self, meter: &MeterId) -> String {
        format!("{}:latest:{{{meter}}}", self.prefix)
    }

    fn latest_time_key(&self, meter: &MeterId) -> String {
        format!("{}:latest-time:{{{meter}}}", self.prefix)
    }

    fn seen_key(&self) -> String {
        format!("{}:seen", self.prefix)
    }

    fn channel_name(&self, channel: &str) -> String {
        format!("{}:ch:{channel}", self.prefix)
    }

    /// Deletes every key under this cache's prefix (tests, decommissioning). Not atomic:
    /// writes made meanwhile may survive.
    pub async fn purge(&self) -> Result<u64, CacheError> {
        let pattern = format!("{}:*", self.prefix);
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .link
                .query(
                    &*redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000),
                    true,
                )
                .await?;
            if !keys.is_empty() {
                let n: u64 = self
                    .link
                    .query(&*redis::cmd("UNLINK").arg(&keys), true)
                    .await?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}

impl Cache for RedisCache {
    fn put_latest<'a>(
        &'a self,
        readings: &'a [Reading],
    ) -> BoxFuture<'a, Result<usize, CacheError>> {
        Box::pin(async move {
            if readings.is_empty() {
                return Ok(0);
            }
            let mut by_meter: BTreeMap<&MeterId, Vec<&Reading>> = BTreeMap::new();
            for r in readings {
                by_meter.entry(&r.meter).or_default().push(r);
            }
            let script = &*self.put_script;
            let mut invocations = Vec::with_capacity(by_meter.len());
            for (meter, rs) in &by_meter {
                let mut inv = script.prepare_invoke();
                inv.key(self.latest_key(meter))
                    .key(self.latest_time_key(meter));
                for r in rs {
                    inv.arg(field(r.obis, r.attribute))
                        .arg(sortable_time(r.time))
                        .arg(serde_json::to_string(r)?);
                }
                invocations.push(inv);
            }
            // One round trip: the script is (re)loaded first, so EVALSHA never misses it, even
            // after a Redis restart flushed the script cache. Each invocation is atomic.
            let mut pipe = redis::pipe();
            pipe.load_script(script).ignore();
            for inv in &invocations {
                pipe.invoke_script(inv);
            }
            let stored: Vec<usize> = self.link.query(&pipe, true).await?;
            Ok(stored.iter().sum())
        })
    }

    fn latest<'a>(&'a self, meter: &'a MeterId) -> BoxFuture<'a, Result<Vec<Reading>, CacheError>> {
        Box::pin(async move {
            let values: Vec<String> = self
                .link
                .query(&*redis::cmd("HVALS").arg(self.latest_key(meter)), true)
                .await?;
            let mut out = values
                .iter()
                .map(|v| serde_json::from_str::<Reading>(v))
                .collect::<Result<Vec<_>, _>>()?;
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
            let value: Option<String> = self
                .link
                .query(
                    &*redis::cmd("HGET")
                        .arg(self.latest_key(meter))
                        .arg(field(obis, attribute)),
                    true,
                )
                .await?;
            Ok(value.map(|v| serde_json::from_str(&v)).transpose()?)
        })
    }

    fn mark_seen<'a>(
        &'a self,
        meter: &'a MeterId,
        at: i64,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            // GT: only ever raises the score (adds the member when absent). Atomic.
            let _: i64 = self
                .link
                .query(
                    &*redis::cmd("ZADD")
                        .arg(self.seen_key())
                        .arg("GT")
                        .arg(at)
                        .arg(&meter.0),
                    true,
                )
                .await?;
            Ok(())
        })
    }

    fn last_seen<'a>(
        &'a self,
        meter: &'a MeterId,
    ) -> BoxFuture<'a, Result<Option<i64>, CacheError>> {
        Box::pin(async move {
            let score: Option<f64> = self
                .link
                .query(
                    &*redis::cmd("ZSCORE").arg(self.seen_key()).arg(&meter.0),
                    true,
                )
                .await?;
            Ok(score.map(|s| s as i64))
        })
    }

    fn online<'a>(
        &'a self,
        meters: &'a [MeterId],
        now: i64,
        within_s: i64,
    ) -> BoxFuture<'a, Result<Vec<(MeterId, bool)>, CacheError>> {
        Box::pin(async move {
            if meters.is_empty() {
                return Ok(Vec::new());
            }
            let mut cmd = redis::cmd("ZMSCORE");
            cmd.arg(self.seen_key());
            for m in meters {
                cmd.arg(&m.0);
            }
            let scores: Vec<Option<f64>> = self.link.query(&cmd, true).await?;
            if scores.len() != meters.len() {
                return Err(CacheError::Config(format!(
                    "ZMSCORE answered {} scores for {} meters",
                    scores.len(),
                    meters.len()
                )));
            }
            Ok(meters
                .iter()
                .zip(scores)
                .map(|(m, s)| {
                    let on = s.is_some_and(|t| now.saturating_sub(t as i64) <= within_s);
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
            let n: usize = self
                .link
                .query(
                    &*redis::cmd("PUBLISH")
                        .arg(self.channel_name(channel))
                        .arg(payload),
                    false,
                )
                .await?;
            Ok(n)
        })
    }

    fn subscribe<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Subscription, CacheError>> {
        Box::pin(async move {
            // A dedicated connection per subscription: it returns once Redis confirmed it.
            // On the master the sentinels name now: after a failover, the API's live hub
            // subscribes again (its subscription ends with the lost connection) and lands on
            // the new master.
            let mut pubsub = self.link.master_client().await?.get_async_pubsub().await?;
            pubsub.subscribe(self.channel_name(channel)).await?;
            let (tx, rx) = broadcast::channel::<Arc<[u8]>>(self.capacity);
            let mut stream = pubsub.into_on_message();
            // Forwards into a bounded broadcast buffer, never waiting on the subscriber: a
            // slow subscriber loses the oldest payloads (as in memory) instead of making Redis
            // buffer them. Ends when the connection is lost (the subscriber then sees
            // `Closed`) or when the subscription is dropped (aborted).
            let task = tokio::spawn(async move {
                while let Some(msg) = stream.next().await {
                    if tx.send(Arc::from(msg.get_payload_bytes())).is_err() {
                        break;
                    }
                }
                tracing::debug!("cache subscription ended");
            });
            Ok(Subscription::new(rx, Some(task)))
        })
    }
}
