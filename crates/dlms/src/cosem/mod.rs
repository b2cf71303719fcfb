//! COSEM interface classes as typed views over attributes and methods (IEC 62056-6-2, the
//! Blue Book).
//!
//! Nothing here talks to a meter: each class module turns the [`Data`] of an attribute (or of a
//! method's parameter) into a typed value and back. Every `from_data` treats its input as
//! untrusted and answers a wrong shape with a [`CosemError`], never a panic.
//!
//! Types are checked strictly against the Blue Book's attribute definitions (a `long-unsigned`
//! field sent as `unsigned` is an error), so that `to_data` gives back what a conforming meter
//! sent. The one leniency is date-times: meters send them both as 12-byte octet-strings and as
//! the `date-time` type, and both are accepted (`to_data` writes the octet-string form the Blue
//! Book specifies for attributes).

mod common;
mod names;
mod scaler_unit;
mod value;

pub mod activity_calendar;
pub mod association_ln;
pub mod clock;
pub mod data;
pub mod demand_register;
pub mod disconnect_control;
pub mod extended_register;
pub mod iec_hdlc_setup;
pub mod image_transfer;
pub mod limiter;
pub mod profile_generic;
pub mod push_setup;
pub mod register;
pub mod register_monitor;
pub mod script_table;
pub mod security_setup;
pub mod single_action_schedule;
pub mod special_days_table;

#[cfg(test)]
mod gurux_tests;
#[cfg(test)]
mod tests;

pub use common::{CaptureObject, ScriptRef, ValueDefinition};
pub use names::{attribute_name, class_name, method_name, ATTRIBUTE_LOGICAL_NAME};
pub use scaler_unit::{ScalerUnit, Unit};

use crate::axdr::Data;

/// Why a [`Data`] value is not the attribute or parameter value a view expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CosemError {
    /// The value (or one of its fields) has another `Data` type than the standard's.
    #[error("wrong type: expected {expected}")]
    WrongType { expected: &'static str },
    /// A structure with another number of fields than the standard's.
    #[error("wrong number of structure fields")]
    WrongLength,
    /// The type is right but the value is not allowed (the text says which rule).
    #[error("invalid value: {0}")]
    Invalid(&'static str),
    /// A selective-access selector the class does not define.
    #[error("unknown access selector {0}")]
    UnknownSelector(u8),
}

/// A value with a typed view: every structured attribute or parameter value implements it, so
/// that generic code (tests, fuzzing, a generic reader) can handle them alike. Each type also
/// has inherent `from_data`/`to_data` methods, so callers need not import this trait.
pub trait CosemValue: Sized {
    fn from_data(data: &Data) -> Result<Self, CosemError>;
    fn to_data(&self) -> Data;
}

/// Implements [`CosemValue`] by forwarding to the type's inherent methods.
macro_rules! cosem_value {
    ($($t:ty),+ $(,)?) => {$(
        impl $crate::cosem::CosemValue for $t {
            fn from_data(data: &$crate::axdr::Data) -> Result<Self, $crate::cosem::CosemError> {
                <$t>::from_data(data)
            }
            fn to_data(&self) -> $crate::axdr::Data {
                <$t>::to_data(self)
            }
        }
    )+};
}
pub(crate) use cosem_value;
