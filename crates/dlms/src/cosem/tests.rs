//! Tests across every class: names, round trips of every structured value, and typed errors
//! (never panics) on wrong shapes.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;
use crate::axdr::{BitString, Date, DateTime, Time};
use crate::codec::Codec;
use crate::obis::ObisCode;

#[test]
fn every_class_has_names() {
    let expected = [
        (1, "Data", "value", None),
        (3, "Register", "scaler_unit", Some("reset")),
        (4, "ExtendedRegister", "capture_time", Some("reset")),
        (
            5,
            "DemandRegister",
            "number_of_periods",
            Some("next_period"),
        ),
        (7, "ProfileGeneric", "profile_entries", Some("capture")),
        (8, "Clock", "clock_base", Some("shift_time")),
        (9, "ScriptTable", "scripts", Some("execute")),
        (11, "SpecialDaysTable", "entries", Some("delete")),
        (15, "AssociationLn", "current_user", Some("remove_user")),
        (
            18,
            "ImageTransfer",
            "image_to_activate_info",
            Some("image_activate"),
        ),
        (
            20,
            "ActivityCalendar",
            "activate_passive_calendar_time",
            Some("activate_passive_calendar"),
        ),
        (21, "RegisterMonitor", "actions", None),
        (22, "SingleActionSchedule", "execution_time", None),
        (23, "IecHdlcSetup", "device_address", None),
        (40, "PushSetup", "repetition_delay", Some("push")),
        (
            64,
            "SecuritySetup",
            "certificates",
            Some("remove_certificate"),
        ),
        (
            70,
            "DisconnectControl",
            "control_mode",
            Some("remote_reconnect"),
        ),
        (71, "Limiter", "actions", None),
    ];
    assert_eq!(names::all_class_ids().count(), expected.len());
    for (id, name, last_attr, last_method) in expected {
        assert_eq!(class_name(id), Some(name));
        assert_eq!(attribute_name(id, 1), Some("logical_name"));
        // The last attribute/method has the name we expect, and there is none after it.
        let n_attr = (1..=40)
            .take_while(|a| attribute_name(id, *a).is_some())
            .count();
        assert_eq!(
            attribute_name(id, n_attr as i8),
            Some(last_attr),
            "class {id}"
        );
        let n_meth = (1..=40)
            .take_while(|m| method_name(id, *m).is_some())
            .count();
        assert_eq!(
            (n_meth > 0)
                .then(|| method_name(id, n_meth as i8))
                .flatten(),
            last_method,
            "class {id}"
        );
        assert_eq!(attribute_name(id, 0), None);
        assert_eq!(attribute_name(id, -1), None);
        assert_eq!(method_name(id, 0), None);
    }
    assert_eq!(attribute_name(3, 3), Some("scaler_unit"));
    assert_eq!(method_name(70, 1), Some("remote_disconnect"));
    assert_eq!(method_name(15, 1), Some("reply_to_HLS_authentication"));
    assert_eq!(class_name(9999), None);
    assert_eq!(attribute_name(9999, 1), Some("logical_name"));
    assert_eq!(attribute_name(9999, 2), None);
}

#[test]
fn attribute_constants_match_the_name_tables() {
    let cases: &[(u16, i8, &str)] = &[
        (3, register::SCALER_UNIT, "scaler_unit"),
        (5, demand_register::PERIOD, "period"),
        (7, profile_generic::CAPTURE_OBJECTS, "capture_objects"),
        (8, clock::TIME_ZONE, "time_zone"),
        (15, association_ln::OBJECT_LIST, "object_list"),
        (
            18,
            image_transfer::IMAGE_TRANSFER_STATUS,
            "image_transfer_status",
        ),
        (
            20,
            activity_calendar::DAY_PROFILE_TABLE_PASSIVE,
            "day_profile_table_passive",
        ),
        (
            23,
            iec_hdlc_setup::INACTIVITY_TIME_OUT,
            "inactivity_time_out",
        ),
        (
            40,
            push_setup::SEND_DESTINATION_AND_METHOD,
            "send_destination_and_method",
        ),
        (
            64,
            security_setup::SERVER_SYSTEM_TITLE,
            "server_system_title",
        ),
        (70, disconnect_control::CONTROL_STATE, "control_state"),
        (71, limiter::EMERGENCY_PROFILE, "emergency_profile"),
    ];
    for (class, attr, name) in cases {
        assert_eq!(attribute_name(*class, *attr), Some(*name));
    }
    let methods: &[(u16, i8, &str)] = &[
        (8, clock::ADJUST_TO_QUARTER, "adjust_to_quarter"),
        (15, association_ln::CHANGE_HLS_SECRET, "change_HLS_secret"),
        (
            18,
            image_transfer::IMAGE_BLOCK_TRANSFER,
            "image_block_transfer",
        ),
        (64, security_setup::KEY_TRANSFER, "key_transfer"),
        (70, disconnect_control::REMOTE_RECONNECT, "remote_reconnect"),
    ];
    for (class, m, name) in methods {
        assert_eq!(method_name(*class, *m), Some(*name));
    }
}

