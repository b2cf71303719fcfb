//! Data (class 1): a value with no unit, such as a serial number, a status word or a
//! firmware identifier.

use crate::axdr::Data;
use crate::obis::ObisCode;

pub const CLASS_ID: u16 = 1;
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
pub const VALUE: i8 = 2;

pub(crate) const ATTRIBUTES: &[&str] = &["logical_name", "value"];
pub(crate) const METHODS: &[&str] = &[];

/// A Data object: its value has any `Data` type the meter chooses.
#[derive(Debug, Clone, PartialEq)]
pub struct DataObject {
    pub logical_name: ObisCode,
    pub value: Data,
}
