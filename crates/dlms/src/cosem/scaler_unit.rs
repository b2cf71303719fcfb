//! `scaler_unit` (registers, demand registers, extended registers): a power-of-ten scaler and a
//! unit from the Blue Book's unit table.

use std::fmt;

use super::value::{enumerated, integer, structure};
use super::{cosem_value, CosemError};
use crate::axdr::Data;

/// A physical unit, by its Blue Book `unit` enumeration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unit(pub u8);

impl Unit {
    pub const YEAR: Unit = Unit(1);
    pub const SECOND: Unit = Unit(7);
    pub const CELSIUS: Unit = Unit(9);
    pub const CUBIC_METRE: Unit = Unit(13);
    pub const WATT: Unit = Unit(27);
    pub const VOLT_AMPERE: Unit = Unit(28);
    pub const VAR: Unit = Unit(29);
    pub const WATT_HOUR: Unit = Unit(30);
    pub const VOLT_AMPERE_HOUR: Unit = Unit(31);
    pub const VAR_HOUR: Unit = Unit(32);
    pub const AMPERE: Unit = Unit(33);
    pub const VOLT: Unit = Unit(35);
    pub const HERTZ: Unit = Unit(44);
    pub const PERCENT: Unit = Unit(56);
    /// "No unit, unitless, count".
    pub const COUNT: Unit = Unit(255);

    /// The symbol the Blue Book gives the unit; `None` for values the table leaves reserved.
    pub fn symbol(&self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "a",
            2 => "mo",
            3 => "wk",
            4 => "d",
            5 => "h",
            6 => "min",
            7 => "s",
            8 => "°",
            9 => "°C",
            10 => "currency",
            11 => "m",
            12 => "m/s",
            13 => "m³",
            14 => "m³ (corrected)",
            15 => "m³/h",
            16 => "m³/h (corrected)",
            17 => "m³/d",
            18 => "m³/d (corrected)",
            19 => "l",
            20 => "kg",
            21 => "N",
            22 => "Nm",
            23 => "Pa",
            24 => "bar",
            25 => "J",
            26 => "J/h",
            27 => "W",
            28 => "VA",
            29 => "var",
            30 => "Wh",
            31 => "VAh",
            32 => "varh",
            33 => "A",
            34 => "C",
            35 => "V",
            36 => "V/m",
            37 => "F",
            38 => "Ω",
            39 => "Ωm²/m",
            40 => "Wb",
            41 => "T",
            42 => "A/m",
            43 => "H",
            44 => "Hz",
            45 => "1/(Wh)",
            46 => "1/(varh)",
            47 => "1/(VAh)",
            48 => "V²h",
            49 => "A²h",
            50 => "kg/s",
            51 => "S",
            52 => "K",
            53 => "1/(V²h)",
            54 => "1/(A²h)",
            55 => "1/m³",
            56 => "%",
            57 => "Ah",
            60 => "Wh/m³",
            61 => "J/m³",
            62 => "Mol %",
            63 => "g/m³",
            64 => "Pa s",
            65 => "J/kg",
            66 => "g/cm²",
            67 => "atm",
            70 => "dBm",
            71 => "dBµV",
            72 => "dB",
            254 => "other",
            255 => "count",
            _ => return None,
        })
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.symbol() {
            Some(s) => f.write_str(s),
            None => write!(f, "unit({})", self.0),
        }
    }
}

/// `scaler_unit_type ::= structure { scaler integer, unit enum }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScalerUnit {
    pub scaler: i8,
    pub unit: Unit,
}

impl ScalerUnit {
    pub fn new(scaler: i8, unit: Unit) -> Self {
        Self { scaler, unit }
    }

    /// The physical value of a raw attribute value: `raw * 10^scaler`.
    pub fn apply(&self, raw: f64) -> f64 {
        raw * 10f64.powi(i32::from(self.scaler))
    }

    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [s, u] = structure(d)?;
        Ok(Self {
            scaler: integer(s)?,
            unit: Unit(enumerated(u)?),
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![Data::Integer(self.scaler), Data::Enum(self.unit.0)])
    }
}

cosem_value!(ScalerUnit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_scales_by_powers_of_ten() {
        let su = ScalerUnit::new(-3, Unit::WATT_HOUR);
        assert!((su.apply(12345.0) - 12.345).abs() < 1e-9);
        assert!((ScalerUnit::new(2, Unit::WATT).apply(7.0) - 700.0).abs() < 1e-9);
        assert_eq!(ScalerUnit::new(0, Unit::COUNT).apply(5.0), 5.0);
    }

    #[test]
    fn symbols_follow_the_blue_book_table() {
        let cases = [
            (27, "W"),
            (30, "Wh"),
            (32, "varh"),
            (33, "A"),
            (35, "V"),
            (44, "Hz"),
            (255, "count"),
        ];
        for (id, sym) in cases {
            assert_eq!(Unit(id).symbol(), Some(sym), "unit {id}");
        }
        assert_eq!(Unit(0).symbol(), None);
        assert_eq!(Unit(200).to_string(), "unit(200)");
    }

    #[test]
    fn encodes_as_integer_and_enum() {
        let su = ScalerUnit::new(-1, Unit::VOLT);
        assert_eq!(
            su.to_data(),
            Data::Structure(vec![Data::Integer(-1), Data::Enum(35)])
        );
        assert_eq!(ScalerUnit::from_data(&su.to_data()), Ok(su));
        // Unsigned instead of enum is a type error, not a silently accepted unit.
        let bad = Data::Structure(vec![Data::Integer(-1), Data::Unsigned(35)]);
        assert_eq!(
            ScalerUnit::from_data(&bad),
            Err(CosemError::WrongType { expected: "enum" })
        );
    }
}
