//! Register (class 3): a value with a scaler and unit, such as an energy total.

use super::ScalerUnit;
use crate::axdr::Data;
use crate::obis::ObisCode;

pub const CLASS_ID: u16 = 3;
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
pub const VALUE: i8 = 2;
pub const SCALER_UNIT: i8 = 3;

pub const RESET: i8 = 1;

pub(crate) const ATTRIBUTES: &[&str] = &["logical_name", "value", "scaler_unit"];
pub(crate) const METHODS: &[&str] = &["reset"];

/// A Register object as read from a meter.
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    pub logical_name: ObisCode,
    pub value: Data,
    pub scaler_unit: ScalerUnit,
}

impl Register {
    /// The value in its unit, when the value is numeric.
    pub fn physical_value(&self) -> Option<f64> {
        self.value.as_f64().map(|v| self.scaler_unit.apply(v))
    }
}

/// The parameter of `reset` (and of every method whose parameter is "integer (0)").
pub fn reset_params() -> Data {
    Data::Integer(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosem::Unit;

    #[test]
    fn physical_value_applies_the_scaler() {
        let r = Register {
            logical_name: ObisCode::new(1, 0, 1, 8, 0, 255),
            value: Data::DoubleLongUnsigned(123_456),
            scaler_unit: ScalerUnit::new(-2, Unit::WATT_HOUR),
        };
        let v = r.physical_value().unwrap_or(f64::NAN);
        assert!((v - 1234.56).abs() < 1e-9, "{v}");
        let text = Register {
            value: Data::VisibleString(b"x".to_vec()),
            ..r
        };
        assert_eq!(text.physical_value(), None);
    }
}
