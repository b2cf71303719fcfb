//! Value shapes that several classes share: capture object definitions (profile generic, push
//! setup), value definitions (register monitor, limiter) and script references (activity
//! calendar, register monitor, single action schedule, limiter).

use super::value::{integer, long_unsigned, obis, obis_to, structure};
use super::{cosem_value, CosemError};
use crate::axdr::Data;
use crate::obis::ObisCode;

/// `capture_object_definition`: one column of a profile buffer or one pushed value.
/// `data_index` 0 means the whole attribute; n > 0 selects the n-th element of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CaptureObject {
    pub class_id: u16,
    pub logical_name: ObisCode,
    pub attribute_index: i8,
    pub data_index: u16,
}

impl CaptureObject {
    pub fn new(class_id: u16, logical_name: ObisCode, attribute_index: i8) -> Self {
        Self {
            class_id,
            logical_name,
            attribute_index,
            data_index: 0,
        }
    }

    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [c, ln, a, i] = structure(d)?;
        Ok(Self {
            class_id: long_unsigned(c)?,
            logical_name: obis(ln)?,
            attribute_index: integer(a)?,
            data_index: long_unsigned(i)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::LongUnsigned(self.class_id),
            obis_to(&self.logical_name),
            Data::Integer(self.attribute_index),
            Data::LongUnsigned(self.data_index),
        ])
    }
}

/// `value_definition`: the attribute a register monitor or limiter watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValueDefinition {
    pub class_id: u16,
    pub logical_name: ObisCode,
    pub attribute_index: i8,
}

impl ValueDefinition {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [c, ln, a] = structure(d)?;
        Ok(Self {
            class_id: long_unsigned(c)?,
            logical_name: obis(ln)?,
            attribute_index: integer(a)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::LongUnsigned(self.class_id),
            obis_to(&self.logical_name),
            Data::Integer(self.attribute_index),
        ])
    }
}

/// A reference to one script of a script table (`action_item`, `executed_script`):
/// the table's logical name and the script's identifier in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScriptRef {
    pub script_logical_name: ObisCode,
    pub script_selector: u16,
}

impl ScriptRef {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [ln, sel] = structure(d)?;
        Ok(Self {
            script_logical_name: obis(ln)?,
            script_selector: long_unsigned(sel)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            obis_to(&self.script_logical_name),
            Data::LongUnsigned(self.script_selector),
        ])
    }
}

cosem_value!(CaptureObject, ValueDefinition, ScriptRef);
