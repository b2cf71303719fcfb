#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::expect_used,
    clippy::panic
)]
use super::*;

/// Monday 2026-11-23 00:00 UTC.
const MONDAY: i64 = 1_795_392_000;

#[test]
fn calendar() {
    assert!(!is_weekend(0)); // Thursday
    assert!(is_weekend(2) && is_weekend(3) && !is_weekend(4));
    assert_eq!(MONDAY.rem_euclid(DAY), 0);
    assert_eq!((MONDAY / DAY + 3).rem_euclid(7), 0);
    for n in -30..30 {
        let direct = if n >= 0 {
            (0..n).filter(|&d| is_weekend(d)).count() as i64
        } else {
            -((n..0).filter(|&d| is_weekend(d)).count() as i64)
        };
        assert_eq!(weekend_days_before(n), direct, "n = {n}");
    }
    // Monday: 06:45-07:00 is night, 07:00-07:15 and 22:45-23:00 day, 23:00-23:15 night.
    assert_eq!(tariff_at(MONDAY + 7 * 3600), 2);
    assert_eq!(tariff_at(MONDAY + 7 * 3600 + INTERVAL), 1);
    assert_eq!(tariff_at(MONDAY + 23 * 3600), 1);
    assert_eq!(tariff_at(MONDAY + 23 * 3600 + INTERVAL), 2);
    // Saturday noon, and the slot ending at Saturday 00:00 (Friday's last: night).
    assert_eq!(tariff_at(MONDAY + 5 * DAY + 12 * 3600), 2);
    assert_eq!(tariff_at(MONDAY + 5 * DAY), 2);
    assert_eq!(tariff_at(MONDAY + 4 * DAY + 12 * 3600), 1);
}

#[test]
fn same_seed_same_values_different_seeds_differ() {
    let a = Consumption::new(42);
    let b = Consumption::new(42);
    let c = Consumption::new(43);
    let t = MONDAY + 12_345;
    let mut differs = false;
    for q in Quantity::ALL {
        for tariff in 0..3 {
            assert_eq!(a.cumulative(q, tariff, t), b.cumulative(q, tariff, t));
        }
        assert_eq!(a.slot(q, MONDAY), b.slot(q, MONDAY));
        differs |= a.cumulative(q, 0, t) != c.cumulative(q, 0, t);
    }
    assert!(differs);
    assert_eq!(a.instantaneous(t), b.instantaneous(t));
    // Across many seeds the import registers are all distinct.
    let mut values: Vec<u64> = (0..500)
        .map(|s| Consumption::new(s).cumulative(Quantity::ImportActive, 0, t))
        .collect();
    values.sort_unstable();
    values.dedup();
    assert_eq!(values.len(), 500);
}

#[test]
fn slots_agree_with_registers_over_three_weeks() {
    for seed in [1, 7, 42, 1234, 99_999] {
        let c = Consumption::new(seed);
        // From a Thursday, so the weekday/weekend boundaries are crossed mid-run.
        let t0 = MONDAY + 3 * DAY;
        for k in 1..=21 * 96 {
            let end = t0 + k * INTERVAL;
            let tariff = tariff_at(end);
            for q in Quantity::ALL {
                let slot = u64::from(c.slot(q, end));
                let total = c.cumulative(q, 0, end) - c.cumulative(q, 0, end - INTERVAL);
                assert_eq!(total, slot, "seed {seed} slot {k} {q:?}");
                let inside = c.cumulative(q, tariff, end) - c.cumulative(q, tariff, end - INTERVAL);
                assert_eq!(inside, slot, "seed {seed} slot {k} {q:?} T{tariff}");
                let other = 3 - tariff;
                assert_eq!(
                    c.cumulative(q, other, end),
                    c.cumulative(q, other, end - INTERVAL)
                );
                if q == Quantity::ImportActive {
                    assert!(slot >= 1);
                }
            }
            // Registers only step at slot boundaries.
            let q = Quantity::ImportActive;
            assert_eq!(
                c.cumulative(q, 0, end - 1),
                c.cumulative(q, 0, end - INTERVAL)
            );
        }
    }
}

