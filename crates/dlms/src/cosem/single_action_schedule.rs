//! Single action schedule (class 22): runs one script at given times (e.g. the end of a
//! billing period).

use super::value::{array_of, array_to, date, date_to, enumerated, structure, time, time_to};
use super::{cosem_value, CosemError, ScriptRef};
use crate::axdr::{Data, Date, Time};

pub const CLASS_ID: u16 = 22;
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
pub const EXECUTED_SCRIPT: i8 = 2;
pub const TYPE: i8 = 3;
pub const EXECUTION_TIME: i8 = 4;

pub(crate) const ATTRIBUTES: &[&str] =
    &["logical_name", "executed_script", "type", "execution_time"];
pub(crate) const METHODS: &[&str] = &[];

/// `type` (enum): how many execution times there are and whether they may use wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScheduleType {
    /// One time; wildcards in the date allowed.
    Single,
    /// n times, all with the same time of day; no wildcards in dates.
    SameTimeNoWildcards,
    /// n times, all with the same time of day; wildcards in dates allowed.
    SameTimeWildcards,
    /// n times, times of day may differ; no wildcards in dates.
    AnyTimeNoWildcards,
    /// n times, times of day may differ; wildcards in dates allowed.
    AnyTimeWildcards,
}

impl ScheduleType {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        Ok(match enumerated(d)? {
            1 => Self::Single,
            2 => Self::SameTimeNoWildcards,
            3 => Self::SameTimeWildcards,
            4 => Self::AnyTimeNoWildcards,
            5 => Self::AnyTimeWildcards,
            _ => {
                return Err(CosemError::Invalid(
                    "single action schedule type not in 1..=5",
                ))
            }
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Enum(match self {
            Self::Single => 1,
            Self::SameTimeNoWildcards => 2,
            Self::SameTimeWildcards => 3,
            Self::AnyTimeNoWildcards => 4,
            Self::AnyTimeWildcards => 5,
        })
    }
}

/// One `execution_time_date` entry: note the Blue Book puts the time before the date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExecutionTime {
    pub time: Time,
    pub date: Date,
}

impl ExecutionTime {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [t, dt] = structure(d)?;
        Ok(Self {
            time: time(t)?,
            date: date(dt)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![time_to(&self.time), date_to(&self.date)])
    }
}

cosem_value!(ScheduleType, ExecutionTime);

/// A Single action schedule object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleActionSchedule {
    pub executed_script: ScriptRef,
    pub schedule_type: ScheduleType,
    pub execution_time: Vec<ExecutionTime>,
}

pub fn execution_time_from_data(d: &Data) -> Result<Vec<ExecutionTime>, CosemError> {
    array_of(d, ExecutionTime::from_data)
}

pub fn execution_time_to_data(times: &[ExecutionTime]) -> Data {
    array_to(times, ExecutionTime::to_data)
}
