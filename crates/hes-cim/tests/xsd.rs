//! Every kind of message we write, and the requests we read, against the XSDs (xmllint).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use hes_cim::event_type::{event_type, Control};
use hes_cim::message::{code, event_message, request_message, ReplyError, ReplyId, Response};
use hes_cim::payload::{
    end_device_controls_xml, end_device_events_xml, get_xml, meter_readings_xml, quality,
    ControlRequest, DeviceEvent, MeterReading, Series, Value,
};
use hes_cim::reading_type::{reading_type, Form};
use hes_cim::xsd::validate;
use hes_cim::ReplyResult;

fn readings() -> String {
    let rt = |c, f| reading_type(c, f).unwrap().0.to_string();
    meter_readings_xml(&[MeterReading {
        meter: "MTR<&>1".into(),
        interval: Some((0, 86_400)),
        readings: vec![
            Series {
                reading_type: rt("energy.active.import", Form::Register),
                values: vec![Value {
                    time: 900,
                    value: 1234.5,
                    qualities: vec![],
                }],
            },
            Series {
                reading_type: rt("voltage.l1", Form::Instant),
                values: vec![Value {
                    time: 900,
                    value: 230.1,
                    qualities: vec![quality::REASONABILITY],
                }],
            },
        ],
        blocks: vec![Series {
            reading_type: rt("energy.active.import", Form::Interval15),
            values: vec![
                Value {
                    time: 900,
                    value: 0.25,
                    qualities: vec![],
                },
                Value {
                    time: 1800,
                    value: 0.5,
                    qualities: vec![quality::ESTIMATED],
                },
            ],
        }],
    }])
}

fn events() -> String {
    end_device_events_xml(&[DeviceEvent {
        mrid: "MTR1/0.0.99.98.1.255/900/44".into(),
        meter: "MTR1".into(),
        time: 900,
        event_type: event_type(44),
        reason: "Meter cover removed".into(),
        severity: "alarm".into(),
        details: vec![("code".into(), "44".into())],
    }])
}

#[test]
fn responses_event_messages_and_requests_are_valid() {
    let ok = Response {
        noun: "MeterReadings".into(),
        correlation_id: Some("req-1".into()),
        result: ReplyResult::Ok,
        errors: vec![],
        ids: vec![],
        payload: Some(readings()),
    };
    validate(&ok.to_xml("m-1", 1_700_000_000)).unwrap();
    let partial = Response {
        noun: "EndDeviceEvents".into(),
        correlation_id: None,
        result: ReplyResult::Partial,
        errors: vec![ReplyError::fatal(
            code::NOT_FOUND,
            "meter X",
            Some("X".into()),
        )],
        ids: vec![ReplyId {
            object_type: "Job".into(),
            id: "17".into(),
        }],
        payload: Some(events()),
    };
    validate(&partial.to_xml("m-2", 0)).unwrap();
    validate(&event_message("MeterReadings", &readings(), "m-3", 0)).unwrap();
    validate(&event_message("EndDeviceEvents", &events(), "m-4", 0)).unwrap();
    let get = get_xml(
        "MeterReadings",
        &["MTR1"],
        &["0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"],
        0,
        86_400,
    );
    validate(&request_message(
        "get",
        "MeterReadings",
        "r1",
        0,
        Some(&get),
        None,
    ))
    .unwrap();
    let get = get_xml("EndDeviceEvents", &["MTR1"], &[], 0, 86_400);
    validate(&request_message(
        "get",
        "EndDeviceEvents",
        "r2",
        0,
        Some(&get),
        None,
    ))
    .unwrap();
    let c = end_device_controls_xml(&[ControlRequest {
        mrid: Some("c-1".into()),
        control: Control::Disconnect,
        meters: vec!["MTR1".into(), "MTR2".into()],
    }]);
    validate(&request_message(
        "create",
        "EndDeviceControls",
        "r3",
        0,
        None,
        Some(&c),
    ))
    .unwrap();
}

#[test]
fn the_schemas_do_catch_mistakes() {
    // A payload element the schemas do not know, a wrong ReadingType code, a bad result.
    let wrong = readings().replace("<MeterReading>", "<MeterReadingz>");
    assert!(validate(&event_message("MeterReadings", &wrong, "x", 0)).is_err());
    let wrong = readings().replace("0.0.2.4.1.1.12", "0.2.4.1.1.12");
    assert!(validate(&event_message("MeterReadings", &wrong, "x", 0)).is_err());
    let bad = Response {
        noun: "X".into(),
        correlation_id: None,
        result: ReplyResult::Ok,
        errors: vec![],
        ids: vec![],
        payload: None,
    }
    .to_xml("m", 0)
    .replace(">OK<", ">FINE<");
    assert!(validate(&bad).is_err());
}