#[test]
fn tariffs_add_up_to_the_total() {
    for seed in 0..50 {
        let c = Consumption::new(seed);
        for t in [
            REGISTER_REFERENCE,
            REGISTER_REFERENCE + 1,
            MONDAY - 1,
            MONDAY + 5 * DAY + 4321,
            4_102_444_800,
        ] {
            for q in Quantity::ALL {
                let (t1, t2) = (c.cumulative(q, 1, t), c.cumulative(q, 2, t));
                assert_eq!(c.cumulative(q, 0, t), t1 + t2, "seed {seed} t {t} {q:?}");
            }
        }
        // Long before the reference a register can go below zero: the identity holds
        // modulo 2^64.
        for t in [-1, 0, -DAY * 400 - 1] {
            for q in Quantity::ALL {
                let (t1, t2) = (c.cumulative(q, 1, t), c.cumulative(q, 2, t));
                assert_eq!(c.cumulative(q, 0, t), t1.wrapping_add(t2));
            }
        }
        assert_eq!(c.cumulative(Quantity::ImportActive, 3, MONDAY), 0);
    }
}

#[test]
fn weekday_and_weekend_differ() {
    for seed in 0..100 {
        let c = Consumption::new(seed);
        let day = |start: i64| -> Vec<u32> {
            (1..=96)
                .map(|k| c.slot(Quantity::ImportActive, start + k * INTERVAL))
                .collect()
        };
        let (wednesday, sunday) = (day(MONDAY + 2 * DAY), day(MONDAY + 6 * DAY));
        assert_ne!(wednesday, sunday, "seed {seed}");
        // Every week repeats.
        assert_eq!(wednesday, day(MONDAY + 9 * DAY));
    }
}

#[test]
fn palette_has_solar_and_commercial_shapes() {
    let meters: Vec<Consumption> = (0..2000).map(Consumption::new).collect();
    let solar = meters.iter().filter(|c| c.has_solar()).count();
    let commercial = meters.iter().filter(|c| c.is_commercial()).count();
    assert!((300..700).contains(&solar), "{solar} solar meters of 2000");
    assert!(
        (40..250).contains(&commercial),
        "{commercial} commercial meters of 2000"
    );
    for c in &meters {
        // Reactive roughly 20-35 % of active over a day.
        let sum = |q| {
            (1..=96)
                .map(|k| u64::from(c.slot(q, MONDAY + k * INTERVAL)))
                .sum()
        };
        let (a, r): (u64, u64) = (sum(Quantity::ImportActive), sum(Quantity::ImportReactive));
        assert!(
            r * 100 >= a * 17 && r * 100 <= a * 38,
            "{c:?}: {r} varh / {a} Wh"
        );
    }
}

#[test]
fn solar_exports_around_noon_only() {
    let mut seen = 0;
    for c in (0..400).map(Consumption::new) {
        let export = |start: i64, hour: i64, min: i64| {
            c.slot(Quantity::ExportActive, start + hour * 3600 + min * 60)
        };
        for day in [MONDAY + DAY, MONDAY + 5 * DAY] {
            let night = [(0, 15), (3, 0), (5, 0), (21, 0), (23, 45)];
            for (h, m) in night {
                assert_eq!(export(day, h, m), 0, "{c:?} at {h}:{m}");
            }
            if c.has_solar() {
                for (h, m) in [(12, 0), (12, 15), (13, 0)] {
                    assert!(export(day, h, m) > 0, "{c:?} at {h}:{m}");
                }
                let noon = |q| c.slot(q, day + 12 * 3600);
                let evening = c.slot(Quantity::ImportActive, day + 20 * 3600);
                assert!(noon(Quantity::ImportActive) < evening);
                seen += 1;
            } else {
                assert_eq!(export(day, 12, 0), 0);
            }
        }
    }
    assert!(seen > 0);
}

