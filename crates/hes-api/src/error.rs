//! Every failure the API answers, as one typed error rendered as RFC 9457 problem+json.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A failure with its HTTP status. Server-side causes are logged, never sent to the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("too many attempts")]
    TooManyRequests { retry_after_s: u64 },
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    Unavailable(String),
    /// The cause is logged; the client sees a generic text.
    #[error("internal error")]
    Internal(String),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    pub fn bad(e: impl std::fmt::Display) -> Self {
        Self::BadRequest(e.to_string())
    }
}

/// A problem+json response for `status` with `detail`.
pub fn problem(status: StatusCode, detail: String) -> Response {
    let (kind, title) = match status.as_u16() {
        400 => ("https://hes.invalid/problems/bad-request", "Bad request"),
        401 => ("https://hes.invalid/problems/unauthorized", "Unauthorized"),
        403 => ("https://hes.invalid/problems/forbidden", "Forbidden"),
        404 => ("https://hes.invalid/problems/not-found", "Not found"),
        405 => (
            "https://hes.invalid/problems/method-not-allowed",
            "Method not allowed",
        ),
        409 => ("https://hes.invalid/problems/conflict", "Conflict"),
        413 => (
            "https://hes.invalid/problems/too-large",
            "Payload too large",
        ),
        415 => (
            "https://hes.invalid/problems/unsupported-media-type",
            "Unsupported media type",
        ),
        422 => (
            "https://hes.invalid/problems/unprocessable",
            "Unprocessable content",
        ),
        429 => (
            "https://hes.invalid/problems/too-many-requests",
            "Too many requests",
        ),
        501 => (
            "https://hes.invalid/problems/not-implemented",
            "Not implemented",
        ),
        503 => (
            "https://hes.invalid/problems/unavailable",
            "Service unavailable",
        ),
        500 => (
            "https://hes.invalid/problems/internal",
            "Internal server error",
        ),
        _ => ("about:blank", "Error"),
    };
    let body = Problem {
        kind,
        title,
        status: status.as_u16(),
        detail,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        )],
        bytes,
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "request failed");
                "the server could not complete the request".to_string()
            }
            Self::Unauthorized(why) => why.clone(),
            Self::TooManyRequests { retry_after_s } => {
                format!("too many failed attempts; retry in {retry_after_s} s")
            }
            other => other.to_string(),
        };
        let mut resp = problem(status, detail);
        if let Self::TooManyRequests { retry_after_s } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hes\""),
            );
        }
        resp
    }
}

impl From<crate::accounts::AccountsError> for ApiError {
    fn from(e: crate::accounts::AccountsError) -> Self {
        match e {
            crate::accounts::AccountsError::Conflict(what) => Self::Conflict(what),
            crate::accounts::AccountsError::NotFound(what) => Self::NotFound(what),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<hes_store::StoreError> for ApiError {
    fn from(e: hes_store::StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<hes_cache::CacheError> for ApiError {
    fn from(e: hes_cache::CacheError) -> Self {
        Self::Internal(e.to_string())
    }
}
