//! Login, refresh and who-am-I.

use axum::extract::{ConnectInfo, State};
use axum::Extension;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::accounts::{RefreshUse, User};
use crate::auth::{random_secret, secret_hash, unix_now, verify_password, Claims, Principal};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::AppState;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Tokens {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
    token_type: &'static str,
}

/// A hash (at the configured cost) of a password nobody has, so that an unknown user costs as
/// much time as a wrong password.
async fn dummy_hash(state: &AppState) -> Result<String, ApiError> {
    let cost = state.config.hash_cost;
    state
        .dummy_hash
        .get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || {
                crate::auth::hash_password(&random_secret(16), cost)
            })
            .await
            .map_err(ApiError::internal)?
        })
        .await
        .cloned()
}

async fn issue(state: &AppState, user: &User) -> Result<Tokens, ApiError> {
    let now = unix_now();
    let claims = Claims {
        sub: user.username.clone(),
        role: user.role,
        groups: user.groups.clone(),
        iat: now,
        exp: now + state.config.access_ttl_s,
    };
    let access_token = state.jwt.sign(&claims)?;
    let refresh_token = random_secret(32);
    state
        .accounts
        .put_refresh(
            &secret_hash(&refresh_token),
            &user.username,
            now + state.config.refresh_ttl_s,
        )
        .await?;
    Ok(Tokens {
        access_token,
        refresh_token,
        expires_in: state.config.access_ttl_s,
        token_type: "Bearer",
    })
}

fn client_ip(conn: Option<Extension<ConnectInfo<crate::serve::ClientAddr>>>) -> String {
    conn.map_or_else(
        || "unknown".into(),
        |Extension(ConnectInfo(a))| a.0.ip().to_string(),
    )
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/token",
    operation_id = "post_auth_token",
    tag = "auth",
    summary = "Log in: an access JWT and a refresh token",
    request_body = Login,
    responses((status = 200, description = "tokens", body = Tokens), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 429, response = crate::openapi::P429)),
    security(()),
)]
pub async fn token(
    State(state): State<AppState>,
    conn: Option<Extension<ConnectInfo<crate::serve::ClientAddr>>>,
    ApiJson(login): ApiJson<Login>,
) -> Result<Json<Tokens>, ApiError> {
    if login.username.len() > 256 || login.password.len() > 1024 {
        return Err(ApiError::Unauthorized(
            "invalid username or password".into(),
        ));
    }
    let ukey = format!("u:{}", login.username);
    let ikey = format!("ip:{}", client_ip(conn));
    state
        .limiter
        .check(&[&ukey, &ikey])
        .map_err(|retry_after_s| ApiError::TooManyRequests { retry_after_s })?;
    let user = state.accounts.user(&login.username).await?;
    let hash = match &user {
        Some(u) => u.password_hash.clone(),
        None => dummy_hash(&state).await?,
    };
    let password = login.password;
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    match user {
        Some(u) if ok => {
            state.limiter.succeeded(&ukey);
            Ok(Json(issue(&state, &u).await?))
        }
        _ => {
            state.limiter.failed(&[&ukey, &ikey]);
            tracing::info!(username = %login.username, "failed login");
            Err(ApiError::Unauthorized(
                "invalid username or password".into(),
            ))
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    operation_id = "post_auth_refresh",
    tag = "auth",
    summary = "A new access token for a refresh token (which is spent)",
    request_body = Refresh,
    responses((status = 200, description = "tokens", body = Tokens), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401)),
    security(()),
)]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(r): ApiJson<Refresh>,
) -> Result<Json<Tokens>, ApiError> {
    let invalid = || ApiError::Unauthorized("invalid refresh token".into());
    if r.refresh_token.len() > 256 {
        return Err(invalid());
    }
    match state
        .accounts
        .use_refresh(&secret_hash(&r.refresh_token), unix_now())
        .await?
    {
        RefreshUse::Valid { username } => {
            let user = state.accounts.user(&username).await?.ok_or_else(invalid)?;
            Ok(Json(issue(&state, &user).await?))
        }
        RefreshUse::Reused { username } => {
            state
                .audit(
                    &username,
                    "auth.refresh_reused",
                    &username,
                    json!({"why": "a spent refresh token was presented; all of the user's refresh tokens are revoked"}),
                )
                .await?;
            Err(invalid())
        }
        RefreshUse::Invalid => Err(invalid()),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    username: String,
    role: &'static str,
    groups: Vec<String>,
    scopes: Option<Vec<String>>,
}

#[utoipa::path(
    get,
    path = "/api/v1/me",
    operation_id = "get_me",
    tag = "auth",
    summary = "Who the credential belongs to",
    responses((status = 200, description = "the principal", body = Me), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403)),
)]
pub async fn me(who: Principal) -> Json<Me> {
    Json(Me {
        groups: who.groups_text(),
        username: who.name,
        role: who.role.as_str(),
        scopes: who.scopes,
    })
}
