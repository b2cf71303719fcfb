//! The event logs: events generated per day from the seed alone (outages, tamper, voltage
//! quality), so any window gives the same events for the same instants.

use super::*;

/// The event logs of the simulated meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventLog {
    /// Standard event log, 0.0.99.98.0.255.
    Standard,
    /// Fraud detection log, 0.0.99.98.1.255.
    Fraud,
    /// Power quality log, 0.0.99.98.4.255.
    PowerQuality,
}

impl EventLog {
    /// The logical name of the log's profile generic object.
    pub fn obis(self) -> [u8; 6] {
        match self {
            EventLog::Standard => [0, 0, 99, 98, 0, 255],
            EventLog::Fraud => [0, 0, 99, 98, 1, 255],
            EventLog::PowerQuality => [0, 0, 99, 98, 4, 255],
        }
    }
}

/// Event codes (IDIS-like numbering):
///
/// | code | log | event |
/// |---|---|---|
/// | 1 | Standard | power down (all phases) |
/// | 2 | Standard | power up |
/// | 40 | Fraud | terminal cover removed |
/// | 41 | Fraud | terminal cover closed |
/// | 76 | PowerQuality | under-voltage (sag) L1 |
/// | 77 | PowerQuality | under-voltage (sag) L2 |
/// | 78 | PowerQuality | under-voltage (sag) L3 |
/// | 79 | PowerQuality | over-voltage (swell) L1 |
/// | 80 | PowerQuality | over-voltage (swell) L2 |
/// | 81 | PowerQuality | over-voltage (swell) L3 |
pub mod code {
    pub const POWER_DOWN: u16 = 1;
    pub const POWER_UP: u16 = 2;
    pub const TERMINAL_COVER_REMOVED: u16 = 40;
    pub const TERMINAL_COVER_CLOSED: u16 = 41;
    /// Under-voltage L1; L2 and L3 follow.
    pub const UNDER_VOLTAGE_L1: u16 = 76;
    /// Over-voltage L1; L2 and L3 follow.
    pub const OVER_VOLTAGE_L1: u16 = 79;
}

/// One entry of an event log; `code` is one of [`code`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event {
    pub time: i64,
    pub log: EventLog,
    pub code: u16,
}

/// The events generated on one day (days since the epoch), possibly ending after it.
pub(super) fn day_events(seed: u64, day: i64, out: &mut Vec<Event>) {
    let start = day.saturating_mul(DAY);
    let at = |offset: u64| start.saturating_add(offset as i64);
    // About one day in 20: a power outage of one minute to four hours.
    let mut rng = Rng(hash(seed, SALT_OUTAGE, day));
    if rng.below(20) == 0 {
        let down = at(rng.below(DAY as u64));
        let up = down.saturating_add(60 * (1 + rng.below(240)) as i64);
        out.push(Event {
            time: down,
            log: EventLog::Standard,
            code: code::POWER_DOWN,
        });
        out.push(Event {
            time: up,
            log: EventLog::Standard,
            code: code::POWER_UP,
        });
    }
    // About one day in 200: the terminal cover is opened, closed again within three hours.
    let mut rng = Rng(hash(seed, SALT_FRAUD, day));
    if rng.below(200) == 0 {
        let open = at(rng.below(DAY as u64));
        let closed = open.saturating_add(60 * (1 + rng.below(180)) as i64);
        let (log, removed) = (EventLog::Fraud, code::TERMINAL_COVER_REMOVED);
        out.push(Event {
            time: open,
            log,
            code: removed,
        });
        out.push(Event {
            time: closed,
            log,
            code: code::TERMINAL_COVER_CLOSED,
        });
    }
    // About one day in 30: one to three voltage sags or swells.
    let mut rng = Rng(hash(seed, SALT_QUALITY, day));
    if rng.below(30) == 0 {
        for _ in 0..1 + rng.below(3) {
            let time = at(rng.below(DAY as u64));
            let code = code::UNDER_VOLTAGE_L1 + rng.below(6) as u16;
            out.push(Event {
                time,
                log: EventLog::PowerQuality,
                code,
            });
        }
    }
}

