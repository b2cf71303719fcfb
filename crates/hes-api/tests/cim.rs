//! The CIM endpoint: readings and events in IEC 61968-9 form, every reply valid against the
//! XSDs, malformed requests refused with a code and nothing done, controls scoped by groups.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{fixture, fixture_with, Fx, Resp, COST};
use hes_api::ApiConfig;
use hes_cim::event_type::Control;
use hes_cim::message::request_message;
use hes_cim::payload::{end_device_controls_xml, get_xml, ControlRequest};
use hes_cim::xml::{parse, Element};
use hes_cim::xsd::validate;
use hes_model::{Event, MeterId, Reading, Source};
use hes_store::Store;

async fn post(fx: &Fx, token: Option<&str>, body: &str) -> Resp {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/cim")
        .header("content-type", "application/xml");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    fx.send(b.body(Body::from(body.to_string())).unwrap()).await
}

/// The reply, checked against the XSDs: its Result and error codes.
fn reply(r: &Resp) -> (Element, String, Vec<String>) {
    let text = r.text();
    validate(&text).unwrap_or_else(|e| panic!("invalid reply: {e}"));
    let root = parse(text.as_bytes()).unwrap();
    assert_eq!(root.name, "ResponseMessage");
    let reply = root.child("Reply").unwrap();
    let result = reply.child_text("Result").unwrap().to_string();
    let codes = reply
        .children_named("Error")
        .map(|e| e.child_text("code").unwrap().to_string())
        .collect();
    (root, result, codes)
}

fn energy(meter: &str, time: i64, wh: i64) -> Reading {
    Reading {
        meter: MeterId(meter.into()),
        obis: "1.0.1.8.0.255".parse().unwrap(),
        class_id: 3,
        attribute: 2,
        time,
        value: wh,
        scaler: 0,
        unit: 30,
        status: 0,
        source: Source::Scheduled,
        received_at: time,
    }
}

const DAY: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

#[tokio::test]
async fn meter_readings_carry_reading_type_codes_and_intervals() {
    let fx = fixture().await;
    let mut rows: Vec<Reading> = (0..=4)
        .map(|i| energy("MTR00000001", DAY + i * 900, 1000 + i * 250))
        .collect();
    rows.push(Reading {
        obis: "1.0.32.7.0.255".parse().unwrap(),
        value: 2301,
        scaler: -1,
        unit: 35,
        ..energy("MTR00000001", DAY + 900, 0)
    });
    fx.store.insert_readings(&rows).await.unwrap();
    let viewer = fx.login("viewer").await;
    let get = get_xml("MeterReadings", &["MTR00000001"], &[], DAY, DAY + 3600);
    let body = request_message("get", "MeterReadings", "req-1", DAY, Some(&get), None);
    let r = post(&fx, Some(&viewer), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.content_type().starts_with("application/xml"));
    let (root, result, codes) = reply(&r);
    assert_eq!((result.as_str(), codes.len()), ("OK", 0), "{}", r.text());
    assert_eq!(
        root.child("Header").unwrap().child_text("CorrelationID"),
        Some("req-1")
    );
    let mr = root
        .child("Payload")
        .unwrap()
        .child("MeterReadings")
        .unwrap()
        .child("MeterReading")
        .unwrap();
    assert_eq!(
        mr.child("Meter").unwrap().child_text("mRID"),
        Some("MTR00000001")
    );
    // Four 15-minute intervals of 250 Wh = 0.25 kWh.
    let block = mr.child("IntervalBlocks").unwrap();
    assert_eq!(
        block.child("ReadingType").unwrap().attr("ref"),
        Some("0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0")
    );
    let values: Vec<&str> = block
        .children_named("IntervalReadings")
        .map(|i| i.child_text("value").unwrap())
        .collect();
    assert_eq!(values, ["0.25", "0.25", "0.25", "0.25"]);
    // Registers (kWh) and the voltage (V, phase A to neutral).
    let refs: Vec<&str> = mr
        .children_named("Readings")
        .map(|x| x.child("ReadingType").unwrap().attr("ref").unwrap())
        .collect();
    assert!(
        refs.contains(&"0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"),
        "{refs:?}"
    );
    assert!(
        refs.contains(&"0.0.0.12.0.1.54.0.0.0.0.0.0.0.129.0.29.0"),
        "{refs:?}"
    );
    // A filter by ReadingType: only the intervals.
    let get = get_xml(
        "MeterReadings",
        &["MTR00000001"],
        &["0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"],
        DAY,
        DAY + 3600,
    );
    let body = request_message("get", "MeterReadings", "req-2", DAY, Some(&get), None);
    let r = post(&fx, Some(&viewer), &body).await;
    let (root, result, _) = reply(&r);
    assert_eq!(result, "OK");
    let mr = root
        .child("Payload")
        .unwrap()
        .child("MeterReadings")
        .unwrap()
        .child("MeterReading")
        .unwrap();
    assert_eq!(mr.children_named("Readings").count(), 0);
    assert_eq!(mr.children_named("IntervalBlocks").count(), 1);
    // One meter known, one not: PARTIAL with the other's error.
    let get = get_xml(
        "MeterReadings",
        &["MTR00000001", "NOPE"],
        &[],
        DAY,
        DAY + 3600,
    );
    let body = request_message("get", "MeterReadings", "req-3", DAY, Some(&get), None);
    let (_, result, codes) = reply(&post(&fx, Some(&viewer), &body).await);
    assert_eq!(
        (result.as_str(), codes),
        ("PARTIAL", vec!["2.4".to_string()])
    );
}

