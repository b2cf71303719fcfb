//! The web UI: the static files of `crates/hes-api/ui/` (hand-written HTML, CSS and ES modules,
//! no build step; the chart library uPlot vendored as its release files under `ui/vendor/`),
//! embedded in the binary and served at `/`.
//!
//! `routes()` answers `GET`/`HEAD` for `/` and every other path: a known file with its content
//! type, a strong ETag (FNV-1a of the bytes, computed at compile time) and `Cache-Control`
//! (`no-cache`: revalidate, a 304 when unchanged; icons a day); any other path outside `/api`
//! gets `index.html` (the single-page app routes by the URL's hash). Paths under `/api` are
//! never answered with the UI: a problem+json 404 (the API router's own routes win when merged).
//! Merge it into the application router: `.merge(crate::ui::routes())`.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file.
#[derive(Debug)]
struct Asset {
    path: &'static str,
    content_type: &'static str,
    cache: &'static str,
    body: &'static [u8],
    etag: u64,
}

const REVALIDATE: &str = "no-cache";
const A_DAY: &str = "public, max-age=86400";

macro_rules! asset {
    ($path:literal, $ct:expr) => {
        asset!($path, $ct, REVALIDATE)
    };
    ($path:literal, $ct:expr, $cache:expr) => {
        Asset {
            path: $path,
            content_type: $ct,
            cache: $cache,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $path)),
            etag: fnv1a(include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/ui/",
                $path
            ))),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Every file of `ui/` (a test checks that none is missing).
static ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.css", CSS),
    asset!("manifest.webmanifest", "application/manifest+json"),
    asset!("sw.js", JS),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/ws.js", JS),
    asset!("js/ui.js", JS),
    asset!("js/chart.js", JS),
    asset!("js/pages/login.js", JS),
    asset!("js/pages/dashboard.js", JS),
    asset!("js/pages/meters.js", JS),
    asset!("js/pages/meter.js", JS),
    asset!("js/pages/alarms.js", JS),
    asset!("js/pages/jobs.js", JS),
    asset!("js/pages/admin.js", JS),
    asset!("vendor/uPlot.iife.min.js", JS),
    asset!("vendor/uPlot.min.css", CSS),
    asset!("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
    asset!("icons/icon.svg", "image/svg+xml", A_DAY),
    asset!("icons/icon-192.png", "image/png", A_DAY),
    asset!("icons/icon-512.png", "image/png", A_DAY),
    asset!("icons/icon-maskable-512.png", "image/png", A_DAY),
];

/// FNV-1a, 64 bits: enough to tell versions of a file apart, and `const`.
const fn fnv1a(mut bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    while let [b, rest @ ..] = bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        bytes = rest;
    }
    h
}

/// The UI's routes, for any router state: `.merge(ui::routes())`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(serve))
        .route("/{*path}", get(serve))
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path == "api" || path.starts_with("api/") {
        return not_found();
    }
    let asset = match find(if path.is_empty() { "index.html" } else { path }) {
        Some(a) => a,
        // The app's own routes live in the hash; any other path is the app too.
        None => match find("index.html") {
            Some(a) => a,
            None => return not_found(),
        },
    };
    respond(asset, &headers)
}

fn respond(asset: &Asset, headers: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", asset.etag);
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    let common = [
        (header::ETAG, etag_value),
        (header::CACHE_CONTROL, HeaderValue::from_static(asset.cache)),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        StatusCode::OK,
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.body,
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        )],
        r#"{"type":"about:blank","title":"Not Found","status":404,"detail":"no such resource"}"#,
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn call(app: Router, path: &str, etag: Option<&str>) -> Response {
        let mut req = Request::get(path);
        if let Some(e) = etag {
            req = req.header(header::IF_NONE_MATCH, e);
        }
        app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    fn ctype(r: &Response) -> &str {
        r.headers()[header::CONTENT_TYPE].to_str().unwrap()
    }

    /// An application router like the API's: its own routes and `/api` catch-all win.
    fn app() -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/api/v1/me", get(|| async { "me" }))
            .route(
                "/api/{*rest}",
                get(|| async { (StatusCode::NOT_FOUND, "api 404") }),
            )
            .merge(routes())
    }

    #[tokio::test]
    async fn serves_index_files_and_falls_back() {
        let r = call(app(), "/", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(ctype(&r), HTML);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        for (path, ct) in [
            ("/js/app.js", JS),
            ("/app.css", CSS),
            ("/manifest.webmanifest", "application/manifest+json"),
            ("/icons/icon-192.png", "image/png"),
            ("/icons/icon.svg", "image/svg+xml"),
            ("/sw.js", JS),
        ] {
            let r = call(app(), path, None).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(ctype(&r), ct, "{path}");
        }
        // unknown paths outside /api: the app
        let r = call(app(), "/meters/m1", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(ctype(&r), HTML);
        // the API's routes win; unknown /api paths are never the UI
        let r = call(app(), "/api/v1/me", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = call(app(), "/api/v1/nope", None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = call(app(), "/healthz", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        // alone, the UI answers /api with a problem
        let r = call(routes(), "/api/x", None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(ctype(&r), "application/problem+json");
    }

    #[tokio::test]
    async fn etag_gives_304() {
        let r = call(app(), "/js/chart.js", None).await;
        let etag = r.headers()[header::ETAG].to_str().unwrap().to_owned();
        let r = call(app(), "/js/chart.js", Some(&etag)).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = call(app(), "/js/chart.js", Some(&format!("W/{etag}"))).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = call(app(), "/js/chart.js", Some("\"other\"")).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    /// Every file in ui/ is embedded, and the service worker's shell lists exactly those.
    #[test]
    fn every_file_is_embedded_and_cached_by_the_service_worker() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.push(
                        p.strip_prefix(base)
                            .unwrap()
                            .to_string_lossy()
                            .replace('\\', "/"),
                    );
                }
            }
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut files = Vec::new();
        walk(&base, &base, &mut files);
        for f in &files {
            assert!(
                find(f).is_some(),
                "ui/{f} is not embedded: add it to ASSETS in ui.rs"
            );
        }
        let sw = std::str::from_utf8(find("sw.js").unwrap().body).unwrap();
        for a in ASSETS.iter().filter(|a| a.path != "sw.js") {
            assert!(
                sw.contains(&format!("'/{}'", a.path)),
                "sw.js does not cache /{}",
                a.path
            );
        }
    }
}
