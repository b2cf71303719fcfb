//! Activity calendar (class 20, `0.0.13.0.0.255`): the tariff calendar, with an active copy
//! (attributes 2–5, read-only) and a passive copy (6–9, writable) that becomes active on the
//! `activate_passive_calendar` method or at `activate_passive_calendar_time` (attribute 10).
//!
//! Scheduled activation is lazy: nothing runs in the background, so the switch happens when
//! the meter's clock is found past attribute 10. [`ActivityCalendar::tick`] applies it (the
//! caller invokes it before `get`); `set` and `action` tick first themselves, and `get`
//! already answers as if ticked, so a caller that forgets `tick` still reads the right
//! calendar. Once applied, attribute 10 goes back to "not specified" (all `0xFF`), so the
//! switch happens once. A time with wildcards (no year, for instance) never fires.
//!
//! Writes to the passive attributes are checked with the `dlms` activity calendar views
//! (a shape other than the Blue Book's is `type-unmatched`) and bounded in size
//! ([`MAX_ENTRIES`], [`MAX_NAME_LEN`]; beyond them `other-reason`). References between the
//! tables (a week naming a missing day profile) are not checked.

use dlms::axdr::{Data, DateTime};
use dlms::cosem::activity_calendar::{
    day_profile_table_from_data, day_profile_table_to_data, season_profile_from_data,
    season_profile_to_data, week_profile_table_from_data, week_profile_table_to_data, Calendar,
    ACTIVATE_PASSIVE_CALENDAR, ACTIVATE_PASSIVE_CALENDAR_TIME, CALENDAR_NAME_ACTIVE,
    CALENDAR_NAME_PASSIVE, DAY_PROFILE_TABLE_ACTIVE, DAY_PROFILE_TABLE_PASSIVE,
    SEASON_PROFILE_ACTIVE, SEASON_PROFILE_PASSIVE, WEEK_PROFILE_TABLE_ACTIVE,
    WEEK_PROFILE_TABLE_PASSIVE,
};
use dlms::xdlms::{ActionResult, DataAccessResult};

/// The script table the default calendar's day profiles run (tariffication script table).
pub use dlms::cosem::activity_calendar::TARIFF_SCRIPT_TABLE;
/// The script selector of tariff T1 (day) in [`TARIFF_SCRIPT_TABLE`].
pub const SCRIPT_T1: u16 = 1;
/// The script selector of tariff T2 (night and weekend).
pub const SCRIPT_T2: u16 = 2;
/// The name of the default calendar.
pub const DEFAULT_CALENDAR_NAME: &[u8] = b"HES-TOU-1";
/// The most seasons, week profiles, day profiles, or actions in one day profile, a meter takes.
pub const MAX_ENTRIES: usize = 32;
/// The longest calendar, season, or week profile name a meter takes, in bytes.
pub const MAX_NAME_LEN: usize = 32;

/// The "not specified" date-time (all `0xFF`) of attribute 10.
fn unspecified() -> DateTime {
    DateTime::NOT_SPECIFIED
}

/// The default two-rate calendar "HES-TOU-1": one season from 1 January (every year), one
/// week profile, weekdays on day profile 1 (T1 07:00–23:00, T2 otherwise), weekends on day
/// profile 2 (T2 all day). Tariffs are scripts [`SCRIPT_T1`] and [`SCRIPT_T2`] of
/// [`TARIFF_SCRIPT_TABLE`].
pub fn default_calendar() -> Calendar {
    dlms::cosem::activity_calendar::two_rate(DEFAULT_CALENDAR_NAME, 7 * 60, 23 * 60)
}

/// The state of one activity calendar object.
#[derive(Debug, Clone)]
pub struct ActivityCalendar {
    active: Calendar,
    passive: Calendar,
    /// Attribute 10 as written (all `0xFF` when not specified).
    activate_time: DateTime,
}

impl Default for ActivityCalendar {
    fn default() -> Self {
        Self::new()
    }
}

