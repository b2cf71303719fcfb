//! Extended register (class 4): a register that also records a status and when the value was
//! captured (e.g. a maximum demand with its time stamp).

use super::ScalerUnit;
use crate::axdr::{Data, DateTime};
use crate::obis::ObisCode;

pub const CLASS_ID: u16 = 4;
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
pub const VALUE: i8 = 2;
pub const SCALER_UNIT: i8 = 3;
pub const STATUS: i8 = 4;
pub const CAPTURE_TIME: i8 = 5;

pub const RESET: i8 = 1;

pub(crate) const ATTRIBUTES: &[&str] = &[
    "logical_name",
    "value",
    "scaler_unit",
    "status",
    "capture_time",
];
pub(crate) const METHODS: &[&str] = &["reset"];

/// An Extended register object. `status` is manufacturer-specific, so it stays a `Data`;
/// `capture_time` is read with [`capture_time_from_data`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExtendedRegister {
    pub logical_name: ObisCode,
    pub value: Data,
    pub scaler_unit: ScalerUnit,
    pub status: Data,
    pub capture_time: DateTime,
}

impl ExtendedRegister {
    pub fn physical_value(&self) -> Option<f64> {
        self.value.as_f64().map(|v| self.scaler_unit.apply(v))
    }
}

/// `capture_time`: a date-time (octet-string or date-time type).
pub fn capture_time_from_data(d: &Data) -> Result<DateTime, super::CosemError> {
    super::value::date_time(d)
}
