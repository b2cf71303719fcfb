//! Limiter (class 71, `0.0.17.0.0.255`): a demand limit. It watches a value (by default the
//! sum active power import, `1.0.1.7.0.255` attribute 2) against a threshold in W; the
//! configured actions say which scripts run when the value stays over, then under, it.
//!
//! The object stores and type-checks its configuration (with the `dlms` limiter views); it
//! does not itself measure or run scripts.
//!
//! * `threshold_active` (3) is read-only: it is `threshold_emergency` while the emergency
//!   profile is active, `threshold_normal` otherwise.
//! * `emergency_profile_active` (10) is read-only and computed from the meter's clock: the
//!   emergency profile's id is in `emergency_profile_group_id_list` and `now` lies within
//!   `[emergency_activation_time, + emergency_duration)`. An activation time with wildcards
//!   never starts an emergency.
//! * Thresholds are `double-long-unsigned` (W), durations `double-long-unsigned` (s); the
//!   group id list holds at most [`MAX_GROUP_IDS`] ids (more is `other-reason`).

use dlms::axdr::{Data, DateTime};
use dlms::cosem::limiter::{
    emergency_profile_group_id_list_from_data, emergency_profile_group_id_list_to_data,
    EmergencyProfile, LimiterActions, ACTIONS, EMERGENCY_PROFILE, EMERGENCY_PROFILE_ACTIVE,
    EMERGENCY_PROFILE_GROUP_ID_LIST, MIN_OVER_THRESHOLD_DURATION, MIN_UNDER_THRESHOLD_DURATION,
    MONITORED_VALUE, THRESHOLD_ACTIVE, THRESHOLD_EMERGENCY, THRESHOLD_NORMAL,
};
use dlms::cosem::{ScriptRef, ValueDefinition};
use dlms::xdlms::{ActionResult, DataAccessResult};
use dlms::ObisCode;

/// The default monitored value: sum active power import (register, attribute 2).
pub const SUM_ACTIVE_POWER_IMPORT: ObisCode = ObisCode::new(1, 0, 1, 7, 0, 255);
/// The disconnect control script table the default actions run.
pub const DISCONNECT_SCRIPT_TABLE: ObisCode = ObisCode::new(0, 0, 10, 0, 106, 255);
/// The most ids `emergency_profile_group_id_list` holds.
pub const MAX_GROUP_IDS: usize = 16;

/// The state of one limiter object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limiter {
    monitored_value: ValueDefinition,
    threshold_normal: u32,
    threshold_emergency: u32,
    min_over_threshold_duration: u32,
    min_under_threshold_duration: u32,
    emergency_profile: EmergencyProfile,
    emergency_profile_group_id_list: Vec<u16>,
    actions: LimiterActions,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new()
    }
}

fn u32_from(value: &Data) -> Result<u32, DataAccessResult> {
    match value {
        Data::DoubleLongUnsigned(v) => Ok(*v),
        _ => Err(DataAccessResult::TypeUnmatched),
    }
}

impl Limiter {
    /// Monitors `1.0.1.7.0.255` attribute 2; normal threshold 15 kW, emergency 5 kW; 60 s over
    /// and under; no emergency profile (id 0, time not specified, duration 0, empty group
    /// list); over the threshold runs script 1 (disconnect) of `0.0.10.0.106.255`, under it
    /// script 2 (reconnect).
    pub fn new() -> Self {
        let unspecified = DateTime::NOT_SPECIFIED;
        let script = |script_selector| ScriptRef {
            script_logical_name: DISCONNECT_SCRIPT_TABLE,
            script_selector,
        };
        Self {
            monitored_value: ValueDefinition {
                class_id: 3,
                logical_name: SUM_ACTIVE_POWER_IMPORT,
                attribute_index: 2,
            },
            threshold_normal: 15_000,
            threshold_emergency: 5_000,
            min_over_threshold_duration: 60,
            min_under_threshold_duration: 60,
            emergency_profile: EmergencyProfile {
                emergency_profile_id: 0,
                emergency_activation_time: unspecified,
                emergency_duration: 0,
            },
            emergency_profile_group_id_list: Vec::new(),
            actions: LimiterActions {
                action_over_threshold: script(1),
                action_under_threshold: script(2),
            },
        }
    }

    pub fn monitored_value(&self) -> ValueDefinition {
        self.monitored_value
    }

    pub fn threshold_normal(&self) -> u32 {
        self.threshold_normal
    }

    pub fn threshold_emergency(&self) -> u32 {
        self.threshold_emergency
    }

    pub fn actions(&self) -> LimiterActions {
        self.actions
    }