#[test]
fn instantaneous_matches_the_slot() {
    for seed in 0..200 {
        let c = Consumption::new(seed);
        for k in 0..200 {
            let t = MONDAY + k * 1_234;
            let end = (t / INTERVAL + 1) * INTERVAL;
            let v = c.instantaneous(t);
            let p: i64 = v.active_power_w.iter().map(|&p| i64::from(p)).sum();
            let imp = i64::from(c.slot(Quantity::ImportActive, end));
            let exp = i64::from(c.slot(Quantity::ExportActive, end));
            assert_eq!(p, (imp - exp) * 4);
            if !c.has_solar() {
                assert_eq!(p, imp * 4);
            }
            let q: i64 = v.reactive_power_var.iter().map(|&q| i64::from(q)).sum();
            let rimp = i64::from(c.slot(Quantity::ImportReactive, end));
            let rexp = i64::from(c.slot(Quantity::ExportReactive, end));
            assert_eq!(q, (rimp - rexp) * 4);
            for phase in 0..3 {
                let volts = v.voltage_dv[phase];
                assert!((2231..=2369).contains(&volts), "{volts}");
                // I * V ≈ |S| per phase, within rounding.
                let (pp, qq) = (v.active_power_w[phase], v.reactive_power_var[phase]);
                let s = f64::from(pp).hypot(f64::from(qq));
                let ui = f64::from(v.current_ma[phase]) * f64::from(volts) / 10_000.0;
                assert!((ui - s).abs() <= 0.5, "{ui} vs {s}");
            }
            assert!((49_950..=50_050).contains(&v.frequency_mhz));
            assert!(v.power_factor_milli <= 1000);
        }
    }
    // Voltages change from one second to the next.
    let c = Consumption::new(5);
    let volts: Vec<_> = (0..10)
        .map(|s| c.instantaneous(MONDAY + s).voltage_dv)
        .collect();
    assert!(volts.windows(2).any(|w| w[0] != w[1]));
}

#[test]
fn extreme_times_do_not_panic() {
    let c = Consumption::new(3);
    for t in [
        i64::MIN / 2,
        -1,
        0,
        i64::MAX / 2,
        i64::MIN,
        i64::MAX - INTERVAL,
    ] {
        for q in Quantity::ALL {
            let total = c.cumulative(q, 0, t);
            assert_eq!(
                total,
                c.cumulative(q, 1, t).wrapping_add(c.cumulative(q, 2, t))
            );
            let _ = c.slot(q, t);
        }
        let _ = c.instantaneous(t);
        let _ = tariff_at(t);
        let _ = anomaly(3, 10, t);
    }
    let _ = events(3, i64::MIN, i64::MAX);
    let _ = events(3, i64::MAX - 10, i64::MAX);
    let _ = events(3, i64::MIN, i64::MIN + 10);
}

#[test]
fn registers_hold_their_base_at_the_reference_and_fit_dlms() {
    let mut top = 0;
    for seed in 0..3000 {
        let c = Consumption::new(seed);
        let import = c.cumulative(Quantity::ImportActive, 0, REGISTER_REFERENCE);
        assert!(import < 50_000_000);
        assert_eq!(
            import,
            c.cumulative(Quantity::ImportActive, 0, REGISTER_REFERENCE + 899)
        );
        // Until 2040 every register fits a double-long-unsigned.
        for q in Quantity::ALL {
            top = top.max(c.cumulative(q, 0, 2_208_988_800));
        }
    }
    assert!(top < u64::from(u32::MAX), "{top}");
}

#[test]
fn consumption_is_small() {
    assert!(std::mem::size_of::<Consumption>() <= 64);
}

#[test]
fn anomaly_rate() {
    for per_mille in [0u16, 5, 50, 300] {
        let (mut gaps, mut spikes) = (0u32, 0u32);
        for k in 0..100_000 {
            match anomaly(77, per_mille, MONDAY + k * INTERVAL) {
                Anomaly::Gap => gaps += 1,
                Anomaly::Spike => spikes += 1,
                Anomaly::None => {}
            }
        }
        let expected = f64::from(per_mille) * 50.0; // per kind, of 100,000
        let tolerance = 4.0 * expected.sqrt() + 1.0;
        for n in [gaps, spikes] {
            assert!(
                (f64::from(n) - expected).abs() <= tolerance,
                "{per_mille}: {n}"
            );
        }
        assert_eq!(
            anomaly(77, per_mille, MONDAY),
            anomaly(77, per_mille, MONDAY + 1)
        );
    }
    let all = (0..1000).all(|k| anomaly(1, 1000, k * INTERVAL) != Anomaly::None);
    assert!(all);
}
