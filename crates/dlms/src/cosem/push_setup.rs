//! Push setup (class 40): what a meter pushes on its own (alarms, periodic readings), where
//! to, and when it may do so.

use super::value::{
    array_of, array_to, date_time, date_time_to, enumerated, long_unsigned, octets, structure,
    unsigned,
};
use super::{cosem_value, CaptureObject, CosemError};
use crate::axdr::{Data, DateTime};

pub const CLASS_ID: u16 = 40;
/// Version 0; versions 1 and 2 change `repetition_delay` into a structure, which
/// [`RepetitionDelay`] reads too.
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
pub const PUSH_OBJECT_LIST: i8 = 2;
pub const SEND_DESTINATION_AND_METHOD: i8 = 3;
pub const COMMUNICATION_WINDOW: i8 = 4;
/// Seconds, long-unsigned.
pub const RANDOMISATION_START_INTERVAL: i8 = 5;
pub const NUMBER_OF_RETRIES: i8 = 6;
pub const REPETITION_DELAY: i8 = 7;

pub const PUSH: i8 = 1;

pub(crate) const ATTRIBUTES: &[&str] = &[
    "logical_name",
    "push_object_list",
    "send_destination_and_method",
    "communication_window",
    "randomisation_start_interval",
    "number_of_retries",
    "repetition_delay",
];
pub(crate) const METHODS: &[&str] = &["push"];

/// `transport_service_type` (enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportService {
    Tcp,
    Udp,
    Ftp,
    Smtp,
    Sms,
    Hdlc,
    MBus,
    ZigBee,
    /// Values from 8 (DLMS gateway and later additions) and manufacturer-specific ones.
    Other(u8),
}

impl TransportService {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Tcp,
            1 => Self::Udp,
            2 => Self::Ftp,
            3 => Self::Smtp,
            4 => Self::Sms,
            5 => Self::Hdlc,
            6 => Self::MBus,
            7 => Self::ZigBee,
            n => Self::Other(n),
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Tcp => 0,
            Self::Udp => 1,
            Self::Ftp => 2,
            Self::Smtp => 3,
            Self::Sms => 4,
            Self::Hdlc => 5,
            Self::MBus => 6,
            Self::ZigBee => 7,
            Self::Other(n) => n,
        }
    }
}

/// `message_type` (enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    AxdrApdu,
    XmlApdu,
    Other(u8),
}

/// `send_destination_and_method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendDestinationAndMethod {
    pub transport_service: TransportService,
    /// E.g. `b"10.0.0.1:4059"` for TCP, a phone number for SMS.
    pub destination: Vec<u8>,
    pub message: MessageType,
}

impl SendDestinationAndMethod {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [t, dest, m] = structure(d)?;
        Ok(Self {
            transport_service: TransportService::from_u8(enumerated(t)?),
            destination: octets(dest)?,
            message: match enumerated(m)? {
                0 => MessageType::AxdrApdu,
                1 => MessageType::XmlApdu,
                n => MessageType::Other(n),
            },
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::Enum(self.transport_service.to_u8()),
            Data::OctetString(self.destination.clone()),
            Data::Enum(match self.message {
                MessageType::AxdrApdu => 0,
                MessageType::XmlApdu => 1,
                MessageType::Other(n) => n,
            }),
        ])
    }
}

/// One `communication_window` element: pushes are allowed from `start` to `end` (usually
/// with wildcards, e.g. every day 01:00 to 03:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime,
    pub end: DateTime,
}

impl Window {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [s, e] = structure(d)?;
        Ok(Self {
            start: date_time(s)?,
            end: date_time(e)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![date_time_to(&self.start), date_time_to(&self.end)])
    }
}

/// `repetition_delay`: a fixed delay in seconds (version 0), or an exponential back-off
/// (versions 1 and 2: delay = min * (exponent/100)^(retry-1), at most max).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepetitionDelay {
    Fixed(u16),
    Exponential { min: u16, exponent: u16, max: u16 },
}

impl RepetitionDelay {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        match d {
            Data::Structure(_) => {
                let [min, exp, max] = structure(d)?;
                Ok(Self::Exponential {
                    min: long_unsigned(min)?,
                    exponent: long_unsigned(exp)?,
                    max: long_unsigned(max)?,
                })
            }
            _ => long_unsigned(d).map(Self::Fixed),
        }
    }

    pub fn to_data(&self) -> Data {
        match *self {
            Self::Fixed(s) => Data::LongUnsigned(s),
            Self::Exponential { min, exponent, max } => Data::Structure(vec![
                Data::LongUnsigned(min),
                Data::LongUnsigned(exponent),
                Data::LongUnsigned(max),
            ]),
        }
    }
}

cosem_value!(SendDestinationAndMethod, Window, RepetitionDelay);

/// A Push setup object with every attribute read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSetup {
    pub push_object_list: Vec<CaptureObject>,
    pub send_destination_and_method: SendDestinationAndMethod,
    pub communication_window: Vec<Window>,
    pub randomisation_start_interval: u16,
    pub number_of_retries: u8,
    pub repetition_delay: RepetitionDelay,
}

/// `push_object_list`: capture object definitions.
pub fn push_object_list_from_data(d: &Data) -> Result<Vec<CaptureObject>, CosemError> {
    array_of(d, CaptureObject::from_data)
}

pub fn push_object_list_to_data(objects: &[CaptureObject]) -> Data {
    array_to(objects, CaptureObject::to_data)
}

pub fn communication_window_from_data(d: &Data) -> Result<Vec<Window>, CosemError> {
    array_of(d, Window::from_data)
}

pub fn communication_window_to_data(windows: &[Window]) -> Data {
    array_to(windows, Window::to_data)
}

pub fn randomisation_start_interval_from_data(d: &Data) -> Result<u16, CosemError> {
    long_unsigned(d)
}

pub fn number_of_retries_from_data(d: &Data) -> Result<u8, CosemError> {
    unsigned(d)
}

/// The parameter of `push` (`integer (0)`).
pub fn push_params() -> Data {
    Data::Integer(0)
}
