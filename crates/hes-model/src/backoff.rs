//! The one retry policy of the head-end: exponential backoff with jitter (the `backon`
//! crate's), used by the job engine, the collectors' bus loop and the stages.

use std::time::Duration;

use backon::BackoffBuilder;

/// Exponential from `base`, doubling, capped at `max`, with random jitter so that many
/// retrying clients do not stampede together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The wait before retry number `attempt` (1 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1).min(64) as usize)
            .unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_stays_capped() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        for attempt in 1..40 {
            let d = b.delay(attempt);
            let nominal = Duration::from_millis(100)
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(Duration::from_secs(2));
            // Never below the nominal delay, never more than twice it (jitter).
            assert!(
                d >= nominal && d <= nominal * 2,
                "{attempt}: {d:?} vs {nominal:?}"
            );
        }
    }
}
