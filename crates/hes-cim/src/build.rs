//! The payloads built from our data: a meter's MeterReading from its stored readings, an
//! EndDeviceEvent from a stored event. Shared by the endpoint (`get`) and the outbound
//! delivery (`created`), so the MDM sees the same either way.

use std::collections::BTreeMap;

use hes_model::event_class::{classify, EventClass};
use hes_model::{Quality, ValidatedReading};

use crate::event_type::event_type;
use crate::payload::{quality, DeviceEvent, MeterReading, Series, Value};
use crate::reading_type::{self, Form};

/// ReadingQualityType codes of our quality flags.
pub fn qualities(q: Quality) -> Vec<&'static str> {
    let mut out = Vec::new();
    if q.has(Quality::ESTIMATED) {
        out.push(quality::ESTIMATED);
    }
    if q.has(Quality::SPIKE | Quality::OUT_OF_RANGE) {
        out.push(quality::REASONABILITY);
    }
    if q.has(!(Quality::ESTIMATED | Quality::SPIKE | Quality::OUT_OF_RANGE)) {
        out.push(quality::VALIDATION);
    }
    out
}

/// One meter's MeterReading over `(start, end]` from its stored readings (which should start
/// one interval before `start`, so that the first interval has its earlier entry): cumulative
/// registers as read, instantaneous values, and 15-minute interval consumption. A span longer
/// than one interval (a gap) is left out: the MDM sees the gap and estimates, as it would for
/// any missing interval. `wanted`: only these (channel, form) pairs (empty: all).
pub fn meter_reading(
    meter: &str,
    rows: &[ValidatedReading],
    start: i64,
    end: i64,
    wanted: &[(&str, Form)],
) -> MeterReading {
    let want = |c: &str, f: Form| wanted.is_empty() || wanted.contains(&(c, f));
    let mut readings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for v in rows {
        let r = &v.reading;
        if r.time <= start || r.time > end {
            continue;
        }
        let Some(channel) = hes_rules::channel(&r.obis) else {
            continue;
        };
        let form = if hes_rules::is_cumulative(r) {
            Form::Register
        } else {
            Form::Instant
        };
        if !want(channel, form) {
            continue;
        }
        if let Some((rt, factor)) = reading_type::reading_type(channel, form) {
            readings.entry(rt.to_string()).or_default().push(Value {
                time: r.time,
                value: hes_rules::to_si(r) * factor,
                qualities: qualities(v.quality),
            });
        }
    }
    let mut blocks: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for i in hes_rules::intervals(rows) {
        if i.seconds() != 900 || i.end <= start || i.end > end {
            continue;
        }
        if !want(&i.channel, Form::Interval15) {
            continue;
        }
        if let Some((rt, factor)) = reading_type::reading_type(&i.channel, Form::Interval15) {
            blocks.entry(rt.to_string()).or_default().push(Value {
                time: i.end,
                value: i.wh() * factor,
                qualities: qualities(i.quality),
            });
        }
    }
    let series = |m: BTreeMap<String, Vec<Value>>| {
        m.into_iter()
            .map(|(reading_type, values)| Series {
                reading_type,
                values,
            })
            .collect()
    };
    MeterReading {
        meter: meter.to_string(),
        interval: Some((start, end)),
        readings: series(readings),
        blocks: series(blocks),
    }
}

/// The severity word of an event class.
pub fn severity(c: EventClass) -> &'static str {
    match c {
        EventClass::Alarm => "alarm",
        EventClass::Warning => "warning",
        EventClass::Info => "info",
    }
}

/// An event as sent: its mRID is the API's event id (`meter~log~time~code`), its reason
/// `describe(code)`.
pub fn device_event(
    meter: &str,
    log: &str,
    time: i64,
    code: u16,
    describe: fn(u16) -> String,
) -> DeviceEvent {
    DeviceEvent {
        mrid: format!("{meter}~{log}~{time}~{code}"),
        meter: meter.to_string(),
        time,
        event_type: event_type(code),
        reason: describe(code),
        severity: severity(classify(log, code)).to_string(),
        details: vec![
            ("code".to_string(), code.to_string()),
            ("log".to_string(), log.to_string()),
        ],
    }
}
