//! The OpenAPI document matches the router: every route is documented, every documented path
//! and method is routed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request};

const ROUTER_SOURCE: &str = include_str!("../src/http.rs");

/// (method, path) of every `.route(...)` in the router's source.
fn routed() -> BTreeSet<(String, String)> {
    let (v1, outer) = ROUTER_SOURCE
        .split_once("let v1 = v1.layer(")
        .expect("the router source has its marker");
    let mut out = BTreeSet::new();
    for (part, prefix) in [(v1, "/api/v1"), (outer, "")] {
        for chunk in part.split(".route(").skip(1) {
            let path = chunk.split('"').nth(1).unwrap();
            if path == "/api" || path == "/api/{*rest}" {
                continue;
            }
            let call = chunk.split(".route(").next().unwrap();
            let call = call.split(".fallback").next().unwrap();
            for m in ["get", "post", "patch", "delete", "put"] {
                if call.contains(&format!("{m}(routes::"))
                    || call.contains(&format!("{m}(crate::"))
                    || call.contains(&format!("{m}(metrics"))
                    || call.contains(&format!("{m}(healthz"))
                    || call.contains(&format!("{m}(readyz"))
                {
                    out.insert((m.to_string(), format!("{prefix}{path}")));
                }
            }
        }
    }
    out
}

fn documented() -> BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(hes_api::OPENAPI_JSON).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for m in ops.as_object().unwrap().keys() {
            out.insert((m.clone(), path.clone()));
        }
    }
    out
}

/// The committed `src/openapi.json` is what the handlers generate; `HES_UPDATE_OPENAPI=1`
/// rewrites it (then commit it with the change that moved it).
#[test]
fn the_committed_document_is_what_the_handlers_generate() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/openapi.json");
    let generated = hes_api::openapi_document();
    if std::env::var_os("HES_UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or(0, |i| i + 1);
        panic!(
            "src/openapi.json differs from what the handlers generate (first at line {line}); \
             run HES_UPDATE_OPENAPI=1 cargo test -p hes-api --test openapi and commit it"
        );
    }
}

#[test]
fn every_route_is_documented_and_every_documented_path_routed() {
    let r = routed();
    let d = documented();
    assert!(r.len() > 30, "{r:?}");
    let undocumented: Vec<_> = r.difference(&d).collect();
    let unrouted: Vec<_> = d.difference(&r).collect();
    assert!(
        undocumented.is_empty(),
        "routed but not documented: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_answers_something_else_than_no_route() {
    let fx = common::fixture().await;
    for (method, path) in documented() {
        let uri = path
            .replace("{id}", "1")
            .replace("{key}", "cell")
            .replace("{value}", "cell-1")
            .replace("{name}", "x")
            .replace("{username}", "x");
        let req = Request::builder()
            .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let r = fx.send(req).await;
        assert_ne!(r.status.as_u16(), 405, "{method} {uri}");
        if r.status.as_u16() == 404 {
            assert!(
                !r.text().contains("no such resource"),
                "{method} {uri} is not routed"
            );
        }
    }
    let r = fx.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(r.json()["info"]["title"], "hes head-end API");
}
