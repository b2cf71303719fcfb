//! A-XDR encoding of COSEM data (IEC 62056-6-2, the Blue Book's `Data` CHOICE): every value a
//! meter sends in an attribute, encoded and decoded losslessly.

mod datetime;
mod view;

pub use datetime::{
    civil_from_days, days_from_civil, Date, DateTime, Time, DEVIATION_UNSPECIFIED, NOT_SPECIFIED,
    YEAR_UNSPECIFIED,
};
pub use view::{Cursor, DataView, Elements, Item};

use crate::codec::{put_length, put_octets, Codec, DecodeError, Reader, MAX_NESTING};

/// The `Data` type tags of the Blue Book.
pub mod tag {
    pub const NULL_DATA: u8 = 0;
    pub const ARRAY: u8 = 1;
    pub const STRUCTURE: u8 = 2;
    pub const BOOLEAN: u8 = 3;
    pub const BIT_STRING: u8 = 4;
    pub const DOUBLE_LONG: u8 = 5;
    pub const DOUBLE_LONG_UNSIGNED: u8 = 6;
    pub const OCTET_STRING: u8 = 9;
    pub const VISIBLE_STRING: u8 = 10;
    pub const UTF8_STRING: u8 = 12;
    pub const BCD: u8 = 13;
    pub const INTEGER: u8 = 15;
    pub const LONG: u8 = 16;
    pub const UNSIGNED: u8 = 17;
    pub const LONG_UNSIGNED: u8 = 18;
    pub const COMPACT_ARRAY: u8 = 19;
    pub const LONG64: u8 = 20;
    pub const LONG64_UNSIGNED: u8 = 21;
    pub const ENUM: u8 = 22;
    pub const FLOAT32: u8 = 23;
    pub const FLOAT64: u8 = 24;
    pub const DATE_TIME: u8 = 25;
    pub const DATE: u8 = 26;
    pub const TIME: u8 = 27;
    pub const DONT_CARE: u8 = 255;
}

/// A bit-string: its length in bits and the bytes holding them, most significant bit first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BitString {
    pub bits: usize,
    pub bytes: Vec<u8>,
}

impl BitString {
    pub fn new(bits: usize, bytes: Vec<u8>) -> Self {
        Self { bits, bytes }
    }

    /// Bit `i`, counted from the most significant bit of the first byte.
    pub fn get(&self, i: usize) -> bool {
        i < self.bits
            && self
                .bytes
                .get(i / 8)
                .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
    }
}

/// The type description of a compact-array (Blue Book 4.1.6.1, `TypeDescription`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TypeDesc {
    /// A simple type, by its `Data` tag.
    Simple(u8),
    Array {
        count: u16,
        element: Box<TypeDesc>,
    },
    Structure(Vec<TypeDesc>),
}

/// A compact-array: one type description, then the elements encoded without their tags.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactArray {
    pub element: TypeDesc,
    pub elements: Vec<Data>,
}

/// One COSEM value. Strings keep their raw bytes so that nothing a meter sends is altered.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Null,
    Array(Vec<Data>),
    Structure(Vec<Data>),
    Boolean(bool),
    BitString(BitString),
    DoubleLong(i32),
    DoubleLongUnsigned(u32),
    OctetString(Vec<u8>),
    VisibleString(Vec<u8>),
    Utf8String(Vec<u8>),
    Bcd(u8),
    Integer(i8),
    Long(i16),
    Unsigned(u8),
    LongUnsigned(u16),
    CompactArray(CompactArray),
    Long64(i64),
    Long64Unsigned(u64),
    Enum(u8),
    Float32(f32),
    Float64(f64),
    DateTime(DateTime),
    Date(Date),
    Time(Time),
    DontCare,
}