    /// Whether the emergency profile applies at `now` (attribute 10).
    pub fn emergency_active(&self, now: i64) -> bool {
        let p = &self.emergency_profile;
        self.emergency_profile_group_id_list
            .contains(&p.emergency_profile_id)
            && p.emergency_activation_time.to_unix().is_some_and(|start| {
                now >= start && now < start.saturating_add(i64::from(p.emergency_duration))
            })
    }

    /// The threshold in force at `now` (attribute 3), W.
    pub fn threshold_active(&self, now: i64) -> u32 {
        if self.emergency_active(now) {
            self.threshold_emergency
        } else {
            self.threshold_normal
        }
    }

    pub fn get(&self, attribute: i8, now: i64) -> Result<Data, DataAccessResult> {
        Ok(match attribute {
            MONITORED_VALUE => self.monitored_value.to_data(),
            THRESHOLD_ACTIVE => Data::DoubleLongUnsigned(self.threshold_active(now)),
            THRESHOLD_NORMAL => Data::DoubleLongUnsigned(self.threshold_normal),
            THRESHOLD_EMERGENCY => Data::DoubleLongUnsigned(self.threshold_emergency),
            MIN_OVER_THRESHOLD_DURATION => {
                Data::DoubleLongUnsigned(self.min_over_threshold_duration)
            }
            MIN_UNDER_THRESHOLD_DURATION => {
                Data::DoubleLongUnsigned(self.min_under_threshold_duration)
            }
            EMERGENCY_PROFILE => self.emergency_profile.to_data(),
            EMERGENCY_PROFILE_GROUP_ID_LIST => {
                emergency_profile_group_id_list_to_data(&self.emergency_profile_group_id_list)
            }
            EMERGENCY_PROFILE_ACTIVE => Data::Boolean(self.emergency_active(now)),
            ACTIONS => self.actions.to_data(),
            _ => return Err(DataAccessResult::ObjectUndefined),
        })
    }

    pub fn set(&mut self, attribute: i8, value: Data, _now: i64) -> DataAccessResult {
        match self.try_set(attribute, &value) {
            Ok(()) => DataAccessResult::Success,
            Err(e) => e,
        }
    }

    fn try_set(&mut self, attribute: i8, value: &Data) -> Result<(), DataAccessResult> {
        let shape = |_| DataAccessResult::TypeUnmatched;
        match attribute {
            MONITORED_VALUE => {
                self.monitored_value = ValueDefinition::from_data(value).map_err(shape)?;
            }
            THRESHOLD_NORMAL => self.threshold_normal = u32_from(value)?,
            THRESHOLD_EMERGENCY => self.threshold_emergency = u32_from(value)?,
            MIN_OVER_THRESHOLD_DURATION => self.min_over_threshold_duration = u32_from(value)?,
            MIN_UNDER_THRESHOLD_DURATION => self.min_under_threshold_duration = u32_from(value)?,
            EMERGENCY_PROFILE => {
                self.emergency_profile = EmergencyProfile::from_data(value).map_err(shape)?;
            }
            EMERGENCY_PROFILE_GROUP_ID_LIST => {
                let ids = emergency_profile_group_id_list_from_data(value).map_err(shape)?;
                if ids.len() > MAX_GROUP_IDS {
                    return Err(DataAccessResult::OtherReason);
                }
                self.emergency_profile_group_id_list = ids;
            }
            ACTIONS => self.actions = LimiterActions::from_data(value).map_err(shape)?,
            1 | THRESHOLD_ACTIVE | EMERGENCY_PROFILE_ACTIVE => {
                return Err(DataAccessResult::ReadWriteDenied)
            }
            _ => return Err(DataAccessResult::ObjectUndefined),
        }
        Ok(())
    }

