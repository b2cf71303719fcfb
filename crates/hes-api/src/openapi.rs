//! The OpenAPI 3.1 document, maintained by hand next to the routes (`openapi.json`); a test
//! checks that every route is documented and every documented path is routed.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

pub const OPENAPI_JSON: &str = include_str!("openapi.json");

pub async fn document() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI_JSON,
    )
        .into_response()
}
