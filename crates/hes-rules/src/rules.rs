//! The rules' parameters: intervals, tolerances, limits, and the register wrap.

use std::collections::HashMap;

use hes_model::MeterId;

use crate::transform::scaled;

/// The rules' parameters.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The profile interval, seconds.
    pub interval: i64,
    /// Timestamps up to this far ahead of now (or of their reception) are accepted, seconds.
    pub future_tolerance: i64,
    /// Timestamps older than now minus this are `TOO_OLD`, seconds.
    pub horizon: i64,
    /// A cumulative entry more than this off its interval boundary is `CLOCK_SUSPECT`, seconds.
    pub boundary_tolerance: i64,
    /// A reading received more than this after its timestamp is `CLOCK_SUSPECT`, seconds
    /// (longer than any profile buffer can hold).
    pub max_receive_lag: i64,
    /// A step above `spike_factor` × the largest step of the channel's own history (fading:
    /// half of it gone after `peak_half_life` steps), and above `spike_floor_wh` per interval,
    /// is a spike; judged only once the channel has `spike_min_history` steps (a daily cycle).
    pub spike_factor: i64,
    pub spike_floor_wh: f64,
    pub spike_min_history: u32,
    pub peak_half_life: u32,
    /// The register's wrap (double-long-unsigned: 2^32), raw units.
    pub register_modulus: i64,
    /// The physical maximum power of a meter, W (or var for reactive channels).
    pub max_power_w: f64,
    /// Per-meter overrides of `max_power_w`.
    pub meter_max_power_w: HashMap<MeterId, f64>,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            interval: 900,
            future_tolerance: 300,
            horizon: 400 * 86_400,
            boundary_tolerance: 0,
            max_receive_lag: 62 * 86_400,
            spike_factor: 10,
            spike_floor_wh: 1_000.0,
            spike_min_history: 96,
            peak_half_life: 7 * 96,
            register_modulus: 1 << 32,
            max_power_w: 100_000.0,
            meter_max_power_w: HashMap::new(),
        }
    }
}

impl Rules {
    /// The most energy (Wh) a meter can register over `seconds`.
    pub fn max_energy_wh(&self, meter: &MeterId, seconds: i64) -> f64 {
        let p = self
            .meter_max_power_w
            .get(meter)
            .copied()
            .unwrap_or(self.max_power_w);
        p * seconds as f64 / 3600.0
    }

    /// Whether a cumulative register going from `v0` down to `v1` is a wrap: from the top
    /// tenth of its range to the bottom tenth, with the unwrapped step physically possible.
    pub fn is_rollover(&self, meter: &MeterId, v0: i64, v1: i64, scaler: i8, seconds: i64) -> bool {
        let m = self.register_modulus;
        if v1 >= v0 || v0 >= m || v1 < 0 || v0 <= m - m / 10 || v1 >= m / 10 {
            return false;
        }
        let unwrapped = v1 + m - v0;
        scaled(unwrapped, scaler) <= self.max_energy_wh(meter, seconds.max(self.interval))
    }
}
