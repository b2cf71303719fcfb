//! Extractors that answer problem+json when a request is malformed, the authenticated
//! principal, pagination and time parameters.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::accounts::Role;
use crate::auth::{secret_hash, unix_now, Principal};
use crate::error::ApiError;
use crate::AppState;
use utoipa::{IntoParams, ToSchema};

/// A JSON body; malformed bodies are 400/413/415 problems.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    let status = e.status().as_u16();
    let text = e.body_text();
    match status {
        413 => ApiError::PayloadTooLarge(text),
        415 => ApiError::BadRequest("expected Content-Type: application/json".into()),
        _ => ApiError::BadRequest(text),
    }
}

/// Query parameters; bad ones are 400 problems.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError::BadRequest(query_text(e))),
        }
    }
}

fn query_text(e: QueryRejection) -> String {
    e.body_text()
}

/// Path parameters; bad ones are 400 problems.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError::BadRequest(path_text(e))),
        }
    }
}

fn path_text(e: PathRejection) -> String {
    e.body_text()
}

/// Checks a bearer credential: an access JWT, or an API token (`hes_…`).
pub async fn authenticate(state: &AppState, credential: &str) -> Result<Principal, ApiError> {
    let now = unix_now();
    if credential.starts_with("hes_") {
        let t = state
            .accounts
            .token_by_hash(&secret_hash(credential))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown API token".into()))?;
        if t.revoked_at.is_some() {
            return Err(ApiError::Unauthorized("API token revoked".into()));
        }
        if t.expires_at.is_some_and(|e| e <= now) {
            return Err(ApiError::Unauthorized("API token expired".into()));
        }
        return Ok(Principal::new(
            format!("token:{}", t.name),
            t.role,
            &t.groups,
            Some(t.scopes),
        ));
    }
    let c = state.jwt.verify_fresh(credential, now).await?;
    // The user's password, role or groups changed (or it was deleted) since the token was
    // issued: the role and groups it carries are no longer the user's.
    if state.accounts.token_generation(&c.sub).await? != Some(c.gen) {
        return Err(ApiError::Unauthorized("access token revoked".into()));
    }
    Ok(Principal::new(c.sub, c.role, &c.groups, None))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::Unauthorized("an Authorization: Bearer header is required".into())
            })?;
        let text = header
            .to_str()
            .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
        let cred = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("expected a Bearer credential".into()))?;
        authenticate(state, cred).await
    }
}

/// `?limit=&offset=` (limit 50 by default, at most 1000).
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

pub const MAX_LIMIT: u32 = 1000;

impl Page {
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(50).min(MAX_LIMIT)
    }

    pub fn offset(&self) -> u32 {
        self.offset.unwrap_or(0)
    }
}

/// A list answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
}

impl<T> List<T> {
    /// A page of an already complete list.
    pub fn page(all: Vec<T>, page: &Page) -> Self {
        let total = all.len() as u64;
        let items = all
            .into_iter()
            .skip(page.offset() as usize)
            .take(page.limit() as usize)
            .collect();
        Self {
            items,
            total,
            limit: page.limit(),
            offset: page.offset(),
        }
    }
}

/// RFC 3339 or Unix seconds.
pub fn parse_time(name: &str, s: &str) -> Result<i64, ApiError> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| ApiError::BadRequest(format!("{name}: expected RFC 3339 or Unix seconds")))
}

pub fn opt_time(name: &str, s: &Option<String>) -> Result<Option<i64>, ApiError> {
    s.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| parse_time(name, s))
        .transpose()
}

/// Unix seconds as RFC 3339 UTC (`1970-01-01T00:00:00Z` style), or the number when out of range.
pub fn rfc3339(t: i64) -> String {
    Stamp(t).to_string()
}

/// Unix seconds written as RFC 3339 UTC without allocating: a readings answer holds one per
/// row, so the general formatter (and a `String` per row) showed in its profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(pub i64);

impl Stamp {
    /// `YYYY-MM-DDTHH:MM:SSZ` for the years 0000 to 9999.
    fn ascii(self) -> Option<[u8; 20]> {
        let (y, m, d) = dlms::axdr::civil_from_days(self.0.div_euclid(86_400));
        let sod = self.0.rem_euclid(86_400);
        let y = u16::try_from(y).ok().filter(|y| *y <= 9999)?;
        let two = |v: i64| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
        let [y0, y1] = two(i64::from(y / 100));
        let [y2, y3] = two(i64::from(y % 100));
        let [m0, m1] = two(i64::from(m));
        let [d0, d1] = two(i64::from(d));
        let [h0, h1] = two(sod / 3600);
        let [i0, i1] = two(sod / 60 % 60);
        let [s0, s1] = two(sod % 60);
        Some([
            y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, b'T', h0, h1, b':', i0, i1, b':', s0, s1,
            b'Z',
        ])
    }
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ascii() {
            Some(b) => f.write_str(std::str::from_utf8(&b).map_err(|_| std::fmt::Error)?),
            None => f.write_str(
                &time::OffsetDateTime::from_unix_timestamp(self.0)
                    .ok()
                    .and_then(|d| {
                        d.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_else(|| self.0.to_string()),
            ),
        }
    }
}

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.ascii() {
            Some(b) => s.serialize_str(std::str::from_utf8(&b).map_err(serde::ser::Error::custom)?),
            None => s.collect_str(self),
        }
    }
}

pub fn role_param(s: &str) -> Result<Role, ApiError> {
    Role::parse(s).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "unknown role {s:?} (admin, operator, viewer, integrator)"
        ))
    })
}

/// A UTF-8 text body (CSV); too large is 413, not UTF-8 is 400, both as problems.
#[derive(Debug)]
pub struct ApiText(pub String);

impl<S: Send + Sync> FromRequest<S> for ApiText {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match String::from_request(req, state).await {
            Ok(s) => Ok(Self(s)),
            Err(e) if e.status().as_u16() == 413 => Err(ApiError::PayloadTooLarge(e.body_text())),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn stamps_match_the_general_formatter() {
        let general = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let mut t = -62_167_219_200; // 0000-01-01
        while t < 253_402_300_800 {
            assert_eq!(rfc3339(t), general(t), "{t}");
            assert_eq!(
                serde_json::to_string(&Stamp(t)).unwrap(),
                format!("\"{}\"", general(t))
            );
            t += 86_400 * 97 + 3_607;
        }
        for t in [0, 59, 86_399, 951_782_400, 1_700_000_000, 253_402_300_799] {
            assert_eq!(rfc3339(t), general(t), "{t}");
        }
        // Out of the four-digit years: the number, as before.
        assert_eq!(rfc3339(i64::MAX), i64::MAX.to_string());
        assert_eq!(rfc3339(253_402_300_800), "253402300800");
    }
}