impl Data {
    /// The `Data` CHOICE tag of this value.
    pub fn tag(&self) -> u8 {
        match self {
            Data::Null => tag::NULL_DATA,
            Data::Array(_) => tag::ARRAY,
            Data::Structure(_) => tag::STRUCTURE,
            Data::Boolean(_) => tag::BOOLEAN,
            Data::BitString(_) => tag::BIT_STRING,
            Data::DoubleLong(_) => tag::DOUBLE_LONG,
            Data::DoubleLongUnsigned(_) => tag::DOUBLE_LONG_UNSIGNED,
            Data::OctetString(_) => tag::OCTET_STRING,
            Data::VisibleString(_) => tag::VISIBLE_STRING,
            Data::Utf8String(_) => tag::UTF8_STRING,
            Data::Bcd(_) => tag::BCD,
            Data::Integer(_) => tag::INTEGER,
            Data::Long(_) => tag::LONG,
            Data::Unsigned(_) => tag::UNSIGNED,
            Data::LongUnsigned(_) => tag::LONG_UNSIGNED,
            Data::CompactArray(_) => tag::COMPACT_ARRAY,
            Data::Long64(_) => tag::LONG64,
            Data::Long64Unsigned(_) => tag::LONG64_UNSIGNED,
            Data::Enum(_) => tag::ENUM,
            Data::Float32(_) => tag::FLOAT32,
            Data::Float64(_) => tag::FLOAT64,
            Data::DateTime(_) => tag::DATE_TIME,
            Data::Date(_) => tag::DATE,
            Data::Time(_) => tag::TIME,
            Data::DontCare => tag::DONT_CARE,
        }
    }

