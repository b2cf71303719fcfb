//! Groups, schedules, users, API tokens and the audit log.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hes_model::schedule::{Cron, Schedule, When};
use hes_model::JobKind;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::accounts::{ApiToken, AuditEntry, AuditFilter, Role, StoredSchedule, User, UserUpdate};
use crate::auth::{
    hash_password, parse_group, random_secret, secret_hash, unix_now, Permission, Principal, SCOPES,
};
use crate::error::ApiError;
use crate::extract::{opt_time, rfc3339, role_param, ApiJson, ApiPath, ApiQuery, List, Page};
use crate::AppState;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Group)]
pub struct GroupJson {
    key: String,
    value: String,
    meters: usize,
}

#[utoipa::path(
    get,
    path = "/api/v1/groups",
    operation_id = "get_groups",
    tag = "admin",
    summary = "Meter groups and their sizes",
    params(Page),
    responses((status = 200, description = "a page of groups", body = List<GroupJson>), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403)),
)]
pub async fn groups(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<List<GroupJson>>, ApiError> {
    who.require(Permission::Read)?;
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for m in state.registry.all() {
        if !who.sees_groups(&m.groups) {
            continue;
        }
        for (k, v) in &m.groups {
            *counts.entry((k.clone(), v.clone())).or_default() += 1;
        }
    }
    let all = counts
        .into_iter()
        .map(|((key, value), meters)| GroupJson { key, value, meters })
        .collect();
    Ok(Json(List::page(all, &page)))
}

/// Whether a group-scoped principal sees (and may change or run) a schedule: only one of its
/// own groups'; a schedule of every meter (no group) belongs to unscoped principals.
fn covers_schedule(who: &Principal, group: Option<&str>) -> bool {
    who.unrestricted()
        || group
            .and_then(parse_group)
            .is_some_and(|g| who.groups.contains(&g))
}

/// A schedule as the API takes it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Schedule)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    name: String,
    /// `key=value`, or none for every meter.
    #[serde(default)]
    group: Option<String>,
    /// `load_profile`, `events`, `daily`, `billing` or `instant`.
    read: String,
    /// Exactly one of `every_s` and `cron`.
    #[serde(default)]
    every_s: Option<i64>,
    #[serde(default)]
    cron: Option<String>,
    #[serde(default)]
    window_s: i64,
    #[serde(default)]
    jitter_s: i64,
    /// Seconds after a cycle's start by which its reads are due (at least the window's end;
    /// none: the window's end plus the jitter). The plan puts the meters whose last read failed
    /// and the slowest links first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deadline_s: Option<i64>,
}

impl ScheduleSpec {
    /// The schedule this describes (`None` when it does not check out).
    pub fn to_schedule(&self) -> Option<Schedule> {
        self.check().ok()?;
        let read = match self.read.as_str() {
            "load_profile" => JobKind::ReadLoadProfile { from: None },
            "events" => JobKind::ReadEvents { from: None },
            "daily" => JobKind::ReadDaily { from: None },
            "billing" => JobKind::ReadBilling { from: None },
            _ => JobKind::ReadInstant,
        };
        let when = match (&self.every_s, &self.cron) {
            (Some(e), _) => When::Every(*e),
            (None, Some(c)) => When::Cron(c.parse().ok()?),
            (None, None) => return None,
        };
        Some(Schedule {
            name: self.name.clone(),
            group: match &self.group {
                Some(g) => Some(parse_group(g)?),
                None => None,
            },
            read,
            when,
            window_s: self.window_s,
            jitter_s: self.jitter_s,
            deadline_s: self.deadline_s,
        })
    }