fn name_from(value: &Data) -> Result<Vec<u8>, DataAccessResult> {
    match value {
        Data::OctetString(n) if n.len() <= MAX_NAME_LEN => Ok(n.clone()),
        Data::OctetString(_) => Err(DataAccessResult::OtherReason),
        _ => Err(DataAccessResult::TypeUnmatched),
    }
}

fn bounded<T>(items: Vec<T>, ok: impl Fn(&T) -> bool) -> Result<Vec<T>, DataAccessResult> {
    if items.len() <= MAX_ENTRIES && items.iter().all(ok) {
        Ok(items)
    } else {
        Err(DataAccessResult::OtherReason)
    }
}

impl ActivityCalendar {
    /// The default calendar ([`default_calendar`]) both active and passive, no activation
    /// scheduled.
    pub fn new() -> Self {
        Self::with(default_calendar())
    }

    /// `calendar` both active and passive, no activation scheduled.
    pub fn with(calendar: Calendar) -> Self {
        Self {
            passive: calendar.clone(),
            active: calendar,
            activate_time: unspecified(),
        }
    }

    /// The active calendar's name (attribute 2).
    pub fn active_name(&self) -> Vec<u8> {
        self.active.name.clone()
    }

    /// The active calendar as of the last `tick` (or `set`/`action`).
    pub fn active(&self) -> &Calendar {
        &self.active
    }

    pub fn passive(&self) -> &Calendar {
        &self.passive
    }

    /// When the scheduled activation is due at `now`.
    fn due(&self, now: i64) -> bool {
        self.activate_time.to_unix().is_some_and(|t| now >= t)
    }

    /// Applies a scheduled activation whose time `now` has reached.
    pub fn tick(&mut self, now: i64) {
        if self.due(now) {
            self.activate();
        }
    }

    fn activate(&mut self) {
        self.active = self.passive.clone();
        self.activate_time = unspecified();
    }

    /// Answers as if [`tick`](Self::tick) had just run with `now`.
    pub fn get(&self, attribute: i8, now: i64) -> Result<Data, DataAccessResult> {
        let due = self.due(now);
        let active = if due { &self.passive } else { &self.active };
        let p = &self.passive;
        Ok(match attribute {
            CALENDAR_NAME_ACTIVE => Data::OctetString(active.name.clone()),
            SEASON_PROFILE_ACTIVE => season_profile_to_data(&active.seasons),
            WEEK_PROFILE_TABLE_ACTIVE => week_profile_table_to_data(&active.week_profiles),
            DAY_PROFILE_TABLE_ACTIVE => day_profile_table_to_data(&active.day_profiles),
            CALENDAR_NAME_PASSIVE => Data::OctetString(p.name.clone()),
            SEASON_PROFILE_PASSIVE => season_profile_to_data(&p.seasons),
            WEEK_PROFILE_TABLE_PASSIVE => week_profile_table_to_data(&p.week_profiles),
            DAY_PROFILE_TABLE_PASSIVE => day_profile_table_to_data(&p.day_profiles),
            ACTIVATE_PASSIVE_CALENDAR_TIME => Data::OctetString(if due {
                unspecified().to_octets()
            } else {
                self.activate_time.to_octets()
            }),
            _ => return Err(DataAccessResult::ObjectUndefined),
        })
    }

    pub fn set(&mut self, attribute: i8, value: Data, now: i64) -> DataAccessResult {
        self.tick(now);
        match self.try_set(attribute, &value) {
            Ok(()) => DataAccessResult::Success,
            Err(e) => e,
        }
    }

