//! Schedules: which reads run for which meters, when. A schedule names a group of meters (or
//! all), a read, a start rule (cron-like, or a fixed period), a collection window over which its
//! meters are spread (each meter at a fixed place in the window, from a hash of its id, so load
//! is even and a meter is read at the same time each cycle) and a random jitter on top.
//!
//! Cron expressions have five fields, UTC: minute hour day-of-month month day-of-week, each `*`,
//! a number, a range `a-b`, a list `a,b,c`, or a step `*/n` / `a-b/n`; day-of-week 0 or 7 is
//! Sunday. As in cron, when both day fields are restricted a day matching either one counts.

use std::sync::Arc;
use std::time::Duration;

use hes_model::{JobKind, JobRequest, MeterId, Priority};
use hes_store::NewJob;
use rand::Rng;

use crate::jobs::Engine;
use crate::registry::Registry;
use crate::session::unix_now;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron expression {expr:?}: {why}")]
pub struct CronError {
    pub expr: String,
    pub why: &'static str,
}

/// A parsed five-field cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minute: u64,
    hour: u32,
    dom: u32,
    month: u16,
    dow: u8,
    dom_any: bool,
    dow_any: bool,
}

fn field(text: &str, lo: u32, hi: u32, expr: &str) -> Result<(u64, bool), CronError> {
    let err = |why| CronError {
        expr: expr.to_string(),
        why,
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| err("bad step"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(err("a step of 0"));
        }
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                a.parse().map_err(|_| err("bad range"))?,
                b.parse().map_err(|_| err("bad range"))?,
            )
        } else {
            let v = range.parse().map_err(|_| err("not a number"))?;
            // `5/15` means from 5 to the end in steps of 15.
            (v, if part.contains('/') { hi } else { v })
        };
        if a < lo || b > hi || a > b {
            return Err(err("value out of range"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1u64 << v;
            v += step;
        }
    }
    Ok((bits, text == "*"))
}

impl std::str::FromStr for Cron {
    type Err = CronError;

    fn from_str(expr: &str) -> Result<Self, CronError> {
        let f: Vec<&str> = expr.split_whitespace().collect();
        let [mi, h, dom, mo, dow] = f.as_slice() else {
            return Err(CronError {
                expr: expr.to_string(),
                why: "five fields are needed",
            });
        };
        let (minute, _) = field(mi, 0, 59, expr)?;
        let (hour, _) = field(h, 0, 23, expr)?;
        let (dom_bits, dom_any) = field(dom, 1, 31, expr)?;
        let (month, _) = field(mo, 1, 12, expr)?;
        let (mut dow_bits, dow_any) = field(dow, 0, 7, expr)?;
        if dow_bits & (1 << 7) != 0 {
            dow_bits |= 1;
        }
        Ok(Self {
            minute,
            hour: hour as u32,
            dom: dom_bits as u32,
            month: month as u16,
            dow: (dow_bits & 0x7F) as u8,
            dom_any,
            dow_any,
        })
    }
}

impl Cron {
    fn matches(&self, t: i64) -> bool {
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let (_, month, day) = dlms::axdr::civil_from_days(days);
        let minute = (secs / 60) % 60;
        let hour = secs / 3600;
        // 1970-01-01 was a Thursday (4).
        let dow = (days + 4).rem_euclid(7);
        let day_ok = match (self.dom_any, self.dow_any) {
            (true, true) => true,
            (false, true) => self.dom & (1 << day) != 0,
            (true, false) => self.dow & (1 << dow) != 0,
            (false, false) => self.dom & (1 << day) != 0 || self.dow & (1 << dow) != 0,
        };
        self.minute & (1 << minute) != 0
            && self.hour & (1 << hour) != 0
            && self.month & (1 << month) != 0
            && day_ok
    }

