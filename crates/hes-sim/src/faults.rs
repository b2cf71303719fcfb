//! Faults on demand: what a meter (or a fraction of the fleet) does wrong, switched on and off
//! through the control surface, reproducible from a seed.

use serde::{Deserialize, Serialize};

/// The faults of one meter. All off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The meter does not listen: connecting is refused (TCP RST to the SYN).
    pub refused: bool,
    /// Each answer is sent this many milliseconds late.
    pub slow_ms: u32,
    /// The connection is dropped after the first block of a long answer.
    pub drop_mid_block: bool,
    /// The first answer after the association is established is corrupted: an HDLC frame
    /// fails its check sequence; a wrapper frame carries an unknown APDU tag.
    pub corrupt_frame: bool,
    /// Applied once when set: the counter the meter expects from the management client jumps
    /// this far ahead (as after another head-end used the meter), so the next association
    /// with an older counter is refused until the head-end resynchronises from 0.0.43.1.x.
    pub ic_jump: u32,
    /// Applied once when set: the meter's clock moves by this many seconds.
    pub clock_drift_s: i32,
    /// Per mille of load-profile intervals that are missing (gaps) or spiked (spikes).
    pub profile_anomalies_per_mille: u16,
    /// Every association request is refused (AARE rejected-permanent).
    pub refuse_association: bool,
    /// Answers go out at one byte a second.
    pub trickle: bool,
    /// After the first block of a long answer the meter answers nothing more, ever, and keeps
    /// the connection open.
    pub stall_mid_block: bool,
    /// The meter's interval pushes are lost on the way (sent, never delivered): the data stays
    /// in its load profile for the head-end to read by pull. Alarms still arrive.
    pub lose_pushes: bool,
}

/// The faults that are on or off, by name (for `hes sim --fault NAME=SHARE`).
pub const SWITCHES: [&str; 8] = [
    "refused",
    "drop_mid_block",
    "corrupt_frame",
    "refuse_association",
    "trickle",
    "stall_mid_block",
    "slow",
    "lose_pushes",
];

impl Faults {
    /// Faults with the switch `name` on (`slow`: answers a second late).
    pub fn switch(name: &str) -> Option<Self> {
        let mut f = Self::default();
        match name {
            "refused" => f.refused = true,
            "drop_mid_block" => f.drop_mid_block = true,
            "corrupt_frame" => f.corrupt_frame = true,
            "refuse_association" => f.refuse_association = true,
            "trickle" => f.trickle = true,
            "stall_mid_block" => f.stall_mid_block = true,
            "slow" => f.slow_ms = 1000,
            "lose_pushes" => f.lose_pushes = true,
            _ => return None,
        }
        Some(f)
    }
}

impl Faults {
    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// Picks a reproducible subset of `n` meters: each meter is in with probability `fraction`,
/// decided by a hash of `(seed, index)` alone, so the same seed picks the same meters.
pub fn pick(n: u32, fraction: f64, seed: u64) -> Vec<u32> {
    let threshold = (fraction.clamp(0.0, 1.0) * (u64::MAX as f64)) as u64;
    (0..n)
        .filter(|&i| crate::data::hash(seed, 0xFA17, i64::from(i)) < threshold || fraction >= 1.0)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn picking_is_reproducible_and_near_the_fraction() {
        let a = pick(10_000, 0.1, 7);
        assert_eq!(a, pick(10_000, 0.1, 7));
        assert_ne!(a, pick(10_000, 0.1, 8));
        assert!((900..1100).contains(&a.len()), "{}", a.len());
        assert_eq!(pick(50, 1.0, 1).len(), 50);
        assert!(pick(50, 0.0, 1).is_empty());
    }

    #[test]
    fn unknown_fault_names_are_refused() {
        assert!(
            serde_json::from_str::<Faults>(r#"{"refused":true}"#)
                .unwrap()
                .refused
        );
        assert!(serde_json::from_str::<Faults>(r#"{"refuzed":true}"#).is_err());
    }
}
