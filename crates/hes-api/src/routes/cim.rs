//! The IEC 61968-9 (CIM) endpoint: one POST taking a RequestMessage and answering with a
//! ResponseMessage. `get MeterReadings`, `get EndDeviceEvents` and `create EndDeviceControls`
//! (disconnect, connect), authenticated and scoped like the rest of the API. Anything wrong
//! with a message is a reply with an error code (hes_cim::code) and nothing done. See
//! docs/cim.md.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hes_cim::event_type::{event_type, Control};
use hes_cim::message::{correlation, ReplyError, ReplyId, RequestMessage};
use hes_cim::payload::{self, DeviceEvent};
use hes_cim::reading_type;
use hes_cim::{code, Refusal, ReplyResult};
use hes_model::meter::MeterStatus;
use hes_model::{JobKind, JobState, MeterId};
use serde_json::json;

use super::visible_meter;
use crate::auth::{unix_now, Permission, Principal};
use crate::AppState;

/// The longest range of readings one message may ask for.
const MAX_READINGS_RANGE_S: i64 = 31 * 86_400;
/// The longest range of events one message may ask for.
const MAX_EVENTS_RANGE_S: i64 = 366 * 86_400;
/// Most events in one reply (more: PARTIAL, ask for a shorter range).
const MAX_EVENTS: u32 = 10_000;
/// How often a control's jobs are looked at while the reply waits for them.
const POLL: Duration = Duration::from_millis(200);

/// A reply: the CIM response, and the HTTP status that goes with it.
struct Reply {
    status: StatusCode,
    body: hes_cim::Response,
}

fn xml_response(r: Reply) -> Response {
    let id = format!("hes-{}", rand::random::<u64>());
    (
        r.status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        )],
        r.body.to_xml(&id, unix_now()),
    )
        .into_response()
}

