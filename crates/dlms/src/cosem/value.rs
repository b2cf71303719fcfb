//! Field extraction shared by every view: each helper checks one `Data` type and reports a
//! mismatch as a typed error, so views read like the Blue Book's ASN.1 definitions.

use super::CosemError;
use crate::axdr::{BitString, Data, Date, DateTime, Time};
use crate::obis::ObisCode;

fn wrong(expected: &'static str) -> CosemError {
    CosemError::WrongType { expected }
}

/// The fields of a structure that must have exactly `N` of them.
pub(crate) fn structure<const N: usize>(d: &Data) -> Result<&[Data; N], CosemError> {
    match d {
        Data::Structure(items) => items
            .as_slice()
            .try_into()
            .map_err(|_| CosemError::WrongLength),
        _ => Err(wrong("structure")),
    }
}

/// The elements of an array (a compact-array is the same value in another encoding).
pub(crate) fn array(d: &Data) -> Result<&[Data], CosemError> {
    match d {
        Data::Array(items) => Ok(items),
        Data::CompactArray(ca) => Ok(&ca.elements),
        _ => Err(wrong("array")),
    }
}

/// Maps every element of an array through `f`.
pub(crate) fn array_of<T>(
    d: &Data,
    f: impl Fn(&Data) -> Result<T, CosemError>,
) -> Result<Vec<T>, CosemError> {
    array(d)?.iter().map(f).collect()
}

pub(crate) fn array_to<T>(items: &[T], f: impl Fn(&T) -> Data) -> Data {
    Data::Array(items.iter().map(f).collect())
}

pub(crate) fn boolean(d: &Data) -> Result<bool, CosemError> {
    match d {
        Data::Boolean(v) => Ok(*v),
        _ => Err(wrong("boolean")),
    }
}

pub(crate) fn integer(d: &Data) -> Result<i8, CosemError> {
    match d {
        Data::Integer(v) => Ok(*v),
        _ => Err(wrong("integer")),
    }
}

pub(crate) fn long(d: &Data) -> Result<i16, CosemError> {
    match d {
        Data::Long(v) => Ok(*v),
        _ => Err(wrong("long")),
    }
}

pub(crate) fn unsigned(d: &Data) -> Result<u8, CosemError> {
    match d {
        Data::Unsigned(v) => Ok(*v),
        _ => Err(wrong("unsigned")),
    }
}

pub(crate) fn long_unsigned(d: &Data) -> Result<u16, CosemError> {
    match d {
        Data::LongUnsigned(v) => Ok(*v),
        _ => Err(wrong("long-unsigned")),
    }
}

pub(crate) fn double_long_unsigned(d: &Data) -> Result<u32, CosemError> {
    match d {
        Data::DoubleLongUnsigned(v) => Ok(*v),
        _ => Err(wrong("double-long-unsigned")),
    }
}

pub(crate) fn enumerated(d: &Data) -> Result<u8, CosemError> {
    match d {
        Data::Enum(v) => Ok(*v),
        _ => Err(wrong("enum")),
    }
}

pub(crate) fn octets(d: &Data) -> Result<Vec<u8>, CosemError> {
    match d {
        Data::OctetString(v) => Ok(v.clone()),
        _ => Err(wrong("octet-string")),
    }
}

pub(crate) fn bit_string(d: &Data) -> Result<BitString, CosemError> {
    match d {
        Data::BitString(v) => Ok(v.clone()),
        _ => Err(wrong("bit-string")),
    }
}

/// A logical name: an octet-string of exactly six bytes.
pub(crate) fn obis(d: &Data) -> Result<ObisCode, CosemError> {
    match d {
        Data::OctetString(v) => {
            ObisCode::from_octets(v).ok_or(CosemError::Invalid("logical name is not 6 bytes"))
        }
        _ => Err(wrong("octet-string (logical name)")),
    }
}

pub(crate) fn obis_to(o: &ObisCode) -> Data {
    Data::OctetString(o.as_bytes().to_vec())
}

/// A date-time, as a 12-byte octet-string or as the date-time type.
pub(crate) fn date_time(d: &Data) -> Result<DateTime, CosemError> {
    match d {
        Data::DateTime(v) => Ok(*v),
        Data::OctetString(b) => {
            DateTime::from_octets(b).map_err(|_| CosemError::Invalid("date-time is not 12 bytes"))
        }
        _ => Err(wrong("octet-string (date-time)")),
    }
}

pub(crate) fn date_time_to(v: &DateTime) -> Data {
    Data::OctetString(v.to_octets())
}

/// A date, as a 5-byte octet-string or as the date type.
pub(crate) fn date(d: &Data) -> Result<Date, CosemError> {
    match d {
        Data::Date(v) => Ok(*v),
        Data::OctetString(b) => {
            Date::from_octets(b).map_err(|_| CosemError::Invalid("date is not 5 bytes"))
        }
        _ => Err(wrong("octet-string (date)")),
    }
}

pub(crate) fn date_to(v: &Date) -> Data {
    let mut out = Vec::with_capacity(Date::LEN);
    v.encode(&mut out);
    Data::OctetString(out)
}

/// A time, as a 4-byte octet-string or as the time type.
pub(crate) fn time(d: &Data) -> Result<Time, CosemError> {
    match d {
        Data::Time(v) => Ok(*v),
        Data::OctetString(b) => {
            Time::from_octets(b).map_err(|_| CosemError::Invalid("time is not 4 bytes"))
        }
        _ => Err(wrong("octet-string (time)")),
    }
}

pub(crate) fn time_to(v: &Time) -> Data {
    let mut out = Vec::with_capacity(Time::LEN);
    v.encode(&mut out);
    Data::OctetString(out)
}