    /// The Blue Book name of this value's type, as used in JSON output.
    pub fn type_name(&self) -> &'static str {
        type_name(self.tag())
    }

    /// The value as a signed integer, for any integer type (and enum/bcd).
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Data::DoubleLong(v) => v.into(),
            Data::DoubleLongUnsigned(v) => v.into(),
            Data::Integer(v) => v.into(),
            Data::Long(v) => v.into(),
            Data::Unsigned(v) | Data::Enum(v) | Data::Bcd(v) => v.into(),
            Data::LongUnsigned(v) => v.into(),
            Data::Long64(v) => v.into(),
            Data::Long64Unsigned(v) => v.into(),
            _ => return None,
        })
    }

    /// The value as a float, for any numeric type.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Data::Float32(v) => Some(v.into()),
            Data::Float64(v) => Some(v),
            _ => self.as_i128().map(|v| v as f64),
        }
    }

    pub fn as_octets(&self) -> Option<&[u8]> {
        match self {
            Data::OctetString(v) | Data::VisibleString(v) | Data::Utf8String(v) => Some(v),
            _ => None,
        }
    }

    /// Elements of an array, structure or compact-array.
    pub fn as_elements(&self) -> Option<&[Data]> {
        match self {
            Data::Array(v) | Data::Structure(v) => Some(v),
            Data::CompactArray(c) => Some(&c.elements),
            _ => None,
        }
    }

    /// A date-time, whether sent as the date-time type or as a 12-byte octet-string (the
    /// usual form in clock attributes and profile buffers).
    pub fn as_date_time(&self) -> Option<DateTime> {
        match self {
            Data::DateTime(dt) => Some(*dt),
            Data::OctetString(b) if b.len() == DateTime::LEN => DateTime::from_octets(b).ok(),
            _ => None,
        }
    }

    /// Encodes the value without its tag (the form used inside a compact-array).
    fn encode_untagged(&self, out: &mut Vec<u8>) {
        match self {
            Data::Null | Data::DontCare => {}
            Data::Array(items) | Data::Structure(items) => {
                put_length(out, items.len());
                for item in items {
                    item.encode(out);
                }
            }
            Data::Boolean(b) => out.push(u8::from(*b)),
            Data::BitString(bs) => {
                put_length(out, bs.bits);
                let n = bs.bits.div_ceil(8);
                out.extend(bs.bytes.iter().copied().chain(std::iter::repeat(0)).take(n));
            }
            Data::DoubleLong(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::DoubleLongUnsigned(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::OctetString(b) | Data::VisibleString(b) | Data::Utf8String(b) => {
                put_octets(out, b)
            }
            Data::Bcd(v) | Data::Unsigned(v) | Data::Enum(v) => out.push(*v),
            Data::Integer(v) => out.push(*v as u8),
            Data::Long(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::LongUnsigned(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::CompactArray(ca) => {
                ca.element.encode(out);
                let mut contents = Vec::new();
                for e in &ca.elements {
                    encode_typed(e, &ca.element, &mut contents);
                }
                put_octets(out, &contents);
            }
            Data::Long64(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::Long64Unsigned(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::Float32(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::Float64(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::DateTime(v) => v.encode(out),
            Data::Date(v) => v.encode(out),
            Data::Time(v) => v.encode(out),
        }
    }

    fn decode_depth(r: &mut Reader<'_>, depth: usize) -> Result<Self, DecodeError> {
        let t = r.u8("data tag")?;
        decode_untagged(t, r, depth)
    }
}

/// The Blue Book name of a `Data` tag.
pub fn type_name(t: u8) -> &'static str {
    match t {
        tag::NULL_DATA => "null-data",
        tag::ARRAY => "array",
        tag::STRUCTURE => "structure",
        tag::BOOLEAN => "boolean",
        tag::BIT_STRING => "bit-string",
        tag::DOUBLE_LONG => "double-long",
        tag::DOUBLE_LONG_UNSIGNED => "double-long-unsigned",
        tag::OCTET_STRING => "octet-string",
        tag::VISIBLE_STRING => "visible-string",
        tag::UTF8_STRING => "utf8-string",
        tag::BCD => "bcd",
        tag::INTEGER => "integer",
        tag::LONG => "long",
        tag::UNSIGNED => "unsigned",
        tag::LONG_UNSIGNED => "long-unsigned",
        tag::COMPACT_ARRAY => "compact-array",
        tag::LONG64 => "long64",
        tag::LONG64_UNSIGNED => "long64-unsigned",
        tag::ENUM => "enum",
        tag::FLOAT32 => "float32",
        tag::FLOAT64 => "float64",
        tag::DATE_TIME => "date-time",
        tag::DATE => "date",
        tag::TIME => "time",
        tag::DONT_CARE => "dont-care",
        _ => "unknown",
    }
}

fn decode_untagged(t: u8, r: &mut Reader<'_>, depth: usize) -> Result<Data, DecodeError> {
    Ok(match t {
        tag::NULL_DATA => Data::Null,
        tag::DONT_CARE => Data::DontCare,
        tag::ARRAY | tag::STRUCTURE => {
            if depth >= MAX_NESTING {
                return Err(DecodeError::NestingTooDeep);
            }
            let n = r.length("array/structure count")?;
            // Each element takes at least one byte: never allocate past what the input holds.
            if n > r.remaining() {
                return Err(DecodeError::LengthTooLarge {
                    what: "array/structure",
                    len: n,
                });
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(Data::decode_depth(r, depth + 1)?);
            }
            if t == tag::ARRAY {
                Data::Array(items)
            } else {
                Data::Structure(items)
            }
        }
        tag::BOOLEAN => Data::Boolean(r.u8("boolean")? != 0),
        tag::BIT_STRING => {
            let bits = r.length("bit-string length")?;
            let bytes = r.take(bits.div_ceil(8), "bit-string")?.to_vec();
            Data::BitString(BitString { bits, bytes })
        }
        tag::DOUBLE_LONG => Data::DoubleLong(r.u32("double-long")? as i32),
        tag::DOUBLE_LONG_UNSIGNED => Data::DoubleLongUnsigned(r.u32("double-long-unsigned")?),
        tag::OCTET_STRING => Data::OctetString(r.octets("octet-string")?.to_vec()),
        tag::VISIBLE_STRING => Data::VisibleString(r.octets("visible-string")?.to_vec()),
        tag::UTF8_STRING => Data::Utf8String(r.octets("utf8-string")?.to_vec()),
        tag::BCD => Data::Bcd(r.u8("bcd")?),
        tag::INTEGER => Data::Integer(r.u8("integer")? as i8),
        tag::LONG => Data::Long(r.u16("long")? as i16),
        tag::UNSIGNED => Data::Unsigned(r.u8("unsigned")?),
        tag::LONG_UNSIGNED => Data::LongUnsigned(r.u16("long-unsigned")?),
        tag::COMPACT_ARRAY => {
            if depth >= MAX_NESTING {
                return Err(DecodeError::NestingTooDeep);
            }
            let element = TypeDesc::decode_depth(r, depth + 1)?;
            let contents = r.octets("compact-array contents")?;
            let mut cr = Reader::new(contents);
            let mut elements = Vec::new();
            while !cr.is_empty() {
                let before = cr.remaining();
                elements.push(decode_typed(&element, &mut cr, depth + 1)?);
                if cr.remaining() == before {
                    // A description of zero-size elements would loop forever.
                    return Err(DecodeError::Invalid {
                        what: "compact-array",
                        why: "element type has no content",
                    });
                }
            }
            Data::CompactArray(CompactArray { element, elements })
        }
        tag::LONG64 => Data::Long64(r.u64("long64")? as i64),
        tag::LONG64_UNSIGNED => Data::Long64Unsigned(r.u64("long64-unsigned")?),
        tag::ENUM => Data::Enum(r.u8("enum")?),
        tag::FLOAT32 => Data::Float32(f32::from_be_bytes(r.array("float32")?)),
        tag::FLOAT64 => Data::Float64(f64::from_be_bytes(r.array("float64")?)),
        tag::DATE_TIME => Data::DateTime(DateTime::decode(r)?),
        tag::DATE => Data::Date(Date::decode(r)?),
        tag::TIME => Data::Time(Time::decode(r)?),
        other => {
            return Err(DecodeError::UnknownTag {
                what: "data",
                tag: other,
            })
        }
    })
}

/// Decodes one compact-array element of the given description (no tags on the wire).
fn decode_typed(desc: &TypeDesc, r: &mut Reader<'_>, depth: usize) -> Result<Data, DecodeError> {
    if depth >= MAX_NESTING {
        return Err(DecodeError::NestingTooDeep);
    }
    match desc {
        TypeDesc::Simple(t) => decode_untagged(*t, r, depth),
        TypeDesc::Array { count, element } => {
            let n = usize::from(*count);
            if n > r.remaining() {
                return Err(DecodeError::LengthTooLarge {
                    what: "compact-array array",
                    len: n,
                });
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(decode_typed(element, r, depth + 1)?);
            }
            Ok(Data::Array(items))
        }
        TypeDesc::Structure(fields) => {
            let mut items = Vec::with_capacity(fields.len());
            for f in fields {
                items.push(decode_typed(f, r, depth + 1)?);
            }
            Ok(Data::Structure(items))
        }
    }
}

/// Encodes `value` as a compact-array element of type `desc`. A value that does not match its
/// description is encoded as far as it goes (the encoder trusts our own callers).
fn encode_typed(value: &Data, desc: &TypeDesc, out: &mut Vec<u8>) {
    match (desc, value) {
        (TypeDesc::Array { element, .. }, Data::Array(items))
        | (TypeDesc::Array { element, .. }, Data::Structure(items)) => {
            for item in items {
                encode_typed(item, element, out);
            }
        }
        (TypeDesc::Structure(fields), Data::Structure(items))
        | (TypeDesc::Structure(fields), Data::Array(items)) => {
            for (f, item) in fields.iter().zip(items) {
                encode_typed(item, f, out);
            }
        }
        _ => value.encode_untagged(out),
    }
}

impl TypeDesc {
    /// The fewest bytes an element of this description takes on the wire.
    pub fn min_size(&self) -> usize {
        match self {
            TypeDesc::Simple(t) => match *t {
                tag::NULL_DATA | tag::DONT_CARE => 0,
                tag::LONG | tag::LONG_UNSIGNED => 2,
                tag::DOUBLE_LONG | tag::DOUBLE_LONG_UNSIGNED | tag::FLOAT32 | tag::TIME => 4,
                tag::DATE => 5,
                tag::LONG64 | tag::LONG64_UNSIGNED | tag::FLOAT64 => 8,
                tag::DATE_TIME => 12,
                // One byte of value or of length.
                _ => 1,
            },
            TypeDesc::Array { count, element } => {
                usize::from(*count).saturating_mul(element.min_size())
            }
            TypeDesc::Structure(fields) => fields
                .iter()
                .fold(0usize, |n, f| n.saturating_add(f.min_size())),
        }
    }

    fn decode_depth(r: &mut Reader<'_>, depth: usize) -> Result<Self, DecodeError> {
        if depth >= MAX_NESTING {
            return Err(DecodeError::NestingTooDeep);
        }
        let t = r.u8("type description")?;
        Ok(match t {
            tag::ARRAY => {
                let count = r.u16("type description array count")?;
                let element = Box::new(Self::decode_depth(r, depth + 1)?);
                // Elements that take no bytes would let a few bytes of description expand
                // into billions of values: every array element must consume input.
                if count > 0 && element.min_size() == 0 {
                    return Err(DecodeError::Invalid {
                        what: "type description",
                        why: "array of elements with no content",
                    });
                }
                TypeDesc::Array { count, element }
            }
            tag::STRUCTURE => {
                let n = r.length("type description structure count")?;
                if n > r.remaining() {
                    return Err(DecodeError::LengthTooLarge {
                        what: "type description",
                        len: n,
                    });
                }
                let mut fields = Vec::with_capacity(n);
                for _ in 0..n {
                    fields.push(Self::decode_depth(r, depth + 1)?);
                }
                TypeDesc::Structure(fields)
            }
            tag::COMPACT_ARRAY => {
                return Err(DecodeError::Invalid {
                    what: "type description",
                    why: "compact-array cannot nest",
                })
            }
            t if type_name(t) != "unknown" => TypeDesc::Simple(t),
            other => {
                return Err(DecodeError::UnknownTag {
                    what: "type description",
                    tag: other,
                })
            }
        })
    }

    /// The type description of a value (for building a compact-array from sample rows).
    pub fn of(value: &Data) -> Self {
        match value {
            Data::Array(items) => TypeDesc::Array {
                count: items.len() as u16,
                element: Box::new(
                    items
                        .first()
                        .map_or(TypeDesc::Simple(tag::NULL_DATA), Self::of),
                ),
            },
            Data::Structure(items) => TypeDesc::Structure(items.iter().map(Self::of).collect()),
            other => TypeDesc::Simple(other.tag()),
        }
    }
}

impl Codec for TypeDesc {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TypeDesc::Simple(t) => out.push(*t),
            TypeDesc::Array { count, element } => {
                out.push(tag::ARRAY);
                out.extend_from_slice(&count.to_be_bytes());
                element.encode(out);
            }
            TypeDesc::Structure(fields) => {
                out.push(tag::STRUCTURE);
                put_length(out, fields.len());
                for f in fields {
                    f.encode(out);
                }
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::decode_depth(r, 0)
    }
}

impl Codec for Data {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        self.encode_untagged(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::decode_depth(r, 0)
    }
}

impl From<bool> for Data {
    fn from(v: bool) -> Self {
        Data::Boolean(v)
    }
}
impl From<u8> for Data {
    fn from(v: u8) -> Self {
        Data::Unsigned(v)
    }
}
impl From<u16> for Data {
    fn from(v: u16) -> Self {
        Data::LongUnsigned(v)
    }
}
impl From<u32> for Data {
    fn from(v: u32) -> Self {
        Data::DoubleLongUnsigned(v)
    }
}
impl From<i32> for Data {
    fn from(v: i32) -> Self {
        Data::DoubleLong(v)
    }
}
impl From<u64> for Data {
    fn from(v: u64) -> Self {
        Data::Long64Unsigned(v)
    }
}
impl From<i64> for Data {
    fn from(v: i64) -> Self {
        Data::Long64(v)
    }
}
impl From<DateTime> for Data {
    fn from(v: DateTime) -> Self {
        Data::DateTime(v)
    }
}
impl From<Vec<u8>> for Data {
    fn from(v: Vec<u8>) -> Self {
        Data::OctetString(v)
    }
}

#[cfg(test)]
mod tests;