    fn try_set(&mut self, attribute: i8, value: &Data) -> Result<(), DataAccessResult> {
        let p = &mut self.passive;
        let shape = |_| DataAccessResult::TypeUnmatched;
        match attribute {
            CALENDAR_NAME_PASSIVE => p.name = name_from(value)?,
            SEASON_PROFILE_PASSIVE => {
                p.seasons = bounded(season_profile_from_data(value).map_err(shape)?, |s| {
                    s.season_profile_name.len() <= MAX_NAME_LEN && s.week_name.len() <= MAX_NAME_LEN
                })?;
            }
            WEEK_PROFILE_TABLE_PASSIVE => {
                p.week_profiles =
                    bounded(week_profile_table_from_data(value).map_err(shape)?, |w| {
                        w.week_profile_name.len() <= MAX_NAME_LEN
                    })?;
            }
            DAY_PROFILE_TABLE_PASSIVE => {
                p.day_profiles =
                    bounded(day_profile_table_from_data(value).map_err(shape)?, |d| {
                        d.day_schedule.len() <= MAX_ENTRIES
                    })?;
            }
            ACTIVATE_PASSIVE_CALENDAR_TIME => {
                self.activate_time = value
                    .as_date_time()
                    .ok_or(DataAccessResult::TypeUnmatched)?;
            }
            1..=5 => return Err(DataAccessResult::ReadWriteDenied),
            _ => return Err(DataAccessResult::ObjectUndefined),
        }
        Ok(())
    }

    /// Method 1, `activate_passive_calendar` (parameter `integer (0)`, or none): the passive
    /// calendar becomes active now. A pending scheduled activation is cancelled.
    pub fn action(
        &mut self,
        method: i8,
        params: Option<Data>,
        now: i64,
    ) -> Result<Option<Data>, ActionResult> {
        self.tick(now);
        match method {
            ACTIVATE_PASSIVE_CALENDAR => match params {
                None | Some(Data::Integer(_)) => {
                    self.activate();
                    Ok(None)
                }
                Some(_) => Err(ActionResult::TypeUnmatched),
            },
            _ => Err(ActionResult::ObjectUndefined),
        }
    }
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
    use dlms::axdr::Time;
    use dlms::cosem::activity_calendar::{DayProfile, DayProfileAction, Season, WeekProfile};
    use dlms::ObisCode;

    const NOW: i64 = 1_790_000_000;

    fn hm(hour: u8, minute: u8) -> Time {
        Time {
            hour,
            minute,
            second: 0,
            hundredths: 0,
        }
    }

    fn passive() -> Calendar {
        let act = |h, sel| DayProfileAction {
            start_time: hm(h, 0),
            script_logical_name: TARIFF_SCRIPT_TABLE,
            script_selector: sel,
        };
        let mut start = unspecified();
        start.date.month = 4;
        start.date.day = 1;
        start.time = hm(0, 0);
        Calendar {
            name: b"HES-TOU-2".to_vec(),
            seasons: vec![Season {
                season_profile_name: b"SUMMER".to_vec(),
                season_start: start,
                week_name: b"W2".to_vec(),
            }],
            week_profiles: vec![WeekProfile {
                week_profile_name: b"W2".to_vec(),
                days: [3, 3, 3, 3, 3, 3, 3],
            }],
            day_profiles: vec![DayProfile {
                day_id: 3,
                day_schedule: vec![act(0, 2), act(6, 1), act(22, 2)],
            }],
        }
    }

    fn write_passive(c: &mut ActivityCalendar, p: &Calendar, now: i64) {
        assert_eq!(
            c.set(6, Data::OctetString(p.name.clone()), now),
            DataAccessResult::Success
        );
        assert_eq!(
            c.set(7, season_profile_to_data(&p.seasons), now),
            DataAccessResult::Success
        );
        assert_eq!(
            c.set(8, week_profile_table_to_data(&p.week_profiles), now),
            DataAccessResult::Success
        );
        assert_eq!(
            c.set(9, day_profile_table_to_data(&p.day_profiles), now),
            DataAccessResult::Success
        );
    }

