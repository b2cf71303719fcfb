//! The wall clock, in the units the head-end stores: Unix seconds and milliseconds (UTC). One
//! place, so that a test clock or a skew check has one thing to replace.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds (0 before 1970, which no machine of ours is).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Now, in Unix milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
