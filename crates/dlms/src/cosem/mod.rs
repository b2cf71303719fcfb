//! COSEM interface classes as typed views over attributes and methods (IEC 62056-6-2, the
//! Blue Book): names of every class, attribute and method we know, and typed values for the
//! structured attributes a head-end reads and writes.

pub mod association_ln;
pub mod classes;
mod names;
pub mod profile_generic;
#[cfg(test)]
mod tests;

pub use names::{attribute_name, class_name, method_name};

use thiserror::Error;

use crate::axdr::Data;
use crate::obis::ObisCode;

/// A COSEM value that does not have the shape its attribute requires.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CosemError {
    #[error("expected {expected}")]
    WrongType { expected: &'static str },
    #[error("wrong number of elements in {what}")]
    WrongLength { what: &'static str },
    #[error("invalid: {0}")]
    Invalid(&'static str),
}

fn elements<'a>(d: &'a Data, what: &'static str, n: usize) -> Result<&'a [Data], CosemError> {
    let e = match d {
        Data::Structure(e) => e.as_slice(),
        _ => return Err(CosemError::WrongType { expected: what }),
    };
    if e.len() != n {
        return Err(CosemError::WrongLength { what });
    }
    Ok(e)
}

fn int<T: TryFrom<i128>>(d: &Data, what: &'static str) -> Result<T, CosemError> {
    d.as_i128()
        .and_then(|v| T::try_from(v).ok())
        .ok_or(CosemError::WrongType { expected: what })
}

fn obis(d: &Data) -> Result<ObisCode, CosemError> {
    d.as_octets()
        .and_then(ObisCode::from_octets)
        .ok_or(CosemError::WrongType {
            expected: "a 6-byte logical name",
        })
}

/// A unit of the Blue Book's unit table (`enum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unit(pub u8);

impl Unit {
    pub const WATT: Unit = Unit(27);
    pub const VOLT_AMPERE: Unit = Unit(28);
    pub const VAR: Unit = Unit(29);
    pub const WATT_HOUR: Unit = Unit(30);
    pub const VOLT_AMPERE_HOUR: Unit = Unit(31);
    pub const VAR_HOUR: Unit = Unit(32);
    pub const AMPERE: Unit = Unit(33);
    pub const VOLT: Unit = Unit(35);
    pub const HERTZ: Unit = Unit(44);
    pub const COUNT: Unit = Unit(255);

    /// The unit's symbol, as the Blue Book writes it.
    pub fn symbol(self) -> Option<&'static str> {
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
            70 => "dBm",
            71 => "dBμV",
            72 => "dB",
            254 => "other",
            255 => "count",
            _ => return None,
        })
    }
}

/// `scal_unit_type`: value = raw × 10^scaler, in `unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScalerUnit {
    pub scaler: i8,
    pub unit: Unit,
}

impl ScalerUnit {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let e = elements(d, "scaler_unit structure", 2)?;
        match e {
            [Data::Integer(s), Data::Enum(u)] => Ok(Self {
                scaler: *s,
                unit: Unit(*u),
            }),
            _ => Err(CosemError::WrongType {
                expected: "structure {integer, enum}",
            }),
        }
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![Data::Integer(self.scaler), Data::Enum(self.unit.0)])
    }

    pub fn apply(&self, raw: f64) -> f64 {
        raw * 10f64.powi(i32::from(self.scaler))
    }
}

/// `capture_object_definition` of profile generic and push setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CaptureObject {
    pub class_id: u16,
    pub logical_name: ObisCode,
    pub attribute_index: i8,
    pub data_index: u16,
}