/// The HTTP status of a refusal: the request's fault (400), a meter not found (404), a role
/// that may not (403), the head-end's fault (503).
fn status_of(code: &str) -> StatusCode {
    match code {
        code::NOT_FOUND => StatusCode::NOT_FOUND,
        code::FORBIDDEN => StatusCode::FORBIDDEN,
        code::UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn refused(m: Option<&hes_cim::message::Header>, r: &Refusal) -> Reply {
    Reply {
        status: status_of(r.code),
        body: hes_cim::Response::refused(m, r),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/cim",
    operation_id = "post_cim",
    tag = "cim",
    summary = "IEC 61968-9 messages: get MeterReadings, get EndDeviceEvents, create EndDeviceControls",
    description = "The body is a RequestMessage (namespace http://iec.ch/TC57/2011/schema/message); the answer a ResponseMessage whose Reply says OK, PARTIAL or FAILED with error codes. See docs/cim.md.",
    request_body(content = String, content_type = "application/xml", description = "a RequestMessage"),
    responses(
        (status = 200, description = "a ResponseMessage (OK or PARTIAL; FAILED when a control failed at the meter)", content_type = "application/xml", body = String),
        (status = 400, description = "a ResponseMessage refusing a malformed or unsupported request", content_type = "application/xml", body = String),
        (status = 401, response = crate::openapi::P401),
        (status = 403, description = "a ResponseMessage: the caller's role may not do this", content_type = "application/xml", body = String),
        (status = 404, description = "a ResponseMessage: no meter named is visible to the caller", content_type = "application/xml", body = String),
        (status = 413, response = crate::openapi::P413),
        (status = 503, description = "a ResponseMessage: the head-end could not do it now", content_type = "application/xml", body = String),
    ),
)]
pub async fn cim(State(state): State<AppState>, who: Principal, body: Bytes) -> Response {
    let m = match RequestMessage::parse(&body) {
        Ok(m) => m,
        Err(r) => return xml_response(refused(r.header.as_deref(), &r.refusal)),
    };
    let out = match (m.header.verb.as_str(), m.header.noun.as_str()) {
        ("get", "MeterReadings") => get_readings(&state, &who, &m).await,
        ("get", "EndDeviceEvents") => get_events(&state, &who, &m).await,
        ("create", "EndDeviceControls") => create_controls(&state, &who, &m).await,
        (verb, noun) => Err(Refusal::new(
            code::UNSUPPORTED,
            format!("{verb} {noun} is not served here (get MeterReadings, get EndDeviceEvents, create EndDeviceControls)"),
        )),
    };
    xml_response(match out {
        Ok(r) => r,
        Err(r) => refused(Some(&m.header), &r),
    })
}

fn require(who: &Principal, p: Permission) -> Result<(), Refusal> {
    who.require(p)
        .map_err(|_| Refusal::new(code::FORBIDDEN, format!("the role may not {p:?}")))
}

/// The range a `get` covers: its own, or the last day; at most `max` seconds.
fn range(q: &payload::Query, max: i64) -> Result<(i64, i64), Refusal> {
    let end = q.end.unwrap_or_else(unix_now);
    let start = q.start.unwrap_or(end - 86_400);
    if start > end {
        return Err(Refusal::new(
            code::BAD_REQUEST,
            "the start is after the end",
        ));
    }
    if end.saturating_sub(start) > max {
        return Err(Refusal::new(
            code::TOO_MUCH,
            format!("at most {} days per request", max / 86_400),
        ));
    }
    Ok((start, end))
}

/// The meters of a query the caller may see; the others become errors ("not found", so that
/// a meter outside the caller's groups looks like one that does not exist).
fn visible(
    state: &AppState,
    who: &Principal,
    meters: &[String],
) -> (Vec<MeterId>, Vec<ReplyError>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for id in meters {
        match visible_meter(state, who, id) {
            Ok(m) => ok.push(m.id.clone()),
            Err(_) => errors.push(ReplyError::fatal(
                code::NOT_FOUND,
                format!("meter {id} not found"),
                Some(id.clone()),
            )),
        }
    }
    (ok, errors)
}

fn result_of(found: usize, errors: &[ReplyError]) -> ReplyResult {
    if errors.is_empty() {
        ReplyResult::Ok
    } else if found == 0 {
        ReplyResult::Failed
    } else {
        ReplyResult::Partial
    }
}

fn answer(
    m: &RequestMessage,
    result: ReplyResult,
    errors: Vec<ReplyError>,
    ids: Vec<ReplyId>,
    payload: Option<String>,
) -> Reply {
    let status = match (result, errors.first()) {
        (ReplyResult::Failed, Some(e)) if e.code == code::NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    };
    Reply {
        status,
        body: hes_cim::Response {
            noun: m.header.noun.clone(),
            correlation_id: correlation(&m.header),
            result,
            errors,
            ids,
            payload,
        },
    }
}

async fn get_readings(
    state: &AppState,
    who: &Principal,
    m: &RequestMessage,
) -> Result<Reply, Refusal> {
    require(who, Permission::Read)?;
    let q = payload::query(m.request.as_ref(), "MeterReadings")?;
    let (start, end) = range(&q, MAX_READINGS_RANGE_S)?;
    let mut wanted = Vec::new();
    for t in &q.reading_types {
        wanted.push(reading_type::from_code(t).ok_or_else(|| {
            Refusal::new(
                code::BAD_REQUEST,
                format!("ReadingType {t} is not one we have"),
            )
        })?);
    }
    let (meters, mut errors) = visible(state, who, &q.meters);
    let mut out = Vec::with_capacity(meters.len());
    for id in &meters {
        // One interval earlier: the first interval's earlier entry.
        let rows = state
            .store
            .meter_readings(id, None, start - 900, end, hes_store::MAX_PAGE)
            .await
            .map_err(|e| Refusal::new(code::UNAVAILABLE, format!("the store: {e}")))?;
        if rows.len() >= hes_store::MAX_PAGE {
            errors.push(ReplyError::fatal(
                code::TOO_MUCH,
                "more values than one reply carries; the reply ends early: ask for a shorter range",
                Some(id.0.clone()),
            ));
        }
        out.push(hes_cim::build::meter_reading(
            &id.0, &rows, start, end, &wanted,
        ));
    }
    let result = result_of(meters.len(), &errors);
    let payload = (!out.is_empty()).then(|| payload::meter_readings_xml(&out));
    Ok(answer(m, result, errors, Vec::new(), payload))
}

/// An event as sent (`get EndDeviceEvents`; the outbound `created EndDeviceEvents` builds
/// the same).
fn device_event(e: &hes_store::accounts::EventRow) -> DeviceEvent {
    hes_cim::build::device_event(&e.meter, &e.log, e.time, e.code, super::events::describe)
}

async fn get_events(
    state: &AppState,
    who: &Principal,
    m: &RequestMessage,
) -> Result<Reply, Refusal> {
    require(who, Permission::Read)?;
    let q = payload::query(m.request.as_ref(), "EndDeviceEvents")?;
    let (start, end) = range(&q, MAX_EVENTS_RANGE_S)?;
    let (meters, mut errors) = visible(state, who, &q.meters);
    let mut events = Vec::new();
    if !meters.is_empty() {
        let f = hes_store::accounts::EventFilter {
            meters: Some(meters.iter().map(|m| m.0.clone()).collect()),
            severity: None,
            acknowledged: None,
            from: Some(start),
            to: Some(end),
            limit: MAX_EVENTS,
            offset: 0,
        };
        let (rows, total) = state
            .accounts
            .events(&f)
            .await
            .map_err(|e| Refusal::new(code::UNAVAILABLE, format!("the store: {e}")))?;
        if total > rows.len() as u64 {
            errors.push(ReplyError::fatal(
                code::TOO_MUCH,
                format!("{total} events; the reply carries the newest {MAX_EVENTS}: ask for a shorter range"),
                None,
            ));
        }
        // Oldest first, as a log reads.
        events = rows.iter().rev().map(device_event).collect();
    }
    let result = result_of(meters.len(), &errors);
    let payload = (!meters.is_empty()).then(|| payload::end_device_events_xml(&events));
    Ok(answer(m, result, errors, Vec::new(), payload))
}

/// `create EndDeviceControls`: every meter is checked first (it exists, the caller sees it,
/// it is not decommissioned, the control is one we carry out); any failure refuses the whole
/// message and nothing is queued. Then one relay job per meter, and the reply waits for them
/// up to the configured time: done ones are reported with their outcome, the others as
/// pending with their job's id (the outcome then reaches the MDM as the meter's event).
async fn create_controls(
    state: &AppState,
    who: &Principal,
    m: &RequestMessage,
) -> Result<Reply, Refusal> {
    require(who, Permission::Command)?;
    let controls = payload::controls(m.payload.as_ref())?;
    let mut errors = Vec::new();
    let mut plan = Vec::new();
    for c in &controls {
        let kind = match c.control {
            Control::Disconnect => JobKind::Relay { connect: false },
            Control::Connect => JobKind::Relay { connect: true },
            Control::DemandReset => {
                return Err(Refusal::new(
                    code::UNSUPPORTED_CONTROL,
                    "demand reset is not carried out by this head-end yet",
                ))
            }
        };
        for id in &c.meters {
            match visible_meter(state, who, id) {
                Ok(meter) if meter.status == MeterStatus::Decommissioned => {
                    errors.push(ReplyError::fatal(
                        code::BAD_REQUEST,
                        format!("meter {id} is decommissioned"),
                        Some(id.clone()),
                    ))
                }
                Ok(meter) => plan.push((c, meter.id.clone(), kind.clone())),
                Err(_) => errors.push(ReplyError::fatal(
                    code::NOT_FOUND,
                    format!("meter {id} not found"),
                    Some(id.clone()),
                )),
            }
        }
    }
    if !errors.is_empty() {
        // Nothing is done when any part is wrong: the MDM corrects and sends again.
        let mut r = answer(m, ReplyResult::Failed, errors, Vec::new(), None);
        if r.status == StatusCode::OK {
            r.status = StatusCode::BAD_REQUEST;
        }
        return Ok(r);
    }
    let mut jobs = Vec::with_capacity(plan.len());
    for (c, meter, kind) in plan {
        state
            .audit(
                &who.name,
                "cim.command.relay",
                &meter.0,
                json!({
                    "control": c.control.name(),
                    "control_mrid": c.mrid,
                    "message_id": m.header.message_id,
                }),
            )
            .await
            .map_err(|e| Refusal::new(code::UNAVAILABLE, format!("the audit log: {e}")))?;
        let job = state
            .commands
            .submit(meter.clone(), kind, &who.name)
            .await
            .map_err(|e| Refusal::new(code::UNAVAILABLE, format!("queueing: {e}")))?;
        jobs.push((c, meter, job));
    }
    // Wait for the outcome, up to the configured time (none when the MDM asked for an
    // asynchronous reply).
    let wait = if m.header.async_reply {
        Duration::ZERO
    } else {
        state.config.cim_control_wait
    };
    let deadline = Instant::now() + wait;
    let mut done: BTreeMap<u64, hes_model::Job> = BTreeMap::new();
    loop {
        for (_, _, id) in &jobs {
            if done.contains_key(id) {
                continue;
            }
            if let Ok(Some(j)) = state.registry.state().job(*id).await {
                if j.state.is_final() {
                    done.insert(*id, j);
                }
            }
        }
        if done.len() == jobs.len() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let mut errors = Vec::new();
    let mut events = Vec::new();
    let mut ids = Vec::new();
    let mut succeeded = 0usize;
    for (c, meter, id) in &jobs {
        ids.push(ReplyId {
            object_type: "Job".into(),
            id: id.to_string(),
        });
        match done.get(id) {
            Some(j) if j.state == JobState::Succeeded => {
                succeeded += 1;
                let connected = c.control == Control::Connect;
                events.push(DeviceEvent {
                    mrid: format!("job-{id}"),
                    meter: meter.0.clone(),
                    time: j.finished_at.unwrap_or_else(unix_now),
                    event_type: event_type(if connected { 60 } else { 59 }),
                    reason: format!(
                        "{} carried out; the relay reads {}",
                        c.control.name(),
                        if connected {
                            "connected"
                        } else {
                            "disconnected"
                        }
                    ),
                    severity: "info".into(),
                    details: vec![
                        ("job".into(), id.to_string()),
                        ("relay_connected".into(), connected.to_string()),
                    ],
                });
            }
            Some(j) => errors.push(ReplyError::fatal(
                code::FAILED_AT_METER,
                format!(
                    "{} of meter {} {}: {}",
                    c.control.name(),
                    meter.0,
                    if j.state == JobState::Cancelled {
                        "cancelled"
                    } else {
                        "failed"
                    },
                    j.last_error.clone().unwrap_or_default()
                ),
                Some(meter.0.clone()),
            )),
            None => errors.push(ReplyError::inform(
                if m.header.async_reply {
                    code::ACCEPTED
                } else {
                    code::PENDING
                },
                format!(
                    "{} of meter {} queued as job {id}; its outcome follows as the meter's event",
                    c.control.name(),
                    meter.0
                ),
                Some(meter.0.clone()),
            )),
        }
    }
    let failed = errors.iter().any(|e| e.code == code::FAILED_AT_METER);
    let pending_only = errors.iter().all(|e| e.code == code::ACCEPTED);
    let result = if errors.is_empty() || pending_only {
        ReplyResult::Ok
    } else if failed && succeeded == 0 {
        ReplyResult::Failed
    } else {
        ReplyResult::Partial
    };
    let payload = (!events.is_empty()).then(|| payload::end_device_events_xml(&events));
    Ok(answer(m, result, errors, ids, payload))
}
