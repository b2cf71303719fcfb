//! Jobs (list, detail, cancel) and commands, which become jobs.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hes_model::meter::MeterStatus;
use hes_model::{Job, JobKind, JobState};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::visible_meter;
use crate::auth::{Permission, Principal};
use crate::error::ApiError;
use crate::extract::{rfc3339, ApiJson, ApiPath, ApiQuery, List, Page};
use crate::AppState;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Job)]
pub struct JobJson {
    id: u64,
    meter: String,
    kind: String,
    #[schema(value_type = Object)]
    params: serde_json::Value,
    #[schema(schema_with = crate::openapi::job_state)]
    state: JobState,
    #[schema(schema_with = crate::openapi::priority)]
    priority: hes_model::Priority,
    attempts: u32,
    max_attempts: u32,
    requested_by: String,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    error: Option<String>,
}

pub fn kind_name(k: &JobKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.get("kind").and_then(|x| x.as_str()).map(str::to_string))
        .unwrap_or_default()
}

pub fn to_json(j: Job) -> JobJson {
    let mut params = serde_json::to_value(&j.kind).unwrap_or_default();
    if let Some(o) = params.as_object_mut() {
        o.remove("kind");
    }
    JobJson {
        id: j.id,
        kind: kind_name(&j.kind),
        params,
        meter: j.meter.0,
        state: j.state,
        priority: j.priority,
        attempts: j.attempts,
        max_attempts: j.max_attempts,
        requested_by: j.requested_by,
        created_at: rfc3339(j.created_at),
        started_at: j.started_at.map(rfc3339),
        finished_at: j.finished_at.map(rfc3339),
        error: j.last_error,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// a meter id (the meter's own list sets it from the path)
    meter: Option<String>,
    /// queued, running, succeeded, failed, retrying or cancelled
    #[param(value_type = Option<String>)]
    state: Option<JobState>,
    limit: Option<u32>,
    offset: Option<u32>,
}

impl JobQuery {
    fn page(&self) -> Page {
        Page {
            limit: self.limit,
            offset: self.offset,
        }
    }
}

/// Jobs from the store (every node's, scheduled ones included), within the caller's groups.
async fn list_jobs(
    state: &AppState,
    who: &Principal,
    q: &JobQuery,
) -> Result<List<JobJson>, ApiError> {
    let filter = hes_store::JobFilter {
        meter: q.meter.clone().map(hes_model::MeterId),
        state: q.state,
        meters: (!who.unrestricted()).then(|| {
            state
                .registry
                .all()
                .into_iter()
                .filter(|m| who.sees_groups(&m.groups))
                .map(|m| m.id.clone())
                .collect()
        }),
        commands: None,
    };
    let (jobs, total) = state
        .registry
        .state()
        .list_jobs(
            &filter,
            q.page().offset() as usize,
            q.page().limit() as usize,
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(List {
        items: jobs.into_iter().map(to_json).collect(),
        total,
        limit: q.page().limit(),
        offset: q.page().offset(),
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/jobs",
    operation_id = "get_jobs",
    tag = "jobs",
    summary = "Jobs in the caller's scope, newest first",
    params(JobQuery),
    responses((status = 200, description = "a page of jobs", body = List<JobJson>), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403)),
)]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<JobQuery>,
) -> Result<Json<List<JobJson>>, ApiError> {
    who.require(Permission::Read)?;
    Ok(Json(list_jobs(&state, &who, &q).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/meters/{id}/jobs",
    operation_id = "get_meters_id_jobs",
    tag = "jobs",
    summary = "A meter's jobs, newest first",
    params(("id" = String, Path, description = "meter id"), JobQuery),
    responses((status = 200, description = "a page of jobs", body = List<JobJson>), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn by_meter(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(mut q): ApiQuery<JobQuery>,
) -> Result<Json<List<JobJson>>, ApiError> {
    who.require(Permission::Read)?;
    visible_meter(&state, &who, &id)?;
    q.meter = Some(id);
    Ok(Json(list_jobs(&state, &who, &q).await?))
}

async fn visible_job(state: &AppState, who: &Principal, id: u64) -> Result<Job, ApiError> {
    let j = state
        .registry
        .state()
        .job(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound(format!("job {id}")))?;
    visible_meter(state, who, &j.meter.0).map_err(|_| ApiError::NotFound(format!("job {id}")))?;
    Ok(j)
}

#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    operation_id = "get_jobs_id",
    tag = "jobs",
    summary = "A job",
    params(("id" = u64, Path, description = "job id")),
    responses((status = 200, description = "the job", body = JobJson), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn detail(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<JobJson>, ApiError> {
    who.require(Permission::Read)?;
    Ok(Json(to_json(visible_job(&state, &who, id).await?)))
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/cancel",
    operation_id = "post_jobs_id_cancel",
    tag = "jobs",
    summary = "Cancel a queued job",
    params(("id" = u64, Path, description = "job id")),
    responses((status = 200, description = "the job", body = JobJson), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404), (status = 409, response = crate::openapi::P409)),
)]
pub async fn cancel(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<JobJson>, ApiError> {
    who.require(Permission::Command)?;
    let j = visible_job(&state, &who, id).await?;
    if j.state.is_final() || j.state == JobState::Running {
        return Err(ApiError::Conflict(format!(
            "job {id} is {:?} and cannot be cancelled",
            j.state
        )));
    }
    state
        .audit(
            &who.name,
            "job.cancel",
            &id.to_string(),
            json!({"meter": j.meter}),
        )
        .await?;
    // In the store: a collector claims a job before it runs it, so a cancelled job never
    // starts, whichever node queued it.
    let cancelled = state
        .registry
        .state()
        .cancel_job(id, crate::auth::unix_now())
        .await
        .map_err(ApiError::internal)?;
    if !cancelled {
        return Err(ApiError::Conflict(format!("job {id} started meanwhile")));
    }
    Ok(Json(to_json(visible_job(&state, &who, id).await?)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandName {
    Read,
    ReadProfile,
    ReadEvents,
    Disconnect,
    Reconnect,
    ClockSync,
    FirmwareUpgrade,
    KeyRotation,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Command)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    command: CommandName,
    #[serde(default)]
    #[schema(value_type = Object)]
    params: serde_json::Map<String, serde_json::Value>,
}

impl CommandBody {
    fn kind(&self) -> Result<JobKind, ApiError> {
        let from = match self.params.get("from") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => Some(
                n.as_i64()
                    .ok_or_else(|| ApiError::BadRequest("params.from: Unix seconds".into()))?,
            ),
            Some(serde_json::Value::String(s)) => {
                Some(crate::extract::parse_time("params.from", s)?)
            }
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "params.from: Unix seconds or RFC 3339".into(),
                ))
            }
        };
        Ok(match self.command {
            CommandName::Read => JobKind::ReadInstant,
            CommandName::ReadProfile => JobKind::ReadLoadProfile { from },
            CommandName::ReadEvents => JobKind::ReadEvents { from },
            CommandName::Disconnect => JobKind::Relay { connect: false },
            CommandName::Reconnect => JobKind::Relay { connect: true },
            CommandName::ClockSync => JobKind::ClockSync,
            CommandName::FirmwareUpgrade => {
                let image = self
                    .params
                    .get("image")
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty() && s.len() <= 128)
                    .ok_or_else(|| {
                        ApiError::BadRequest(
                            "firmware_upgrade needs params.image (an image identifier)".into(),
                        )
                    })?;
                JobKind::FirmwareUpgrade {
                    image: image.to_string(),
                }
            }
            CommandName::KeyRotation => JobKind::RotateKeys,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    job_id: u64,
}

#[utoipa::path(
    post,
    path = "/api/v1/meters/{id}/commands",
    operation_id = "post_meters_id_commands",
    tag = "jobs",
    summary = "Send a command to a meter (queued as a job)",
    params(("id" = String, Path, description = "meter id")),
    request_body = CommandBody,
    responses((status = 202, description = "queued", body = Accepted), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404), (status = 409, response = crate::openapi::P409), (status = 413, response = crate::openapi::P413)),
)]
pub async fn command(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CommandBody>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    who.require(Permission::Command)?;
    let m = visible_meter(&state, &who, &id)?;
    if m.status == MeterStatus::Decommissioned {
        return Err(ApiError::Conflict(format!("meter {id} is decommissioned")));
    }
    let kind = body.kind()?;
    state
        .audit(
            &who.name,
            &format!("command.{}", kind_name(&kind)),
            &id,
            json!({"command": body.command, "params": body.params}),
        )
        .await?;
    let job_id = state
        .commands
        .submit(m.id.clone(), kind, &who.name)
        .await
        .map_err(ApiError::Unavailable)?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { job_id })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedMany {
    job_ids: Vec<u64>,
}

/// At most this many meters per group command.
const MAX_GROUP_COMMAND: usize = 100_000;

#[utoipa::path(
    post,
    path = "/api/v1/groups/{key}/{value}/commands",
    operation_id = "post_groups_key_value_commands",
    tag = "jobs",
    summary = "Send a command to every meter of a group",
    params(("key" = String, Path, description = "group key"), ("value" = String, Path, description = "group value")),
    request_body = CommandBody,
    responses((status = 202, description = "queued", body = AcceptedMany), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404), (status = 413, response = crate::openapi::P413)),
)]
pub async fn group_command(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((key, value)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<CommandBody>,
) -> Result<(StatusCode, Json<AcceptedMany>), ApiError> {
    who.require(Permission::Command)?;
    let kind = body.kind()?;
    let meters: Vec<_> = state
        .registry
        .in_group(&key, &value)
        .into_iter()
        .filter(|m| who.sees_groups(&m.groups))
        .collect();
    if meters.is_empty() {
        return Err(ApiError::NotFound(format!("group {key}={value}")));
    }
    if meters.len() > MAX_GROUP_COMMAND {
        return Err(ApiError::BadRequest(
            "the group is too large for one command".into(),
        ));
    }
    state
        .audit(
            &who.name,
            &format!("group_command.{}", kind_name(&kind)),
            &format!("{key}={value}"),
            json!({"command": body.command, "params": body.params, "meters": meters.len()}),
        )
        .await?;
    let mut job_ids = Vec::with_capacity(meters.len());
    for m in &meters {
        job_ids.push(
            state
                .commands
                .submit(m.id.clone(), kind.clone(), &who.name)
                .await
                .map_err(ApiError::Unavailable)?,
        );
    }
    Ok((StatusCode::ACCEPTED, Json(AcceptedMany { job_ids })))
}
