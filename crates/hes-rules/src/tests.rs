#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use dlms::ObisCode;
use hes_model::{Reading, Source};

use crate::*;

/// 2026-11-27 00:00 UTC.
const T0: i64 = 1_795_737_600;
const NOW: i64 = T0 + 86_400;
const A_PLUS: ObisCode = ObisCode([1, 0, 1, 8, 0, 255]);

fn r(meter: &str, time: i64, value: i64) -> Reading {
    Reading {
        meter: meter.into(),
        obis: A_PLUS,
        class_id: 3,
        attribute: 2,
        time,
        value,
        scaler: 0,
        unit: 30,
        status: 0,
        source: Source::Scheduled,
        received_at: time + 60,
    }
}

fn series(meter: &str, n: i64, step: i64) -> Vec<Reading> {
    (0..n)
        .map(|k| r(meter, T0 + k * 900, 1000 + k * step))
        .collect()
}

fn q_at(v: &[ValidatedReading], t: i64) -> Quality {
    v.iter().find(|x| x.reading.time == t).unwrap().quality
}

fn validator() -> Validator {
    Validator::new(Rules::default(), 100_000)
}

/// A small deterministic PRNG (64-bit LCG, high bits).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

// ---- validate ----

#[test]
fn a_clean_series_passes_and_gives_its_intervals() {
    let v = validator().validate(series("M", 8, 50), NOW);
    assert!(v.iter().all(|x| x.quality.is_ok()), "{v:?}");
    let iv = intervals(&v);
    assert_eq!(iv.len(), 7);
    assert!(iv.iter().all(|i| i.value == 50 && i.seconds() == 900));
    assert!(iv.iter().all(|i| i.channel == "energy.active.import"));
}

#[test]
fn a_gap_flags_the_entry_after_it() {
    let mut s = series("M", 10, 50);
    // One interval missing before 3, three before 9.
    s.remove(8);
    s.remove(7);
    s.remove(6);
    s.remove(2);
    let v = validator().validate(s, NOW);
    assert!(q_at(&v, T0 + 3 * 900).has(Quality::MISSING_BEFORE));
    assert!(q_at(&v, T0 + 9 * 900).has(Quality::MISSING_BEFORE));
    for k in [1, 4, 5] {
        assert!(!q_at(&v, T0 + k * 900).has(Quality::MISSING_BEFORE), "{k}");
    }
    let iv = intervals(&v);
    let spans: Vec<(i64, i64)> = iv.iter().map(|i| (i.seconds(), i.value)).collect();
    assert_eq!(
        spans,
        vec![(900, 50), (1800, 100), (900, 50), (900, 50), (3600, 200)]
    );
}

#[test]
fn a_spike_is_flagged_only_above_the_factor_and_the_floor() {
    // A day of history at 50 Wh per interval, with a 400 Wh peak once.
    let history = |m: &str| {
        let mut s = series(m, 100, 50);
        s[50..].iter_mut().for_each(|x| x.value += 350);
        let top = s.last().unwrap().value;
        (s, top)
    };
    let at = |k: i64| T0 + (99 + k) * 900;
    // 10 × the 400 Wh peak = 4,000: 5,000 is a spike, and the next is back to normal.
    let (mut s, top) = history("M");
    s.push(r("M", at(1), top + 5_000));
    s.push(r("M", at(2), top + 5_000 + 50));
    let v = validator().validate(s, NOW + 86_400);
    assert!(q_at(&v, at(1)).has(Quality::SPIKE));
    assert!(q_at(&v, at(2)).is_ok(), "{:?}", q_at(&v, at(2)));
    // 3,000 is no spike.
    let (mut s, top) = history("M2");
    s.push(r("M2", at(1), top + 3_000));
    let v = validator().validate(s, NOW + 86_400);
    assert!(q_at(&v, at(1)).is_ok(), "below 10 × the peak");
    // The floor: on a quiet channel (10 Wh per interval), 900 Wh is no spike.
    let mut quiet = series("Q", 100, 10);
    let top = quiet.last().unwrap().value;
    quiet.push(r("Q", T0 + 100 * 900, top + 900));
    let v = validator().validate(quiet, NOW + 86_400);
    assert!(
        !q_at(&v, T0 + 100 * 900).has(Quality::SPIKE),
        "below the floor"
    );
    // Without a day of history nothing is judged against it (a meter's first ramp).
    let v = validator().validate(
        vec![r("N", T0, 0), r("N", T0 + 900, 0), r("N", T0 + 1800, 7000)],
        NOW,
    );
    assert!(q_at(&v, T0 + 1800).is_ok());
}

