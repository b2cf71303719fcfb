//! Events and alarms: list, filter, acknowledge. An event's id is its natural key,
//! `meter~log~time~code`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{visible_ids, visible_meter};
use crate::accounts::{EventFilter, EventKey, EventRow, Severity};
use crate::auth::{parse_group, unix_now, Permission, Principal};
use crate::error::ApiError;
use crate::extract::{opt_time, rfc3339, ApiPath, ApiQuery, List, Page};
use crate::AppState;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventJson {
    id: String,
    meter: String,
    time: String,
    log: String,
    code: u16,
    description: String,
    severity: Severity,
    acknowledged: bool,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<String>,
}

/// What the common IDIS event codes mean.
pub fn describe(code: u16) -> String {
    let known = match code {
        1 => "Power down",
        2 => "Power up",
        3 => "Daylight saving time changed",
        4 => "Clock adjusted (old time)",
        5 => "Clock adjusted (new time)",
        6 => "Clock invalid",
        7 => "Replace battery",
        8 => "Battery voltage low",
        9 => "Tariff (TOU) activated",
        10 => "Error register cleared",
        11 => "Alarm register cleared",
        17 => "Firmware ready for activation",
        18 => "Firmware activated",
        19 => "Passive TOU programmed",
        40 => "Terminal cover removed",
        41 => "Terminal cover closed",
        42 => "Strong DC field detected",
        43 => "Strong DC field gone",
        44 => "Meter cover removed",
        45 => "Meter cover closed",
        46 => "Association authentication failure",
        47 => "Decryption or authentication failure",
        48 => "Replay attack",
        59 => "Disconnector opened",
        60 => "Disconnector closed",
        76 => "Under voltage L1",
        77 => "Under voltage L2",
        78 => "Under voltage L3",
        79 => "Over voltage L1",
        80 => "Over voltage L2",
        81 => "Over voltage L3",
        82 => "Missing voltage L1",
        83 => "Missing voltage L2",
        84 => "Missing voltage L3",
        _ => return format!("Event {code}"),
    };
    known.to_string()
}

pub fn event_id(e: &EventRow) -> String {
    format!("{}~{}~{}~{}", e.meter, e.log, e.time, e.code)
}

fn parse_id(id: &str) -> Option<EventKey> {
    let mut parts = id.rsplitn(4, '~');
    let code = parts.next()?.parse().ok()?;
    let time = parts.next()?.parse().ok()?;
    let log = parts.next()?.to_string();
    let meter = parts.next()?.to_string();
    Some(EventKey {
        meter,
        log,
        time,
        code,
    })
}