    #[test]
    fn default_calendar_is_two_rate() {
        let c = ActivityCalendar::new();
        assert_eq!(c.active_name(), b"HES-TOU-1");
        assert_eq!(c.get(2, NOW), Ok(Data::OctetString(b"HES-TOU-1".to_vec())));
        let days = day_profile_table_from_data(&c.get(5, NOW).unwrap()).unwrap();
        assert_eq!(days.len(), 2);
        let weekday: Vec<(u8, u16)> = days[0]
            .day_schedule
            .iter()
            .map(|a| (a.start_time.hour, a.script_selector))
            .collect();
        assert_eq!(weekday, vec![(0, 2), (7, 1), (23, 2)]);
        assert_eq!(days[1].day_schedule.len(), 1);
        assert_eq!(days[1].day_schedule[0].script_selector, 2);
        assert!(days
            .iter()
            .flat_map(|d| &d.day_schedule)
            .all(|a| a.script_logical_name == ObisCode::new(0, 0, 10, 0, 100, 255)));
        let weeks = week_profile_table_from_data(&c.get(4, NOW).unwrap()).unwrap();
        assert_eq!(weeks[0].days, [1, 1, 1, 1, 1, 2, 2]);
        let seasons = season_profile_from_data(&c.get(3, NOW).unwrap()).unwrap();
        assert_eq!(seasons.len(), 1);
        assert_eq!(seasons[0].week_name, weeks[0].week_profile_name);
        assert_eq!(c.get(10, NOW), Ok(Data::OctetString(vec![0xFF; 12])));
    }

    #[test]
    fn passive_set_then_activate() {
        let mut c = ActivityCalendar::new();
        let p = passive();
        write_passive(&mut c, &p, NOW);
        assert_eq!(c.active_name(), b"HES-TOU-1");
        assert_eq!(c.get(6, NOW), Ok(Data::OctetString(b"HES-TOU-2".to_vec())));
        assert_eq!(
            c.get(9, NOW),
            Ok(day_profile_table_to_data(&p.day_profiles))
        );
        assert_eq!(c.action(1, Some(Data::Integer(0)), NOW), Ok(None));
        assert_eq!(c.active_name(), b"HES-TOU-2");
        assert_eq!(c.active(), &p);
        assert_eq!(c.get(3, NOW), Ok(season_profile_to_data(&p.seasons)));
        assert_eq!(
            c.get(4, NOW),
            Ok(week_profile_table_to_data(&p.week_profiles))
        );
        assert_eq!(
            c.get(5, NOW),
            Ok(day_profile_table_to_data(&p.day_profiles))
        );
        // The passive copy stays.
        assert_eq!(c.passive(), &p);
    }

    #[test]
    fn scheduled_activation_applies_lazily() {
        let mut c = ActivityCalendar::new();
        write_passive(&mut c, &passive(), NOW);
        let at = NOW + 3_600;
        let when = DateTime::from_unix(at, 60, 0).to_octets();
        assert_eq!(
            c.set(10, Data::OctetString(when.clone()), NOW),
            DataAccessResult::Success
        );
        assert_eq!(c.get(10, NOW), Ok(Data::OctetString(when.clone())));
        c.tick(at - 1);
        assert_eq!(c.active_name(), b"HES-TOU-1");
        assert_eq!(
            c.get(2, at - 1),
            Ok(Data::OctetString(b"HES-TOU-1".to_vec()))
        );
        // get answers as of `now` before the tick applies it.
        assert_eq!(c.get(2, at), Ok(Data::OctetString(b"HES-TOU-2".to_vec())));
        assert_eq!(c.get(10, at), Ok(Data::OctetString(vec![0xFF; 12])));
        assert_eq!(c.active_name(), b"HES-TOU-1");
        c.tick(at + 10);
        assert_eq!(c.active_name(), b"HES-TOU-2");
        assert_eq!(c.get(10, at + 10), Ok(Data::OctetString(vec![0xFF; 12])));
        // Once only: a new passive calendar does not become active on a later tick.
        assert_eq!(
            c.set(6, Data::OctetString(b"NEXT".to_vec()), at + 20),
            DataAccessResult::Success
        );
        c.tick(at + 100_000);
        assert_eq!(c.active_name(), b"HES-TOU-2");
    }