    /// The first matching minute strictly after `t` (within about four years; `None` when the
    /// expression never matches, e.g. 31 February).
    pub fn next_after(&self, t: i64) -> Option<i64> {
        let mut m = t.div_euclid(60) * 60 + 60;
        for _ in 0..(4 * 366 * 1440) {
            if self.matches(m) {
                return Some(m);
            }
            m += 60;
        }
        None
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

    /// The meters of this schedule.
    pub fn meters(&self, registry: &Registry) -> Vec<MeterId> {
        let (k, v) = self
            .group
            .as_ref()
            .map_or(("", ""), |(k, v)| (k.as_str(), v.as_str()));
        registry
            .in_group(k, v)
            .into_iter()
            .map(|m| m.id.clone())
            .collect()
    }

    /// One cycle starting at `start` (Unix seconds) as job requests: each meter at its place in
    /// the window, plus jitter (`not_before_ms`).
    pub fn cycle_requests(&self, registry: &Registry, start: i64) -> Vec<JobRequest> {
        let mut rng = rand::thread_rng();
        self.meters(registry)
            .into_iter()
            .map(|meter| {
                let jitter = if self.jitter_s > 0 {
                    rng.gen_range(0..=self.jitter_s * 1000)
                } else {
                    0
                };
                JobRequest {
                    request: format!("{}@{start}/{}", self.name, meter.0),
                    not_before_ms: (start + self.offset(&meter)) * 1000 + jitter,
                    meter,
                    kind: self.read.clone(),
                    priority: Priority::Scheduled,
                    requested_by: "scheduler".into(),
                    job: 0,
                }
            })
            .collect()
    }

    /// One cycle starting at `start` as jobs to create in the store.
    pub fn cycle_jobs(&self, registry: &Registry, start: i64, max_attempts: u32) -> Vec<NewJob> {
        self.cycle_requests(registry, start)
            .into_iter()
            .map(|r| NewJob {
                meter: r.meter,
                kind: r.kind,
                priority: r.priority,
                requested_by: r.requested_by,
                not_before: (r.not_before_ms + 999) / 1000,
                max_attempts,
                request: Some(r.request),
            })
            .collect()
    }
}

/// Where a scheduler puts a cycle's jobs once they are in the store.
#[derive(Clone)]
pub enum Sink {
    /// A local job engine (the embedded mode).
    Engine(Arc<Engine>),
    /// The jobs topic of the bus (the distributed mode: the collectors' group takes them).
    Bus {
        bus: Arc<dyn hes_bus::Bus>,
        topic: String,
    },
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Engine(_) => f.write_str("Sink::Engine"),
            Sink::Bus { topic, .. } => write!(f, "Sink::Bus({topic})"),
        }
    }
}

impl Sink {
    /// Hands jobs created in the store to the collectors.
    pub async fn deliver(&self, jobs: Vec<hes_model::Job>) -> Result<(), hes_bus::BusError> {
        match self {
            Sink::Engine(engine) => {
                engine.enqueue_created(jobs);
                Ok(())
            }
            Sink::Bus { bus, topic } => {
                crate::distributed::dispatch_jobs(&**bus, topic, &jobs).await
            }
        }
    }
}

/// The lease a scheduler holds (its name and fencing token): a cycle is created only while the
/// token is current, and each slot of a schedule only once, however many schedulers run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease: String,
    pub token: i64,
}

/// Attempts per scheduled job.
const MAX_ATTEMPTS: u32 = 4;

/// Creates one cycle of `s` starting at `due` in the store (fenced: once per slot) and hands
/// the new jobs to `sink`. Returns how many jobs the cycle created, `None` when the slot had
/// fired already or the lease is no longer this scheduler's.
pub async fn fire(
    s: &Schedule,
    due: i64,
    sink: &Sink,
    registry: &Registry,
    fence: &Fence,
) -> Result<Option<usize>, hes_store::StoreError> {
    let jobs = s.cycle_jobs(registry, due, MAX_ATTEMPTS);
    let Some(created) = registry
        .state()
        .fire_slot(&fence.lease, fence.token, &s.name, due, &jobs)
        .await?
    else {
        return Ok(None);
    };
    let new: Vec<hes_model::Job> = created
        .into_iter()
        .filter_map(|(j, new)| new.then_some(j))
        .collect();
    let n = new.len();
    if let Err(e) = sink.deliver(new).await {
        // In the store but not on the bus: the stale-job sweep sends them again.
        tracing::warn!(schedule = %s.name, error = %e, "dispatching a cycle");
    }
    Ok(Some(n))
}