/// Rooftop solar exports nothing all night and ramps up every morning; a shop opens after a
/// quiet night: a week of either raises nothing, and a real spike on such a channel still
/// does.
#[test]
fn daily_cycles_are_no_spikes() {
    let day = 96i64;
    // Export: zero at night, a ramp to 1.2 kWh per interval at noon.
    let solar = |slot: i64| -> i64 {
        let s = slot % day;
        if (28..68).contains(&s) {
            let x = (s - 28) as f64 / 40.0 * std::f64::consts::PI;
            (x.sin() * 1200.0) as i64
        } else {
            0
        }
    };
    // A shop: 30 Wh at night, 2.5 kWh per interval from 08:00 to 20:00.
    let shop = |slot: i64| -> i64 {
        if (32..80).contains(&(slot % day)) {
            2500
        } else {
            30
        }
    };
    for (name, f) in [("SOLAR", &solar as &dyn Fn(i64) -> i64), ("SHOP", &shop)] {
        let mut value = 0;
        let mut s = Vec::new();
        for k in 0..7 * day {
            value += f(k);
            s.push(r(name, T0 + k * 900, value));
        }
        // At midnight of the eighth day, 40 kWh in one interval: a spike.
        let at = T0 + 7 * day * 900;
        s.push(r(name, at, value + 40_000));
        let v = Validator::new(Rules::default(), 100_000).validate(s, T0 + 9 * 86_400);
        let flagged: Vec<_> = v
            .iter()
            .filter(|x| x.reading.time != at && !x.quality.is_ok())
            .map(|x| (x.reading.time, x.quality))
            .collect();
        assert!(flagged.is_empty(), "{name}: {flagged:?}");
        assert!(q_at(&v, at).has(Quality::SPIKE), "{name}");
    }
}

#[test]
fn a_register_going_down_is_negative_and_the_next_is_judged_against_the_last_good() {
    let v = validator().validate(
        vec![
            r("M", T0, 1000),
            r("M", T0 + 900, 1050),
            r("M", T0 + 1800, 900),
            r("M", T0 + 2700, 1100),
        ],
        NOW,
    );
    assert!(q_at(&v, T0 + 1800).has(Quality::NEGATIVE_CONSUMPTION));
    assert!(!q_at(&v, T0 + 1800).has(Quality::ROLLOVER));
    let after = q_at(&v, T0 + 2700);
    assert!(!after.has(Quality::NEGATIVE_CONSUMPTION), "{after:?}");
    let iv = intervals(&v);
    assert_eq!(iv.iter().map(|i| i.value).sum::<i64>(), 100);
    // 1050 → 1100 across the skipped entry: a two-interval span.
    assert_eq!(iv.last().unwrap().seconds(), 1800);
}

#[test]
fn a_wrap_is_a_rollover_and_consumption_is_taken_modulo() {
    let top = (1i64 << 32) - 100;
    let v = validator().validate(
        vec![
            r("W", T0, top - 50),
            r("W", T0 + 900, top),
            r("W", T0 + 1800, 30),
        ],
        NOW,
    );
    let q = q_at(&v, T0 + 1800);
    assert!(q.has(Quality::ROLLOVER) && !q.has(Quality::NEGATIVE_CONSUMPTION));
    let iv = intervals(&v);
    assert_eq!(iv.last().unwrap().value, 130);
    assert!(iv.last().unwrap().quality.has(Quality::ROLLOVER));
    // A drop from the middle of the range is no wrap.
    let v = validator().validate(vec![r("W", T0, 1 << 31), r("W", T0 + 900, 30)], NOW);
    assert!(q_at(&v, T0 + 900).has(Quality::NEGATIVE_CONSUMPTION));
}

