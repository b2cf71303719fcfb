//! The simulator's control surface: a small HTTP API on loopback that gives the ground truth
//! (what each meter recorded, computed by the very code that answers DLMS requests) and turns
//! faults, power cuts and tampers on and off.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/meters` | the inventory (as `--inventory` writes it) |
//! | GET | `/meters/{id}` | the meter's state: clock, registers, relay, firmware, counters, replays, faults |
//! | GET | `/meters/{id}/profile/{obis}?from=&to=` | entries of a profile or event log (Unix seconds, inclusive) |
//! | PUT | `/meters/{id}/faults` | replace the meter's faults (JSON [`Faults`]) |
//! | POST | `/faults` | `{"faults": {...}, "fraction": 0.1, "seed": 7}`: a reproducible share of the fleet |
//! | DELETE | `/faults` | clear every fault |
//! | POST | `/meters/{id}/power` | `{"on": false}`: a power cut (the meter stops answering), or its end |
//! | POST | `/meters/{id}/tamper` | the terminal cover is opened and closed |
//! | GET | `/stats` | connections, sessions, pushes and replays refused so far |
//!
//! It has no authentication: it is a test instrument, bound to loopback by default.

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

/// Serves the control API on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, fleet: Arc<Fleet>) -> std::io::Result<()> {
    axum::serve(listener, router(fleet)).await
}

pub fn router(fleet: Arc<Fleet>) -> Router {
    Router::new()
        .route("/meters", get(inventory))
        .route("/meters/{id}", get(meter))
        .route("/meters/{id}/profile/{obis}", get(profile))
        .route("/meters/{id}/faults", put(set_faults))
        .route("/meters/{id}/power", post(power))
        .route("/meters/{id}/tamper", post(tamper))
        .route("/faults", post(fraction_faults).delete(clear_faults))
        .route("/stats", get(stats))
        .with_state(fleet)
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

async fn inventory(State(fleet): Fl) -> Json<Vec<crate::fleet::InventoryEntry>> {
    Json(fleet.inventory())
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
    Json(json!({
        "meters": fleet.len(),
        "connections": n(&s.connections),
        "sessions_ended": n(&s.sessions_ended),
        "connections_turned_away": n(&s.connections_turned_away),
        "pushes_sent": n(&s.pushes_sent),
        "pushes_failed": n(&s.pushes_failed),
        "replays": fleet.total_replays(),
    }))
}

/// Where the control API listens, as printed at start.
pub fn describe(addr: SocketAddr) -> String {
    format!("CONTROL http://{addr}")
}