/// How late a scheduler that starts (a new leader, schedules read again) still fires a slot
/// due before it started: a failover leaves no node leading for up to the lease's time to live
/// (10 s) and a renewal, and the schedules are read every 15 s. The slots table keeps a slot
/// fired already from firing again.
const CATCH_UP_S: i64 = 30;

/// The first slot a scheduler starting at `start` fires: the latest one due at most
/// [`CATCH_UP_S`] before it, else the next one.
fn first_due(when: &When, start: i64) -> Option<i64> {
    let mut due = when.next_after(start - CATCH_UP_S - 1)?;
    while let Some(later) = when.next_after(due).filter(|t| *t <= start) {
        due = later;
    }
    Some(due)
}

/// Runs schedules into `sink` until `shutdown`: at each cycle start, the cycle's jobs (spread
/// over the window) are created in the store under `fence` and handed to `sink`. A slot due
/// shortly before the start (see [`CATCH_UP_S`]) is fired at once unless it was already.
pub async fn run_into(
    schedules: Vec<Schedule>,
    sink: Sink,
    registry: Arc<Registry>,
    fence: Fence,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let start = unix_now();
    let mut next: Vec<Option<i64>> = schedules
        .iter()
        .map(|s| first_due(&s.when, start))
        .collect();
    loop {
        let Some(due) = next.iter().flatten().min().copied() else {
            return;
        };
        let wait = Duration::from_secs((due - unix_now()).max(0) as u64);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        for (s, n) in schedules.iter().zip(next.iter_mut()) {
            if *n == Some(due) {
                match fire(s, due, &sink, &registry, &fence).await {
                    Ok(Some(queued)) => tracing::info!(schedule = %s.name, queued, "cycle queued"),
                    Ok(None) => {
                        tracing::info!(schedule = %s.name, due, "slot fired already or lease lost")
                    }
                    Err(e) => tracing::warn!(schedule = %s.name, error = %e, "creating a cycle"),
                }
                *n = s.when.next_after(due);
            }
        }
    }
}

/// Runs schedules on a local engine, holding the scheduler lease of `holder` (the embedded
/// mode: one process, which takes the lease at once).
pub async fn run(
    schedules: Vec<Schedule>,
    engine: Arc<Engine>,
    registry: Arc<Registry>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    // One holder name for every start: a restart keeps the token, and the slots table still
    // fires each slot once.
    let token = match registry
        .state()
        .acquire_lease(LOCAL_LEASE, "local", i64::MAX / 4)
        .await
    {
        Ok(Some(t)) => t,
        Ok(None) => {
            tracing::warn!("another scheduler holds the local schedules' lease");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "taking the local schedules' lease");
            return;
        }
    };
    let fence = Fence {
        lease: LOCAL_LEASE.to_string(),
        token,
    };
    run_into(schedules, Sink::Engine(engine), registry, fence, shutdown).await;
}

/// The lease of schedules run by [`run`] (built-in schedules of one process).
const LOCAL_LEASE: &str = "local-schedules";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(y: i64, mo: u8, d: u8, h: i64, mi: i64) -> i64 {
        dlms::axdr::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60
    }

    #[test]
    fn a_starting_scheduler_fires_a_slot_due_just_before_it() {
        let t = at(2026, 11, 26, 10, 0);
        let every = When::Every(60);
        // Due 10 s ago (a failover, schedules read late): fired at once.
        assert_eq!(first_due(&every, t + 10), Some(t));
        assert_eq!(first_due(&every, t + CATCH_UP_S), Some(t));
        // Due longer ago: the next one.
        assert_eq!(first_due(&every, t + CATCH_UP_S + 1), Some(t + 60));
        // Short periods: only the latest slot is caught up, not every one of the last 30 s.
        assert_eq!(first_due(&When::Every(1), t), Some(t));
        let c: Cron = "*/15 * * * *".parse().unwrap();
        assert_eq!(first_due(&When::Cron(c.clone()), t + 20), Some(t));
        assert_eq!(first_due(&When::Cron(c), t + 60), Some(t + 900));
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
        // Never: 31 February.
        let c: Cron = "0 0 31 2 *".parse().unwrap();
        assert_eq!(c.next_after(at(2026, 1, 1, 0, 0)), None);
        for bad in [
            "* * * *",
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
