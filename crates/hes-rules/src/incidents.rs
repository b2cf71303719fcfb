//! Meter events correlated into incidents: the event that starts a condition (a cover removed,
//! a power failure) and the one that ends it become one incident with a duration; the same
//! event arriving twice (read from the meter's log and pushed as an alarm) counts once.
//! Information events that end nothing make no incident.

use std::collections::HashMap;

use hes_model::event_class::{classify, known, EventClass, CODES};

/// The same event from another log (the fraud log and the alarm push) within this many
/// seconds is the same event.
pub const SAME_EVENT_S: i64 = 120;

/// One meter event, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventIn {
    pub meter: String,
    pub log: String,
    pub time: i64,
    pub code: u16,
}

/// A condition at a meter: when it started, when it ended (`None`: still open), and how many
/// stored events it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub meter: String,
    /// The code of the event that started it.
    pub code: u16,
    pub class: EventClass,
    pub started: i64,
    pub ended: Option<i64>,
    pub events: u32,
}

impl Incident {
    /// Seconds from start to end (to `now` when open).
    pub fn duration(&self, now: i64) -> i64 {
        self.ended
            .unwrap_or(now)
            .saturating_sub(self.started)
            .max(0)
    }
}

/// The code a code ends, if it ends one.
fn ends(code: u16) -> Option<u16> {
    CODES
        .iter()
        .find(|k| k.ended_by == Some(code))
        .map(|k| k.code)
}

/// Correlates `events` (any order, any meters) into incidents, sorted by meter and start.
pub fn incidents(events: &[EventIn]) -> Vec<Incident> {
    let mut by_meter: HashMap<&str, Vec<&EventIn>> = HashMap::new();
    for e in events {
        by_meter.entry(e.meter.as_str()).or_default().push(e);
    }
    let mut out = Vec::new();
    for (meter, mut list) in by_meter {
        list.sort_by_key(|e| (e.time, e.code, e.log.as_str()));
        let mut mine: Vec<Incident> = Vec::new();
        for e in list {
            let class = classify(&e.log, e.code);
            if let Some(started_by) = ends(e.code) {
                // Closes the oldest open one it ends; a copy of an end just counts.
                if let Some(i) = mine
                    .iter_mut()
                    .find(|i| i.code == started_by && i.ended.is_none())
                {
                    i.ended = Some(e.time);
                    i.events += 1;
                } else if let Some(i) = mine.iter_mut().rev().find(|i| {
                    i.code == started_by && i.ended.is_some_and(|t| e.time - t <= SAME_EVENT_S)
                }) {
                    i.events += 1;
                }
                continue;
            }
            if class == EventClass::Info {
                continue;
            }
            // A copy of the start (from another log) joins the incident it repeats.
            if let Some(i) = mine
                .iter_mut()
                .rev()
                .find(|i| i.code == e.code && (e.time - i.started).abs() <= SAME_EVENT_S)
            {
                i.events += 1;
                continue;
            }
            let paired = known(e.code).is_some_and(|k| k.ended_by.is_some());
            mine.push(Incident {
                meter: meter.to_string(),
                code: e.code,
                class,
                started: e.time,
                // A one-off (a replay attack, a voltage excursion) is over when it happens.
                ended: if paired { None } else { Some(e.time) },
                events: 1,
            });
        }
        out.extend(mine);
    }
    out.sort_by(|a, b| {
        (a.meter.as_str(), a.started, a.code).cmp(&(b.meter.as_str(), b.started, b.code))
    });
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;
    use hes_model::event_class::{FRAUD_LOG, POWER_QUALITY_LOG, STANDARD_LOG};

    const PUSH: &str = "0.0.25.9.1.255";

    fn e(meter: &str, log: &str, time: i64, code: u16) -> EventIn {
        EventIn {
            meter: meter.into(),
            log: log.into(),
            time,
            code,
        }
    }

    #[test]
    fn a_tamper_read_and_pushed_is_one_incident_with_a_duration() {
        let v = incidents(&[
            e("M1", PUSH, 1_000, 40),
            e("M1", FRAUD_LOG, 1_000, 40),
            e("M1", PUSH, 1_300, 41),
            e("M1", FRAUD_LOG, 1_300, 41),
        ]);
        assert_eq!(
            v,
            vec![Incident {
                meter: "M1".into(),
                code: 40,
                class: EventClass::Alarm,
                started: 1_000,
                ended: Some(1_300),
                events: 4,
            }]
        );
        assert_eq!(v[0].duration(9_999), 300);
    }

    #[test]
    fn outages_pair_up_open_ones_stay_open_and_info_makes_nothing() {
        let v = incidents(&[
            e("M2", STANDARD_LOG, 100, 1),
            e("M2", STANDARD_LOG, 160, 2),
            e("M2", STANDARD_LOG, 5_000, 1),
            e("M2", STANDARD_LOG, 6_000, 18), // firmware activated: information
            e("M3", FRAUD_LOG, 50, 42),
            e("M3", POWER_QUALITY_LOG, 70, 79),
            e("M3", FRAUD_LOG, 90, 43),
            e("M3", STANDARD_LOG, 95, 2), // a power up with no failure seen: nothing
        ]);
        let summary: Vec<_> = v
            .iter()
            .map(|i| (i.meter.as_str(), i.code, i.class, i.started, i.ended))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("M2", 1, EventClass::Warning, 100, Some(160)),
                ("M2", 1, EventClass::Warning, 5_000, None),
                ("M3", 42, EventClass::Alarm, 50, Some(90)),
                ("M3", 79, EventClass::Warning, 70, Some(70)),
            ]
        );
    }

    #[test]
    fn order_does_not_matter_and_unknown_pushed_codes_are_alarms() {
        let mut list = vec![
            e("M4", PUSH, 500, 41),
            e("M4", PUSH, 200, 40),
            e("M4", PUSH, 300, 999),
        ];
        let a = incidents(&list);
        list.reverse();
        assert_eq!(a, incidents(&list));
        assert_eq!(a.len(), 2);
        assert_eq!((a[1].code, a[1].class), (999, EventClass::Alarm));
    }
}