#[test]
fn duplicates_and_conflicts_within_and_across_batches() {
    let mut val = validator();
    let v = val.validate(vec![r("M", T0, 10), r("M", T0, 10), r("M", T0, 11)], NOW);
    // Order within the batch: by value, so 10 first; the other 10 duplicates; 11 conflicts.
    assert_eq!(v.len(), 3);
    assert!(v[0].quality.is_ok());
    assert!(v[1].quality.has(Quality::DUPLICATE) && !v[1].quality.has(Quality::CONFLICT));
    assert!(v[2].quality.has(Quality::CONFLICT) && !v[2].quality.has(Quality::DUPLICATE));
    let v = val.validate(vec![r("M", T0, 10), r("M", T0, 12)], NOW);
    assert!(v[0].quality.has(Quality::DUPLICATE));
    assert!(v[1].quality.has(Quality::CONFLICT));
}

#[test]
fn the_key_memory_is_bounded() {
    let mut val = Validator::new(Rules::default(), 2);
    val.validate(
        vec![r("M", T0, 10), r("M", T0 + 900, 20), r("M", T0 + 1800, 30)],
        NOW,
    );
    // T0 was forgotten (oldest first); T0 + 1800 is remembered.
    let v = val.validate(vec![r("M", T0, 10)], NOW);
    assert!(!v[0].quality.has(Quality::DUPLICATE));
    let v = val.validate(vec![r("M", T0 + 1800, 30)], NOW);
    assert!(v[0].quality.has(Quality::DUPLICATE));
}

#[test]
fn future_and_too_old_stamps() {
    let rules = Rules::default();
    let mut late = r("M", NOW + 3600, 40);
    late.received_at = NOW + 3600;
    let mut edge = r("M", NOW + 300, 41);
    edge.received_at = NOW + 300;
    let mut old = r("M", NOW - rules.horizon - 900, 1);
    old.received_at = old.time;
    let mut recent = r("M", NOW - rules.horizon + 900, 2);
    recent.received_at = recent.time;
    let v = validator().validate(vec![late, edge, old, recent], NOW);
    assert!(q_at(&v, NOW + 3600).has(Quality::FUTURE));
    assert!(
        !q_at(&v, NOW + 300).has(Quality::FUTURE),
        "within tolerance"
    );
    assert!(q_at(&v, NOW - rules.horizon - 900).has(Quality::TOO_OLD));
    assert!(!q_at(&v, NOW - rules.horizon + 900).has(Quality::TOO_OLD));
}

#[test]
fn clock_suspect_off_boundary_or_implausible_reception() {
    let mut ahead = r("M", T0 + 2700, 1150);
    ahead.received_at = T0 + 900; // stamped half an hour after it arrived
    let mut lagging = r("M", T0 + 3600, 1200);
    lagging.received_at = T0 + 3600 + 63 * 86_400;
    let v = validator().validate(
        vec![
            r("M", T0, 1000),
            r("M", T0 + 900, 1050),
            r("M", T0 + 1337, 1070),
            ahead,
            lagging,
            r("M", T0 + 4500, 1250),
        ],
        NOW,
    );
    assert!(q_at(&v, T0 + 1337).has(Quality::CLOCK_SUSPECT));
    assert!(q_at(&v, T0 + 2700).has(Quality::CLOCK_SUSPECT));
    assert!(q_at(&v, T0 + 3600).has(Quality::CLOCK_SUSPECT));
    assert!(!q_at(&v, T0 + 900).has(Quality::CLOCK_SUSPECT));
    // Suspect entries take no part in the intervals: 1050 → 1250 is one span of 4.
    let iv = intervals(&v);
    assert_eq!(iv.len(), 2);
    assert_eq!((iv[1].seconds(), iv[1].value), (3600, 200));
    // A voltage read at any second is fine.
    let mut volt = r("M", T0 + 1337, 2301);
    volt.obis = ObisCode([1, 0, 32, 7, 0, 255]);
    volt.received_at = T0 + 1340;
    let v = validator().validate(vec![volt], NOW);
    assert!(v[0].quality.is_ok());
}