    /// The limiter has no methods.
    pub fn action(
        &mut self,
        _method: i8,
        _params: Option<Data>,
        _now: i64,
    ) -> Result<Option<Data>, ActionResult> {
        Err(ActionResult::ObjectUndefined)
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::expect_used,
        clippy::panic
    )]
    use super::*;

    const NOW: i64 = 1_790_000_000;

    #[test]
    fn defaults() {
        let l = Limiter::new();
        assert_eq!(
            l.get(2, NOW),
            Ok(Data::Structure(vec![
                Data::LongUnsigned(3),
                Data::OctetString(vec![1, 0, 1, 7, 0, 255]),
                Data::Integer(2),
            ]))
        );
        assert_eq!(l.get(3, NOW), Ok(Data::DoubleLongUnsigned(15_000)));
        assert_eq!(l.get(10, NOW), Ok(Data::Boolean(false)));
        assert_eq!(l.get(9, NOW), Ok(Data::Array(vec![])));
        let actions = LimiterActions::from_data(&l.get(11, NOW).unwrap()).unwrap();
        assert_eq!(actions.action_over_threshold.script_selector, 1);
        assert!(EmergencyProfile::from_data(&l.get(8, NOW).unwrap()).is_ok());
        assert_eq!(l.get(1, NOW), Err(DataAccessResult::ObjectUndefined));
        assert_eq!(l.get(12, NOW), Err(DataAccessResult::ObjectUndefined));
    }

    #[test]
    fn thresholds_set_and_get() {
        let mut l = Limiter::new();
        for (a, v) in [(4, 9_000), (5, 2_500), (6, 30), (7, 120)] {
            assert_eq!(
                l.set(a, Data::DoubleLongUnsigned(v), NOW),
                DataAccessResult::Success
            );
            assert_eq!(l.get(a, NOW), Ok(Data::DoubleLongUnsigned(v)));
        }
        // The active threshold follows the normal one.
        assert_eq!(l.get(3, NOW), Ok(Data::DoubleLongUnsigned(9_000)));
        assert_eq!(
            l.set(3, Data::DoubleLongUnsigned(1), NOW),
            DataAccessResult::ReadWriteDenied
        );
        assert_eq!(l.get(3, NOW), Ok(Data::DoubleLongUnsigned(9_000)));
        let mv = ValueDefinition {
            class_id: 5,
            logical_name: ObisCode::new(1, 0, 1, 24, 0, 255),
            attribute_index: 3,
        };
        assert_eq!(l.set(2, mv.to_data(), NOW), DataAccessResult::Success);
        assert_eq!(l.monitored_value(), mv);
    }

    #[test]
    fn type_errors_change_nothing() {
        let mut l = Limiter::new();
        let before = l.clone();
        let bad = [
            (4, Data::LongUnsigned(10)),
            (4, Data::DoubleLong(10)),
            (5, Data::Null),
            (6, Data::Unsigned(1)),
            (7, Data::Long64Unsigned(1)),
            (2, Data::Structure(vec![Data::LongUnsigned(3)])),
            (
                2,
                Data::Structure(vec![
                    Data::LongUnsigned(3),
                    Data::OctetString(vec![1, 0, 1, 7, 0]), // 5 bytes
                    Data::Integer(2),
                ]),
            ),
            (8, Data::Structure(vec![])),
            (9, Data::Array(vec![Data::Unsigned(1)])),
            (11, Data::Structure(vec![Data::Null, Data::Null])),
        ];
        for (a, v) in bad {
            assert_eq!(l.set(a, v, NOW), DataAccessResult::TypeUnmatched, "{a}");
        }
        assert_eq!(
            l.set(9, Data::Array(vec![Data::LongUnsigned(1); 17]), NOW),
            DataAccessResult::OtherReason
        );
        assert_eq!(
            l.set(10, Data::Boolean(true), NOW),
            DataAccessResult::ReadWriteDenied
        );
        assert_eq!(
            l.set(12, Data::Null, NOW),
            DataAccessResult::ObjectUndefined
        );
        assert_eq!(l, before);
        assert_eq!(l.action(1, None, NOW), Err(ActionResult::ObjectUndefined));
    }

    #[test]
    fn emergency_profile_switches_the_active_threshold() {
        let mut l = Limiter::new();
        let profile = EmergencyProfile {
            emergency_profile_id: 7,
            emergency_activation_time: DateTime::from_unix(NOW + 100, 60, 0),
            emergency_duration: 3_600,
        };
        assert_eq!(l.set(8, profile.to_data(), NOW), DataAccessResult::Success);
        assert_eq!(l.get(8, NOW), Ok(profile.to_data()));
        // Not in the group list yet.
        assert_eq!(l.get(10, NOW + 200), Ok(Data::Boolean(false)));
        let ids = Data::Array(vec![Data::LongUnsigned(3), Data::LongUnsigned(7)]);
        assert_eq!(l.set(9, ids.clone(), NOW), DataAccessResult::Success);
        assert_eq!(l.get(9, NOW), Ok(ids));
        assert_eq!(l.get(10, NOW + 99), Ok(Data::Boolean(false)));
        assert_eq!(l.get(3, NOW + 99), Ok(Data::DoubleLongUnsigned(15_000)));
        assert_eq!(l.get(10, NOW + 100), Ok(Data::Boolean(true)));
        assert_eq!(l.get(3, NOW + 100), Ok(Data::DoubleLongUnsigned(5_000)));
        assert_eq!(l.threshold_active(NOW + 3_699), 5_000);
        assert_eq!(l.threshold_active(NOW + 3_700), 15_000);
    }
}
