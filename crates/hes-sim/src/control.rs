//! The simulator's control surface: a small HTTP API on loopback that gives the ground truth
//! (what each meter recorded, computed by the very code that answers DLMS requests) and turns
//! faults, power cuts and tampers on and off.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/meters?with_keys=true` | the inventory (as `--inventory` writes it); keys and password blank unless `with_keys=true` |
//! | GET | `/meters/{id}` | the meter's state: clock, registers, relay, firmware, counters, replays, faults, link |
//! | GET | `/links` | every meter's link profile and what it went through (refusals, drops, stalls, pushes) |
//! | GET | `/meters/{id}/profile/{obis}?from=&to=` | entries of a profile or event log (Unix seconds, inclusive) |
//! | PUT | `/meters/{id}/faults` | replace the meter's faults (JSON [`Faults`]) |
//! | POST | `/faults` | `{"faults": {...}, "fraction": 0.1, "seed": 7}`: a reproducible share of the fleet |
//! | DELETE | `/faults` | clear every fault |
//! | POST | `/meters/{id}/power` | `{"on": false}`: a power cut (the meter stops answering), or its end |
//! | POST | `/meters/{id}/tamper` | the terminal cover is opened and closed |
//! | GET | `/stats` | connections, sessions (now and most at once), pushes, link totals, replays refused |
//!
//! It has no authentication: it is a test instrument, bound to loopback unless told otherwise.
//! A request must name the API by a loopback host (`localhost`, 127.x, `[::1]`), the address
//! it is bound to, or a name it was given: a web page elsewhere cannot reach it through DNS
//! rebinding (421 otherwise, 400 without a Host header).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use dlms::ObisCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::data::{EventLog, Quantity};
use crate::fleet::{Faults, Fleet, FleetError};
use crate::{obis, Meter, Profile};

/// A COSEM value as JSON: numbers as numbers, date-times as Unix seconds, octets as hex.
pub use hes_model::data_json::plain as data_json;

/// Serves the control API on `listener` until the task is dropped; the Host header may name
/// loopback or the listener's own address.
pub async fn serve(listener: tokio::net::TcpListener, fleet: Arc<Fleet>) -> std::io::Result<()> {
    serve_with(listener, fleet, Vec::new()).await
}

/// As [`serve`], with more host names a request may address the API by.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    fleet: Arc<Fleet>,
    mut hosts: Vec<String>,
) -> std::io::Result<()> {
    let ip = listener.local_addr()?.ip();
    if !ip.is_unspecified() {
        hosts.push(ip.to_string());
    }
    axum::serve(listener, router_with(fleet, hosts)).await
}

/// The API, answering requests addressed to a loopback host.
pub fn router(fleet: Arc<Fleet>) -> Router {
    router_with(fleet, Vec::new())
}

/// The API, answering requests addressed to a loopback host or one of `hosts`.
pub fn router_with(fleet: Arc<Fleet>, hosts: Vec<String>) -> Router {
    let hosts: Arc<[String]> = hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect();
    Router::new()
        .route("/meters", get(inventory))
        .route("/links", get(links))
        .route("/meters/{id}", get(meter))
        .route("/meters/{id}/profile/{obis}", get(profile))
        .route("/meters/{id}/faults", put(set_faults))
        .route("/meters/{id}/power", post(power))
        .route("/meters/{id}/tamper", post(tamper))
        .route("/faults", post(fraction_faults).delete(clear_faults))
        .route("/stats", get(stats))
        .with_state(fleet)
        .layer(axum::middleware::from_fn_with_state(hosts, check_host))
}

/// The host part of a Host header (no port; an IPv6 literal without its brackets).
fn host_name(header: &str) -> &str {
    if let Some(rest) = header.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match header.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => header,
    }
}

/// Whether `header` names this API: a loopback host or one it was given.
pub fn host_allowed(header: &str, hosts: &[String]) -> bool {
    let name = host_name(header.trim()).to_ascii_lowercase();
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || hosts.contains(&name)
}

async fn check_host(
    State(hosts): State<Arc<[String]>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match host {
        None => ApiError(StatusCode::BAD_REQUEST, "no Host header".into()).into_response(),
        Some(h) if host_allowed(&h, &hosts) => next.run(req).await,
        Some(h) => ApiError(
            StatusCode::MISDIRECTED_REQUEST,
            format!("this API is not served as {h:?}"),
        )
        .into_response(),
    }
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<FleetError> for ApiError {
    fn from(e: FleetError) -> Self {
        let status = match e {
            FleetError::NoMeter(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(status, e.to_string())
    }
}

type Fl = State<Arc<Fleet>>;

fn cell<'a>(fleet: &'a Fleet, id: &str) -> Result<&'a Arc<crate::fleet::MeterCell>, ApiError> {
    fleet
        .meter(id)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no meter {id}")))
}

#[derive(Debug, Deserialize)]
struct KeysQuery {
    #[serde(default)]
    with_keys: bool,
}

/// The inventory; secrets only when asked for by name (a page that reads the API by accident
/// or a log of its answers holds no keys).
async fn inventory(
    State(fleet): Fl,
    Query(q): Query<KeysQuery>,
) -> Json<Vec<crate::fleet::InventoryEntry>> {
    let mut inv = fleet.inventory();
    if !q.with_keys {
        for e in &mut inv {
            for secret in [&mut e.ek, &mut e.ak, &mut e.kek, &mut e.password] {
                secret.clear();
            }
        }
    }
    Json(inv)
}

async fn links(State(fleet): Fl) -> Json<Value> {
    let links: BTreeMap<String, crate::link::LinkTruth> = fleet
        .meters()
        .iter()
        .map(|c| (c.spec.id(), c.link.truth()))
        .collect();
    Json(json!(links))
}

/// The registers of a meter at its clock's now, by OBIS code.
pub fn registers(m: &Meter, now: i64) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (c, q) in [1u8, 2, 3, 4].into_iter().zip(Quantity::ALL) {
        for tariff in 0..=2u8 {
            let code = ObisCode::new(1, 0, c, 8, tariff, 255);
            out.insert(code.to_string(), m.energy(q, tariff, now));
        }
    }
    out
}