    fn check(&self) -> Result<(), ApiError> {
        let bad = |s: &str| Err(ApiError::BadRequest(s.to_string()));
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return bad("name: 1 to 64 of A-Z a-z 0-9 - _ .");
        }
        if let Some(g) = &self.group {
            if parse_group(g).is_none() {
                return bad("group: expected key=value");
            }
        }
        if !["load_profile", "events", "daily", "billing", "instant"].contains(&self.read.as_str())
        {
            return bad("read: load_profile, events, daily, billing or instant");
        }
        match (&self.every_s, &self.cron) {
            (Some(e), None) if (60..=366 * 86_400).contains(e) => {}
            (None, Some(c)) => {
                c.parse::<Cron>().map_err(ApiError::bad)?;
            }
            _ => return bad("exactly one of every_s (60 s to a year) and cron"),
        }
        if !(0..=86_400).contains(&self.window_s) || !(0..=3600).contains(&self.jitter_s) {
            return bad("window_s: 0 to 86400; jitter_s: 0 to 3600");
        }
        if let Some(d) = self.deadline_s {
            if !(self.window_s..=7 * 86_400).contains(&d) {
                return bad("deadline_s: from the window's end (window_s) to 7 days");
            }
        }
        Ok(())
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/schedules",
    operation_id = "get_schedules",
    tag = "admin",
    summary = "Read schedules",
    params(Page),
    responses((status = 200, description = "a page of schedules", body = List<ScheduleSpec>), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403)),
)]
pub async fn schedules(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<List<serde_json::Value>>, ApiError> {
    who.require(Permission::Read)?;
    let all = state
        .accounts
        .schedules()
        .await?
        .into_iter()
        .filter_map(|s| serde_json::from_str::<ScheduleSpec>(&s.spec).ok())
        .filter(|s| covers_schedule(&who, s.group.as_deref()))
        .filter_map(|s| serde_json::to_value(s).ok())
        .collect();
    Ok(Json(List::page(all, &page)))
}

#[utoipa::path(
    post,
    path = "/api/v1/schedules",
    operation_id = "post_schedules",
    tag = "admin",
    summary = "Create or replace a schedule (admin)",
    request_body = ScheduleSpec,
    responses((status = 201, description = "stored", body = ScheduleSpec), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 413, response = crate::openapi::P413)),
)]
pub async fn put_schedule(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(spec): ApiJson<ScheduleSpec>,
) -> Result<(StatusCode, Json<ScheduleSpec>), ApiError> {
    who.require(Permission::Admin)?;
    spec.check()?;
    if !covers_schedule(&who, spec.group.as_deref()) {
        return Err(ApiError::Forbidden(
            "a schedule outside your groups (give one of them as its group)".into(),
        ));
    }
    let existing = state.accounts.schedules().await?;
    if let Some(old) = existing
        .iter()
        .filter(|s| s.name == spec.name)
        .find_map(|s| serde_json::from_str::<ScheduleSpec>(&s.spec).ok())
    {
        if !covers_schedule(&who, old.group.as_deref()) {
            return Err(ApiError::Forbidden(format!(
                "schedule {} exists outside your groups",
                spec.name
            )));
        }
    }
    let text = serde_json::to_string(&spec).map_err(ApiError::internal)?;
    state
        .audit(
            &who.name,
            "schedule.put",
            &spec.name,
            serde_json::to_value(&spec).unwrap_or_default(),
        )
        .await?;
    state
        .accounts
        .put_schedule(&StoredSchedule {
            name: spec.name.clone(),
            spec: text,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(spec)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/schedules/{name}",
    operation_id = "delete_schedules_name",
    tag = "admin",
    summary = "Delete a schedule (admin)",
    params(("name" = String, Path, description = "schedule name")),
    responses((status = 204, description = "deleted"), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn delete_schedule(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::Admin)?;
    if !who.unrestricted() {
        let visible = state
            .accounts
            .schedules()
            .await?
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| serde_json::from_str::<ScheduleSpec>(&s.spec).ok())
            .any(|s| covers_schedule(&who, s.group.as_deref()));
        if !visible {
            return Err(ApiError::NotFound(format!("schedule {name}")));
        }
    }
    state
        .audit(&who.name, "schedule.delete", &name, json!({}))
        .await?;
    state.accounts.delete_schedule(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What running a schedule now queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleRun {
    schedule: String,
    /// Jobs queued (a read already open for a meter is joined, not repeated).
    jobs: usize,
    /// Meters of the schedule within the caller's groups.
    meters: usize,
}

#[utoipa::path(
    post,
    path = "/api/v1/schedules/{name}/run",
    operation_id = "post_schedules_name_run",
    tag = "admin",
    summary = "Run a schedule now (operator): its read for each of its meters, on demand",
    params(("name" = String, Path, description = "schedule name")),
    responses((status = 202, description = "queued", body = ScheduleRun), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404), (status = 503, response = crate::openapi::P503)),
)]
pub async fn run_schedule(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<(StatusCode, Json<ScheduleRun>), ApiError> {
    who.require(Permission::Command)?;
    let spec = state
        .accounts
        .schedules()
        .await?
        .into_iter()
        .filter(|s| s.name == name)
        .find_map(|s| serde_json::from_str::<ScheduleSpec>(&s.spec).ok())
        .filter(|s| covers_schedule(&who, s.group.as_deref()))
        .ok_or_else(|| ApiError::NotFound(format!("schedule {name}")))?;
    let schedule = spec
        .to_schedule()
        .ok_or_else(|| ApiError::BadRequest(format!("schedule {name} does not check out")))?;
    let (k, v) = schedule.group.clone().unwrap_or_default();
    let meters: Vec<_> = state
        .registry
        .in_group(&k, &v)
        .into_iter()
        .filter(|m| who.sees_groups(&m.groups))
        .collect();
    state
        .audit(
            &who.name,
            "schedule.run",
            &name,
            json!({"meters": meters.len()}),
        )
        .await?;
    let mut jobs = std::collections::HashSet::new();
    for m in &meters {
        let id = state
            .commands
            .submit(m.id.clone(), schedule.read.clone(), &who.name)
            .await
            .map_err(ApiError::Unavailable)?;
        jobs.insert(id);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(ScheduleRun {
            schedule: name,
            jobs: jobs.len(),
            meters: meters.len(),
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserJson {
    username: String,
    role: Role,
    groups: Vec<String>,
    created_at: String,
}

fn user_json(u: User) -> UserJson {
    UserJson {
        username: u.username,
        role: u.role,
        groups: u.groups,
        created_at: rfc3339(u.created_at),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/users",
    operation_id = "get_users",
    tag = "admin",
    summary = "Users (admin)",
    params(Page),
    responses((status = 200, description = "a page of users", body = List<UserJson>), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403)),
)]
pub async fn users(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<List<UserJson>>, ApiError> {
    who.require(Permission::Admin)?;
    let all = state
        .accounts
        .users()
        .await?
        .into_iter()
        .filter(|u| who.covers(u.role, None, &u.groups))
        .map(user_json)
        .collect();
    Ok(Json(List::page(all, &page)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    password: String,
    role: String,
    #[serde(default)]
    groups: Vec<String>,
}

fn check_username(u: &str) -> Result<(), ApiError> {
    if u.is_empty()
        || u.len() > 64
        || !u
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' || c == '@')
    {
        return Err(ApiError::BadRequest(
            "username: 1 to 64 of A-Z a-z 0-9 . _ - @".into(),
        ));
    }
    Ok(())
}

use crate::auth::check_password;

fn check_groups(g: &[String]) -> Result<(), ApiError> {
    if g.len() > 64 || g.iter().any(|g| parse_group(g).is_none()) {
        return Err(ApiError::BadRequest(
            "groups: a list of key=value (at most 64)".into(),
        ));
    }
    Ok(())
}

async fn hash(state: &AppState, password: String) -> Result<String, ApiError> {
    let cost = state.config.hash_cost;
    state
        .hashing(move || hash_password(&password, cost))
        .await?
}

/// A scoped admin may hand out nothing beyond its own rights and groups.
fn beyond(who: &Principal) -> ApiError {
    ApiError::Forbidden(format!(
        "rights or groups beyond your own ({})",
        if who.unrestricted() {
            "role and scopes".to_string()
        } else {
            format!("groups {}", who.groups_text().join(","))
        }
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/users",
    operation_id = "post_users",
    tag = "admin",
    summary = "Create a user (admin)",
    request_body = NewUser,
    responses((status = 201, description = "created", body = UserJson), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 409, response = crate::openapi::P409), (status = 413, response = crate::openapi::P413)),
)]
pub async fn create_user(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(n): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserJson>), ApiError> {
    who.require(Permission::Admin)?;
    check_username(&n.username)?;
    check_password(&n.password)?;
    check_groups(&n.groups)?;
    let role = role_param(&n.role)?;
    if !who.covers(role, None, &n.groups) {
        return Err(beyond(&who));
    }
    if state.accounts.user(&n.username).await?.is_some() {
        return Err(ApiError::Conflict(format!("user {}", n.username)));
    }
    let user = User {
        username: n.username.clone(),
        password_hash: hash(&state, n.password).await?,
        role,
        groups: n.groups,
        created_at: unix_now(),
    };
    state
        .audit(
            &who.name,
            "user.create",
            &user.username,
            json!({"role": role, "groups": user.groups}),
        )
        .await?;
    state.accounts.create_user(&user).await?;
    Ok((StatusCode::CREATED, Json(user_json(user))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    password: Option<String>,
    role: Option<String>,
    groups: Option<Vec<String>>,
}

async fn other_admins(state: &AppState, username: &str) -> Result<usize, ApiError> {
    Ok(state
        .accounts
        .users()
        .await?
        .iter()
        .filter(|u| u.role == Role::Admin && u.username != username)
        .count())
}

#[utoipa::path(
    patch,
    path = "/api/v1/users/{username}",
    operation_id = "patch_users_username",
    tag = "admin",
    summary = "Change a user's password, role or groups (admin)",
    params(("username" = String, Path, description = "user name")),
    request_body = UserPatch,
    responses((status = 200, description = "the user", body = UserJson), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404), (status = 409, response = crate::openapi::P409), (status = 413, response = crate::openapi::P413)),
)]
pub async fn update_user(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(username): ApiPath<String>,
    ApiJson(p): ApiJson<UserPatch>,
) -> Result<Json<UserJson>, ApiError> {
    who.require(Permission::Admin)?;
    let existing = state
        .accounts
        .user(&username)
        .await?
        .filter(|u| who.covers(u.role, None, &u.groups))
        .ok_or_else(|| ApiError::NotFound(format!("user {username}")))?;
    let role = p.role.as_deref().map(role_param).transpose()?;
    if let Some(g) = &p.groups {
        check_groups(g)?;
    }
    // What the user would be after the change: still within the caller's rights and groups
    // (a scoped admin cannot clear its own groups, nor widen anyone's).
    if !who.covers(
        role.unwrap_or(existing.role),
        None,
        p.groups.as_deref().unwrap_or(&existing.groups),
    ) {
        return Err(beyond(&who));
    }
    if existing.role == Role::Admin
        && role.is_some_and(|r| r != Role::Admin)
        && other_admins(&state, &username).await? == 0
    {
        return Err(ApiError::Conflict(
            "the last admin keeps the admin role".into(),
        ));
    }
    let password_hash = match p.password {
        Some(pw) => {
            check_password(&pw)?;
            Some(hash(&state, pw).await?)
        }
        None => None,
    };
    state
        .audit(
            &who.name,
            "user.update",
            &username,
            json!({"role": role, "groups": p.groups, "password_changed": password_hash.is_some()}),
        )
        .await?;
    let update = UserUpdate {
        password_hash,
        role,
        groups: p.groups,
    };
    state.accounts.update_user(&username, &update).await?;
    let u = state
        .accounts
        .user(&username)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {username}")))?;
    Ok(Json(user_json(u)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/users/{username}",
    operation_id = "delete_users_username",
    tag = "admin",
    summary = "Delete a user (admin; not the last admin)",
    params(("username" = String, Path, description = "user name")),
    responses((status = 204, description = "deleted"), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404), (status = 409, response = crate::openapi::P409)),
)]
pub async fn delete_user(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(username): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::Admin)?;
    let existing = state
        .accounts
        .user(&username)
        .await?
        .filter(|u| who.covers(u.role, None, &u.groups))
        .ok_or_else(|| ApiError::NotFound(format!("user {username}")))?;
    if existing.role == Role::Admin && other_admins(&state, &username).await? == 0 {
        return Err(ApiError::Conflict(
            "the last admin cannot be deleted".into(),
        ));
    }
    state
        .audit(&who.name, "user.delete", &username, json!({}))
        .await?;
    state.accounts.delete_user(&username).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiToken)]
pub struct TokenJson {
    id: String,
    name: String,
    owner: String,
    role: Role,
    scopes: Vec<String>,
    groups: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
    revoked: bool,
    revoked_at: Option<String>,
    /// Only in the answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

fn token_json(t: ApiToken, secret: Option<String>) -> TokenJson {
    TokenJson {
        id: t.id,
        name: t.name,
        owner: t.owner,
        role: t.role,
        scopes: t.scopes,
        groups: t.groups,
        created_at: rfc3339(t.created_at),
        expires_at: t.expires_at.map(rfc3339),
        revoked: t.revoked_at.is_some(),
        revoked_at: t.revoked_at.map(rfc3339),
        token: secret,
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    operation_id = "get_tokens",
    tag = "admin",
    summary = "API tokens (admin)",
    params(Page),
    responses((status = 200, description = "a page of tokens", body = List<TokenJson>), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403)),
)]
pub async fn tokens(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<List<TokenJson>>, ApiError> {
    who.require(Permission::Admin)?;
    let all = state
        .accounts
        .tokens()
        .await?
        .into_iter()
        .filter(|t| who.covers(t.role, Some(&t.scopes), &t.groups))
        .map(|t| token_json(t, None))
        .collect();
    Ok(Json(List::page(all, &page)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
    role: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    expires_in_days: Option<u32>,
}

#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    operation_id = "post_tokens",
    tag = "admin",
    summary = "Create an API token; its secret is in this answer only (admin)",
    request_body = NewToken,
    responses((status = 201, description = "created", body = TokenJson), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 413, response = crate::openapi::P413)),
)]
pub async fn create_token(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(n): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<TokenJson>), ApiError> {
    who.require(Permission::Admin)?;
    if n.name.is_empty() || n.name.len() > 64 {
        return Err(ApiError::BadRequest("name: 1 to 64 characters".into()));
    }
    let role = role_param(&n.role)?;
    if let Some(s) = n.scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown scope {s:?} (read, command, ack, admin, webhooks)"
        )));
    }
    check_groups(&n.groups)?;
    if !who.covers(role, Some(&n.scopes), &n.groups) {
        return Err(beyond(&who));
    }
    let days = n.expires_in_days.unwrap_or(90);
    if !(1..=3650).contains(&days) {
        return Err(ApiError::BadRequest("expires_in_days: 1 to 3650".into()));
    }
    let now = unix_now();
    let id = random_secret(9);
    let secret = format!("hes_{}", random_secret(32));
    let t = ApiToken {
        id,
        name: n.name,
        owner: who.name.clone(),
        role,
        scopes: n.scopes,
        groups: n.groups,
        created_at: now,
        expires_at: Some(now + i64::from(days) * 86_400),
        revoked_at: None,
    };
    state
        .audit(
            &who.name,
            "token.create",
            &t.id,
            json!({"name": t.name, "role": role, "scopes": t.scopes, "groups": t.groups, "expires_in_days": days}),
        )
        .await?;
    state
        .accounts
        .create_token(&t, &secret_hash(&secret))
        .await?;
    Ok((StatusCode::CREATED, Json(token_json(t, Some(secret)))))
}

#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    operation_id = "delete_tokens_id",
    tag = "admin",
    summary = "Revoke an API token (admin)",
    params(("id" = String, Path, description = "token id")),
    responses((status = 204, description = "revoked"), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::Admin)?;
    if !state
        .accounts
        .tokens()
        .await?
        .iter()
        .any(|t| t.id == id && who.covers(t.role, Some(&t.scopes), &t.groups))
    {
        return Err(ApiError::NotFound(format!("token {id}")));
    }
    state
        .audit(&who.name, "token.revoke", &id, json!({}))
        .await?;
    state.accounts.revoke_token(&id, unix_now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    /// RFC 3339 or Unix seconds
    from: Option<String>,
    /// RFC 3339 or Unix seconds
    to: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

impl AuditQuery {
    fn page(&self) -> Page {
        Page {
            limit: self.limit,
            offset: self.offset,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub struct AuditJson {
    time: String,
    actor: String,
    action: String,
    target: String,
    #[schema(value_type = Object)]
    detail: serde_json::Value,
}

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "get_audit",
    tag = "admin",
    summary = "The audit log, newest first (admin)",
    params(AuditQuery),
    responses((status = 200, description = "a page of audit entries", body = List<AuditJson>), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403)),
)]
pub async fn audit(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<List<AuditJson>>, ApiError> {
    who.require(Permission::Admin)?;
    // The log records acts on every group's meters and users.
    if !who.unrestricted() {
        return Err(ApiError::Forbidden(
            "the audit log is for admins without group scope".into(),
        ));
    }
    let page = q.page();
    let f = AuditFilter {
        actor: q.actor.filter(|s| !s.is_empty()),
        action: q.action.filter(|s| !s.is_empty()),
        from: opt_time("from", &q.from)?,
        to: opt_time("to", &q.to)?,
        limit: page.limit(),
        offset: page.offset(),
    };
    let (rows, total) = state.accounts.audit_list(&f).await?;
    Ok(Json(List {
        items: rows
            .into_iter()
            .map(|e: AuditEntry| AuditJson {
                time: rfc3339(e.time),
                actor: e.actor,
                action: e.action,
                target: e.target,
                detail: e.detail,
            })
            .collect(),
        total,
        limit: f.limit,
        offset: f.offset,
    }))
}
