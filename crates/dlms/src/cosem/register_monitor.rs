//! Register monitor (class 21): watches an attribute and runs a script when it crosses one of
//! its thresholds upwards or downwards.

use super::value::{array, array_of, array_to, structure};
use super::{cosem_value, CosemError, ScriptRef, ValueDefinition};
use crate::axdr::Data;

pub const CLASS_ID: u16 = 21;
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
/// `thresholds`: array of values of the monitored attribute's type.
pub const THRESHOLDS: i8 = 2;
pub const MONITORED_VALUE: i8 = 3;
pub const ACTIONS: i8 = 4;

pub(crate) const ATTRIBUTES: &[&str] =
    &["logical_name", "thresholds", "monitored_value", "actions"];
pub(crate) const METHODS: &[&str] = &[];

/// `action_set`: the scripts run when a threshold is crossed upwards and downwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActionSet {
    pub action_up: ScriptRef,
    pub action_down: ScriptRef,
}

impl ActionSet {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [up, down] = structure(d)?;
        Ok(Self {
            action_up: ScriptRef::from_data(up)?,
            action_down: ScriptRef::from_data(down)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![self.action_up.to_data(), self.action_down.to_data()])
    }
}

cosem_value!(ActionSet);

/// A Register monitor object: one action set per threshold, in the same order.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterMonitor {
    pub thresholds: Vec<Data>,
    pub monitored_value: ValueDefinition,
    pub actions: Vec<ActionSet>,
}

/// `thresholds`: any values, as long as they form an array.
pub fn thresholds_from_data(d: &Data) -> Result<Vec<Data>, CosemError> {
    array(d).map(<[Data]>::to_vec)
}

pub fn thresholds_to_data(thresholds: &[Data]) -> Data {
    Data::Array(thresholds.to_vec())
}

pub fn actions_from_data(d: &Data) -> Result<Vec<ActionSet>, CosemError> {
    array_of(d, ActionSet::from_data)
}

pub fn actions_to_data(actions: &[ActionSet]) -> Data {
    array_to(actions, ActionSet::to_data)
}