async fn meter(State(fleet): Fl, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let cell = cell(&fleet, &id)?;
    let m = cell.lock();
    let now = m.now();
    let i = m.instantaneous();
    let saps = m.config().saps;
    Ok(Json(json!({
        "id": id,
        "clock": now,
        "clock_offset_s": m.clock_offset(),
        "relay_connected": m.relay_connected(),
        "powered": m.powered(),
        "firmware": m.firmware_version(),
        "calendar": String::from_utf8_lossy(&m.calendar_name()),
        "key_version": m.key_version(),
        "alarm_register": m.alarm_register(),
        "registers": registers(&m, now),
        "instantaneous": {
            "voltage_dv": i.voltage_dv,
            "current_ma": i.current_ma,
            "active_power_w": i.active_power_w,
            "reactive_power_var": i.reactive_power_var,
            "frequency_mhz": i.frequency_mhz,
            "power_factor_milli": i.power_factor_milli,
        },
        "invocation_counters": {
            "last_from_management": m.last_invocation_counter(saps.management),
            "next_own": m.next_invocation_counter(),
        },
        "replays": m.replays(),
        "faults": m.faults,
        "quirks": cell.spec.quirks,
        "port": cell.addr().port(),
        "link": cell.link.truth(),
    })))
}

#[derive(Debug, Deserialize)]
struct Window {
    from: Option<i64>,
    to: Option<i64>,
}

/// The profile behind a logical name.
pub fn profile_of(obis: ObisCode) -> Option<Profile> {
    Some(match obis {
        o if o == obis::LOAD_PROFILE => Profile::Load,
        o if o == obis::DAILY_PROFILE => Profile::Daily,
        o if o == obis::BILLING_PROFILE => Profile::Billing,
        o if o == obis::STANDARD_LOG => Profile::Events(EventLog::Standard),
        o if o == obis::FRAUD_LOG => Profile::Events(EventLog::Fraud),
        o if o == obis::POWER_QUALITY_LOG => Profile::Events(EventLog::PowerQuality),
        _ => return None,
    })
}

async fn profile(
    State(fleet): Fl,
    Path((id, name)): Path<(String, String)>,
    Query(w): Query<Window>,
) -> Result<Json<Value>, ApiError> {
    let cell = cell(&fleet, &id)?;
    let code: ObisCode = name
        .parse()
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, format!("bad OBIS code {name}")))?;
    let p = profile_of(code)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no profile {code}")))?;
    let rows = cell
        .lock()
        .profile_rows(p, w.from.unwrap_or(i64::MIN), w.to.unwrap_or(i64::MAX));
    let columns: Vec<String> = Meter::profile_columns(p)
        .iter()
        .map(|c| format!("{}:{}", c.logical_name, c.attribute_index))
        .collect();
    let rows: Vec<Value> = rows
        .iter()
        .map(|(_, r)| Value::Array(r.iter().map(data_json).collect()))
        .collect();
    Ok(Json(json!({ "columns": columns, "rows": rows })))
}

async fn set_faults(
    State(fleet): Fl,
    Path(id): Path<String>,
    Json(faults): Json<Faults>,
) -> Result<StatusCode, ApiError> {
    fleet.set_faults(&id, faults).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct FractionFaults {
    faults: Faults,
    fraction: f64,
    #[serde(default)]
    seed: u64,
}

#[derive(Debug, Serialize)]
struct Chosen {
    meters: Vec<String>,
}

async fn fraction_faults(
    State(fleet): Fl,
    Json(req): Json<FractionFaults>,
) -> Result<Json<Chosen>, ApiError> {
    let meters = fleet
        .set_faults_fraction(req.faults, req.fraction, req.seed)
        .await?;
    Ok(Json(Chosen { meters }))
}

async fn clear_faults(State(fleet): Fl) -> Result<StatusCode, ApiError> {
    fleet.clear_faults().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct Power {
    on: bool,
}

async fn power(
    State(fleet): Fl,
    Path(id): Path<String>,
    Json(p): Json<Power>,
) -> Result<StatusCode, ApiError> {
    fleet.set_power(&id, p.on).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn tamper(State(fleet): Fl, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    fleet.tamper(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn stats(State(fleet): Fl) -> Json<Value> {
    let s = fleet.stats();
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let sum = |f: fn(&crate::link::LinkLog) -> &std::sync::atomic::AtomicU64| -> u64 {
        fleet.meters().iter().map(|c| n(f(&c.link.log))).sum()
    };
    Json(json!({
        "meters": fleet.len(),
        "connections": n(&s.connections),
        "sessions_ended": n(&s.sessions_ended),
        "active_sessions": n(&s.active_sessions),
        "peak_sessions": n(&s.peak_sessions),
        "connections_turned_away": n(&s.connections_turned_away),
        "pushes_sent": n(&s.pushes_sent),
        "pushes_failed": n(&s.pushes_failed),
        "push_attempts": n(&s.push_attempts),
        "link": {
            "connects_refused": sum(|l| &l.connects_refused),
            "drops": sum(|l| &l.drops),
            "stalls": sum(|l| &l.stalls),
            "pushes_given_up": sum(|l| &l.pushes_given_up),
        },
        "replays": fleet.total_replays(),
    }))
}

/// Where the control API listens, as printed at start.
pub fn describe(addr: SocketAddr) -> String {
    format!("CONTROL http://{addr}")
}