#[test]
fn out_of_range_above_max_power_times_interval() {
    let mut rules = Rules {
        max_power_w: 40_000.0, // 10 kWh per 15 min
        ..Rules::default()
    };
    rules.meter_max_power_w.insert("BIG".into(), 400_000.0);
    let mut val = Validator::new(rules, 1000);
    let v = val.validate(
        vec![
            r("M", T0, 0),
            r("M", T0 + 900, 10_000),
            r("M", T0 + 1800, 20_001),
            // Measured from the last usable entry (T0 + 900, the one after is out of range):
            // three intervals, up to 30 kWh.
            r("M", T0 + 3600, 35_000),
            r("BIG", T0, 0),
            r("BIG", T0 + 900, 20_001),
        ],
        NOW,
    );
    let m: Vec<_> = v
        .iter()
        .filter(|x| x.reading.meter.0 == "M")
        .cloned()
        .collect();
    assert!(!q_at(&m, T0 + 900).has(Quality::OUT_OF_RANGE));
    assert!(q_at(&m, T0 + 1800).has(Quality::OUT_OF_RANGE));
    assert!(!q_at(&m, T0 + 3600).has(Quality::OUT_OF_RANGE));
    let big: Vec<_> = v
        .iter()
        .filter(|x| x.reading.meter.0 == "BIG")
        .cloned()
        .collect();
    assert!(!q_at(&big, T0 + 900).has(Quality::OUT_OF_RANGE));
}

#[test]
fn batches_in_any_order_give_the_same_result_and_drop_nothing() {
    let mut all = Vec::new();
    for m in 0..20 {
        all.extend(series(&format!("M{m}"), 150, m + 3));
        all.push(r(&format!("M{m}"), T0, 1000)); // a duplicate
        let mut conflict = r(&format!("M{m}"), T0 + 900, 7);
        conflict.received_at += 1;
        all.push(conflict);
    }
    let mut rng = Lcg(7);
    let mut shuffled = all.clone();
    rng.shuffle(&mut shuffled);
    let now = T0 + 150 * 900;
    let a = validator().validate(all.clone(), now);
    let b = validator().validate(shuffled, now);
    assert_eq!(a.len(), all.len());
    assert_eq!(a, b);
    let total: i64 = intervals(&a).iter().map(|i| i.value).sum();
    let expected: i64 = (0..20).map(|m| 149 * (m + 3)).sum();
    assert_eq!(total, expected, "intervals sum to the register differences");
}

// ---- transform ----

#[test]
fn si_values_and_channel_names() {
    let mut x = r("M", T0, 12_345);
    x.scaler = -2;
    assert!((to_si(&x) - 123.45).abs() < 1e-9);
    x.scaler = 3;
    assert!((to_si(&x) - 12_345_000.0).abs() < 1e-6);
    let o = |c, d, e| ObisCode([1, 0, c, d, e, 255]);
    assert_eq!(channel(&o(1, 8, 0)), Some("energy.active.import"));
    assert_eq!(channel(&o(2, 8, 0)), Some("energy.active.export"));
    assert_eq!(channel(&o(3, 8, 0)), Some("energy.reactive.import"));
    assert_eq!(channel(&o(4, 8, 2)), Some("energy.reactive.export.t2"));
    assert_eq!(channel(&o(1, 8, 1)), Some("energy.active.import.t1"));
    assert_eq!(channel(&o(1, 8, 9)), None);
    assert_eq!(channel(&o(32, 7, 0)), Some("voltage.l1"));
    assert_eq!(channel(&o(72, 7, 0)), Some("voltage.l3"));
    assert_eq!(channel(&o(51, 7, 0)), Some("current.l2"));
    assert_eq!(channel(&ObisCode([0, 0, 1, 0, 0, 255])), None);
}

