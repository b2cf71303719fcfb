//! Demand register (class 5): an average over a sliding or block period (e.g. average power
//! over 15 minutes), with the value of the current and of the last completed period.

use super::value::{date_time, date_time_to};
use super::{CosemError, ScalerUnit};
use crate::axdr::{Data, DateTime};
use crate::obis::ObisCode;

pub const CLASS_ID: u16 = 5;
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
pub const CURRENT_AVERAGE_VALUE: i8 = 2;
pub const LAST_AVERAGE_VALUE: i8 = 3;
pub const SCALER_UNIT: i8 = 4;
pub const STATUS: i8 = 5;
pub const CAPTURE_TIME: i8 = 6;
pub const START_TIME_CURRENT: i8 = 7;
/// `period`: double-long-unsigned, seconds.
pub const PERIOD: i8 = 8;
/// `number_of_periods`: long-unsigned; 1 means block demand, more means sliding demand.
pub const NUMBER_OF_PERIODS: i8 = 9;

pub const RESET: i8 = 1;
pub const NEXT_PERIOD: i8 = 2;

pub(crate) const ATTRIBUTES: &[&str] = &[
    "logical_name",
    "current_average_value",
    "last_average_value",
    "scaler_unit",
    "status",
    "capture_time",
    "start_time_current",
    "period",
    "number_of_periods",
];
pub(crate) const METHODS: &[&str] = &["reset", "next_period"];

/// A Demand register object.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandRegister {
    pub logical_name: ObisCode,
    pub current_average_value: Data,
    pub last_average_value: Data,
    pub scaler_unit: ScalerUnit,
    pub status: Data,
    pub capture_time: DateTime,
    pub start_time_current: DateTime,
    pub period: u32,
    pub number_of_periods: u16,
}

impl DemandRegister {
    pub fn last_average(&self) -> Option<f64> {
        self.last_average_value
            .as_f64()
            .map(|v| self.scaler_unit.apply(v))
    }
}

/// `capture_time` / `start_time_current`.
pub fn time_from_data(d: &Data) -> Result<DateTime, CosemError> {
    date_time(d)
}

pub fn time_to_data(t: &DateTime) -> Data {
    date_time_to(t)
}

/// `period`: double-long-unsigned seconds.
pub fn period_from_data(d: &Data) -> Result<u32, CosemError> {
    super::value::double_long_unsigned(d)
}

/// `number_of_periods`: long-unsigned.
pub fn number_of_periods_from_data(d: &Data) -> Result<u16, CosemError> {
    super::value::long_unsigned(d)
}
