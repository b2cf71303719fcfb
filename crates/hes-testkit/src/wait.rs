//! Waiting for a condition, bounded: the condition is polled until it holds or the time is up.
//! Tests wait for what they assert, so they pass on a loaded machine and fail fast when the
//! condition cannot come any more.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is polled: short against the deadlines tests use, long enough not to
/// load the machine the test runs on.
pub const POLL: Duration = Duration::from_millis(50);

/// A wait that did not end well: the time ran out, or what was awaited can no longer come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitError {
    /// What was awaited, and why it is over.
    pub message: String,
}

impl WaitError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    pub(crate) fn timeout(what: &str, timeout: Duration) -> Self {
        Self::new(format!("{what}: not within {timeout:?}"))
    }
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WaitError {}

/// Polls `check` until it gives a value, at most `timeout` (it is always called at least
/// once, and once more at the deadline). Blocks the thread: use [`wait_until_async`] in an
/// async test.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, WaitError> {
    let deadline = Instant::now() + timeout;
    loop {
        let last_try = Instant::now() >= deadline;
        if let Some(v) = check() {
            return Ok(v);
        }
        if last_try {
            return Err(WaitError::timeout(what, timeout));
        }
        std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// [`wait_until`] for an async condition, sleeping on the runtime's timer between polls.
pub async fn wait_until_async<T, F, Fut>(
    timeout: Duration,
    what: &str,
    mut check: F,
) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last_try = Instant::now() >= deadline;
        if let Some(v) = check().await {
            return Ok(v);
        }
        if last_try {
            return Err(WaitError::timeout(what, timeout));
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_the_value_once_the_condition_holds() {
        let mut n = 0;
        let v = wait_until(Duration::from_secs(5), "n reaches 3", || {
            n += 1;
            (n >= 3).then_some(n)
        });
        assert_eq!(v, Ok(3));
    }

    #[test]
    fn times_out_after_one_last_try() {
        let started = Instant::now();
        let mut tries = 0;
        let r: Result<(), _> = wait_until(Duration::from_millis(120), "never", || {
            tries += 1;
            None
        });
        let e = r.err().map(|e| e.message).unwrap_or_default();
        assert!(e.starts_with("never: not within"), "{e}");
        assert!(started.elapsed() >= Duration::from_millis(120));
        assert!(tries >= 2, "{tries}");
    }

    #[tokio::test]
    async fn async_conditions_are_polled_too() {
        let mut n = 0;
        let v = wait_until_async(Duration::from_secs(5), "n reaches 2", || {
            n += 1;
            let now = n;
            async move { (now >= 2).then_some(now) }
        })
        .await;
        assert_eq!(v, Ok(2));
    }
}
