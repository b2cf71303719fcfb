//! Limiter (class 71): watches a value (usually demand) against thresholds and runs scripts
//! (e.g. a disconnection) when it stays over or under them long enough; an emergency profile
//! can replace the normal threshold for a while.

use super::value::{
    array_of, array_to, boolean, date_time, date_time_to, double_long_unsigned, long_unsigned,
    structure,
};
use super::{cosem_value, CosemError, ScriptRef, ValueDefinition};
use crate::axdr::{Data, DateTime};

pub const CLASS_ID: u16 = 71;
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
pub const MONITORED_VALUE: i8 = 2;
pub const THRESHOLD_ACTIVE: i8 = 3;
pub const THRESHOLD_NORMAL: i8 = 4;
pub const THRESHOLD_EMERGENCY: i8 = 5;
/// Seconds, double-long-unsigned.
pub const MIN_OVER_THRESHOLD_DURATION: i8 = 6;
/// Seconds, double-long-unsigned.
pub const MIN_UNDER_THRESHOLD_DURATION: i8 = 7;
pub const EMERGENCY_PROFILE: i8 = 8;
pub const EMERGENCY_PROFILE_GROUP_ID_LIST: i8 = 9;
pub const EMERGENCY_PROFILE_ACTIVE: i8 = 10;
pub const ACTIONS: i8 = 11;

pub(crate) const ATTRIBUTES: &[&str] = &[
    "logical_name",
    "monitored_value",
    "threshold_active",
    "threshold_normal",
    "threshold_emergency",
    "min_over_threshold_duration",
    "min_under_threshold_duration",
    "emergency_profile",
    "emergency_profile_group_id_list",
    "emergency_profile_active",
    "actions",
];
pub(crate) const METHODS: &[&str] = &[];

/// `emergency_profile`: from `activation_time`, for `duration` seconds, the emergency
/// threshold applies if `id` is in the group id list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmergencyProfile {
    pub emergency_profile_id: u16,
    pub emergency_activation_time: DateTime,
    pub emergency_duration: u32,
}

impl EmergencyProfile {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [id, at, dur] = structure(d)?;
        Ok(Self {
            emergency_profile_id: long_unsigned(id)?,
            emergency_activation_time: date_time(at)?,
            emergency_duration: double_long_unsigned(dur)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::LongUnsigned(self.emergency_profile_id),
            date_time_to(&self.emergency_activation_time),
            Data::DoubleLongUnsigned(self.emergency_duration),
        ])
    }
}

/// `actions`: scripts run when the value stays over, then under, the active threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimiterActions {
    pub action_over_threshold: ScriptRef,
    pub action_under_threshold: ScriptRef,
}

impl LimiterActions {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [over, under] = structure(d)?;
        Ok(Self {
            action_over_threshold: ScriptRef::from_data(over)?,
            action_under_threshold: ScriptRef::from_data(under)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            self.action_over_threshold.to_data(),
            self.action_under_threshold.to_data(),
        ])
    }
}

cosem_value!(EmergencyProfile, LimiterActions);

/// A Limiter object. Thresholds have the monitored value's type, so they stay `Data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limiter {
    pub monitored_value: ValueDefinition,
    pub threshold_active: Data,
    pub threshold_normal: Data,
    pub threshold_emergency: Data,
    pub min_over_threshold_duration: u32,
    pub min_under_threshold_duration: u32,
    pub emergency_profile: EmergencyProfile,
    pub emergency_profile_group_id_list: Vec<u16>,
    pub emergency_profile_active: bool,
    pub actions: LimiterActions,
}

pub fn emergency_profile_group_id_list_from_data(d: &Data) -> Result<Vec<u16>, CosemError> {
    array_of(d, long_unsigned)
}

pub fn emergency_profile_group_id_list_to_data(ids: &[u16]) -> Data {
    array_to(ids, |id| Data::LongUnsigned(*id))
}

pub fn emergency_profile_active_from_data(d: &Data) -> Result<bool, CosemError> {
    boolean(d)
}

/// `min_over_threshold_duration` / `min_under_threshold_duration`.
pub fn duration_from_data(d: &Data) -> Result<u32, CosemError> {
    double_long_unsigned(d)
}