impl CaptureObject {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let e = elements(d, "capture object structure", 4)?;
        let [c, ln, a, di] = e else {
            return Err(CosemError::WrongLength {
                what: "capture object",
            });
        };
        Ok(Self {
            class_id: int(c, "long-unsigned class id")?,
            logical_name: obis(ln)?,
            attribute_index: int(a, "integer attribute index")?,
            data_index: int(di, "long-unsigned data index")?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::LongUnsigned(self.class_id),
            Data::OctetString(self.logical_name.as_bytes().to_vec()),
            Data::Integer(self.attribute_index),
            Data::LongUnsigned(self.data_index),
        ])
    }

    pub fn list_from_data(d: &Data) -> Result<Vec<Self>, CosemError> {
        match d {
            Data::Array(items) => items.iter().map(Self::from_data).collect(),
            _ => Err(CosemError::WrongType {
                expected: "array of capture objects",
            }),
        }
    }
}

/// Attribute and method numbers of the classes a head-end commands.
pub mod clock {
    pub const CLASS_ID: u16 = 8;
    pub const TIME: i8 = 2;
    /// Minutes; the Blue Book's sign convention is deviation from UTC, see `DateTime`.
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
}

pub mod disconnect_control {
    pub const CLASS_ID: u16 = 70;
    pub const OUTPUT_STATE: i8 = 2;
    pub const CONTROL_STATE: i8 = 3;
    pub const CONTROL_MODE: i8 = 4;
    pub const REMOTE_DISCONNECT: i8 = 1;
    pub const REMOTE_RECONNECT: i8 = 2;

    /// `control_state`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ControlState {
        Disconnected,
        Connected,
        ReadyForReconnection,
    }

    impl ControlState {
        pub fn from_enum(v: u8) -> Option<Self> {
            Some(match v {
                0 => Self::Disconnected,
                1 => Self::Connected,
                2 => Self::ReadyForReconnection,
                _ => return None,
            })
        }
    }
}

pub mod image_transfer {
    use crate::axdr::Data;

    pub const CLASS_ID: u16 = 18;
    pub const IMAGE_BLOCK_SIZE: i8 = 2;
    pub const TRANSFERRED_BLOCKS_STATUS: i8 = 3;
    pub const FIRST_NOT_TRANSFERRED_BLOCK_NUMBER: i8 = 4;
    pub const IMAGE_TRANSFER_ENABLED: i8 = 5;
    pub const IMAGE_TRANSFER_STATUS: i8 = 6;
    pub const IMAGE_TO_ACTIVATE_INFO: i8 = 7;
    pub const IMAGE_TRANSFER_INITIATE: i8 = 1;
    pub const IMAGE_BLOCK_TRANSFER: i8 = 2;
    pub const IMAGE_VERIFY: i8 = 3;
    pub const IMAGE_ACTIVATE: i8 = 4;

    pub fn initiate_params(identifier: &[u8], size: u32) -> Data {
        Data::Structure(vec![
            Data::OctetString(identifier.to_vec()),
            Data::DoubleLongUnsigned(size),
        ])
    }

    pub fn block_params(block_number: u32, value: &[u8]) -> Data {
        Data::Structure(vec![
            Data::DoubleLongUnsigned(block_number),
            Data::OctetString(value.to_vec()),
        ])
    }
}

pub mod security_setup {
    use crate::axdr::Data;

    pub const CLASS_ID: u16 = 64;
    pub const SECURITY_POLICY: i8 = 2;
    pub const SECURITY_SUITE: i8 = 3;
    pub const CLIENT_SYSTEM_TITLE: i8 = 4;
    pub const SERVER_SYSTEM_TITLE: i8 = 5;
    pub const SECURITY_ACTIVATE: i8 = 1;
    pub const KEY_TRANSFER: i8 = 2;

    /// `key_id` of key_transfer.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum KeyId {
        GlobalUnicastEncryption = 0,
        GlobalBroadcastEncryption = 1,
        Authentication = 2,
        Master = 3,
    }

    /// The parameter of key_transfer: `array of structure {key_id, key_wrapped}`.
    pub fn key_transfer_params(keys: &[(KeyId, Vec<u8>)]) -> Data {
        Data::Array(
            keys.iter()
                .map(|(id, wrapped)| {
                    Data::Structure(vec![
                        Data::Enum(*id as u8),
                        Data::OctetString(wrapped.clone()),
                    ])
                })
                .collect(),
        )
    }
}