#[tokio::test]
async fn events_carry_end_device_event_types_within_the_callers_groups() {
    let fx = fixture().await;
    let ev = |meter: &str, time, code| Event {
        meter: MeterId(meter.into()),
        log: "0.0.99.98.1.255".parse().unwrap(),
        time,
        code,
        source: Source::Scheduled,
        received_at: time,
    };
    fx.store
        .insert_events(&[
            ev("MTR00000001", DAY + 60, 44),
            ev("MTR00000001", DAY + 120, 45),
            ev("MTR00000004", DAY + 60, 1),
        ])
        .await
        .unwrap();
    let cell1 = fx.login("cell1").await;
    let get = get_xml("EndDeviceEvents", &["MTR00000001"], &[], DAY, DAY + 3600);
    let body = request_message("get", "EndDeviceEvents", "e-1", DAY, Some(&get), None);
    let r = post(&fx, Some(&cell1), &body).await;
    let (root, result, _) = reply(&r);
    assert_eq!(result, "OK", "{}", r.text());
    let events: Vec<(String, String)> = root
        .child("Payload")
        .unwrap()
        .child("EndDeviceEvents")
        .unwrap()
        .children_named("EndDeviceEvent")
        .map(|e| {
            (
                e.child("EndDeviceEventType")
                    .unwrap()
                    .attr("ref")
                    .unwrap()
                    .to_string(),
                e.child_text("severity").unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("3.12.29.212".to_string(), "alarm".to_string()),
            ("3.12.29.213".to_string(), "info".to_string())
        ]
    );
    // Meter 4 is in cell 2: not found for cell1, as if it did not exist.
    let get = get_xml("EndDeviceEvents", &["MTR00000004"], &[], DAY, DAY + 3600);
    let body = request_message("get", "EndDeviceEvents", "e-2", DAY, Some(&get), None);
    let r = post(&fx, Some(&cell1), &body).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let (_, result, codes) = reply(&r);
    assert_eq!(
        (result.as_str(), codes),
        ("FAILED", vec!["2.4".to_string()])
    );
}

async fn job_count(fx: &Fx) -> u64 {
    let admin = fx.login("admin").await;
    let r = fx
        .call(Method::GET, "/api/v1/jobs", Some(&admin), None)
        .await;
    r.json()["total"].as_u64().unwrap()
}

fn disconnect(meters: &[&str]) -> String {
    let c = end_device_controls_xml(&[ControlRequest {
        mrid: Some("ctl-1".into()),
        control: Control::Disconnect,
        meters: meters.iter().map(|m| m.to_string()).collect(),
    }]);
    request_message("create", "EndDeviceControls", "c-1", DAY, None, Some(&c))
}

#[tokio::test]
async fn malformed_or_unauthorised_requests_get_a_reply_code_and_nothing_runs() {
    let fx = fixture().await;
    let op = fx.login("op").await;
    // Not authenticated: the API's 401, as everywhere.
    assert_eq!(
        post(&fx, None, &disconnect(&["MTR00000001"])).await.status,
        401
    );
    let cases: Vec<(String, u16, &str)> = vec![
        ("not xml at all".into(), 400, "1.0"),
        ("<RequestMessage/>".into(), 400, "1.0"),
        (
            r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#.into(),
            400,
            "1.0",
        ),
        (
            format!("{}{}", "<a>".repeat(100), "</a>".repeat(100)),
            400,
            "1.0",
        ),
        (
            request_message("fetch", "MeterReadings", "x", 0, None, None),
            400,
            "1.1",
        ),
        (
            request_message("delete", "EndDeviceControls", "x", 0, None, None),
            400,
            "1.2",
        ),
        (
            request_message("get", "MeterReadings", "x", 0, Some("<ID>MTR00000001</ID><StartTime>yesterday</StartTime>"), None),
            400,
            "2.1",
        ),
        (
            request_message("create", "EndDeviceControls", "x", 0, None, None),
            400,
            "2.1",
        ),
        (
            disconnect(&["MTR00000001"]).replace("3.31.0.68", "3.8.0.214"),
            400,
            "2.5",
        ),
        (
            disconnect(&["MTR00000001"]).replace("3.31.0.68", "9.9.9.9"),
            400,
            "2.5",
        ),
    ];
    for (body, status, code) in cases {
        let r = post(&fx, Some(&op), &body).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.text());
        let (_, result, codes) = reply(&r);
        assert_eq!(
            (result.as_str(), codes),
            ("FAILED", vec![code.to_string()]),
            "{body}"
        );
    }
    // A viewer may read but not control.
    let viewer = fx.login("viewer").await;
    let r = post(&fx, Some(&viewer), &disconnect(&["MTR00000001"])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(reply(&r).2, ["5.1"]);
    // cell1 sees meters 1..3: a control naming meter 4 (even with meter 1) is refused whole.
    let cell1 = fx.login("cell1").await;
    let r = post(
        &fx,
        Some(&cell1),
        &disconnect(&["MTR00000001", "MTR00000004"]),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let (_, result, codes) = reply(&r);
    assert_eq!(
        (result.as_str(), codes),
        ("FAILED", vec!["2.4".to_string()])
    );
    assert_eq!(job_count(&fx).await, 0, "nothing was queued");
}

#[tokio::test]
async fn a_control_not_done_in_time_is_reported_pending_with_its_job() {
    // The fixture's engine does not run: the job stays queued.
    let fx = fixture_with(ApiConfig {
        hash_cost: COST,
        cim_control_wait: Duration::from_millis(300),
        ..ApiConfig::default()
    })
    .await;
    let op = fx.login("op").await;
    let r = post(&fx, Some(&op), &disconnect(&["MTR00000002"])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let (root, result, codes) = reply(&r);
    assert_eq!(
        (result.as_str(), codes),
        ("PARTIAL", vec!["3.2".to_string()])
    );
    let id = root.child("Reply").unwrap().child("ID").unwrap();
    assert_eq!(id.attr("objectType"), Some("Job"));
    assert_eq!(job_count(&fx).await, 1);
    // Asked asynchronously: accepted at once.
    let body = disconnect(&["MTR00000003"]).replace(
        "<MessageID>",
        "<AsyncReplyFlag>true</AsyncReplyFlag><MessageID>",
    );
    let r = post(&fx, Some(&op), &body).await;
    let (_, result, codes) = reply(&r);
    assert_eq!((result.as_str(), codes), ("OK", vec!["0.3".to_string()]));
    assert_eq!(job_count(&fx).await, 2);
}
