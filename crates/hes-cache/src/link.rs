//! A Redis connection that follows the master: straight to one server (`redis://…`), or
//! through Redis Sentinel, which names the current master of a replicated set.
//!
//! Through Sentinel, a command that fails because the master went away (the connection is
//! lost or refused, or the server answers `READONLY`: it was demoted to a replica) makes the
//! link ask the sentinels again and reconnect to whatever they name; the command is then
//! tried once more on the new master when the caller says it may run twice.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::Sentinel;
use redis::{FromRedisValue, RedisError, RedisResult};

/// The variable with the sentinels (`host:port,host:port,…`); when set, with
/// [`MASTER_NAME_ENV`], it wins over `HES_REDIS_URL`.
pub const SENTINELS_ENV: &str = "HES_REDIS_SENTINELS";
/// The variable with the name the sentinels monitor the master under.
pub const MASTER_NAME_ENV: &str = "HES_REDIS_MASTER_NAME";
/// The variable with a single server's URL.
pub const URL_ENV: &str = "HES_REDIS_URL";

/// How long a command keeps looking for a master through the sentinels before it fails
/// (Sentinel takes `down-after-milliseconds` plus the election to promote a replica).
pub const MASTER_WAIT: Duration = Duration::from_secs(30);

/// Where the Redis master is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server, `redis://host:port[/db]`.
    Url(String),
    /// The master the sentinels (`host:port` each) monitor under `master`.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
    },
}

impl RedisTarget {
    /// The sentinels when `sentinels` (comma-separated `host:port`) is not empty, then
    /// `master` must be; else `url`; `None` when all are empty.
    pub fn from_parts(
        url: &str,
        sentinels: &str,
        master: &str,
    ) -> Result<Option<Self>, crate::CacheError> {
        let list: Vec<String> = sentinels
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.contains("://") {
                    s.to_string()
                } else {
                    format!("redis://{s}")
                }
            })
            .collect();
        if !list.is_empty() {
            if master.trim().is_empty() {
                return Err(crate::CacheError::Config(format!(
                    "Redis sentinels given ({SENTINELS_ENV}) without the master's name ({MASTER_NAME_ENV})"
                )));
            }
            return Ok(Some(Self::Sentinel {
                sentinels: list,
                master: master.trim().to_string(),
            }));
        }
        Ok((!url.trim().is_empty()).then(|| Self::Url(url.trim().to_string())))
    }

    /// [`RedisTarget::from_parts`] of `HES_REDIS_URL`, `HES_REDIS_SENTINELS` and
    /// `HES_REDIS_MASTER_NAME`.
    pub fn from_env() -> Result<Option<Self>, crate::CacheError> {
        let var = |n: &str| std::env::var(n).unwrap_or_default();
        Self::from_parts(&var(URL_ENV), &var(SENTINELS_ENV), &var(MASTER_NAME_ENV))
    }
}

impl std::fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(u) => f.write_str(u),
            Self::Sentinel { sentinels, master } => {
                write!(f, "master {master:?} of sentinels {}", sentinels.join(","))
            }
        }
    }
}

/// Whether `e` means the server is no longer a reachable master.
pub fn master_lost(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.kind() == redis::ErrorKind::ReadOnly
        || e.code() == Some("MASTERDOWN")
}

struct Current {
    /// Bumped at every reconnection, so that callers that failed on the same connection
    /// reconnect once between them.
    generation: u64,
    con: ConnectionManager,
    client: redis::Client,
}

struct Inner {
    target: RedisTarget,
    sentinel: Option<tokio::sync::Mutex<Sentinel>>,
    current: std::sync::RwLock<Current>,
    /// Held while asking the sentinels and reconnecting.
    switching: tokio::sync::Mutex<()>,
}

/// A shared connection to the current master; clones share it.
#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("target", &self.inner.target)
            .finish_non_exhaustive()
    }
}

fn manager_config() -> ConnectionManagerConfig {
    // Few reconnection attempts of its own: through Sentinel the link, not the manager,
    // decides where to reconnect.
    ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_connection_timeout(Duration::from_secs(3))
        .set_response_timeout(Duration::from_secs(10))
}

async fn open(client: &redis::Client) -> RedisResult<ConnectionManager> {
    ConnectionManager::new_with_config(client.clone(), manager_config()).await
}