fn ln(c: u8) -> ObisCode {
    ObisCode::new(0, 0, c, 0, 0, 255)
}

fn dt() -> DateTime {
    DateTime::from_unix(1_767_225_600, 60, 0)
}

fn script() -> ScriptRef {
    ScriptRef {
        script_logical_name: ln(10),
        script_selector: 2,
    }
}

/// Round-trips `value`, then checks that broken shapes of its encoding give errors.
fn check<T: CosemValue + PartialEq + std::fmt::Debug>(value: T) {
    let d = value.to_data();
    assert_eq!(T::from_data(&d).as_ref(), Ok(&value), "round trip of {d:?}");
    // And through the wire encoding.
    let again = crate::axdr::Data::decode_exact(&d.to_bytes()).unwrap();
    assert_eq!(T::from_data(&again).as_ref(), Ok(&value));
    assert!(
        T::from_data(&Data::DontCare).is_err(),
        "{value:?} from dont-care"
    );
    if let Data::Structure(fields) = &d {
        let mut short = fields.clone();
        short.pop();
        assert_eq!(
            T::from_data(&Data::Structure(short)).err(),
            Some(CosemError::WrongLength),
            "{value:?} short"
        );
        let mut long = fields.clone();
        long.push(Data::Null);
        assert_eq!(
            T::from_data(&Data::Structure(long)).err(),
            Some(CosemError::WrongLength),
            "{value:?} long"
        );
        // A field of the wrong type either fails or (for fields of any type) is kept.
        for i in 0..fields.len() {
            let mut bad = fields.clone();
            bad[i] = Data::Float64(f64::NAN);
            let _ = T::from_data(&Data::Structure(bad));
        }
        assert!(T::from_data(&Data::Array(fields.clone())).is_err());
    }
}

#[test]
fn shared_values_round_trip() {
    check(ScalerUnit::new(-3, Unit::WATT_HOUR));
    check(CaptureObject::new(3, ln(1), 2));
    check(ValueDefinition {
        class_id: 3,
        logical_name: ln(2),
        attribute_index: 2,
    });
    check(script());
}

