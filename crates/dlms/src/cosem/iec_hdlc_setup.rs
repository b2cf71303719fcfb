//! IEC HDLC setup (class 23): the HDLC link parameters of a serial or optical port.

use super::value::{enumerated, long_unsigned, unsigned};
use super::{cosem_value, CosemError};
use crate::axdr::Data;

pub const CLASS_ID: u16 = 23;
pub const VERSION: u8 = 1;

pub const LOGICAL_NAME: i8 = 1;
pub const COMM_SPEED: i8 = 2;
pub const WINDOW_SIZE_TRANSMIT: i8 = 3;
pub const WINDOW_SIZE_RECEIVE: i8 = 4;
pub const MAX_INFO_FIELD_LENGTH_TRANSMIT: i8 = 5;
pub const MAX_INFO_FIELD_LENGTH_RECEIVE: i8 = 6;
/// Milliseconds, long-unsigned.
pub const INTER_OCTET_TIME_OUT: i8 = 7;
/// Seconds, long-unsigned; 0 disables the inactivity timer.
pub const INACTIVITY_TIME_OUT: i8 = 8;
pub const DEVICE_ADDRESS: i8 = 9;

pub(crate) const ATTRIBUTES: &[&str] = &[
    "logical_name",
    "comm_speed",
    "window_size_transmit",
    "window_size_receive",
    "max_info_field_length_transmit",
    "max_info_field_length_receive",
    "inter_octet_time_out",
    "inactivity_time_out",
    "device_address",
];
pub(crate) const METHODS: &[&str] = &[];

/// `comm_speed` (enum 0..=9: 300 to 115 200 baud).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommSpeed(pub u8);

impl CommSpeed {
    const BAUDS: [u32; 10] = [
        300, 600, 1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200,
    ];

    /// The rate in baud, `None` for values the Blue Book does not define.
    pub fn baud(&self) -> Option<u32> {
        Self::BAUDS.get(usize::from(self.0)).copied()
    }

    pub fn from_baud(baud: u32) -> Option<Self> {
        let i = Self::BAUDS.iter().position(|b| *b == baud)?;
        u8::try_from(i).ok().map(Self)
    }

    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let s = Self(enumerated(d)?);
        s.baud()
            .map(|_| s)
            .ok_or(CosemError::Invalid("comm_speed not in 0..=9"))
    }

    pub fn to_data(&self) -> Data {
        Data::Enum(self.0)
    }
}

cosem_value!(CommSpeed);

/// An IEC HDLC setup object with every attribute read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IecHdlcSetup {
    pub comm_speed: CommSpeed,
    pub window_size_transmit: u8,
    pub window_size_receive: u8,
    pub max_info_field_length_transmit: u16,
    pub max_info_field_length_receive: u16,
    pub inter_octet_time_out: u16,
    pub inactivity_time_out: u16,
    pub device_address: u16,
}

impl IecHdlcSetup {
    /// Builds the object from its attributes 2..=9, in order.
    pub fn from_attributes(values: &[Data; 8]) -> Result<Self, CosemError> {
        let [speed, wt, wr, mt, mr, io, it, addr] = values;
        Ok(Self {
            comm_speed: CommSpeed::from_data(speed)?,
            window_size_transmit: window(wt)?,
            window_size_receive: window(wr)?,
            max_info_field_length_transmit: long_unsigned(mt)?,
            max_info_field_length_receive: long_unsigned(mr)?,
            inter_octet_time_out: long_unsigned(io)?,
            inactivity_time_out: long_unsigned(it)?,
            device_address: long_unsigned(addr)?,
        })
    }

    /// Attributes 2..=9, in order.
    pub fn to_attributes(&self) -> [Data; 8] {
        [
            self.comm_speed.to_data(),
            Data::Unsigned(self.window_size_transmit),
            Data::Unsigned(self.window_size_receive),
            Data::LongUnsigned(self.max_info_field_length_transmit),
            Data::LongUnsigned(self.max_info_field_length_receive),
            Data::LongUnsigned(self.inter_octet_time_out),
            Data::LongUnsigned(self.inactivity_time_out),
            Data::LongUnsigned(self.device_address),
        ]
    }
}

/// HDLC windows hold 1..=7 frames.
fn window(d: &Data) -> Result<u8, CosemError> {
    let w = unsigned(d)?;
    if (1..=7).contains(&w) {
        Ok(w)
    } else {
        Err(CosemError::Invalid("HDLC window size not in 1..=7"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn attributes_round_trip_and_validate() {
        let s = IecHdlcSetup {
            comm_speed: CommSpeed::from_baud(9600).unwrap(),
            window_size_transmit: 1,
            window_size_receive: 7,
            max_info_field_length_transmit: 128,
            max_info_field_length_receive: 2030,
            inter_octet_time_out: 25,
            inactivity_time_out: 120,
            device_address: 0x10,
        };
        assert_eq!(s.comm_speed, CommSpeed(5));
        let attrs = s.to_attributes();
        assert_eq!(IecHdlcSetup::from_attributes(&attrs), Ok(s));
        let mut bad = attrs.clone();
        bad[1] = Data::Unsigned(8);
        assert!(IecHdlcSetup::from_attributes(&bad).is_err());
        let mut bad = attrs;
        bad[0] = Data::Enum(10);
        assert!(IecHdlcSetup::from_attributes(&bad).is_err());
        assert_eq!(CommSpeed(9).baud(), Some(115_200));
        assert_eq!(CommSpeed::from_baud(1234), None);
    }
}
