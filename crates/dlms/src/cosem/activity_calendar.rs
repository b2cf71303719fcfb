//! Activity calendar (class 20): the tariff calendar. Seasons pick a week profile, week
//! profiles pick a day profile per weekday, and day profiles run scripts (tariff switches) at
//! given times. An active and a passive copy exist; the passive one becomes active at
//! `activate_passive_calendar_time` or on the `activate_passive_calendar` method.

use super::value::{
    array_of, array_to, date_time, date_time_to, long_unsigned, obis, obis_to, octets, structure,
    time, time_to, unsigned,
};
use super::{cosem_value, CosemError};
use crate::axdr::{Data, DateTime, Time};
use crate::obis::ObisCode;

pub const CLASS_ID: u16 = 20;
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
pub const CALENDAR_NAME_ACTIVE: i8 = 2;
pub const SEASON_PROFILE_ACTIVE: i8 = 3;
pub const WEEK_PROFILE_TABLE_ACTIVE: i8 = 4;
pub const DAY_PROFILE_TABLE_ACTIVE: i8 = 5;
pub const CALENDAR_NAME_PASSIVE: i8 = 6;
pub const SEASON_PROFILE_PASSIVE: i8 = 7;
pub const WEEK_PROFILE_TABLE_PASSIVE: i8 = 8;
pub const DAY_PROFILE_TABLE_PASSIVE: i8 = 9;
pub const ACTIVATE_PASSIVE_CALENDAR_TIME: i8 = 10;

pub const ACTIVATE_PASSIVE_CALENDAR: i8 = 1;

pub(crate) const ATTRIBUTES: &[&str] = &[
    "logical_name",
    "calendar_name_active",
    "season_profile_active",
    "week_profile_table_active",
    "day_profile_table_active",
    "calendar_name_passive",
    "season_profile_passive",
    "week_profile_table_passive",
    "day_profile_table_passive",
    "activate_passive_calendar_time",
];
pub(crate) const METHODS: &[&str] = &["activate_passive_calendar"];

/// `season_profile` element: from `season_start` on, `week_name` applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Season {
    pub season_profile_name: Vec<u8>,
    /// Usually with wildcards (year unspecified) so the season recurs every year.
    pub season_start: DateTime,
    pub week_name: Vec<u8>,
}

impl Season {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [n, s, w] = structure(d)?;
        Ok(Self {
            season_profile_name: octets(n)?,
            season_start: date_time(s)?,
            week_name: octets(w)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::OctetString(self.season_profile_name.clone()),
            date_time_to(&self.season_start),
            Data::OctetString(self.week_name.clone()),
        ])
    }
}

/// `week_profile_table` element: the day profile (`day_id`) of each weekday.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekProfile {
    pub week_profile_name: Vec<u8>,
    /// Monday first.
    pub days: [u8; 7],
}

impl WeekProfile {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [n, mo, tu, we, th, fr, sa, su] = structure(d)?;
        Ok(Self {
            week_profile_name: octets(n)?,
            days: [
                unsigned(mo)?,
                unsigned(tu)?,
                unsigned(we)?,
                unsigned(th)?,
                unsigned(fr)?,
                unsigned(sa)?,
                unsigned(su)?,
            ],
        })
    }

    pub fn to_data(&self) -> Data {
        let mut fields = vec![Data::OctetString(self.week_profile_name.clone())];
        fields.extend(self.days.iter().map(|d| Data::Unsigned(*d)));
        Data::Structure(fields)
    }
}

/// `day_profile_action`: at `start_time`, run a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayProfileAction {
    pub start_time: Time,
    pub script_logical_name: ObisCode,
    pub script_selector: u16,
}

impl DayProfileAction {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [t, ln, sel] = structure(d)?;
        Ok(Self {
            start_time: time(t)?,
            script_logical_name: obis(ln)?,
            script_selector: long_unsigned(sel)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            time_to(&self.start_time),
            obis_to(&self.script_logical_name),
            Data::LongUnsigned(self.script_selector),
        ])
    }
}

/// `day_profile_table` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayProfile {
    pub day_id: u8,
    pub day_schedule: Vec<DayProfileAction>,
}

impl DayProfile {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [id, schedule] = structure(d)?;
        Ok(Self {
            day_id: unsigned(id)?,
            day_schedule: array_of(schedule, DayProfileAction::from_data)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::Unsigned(self.day_id),
            array_to(&self.day_schedule, DayProfileAction::to_data),
        ])
    }
}

cosem_value!(Season, WeekProfile, DayProfileAction, DayProfile);

/// One calendar (the active or the passive one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Calendar {
    pub name: Vec<u8>,
    pub seasons: Vec<Season>,
    pub week_profiles: Vec<WeekProfile>,
    pub day_profiles: Vec<DayProfile>,
}

pub fn season_profile_from_data(d: &Data) -> Result<Vec<Season>, CosemError> {
    array_of(d, Season::from_data)
}

pub fn season_profile_to_data(seasons: &[Season]) -> Data {
    array_to(seasons, Season::to_data)
}

pub fn week_profile_table_from_data(d: &Data) -> Result<Vec<WeekProfile>, CosemError> {
    array_of(d, WeekProfile::from_data)
}

pub fn week_profile_table_to_data(weeks: &[WeekProfile]) -> Data {
    array_to(weeks, WeekProfile::to_data)
}

pub fn day_profile_table_from_data(d: &Data) -> Result<Vec<DayProfile>, CosemError> {
    array_of(d, DayProfile::from_data)
}

pub fn day_profile_table_to_data(days: &[DayProfile]) -> Data {
    array_to(days, DayProfile::to_data)
}

/// The parameter of `activate_passive_calendar` (`integer (0)`).
pub fn activate_passive_calendar_params() -> Data {
    Data::Integer(0)
}

/// The tariff script table most meters switch rates with (`0.0.10.0.100.255`).
pub const TARIFF_SCRIPT_TABLE: ObisCode = ObisCode::new(0, 0, 10, 0, 100, 255);

fn hm(minutes: u16) -> Time {
    Time {
        hour: (minutes / 60).min(23) as u8,
        minute: (minutes % 60) as u8,
        second: 0,
        hundredths: 0,
    }
}

/// A two-rate calendar: one season all year, weekdays on the day rate (script 1) from
/// `day_from` to `day_to` (minutes after midnight) and the night rate (script 2) otherwise,
/// weekends on the night rate all day.
pub fn two_rate(name: &[u8], day_from: u16, day_to: u16) -> Calendar {
    let action = |minutes, script_selector| DayProfileAction {
        start_time: hm(minutes),
        script_logical_name: TARIFF_SCRIPT_TABLE,
        script_selector,
    };
    let mut season_start = DateTime::NOT_SPECIFIED;
    season_start.date.month = 1;
    season_start.date.day = 1;
    season_start.time = hm(0);
    season_start.deviation = crate::axdr::DEVIATION_UNSPECIFIED;
    Calendar {
        name: name.to_vec(),
        seasons: vec![Season {
            season_profile_name: b"ALL-YEAR".to_vec(),
            season_start,
            week_name: b"WEEK-1".to_vec(),
        }],
        week_profiles: vec![WeekProfile {
            week_profile_name: b"WEEK-1".to_vec(),
            days: [1, 1, 1, 1, 1, 2, 2],
        }],
        day_profiles: vec![
            DayProfile {
                day_id: 1,
                day_schedule: vec![action(0, 2), action(day_from, 1), action(day_to, 2)],
            },
            DayProfile {
                day_id: 2,
                day_schedule: vec![action(0, 2)],
            },
        ],
    }
}