    #[test]
    fn due_activation_happens_before_a_set() {
        let mut c = ActivityCalendar::new();
        write_passive(&mut c, &passive(), NOW);
        let when = DateTime::from_unix(NOW + 60, 0, 0);
        assert_eq!(
            c.set(10, Data::DateTime(when), NOW),
            DataAccessResult::Success
        );
        // This write comes after the activation time: the old passive is what activates.
        assert_eq!(
            c.set(6, Data::OctetString(b"LATER".to_vec()), NOW + 61),
            DataAccessResult::Success
        );
        assert_eq!(c.active_name(), b"HES-TOU-2");
        assert_eq!(c.passive().name, b"LATER");
    }

    #[test]
    fn wildcard_or_unspecified_time_never_fires() {
        let mut c = ActivityCalendar::new();
        write_passive(&mut c, &passive(), NOW);
        let mut when = DateTime::from_unix(NOW - 60, 0, 0);
        when.date.year = 0xFFFF;
        assert_eq!(
            c.set(10, Data::OctetString(when.to_octets()), NOW),
            DataAccessResult::Success
        );
        c.tick(NOW + 1_000_000);
        assert_eq!(c.active_name(), b"HES-TOU-1");
        assert_eq!(
            c.set(10, Data::OctetString(vec![0xFF; 12]), NOW),
            DataAccessResult::Success
        );
        c.tick(i64::MAX);
        assert_eq!(c.active_name(), b"HES-TOU-1");
    }

    #[test]
    fn bad_writes_change_nothing() {
        let mut c = ActivityCalendar::new();
        let before = c.passive().clone();
        for a in 2..=5 {
            assert_eq!(
                c.set(a, c.get(a, NOW).unwrap(), NOW),
                DataAccessResult::ReadWriteDenied
            );
        }
        assert_eq!(
            c.set(11, Data::Null, NOW),
            DataAccessResult::ObjectUndefined
        );
        assert_eq!(c.get(11, NOW), Err(DataAccessResult::ObjectUndefined));
        let bad = [
            (6, Data::VisibleString(b"X".to_vec())),
            (7, Data::Structure(vec![])),
            (7, Data::Array(vec![Data::Structure(vec![Data::Null])])),
            (
                8,
                Data::Array(vec![Data::Structure(vec![Data::Unsigned(1)])]),
            ),
            (9, Data::OctetString(vec![])),
            (
                9,
                Data::Array(vec![Data::Structure(vec![
                    Data::Unsigned(1),
                    Data::Array(vec![Data::Structure(vec![
                        Data::OctetString(vec![0; 3]), // a time is 4 bytes
                        Data::OctetString(vec![0, 0, 10, 0, 100, 255]),
                        Data::LongUnsigned(1),
                    ])]),
                ])]),
            ),
            (10, Data::OctetString(vec![0xFF; 11])),
            (10, Data::DoubleLongUnsigned(0)),
        ];
        for (a, v) in bad {
            assert_eq!(c.set(a, v, NOW), DataAccessResult::TypeUnmatched, "{a}");
        }
        // Too big.
        assert_eq!(
            c.set(6, Data::OctetString(vec![b'N'; 33]), NOW),
            DataAccessResult::OtherReason
        );
        let mut p = passive();
        p.day_profiles = (0..33)
            .map(|i| DayProfile {
                day_id: i,
                day_schedule: vec![],
            })
            .collect();
        assert_eq!(
            c.set(9, day_profile_table_to_data(&p.day_profiles), NOW),
            DataAccessResult::OtherReason
        );
        assert_eq!(c.passive(), &before);
        assert_eq!(c.get(10, NOW), Ok(Data::OctetString(vec![0xFF; 12])));
        assert_eq!(
            c.action(1, Some(Data::Null), NOW),
            Err(ActionResult::TypeUnmatched)
        );
        assert_eq!(c.action(2, None, NOW), Err(ActionResult::ObjectUndefined));
    }
}
