//! Quality flags and validated readings: what the validation (VEE) stage says about each value.

use serde::{Deserialize, Serialize};

use crate::Reading;

/// What validation (and estimation) found about a value: bit flags, 0 = nothing wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quality(pub u32);

impl Quality {
    pub const OK: Quality = Quality(0);
    /// A gap of one or more intervals precedes this entry.
    pub const MISSING_BEFORE: u32 = 1 << 0;
    /// The consumption per interval is above `spike_factor` × the largest of the channel's own
    /// history (once it holds a day) and above `spike_floor_wh`.
    pub const SPIKE: u32 = 1 << 1;
    /// A cumulative register went down (and not across its wrap).
    pub const NEGATIVE_CONSUMPTION: u32 = 1 << 2;
    /// A cumulative register went down across its wrap; the consumption is taken modulo.
    pub const ROLLOVER: u32 = 1 << 3;
    /// The same key was seen before with the same value.
    pub const DUPLICATE: u32 = 1 << 4;
    /// The same key was seen before with another value.
    pub const CONFLICT: u32 = 1 << 5;
    /// The meter's timestamp is beyond now + the clock tolerance.
    pub const FUTURE: u32 = 1 << 6;
    /// The meter's timestamp is before the horizon (now − `horizon`).
    pub const TOO_OLD: u32 = 1 << 7;
    /// A profile entry off the interval boundary, or a timestamp implausible against the
    /// head-end's reception time.
    pub const CLOCK_SUSPECT: u32 = 1 << 8;
    /// The consumption per interval is above the meter's physical maximum (max power ×
    /// interval).
    pub const OUT_OF_RANGE: u32 = 1 << 9;
    /// The value was estimated (filled in a gap), not measured.
    pub const ESTIMATED: u32 = 1 << 10;

    /// Every flag with its name, in bit order.
    pub const NAMES: [(u32, &'static str); 11] = [
        (Self::MISSING_BEFORE, "missing_before"),
        (Self::SPIKE, "spike"),
        (Self::NEGATIVE_CONSUMPTION, "negative_consumption"),
        (Self::ROLLOVER, "rollover"),
        (Self::DUPLICATE, "duplicate"),
        (Self::CONFLICT, "conflict"),
        (Self::FUTURE, "future"),
        (Self::TOO_OLD, "too_old"),
        (Self::CLOCK_SUSPECT, "clock_suspect"),
        (Self::OUT_OF_RANGE, "out_of_range"),
        (Self::ESTIMATED, "estimated"),
    ];

    /// The names of the flags set (unknown bits are left out).
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, name)| *name)
            .collect()
    }

    /// Any of `flags` set.
    pub fn has(self, flags: u32) -> bool {
        self.0 & flags != 0
    }

    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Both sets of flags.
    pub fn union(self, other: Quality) -> Quality {
        Quality(self.0 | other.0)
    }
}

/// A reading with its flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatedReading {
    pub reading: Reading,
    pub quality: Quality,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_list_the_set_flags_in_bit_order() {
        let q = Quality(Quality::SPIKE | Quality::ESTIMATED | (1 << 30));
        assert_eq!(q.names(), vec!["spike", "estimated"]);
        assert!(Quality::OK.names().is_empty());
        let all = Quality::NAMES.iter().fold(0, |a, (b, _)| a | b);
        assert_eq!(all.count_ones() as usize, Quality::NAMES.len());
    }
}
