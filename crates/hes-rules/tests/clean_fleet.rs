//! The rules against the simulator's consumption model: a clean fleet (households, rooftop
//! solar, small commercial; a week and a day of 15-minute registers, read a day at a time as
//! collection does) is not flagged, and every fault injected into it is.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use dlms::ObisCode;
use hes_model::{Quality, Reading, Source};
use hes_rules::{Rules, Validator};
use hes_sim::data::{anomaly, Anomaly, Consumption, Quantity, SPIKE_WH};

/// 2026-11-02 00:00 UTC, a Monday.
const START: i64 = 1_793_577_600;
const DAYS: i64 = 8;
const METERS: u64 = 400;

const CHANNELS: [(Quantity, ObisCode); 4] = [
    (Quantity::ImportActive, ObisCode::new(1, 0, 1, 8, 0, 255)),
    (Quantity::ExportActive, ObisCode::new(1, 0, 2, 8, 0, 255)),
    (Quantity::ImportReactive, ObisCode::new(1, 0, 3, 8, 0, 255)),
    (Quantity::ExportReactive, ObisCode::new(1, 0, 4, 8, 0, 255)),
];

/// One day of a meter's load profile as the simulator serves it (`per_mille` of the slots
/// anomalous: half missing, half with A+ off by `SPIKE_WH`), and what was injected where.
fn day(seed: u64, per_mille: u16, d: i64) -> (Vec<Reading>, Vec<(i64, Anomaly)>) {
    let c = Consumption::new(seed);
    let meter = format!("M{seed:05}");
    let mut out = Vec::new();
    let mut injected = Vec::new();
    for slot in 1..=96 {
        let t = START + d * 86_400 + slot * 900;
        let a = if per_mille > 0 {
            anomaly(seed, per_mille, t)
        } else {
            Anomaly::None
        };
        if a != Anomaly::None {
            injected.push((t, a));
        }
        if a == Anomaly::Gap {
            continue;
        }
        for (q, obis) in CHANNELS {
            let mut v = c.cumulative(q, 0, t);
            if a == Anomaly::Spike && q == Quantity::ImportActive {
                v += SPIKE_WH;
            }
            out.push(Reading {
                meter: meter.as_str().into(),
                obis,
                class_id: 3,
                attribute: 2,
                time: t,
                // The profile's registers are 32 bits wide.
                value: i64::from(v as u32),
                scaler: 0,
                unit: if q == Quantity::ImportActive || q == Quantity::ExportActive {
                    30
                } else {
                    32
                },
                status: 0,
                source: Source::Scheduled,
                received_at: t + 3_600,
            });
        }
    }
    (out, injected)
}

/// Validates the fleet a day at a time; returns (readings, flagged readings, injected faults
/// missed, readings flagged that no fault explains).
fn run(per_mille: u16) -> (usize, usize, usize, usize) {
    let mut v = Validator::new(Rules::default(), 1_000_000);
    let (mut total, mut flagged, mut missed, mut unexplained) = (0, 0, 0, 0);
    for seed in 1..=METERS {
        let mut after_gap = false;
        // The meter's first entry: nothing before it to be missing or to judge it by.
        let mut first: Option<i64> = None;
        for d in 0..DAYS {
            let (batch, injected) = day(seed, per_mille, d);
            let now = START + (d + 1) * 86_400 + 4 * 3_600;
            let out = v.validate(batch, now);
            total += out.len();
            // The fault each entry time carries, and whether a gap came just before it.
            let fault_at = |t: i64| injected.iter().find(|(at, _)| *at == t).map(|x| x.1);
            let mut times: Vec<i64> = out.iter().map(|x| x.reading.time).collect();
            times.sort_unstable();
            times.dedup();
            for x in &out {
                if !x.quality.is_ok() {
                    flagged += 1;
                }
            }
            for t in times {
                let here: Vec<_> = out.iter().filter(|x| x.reading.time == t).collect();
                let is_first = *first.get_or_insert(t) == t;
                let gap_before =
                    !is_first && (after_gap || fault_at(t - 900) == Some(Anomaly::Gap));
                after_gap = false;
                for x in &here {
                    let q = x.quality;
                    let spike =
                        fault_at(t) == Some(Anomaly::Spike) && x.reading.obis == CHANNELS[0].1;
                    // A channel's first entry has no history to be judged against: a glitch
                    // there shows on the next entry (below it), which is flagged instead.
                    let after_first_spike = first == Some(t - 900)
                        && fault_at(t - 900) == Some(Anomaly::Spike)
                        && x.reading.obis == CHANNELS[0].1;
                    if spike
                        && !is_first
                        && !(q.has(Quality::SPIKE) || q.has(Quality::OUT_OF_RANGE))
                    {
                        missed += 1;
                    }
                    // Every channel of the entry after a gap says so (but the first ever).
                    if gap_before && !q.has(Quality::MISSING_BEFORE) {
                        missed += 1;
                    }
                    let explained = spike || gap_before || after_first_spike;
                    if !q.is_ok() && !explained {
                        unexplained += 1;
                    }
                }
            }
            // A gap at the day's last slot shows on the next day's first entry.
            after_gap = fault_at(START + (d + 1) * 86_400) == Some(Anomaly::Gap);
        }
    }
    (total, flagged, missed, unexplained)
}

#[test]
fn a_clean_fleet_is_not_flagged() {
    let (total, flagged, _, _) = run(0);
    let rate = flagged as f64 / total as f64;
    println!(
        "clean fleet: {flagged} of {total} readings flagged ({:.4} %)",
        rate * 100.0
    );
    assert!(total > 1_000_000 && rate < 1e-4, "{flagged} of {total}");
}

#[test]
fn every_injected_spike_and_gap_is_flagged_and_nothing_else() {
    let (total, flagged, missed, unexplained) = run(10);
    println!(
        "1 % faults: {flagged} of {total} readings flagged, {missed} faults missed, \
         {unexplained} flags without a fault"
    );
    assert_eq!(missed, 0);
    assert!(
        (unexplained as f64) < 1e-4 * total as f64,
        "{unexplained} of {total}"
    );
}
