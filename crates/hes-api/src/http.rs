//! The router and the layers every response passes: metrics, secure headers, CORS (off unless
//! origins are configured), body limit and timeout (tower-http), problem+json for unmatched
//! routes and methods.

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::problem;
use crate::routes;
use crate::AppState;

/// Longest a request may take; an inventory import of a large fleet is the slowest.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The whole application: `/api/v1/...`, `/api/openapi.json`, `/metrics`, `/healthz`,
/// `/readyz`. Anything else under `/api` is a 404 problem; other paths are left to whatever
/// the caller adds (the web UI) with `fallback_service`.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/auth/token", post(routes::auth::token))
        .route("/auth/refresh", post(routes::auth::refresh))
        .route("/auth/logout", post(routes::auth::logout))
        .route("/auth/keys/rotate", post(routes::auth::rotate_key))
        .route("/me", get(routes::auth::me))
        .route(
            "/meters",
            get(routes::meters::list).post(routes::meters::create),
        )
        .route("/meters/import", post(routes::meters::import))
        .route(
            "/meters/{id}",
            get(routes::meters::detail)
                .patch(routes::meters::update)
                .delete(routes::meters::decommission),
        )
        .route("/meters/{id}/readings", get(routes::readings::readings))
        .route("/meters/{id}/events", get(routes::events::by_meter))
        .route("/meters/{id}/jobs", get(routes::jobs::by_meter))
        .route("/meters/{id}/commands", post(routes::jobs::command))
        .route("/events", get(routes::events::list))
        .route("/incidents", get(routes::events::incidents))
        .route("/events/{id}/ack", post(routes::events::ack))
        .route("/jobs", get(routes::jobs::list))
        .route("/jobs/{id}", get(routes::jobs::detail))
        .route("/jobs/{id}/cancel", post(routes::jobs::cancel))
        .route("/groups", get(routes::admin::groups))
        .route(
            "/groups/{key}/{value}/commands",
            post(routes::jobs::group_command),
        )
        .route(
            "/schedules",
            get(routes::admin::schedules).post(routes::admin::put_schedule),
        )
        .route("/schedules/{name}", delete(routes::admin::delete_schedule))
        .route("/schedules/{name}/run", post(routes::admin::run_schedule))
        .route(
            "/users",
            get(routes::admin::users).post(routes::admin::create_user),
        )
        .route(
            "/users/{username}",
            axum::routing::patch(routes::admin::update_user).delete(routes::admin::delete_user),
        )
        .route(
            "/tokens",
            get(routes::admin::tokens).post(routes::admin::create_token),
        )
        .route("/tokens/{id}", delete(routes::admin::revoke_token))
        .route("/audit", get(routes::admin::audit))
        .route(
            "/webhooks",
            get(routes::webhooks::list).post(routes::webhooks::create),
        )
        .route(
            "/webhooks/{id}",
            get(routes::webhooks::detail).delete(routes::webhooks::delete),
        )
        .route(
            "/webhooks/{id}/deliveries",
            get(routes::webhooks::deliveries),
        )
        .route("/stats/fleet", get(routes::stats::fleet))
        .route("/stats/completeness", get(routes::stats::completeness))
        .route(
            "/analytics/groups/{key}/{value}/consumption",
            get(routes::analytics::group_consumption),
        )
        .route(
            "/analytics/groups/{key}/{value}/forecast",
            get(routes::analytics::group_forecast),
        )
        .route(
            "/analytics/meters/{id}/forecast",
            get(routes::analytics::meter_forecast),
        )
        .route("/cim", post(routes::cim::cim))
        .route("/ws", get(crate::live::ws))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    // Only the API's answers must never be cached; the UI's files keep their own policy.
    let v1 = v1.layer(SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ));
    let headers = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; base-uri 'self'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .option_layer(state.config.hsts.then(|| {
            SetResponseHeaderLayer::overriding(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            )
        }))
        .option_layer(cors(&state.config.cors_origins));
    let limits = ServiceBuilder::new()
        // The axum default (2 MiB) would apply under ours otherwise.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(state.config.max_body_bytes));
    Router::new()
        .nest("/api/v1", v1)
        .route("/api/openapi.json", get(crate::openapi::document))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api", axum::routing::any(not_found))
        .route("/api/{*rest}", axum::routing::any(not_found))
        .merge(crate::ui::routes())
        .layer(limits)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::map_response(problem_for_layer_errors))
        .layer(headers)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// CORS stays off (no header at all, not even `Vary`) unless origins are configured.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE]),
    )
}

/// The body limit and the timeout answer with a bare status (the limit when a Content-Length is
/// over it, before any handler runs); clients get problem+json from every answer of the API.
async fn problem_for_layer_errors(resp: Response) -> Response {
    let status = resp.status();
    let bare = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|c| !c.as_bytes().starts_with(b"application/problem+json"));
    match status {
        StatusCode::PAYLOAD_TOO_LARGE if bare => {
            problem(status, "the request body is too large".into())
        }
        StatusCode::SERVICE_UNAVAILABLE if bare && resp.headers().is_empty() => {
            problem(status, "the request took too long".into())
        }
        _ => resp,
    }
}

async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "no such resource".into())
}

async fn method_not_allowed() -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this resource".into(),
    )
}

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "get_healthz",
    tag = "meta",
    summary = "Liveness",
    responses((status = 200, description = "alive", content_type = "text/plain", body = String)),
    security(()),
)]
async fn healthz() -> &'static str {
    "ok\n"
}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "get_readyz",
    tag = "meta",
    summary = "Readiness: the store and the accounts database answer",
    responses((status = 200, description = "ready", content_type = "text/plain", body = String), (status = 503, response = crate::openapi::P503)),
    security(()),
)]
/// Ready when the store and the accounts database answer within two seconds.
async fn readyz(State(state): State<AppState>) -> Response {
    let probe = async {
        let m = hes_model::MeterId(String::new());
        state
            .store
            .latest_reading_time(&m, dlms::ObisCode::new(1, 0, 1, 8, 0, 255))
            .await
            .map_err(|e| e.to_string())?;
        state.accounts.ping().await.map_err(|e| e.to_string())
    };
    let roles = state
        .config
        .health
        .as_ref()
        .map(|h| h.snapshot())
        .unwrap_or_default();
    if let Some((role, why)) = roles.iter().find_map(|(r, s)| match s {
        hes_model::health::RoleState::Ok(_) => None,
        hes_model::health::RoleState::Degraded(w) | hes_model::health::RoleState::Stopped(w) => {
            Some((r, w))
        }
    }) {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("role {role}: {why}"),
        );
    }
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(())) => {
            let mut text = String::from("ready\n");
            for (role, s) in &roles {
                if let hes_model::health::RoleState::Ok(note) = s {
                    text.push_str(&format!("{role}: {note}\n"));
                }
            }
            text.into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store does not answer".into(),
            )
        }
        Err(_) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store did not answer in time".into(),
        ),
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "get_metrics",
    tag = "meta",
    summary = "Prometheus metrics",
    responses((status = 200, description = "the text exposition", content_type = "text/plain", body = String)),
    security(()),
)]
async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(state.started.elapsed()),
    )
        .into_response()
}

/// Counts every answer, by the matched route (never the raw path: bounded cardinality).
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let resp = next.run(req).await;
    state.metrics.observe(
        &route,
        method.as_str(),
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}
