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
}

impl Schedule {
    /// Where in the window `meter` starts: fixed per meter and schedule.
    pub fn offset(&self, meter: &MeterId) -> i64 {
        if self.window_s <= 0 {
            return 0;
        }
        // FNV-1a over the schedule name and the meter id.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.name.bytes().chain([0]).chain(meter.0.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
        (h % self.window_s as u64) as i64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
    fn meters_spread_over_the_window_at_fixed_places() {
        let s = Schedule {
            name: "lp".into(),
            group: None,
            read: JobKind::ReadLoadProfile { from: None },
            when: When::Every(86_400),
            window_s: 3600,
            jitter_s: 0,
        };
        let offsets: Vec<i64> = (0..1000)
            .map(|i| s.offset(&MeterId(format!("MTR{i:08}"))))
            .collect();
        assert!(offsets.iter().all(|o| (0..3600).contains(o)));
        // Spread: every quarter of the window gets a fair share.
        for q in 0..4 {
            let n = offsets.iter().filter(|o| **o / 900 == q).count();
            assert!((180..320).contains(&n), "quarter {q}: {n}");
        }
        assert_eq!(s.offset(&"MTR1".into()), s.offset(&"MTR1".into()));
        assert_eq!(When::Every(900).next_after(1000), Some(1800));
    }
}
