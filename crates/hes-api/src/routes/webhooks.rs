//! Webhook subscriptions and their delivery log (see `crate::webhooks` for the delivery).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hes_store::{DeliveryState, Webhook};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{parse_group, random_secret, unix_now, Permission, Principal};
use crate::error::ApiError;
use crate::extract::{rfc3339, ApiJson, ApiPath, ApiQuery};
use crate::webhooks::{seal_context, EVENT_KINDS};
use crate::AppState;

/// The most subscriptions a deployment keeps (each is matched against every event).
const MAX_WEBHOOKS: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// where to POST: http://host[:port]/path
    url: String,
    /// event kinds: event, job_result, day_complete
    events: Vec<String>,
    /// key=value meter groups the subscription is limited to; by default the caller's own
    /// (a caller limited to groups may only name some of them)
    #[serde(default)]
    groups: Option<Vec<String>>,
    /// failed attempts before a delivery is dead (1 to 100; default 8)
    max_attempts: Option<u32>,
    /// may deliver to loopback, private and link-local addresses (admins only; default false:
    /// such addresses are refused, at creation for an IP literal and at every attempt after
    /// resolving the name)
    #[serde(default)]
    allow_private: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookJson {
    id: String,
    url: String,
    events: Vec<String>,
    groups: Vec<String>,
    max_attempts: u32,
    created_by: String,
    created_at: String,
    allow_private: bool,
    /// the signing secret: in the creation's answer only, never again
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

fn to_json(w: Webhook, secret: Option<String>) -> WebhookJson {
    WebhookJson {
        id: w.id,
        url: w.url,
        events: w.events,
        groups: w.groups,
        max_attempts: w.max_attempts,
        created_by: w.created_by,
        created_at: rfc3339(w.created_at),
        allow_private: w.allow_private,
        secret,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    items: Vec<WebhookJson>,
}

fn check_url(url: &str, allow_private: bool) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::BadRequest(format!("url: {why}"));
    if url.len() > 2048 {
        return Err(bad("at most 2048 characters"));
    }
    let u: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if u.scheme_str() != Some("http") {
        return Err(bad(
            "http:// only (put a TLS-terminating proxy in front of an https receiver)",
        ));
    }
    let Some(host) = u.host().filter(|h| !h.is_empty()) else {
        return Err(bad("no host"));
    };
    // Whoever may list the subscription would see them.
    if u.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad("no credentials in the URL"));
    }
    // An IP literal is judged now; a name at every attempt, on what it resolves to then.
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<std::net::IpAddr>() {
        if !allow_private && !crate::webhooks::is_public(ip) {
            return Err(bad(&format!(
                "{ip} is not a public address (an admin may subscribe with allow_private)"
            )));
        }
    }
    Ok(())
}

/// Whether the principal may see (and delete) a subscription: its groups lie within theirs,
/// and one that may reach internal addresses is an admin's.
fn visible(who: &Principal, w: &Webhook) -> bool {
    let groups: Vec<(String, String)> = w.groups.iter().filter_map(|g| parse_group(g)).collect();
    groups.len() == w.groups.len()
        && who.covers_groups(&groups)
        && (!w.allow_private || who.allows(Permission::Admin))
}

async fn visible_webhook(state: &AppState, who: &Principal, id: &str) -> Result<Webhook, ApiError> {
    state
        .registry
        .state()
        .webhooks()
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .find(|w| w.id == id && visible(who, w))
        .ok_or_else(|| ApiError::NotFound(format!("webhook {id}")))
}

#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    operation_id = "post_webhooks",
    tag = "webhooks",
    summary = "Subscribe a URL to events of the caller's meters; the signing secret is in this answer only (webhooks permission)",
    request_body = NewWebhook,
    responses((status = 201, description = "created", body = WebhookJson), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 409, response = crate::openapi::P409), (status = 413, response = crate::openapi::P413)),
)]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(n): ApiJson<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookJson>), ApiError> {
    who.require(Permission::Webhooks)?;
    if n.allow_private && !who.allows(Permission::Admin) {
        return Err(ApiError::Forbidden(
            "allow_private: only an admin may let a webhook reach internal addresses".into(),
        ));
    }
    check_url(&n.url, n.allow_private)?;
    if n.events.is_empty() {
        return Err(ApiError::BadRequest("events: at least one".into()));
    }
    if let Some(e) = n.events.iter().find(|e| !EVENT_KINDS.contains(&e.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "events: unknown kind {e:?} ({})",
            EVENT_KINDS.join(", ")
        )));
    }
    let mut events = n.events.clone();
    events.sort();
    events.dedup();
    let groups = n.groups.unwrap_or_else(|| who.groups_text());
    let pairs: Vec<(String, String)> = groups.iter().filter_map(|g| parse_group(g)).collect();
    if pairs.len() != groups.len() {
        return Err(ApiError::BadRequest("groups: key=value each".into()));
    }
    // A caller limited to groups cannot subscribe to meters beyond them (nor to every meter).
    if !who.covers_groups(&pairs) {
        return Err(ApiError::Forbidden(format!(
            "{} may only subscribe to meters of its own groups ({})",
            who.name,
            who.groups_text().join(", ")
        )));
    }
    let max_attempts = n.max_attempts.unwrap_or(8);
    if !(1..=100).contains(&max_attempts) {
        return Err(ApiError::BadRequest("max_attempts: 1 to 100".into()));
    }
    let store = state.registry.state();
    if store.webhooks().await.map_err(ApiError::internal)?.len() >= MAX_WEBHOOKS {
        return Err(ApiError::Conflict(format!(
            "at most {MAX_WEBHOOKS} webhooks; delete one first"
        )));
    }
    let id = format!("wh_{}", random_secret(9));
    let secret = format!("whsec_{}", random_secret(32));
    // Sealed under the KEK, bound to the webhook's id: a copy of the database signs nothing.
    let sealed = state
        .registry
        .kek()
        .try_seal(secret.as_bytes(), &seal_context(&id))
        .map_err(|e| ApiError::Internal(format!("sealing the webhook secret: {e}")))?;
    let w = Webhook {
        id,
        url: n.url,
        events,
        groups,
        secret: sealed.as_str().to_string(),
        max_attempts,
        created_by: who.name.clone(),
        created_at: unix_now(),
        allow_private: n.allow_private,
    };
    state
        .audit(
            &who.name,
            "webhook.create",
            &w.id,
            json!({"url": w.url, "events": w.events, "groups": w.groups, "max_attempts": w.max_attempts, "allow_private": w.allow_private}),
        )
        .await?;
    store.create_webhook(&w).await.map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(to_json(w, Some(secret)))))
}

