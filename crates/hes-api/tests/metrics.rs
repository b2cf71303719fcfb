//! Metric labels stay bounded whatever clients send (issue 14): its own test binary, so that
//! no other test adds series to the process's recorder meanwhile.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request};

fn series(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("hes_api_requests_total{"))
        .map(|l| l.rsplit_once(' ').map_or(l, |(s, _)| s))
        .collect()
}

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_series() {
    let fx = common::fixture().await;
    let scrape = || async {
        let r = fx.call(Method::GET, "/metrics", None, None).await;
        assert_eq!(r.status.as_u16(), 200);
        r.text()
    };
    let before = scrape().await;
    let token = fx.login("viewer").await;
    for i in 0..300 {
        let method = Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let paths = [
            format!("/api/v1/meters/MTR{i:08}"),
            format!("/api/v1/made/up/{i}"),
            format!("/elsewhere/{i}"),
        ];
        for path in paths {
            let req = Request::builder()
                .method(method.clone())
                .uri(&path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            fx.send(req).await;
            let req = Request::builder()
                .method(Method::GET)
                .uri(&path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            fx.send(req).await;
        }
    }
    let after = scrape().await;
    let (b, a) = (series(&before), series(&after));
    assert!(
        a.len() <= b.len() + 12,
        "{} series before, {} after:\n{}",
        b.len(),
        a.len(),
        a.join("\n")
    );
    assert!(!after.contains("BREW"), "a made-up method became a label");
    assert!(!after.contains("MTR00000299"), "a raw path became a label");
    assert!(!after.contains("made/up/2"), "a raw path became a label");
}
