//! Login, refresh and who-am-I.

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::accounts::{RefreshUse, User};
use crate::auth::{
    random_secret, secret_hash, unix_now, verify_password, Claims, Permission, Principal,
};
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
            state
                .hashing(move || crate::auth::hash_password(&random_secret(16), cost))
                .await?
        })
        .await
        .cloned()
}

/// The user's token generation, read *before* what a login or refresh checks: a change of the
/// user after it makes the tokens issued with it worthless.
async fn generation(state: &AppState, username: &str) -> Result<Option<i64>, ApiError> {
    Ok(state.accounts.token_generation(username).await?)
}

/// Tokens for `user` at generation `gen` (read before the user and its credential were
/// checked). Should the user have changed meanwhile, nothing is issued: the change ended its
/// sessions, and this one must not outlive it.
async fn issue(state: &AppState, user: &User, gen: i64) -> Result<Tokens, ApiError> {
    let now = unix_now();
    let claims = Claims {
        sub: user.username.clone(),
        role: user.role,
        groups: user.groups.clone(),
        iat: now,
        exp: now + state.config.access_ttl_s,
        gen,
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
    // A change that committed before the refresh token was stored did not delete it.
    if generation(state, &user.username).await? != Some(gen) {
        state
            .accounts
            .revoke_refresh(&secret_hash(&refresh_token))
            .await?;
        return Err(ApiError::Unauthorized(
            "the account changed; log in again".into(),
        ));
    }
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
    let ip = client_ip(conn);
    let ukey = format!("u:{}", login.username);
    let ikey = format!("ip:{ip}");
    // Counted before the hash is computed: concurrent guesses cannot all pass the check.
    state
        .limiter
        .attempt(&[&ukey, &ikey])
        .map_err(|retry_after_s| ApiError::TooManyRequests { retry_after_s })?;
    let gen = generation(&state, &login.username).await?;
    let user = state.accounts.user(&login.username).await?;
    let hash = match &user {
        Some(u) => u.password_hash.clone(),
        None => dummy_hash(&state).await?,
    };
    let password = login.password;
    let ok = state
        .hashing(move || verify_password(&password, &hash))
        .await?;
    match (user, gen) {
        (Some(u), Some(gen)) if ok => {
            state.limiter.succeeded_attempt(&ukey, &[&ikey]);
            let tokens = issue(&state, &u, gen).await?;
            state
                .audit(
                    &u.username,
                    "auth.login",
                    &u.username,
                    json!({"client": ip}),
                )
                .await?;
            Ok(Json(tokens))
        }
        (user, _) => {
            tracing::info!(username = %login.username, "failed login");
            state
                .audit(
                    &login.username,
                    "auth.login_failed",
                    &login.username,
                    json!({"client": ip, "known_user": user.is_some()}),
                )
                .await?;
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
    let hash = secret_hash(&r.refresh_token);
    // Whose token this is, to read its generation before it is spent (see `issue`).
    let Some(owner) = state.accounts.refresh_owner(&hash).await? else {
        return Err(invalid());
    };
    let gen = generation(&state, &owner).await?;
    match state.accounts.use_refresh(&hash, unix_now()).await? {
        RefreshUse::Valid { username } => {
            let user = state.accounts.user(&username).await?.ok_or_else(invalid)?;
            let gen = gen.filter(|_| username == owner).ok_or_else(invalid)?;
            let tokens = issue(&state, &user, gen).await?;
            state
                .audit(&username, "auth.refresh", &username, json!({}))
                .await?;
            Ok(Json(tokens))
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

#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    operation_id = "post_auth_logout",
    tag = "auth",
    summary = "Log out: the refresh token stops working (the access token dies at its expiry)",
    request_body = Refresh,
    responses((status = 204, description = "logged out (also for a token that was not valid: nothing to learn from the answer)"), (status = 400, response = crate::openapi::P400)),
    security(()),
)]
pub async fn logout(
    State(state): State<AppState>,
    ApiJson(r): ApiJson<Refresh>,
) -> Result<StatusCode, ApiError> {
    if r.refresh_token.len() <= 256 {
        if let Some(username) = state
            .accounts
            .revoke_refresh(&secret_hash(&r.refresh_token))
            .await?
        {
            state
                .audit(&username, "auth.logout", &username, json!({}))
                .await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The signing key now current.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    /// Its id (the `kid` header of the tokens it signs).
    kid: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/keys/rotate",
    operation_id = "post_auth_keys_rotate",
    tag = "auth",
    summary = "A new key signs access tokens from now on (admin without group scope); tokens signed by the previous key stay valid until they expire",
    responses((status = 200, description = "rotated", body = Rotated), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403), (status = 409, response = crate::openapi::P409)),
)]
pub async fn rotate_key(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Rotated>, ApiError> {
    who.require(Permission::Admin)?;
    if !who.unrestricted() {
        return Err(ApiError::Forbidden(
            "the signing key is for admins without group scope".into(),
        ));
    }
    let kid = state.jwt.rotate(state.config.access_ttl_s).await?;
    state
        .audit(&who.name, "auth.key_rotate", &kid, json!({}))
        .await?;
    Ok(Json(Rotated { kid }))
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
