//! Schedules: which reads run for which meters, when. A schedule names a group of meters (or
//! all), a read, a start rule (cron, or a fixed period), a collection window over which its
//! meters are spread (each meter at a fixed place in the window, from a hash of its id, so load
//! is even and a meter is read at the same time each cycle) and a random jitter on top. Turning
//! a schedule into jobs needs the registry and an engine: that is the collector's part.
//!
//! Cron expressions have five fields, UTC: minute hour day-of-month month day-of-week, each `*`,
//! a number, a range `a-b`, a list `a,b,c`, or a step `*/n` / `a-b/n` / `a/n`; day-of-week 0 or
//! 7 is Sunday. As in cron, when both day fields are restricted a day matching either one
//! counts. The parsing and the search are `croner`'s, which also takes names (`MON`, `JAN`),
//! `L`, `W`, `#` and the `@daily` kind of nickname.

use crate::{JobKind, MeterId};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron expression {expr:?}: {why}")]
pub struct CronError {
    pub expr: String,
    pub why: String,
}

/// A parsed five-field cron expression (boxed: croner's pattern is some 300 bytes, and a
/// `When` is mostly a period).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron(Box<croner::Cron>);

impl std::str::FromStr for Cron {
    type Err = CronError;

    fn from_str(expr: &str) -> Result<Self, CronError> {
        use croner::parser::{CronParser, Seconds, Year};
        // `a/n` (from a to the end) was taken before croner; stored schedules may use it.
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .dom_and_dow(false)
            .sloppy_ranges(true)
            .build();
        parser
            .parse(expr)
            .map(|c| Self(Box::new(c)))
            .map_err(|e| CronError {
                expr: expr.to_string(),
                why: e.to_string(),
            })
    }
}

impl Cron {
    /// The first matching minute strictly after `t` (`None` when the expression never
    /// matches, e.g. 31 February).
    pub fn next_after(&self, t: i64) -> Option<i64> {
        let from = chrono::DateTime::from_timestamp(t, 0)?;
        self.0
            .find_next_occurrence(&from, false)
            .ok()
            .map(|next| next.timestamp())
    }
}

/// When a schedule starts its cycles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    Cron(Cron),
    /// Every so many seconds, aligned to the Unix epoch (`900`: every quarter hour).
    Every(i64),
}

impl When {
    pub fn next_after(&self, t: i64) -> Option<i64> {
        match self {
            Self::Cron(c) => c.next_after(t),
            Self::Every(p) if *p > 0 => Some((t.div_euclid(*p) + 1) * p),
            Self::Every(_) => None,
        }
    }
}

/// One schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    /// `(group key, value)`, or every active meter.
    pub group: Option<(String, String)>,
    pub read: JobKind,
    pub when: When,
    /// Seconds over which a cycle's meters are spread.
    pub window_s: i64,
    /// Up to this many random seconds on top.
    pub jitter_s: i64,
    /// Seconds after a cycle's start by which its reads are due (`None`: the window's end
    /// plus the jitter). Reported as the cycle's deadline; the plan puts the meters that need
    /// the most time first.
    pub deadline_s: Option<i64>,
}

/// What the plan of a cycle knows about one meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanMeter {
    pub id: MeterId,
    /// Its link class (the registry's `link` group: gprs, lte-m, nb-iot, plc...).
    pub link: Option<String>,
    /// Its radio cell or concentrator (the registry's `cell` group).
    pub cell: Option<String>,
    /// Its last scheduled read failed.
    pub failed_last: bool,
}

/// How much time a read over a link class takes, slowest first (a rank, not seconds).
fn link_rank(link: Option<&str>) -> u8 {
    match link {
        Some("nb-iot" | "plc") => 3,
        Some("lte-m") => 2,
        Some("gprs" | "edge" | "3g") => 1,
        _ => 0,
    }
}

