//! Clock (class 8): the meter's local time, time zone, daylight-saving rules and status.
//!
//! Sign convention: the Blue Book gives both `time_zone` and the deviation inside a date-time
//! as the deviation of local (normal) time *to* UTC in minutes, i.e. UTC minus local time: a
//! meter in CET (UTC+01:00) holds `time_zone = -60`. Some meters use the opposite sign (Gurux
//! has a `UseUtc2NormalTime` switch for them); this module follows the standard and
//! [`Clock::utc_offset_minutes`] turns it into the usual "local minus UTC" offset.

use super::value::{
    boolean, date_time, date_time_to, enumerated, integer, long, structure, unsigned,
};
use super::{cosem_value, CosemError};
use crate::axdr::{Data, DateTime, DEVIATION_UNSPECIFIED};
use crate::obis::ObisCode;

pub const CLASS_ID: u16 = 8;
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
pub const TIME: i8 = 2;
pub const TIME_ZONE: i8 = 3;
pub const STATUS: i8 = 4;
pub const DAYLIGHT_SAVINGS_BEGIN: i8 = 5;
pub const DAYLIGHT_SAVINGS_END: i8 = 6;
pub const DAYLIGHT_SAVINGS_DEVIATION: i8 = 7;
pub const DAYLIGHT_SAVINGS_ENABLED: i8 = 8;
pub const CLOCK_BASE: i8 = 9;

pub const ADJUST_TO_QUARTER: i8 = 1;
pub const ADJUST_TO_MEASURING_PERIOD: i8 = 2;
pub const ADJUST_TO_MINUTE: i8 = 3;
pub const ADJUST_TO_PRESET_TIME: i8 = 4;
pub const PRESET_ADJUSTING_TIME: i8 = 5;
pub const SHIFT_TIME: i8 = 6;

pub(crate) const ATTRIBUTES: &[&str] = &[
    "logical_name",
    "time",
    "time_zone",
    "status",
    "daylight_savings_begin",
    "daylight_savings_end",
    "daylight_savings_deviation",
    "daylight_savings_enabled",
    "clock_base",
];
pub(crate) const METHODS: &[&str] = &[
    "adjust_to_quarter",
    "adjust_to_measuring_period",
    "adjust_to_minute",
    "adjust_to_preset_time",
    "preset_adjusting_time",
    "shift_time",
];

/// The clock status byte (attribute 4, and the last byte of every date-time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ClockStatus(pub u8);

impl ClockStatus {
    pub const INVALID_VALUE: u8 = 0x01;
    pub const DOUBTFUL_VALUE: u8 = 0x02;
    pub const DIFFERENT_CLOCK_BASE: u8 = 0x04;
    pub const INVALID_CLOCK_STATUS: u8 = 0x08;
    pub const DAYLIGHT_SAVING_ACTIVE: u8 = 0x80;
    /// 0xFF in a date-time means "status not specified", not "every bit set".
    pub const NOT_SPECIFIED: u8 = 0xFF;

    pub fn is_specified(self) -> bool {
        self.0 != Self::NOT_SPECIFIED
    }
    pub fn invalid_value(self) -> bool {
        self.is_specified() && self.0 & Self::INVALID_VALUE != 0
    }
    pub fn doubtful_value(self) -> bool {
        self.is_specified() && self.0 & Self::DOUBTFUL_VALUE != 0
    }
    pub fn different_clock_base(self) -> bool {
        self.is_specified() && self.0 & Self::DIFFERENT_CLOCK_BASE != 0
    }
    pub fn invalid_clock_status(self) -> bool {
        self.is_specified() && self.0 & Self::INVALID_CLOCK_STATUS != 0
    }
    pub fn daylight_saving_active(self) -> bool {
        self.is_specified() && self.0 & Self::DAYLIGHT_SAVING_ACTIVE != 0
    }

    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        unsigned(d).map(Self)
    }

    pub fn to_data(&self) -> Data {
        Data::Unsigned(self.0)
    }
}

/// `clock_base` (enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockBase {
    NotDefined,
    InternalCrystal,
    Mains50Hz,
    Mains60Hz,
    Gps,
    RadioControlled,
    /// A value the Blue Book reserves (or a manufacturer-specific one).
    Other(u8),
}

impl ClockBase {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        Ok(match enumerated(d)? {
            0 => Self::NotDefined,
            1 => Self::InternalCrystal,
            2 => Self::Mains50Hz,
            3 => Self::Mains60Hz,
            4 => Self::Gps,
            5 => Self::RadioControlled,
            n => Self::Other(n),
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Enum(match self {
            Self::NotDefined => 0,
            Self::InternalCrystal => 1,
            Self::Mains50Hz => 2,
            Self::Mains60Hz => 3,
            Self::Gps => 4,
            Self::RadioControlled => 5,
            Self::Other(n) => *n,
        })
    }
}

/// A Clock object with every attribute read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub logical_name: ObisCode,
    pub time: DateTime,
    /// UTC minus local normal time, minutes (CET = -60); see the module doc.
    pub time_zone: i16,
    pub status: ClockStatus,
    /// Date-times with wildcards (e.g. "last Sunday of March, 02:00").
    pub daylight_savings_begin: DateTime,
    pub daylight_savings_end: DateTime,
    /// Minutes added to local time while daylight saving is active.
    pub daylight_savings_deviation: i8,
    pub daylight_savings_enabled: bool,
    pub clock_base: ClockBase,
}

