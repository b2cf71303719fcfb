//! The payloads: MeterReadings and EndDeviceEvents written by us, GetMeterReadings,
//! GetEndDeviceEvents and EndDeviceControls read from a caller.

use std::fmt::Write;

use crate::event_type::Control;
use crate::message::{
    code, parse_timestamp, timestamp, Refusal, NS_END_DEVICE_CONTROLS, NS_END_DEVICE_EVENTS,
    NS_GET_END_DEVICE_EVENTS, NS_GET_METER_READINGS, NS_METER_READINGS,
};
use crate::xml::{esc, Element};

/// One value: its time, the value in the unit its ReadingType names, and quality codes
/// (ReadingQualityType, `system.category.subcategory`).
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub time: i64,
    pub value: f64,
    pub qualities: Vec<&'static str>,
}

/// Values of one ReadingType.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub reading_type: String,
    pub values: Vec<Value>,
}

/// One meter's readings: registers and instantaneous values (`readings`, each with its own
/// ReadingType) and interval data (`blocks`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MeterReading {
    pub meter: String,
    /// The period the values cover (start, end), when known.
    pub interval: Option<(i64, i64)>,
    pub readings: Vec<Series>,
    pub blocks: Vec<Series>,
}

/// ReadingQualityType codes (system 1: IEC 61968-9).
pub mod quality {
    /// Estimated.
    pub const ESTIMATED: &str = "1.8.0";
    /// Failed a reasonability check (spike, out of range).
    pub const REASONABILITY: &str = "1.5.0";
    /// Failed another validation (rollover, clock suspect, gap before it).
    pub const VALIDATION: &str = "1.6.0";
}

fn value_xml(out: &mut String, v: &Value) {
    let _ = write!(out, "<timeStamp>{}</timeStamp>", timestamp(v.time));
    if v.value.is_finite() {
        let _ = write!(out, "<value>{}</value>", v.value);
    }
    for q in &v.qualities {
        let _ = write!(
            out,
            r#"<ReadingQualities><ReadingQualityType ref="{q}"/></ReadingQualities>"#
        );
    }
}

/// The MeterReadings element (with its namespace), for a Payload.
pub fn meter_readings_xml(readings: &[MeterReading]) -> String {
    let mut out = String::new();
    let _ = write!(out, r#"<MeterReadings xmlns="{NS_METER_READINGS}">"#);
    for m in readings {
        out.push_str("<MeterReading>");
        if let Some((s, e)) = m.interval {
            let _ = write!(
                out,
                "<valuesInterval><end>{}</end><start>{}</start></valuesInterval>",
                timestamp(e),
                timestamp(s)
            );
        }
        for b in &m.blocks {
            out.push_str("<IntervalBlocks>");
            for v in &b.values {
                out.push_str("<IntervalReadings>");
                value_xml(&mut out, v);
                out.push_str("</IntervalReadings>");
            }
            let _ = write!(
                out,
                r#"<ReadingType ref="{}"/></IntervalBlocks>"#,
                esc(&b.reading_type)
            );
        }
        let _ = write!(out, "<Meter><mRID>{}</mRID></Meter>", esc(&m.meter));
        for s in &m.readings {
            for v in &s.values {
                out.push_str("<Readings>");
                value_xml(&mut out, v);
                let _ = write!(
                    out,
                    r#"<ReadingType ref="{}"/></Readings>"#,
                    esc(&s.reading_type)
                );
            }
        }
        out.push_str("</MeterReading>");
    }
    out.push_str("</MeterReadings>");
    out
}

/// One event as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    /// Our identifier of the event (stable: the same event always has the same).
    pub mrid: String,
    pub meter: String,
    pub time: i64,
    /// EndDeviceEventType code.
    pub event_type: String,
    pub reason: String,
    /// alarm, warning or info.
    pub severity: String,
    /// Name and value pairs (our code, the log it came from, a command's outcome).
    pub details: Vec<(String, String)>,
}

