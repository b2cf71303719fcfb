//! Surviving a PostgreSQL failover: the connection settings that find the primary among
//! several hosts and notice a dead one, the errors that mean "the primary moved", and the
//! retry of idempotent calls through the switch.
//!
//! With a multi-host URL (`postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write`)
//! tokio-postgres tries the hosts in order and keeps the first that accepts writes, so a new
//! connection always lands on the current primary. What is left to do here: drop the pooled
//! connections that still point at the old one, and run the call again.

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_postgres::error::SqlState;

use crate::StoreError;

/// How long an idempotent call keeps retrying while no primary answers (a failover manager
/// takes seconds to promote a replica); after that, its last error is returned.
pub const FAILOVER_WAIT: Duration = Duration::from_secs(45);

/// How long opening a connection to one host may take unless the URL says otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses `url` and fills what it leaves unset with the settings a failover needs: a connect
/// timeout per host (an unreachable host is skipped, not waited for), and TCP keepalives plus
/// a user timeout, so that a connection to a host that vanished without closing it (a zone cut
/// off) fails within about 20 s instead of the kernel's 15 minutes.
pub fn config(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let mut cfg: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| StoreError::Config(e.to_string()))?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(CONNECT_TIMEOUT);
    }
    if !url.contains("keepalives_idle") {
        cfg.keepalives_idle(Duration::from_secs(10));
    }
    if cfg.get_keepalives_interval().is_none() {
        cfg.keepalives_interval(Duration::from_secs(3));
    }
    if cfg.get_keepalives_retries().is_none() {
        cfg.keepalives_retries(3);
    }
    if cfg.get_tcp_user_timeout().is_none() {
        cfg.tcp_user_timeout(Duration::from_secs(20));
    }
    Ok(cfg)
}

/// Whether `e` says the server a connection was on stopped being a writable primary (or was
/// not reachable at all): the call may succeed on a fresh connection, which finds the new
/// primary. Errors about what was asked (a constraint, bad data) are not.
pub fn is_failover(e: &StoreError) -> bool {
    let StoreError::Postgres(e) = e else {
        return false;
    };
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code == &SqlState::READ_ONLY_SQL_TRANSACTION
                || code == &SqlState::ADMIN_SHUTDOWN
                || code == &SqlState::CRASH_SHUTDOWN
                || code == &SqlState::CANNOT_CONNECT_NOW
                || code == &SqlState::IDLE_SESSION_TIMEOUT
                // Class 08: connection exceptions.
                || code.code().starts_with("08")
        }
        // No SQLSTATE: the transport failed (refused, reset, timed out) or no host accepted
        // writes ("database does not allow writes": only replicas answered, mid-promotion).
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// Runs `call` until it succeeds, fails for a reason other than a failover, or
/// [`FAILOVER_WAIT`] has passed. After a failover error every idle connection of `pool` is
/// dropped (they all point at the server that failed), so the next attempt connects afresh.
/// Only for calls that may run twice: a call cut off mid-commit may have committed.
pub async fn retrying<T, F, Fut>(pool: &Pool, what: &str, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    let mut failed = 0u32;
    loop {
        match call().await {
            Err(e) if is_failover(&e) && started.elapsed() < FAILOVER_WAIT => {
                pool.retain(|_, _| false);
                failed += 1;
                if failed == 1 {
                    tracing::warn!(error = %e, "postgres: {what}: the primary is gone; retrying on a fresh connection");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Ok(v) => {
                if failed > 0 {
                    tracing::info!(
                        "postgres: {what}: done after {failed} failed attempts ({:?})",
                        started.elapsed()
                    );
                }
                return Ok(v);
            }
            Err(e) => {
                if failed > 0 {
                    tracing::error!(error = %e, "postgres: {what}: no writable primary after {failed} attempts ({:?})", started.elapsed());
                }
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_host_urls_keep_their_hosts_and_get_failover_settings() -> Result<(), StoreError> {
        let cfg = config(
            "postgres://hes@10.0.0.1:5432,10.0.0.2:5433,10.0.0.3/hes?target_session_attrs=read-write",
        )?;
        assert_eq!(cfg.get_hosts().len(), 3);
        assert_eq!(cfg.get_ports(), &[5432, 5433, 5432]);
        assert_eq!(
            cfg.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
        assert_eq!(cfg.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(cfg.get_keepalives_idle(), Duration::from_secs(10));
        assert_eq!(cfg.get_tcp_user_timeout(), Some(&Duration::from_secs(20)));
        // What the URL says wins.
        let cfg = config("postgres://hes@h/hes?connect_timeout=3&keepalives_idle=60")?;
        assert_eq!(cfg.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(cfg.get_keepalives_idle(), Duration::from_secs(60));
        Ok(())
    }

    #[test]
    fn only_connection_level_errors_are_failovers() {
        assert!(!is_failover(&StoreError::Conflict("x".into())));
        assert!(!is_failover(&StoreError::Invalid("x".into())));
    }
}
