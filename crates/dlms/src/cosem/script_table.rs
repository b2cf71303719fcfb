//! Script table (class 9): numbered scripts, each a list of attribute writes and method calls
//! the meter runs when the script is executed (e.g. by a schedule or a monitor).

use super::value::{
    array_of, array_to, enumerated, integer, long_unsigned, obis, obis_to, structure,
};
use super::{cosem_value, CosemError};
use crate::axdr::Data;
use crate::obis::ObisCode;

pub const CLASS_ID: u16 = 9;
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
pub const SCRIPTS: i8 = 2;

pub const EXECUTE: i8 = 1;

pub(crate) const ATTRIBUTES: &[&str] = &["logical_name", "scripts"];
pub(crate) const METHODS: &[&str] = &["execute"];

/// `service_id` of an action (enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceId {
    WriteAttribute,
    ExecuteMethod,
}

/// `action_specification`: one write or method call.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub service_id: ServiceId,
    pub class_id: u16,
    pub logical_name: ObisCode,
    /// Attribute or method index, per `service_id`.
    pub index: i8,
    pub parameter: Data,
}

impl Action {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [s, c, ln, i, p] = structure(d)?;
        Ok(Self {
            service_id: match enumerated(s)? {
                1 => ServiceId::WriteAttribute,
                2 => ServiceId::ExecuteMethod,
                _ => return Err(CosemError::Invalid("service_id is not 1 or 2")),
            },
            class_id: long_unsigned(c)?,
            logical_name: obis(ln)?,
            index: integer(i)?,
            parameter: p.clone(),
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::Enum(match self.service_id {
                ServiceId::WriteAttribute => 1,
                ServiceId::ExecuteMethod => 2,
            }),
            Data::LongUnsigned(self.class_id),
            obis_to(&self.logical_name),
            Data::Integer(self.index),
            self.parameter.clone(),
        ])
    }
}

/// `script`: an identifier and its actions.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub script_identifier: u16,
    pub actions: Vec<Action>,
}

impl Script {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [id, actions] = structure(d)?;
        Ok(Self {
            script_identifier: long_unsigned(id)?,
            actions: array_of(actions, Action::from_data)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::LongUnsigned(self.script_identifier),
            array_to(&self.actions, Action::to_data),
        ])
    }
}

cosem_value!(Action, Script);

/// `scripts`: array of `script`.
pub fn scripts_from_data(d: &Data) -> Result<Vec<Script>, CosemError> {
    array_of(d, Script::from_data)
}

pub fn scripts_to_data(scripts: &[Script]) -> Data {
    array_to(scripts, Script::to_data)
}

/// The parameter of `execute`: the script identifier.
pub fn execute_params(script_identifier: u16) -> Data {
    Data::LongUnsigned(script_identifier)
}
