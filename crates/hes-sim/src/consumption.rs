//! Deterministic interval consumption: a per-meter daily shape, so that any interval's value
//! and any cumulative register reading are computed in O(1) from the seed and the time.

/// Seconds in one profile interval (15 minutes).
pub const INTERVAL: i64 = 900;
const PER_DAY: usize = 96;

/// One meter's consumption pattern.
#[derive(Debug, Clone)]
pub struct Consumption {
    /// Wh imported in each 15-minute slot of a day.
    import: [u32; PER_DAY],
    /// Wh exported in each slot (rooftop solar on some meters).
    export: [u32; PER_DAY],
    /// varh in each slot.
    reactive: [u32; PER_DAY],
    prefix_import: [u64; PER_DAY + 1],
    prefix_export: [u64; PER_DAY + 1],
    prefix_reactive: [u64; PER_DAY + 1],
    /// Register value at the Unix epoch (meters are not installed at zero).
    base: u64,
}

/// SplitMix64: a tiny, well-mixed generator; the same seed gives the same meter everywhere.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn prefix(v: &[u32; PER_DAY]) -> [u64; PER_DAY + 1] {
    let mut p = [0u64; PER_DAY + 1];
    for i in 0..PER_DAY {
        if let (Some(&prev), Some(&x)) = (p.get(i), v.get(i)) {
            if let Some(slot) = p.get_mut(i + 1) {
                *slot = prev + u64::from(x);
            }
        }
    }
    p
}

impl Consumption {
    pub fn new(seed: u64) -> Self {
        let mut s = seed;
        // Household size scales the whole day; morning and evening peaks vary per meter.
        let scale = 60 + splitmix(&mut s) % 140; // Wh per slot at the daily mean
        let morning = 26 + (splitmix(&mut s) % 8) as usize; // 06:30 .. 08:15
        let evening = 70 + (splitmix(&mut s) % 10) as usize; // 17:30 .. 19:45
        let solar = splitmix(&mut s).is_multiple_of(4);
        let mut import = [0u32; PER_DAY];
        let mut export = [0u32; PER_DAY];
        let mut reactive = [0u32; PER_DAY];
        for i in 0..PER_DAY {
            let peak = |c: usize, w: f64| (-((i as f64 - c as f64) / w).powi(2)).exp();
            let shape = 0.35 + 0.9 * peak(morning, 5.0) + 1.4 * peak(evening, 8.0);
            let noise = 0.85 + (splitmix(&mut s) % 300) as f64 / 1000.0;
            let wh = (scale as f64 * shape * noise).round() as u32;
            let sun = if solar {
                (400.0 * peak(52, 10.0)).round() as u32
            } else {
                0
            };
            if let (Some(imp), Some(exp), Some(r)) =
                (import.get_mut(i), export.get_mut(i), reactive.get_mut(i))
            {
                *imp = wh.saturating_sub(sun / 2).max(5);
                *exp = sun.saturating_sub(wh / 2);
                *r = wh / 4 + (splitmix(&mut s) % 10) as u32;
            }
        }
        let base = splitmix(&mut s) % 50_000_000;
        Self {
            prefix_import: prefix(&import),
            prefix_export: prefix(&export),
            prefix_reactive: prefix(&reactive),
            import,
            export,
            reactive,
            base,
        }
    }

    fn cumulative(&self, prefix: &[u64; PER_DAY + 1], end: i64, base: u64) -> u64 {
        // Whole slots completed by `end`: full days, then the slots of the last day.
        let slots = end.div_euclid(INTERVAL);
        let days = slots.div_euclid(PER_DAY as i64);
        let rest = slots.rem_euclid(PER_DAY as i64) as usize;
        let per_day = prefix.get(PER_DAY).copied().unwrap_or_default();
        let done = prefix.get(rest).copied().unwrap_or_default();
        base.wrapping_add((days as u64).wrapping_mul(per_day))
            .wrapping_add(done)
    }

    /// Active energy import register (Wh) at a slot boundary or any instant.
    pub fn import_wh(&self, t: i64) -> u64 {
        self.cumulative(&self.prefix_import, t, self.base)
    }

    pub fn export_wh(&self, t: i64) -> u64 {
        self.cumulative(&self.prefix_export, t, self.base / 10)
    }

    pub fn reactive_varh(&self, t: i64) -> u64 {
        self.cumulative(&self.prefix_reactive, t, self.base / 4)
    }

    /// Wh imported in the slot that ends at `end`.
    pub fn slot_import(&self, end: i64) -> u32 {
        let slot = (end.div_euclid(INTERVAL) - 1).rem_euclid(PER_DAY as i64) as usize;
        self.import.get(slot).copied().unwrap_or_default()
    }

    pub fn slot_export(&self, end: i64) -> u32 {
        let slot = (end.div_euclid(INTERVAL) - 1).rem_euclid(PER_DAY as i64) as usize;
        self.export.get(slot).copied().unwrap_or_default()
    }

    pub fn slot_reactive(&self, end: i64) -> u32 {
        let slot = (end.div_euclid(INTERVAL) - 1).rem_euclid(PER_DAY as i64) as usize;
        self.reactive.get(slot).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_agree_with_intervals() {
        let c = Consumption::new(42);
        let t0 = 1_795_651_200; // a midnight
        for k in 1..400 {
            let end = t0 + k * INTERVAL;
            let diff = c.import_wh(end) - c.import_wh(end - INTERVAL);
            assert_eq!(diff, u64::from(c.slot_import(end)), "slot {k}");
            assert!(c.slot_import(end) > 0);
        }
        assert_eq!(Consumption::new(42).import_wh(t0), c.import_wh(t0));
        assert_ne!(Consumption::new(43).import_wh(t0), c.import_wh(t0));
    }
}