#[test]
fn class_values_round_trip() {
    use crate::cosem::{
        activity_calendar as ac, association_ln as al, clock as ck, disconnect_control as dc,
        image_transfer as it, limiter as lm, profile_generic as pg, push_setup as ps,
        register_monitor as rm, script_table as st, security_setup as ss,
        single_action_schedule as sas, special_days_table as sdt,
    };
    let time = Time {
        hour: 6,
        minute: 30,
        second: 0,
        hundredths: 0,
    };
    let date = Date {
        year: 0xFFFF,
        month: 12,
        day: 25,
        day_of_week: 0xFF,
    };
    check(pg::SortMethod::Lifo);
    check(pg::EntryDescriptor {
        from_entry: 1,
        to_entry: 10,
        from_selected_value: 1,
        to_selected_value: 0,
    });
    check(pg::RangeDescriptor {
        restricting_object: CaptureObject::new(8, ln(1), 2),
        from_value: Data::OctetString(dt().to_octets()),
        to_value: Data::DateTime(dt()),
        selected_values: vec![CaptureObject::new(3, ln(2), 2)],
    });
    check(ck::ClockStatus(0x80));
    check(ck::ClockBase::Gps);
    check(ck::PresetAdjustingTime {
        preset_time: dt(),
        validity_interval_start: dt(),
        validity_interval_end: dt(),
    });
    let action = st::Action {
        service_id: st::ServiceId::ExecuteMethod,
        class_id: 70,
        logical_name: ln(96),
        index: 1,
        parameter: Data::Integer(0),
    };
    check(action.clone());
    check(st::Script {
        script_identifier: 1,
        actions: vec![action.clone(), action],
    });
    check(sdt::SpecialDay {
        index: 1,
        specialday_date: date,
        day_id: 3,
    });
    check(al::AttributeAccess {
        attribute: 2,
        mode: al::AttributeAccessMode::AuthenticatedRead,
        selectors: Some(vec![1, 2]),
    });
    check(al::MethodAccess {
        method: 1,
        mode: al::MethodAccessMode::Access,
    });
    check(al::AssociatedPartnersId {
        client_sap: 1,
        server_sap: 1,
    });
    check(al::XdlmsContextInfo {
        conformance: BitString::new(24, vec![0, 0x10, 0x1D]),
        max_receive_pdu_size: 0xFFFF,
        max_send_pdu_size: 0x200,
        dlms_version_number: 6,
        quality_of_service: 0,
        cyphering_info: vec![1, 2, 3],
    });
    check(al::UserEntry {
        user_id: 1,
        user_name: b"a".to_vec(),
    });
    check(al::AssociationStatus::Associated);
    check(it::ImageTransferStatus::VerificationFailed);
    check(it::ImageToActivateInfo {
        image_to_activate_size: 1000,
        image_to_activate_identification: b"FW2".to_vec(),
        image_to_activate_signature: vec![9; 32],
    });
    check(it::ImageTransferInitiate {
        image_identifier: b"FW2".to_vec(),
        image_size: 1000,
    });
    check(it::ImageBlockTransfer {
        image_block_number: 0,
        image_block_value: vec![0; 64],
    });
    check(ac::Season {
        season_profile_name: b"S1".to_vec(),
        season_start: dt(),
        week_name: b"W1".to_vec(),
    });
    check(ac::WeekProfile {
        week_profile_name: b"W1".to_vec(),
        days: [1, 1, 1, 1, 1, 2, 2],
    });
    let dpa = ac::DayProfileAction {
        start_time: time,
        script_logical_name: ln(10),
        script_selector: 1,
    };
    check(dpa);
    check(ac::DayProfile {
        day_id: 1,
        day_schedule: vec![dpa, dpa],
    });
    check(rm::ActionSet {
        action_up: script(),
        action_down: script(),
    });
    check(sas::ScheduleType::AnyTimeWildcards);
    check(sas::ExecutionTime { time, date });
    check(iec_hdlc_setup::CommSpeed(5));
    check(ps::SendDestinationAndMethod {
        transport_service: ps::TransportService::Tcp,
        destination: b"10.0.0.1:4059".to_vec(),
        message: ps::MessageType::AxdrApdu,
    });
    check(ps::Window {
        start: dt(),
        end: dt(),
    });
    check(ps::RepetitionDelay::Fixed(30));
    check(ps::RepetitionDelay::Exponential {
        min: 10,
        exponent: 200,
        max: 600,
    });
    check(ss::SecurityPolicy(0x24));
    check(ss::KeyId::Master);
    check(ss::KeyData {
        key_id: ss::KeyId::GlobalBroadcastEncryption,
        key_wrapped: vec![7; 24],
    });
    check(ss::CertificateInfo {
        certificate_entity: 0,
        certificate_type: 1,
        serial_number: vec![1],
        issuer: b"CN=ca".to_vec(),
        subject: b"CN=meter".to_vec(),
        subject_alt_name: vec![],
    });
    check(dc::ControlState::ReadyForReconnection);
    check(dc::ControlMode(3));
    check(lm::EmergencyProfile {
        emergency_profile_id: 1,
        emergency_activation_time: dt(),
        emergency_duration: 3600,
    });
    check(lm::LimiterActions {
        action_over_threshold: script(),
        action_under_threshold: script(),
    });
}

#[test]
fn attribute_lists_round_trip() {
    use crate::cosem::{
        limiter as lm, push_setup as ps, register_monitor as rm, script_table as st,
    };
    let ids = vec![1, 2, 300];
    assert_eq!(
        lm::emergency_profile_group_id_list_from_data(
            &lm::emergency_profile_group_id_list_to_data(&ids)
        ),
        Ok(ids)
    );
    let objs = vec![CaptureObject::new(1, ln(1), 2)];
    assert_eq!(
        ps::push_object_list_from_data(&ps::push_object_list_to_data(&objs)),
        Ok(objs)
    );
    let th = vec![Data::DoubleLongUnsigned(5), Data::DoubleLongUnsigned(10)];
    assert_eq!(
        rm::thresholds_from_data(&rm::thresholds_to_data(&th)),
        Ok(th)
    );
    assert!(rm::thresholds_from_data(&Data::Unsigned(1)).is_err());
    assert_eq!(st::scripts_from_data(&st::scripts_to_data(&[])), Ok(vec![]));
    // An error inside one array element fails the whole list.
    let mixed = Data::Array(vec![script().to_data(), Data::Null]);
    assert!(rm::actions_from_data(&mixed).is_err());
}

#[test]
fn wrong_types_are_named() {
    let d = Data::Structure(vec![Data::Integer(0), Data::Integer(1)]);
    assert_eq!(
        ScriptRef::from_data(&d),
        Err(CosemError::WrongType {
            expected: "octet-string (logical name)"
        })
    );
    assert_eq!(
        ScalerUnit::from_data(&Data::Array(vec![])),
        Err(CosemError::WrongType {
            expected: "structure"
        })
    );
    // Date-times must be 12 bytes, whichever form.
    let short = Data::Structure(vec![
        Data::LongUnsigned(1),
        Data::OctetString(vec![0; 11]),
        Data::DoubleLongUnsigned(1),
    ]);
    assert!(matches!(
        limiter::EmergencyProfile::from_data(&short),
        Err(CosemError::Invalid(_))
    ));
}