impl Schedule {
    /// When a cycle starting at `start` is due to be done.
    pub fn deadline(&self, start: i64) -> i64 {
        start.saturating_add(
            self.deadline_s
                .unwrap_or_else(|| self.window_s.max(0).saturating_add(self.jitter_s.max(0))),
        )
    }

    /// Each meter's place in the window (seconds from the cycle's start), in the order they
    /// go: the meters whose last read failed first (their retries get the most time before
    /// the deadline), then the slowest links, and within that the cells taken in turn so that
    /// neighbours in time are in different cells; the places are spread evenly over the
    /// window. Deterministic: the same fleet gets the same plan.
    pub fn plan(&self, meters: &[PlanMeter]) -> Vec<(MeterId, i64)> {
        use std::collections::BTreeMap;
        // Per (failed, link rank): cells, each with its meters in hash order.
        type Cells<'a> = BTreeMap<&'a str, Vec<(i64, &'a MeterId)>>;
        let mut classes: BTreeMap<(std::cmp::Reverse<bool>, std::cmp::Reverse<u8>), Cells<'_>> =
            BTreeMap::new();
        for m in meters {
            let class = (
                std::cmp::Reverse(m.failed_last),
                std::cmp::Reverse(link_rank(m.link.as_deref())),
            );
            classes
                .entry(class)
                .or_default()
                .entry(m.cell.as_deref().unwrap_or(""))
                .or_default()
                .push((self.hash(&m.id), &m.id));
        }
        let mut order: Vec<&MeterId> = Vec::with_capacity(meters.len());
        for cells in classes.into_values() {
            let mut queues: Vec<std::vec::IntoIter<(i64, &MeterId)>> = cells
                .into_values()
                .map(|mut v| {
                    v.sort_unstable();
                    v.into_iter()
                })
                .collect();
            // Round robin over the cells.
            loop {
                let before = order.len();
                for q in &mut queues {
                    if let Some((_, id)) = q.next() {
                        order.push(id);
                    }
                }
                if order.len() == before {
                    break;
                }
            }
        }
        let n = order.len().max(1) as i64;
        let window = self.window_s.max(0);
        order
            .into_iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), (i as i64).saturating_mul(window) / n))
            .collect()
    }

    fn hash(&self, meter: &MeterId) -> i64 {
        // FNV-1a over the schedule name and the meter id.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.name.bytes().chain([0]).chain(meter.0.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
        (h >> 1) as i64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn at(y: i64, mo: u8, d: u8, h: i64, mi: i64) -> i64 {
        dlms::axdr::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60
    }

    #[test]
    fn cron_expressions_find_their_next_minute() {
        let c: Cron = "*/15 * * * *".parse().unwrap();
        assert_eq!(
            c.next_after(at(2026, 11, 26, 10, 7)),
            Some(at(2026, 11, 26, 10, 15))
        );
        assert_eq!(
            c.next_after(at(2026, 11, 26, 10, 15)),
            Some(at(2026, 11, 26, 10, 30))
        );
        // Daily at 02:30.
        let c: Cron = "30 2 * * *".parse().unwrap();
        assert_eq!(
            c.next_after(at(2026, 11, 26, 3, 0)),
            Some(at(2026, 11, 27, 2, 30))
        );
        // Monthly on the first at 00:05.
        let c: Cron = "5 0 1 * *".parse().unwrap();
        assert_eq!(
            c.next_after(at(2026, 11, 26, 0, 0)),
            Some(at(2026, 12, 1, 0, 5))
        );
        // Weekdays at 06:00 (2026-11-28 is a Saturday).
        let c: Cron = "0 6 * * 1-5".parse().unwrap();
        assert_eq!(
            c.next_after(at(2026, 11, 27, 7, 0)),
            Some(at(2026, 11, 30, 6, 0))
        );
        // Sunday as 7 and as 0.
        let c7: Cron = "0 0 * * 7".parse().unwrap();
        let c0: Cron = "0 0 * * 0".parse().unwrap();
        assert_eq!(
            c7.next_after(at(2026, 11, 26, 0, 0)),
            c0.next_after(at(2026, 11, 26, 0, 0))
        );
        assert_eq!(
            c0.next_after(at(2026, 11, 26, 0, 0)),
            Some(at(2026, 11, 29, 0, 0))
        );
        // Both day fields restricted: either one (the 1st, or a Monday: 2026-11-30).
        let c: Cron = "0 0 1 * 1".parse().unwrap();
        assert_eq!(
            c.next_after(at(2026, 11, 26, 0, 0)),
            Some(at(2026, 11, 30, 0, 0))
        );
        assert_eq!(
            c.next_after(at(2026, 11, 30, 0, 0)),
            Some(at(2026, 12, 1, 0, 0))
        );
        // `a/n`: from a to the end of the field.
        let c: Cron = "5/20 * * * *".parse().unwrap();
        assert_eq!(
            c.next_after(at(2026, 11, 26, 10, 46)),
            Some(at(2026, 11, 26, 11, 5))
        );
        // Never: 31 February.
        let c: Cron = "0 0 31 2 *".parse().unwrap();
        assert_eq!(c.next_after(at(2026, 1, 1, 0, 0)), None);
        for bad in [
            "* * * *",
            "0 0 0 * * *",
            "60 * * * *",
            "*/0 * * * *",
            "a * * * *",
            "5-1 * * * *",
        ] {
            assert!(bad.parse::<Cron>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_plan_puts_failures_and_slow_links_first_spreads_cells_and_the_window() {
        let s = Schedule {
            name: "lp".into(),
            group: None,
            read: JobKind::ReadLoadProfile { from: None },
            when: When::Every(86_400),
            window_s: 4 * 3600,
            jitter_s: 0,
            deadline_s: Some(6 * 3600),
        };
        assert_eq!(s.deadline(1000), 1000 + 6 * 3600);
        let meters: Vec<PlanMeter> = (0..400)
            .map(|i| PlanMeter {
                id: MeterId(format!("MTR{i:05}")),
                link: Some(["lan", "gprs", "nb-iot", "lan"][i % 4].to_string()),
                cell: Some(format!("cell-{}", i % 10)),
                failed_last: i % 50 == 0,
            })
            .collect();
        let plan = s.plan(&meters);
        assert_eq!(plan.len(), 400);
        let of = |id: &MeterId| meters.iter().find(|m| &m.id == id).unwrap();
        // Order: the 8 failed ones, then nb-iot, then gprs, then the rest.
        let ranks: Vec<(bool, u8)> = plan
            .iter()
            .map(|(id, _)| {
                let m = of(id);
                (m.failed_last, link_rank(m.link.as_deref()))
            })
            .collect();
        assert!(ranks[..8].iter().all(|r| r.0), "{:?}", &ranks[..8]);
        let after: Vec<u8> = ranks[8..].iter().map(|r| r.1).collect();
        assert!(after.windows(2).all(|w| w[0] >= w[1]), "slowest first");
        // Evenly over the window, one meter per 36 s, each place once.
        let offsets: Vec<i64> = plan.iter().map(|(_, o)| *o).collect();
        assert!(offsets.windows(2).all(|w| w[1] - w[0] == 36), "{offsets:?}");
        assert_eq!(offsets[0], 0);
        // Neighbours in time are in different cells (within a class of more than one cell).
        for w in plan[8..].windows(2) {
            let (a, b) = (of(&w[0].0), of(&w[1].0));
            if link_rank(a.link.as_deref()) == link_rank(b.link.as_deref()) {
                assert_ne!(a.cell, b.cell, "{:?} then {:?}", a.id, b.id);
            }
        }
        // The same fleet, the same plan.
        assert_eq!(s.plan(&meters), plan);
        assert_eq!(When::Every(900).next_after(1000), Some(1800));
    }
}