/// The EndDeviceEvents element (with its namespace), for a Payload.
pub fn end_device_events_xml(events: &[DeviceEvent]) -> String {
    let mut out = String::new();
    let _ = write!(out, r#"<EndDeviceEvents xmlns="{NS_END_DEVICE_EVENTS}">"#);
    for e in events {
        let _ = write!(
            out,
            "<EndDeviceEvent><createdDateTime>{}</createdDateTime><mRID>{}</mRID><reason>{}</reason><severity>{}</severity><Assets><mRID>{}</mRID></Assets>",
            timestamp(e.time),
            esc(&e.mrid),
            esc(&e.reason),
            esc(&e.severity),
            esc(&e.meter)
        );
        for (n, v) in &e.details {
            let _ = write!(
                out,
                "<EndDeviceEventDetails><name>{}</name><value>{}</value></EndDeviceEventDetails>",
                esc(n),
                esc(v)
            );
        }
        let _ = write!(
            out,
            r#"<EndDeviceEventType ref="{}"/></EndDeviceEvent>"#,
            esc(&e.event_type)
        );
    }
    out.push_str("</EndDeviceEvents>");
    out
}

/// What a `get` asks for: meters, optionally ReadingTypes, and a time range.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pub meters: Vec<String>,
    pub reading_types: Vec<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// Most meters one request may name.
pub const MAX_METERS: usize = 1000;

fn time_of(el: &Element, name: &str) -> Result<Option<i64>, Refusal> {
    match el.child_text(name) {
        None => Ok(None),
        Some(t) => parse_timestamp(t).map(Some).ok_or_else(|| {
            Refusal::new(
                code::BAD_REQUEST,
                format!("{name}: not an xs:dateTime: {t}"),
            )
        }),
    }
}

/// Reads a `get` request: the noun's Get element (GetMeterReadings or GetEndDeviceEvents) with
/// EndDevice mRIDs, ReadingType refs and a TimeSchedule's scheduleInterval, or else the
/// Request's own StartTime, EndTime and IDs (meters).
pub fn query(request: Option<&Element>, noun: &str) -> Result<Query, Refusal> {
    let Some(r) = request else {
        return Err(Refusal::new(code::BAD_REQUEST, "a get needs a Request"));
    };
    let (get_name, get_ns) = match noun {
        "MeterReadings" => ("GetMeterReadings", NS_GET_METER_READINGS),
        _ => ("GetEndDeviceEvents", NS_GET_END_DEVICE_EVENTS),
    };
    let mut q = Query {
        start: time_of(r, "StartTime")?,
        end: time_of(r, "EndTime")?,
        ..Query::default()
    };
    for id in r.children_named("ID") {
        let t = id.text.trim();
        if !t.is_empty() {
            q.meters.push(t.to_string());
        }
    }
    if let Some(g) = r.child(get_name) {
        if g.ns.as_deref() != Some(get_ns) {
            return Err(Refusal::new(
                code::BAD_REQUEST,
                format!("{get_name} must be in {get_ns}"),
            ));
        }
        for d in g.children_named("EndDevice") {
            let id = d
                .child_text("mRID")
                .ok_or_else(|| Refusal::new(code::BAD_REQUEST, "EndDevice without an mRID"))?;
            q.meters.push(id.to_string());
        }
        for t in g.children_named("ReadingType") {
            let r = t
                .attr("ref")
                .map(str::to_string)
                .or_else(|| t.child_text("mRID").map(str::to_string))
                .ok_or_else(|| Refusal::new(code::BAD_REQUEST, "ReadingType without a ref"))?;
            q.reading_types.push(r);
        }
        if let Some(i) = g
            .child("TimeSchedule")
            .and_then(|s| s.child("scheduleInterval"))
        {
            q.start = time_of(i, "start")?.or(q.start);
            q.end = time_of(i, "end")?.or(q.end);
        }
    }
    q.meters.dedup();
    if q.meters.is_empty() {
        return Err(Refusal::new(
            code::BAD_REQUEST,
            "no meter (EndDevice mRID) named",
        ));
    }
    if q.meters.len() > MAX_METERS {
        return Err(Refusal::new(
            code::TOO_MUCH,
            format!("at most {MAX_METERS} meters per request"),
        ));
    }
    if let (Some(s), Some(e)) = (q.start, q.end) {
        if s > e {
            return Err(Refusal::new(
                code::BAD_REQUEST,
                "the start is after the end",
            ));
        }
    }
    Ok(q)
}

/// One control asked for: the control's mRID (when the caller gave one), what to do, and the
/// meters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRequest {
    pub mrid: Option<String>,
    pub control: Control,
    pub meters: Vec<String>,
}

/// Most controls (meter × control) one message may carry.
pub const MAX_CONTROLS: usize = 1000;