#[test]
fn interval_math_over_channels_scalers_and_late_data() {
    let mut exp: Vec<Reading> = series("M", 3, 7);
    for x in &mut exp {
        x.obis = ObisCode([1, 0, 2, 8, 0, 255]);
        x.scaler = 1;
    }
    let mut s = series("M", 5, 20);
    let late = s.remove(2);
    s.extend(exp);
    let mut val = validator();
    let mut v = val.validate(s, NOW);
    let iv = intervals(&v);
    let imp: Vec<_> = iv
        .iter()
        .filter(|i| i.channel == "energy.active.import")
        .collect();
    let ex: Vec<_> = iv
        .iter()
        .filter(|i| i.channel == "energy.active.export")
        .collect();
    assert_eq!(ex.len(), 2);
    assert!(ex
        .iter()
        .all(|i| i.value == 7 && (i.wh() - 70.0).abs() < 1e-9));
    assert_eq!(imp.len(), 3);
    assert!(imp[1].quality.has(Quality::MISSING_BEFORE) && imp[1].value == 40);
    // The late entry fills the gap: recomputed, the span splits and the flag goes.
    v.extend(val.validate(vec![late], NOW));
    let iv = intervals(&v);
    let imp: Vec<_> = iv
        .iter()
        .filter(|i| i.channel == "energy.active.import")
        .collect();
    assert_eq!(imp.len(), 4);
    assert!(
        imp.iter().all(|i| i.value == 20 && i.quality.is_ok()),
        "{imp:?}"
    );
}

// ---- aggregate ----

fn day_of(meter: &str, skip: &[i64]) -> Vec<Reading> {
    (0..=96)
        .filter(|k| !skip.contains(k))
        .map(|k| r(meter, T0 + k * 900, 1000 + k * 10))
        .collect()
}

#[test]
fn aggregate_completeness_and_late_data_update() {
    let mut val = validator();
    let all = day_of("M", &[]);
    let (late, early): (Vec<_>, Vec<_>) = all.into_iter().partition(|x| x.time == T0 + 41 * 900);
    let mut v = val.validate(early, NOW);
    let day = aggregate(&intervals(&v), Period::Day);
    assert_eq!(day.len(), 1, "the span lies inside the day");
    assert_eq!(day[0].period_start, T0);
    assert!(!day[0].complete);
    assert_eq!(day[0].count, 94);
    assert!(
        (day[0].total - 960.0).abs() < 1e-9,
        "measured energy still counted"
    );
    assert!(day[0].quality_worst.has(Quality::MISSING_BEFORE));
    let hours = aggregate(&intervals(&v), Period::Hour);
    assert_eq!(hours.len(), 24);
    assert_eq!(hours.iter().filter(|h| !h.complete).count(), 1);
    assert!(hours
        .iter()
        .filter(|h| h.complete)
        .all(|h| (h.total - 40.0).abs() < 1e-9));
    // The late entry arrives: recomputed over the full set, the day is complete.
    v.extend(val.validate(late, NOW));
    let day = aggregate(&intervals(&v), Period::Day);
    assert!(day[0].complete && day[0].count == 96);
    assert!((day[0].total - 960.0).abs() < 1e-9);
    assert!(day[0].quality_worst.is_ok());
    assert!(aggregate(&intervals(&v), Period::Hour)
        .iter()
        .all(|h| h.complete));
}

#[test]
fn a_gap_across_a_period_boundary_is_not_attributed() {
    let v = validator().validate(day_of("M", &[3, 4, 5]), NOW);
    let hours = aggregate(&intervals(&v), Period::Hour);
    // The span 02:30 → 01:30 crosses from hour 0 to hour 1: neither gets its energy.
    assert!((hours[0].total - 20.0).abs() < 1e-9 && !hours[0].complete);
    assert!((hours[1].total - 20.0).abs() < 1e-9 && !hours[1].complete);
    assert!(hours[2].complete);
    // Estimated, both are complete and every interval counts.
    let hours = aggregate(&estimate_gaps(&intervals(&v)), Period::Hour);
    assert!(hours
        .iter()
        .all(|h| h.complete && (h.total - 40.0).abs() < 1e-9));
    assert!(hours[0].quality_worst.has(Quality::ESTIMATED));
    assert!(!hours[2].quality_worst.has(Quality::ESTIMATED));
}

