//! Special days table (class 11): dates (holidays) on which the activity calendar uses another
//! day profile than the week profile says.

use super::value::{array_of, array_to, date, date_to, long_unsigned, structure, unsigned};
use super::{cosem_value, CosemError};
use crate::axdr::{Data, Date};

pub const CLASS_ID: u16 = 11;
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
pub const ENTRIES: i8 = 2;

pub const INSERT: i8 = 1;
pub const DELETE: i8 = 2;

pub(crate) const ATTRIBUTES: &[&str] = &["logical_name", "entries"];
pub(crate) const METHODS: &[&str] = &["insert", "delete"];

/// `spec_day_entry`. The date may hold wildcards (e.g. every 25 December).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpecialDay {
    pub index: u16,
    pub specialday_date: Date,
    /// A `day_id` of the activity calendar's day profile table.
    pub day_id: u8,
}

impl SpecialDay {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [i, dt, id] = structure(d)?;
        Ok(Self {
            index: long_unsigned(i)?,
            specialday_date: date(dt)?,
            day_id: unsigned(id)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::LongUnsigned(self.index),
            date_to(&self.specialday_date),
            Data::Unsigned(self.day_id),
        ])
    }
}

cosem_value!(SpecialDay);

pub fn entries_from_data(d: &Data) -> Result<Vec<SpecialDay>, CosemError> {
    array_of(d, SpecialDay::from_data)
}

pub fn entries_to_data(entries: &[SpecialDay]) -> Data {
    array_to(entries, SpecialDay::to_data)
}

/// The parameter of `insert`: the entry (an existing index is overwritten).
pub fn insert_params(entry: &SpecialDay) -> Data {
    entry.to_data()
}

/// The parameter of `delete`: the index of the entry.
pub fn delete_params(index: u16) -> Data {
    Data::LongUnsigned(index)
}