/// Reads an EndDeviceControls payload. Every control must be one we carry out and name its
/// meters; otherwise the whole message is refused and nothing is done.
pub fn controls(payload: Option<&Element>) -> Result<Vec<ControlRequest>, Refusal> {
    let Some(p) = payload else {
        return Err(Refusal::new(
            code::BAD_REQUEST,
            "no EndDeviceControls payload",
        ));
    };
    if p.name != "EndDeviceControls" || p.ns.as_deref() != Some(NS_END_DEVICE_CONTROLS) {
        return Err(Refusal::new(
            code::BAD_REQUEST,
            format!("the payload must be EndDeviceControls in {NS_END_DEVICE_CONTROLS}"),
        ));
    }
    let mut out = Vec::new();
    let mut total = 0usize;
    for c in p.children_named("EndDeviceControl") {
        let t = c
            .child("EndDeviceControlType")
            .and_then(|t| t.attr("ref"))
            .ok_or_else(|| {
                Refusal::new(
                    code::BAD_REQUEST,
                    "EndDeviceControl without EndDeviceControlType ref",
                )
            })?;
        let control = Control::from_code(t).ok_or_else(|| {
            Refusal::new(
                code::UNSUPPORTED_CONTROL,
                format!("EndDeviceControlType {t} is not one we carry out"),
            )
        })?;
        let mut meters = Vec::new();
        for d in c.children_named("EndDevices") {
            let id = d
                .child_text("mRID")
                .ok_or_else(|| Refusal::new(code::BAD_REQUEST, "EndDevices without an mRID"))?;
            meters.push(id.to_string());
        }
        if meters.is_empty() {
            return Err(Refusal::new(
                code::BAD_REQUEST,
                "an EndDeviceControl names no EndDevices",
            ));
        }
        total += meters.len();
        if total > MAX_CONTROLS {
            return Err(Refusal::new(
                code::TOO_MUCH,
                format!("at most {MAX_CONTROLS} meter controls per message"),
            ));
        }
        out.push(ControlRequest {
            mrid: c.child_text("mRID").map(str::to_string),
            control,
            meters,
        });
    }
    if out.is_empty() {
        return Err(Refusal::new(code::BAD_REQUEST, "no EndDeviceControl"));
    }
    Ok(out)
}

/// An EndDeviceControls payload (what an MDM sends; for tests and tools).
pub fn end_device_controls_xml(controls: &[ControlRequest]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<EndDeviceControls xmlns="{NS_END_DEVICE_CONTROLS}">"#
    );
    for c in controls {
        out.push_str("<EndDeviceControl>");
        if let Some(m) = &c.mrid {
            let _ = write!(out, "<mRID>{}</mRID>", esc(m));
        }
        let _ = write!(out, r#"<EndDeviceControlType ref="{}"/>"#, c.control.code());
        for m in &c.meters {
            let _ = write!(out, "<EndDevices><mRID>{}</mRID></EndDevices>", esc(m));
        }
        out.push_str("</EndDeviceControl>");
    }
    out.push_str("</EndDeviceControls>");
    out
}

/// A GetMeterReadings or GetEndDeviceEvents element for a Request (for tests and tools).
pub fn get_xml(
    noun: &str,
    meters: &[&str],
    reading_types: &[&str],
    start: i64,
    end: i64,
) -> String {
    let (name, ns) = match noun {
        "MeterReadings" => ("GetMeterReadings", NS_GET_METER_READINGS),
        _ => ("GetEndDeviceEvents", NS_GET_END_DEVICE_EVENTS),
    };
    let mut out = format!(r#"<{name} xmlns="{ns}">"#);
    for m in meters {
        let _ = write!(out, "<EndDevice><mRID>{}</mRID></EndDevice>", esc(m));
    }
    for r in reading_types {
        let _ = write!(out, r#"<ReadingType ref="{}"/>"#, esc(r));
    }
    let _ = write!(
        out,
        "<TimeSchedule><scheduleInterval><end>{}</end><start>{}</start></scheduleInterval></TimeSchedule></{name}>",
        timestamp(end),
        timestamp(start)
    );
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::message::{request_message, RequestMessage};

    #[test]
    fn reads_queries_and_controls() {
        let r = get_xml(
            "MeterReadings",
            &["A", "B"],
            &["0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"],
            0,
            900,
        );
        let m = request_message("get", "MeterReadings", "1", 0, Some(&r), None);
        let m = RequestMessage::parse(m.as_bytes()).unwrap();
        let q = query(m.request.as_ref(), "MeterReadings").unwrap();
        assert_eq!(q.meters, ["A", "B"]);
        assert_eq!(q.start, Some(0));
        assert_eq!(q.end, Some(900));
        assert_eq!(q.reading_types.len(), 1);
        let c = end_device_controls_xml(&[ControlRequest {
            mrid: Some("c1".into()),
            control: Control::Disconnect,
            meters: vec!["A".into()],
        }]);
        let m = request_message("create", "EndDeviceControls", "2", 0, None, Some(&c));
        let m = RequestMessage::parse(m.as_bytes()).unwrap();
        let cs = controls(m.payload.as_ref()).unwrap();
        assert_eq!(cs[0].control, Control::Disconnect);
        assert_eq!(cs[0].meters, ["A"]);
        let bad = c.replace("3.31.0.68", "3.31.0.1");
        let m = request_message("create", "EndDeviceControls", "3", 0, None, Some(&bad));
        let m = RequestMessage::parse(m.as_bytes()).unwrap();
        assert_eq!(
            controls(m.payload.as_ref()).unwrap_err().code,
            code::UNSUPPORTED_CONTROL
        );
    }
}
