//! Meters: list and search, detail with the latest values, create, update, decommission,
//! import from an inventory CSV.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hes_model::inventory::{self, InventoryEntry};
use hes_model::meter::{MeterRecord, MeterStatus};
use hes_model::MeterId;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::readings::{channel_name, si_value, unit_text};
use super::visible_meter;
use crate::auth::{parse_group, unix_now, Permission, Principal};
use crate::error::ApiError;
use crate::extract::{rfc3339, ApiJson, ApiPath, ApiQuery, ApiText, List, Page};
use crate::AppState;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct Meter {
    id: String,
    serial: String,
    logical_device_name: String,
    host: String,
    port: u16,
    system_title: String,
    #[schema(schema_with = crate::openapi::meter_status)]
    status: MeterStatus,
    groups: BTreeMap<String, String>,
    online: bool,
    last_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest: Option<Vec<Latest>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Latest {
    channel: String,
    obis: String,
    value: f64,
    unit: &'static str,
    time: String,
}

fn meter_json(m: &MeterRecord, online: bool, last_seen: Option<i64>) -> Meter {
    Meter {
        id: m.id.0.clone(),
        serial: m.serial.clone(),
        logical_device_name: m.logical_device_name.clone(),
        host: m.endpoint.host.clone(),
        port: m.endpoint.port,
        system_title: m.system_title.clone(),
        status: m.status,
        groups: m.groups.clone(),
        online,
        last_seen: last_seen.map(rfc3339),
        latest: None,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MeterQuery {
    q: Option<String>,
    group: Option<String>,
    /// active, inactive or decommissioned
    #[param(value_type = Option<String>)]
    status: Option<MeterStatus>,
    online: Option<bool>,
    limit: Option<u32>,
    offset: Option<u32>,
}

impl MeterQuery {
    fn page(&self) -> Page {
        Page {
            limit: self.limit,
            offset: self.offset,
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/meters",
    operation_id = "get_meters",
    tag = "meters",
    summary = "Meters in the caller's scope",
    params(MeterQuery),
    responses((status = 200, description = "a page of meters", body = List<Meter>), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403)),
)]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<MeterQuery>,
) -> Result<Json<List<Meter>>, ApiError> {
    who.require(Permission::Read)?;
    let group = match q.group.as_deref().filter(|g| !g.is_empty()) {
        Some(g) => Some(
            parse_group(g)
                .ok_or_else(|| ApiError::BadRequest("group: expected key=value".into()))?,
        ),
        None => None,
    };
    let needle = q.q.as_deref().unwrap_or("").to_lowercase();
    let meters: Vec<_> = state
        .registry
        .all()
        .into_iter()
        .filter(|m| who.sees_groups(&m.groups))
        .filter(|m| q.status.is_none_or(|s| m.status == s))
        .filter(|m| {
            group
                .as_ref()
                .is_none_or(|(k, v)| m.groups.get(k).is_some_and(|x| x == v))
        })
        .filter(|m| {
            needle.is_empty()
                || m.id.0.to_lowercase().contains(&needle)
                || m.serial.to_lowercase().contains(&needle)
                || m.endpoint.host.contains(&needle)
        })
        .collect();
    let now = unix_now();
    let within = state.config.online_within_s;
    // Online state only for the page, unless the filter needs it for all.
    let (selected, total) = if let Some(want) = q.online {
        let ids: Vec<MeterId> = meters.iter().map(|m| m.id.clone()).collect();
        let online = state.cache.online(&ids, now, within).await?;
        let keep: Vec<_> = meters
            .into_iter()
            .zip(online)
            .filter(|(_, (_, on))| *on == want)
            .map(|(m, _)| m)
            .collect();
        let total = keep.len();
        (keep, total)
    } else {
        let total = meters.len();
        (meters, total)
    };
    let page: Vec<_> = selected
        .into_iter()
        .skip(q.page().offset() as usize)
        .take(q.page().limit() as usize)
        .collect();
    let ids: Vec<MeterId> = page.iter().map(|m| m.id.clone()).collect();
    let online = state.cache.online(&ids, now, within).await?;
    let mut items = Vec::with_capacity(page.len());
    for (m, (_, on)) in page.iter().zip(online) {
        let seen = state.cache.last_seen(&m.id).await?;
        items.push(meter_json(m, on, seen));
    }
    Ok(Json(List {
        items,
        total: total as u64,
        limit: q.page().limit(),
        offset: q.page().offset(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/meters/{id}",
    operation_id = "get_meters_id",
    tag = "meters",
    summary = "A meter with its latest values",
    params(("id" = String, Path, description = "meter id")),
    responses((status = 200, description = "the meter", body = Meter), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn detail(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Meter>, ApiError> {
    who.require(Permission::Read)?;
    let m = visible_meter(&state, &who, &id)?;
    Ok(Json(full(&state, &m).await?))
}

async fn full(state: &AppState, m: &MeterRecord) -> Result<Meter, ApiError> {
    let seen = state.cache.last_seen(&m.id).await?;
    let online = seen.is_some_and(|t| unix_now() - t <= state.config.online_within_s);
    let latest = state
        .cache
        .latest(&m.id)
        .await?
        .iter()
        .map(|r| Latest {
            channel: channel_name(&r.obis),
            obis: r.obis.to_string(),
            value: si_value(r),
            unit: unit_text(r.unit),
            time: rfc3339(r.time),
        })
        .collect();
    let mut out = meter_json(m, online, seen);
    out.latest = Some(latest);
    Ok(out)
}

/// An inventory entry with the meter's groups.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewMeter {
    #[serde(flatten)]
    entry: InventoryEntry,
    #[serde(default)]
    groups: BTreeMap<String, String>,
}

/// A scoped admin places meters only in its own groups: a meter it creates, imports, replaces
/// or regroups must stay visible to it.
fn within_scope(
    who: &Principal,
    id: &str,
    groups: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    if who.sees_groups(groups) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "meter {id}: its groups must include one of yours ({})",
            who.groups_text().join(",")
        )))
    }
}

fn check_groups(groups: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if groups.len() > 32
        || groups.iter().any(|(k, v)| {
            k.is_empty() || v.is_empty() || k.contains('=') || k.len() > 64 || v.len() > 128
        })
    {
        return Err(ApiError::BadRequest(
            "groups: at most 32, keys and values non-empty, keys without '='".into(),
        ));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/api/v1/meters",
    operation_id = "post_meters",
    tag = "meters",
    summary = "Register a meter (admin)",
    request_body = NewMeter,
    responses((status = 201, description = "registered", body = Meter), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 409, response = crate::openapi::P409), (status = 413, response = crate::openapi::P413)),
)]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(new): ApiJson<NewMeter>,
) -> Result<(StatusCode, Json<Meter>), ApiError> {
    who.require(Permission::Admin)?;
    check_groups(&new.groups)?;
    let mut all_groups = new.entry.groups.clone();
    all_groups.extend(new.groups.clone());
    within_scope(&who, &new.entry.id, &all_groups)?;
    let id = MeterId(new.entry.id.clone());
    if state.registry.get(&id).is_some() {
        return Err(ApiError::Conflict(format!("meter {id}")));
    }
    state
        .audit(
            &who.name,
            "meter.create",
            &id.0,
            json!({"groups": new.groups}),
        )
        .await?;
    let mut entry = new.entry.clone();
    entry.groups.extend(new.groups.clone());
    state
        .registry
        .import(std::slice::from_ref(&entry), false)
        .await
        .map_err(registry_error)?;
    let m = state
        .registry
        .get(&id)
        .ok_or_else(|| ApiError::Internal("the meter vanished".into()))?;
    Ok((StatusCode::CREATED, Json(full(&state, &m).await?)))
}

fn registry_error(e: hes_store::RegistryError) -> ApiError {
    use hes_store::RegistryError as E;
    match e {
        E::Invalid { .. } => ApiError::BadRequest(e.to_string()),
        E::NoMeter(id) => ApiError::NotFound(format!("meter {id}")),
        E::Store(hes_store::StoreError::Conflict(why)) => ApiError::Conflict(why),
        E::Store(hes_store::StoreError::NotFound(what)) => ApiError::NotFound(what),
        other => ApiError::internal(other),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = MeterPatch)]
#[serde(deny_unknown_fields)]
pub struct MeterUpdate {
    #[schema(schema_with = crate::openapi::meter_status)]
    status: Option<MeterStatus>,
    groups: Option<BTreeMap<String, String>>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/meters/{id}",
    operation_id = "patch_meters_id",
    tag = "meters",
    summary = "Change a meter's status or groups (admin)",
    params(("id" = String, Path, description = "meter id")),
    request_body = MeterUpdate,
    responses((status = 200, description = "the meter", body = Meter), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404), (status = 413, response = crate::openapi::P413)),
)]
pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(u): ApiJson<MeterUpdate>,
) -> Result<Json<Meter>, ApiError> {
    who.require(Permission::Admin)?;
    let m = visible_meter(&state, &who, &id)?;
    if let Some(g) = &u.groups {
        check_groups(g)?;
        within_scope(&who, &id, g)?;
    }
    state
        .audit(
            &who.name,
            "meter.update",
            &id,
            json!({"status": u.status, "groups": u.groups}),
        )
        .await?;
    if let Some(s) = u.status {
        state
            .registry
            .set_status(&m.id, s)
            .await
            .map_err(registry_error)?;
    }
    if let Some(g) = u.groups {
        state
            .registry
            .set_groups(&m.id, g)
            .await
            .map_err(registry_error)?;
    }
    let m = visible_meter(&state, &who, &id)?;
    Ok(Json(full(&state, &m).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/meters/{id}",
    operation_id = "delete_meters_id",
    tag = "meters",
    summary = "Decommission a meter (admin)",
    params(("id" = String, Path, description = "meter id")),
    responses((status = 200, description = "the meter", body = Meter), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn decommission(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Meter>, ApiError> {
    who.require(Permission::Admin)?;
    let m = visible_meter(&state, &who, &id)?;
    state
        .audit(&who.name, "meter.decommission", &id, json!({}))
        .await?;
    state
        .registry
        .set_status(&m.id, MeterStatus::Decommissioned)
        .await
        .map_err(registry_error)?;
    let m = visible_meter(&state, &who, &id)?;
    Ok(Json(full(&state, &m).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Groups given to every imported meter: `key=value,key=value`.
    groups: Option<String>,
    /// Replace meters that exist (else an existing id refuses the whole import).
    replace: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Imported {
    imported: usize,
}

#[utoipa::path(
    post,
    path = "/api/v1/meters/import",
    operation_id = "post_meters_import",
    tag = "meters",
    summary = "Import an inventory CSV (admin)",
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "an inventory CSV (docs/api.md)"),
    responses((status = 200, description = "meters imported", body = Imported), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 413, response = crate::openapi::P413)),
)]
pub async fn import(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<ImportQuery>,
    ApiText(body): ApiText,
) -> Result<Json<Imported>, ApiError> {
    who.require(Permission::Admin)?;
    let mut groups = BTreeMap::new();
    for g in q
        .groups
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|g| !g.is_empty())
    {
        let (k, v) = parse_group(g)
            .ok_or_else(|| ApiError::BadRequest("groups: expected key=value,...".into()))?;
        groups.insert(k, v);
    }
    check_groups(&groups)?;
    let mut entries = inventory::from_csv(&body).map_err(ApiError::bad)?;
    for e in &mut entries {
        e.groups.extend(groups.clone());
        within_scope(&who, &e.id, &e.groups)?;
        // Replacing a meter of another group would move it (and its keys) into this one.
        if let Some(old) = state.registry.get(&MeterId(e.id.clone())) {
            if !who.sees_groups(&old.groups) {
                return Err(ApiError::Forbidden(format!(
                    "meter {}: it exists outside your groups",
                    e.id
                )));
            }
        }
    }
    state
        .audit(
            &who.name,
            "meter.import",
            "meters",
            json!({"meters": entries.len(), "groups": groups}),
        )
        .await?;
    let n = state
        .registry
        .import(&entries, q.replace.unwrap_or(false))
        .await
        .map_err(registry_error)?;
    Ok(Json(Imported { imported: n }))
}