#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    operation_id = "get_webhooks",
    tag = "webhooks",
    summary = "Subscriptions within the caller's groups (webhooks permission)",
    responses((status = 200, description = "the subscriptions, oldest first", body = WebhookList), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403)),
)]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<WebhookList>, ApiError> {
    who.require(Permission::Webhooks)?;
    let items = state
        .registry
        .state()
        .webhooks()
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .filter(|w| visible(&who, w))
        .map(|w| to_json(w, None))
        .collect();
    Ok(Json(WebhookList { items }))
}

#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    operation_id = "get_webhooks_id",
    tag = "webhooks",
    summary = "A subscription (webhooks permission)",
    params(("id" = String, Path, description = "webhook id")),
    responses((status = 200, description = "the subscription", body = WebhookJson), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn detail(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookJson>, ApiError> {
    who.require(Permission::Webhooks)?;
    Ok(Json(to_json(
        visible_webhook(&state, &who, &id).await?,
        None,
    )))
}

#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    operation_id = "delete_webhooks_id",
    tag = "webhooks",
    summary = "Unsubscribe; pending deliveries are dropped (webhooks permission)",
    params(("id" = String, Path, description = "webhook id")),
    responses((status = 204, description = "deleted"), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::Webhooks)?;
    let w = visible_webhook(&state, &who, &id).await?;
    state
        .audit(&who.name, "webhook.delete", &w.id, json!({"url": w.url}))
        .await?;
    state
        .registry
        .state()
        .delete_webhook(&w.id)
        .await
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// pending, delivered or dead
    state: Option<String>,
    /// deliveries older than this id (the next page)
    before: Option<i64>,
    /// at most this many (1 to 1000; default 100)
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryJson {
    id: i64,
    event_id: String,
    kind: String,
    meter: String,
    /// pending, delivered or dead
    state: String,
    attempts: u32,
    /// when the next attempt is due (pending ones)
    next_attempt_at: Option<String>,
    last_status: Option<u16>,
    last_error: Option<String>,
    created_at: String,
    finished_at: Option<String>,
    /// the JSON body as sent
    #[schema(value_type = Object)]
    body: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    items: Vec<DeliveryJson>,
}

fn ms_text(ms: i64) -> String {
    rfc3339(ms.div_euclid(1000))
}

#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    operation_id = "get_webhooks_id_deliveries",
    tag = "webhooks",
    summary = "A subscription's delivery log, newest first (webhooks permission)",
    params(("id" = String, Path, description = "webhook id"), DeliveryQuery),
    responses((status = 200, description = "deliveries", body = DeliveryList), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 404, response = crate::openapi::P404)),
)]
pub async fn deliveries(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    who.require(Permission::Webhooks)?;
    let w = visible_webhook(&state, &who, &id).await?;
    let filter = match q.state.as_deref() {
        None => None,
        Some(s) => Some(
            DeliveryState::parse(s)
                .ok_or_else(|| ApiError::BadRequest("state: pending, delivered or dead".into()))?,
        ),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit: 1 to 1000".into()));
    }
    let items = state
        .registry
        .state()
        .deliveries(&w.id, filter, q.before, limit as usize)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|d| DeliveryJson {
            id: d.id,
            event_id: d.event_id,
            kind: d.kind,
            meter: d.meter,
            state: d.state.as_str().to_string(),
            attempts: d.attempts,
            next_attempt_at: (d.state == DeliveryState::Pending).then(|| ms_text(d.next_at)),
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: ms_text(d.created_at),
            finished_at: d.finished_at.map(ms_text),
            body: serde_json::from_str(&d.body).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    Ok(Json(DeliveryList { items }))
}