fn to_json(e: EventRow) -> EventJson {
    EventJson {
        id: event_id(&e),
        severity: Severity::of_event(&e.log, e.code),
        description: describe(e.code),
        time: rfc3339(e.time),
        acknowledged: e.acked_at.is_some(),
        acknowledged_at: e.acked_at.map(rfc3339),
        acknowledged_by: e.acked_by,
        meter: e.meter,
        log: e.log,
        code: e.code,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// a meter id (the meter's own list sets it from the path)
    meter: Option<String>,
    group: Option<String>,
    /// info, warning or alarm
    #[param(value_type = Option<String>)]
    severity: Option<Severity>,
    acknowledged: Option<bool>,
    /// RFC 3339 or Unix seconds
    from: Option<String>,
    /// RFC 3339 or Unix seconds
    to: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

impl EventQuery {
    fn page(&self) -> Page {
        Page {
            limit: self.limit,
            offset: self.offset,
        }
    }
}

/// The meters a query covers: the caller's scope, narrowed to one meter or one group.
fn scope(
    state: &AppState,
    who: &Principal,
    meter: Option<&str>,
    group: Option<&str>,
) -> Result<Option<Vec<String>>, ApiError> {
    let mut meters = visible_ids(state, who);
    if let Some(m) = meter.filter(|m| !m.is_empty()) {
        visible_meter(state, who, m)?;
        meters = Some(vec![m.to_string()]);
    }
    if let Some(g) = group.filter(|g| !g.is_empty()) {
        let (k, v) = parse_group(g)
            .ok_or_else(|| ApiError::BadRequest("group: expected key=value".into()))?;
        let in_group: Vec<String> = state
            .registry
            .all()
            .iter()
            .filter(|m| m.groups.get(&k).is_some_and(|x| *x == v))
            .filter(|m| who.sees_groups(&m.groups))
            .map(|m| m.id.0.clone())
            .collect();
        meters = Some(match meters {
            Some(prev) => prev.into_iter().filter(|m| in_group.contains(m)).collect(),
            None => in_group,
        });
    }
    Ok(meters)
}

async fn query(
    state: &AppState,
    who: &Principal,
    q: EventQuery,
) -> Result<Json<List<EventJson>>, ApiError> {
    who.require(Permission::Read)?;
    let meters = scope(state, who, q.meter.as_deref(), q.group.as_deref())?;
    let f = EventFilter {
        meters,
        severity: q.severity,
        acknowledged: q.acknowledged,
        from: opt_time("from", &q.from)?,
        to: opt_time("to", &q.to)?,
        limit: q.page().limit(),
        offset: q.page().offset(),
    };
    let (rows, total) = state.accounts.events(&f).await?;
    Ok(Json(List {
        items: rows.into_iter().map(to_json).collect(),
        total,
        limit: f.limit,
        offset: f.offset,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "get_events",
    tag = "events",
    summary = "Events in the caller's scope, newest first",
    params(EventQuery),
    responses((status = 200, description = "a page of events", body = List<EventJson>), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<List<EventJson>>, ApiError> {
    query(&state, &who, q).await
}

#[utoipa::path(
    get,
    path = "/api/v1/meters/{id}/events",
    operation_id = "get_meters_id_events",
    tag = "events",
    summary = "A meter's events, newest first",
    params(("id" = String, Path, description = "meter id"), EventQuery),
    responses((status = 200, description = "a page of events", body = List<EventJson>), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn by_meter(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(mut q): ApiQuery<EventQuery>,
) -> Result<Json<List<EventJson>>, ApiError> {
    q.meter = Some(id);
    query(&state, &who, q).await
}

#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/ack",
    operation_id = "post_events_id_ack",
    tag = "events",
    summary = "Acknowledge an event",
    params(("id" = String, Path, description = "event id")),
    responses((status = 200, description = "the event", body = EventJson), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn ack(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EventJson>, ApiError> {
    who.require(Permission::Ack)?;
    let key = parse_id(&id).ok_or_else(|| ApiError::NotFound(format!("event {id}")))?;
    visible_meter(&state, &who, &key.meter)?;
    if state.accounts.event(&key).await?.is_none() {
        return Err(ApiError::NotFound(format!("event {id}")));
    }
    state.audit(&who.name, "event.ack", &id, json!({})).await?;
    state
        .accounts
        .ack_event(&key, &who.name, unix_now())
        .await?;
    let e = state
        .accounts
        .event(&key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("event {id}")))?;
    Ok(Json(to_json(e)))
}

/// Events one incidents query correlates at most (the newest of the window).
const INCIDENT_EVENTS: u32 = 20_000;

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Incident)]
pub struct IncidentJson {
    meter: String,
    /// the code of the event that started it
    code: u16,
    description: String,
    severity: Severity,
    started: String,
    /// absent while it lasts
    ended: Option<String>,
    duration_s: i64,
    open: bool,
    /// the stored events it stands for (a tamper read from the log and pushed: one incident)
    events: u32,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    meter: Option<String>,
    group: Option<String>,
    /// info, warning or alarm
    #[param(value_type = Option<String>)]
    severity: Option<Severity>,
    /// only incidents still open (true) or only ended ones (false)
    open: Option<bool>,
    /// RFC 3339 or Unix seconds
    from: Option<String>,
    /// RFC 3339 or Unix seconds
    to: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/v1/incidents",
    operation_id = "get_incidents",
    tag = "events",
    summary = "Incidents in the caller's scope, newest first: the events that start and end a condition (a cover removed and closed, a power failure and its return) as one, with a duration; copies of one event from two logs counted once",
    params(IncidentQuery),
    responses((status = 200, description = "a page of incidents", body = List<IncidentJson>), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn incidents(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<IncidentQuery>,
) -> Result<Json<List<IncidentJson>>, ApiError> {
    who.require(Permission::Read)?;
    let meters = scope(&state, &who, q.meter.as_deref(), q.group.as_deref())?;
    let f = EventFilter {
        meters,
        severity: None,
        acknowledged: None,
        from: opt_time("from", &q.from)?,
        to: opt_time("to", &q.to)?,
        limit: INCIDENT_EVENTS,
        offset: 0,
    };
    let (rows, _) = state.accounts.events(&f).await?;
    let events: Vec<hes_rules::EventIn> = rows
        .into_iter()
        .map(|e| hes_rules::EventIn {
            meter: e.meter,
            log: e.log,
            time: e.time,
            code: e.code,
        })
        .collect();
    let now = unix_now();
    let mut all: Vec<IncidentJson> = hes_rules::incidents(&events)
        .into_iter()
        .map(|i| {
            let severity = match i.class {
                hes_model::event_class::EventClass::Alarm => Severity::Alarm,
                hes_model::event_class::EventClass::Warning => Severity::Warning,
                hes_model::event_class::EventClass::Info => Severity::Info,
            };
            IncidentJson {
                description: describe(i.code),
                severity,
                started: rfc3339(i.started),
                ended: i.ended.map(rfc3339),
                duration_s: i.duration(now),
                open: i.ended.is_none(),
                events: i.events,
                meter: i.meter,
                code: i.code,
            }
        })
        .filter(|i| q.severity.is_none_or(|s| s == i.severity))
        .filter(|i| q.open.is_none_or(|o| o == i.open))
        .collect();
    // Newest first (RFC 3339 in UTC sorts as time does).
    all.sort_by(|a, b| b.started.cmp(&a.started).then(a.meter.cmp(&b.meter)));
    Ok(Json(List::page(
        all,
        &Page {
            limit: q.limit,
            offset: q.offset,
        },
    )))
}