#[test]
fn month_periods_follow_the_calendar() {
    // 2024-02-29 12:00 UTC (leap year).
    let t = 1_709_208_000;
    assert_eq!(Period::Month.start(t), 1_706_745_600); // 2024-02-01
    assert_eq!(Period::Month.end(1_706_745_600), 1_709_251_200); // 2024-03-01
    assert_eq!(Period::Month.end(1_733_011_200), 1_735_689_600); // Dec 2024 → Jan 2025
    assert_eq!(Period::Day.start(t), 1_709_164_800);
    assert_eq!(Period::Hour.start(t + 59), t);
    let m = aggregate(
        &intervals(&validator().validate(day_of("M", &[]), NOW)),
        Period::Month,
    );
    assert_eq!(m.len(), 1);
    assert!(!m[0].complete, "one day of a month");
    assert_eq!(m[0].count, 96);
}

// ---- estimate ----

#[test]
fn estimation_sums_exactly_and_is_flagged() {
    let v = validator().validate(
        vec![
            r("M", T0, 1000),
            r("M", T0 + 900, 1010),
            r("M", T0 + 900 * 4, 1010 + 100),
        ],
        NOW,
    );
    let est = estimate_gaps(&intervals(&v));
    assert_eq!(est.len(), 4);
    let vals: Vec<i64> = est.iter().map(|i| i.value).collect();
    assert_eq!(vals, vec![10, 34, 33, 33]);
    assert!(!est[0].quality.has(Quality::ESTIMATED));
    for (k, e) in est[1..].iter().enumerate() {
        assert!(e.quality.has(Quality::ESTIMATED) && !e.quality.has(Quality::MISSING_BEFORE));
        assert_eq!(e.start, T0 + 900 * (k as i64 + 1));
        assert_eq!(e.seconds(), 900);
    }
}

// ---- properties ----

#[test]
fn property_nothing_dropped_and_sums_equal_register_differences() {
    let mut rng = Lcg(0x5eed);
    let rules = Rules::default();
    let m = rules.register_modulus;
    for case in 0..3000 {
        let meter = format!("P{case}");
        let n = 2 + rng.below(60) as i64;
        let mut value = if rng.below(4) == 0 {
            m - 1 - rng.below(5000) as i64
        } else {
            rng.below(1 << 30) as i64
        };
        let first = value;
        let mut readings = Vec::new();
        let mut unwrapped = 0i64;
        let mut k = 0;
        let mut kept = 0;
        while kept < n {
            // Keep the first and last entries so the difference is known.
            let keep = kept == 0 || kept == n - 1 || rng.below(5) != 0;
            if keep {
                let mut x = r(&meter, T0 + k * 900, value);
                x.received_at = x.time + rng.below(3600) as i64;
                readings.push(x.clone());
                if rng.below(10) == 0 {
                    readings.push(x);
                }
            }
            kept += 1;
            k += 1;
            let step = match rng.below(20) {
                0 => 0,
                1 => 2000 + rng.below(3000) as i64,
                _ => rng.below(300) as i64,
            };
            if kept < n {
                unwrapped += step;
                value = (value + step) % m;
            }
        }
        let _ = first;
        let inputs = readings.len();
        rng.shuffle(&mut readings);
        // In a few batches.
        let mut val = Validator::new(rules.clone(), 10_000);
        let mut out = Vec::new();
        while !readings.is_empty() {
            let take = (1 + rng.below(readings.len() as u64)) as usize;
            let batch: Vec<Reading> = readings.drain(..take).collect();
            let got = val.validate(batch.clone(), T0 + k * 900 + 3600);
            assert_eq!(got.len(), batch.len(), "case {case}");
            out.extend(got);
        }
        assert_eq!(out.len(), inputs, "case {case}");
        assert!(
            !out.iter()
                .any(|x| x.quality.has(Quality::NEGATIVE_CONSUMPTION)),
            "case {case}"
        );
        let iv = intervals(&out);
        let measured: i64 = iv.iter().map(|i| i.value).sum();
        assert_eq!(measured, unwrapped, "case {case}");
        let est = estimate_gaps(&iv);
        assert!(est.iter().all(|i| i.seconds() == 900), "case {case}");
        assert_eq!(est.len() as i64, k - 1, "case {case}");
        assert_eq!(
            est.iter().map(|i| i.value).sum::<i64>(),
            unwrapped,
            "case {case}"
        );
    }
}