impl Clock {
    /// Local normal time minus UTC in minutes (CET = +60), if the time zone is specified.
    pub fn utc_offset_minutes(&self) -> Option<i32> {
        (self.time_zone != DEVIATION_UNSPECIFIED).then(|| -i32::from(self.time_zone))
    }
}

/// `time`, `daylight_savings_begin`, `daylight_savings_end`: octet-string date-times.
pub fn time_from_data(d: &Data) -> Result<DateTime, CosemError> {
    date_time(d)
}

pub fn time_to_data(t: &DateTime) -> Data {
    date_time_to(t)
}

/// `time_zone`: long.
pub fn time_zone_from_data(d: &Data) -> Result<i16, CosemError> {
    long(d)
}

/// `daylight_savings_deviation`: integer.
pub fn daylight_savings_deviation_from_data(d: &Data) -> Result<i8, CosemError> {
    integer(d)
}

/// `daylight_savings_enabled`: boolean.
pub fn daylight_savings_enabled_from_data(d: &Data) -> Result<bool, CosemError> {
    boolean(d)
}

/// The parameter of methods 1..=4 (`data ::= integer (0)`).
pub fn no_params() -> Data {
    Data::Integer(0)
}

/// The parameter of `shift_time`: seconds to shift, -900..=900.
pub fn shift_time_params(seconds: i16) -> Result<Data, CosemError> {
    if !(-900..=900).contains(&seconds) {
        return Err(CosemError::Invalid("shift_time is limited to ±900 s"));
    }
    Ok(Data::Long(seconds))
}

/// The parameter of `preset_adjusting_time`: the time to set by `adjust_to_preset_time`,
/// accepted only within the validity interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresetAdjustingTime {
    pub preset_time: DateTime,
    pub validity_interval_start: DateTime,
    pub validity_interval_end: DateTime,
}

impl PresetAdjustingTime {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [p, s, e] = structure(d)?;
        Ok(Self {
            preset_time: date_time(p)?,
            validity_interval_start: date_time(s)?,
            validity_interval_end: date_time(e)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            date_time_to(&self.preset_time),
            date_time_to(&self.validity_interval_start),
            date_time_to(&self.validity_interval_end),
        ])
    }
}

cosem_value!(ClockStatus, ClockBase, PresetAdjustingTime);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn status_bits() {
        let s = ClockStatus(0x81);
        assert!(s.invalid_value() && s.daylight_saving_active());
        assert!(!s.doubtful_value() && !s.different_clock_base() && !s.invalid_clock_status());
        // "Not specified" sets no flag.
        let n = ClockStatus(0xFF);
        assert!(!n.invalid_value() && !n.daylight_saving_active());
        assert_eq!(ClockStatus::from_data(&s.to_data()), Ok(s));
    }

    #[test]
    fn time_zone_sign_follows_the_blue_book() {
        let t = DateTime::from_unix(1_767_225_600, 60, 0);
        let c = Clock {
            logical_name: ObisCode::new(0, 0, 1, 0, 0, 255),
            time: t,
            time_zone: -60,
            status: ClockStatus(0),
            daylight_savings_begin: t,
            daylight_savings_end: t,
            daylight_savings_deviation: 60,
            daylight_savings_enabled: true,
            clock_base: ClockBase::InternalCrystal,
        };
        assert_eq!(c.utc_offset_minutes(), Some(60));
        assert_eq!(t.deviation, c.time_zone);
        let unspecified = Clock {
            time_zone: DEVIATION_UNSPECIFIED,
            ..c
        };
        assert_eq!(unspecified.utc_offset_minutes(), None);
    }

    #[test]
    fn method_params() {
        assert_eq!(shift_time_params(-900), Ok(Data::Long(-900)));
        assert!(shift_time_params(901).is_err());
        let t = DateTime::from_unix(1_767_225_600, 0, 0);
        let p = PresetAdjustingTime {
            preset_time: t,
            validity_interval_start: t,
            validity_interval_end: t,
        };
        assert_eq!(PresetAdjustingTime::from_data(&p.to_data()), Ok(p));
        let mut short = t.to_octets();
        short.pop();
        let bad = Data::Structure(vec![
            Data::OctetString(short),
            date_time_to(&t),
            date_time_to(&t),
        ]);
        assert!(matches!(
            PresetAdjustingTime::from_data(&bad),
            Err(CosemError::Invalid(_))
        ));
        for b in [0, 1, 2, 3, 4, 5, 77] {
            let cb = ClockBase::from_data(&Data::Enum(b)).unwrap();
            assert_eq!(cb.to_data(), Data::Enum(b));
        }
        assert_eq!(time_zone_from_data(&Data::Long(-60)), Ok(-60));
        assert!(time_zone_from_data(&Data::Integer(-60)).is_err());
    }
}