/// A meter's events with `from <= time < to`, sorted by time (then log and code). Each day's
/// events depend only on the seed and the day, so any window gives the same events for the
/// same instants. At most the last 400 days of a longer window are generated.
pub fn events(seed: u64, from: i64, to: i64) -> Vec<Event> {
    let mut out = Vec::new();
    if to <= from {
        return out;
    }
    let from = from.max(to.saturating_sub(EVENT_DAYS * DAY));
    // A pair started the day before `from` may end inside the window (durations < 1 day).
    let first = from.div_euclid(DAY) - 1;
    let last = (to - 1).div_euclid(DAY);
    for day in first..=last {
        day_events(seed, day, &mut out);
    }
    out.retain(|e| (from..to).contains(&e.time));
    out.sort_by_key(|e| (e.time, e.log, e.code));
    out
}

#[cfg(test)]
mod tests {
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
    fn events_are_deterministic_and_window_independent() {
        let (a, b, c) = (
            MONDAY - 200 * DAY,
            MONDAY - 77 * DAY + 12_345,
            MONDAY + 100 * DAY,
        );
        for seed in 0..30 {
            let all = events(seed, a, c);
            assert_eq!(all, events(seed, a, c));
            let mut joined = events(seed, a, b);
            joined.extend(events(seed, b, c));
            assert_eq!(all, joined, "seed {seed}");
            assert!(all.windows(2).all(|w| w[0].time <= w[1].time));
            assert!(all.iter().all(|e| (a..c).contains(&e.time)));
            for e in &all {
                let expected = match e.code {
                    1 | 2 => EventLog::Standard,
                    40 | 41 => EventLog::Fraud,
                    76..=81 => EventLog::PowerQuality,
                    other => panic!("unexpected code {other}"),
                };
                assert_eq!(e.log, expected);
            }
        }
        // A window opening between a power down and its power up still shows the up, also
        // when the up falls on the next day (and the window starts on that day).
        let (seed, down, up) = (0..)
            .find_map(|s| {
                let all = events(s, a, c);
                all.windows(2).find_map(|w| {
                    let crosses = w[0].time.div_euclid(DAY) < w[1].time.div_euclid(DAY);
                    let pair = w[0].code == code::POWER_DOWN && w[1].code == code::POWER_UP;
                    (pair && crosses).then_some((s, w[0].time, w[1].time))
                })
            })
            .unwrap();
        for start in [down + 1, up.div_euclid(DAY) * DAY, up] {
            let after = events(seed, start, up + 1);
            let first = after.iter().find(|e| e.log == EventLog::Standard).unwrap();
            assert_eq!(
                (first.time, first.code),
                (up, code::POWER_UP),
                "from {start}"
            );
        }
    }

    #[test]
    fn event_rates() {
        let (mut outages, mut frauds, mut quality_days) = (0, 0, 0);
        for seed in 0..100 {
            let all = events(seed, MONDAY - 365 * DAY, MONDAY);
            outages += all.iter().filter(|e| e.code == code::POWER_DOWN).count();
            frauds += all
                .iter()
                .filter(|e| e.code == code::TERMINAL_COVER_REMOVED)
                .count();
            let mut days: Vec<i64> = all
                .iter()
                .filter(|e| e.log == EventLog::PowerQuality)
                .map(|e| e.time.div_euclid(DAY))
                .collect();
            days.dedup();
            quality_days += days.len();
        }
        // 36,500 meter-days: expected 1825 outages, 182 frauds, 1217 power quality days.
        assert!((1600..2050).contains(&outages), "{outages}");
        assert!((120..250).contains(&frauds), "{frauds}");
        assert!((1050..1400).contains(&quality_days), "{quality_days}");
        // Longer windows are cut to their last 400 days.
        let long = events(1, MONDAY - 1000 * DAY, MONDAY);
        assert_eq!(long, events(1, MONDAY - 400 * DAY, MONDAY));
        assert_eq!(EventLog::Fraud.obis(), [0, 0, 99, 98, 1, 255]);
    }
}
