//! Profile generic (class 7): a buffer of captured rows (load profiles, event logs) whose
//! columns are described by `capture_objects`, read whole or through selective access by
//! range (selector 1) or by entry (selector 2).

mod select;
#[cfg(test)]
mod tests;

pub use select::select;

use super::value::{
    array, array_of, array_to, double_long_unsigned, enumerated, long_unsigned, structure,
};
use super::{cosem_value, CaptureObject, CosemError};
use crate::axdr::Data;
use crate::obis::ObisCode;

pub const CLASS_ID: u16 = 7;
pub const VERSION: u8 = 1;

pub const LOGICAL_NAME: i8 = 1;
pub const BUFFER: i8 = 2;
pub const CAPTURE_OBJECTS: i8 = 3;
/// `capture_period`: double-long-unsigned seconds; 0 means capture is triggered externally.
pub const CAPTURE_PERIOD: i8 = 4;
pub const SORT_METHOD: i8 = 5;
pub const SORT_OBJECT: i8 = 6;
pub const ENTRIES_IN_USE: i8 = 7;
pub const PROFILE_ENTRIES: i8 = 8;

pub const RESET: i8 = 1;
pub const CAPTURE: i8 = 2;

/// Access selector 1: `range_descriptor`.
pub const RANGE_DESCRIPTOR: u8 = 1;
/// Access selector 2: `entry_descriptor`.
pub const ENTRY_DESCRIPTOR: u8 = 2;

pub(crate) const ATTRIBUTES: &[&str] = &[
    "logical_name",
    "buffer",
    "capture_objects",
    "capture_period",
    "sort_method",
    "sort_object",
    "entries_in_use",
    "profile_entries",
];
pub(crate) const METHODS: &[&str] = &["reset", "capture"];

/// `sort_method` (enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortMethod {
    Fifo,
    Lifo,
    Largest,
    Smallest,
    NearestToZero,
    FarthestFromZero,
}

impl SortMethod {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        Ok(match enumerated(d)? {
            1 => Self::Fifo,
            2 => Self::Lifo,
            3 => Self::Largest,
            4 => Self::Smallest,
            5 => Self::NearestToZero,
            6 => Self::FarthestFromZero,
            _ => return Err(CosemError::Invalid("sort_method not in 1..=6")),
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Enum(match self {
            Self::Fifo => 1,
            Self::Lifo => 2,
            Self::Largest => 3,
            Self::Smallest => 4,
            Self::NearestToZero => 5,
            Self::FarthestFromZero => 6,
        })
    }
}

/// The static description of a profile (everything but the buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileGeneric {
    pub logical_name: ObisCode,
    pub capture_objects: Vec<CaptureObject>,
    pub capture_period: u32,
    pub sort_method: SortMethod,
    /// `sort_object`; a meter that sorts FIFO/LIFO sends an all-zero definition here.
    pub sort_object: CaptureObject,
    pub entries_in_use: u32,
    pub profile_entries: u32,
}

/// `capture_objects`: array of `capture_object_definition`.
pub fn capture_objects_from_data(d: &Data) -> Result<Vec<CaptureObject>, CosemError> {
    array_of(d, CaptureObject::from_data)
}

pub fn capture_objects_to_data(objects: &[CaptureObject]) -> Data {
    array_to(objects, CaptureObject::to_data)
}

/// `buffer`: array of rows, each a structure with one value per captured column.
pub fn buffer_from_data(d: &Data) -> Result<Vec<Vec<Data>>, CosemError> {
    array_of(d, |row| match row {
        Data::Structure(cells) => Ok(cells.clone()),
        _ => Err(CosemError::WrongType {
            expected: "structure (buffer row)",
        }),
    })
}

pub fn buffer_to_data(rows: &[Vec<Data>]) -> Data {
    array_to(rows, |r| Data::Structure(r.clone()))
}

/// `capture_period`, `entries_in_use`, `profile_entries`: double-long-unsigned.
pub fn u32_from_data(d: &Data) -> Result<u32, CosemError> {
    double_long_unsigned(d)
}

/// `range_descriptor`, the parameters of access selector 1.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeDescriptor {
    /// The column the range applies to (usually the clock's time, attribute 2).
    pub restricting_object: CaptureObject,
    pub from_value: Data,
    pub to_value: Data,
    /// Columns to return; empty means all.
    pub selected_values: Vec<CaptureObject>,
}

impl RangeDescriptor {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [restricting, from, to, selected] = structure(d)?;
        Ok(Self {
            restricting_object: CaptureObject::from_data(restricting)?,
            from_value: from.clone(),
            to_value: to.clone(),
            selected_values: capture_objects_from_data(selected)?,
        })
    }

    pub fn to_data(&self) -> Data {
        range_descriptor(
            &self.restricting_object,
            &self.from_value,
            &self.to_value,
            &self.selected_values,
        )
    }
}

/// `entry_descriptor`, the parameters of access selector 2. Entries and values count from 1;
/// a `to_*` of 0 means "up to the last".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryDescriptor {
    pub from_entry: u32,
    pub to_entry: u32,
    pub from_selected_value: u16,
    pub to_selected_value: u16,
}

impl EntryDescriptor {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [fe, te, fv, tv] = structure(d)?;
        Ok(Self {
            from_entry: double_long_unsigned(fe)?,
            to_entry: double_long_unsigned(te)?,
            from_selected_value: long_unsigned(fv)?,
            to_selected_value: long_unsigned(tv)?,
        })
    }

    pub fn to_data(&self) -> Data {
        entry_descriptor(
            self.from_entry,
            self.to_entry,
            self.from_selected_value,
            self.to_selected_value,
        )
    }
}

cosem_value!(SortMethod, RangeDescriptor, EntryDescriptor);

/// The parameters of access selector 1: rows whose `restricting` column lies in
/// `[from, to]`, limited to the `selected` columns (empty = all).
pub fn range_descriptor(
    restricting: &CaptureObject,
    from: &Data,
    to: &Data,
    selected: &[CaptureObject],
) -> Data {
    Data::Structure(vec![
        restricting.to_data(),
        from.clone(),
        to.clone(),
        capture_objects_to_data(selected),
    ])
}

/// The parameters of access selector 2.
pub fn entry_descriptor(from_entry: u32, to_entry: u32, from_value: u16, to_value: u16) -> Data {
    Data::Structure(vec![
        Data::DoubleLongUnsigned(from_entry),
        Data::DoubleLongUnsigned(to_entry),
        Data::LongUnsigned(from_value),
        Data::LongUnsigned(to_value),
    ])
}

/// Checks that a value is an array, for callers that only need its length (e.g. counting
/// rows without copying them).
pub fn buffer_len(d: &Data) -> Result<usize, CosemError> {
    array(d).map(<[Data]>::len)
}