impl RedisLink {
    /// Connects to the master of `target` (through the sentinels: the one they name now).
    pub async fn connect(target: &RedisTarget) -> RedisResult<Self> {
        let (sentinel, client) = match target {
            RedisTarget::Url(u) => (None, redis::Client::open(u.as_str())?),
            RedisTarget::Sentinel { sentinels, master } => {
                let mut s = Sentinel::build(sentinels.clone())?;
                let client = s.async_master_for(master, None).await?;
                (Some(tokio::sync::Mutex::new(s)), client)
            }
        };
        let con = match target {
            // A single server: the manager's own reconnection (more patient) is all there is.
            RedisTarget::Url(_) => ConnectionManager::new(client.clone()).await?,
            RedisTarget::Sentinel { .. } => open(&client).await?,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                target: target.clone(),
                sentinel,
                current: std::sync::RwLock::new(Current {
                    generation: 0,
                    con,
                    client,
                }),
                switching: tokio::sync::Mutex::new(()),
            }),
        })
    }

    pub fn target(&self) -> &RedisTarget {
        &self.inner.target
    }

    fn current(&self) -> (u64, ConnectionManager, redis::Client) {
        match self.inner.current.read() {
            Ok(c) => (c.generation, c.con.clone(), c.client.clone()),
            Err(poisoned) => {
                let c = poisoned.into_inner();
                (c.generation, c.con.clone(), c.client.clone())
            }
        }
    }

    /// A client of the current master (for connections of their own: pub/sub). Through
    /// Sentinel, asks the sentinels first.
    pub async fn master_client(&self) -> RedisResult<redis::Client> {
        match &self.inner.sentinel {
            None => Ok(self.current().2),
            Some(s) => {
                let RedisTarget::Sentinel { master, .. } = &self.inner.target else {
                    return Ok(self.current().2);
                };
                s.lock().await.async_master_for(master, None).await
            }
        }
    }

    /// Asks the sentinels for the master and reconnects, unless another caller did since
    /// `seen` (the generation that failed).
    async fn switch(&self, seen: u64) -> RedisResult<()> {
        let _one = self.inner.switching.lock().await;
        if self.current().0 != seen {
            return Ok(());
        }
        let client = self.master_client().await?;
        let con = open(&client).await?;
        let addr = client.get_connection_info().addr.to_string();
        if let Ok(mut c) = self.inner.current.write() {
            c.generation += 1;
            c.con = con;
            c.client = client;
        }
        tracing::warn!(master = %addr, "redis: reconnected to the master the sentinels name");
        Ok(())
    }

    /// Runs `req` (a command or a pipeline) on the master. Through Sentinel, when the master
    /// is lost, waits (at most [`MASTER_WAIT`]) for the sentinels to name a reachable one,
    /// reconnects, and runs `req` there again if it is `idempotent` (else returns the error).
    pub async fn query<'r, T: FromRedisValue>(
        &self,
        req: impl Into<Request<'r>>,
        idempotent: bool,
    ) -> RedisResult<T> {
        let req = req.into();
        let started = tokio::time::Instant::now();
        loop {
            let (generation, mut con, _) = self.current();
            let r = match req {
                Request::Cmd(c) => c.query_async(&mut con).await,
                Request::Pipe(p) => p.query_async(&mut con).await,
                Request::Script(s) => s.invoke_async(&mut con).await,
            };
            let e = match r {
                Err(e) if self.inner.sentinel.is_some() && master_lost(&e) => e,
                r => return r,
            };
            tracing::warn!(error = %e, "redis: the master is lost; asking the sentinels");
            loop {
                match self.switch(generation).await {
                    Ok(()) => break,
                    Err(why) if started.elapsed() >= MASTER_WAIT => {
                        tracing::error!(error = %why, "redis: no master within {MASTER_WAIT:?}");
                        return Err(e);
                    }
                    Err(why) => {
                        tracing::debug!(error = %why, "redis: no reachable master yet");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            if !idempotent || started.elapsed() >= MASTER_WAIT {
                return Err(e);
            }
        }
    }
}

/// What [`RedisLink::query`] runs.
#[derive(Clone, Copy)]
pub enum Request<'a> {
    Cmd(&'a redis::Cmd),
    Pipe(&'a redis::Pipeline),
    /// `EVALSHA`, loading the script when Redis does not have it (a new master has none).
    Script(&'a redis::ScriptInvocation<'a>),
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cmd(_) => "Request::Cmd",
            Self::Pipe(_) => "Request::Pipe",
            Self::Script(_) => "Request::Script",
        })
    }
}

impl<'a> From<&'a redis::Cmd> for Request<'a> {
    fn from(c: &'a redis::Cmd) -> Self {
        Self::Cmd(c)
    }
}

impl<'a> From<&'a redis::ScriptInvocation<'a>> for Request<'a> {
    fn from(s: &'a redis::ScriptInvocation<'a>) -> Self {
        Self::Script(s)
    }
}

impl<'a> From<&'a redis::Pipeline> for Request<'a> {
    fn from(p: &'a redis::Pipeline) -> Self {
        Self::Pipe(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinels_win_over_the_url_and_need_a_master_name() {
        assert_eq!(RedisTarget::from_parts("", "", "").ok(), Some(None));
        assert_eq!(
            RedisTarget::from_parts("redis://h:6379", "", "").ok(),
            Some(Some(RedisTarget::Url("redis://h:6379".into())))
        );
        assert_eq!(
            RedisTarget::from_parts("redis://h:6379", "s1:26379, s2:26379,", "hes").ok(),
            Some(Some(RedisTarget::Sentinel {
                sentinels: vec!["redis://s1:26379".into(), "redis://s2:26379".into()],
                master: "hes".into()
            }))
        );
        assert!(RedisTarget::from_parts("", "s1:26379", " ").is_err());
    }
}
