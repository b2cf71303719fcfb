//! Concurrency limits shared by every collector: a global limit on sessions at once across the
//! whole head-end, and one per cell (gateway, concentrator, radio cell) so that a constrained
//! network is never asked for more than it carries, whichever collectors its meters' jobs land
//! on. Kept in Redis as leases with an expiry (a sorted set per limit, scored by expiry time), so
//! that a collector that dies without releasing gives its places back when its leases expire.

use hes_model::clock::unix_ms as now_ms;
use std::time::Duration;

use hes_cache::{RedisLink, RedisTarget};

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Atomically: drop expired leases, check every limit, and only if all have room take a place
/// in each. KEYS are the limits' sets; ARGV: now (ms), expiry (ms), lease id, then one limit per
/// key.
const ACQUIRE: &str = r"
local now = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  if redis.call('ZCARD', k) >= tonumber(ARGV[3 + i]) then return 0 end
end
for i, k in ipairs(KEYS) do
  redis.call('ZADD', k, tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', k, tonumber(ARGV[2]) - now + 60000)
end
return 1
";

/// The limits, in Redis.
#[derive(Clone)]
pub struct SharedLimits {
    /// Follows the master through Sentinel when so configured.
    conn: RedisLink,
    prefix: String,
    pub global: usize,
    pub per_cell: usize,
    /// How long a place is held at most (a job's timeout and some margin).
    pub lease: Duration,
    script: redis::Script,
}

impl std::fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimits")
            .field("prefix", &self.prefix)
            .field("global", &self.global)
            .field("per_cell", &self.per_cell)
            .finish()
    }
}

/// A place taken in the limits; give it back with [`SharedLimits::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    id: String,
    keys: Vec<String>,
    /// The cell it holds a place in, for the metrics.
    cell: Option<String>,
}

impl SharedLimits {
    /// Connects to `url` (`redis://host:port`, e.g. `HES_REDIS_URL`). `prefix` names this
    /// head-end's limits (several head-ends may share a Redis).
    pub async fn connect(
        url: &str,
        prefix: &str,
        global: usize,
        per_cell: usize,
        lease: Duration,
    ) -> Result<Self, LimitError> {
        Self::connect_to(
            &RedisTarget::Url(url.to_string()),
            prefix,
            global,
            per_cell,
            lease,
        )
        .await
    }

    /// [`SharedLimits::connect`] to one server or to the master a set of sentinels names.
    pub async fn connect_to(
        target: &RedisTarget,
        prefix: &str,
        global: usize,
        per_cell: usize,
        lease: Duration,
    ) -> Result<Self, LimitError> {
        let conn = RedisLink::connect(target).await?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            global,
            per_cell,
            lease,
            script: redis::Script::new(ACQUIRE),
        })
    }

    /// Takes a place in the global limit and in `cell`'s, or none (`None`: no room now).
    pub async fn try_acquire(&self, cell: Option<&str>) -> Result<Option<Lease>, LimitError> {
        let mut keys = vec![format!("{}:limit:global", self.prefix)];
        let mut limits = vec![self.global];
        if let Some(c) = cell {
            keys.push(format!("{}:limit:cell:{c}", self.prefix));
            limits.push(self.per_cell);
        }
        let id = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let now = now_ms();
        let expiry = now + self.lease.as_millis() as i64;
        let mut inv = self.script.prepare_invoke();
        for k in &keys {
            inv.key(k);
        }
        inv.arg(now).arg(expiry).arg(&id);
        for l in &limits {
            inv.arg(*l);
        }
        // Not run again after a failover: a place taken on the old master may have been taken
        // twice; the error makes the caller wait and ask again.
        let ok: i64 = self.conn.query(&inv, false).await?;
        if ok != 1 {
            ::metrics::counter!(crate::metrics::LIMIT_WAITS).increment(1);
            return Ok(None);
        }
        if let Some(c) = cell {
            ::metrics::gauge!(crate::metrics::CELL_SESSIONS, "cell" => c.to_string())
                .increment(1.0);
        }
        Ok(Some(Lease {
            id,
            keys,
            cell: cell.map(String::from),
        }))
    }

    pub async fn release(&self, lease: Lease) -> Result<(), LimitError> {
        // Given back here whether Redis hears of it or the lease expires there.
        if let Some(c) = &lease.cell {
            ::metrics::gauge!(crate::metrics::CELL_SESSIONS, "cell" => c.clone()).decrement(1.0);
        }
        let mut pipe = redis::pipe();
        for k in &lease.keys {
            pipe.zrem(k, &lease.id).ignore();
        }
        self.conn.query::<()>(&pipe, true).await?;
        Ok(())
    }
}
