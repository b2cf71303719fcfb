//! The API in process: router plus `oneshot`, no socket.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{fixture, PASSWORD};
use dlms::ObisCode;
use hes_api::accounts::Role;
use hes_api::auth::{unix_now, Claims};
use hes_model::{Event, MeterId, Reading, Source};
use hes_store::Store;
use serde_json::json;

fn assert_problem(r: &common::Resp, status: u16) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text());
    assert_eq!(r.content_type(), "application/problem+json", "{}", r.text());
    let p = r.json();
    assert_eq!(p["status"], status);
    assert!(
        p["type"].is_string() && p["title"].is_string() && p["detail"].is_string(),
        "{p}"
    );
}

#[tokio::test]
async fn login_good_and_bad() {
    let fx = fixture().await;
    let pair = fx.login_pair("admin").await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert!(pair["refresh_token"].is_string());
    let me = fx
        .call(
            Method::GET,
            "/api/v1/me",
            pair["access_token"].as_str(),
            None,
        )
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["username"], "admin");
    assert_eq!(me.json()["role"], "admin");

    let bad = fx
        .call(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "admin", "password": "wrong"})),
        )
        .await;
    assert_problem(&bad, 401);
    let unknown = fx
        .call(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "nobody", "password": PASSWORD})),
        )
        .await;
    assert_problem(&unknown, 401);
    // No credential, a garbage one.
    assert_problem(
        &fx.call(Method::GET, "/api/v1/meters", None, None).await,
        401,
    );
    assert_problem(
        &fx.call(Method::GET, "/api/v1/meters", Some("x.y.z"), None)
            .await,
        401,
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refused() {
    let fx = fixture().await;
    let now = unix_now();
    let t = fx
        .state
        .jwt
        .sign(&Claims {
            sub: "admin".into(),
            role: Role::Admin,
            groups: vec![],
            iat: now - 1000,
            exp: now - 1,
            gen: 0,
        })
        .unwrap();
    let r = fx.call(Method::GET, "/api/v1/meters", Some(&t), None).await;
    assert_problem(&r, 401);
    assert!(r.json()["detail"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replay_revokes_them() {
    let fx = fixture().await;
    let first = fx.login_pair("op").await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let second = fx
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": r1})),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    let second = second.json();
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    let me = fx
        .call(
            Method::GET,
            "/api/v1/me",
            second["access_token"].as_str(),
            None,
        )
        .await;
    assert_eq!(me.json()["username"], "op");
    // The spent one again: refused, and the family is revoked.
    let replay = fx
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": r1})),
        )
        .await;
    assert_problem(&replay, 401);
    let after = fx
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": r2})),
        )
        .await;
    assert_problem(&after, 401);
    let garbage = fx
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": "nope"})),
        )
        .await;
    assert_problem(&garbage, 401);
}

#[tokio::test]
async fn api_tokens_are_scoped_and_revocable() {
    let fx = fixture().await;
    let admin = fx.login("admin").await;
    let created = fx
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&admin),
            Some(json!({"name": "billing", "role": "integrator", "scopes": ["read"], "expires_in_days": 30})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let created = created.json();
    let secret = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("hes_"));
    // Listed without its secret.
    let list = fx
        .call(Method::GET, "/api/v1/tokens", Some(&admin), None)
        .await;
    assert_eq!(list.json()["total"], 1);
    assert!(list.json()["items"][0].get("token").is_none());
    assert!(!list.text().contains(&secret));

    let r = fx
        .call(Method::GET, "/api/v1/meters", Some(&secret), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let cmd = fx
        .call(
            Method::POST,
            "/api/v1/meters/MTR00000001/commands",
            Some(&secret),
            Some(json!({"command": "read"})),
        )
        .await;
    assert_problem(&cmd, 403);
    let revoke = fx
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    let r = fx
        .call(Method::GET, "/api/v1/meters", Some(&secret), None)
        .await;
    assert_problem(&r, 401);
    let audit = fx
        .call(
            Method::GET,
            "/api/v1/audit?action=token.revoke",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(audit.json()["total"], 1);
}

#[tokio::test]
async fn failed_logins_are_rate_limited() {
    let fx = fixture().await;
    for _ in 0..5 {
        let r = fx
            .call(
                Method::POST,
                "/api/v1/auth/token",
                None,
                Some(json!({"username": "viewer", "password": "wrong"})),
            )
            .await;
        assert_problem(&r, 401);
    }
    // Even the right password now waits.
    let r = fx
        .call(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "viewer", "password": PASSWORD})),
        )
        .await;
    assert_problem(&r, 429);
    assert!(r.headers.get("retry-after").is_some());
}

#[tokio::test]
async fn viewers_cannot_command_operators_can_and_it_is_audited() {
    let fx = fixture().await;
    let viewer = fx.login("viewer").await;
    let op = fx.login("op").await;
    let body = json!({"command": "disconnect"});
    let r = fx
        .call(
            Method::POST,
            "/api/v1/meters/MTR00000002/commands",
            Some(&viewer),
            Some(body.clone()),
        )
        .await;
    assert_problem(&r, 403);
    let r = fx
        .call(
            Method::POST,
            "/api/v1/meters/MTR00000002/commands",
            Some(&op),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let job = r.json()["job_id"].as_u64().unwrap();
    let j = fx
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{job}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(j.status, StatusCode::OK);
    assert_eq!(j.json()["kind"], "relay");
    assert_eq!(j.json()["params"]["connect"], false);
    assert_eq!(j.json()["state"], "queued");
    let jobs = fx
        .call(
            Method::GET,
            "/api/v1/meters/MTR00000002/jobs",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(jobs.json()["total"], 1);
    // Cancel: viewer no, operator yes.
    let c = fx
        .call(
            Method::POST,
            &format!("/api/v1/jobs/{job}/cancel"),
            Some(&viewer),
            None,
        )
        .await;
    assert_problem(&c, 403);
    let c = fx
        .call(
            Method::POST,
            &format!("/api/v1/jobs/{job}/cancel"),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(c.json()["state"], "cancelled");
    let admin = fx.login("admin").await;
    let audit = fx
        .call(Method::GET, "/api/v1/audit", Some(&admin), None)
        .await;
    let actions: Vec<String> = audit.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {}", e["actor"], e["action"], e["target"]))
        .collect();
    assert!(
        actions.contains(&"\"op\" \"command.relay\" \"MTR00000002\"".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a.contains("job.cancel")),
        "{actions:?}"
    );
    // Users are admin-only.
    assert_problem(
        &fx.call(Method::GET, "/api/v1/users", Some(&op), None).await,
        403,
    );
    // A bad command.
    let r = fx
        .call(
            Method::POST,
            "/api/v1/meters/MTR00000002/commands",
            Some(&op),
            Some(json!({"command": "explode"})),
        )
        .await;
    assert_problem(&r, 400);
    let r = fx
        .call(
            Method::POST,
            "/api/v1/meters/MTR00000002/commands",
            Some(&op),
            Some(json!({"command": "firmware_upgrade"})),
        )
        .await;
    assert_problem(&r, 400);
}

#[tokio::test]
async fn a_group_scoped_user_sees_and_commands_only_its_group() {
    let fx = fixture().await;
    let t = fx.login("cell1").await;
    let list = fx.call(Method::GET, "/api/v1/meters", Some(&t), None).await;
    assert_eq!(list.json()["total"], 3);
    assert!(list.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["groups"]["cell"] == "cell-1"));
    assert_problem(
        &fx.call(Method::GET, "/api/v1/meters/MTR00000004", Some(&t), None)
            .await,
        404,
    );
    let ok = fx
        .call(Method::GET, "/api/v1/meters/MTR00000001", Some(&t), None)
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let cmd = json!({"command": "clock_sync"});
    let r = fx
        .call(
            Method::POST,
            "/api/v1/meters/MTR00000004/commands",
            Some(&t),
            Some(cmd.clone()),
        )
        .await;
    assert_problem(&r, 404);
    let r = fx
        .call(
            Method::POST,
            "/api/v1/groups/cell/cell-2/commands",
            Some(&t),
            Some(cmd.clone()),
        )
        .await;
    assert_problem(&r, 404);
    let r = fx
        .call(
            Method::POST,
            "/api/v1/groups/cell/cell-1/commands",
            Some(&t),
            Some(cmd),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json()["job_ids"].as_array().unwrap().len(), 3);
    let groups = fx.call(Method::GET, "/api/v1/groups", Some(&t), None).await;
    assert_eq!(
        groups.json()["items"],
        json!([{"key": "cell", "value": "cell-1", "meters": 3}])
    );
    let stats = fx
        .call(Method::GET, "/api/v1/stats/fleet", Some(&t), None)
        .await;
    assert_eq!(stats.json()["meters_total"], 3);
    assert_eq!(stats.json()["jobs_queued"], 3);
}

#[tokio::test]
async fn errors_are_problems_and_headers_are_secure() {
    let fx = fixture().await;
    let t = fx.login("admin").await;
    let r = fx
        .call(Method::GET, "/api/v1/nothing-here", Some(&t), None)
        .await;
    assert_problem(&r, 404);
    let r = fx.call(Method::PUT, "/api/v1/meters", Some(&t), None).await;
    assert_problem(&r, 405);
    // Malformed JSON, wrong content type, a bad query.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/token")
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_problem(&fx.send(req).await, 400);
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/token")
        .body(Body::from("username=admin"))
        .unwrap();
    assert_problem(&fx.send(req).await, 400);
    let r = fx
        .call(Method::GET, "/api/v1/meters?limit=lots", Some(&t), None)
        .await;
    assert_problem(&r, 400);
    let r = fx
        .call(
            Method::GET,
            "/api/v1/meters/MTR00000001/readings?from=yesterday",
            Some(&t),
            None,
        )
        .await;
    assert_problem(&r, 400);
    let r = fx
        .call(Method::GET, "/api/v1/jobs/notanumber", Some(&t), None)
        .await;
    assert_problem(&r, 400);
    let r = fx.call(Method::GET, "/api/v1/meters", Some(&t), None).await;
    for (h, v) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(r.headers.get(h).unwrap(), v);
    }
    assert!(r
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    // CORS is off by default.
    let req = Request::builder()
        .uri("/api/v1/meters")
        .header("origin", "https://evil.example")
        .header("authorization", format!("Bearer {t}"))
        .body(Body::empty())
        .unwrap();
    assert!(fx
        .send(req)
        .await
        .headers
        .get("access-control-allow-origin")
        .is_none());
    // A body over the limit.
    let big = "x".repeat(9 << 20);
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/meters/import")
        .header("authorization", format!("Bearer {t}"))
        .body(Body::from(big))
        .unwrap();
    assert_problem(&fx.send(req).await, 413);
}

#[tokio::test]
async fn cors_answers_configured_origins_only() {
    let fx = common::fixture_with(hes_api::ApiConfig {
        hash_cost: common::COST,
        cors_origins: vec!["https://ui.example".into()],
        ..hes_api::ApiConfig::default()
    })
    .await;
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/v1/meters")
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header("access-control-request-headers", "authorization")
            .body(Body::empty())
            .unwrap()
    };
    let r = fx.send(preflight("https://ui.example")).await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(
        r.headers.get("access-control-allow-origin").unwrap(),
        "https://ui.example"
    );
    let methods = r.headers.get("access-control-allow-methods").unwrap();
    assert!(methods.to_str().unwrap().contains("PATCH"), "{methods:?}");
    assert_eq!(r.headers.get("x-content-type-options").unwrap(), "nosniff");
    let r = fx.send(preflight("https://evil.example")).await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
    let t = fx.login("admin").await;
    let req = Request::builder()
        .uri("/api/v1/meters")
        .header("origin", "https://ui.example")
        .header("authorization", format!("Bearer {t}"))
        .body(Body::empty())
        .unwrap();
    let r = fx.send(req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers.get("access-control-allow-origin").unwrap(),
        "https://ui.example"
    );
    // A body announced over the limit is refused before any handler, still as a problem.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/meters/import")
        .header("authorization", format!("Bearer {t}"))
        .header("content-length", (9u64 << 20).to_string())
        .body(Body::from("x".repeat(9 << 20)))
        .unwrap();
    assert_problem(&fx.send(req).await, 413);
}

#[tokio::test]
async fn lists_paginate() {
    let fx = fixture().await;
    let t = fx.login("viewer").await;
    let r = fx
        .call(
            Method::GET,
            "/api/v1/meters?limit=2&offset=1",
            Some(&t),
            None,
        )
        .await
        .json();
    assert_eq!(r["total"], 6);
    assert_eq!(r["limit"], 2);
    assert_eq!(r["offset"], 1);
    let ids: Vec<&str> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["MTR00000002", "MTR00000003"]);
    let r = fx
        .call(Method::GET, "/api/v1/meters?limit=5000", Some(&t), None)
        .await
        .json();
    assert_eq!(r["limit"], 1000);
    let r = fx
        .call(
            Method::GET,
            "/api/v1/meters?group=cell=cell-2&q=0005",
            Some(&t),
            None,
        )
        .await
        .json();
    assert_eq!(r["total"], 1);
    assert_eq!(r["items"][0]["id"], "MTR00000005");
    let r = fx
        .call(Method::GET, "/api/v1/meters?online=false", Some(&t), None)
        .await
        .json();
    assert_eq!(r["total"], 6);
}

fn reading(meter: &str, time: i64, value: i64) -> Reading {
    Reading {
        meter: MeterId::from(meter),
        obis: ObisCode::new(1, 0, 1, 8, 0, 255),
        class_id: 3,
        attribute: 2,
        time,
        value,
        scaler: 0,
        unit: 30,
        status: 0,
        source: Source::Scheduled,
        received_at: time + 5,
    }
}

#[tokio::test]
async fn readings_as_json_csv_and_hourly_totals() {
    let fx = fixture().await;
    // 2026-11-01T00:00:00Z, five 15-minute entries: four intervals of 100 Wh.
    let t0 = 1_793_491_200;
    let rs: Vec<Reading> = (0..5)
        .map(|i| reading("MTR00000001", t0 + i * 900, 1000 + i * 100))
        .collect();
    fx.store.insert_readings(&rs).await.unwrap();
    let t = fx.login("viewer").await;
    let base =
        "/api/v1/meters/MTR00000001/readings?from=2026-11-01T00:00:00Z&to=2026-11-01T01:00:00Z";
    let j = fx.call(Method::GET, base, Some(&t), None).await;
    assert_eq!(j.status, StatusCode::OK, "{}", j.text());
    let j = j.json();
    assert_eq!(j["total"], 5);
    assert_eq!(j["items"][0]["time"], "2026-11-01T00:00:00Z");
    assert_eq!(j["items"][0]["channel"], "energy.active.import");
    assert_eq!(j["items"][0]["unit"], "Wh");
    assert_eq!(j["items"][4]["value"], 1400.0);
    let c = fx
        .call(Method::GET, &format!("{base}&format=csv"), Some(&t), None)
        .await;
    assert_eq!(c.status, StatusCode::OK);
    assert!(c.content_type().starts_with("text/csv"));
    let text = c.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(lines[0], "time,channel,obis,value,unit,quality,flags");
    assert_eq!(
        lines[1],
        "2026-11-01T00:00:00Z,energy.active.import,1.0.1.8.0.255,1000,Wh,0,"
    );
    let h = fx
        .call(
            Method::GET,
            &format!("{base}&resolution=hour"),
            Some(&t),
            None,
        )
        .await
        .json();
    assert_eq!(h["items"][0]["period_start"], "2026-11-01T00:00:00Z");
    assert_eq!(h["items"][0]["total"], 400.0);
    assert_eq!(h["items"][0]["count"], 4);
    assert_eq!(h["items"][0]["complete"], true);
    // By channel name and by OBIS code; an unknown meter.
    let n = fx
        .call(
            Method::GET,
            &format!("{base}&channel=energy.active.import&limit=2"),
            Some(&t),
            None,
        )
        .await
        .json();
    assert_eq!(n["items"].as_array().unwrap().len(), 2);
    let n = fx
        .call(
            Method::GET,
            &format!("{base}&channel=1.0.2.8.0.255"),
            Some(&t),
            None,
        )
        .await
        .json();
    assert_eq!(n["total"], 0);
    let r = fx
        .call(Method::GET, "/api/v1/meters/NOPE/readings", Some(&t), None)
        .await;
    assert_problem(&r, 404);
    // Flags stored by the pipeline show; stored aggregates are used when there are some.
    let mut spike = reading("MTR00000002", t0, 5);
    spike.obis = ObisCode::new(1, 0, 1, 8, 0, 255);
    fx.store
        .insert_validated(&[hes_model::ValidatedReading {
            reading: spike,
            quality: hes_model::Quality(hes_model::Quality::SPIKE),
        }])
        .await
        .unwrap();
    let f = fx
        .call(
            Method::GET,
            "/api/v1/meters/MTR00000002/readings?from=2026-11-01T00:00:00Z&to=2026-11-01T01:00:00Z",
            Some(&t),
            None,
        )
        .await
        .json();
    assert_eq!(f["items"][0]["flags"], json!(["spike"]));
    assert_eq!(f["items"][0]["quality"], 2);
    fx.store
        .insert_aggregates(&[hes_model::Aggregate {
            subject: "MTR00000002".into(),
            period: hes_model::Period::Day,
            channel: "energy.active.import".into(),
            period_start: t0,
            period_end: t0 + 86_400,
            total: 1234.5,
            count: 96,
            complete: true,
            quality_worst: hes_model::Quality::OK,
        }])
        .await
        .unwrap();
    let d = fx
        .call(
            Method::GET,
            "/api/v1/meters/MTR00000002/readings?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&resolution=day",
            Some(&t),
            None,
        )
        .await
        .json();
    assert_eq!(d["total"], 1, "{d}");
    assert_eq!(d["items"][0]["total"], 1234.5);
    assert_eq!(d["items"][0]["count"], 96);
}

#[tokio::test]
async fn events_list_filter_and_ack() {
    let fx = fixture().await;
    let ev = |meter: &str, log: ObisCode, time: i64, code: u16| Event {
        meter: MeterId::from(meter),
        log,
        time,
        code,
        source: Source::Scheduled,
        received_at: time,
    };
    let standard = ObisCode::new(0, 0, 99, 98, 0, 255);
    let fraud = ObisCode::new(0, 0, 99, 98, 1, 255);
    fx.store
        .insert_events(&[
            ev("MTR00000001", standard, 1_793_491_200, 1),
            ev("MTR00000001", fraud, 1_793_491_300, 40),
            ev("MTR00000004", fraud, 1_793_491_400, 44),
        ])
        .await
        .unwrap();
    let viewer = fx.login("viewer").await;
    let all = fx
        .call(Method::GET, "/api/v1/events", Some(&viewer), None)
        .await
        .json();
    assert_eq!(all["total"], 3);
    assert_eq!(all["items"][0]["meter"], "MTR00000004");
    let alarms = fx
        .call(
            Method::GET,
            "/api/v1/events?severity=alarm&acknowledged=false",
            Some(&viewer),
            None,
        )
        .await
        .json();
    assert_eq!(alarms["total"], 2);
    assert_eq!(alarms["items"][1]["description"], "Terminal cover removed");
    let id = alarms["items"][1]["id"].as_str().unwrap().to_string();
    let url = format!("/api/v1/events/{}/ack", id.replace('~', "%7E"));
    assert_problem(&fx.call(Method::POST, &url, Some(&viewer), None).await, 403);
    let op = fx.login("op").await;
    let acked = fx.call(Method::POST, &url, Some(&op), None).await;
    assert_eq!(acked.status, StatusCode::OK, "{}", acked.text());
    assert_eq!(acked.json()["acknowledged"], true);
    assert_eq!(acked.json()["acknowledged_by"], "op");
    let open = fx
        .call(
            Method::GET,
            "/api/v1/events?severity=alarm&acknowledged=false",
            Some(&viewer),
            None,
        )
        .await
        .json();
    assert_eq!(open["total"], 1);
    let stats = fx
        .call(Method::GET, "/api/v1/stats/fleet", Some(&viewer), None)
        .await
        .json();
    assert_eq!(stats["alarms_open"], 1);
    // The scoped user sees its cell's events only; another cell's event is not found.
    let c1 = fx.login("cell1").await;
    let mine = fx
        .call(Method::GET, "/api/v1/events", Some(&c1), None)
        .await
        .json();
    assert_eq!(mine["total"], 2);
    let other = all["items"][0]["id"].as_str().unwrap();
    let r = fx
        .call(
            Method::POST,
            &format!("/api/v1/events/{other}/ack"),
            Some(&c1),
            None,
        )
        .await;
    assert_problem(&r, 404);
    let by_meter = fx
        .call(
            Method::GET,
            "/api/v1/meters/MTR00000001/events",
            Some(&viewer),
            None,
        )
        .await
        .json();
    assert_eq!(by_meter["total"], 2);
}

/// A tamper read from the fraud log and pushed as an alarm, then the cover closed: one alarm
/// incident with its duration; the closing is information, not an alarm to acknowledge.
#[tokio::test]
async fn a_tamper_is_one_incident_and_its_end_no_alarm() {
    let fx = fixture().await;
    let ev = |meter: &str, log: ObisCode, time: i64, code: u16| Event {
        meter: MeterId::from(meter),
        log,
        time,
        code,
        source: Source::Push,
        received_at: time,
    };
    let standard = ObisCode::new(0, 0, 99, 98, 0, 255);
    let fraud = ObisCode::new(0, 0, 99, 98, 1, 255);
    let push = ObisCode::new(0, 0, 25, 9, 1, 255);
    let t = 1_793_491_200;
    fx.store
        .insert_events(&[
            ev("MTR00000001", push, t, 40),
            ev("MTR00000001", fraud, t, 40),
            ev("MTR00000001", push, t + 600, 41),
            ev("MTR00000001", fraud, t + 600, 41),
            ev("MTR00000001", standard, t + 1_000, 1),
            ev("MTR00000004", fraud, t + 50, 42),
        ])
        .await
        .unwrap();
    let viewer = fx.login("viewer").await;
    let alarms = fx
        .call(
            Method::GET,
            "/api/v1/events?severity=alarm",
            Some(&viewer),
            None,
        )
        .await
        .json();
    assert_eq!(
        alarms["total"], 3,
        "the two copies of 40 and the 42: {alarms}"
    );
    let info = fx
        .call(
            Method::GET,
            "/api/v1/events?severity=info",
            Some(&viewer),
            None,
        )
        .await
        .json();
    assert_eq!(info["total"], 2, "the cover closed twice: {info}");
    let i = fx
        .call(Method::GET, "/api/v1/incidents", Some(&viewer), None)
        .await
        .json();
    assert_eq!(i["total"], 3, "{i}");
    let tamper = i["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == 40)
        .unwrap();
    assert_eq!(tamper["events"], 4);
    assert_eq!(tamper["duration_s"], 600);
    assert_eq!(tamper["open"], false);
    assert_eq!(tamper["severity"], "alarm");
    let open = fx
        .call(
            Method::GET,
            "/api/v1/incidents?open=true&severity=alarm",
            Some(&viewer),
            None,
        )
        .await
        .json();
    assert_eq!(open["total"], 1, "the magnetic field, never ended: {open}");
    assert_eq!(open["items"][0]["meter"], "MTR00000004");
    // A scoped user sees its cell's incidents only.
    let c1 = fx.login("cell1").await;
    let mine = fx
        .call(Method::GET, "/api/v1/incidents", Some(&c1), None)
        .await
        .json();
    assert!(
        mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["meter"] == "MTR00000001"),
        "{mine}"
    );
}

#[tokio::test]
async fn users_admin_and_the_last_admin_stays() {
    let fx = fixture().await;
    let admin = fx.login("admin").await;
    let r = fx
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "eve", "password": "long enough pw", "role": "viewer", "groups": ["cell=cell-2"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(!r.text().contains("password"));
    let dup = fx
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "eve", "password": "long enough pw", "role": "viewer"})),
        )
        .await;
    assert_problem(&dup, 409);
    let short = fx
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "joe", "password": "short", "role": "viewer"})),
        )
        .await;
    assert_problem(&short, 400);
    let p = fx
        .call(
            Method::PATCH,
            "/api/v1/users/eve",
            Some(&admin),
            Some(json!({"role": "operator"})),
        )
        .await;
    assert_eq!(p.json()["role"], "operator");
    let demote = fx
        .call(
            Method::PATCH,
            "/api/v1/users/admin",
            Some(&admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_problem(&demote, 409);
    assert_problem(
        &fx.call(Method::DELETE, "/api/v1/users/admin", Some(&admin), None)
            .await,
        409,
    );
    let d = fx
        .call(Method::DELETE, "/api/v1/users/eve", Some(&admin), None)
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_problem(
        &fx.call(Method::DELETE, "/api/v1/users/eve", Some(&admin), None)
            .await,
        404,
    );
}

#[tokio::test]
async fn meters_create_update_decommission_import() {
    let fx = fixture().await;
    let admin = fx.login("admin").await;
    let mut body = serde_json::to_value(common::entry(7)).unwrap();
    body["groups"] = json!({"cell": "cell-3"});
    let r = fx
        .call(
            Method::POST,
            "/api/v1/meters",
            Some(&admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["groups"]["cell"], "cell-3");
    assert_problem(
        &fx.call(Method::POST, "/api/v1/meters", Some(&admin), Some(body))
            .await,
        409,
    );
    let op = fx.login("op").await;
    let mut e8 = serde_json::to_value(common::entry(8)).unwrap();
    e8["groups"] = json!({});
    assert_problem(
        &fx.call(Method::POST, "/api/v1/meters", Some(&op), Some(e8))
            .await,
        403,
    );
    let p = fx
        .call(
            Method::PATCH,
            "/api/v1/meters/MTR00000007",
            Some(&admin),
            Some(json!({"status": "inactive", "groups": {"cell": "cell-9"}})),
        )
        .await;
    assert_eq!(p.json()["status"], "inactive");
    assert_eq!(p.json()["groups"]["cell"], "cell-9");
    let d = fx
        .call(
            Method::DELETE,
            "/api/v1/meters/MTR00000007",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(d.json()["status"], "decommissioned");
    let c = fx
        .call(
            Method::POST,
            "/api/v1/meters/MTR00000007/commands",
            Some(&op),
            Some(json!({"command": "read"})),
        )
        .await;
    assert_problem(&c, 409);
    let csv = hes_model::inventory::to_csv(&[common::entry(9), common::entry(10)]);
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/meters/import?groups=cell=cell-5")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "text/csv")
        .body(Body::from(csv))
        .unwrap();
    let r = fx.send(req).await;
    assert_eq!(r.json()["imported"], 2, "{}", r.text());
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/meters/import")
        .header("authorization", format!("Bearer {admin}"))
        .body(Body::from("id,serial\nx,y\n"))
        .unwrap();
    assert_problem(&fx.send(req).await, 400);
    let g = fx
        .call(
            Method::GET,
            "/api/v1/meters?group=cell=cell-5",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(g.json()["total"], 2);
}

#[tokio::test]
async fn detail_has_latest_values_and_online_state() {
    let fx = fixture().await;
    let now = unix_now();
    fx.cache
        .put_latest(&[reading("MTR00000003", now - 60, 123_456)])
        .await
        .unwrap();
    fx.cache
        .mark_seen(&MeterId::from("MTR00000003"), now - 30)
        .await
        .unwrap();
    let t = fx.login("viewer").await;
    let m = fx
        .call(Method::GET, "/api/v1/meters/MTR00000003", Some(&t), None)
        .await
        .json();
    assert_eq!(m["online"], true);
    assert_eq!(m["latest"][0]["channel"], "energy.active.import");
    assert_eq!(m["latest"][0]["value"], 123_456.0);
    let online = fx
        .call(Method::GET, "/api/v1/meters?online=true", Some(&t), None)
        .await
        .json();
    assert_eq!(online["total"], 1);
}

#[tokio::test]
async fn schedules_and_operations_endpoints() {
    let fx = fixture().await;
    let admin = fx.login("admin").await;
    let s = json!({"name": "lp-cell-1", "group": "cell=cell-1", "read": "load_profile", "cron": "*/15 * * * *", "window_s": 600, "deadline_s": 3600});
    let r = fx
        .call(Method::POST, "/api/v1/schedules", Some(&admin), Some(s))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    for bad in [
        json!({"name": "x", "read": "load_profile", "cron": "61 * * * *"}),
        // A deadline before the window's end, or beyond a week.
        json!({"name": "x", "read": "load_profile", "cron": "0 * * * *", "window_s": 600, "deadline_s": 599}),
        json!({"name": "x", "read": "load_profile", "cron": "0 * * * *", "deadline_s": 7 * 86_400 + 1}),
    ] {
        assert_problem(
            &fx.call(Method::POST, "/api/v1/schedules", Some(&admin), Some(bad))
                .await,
            400,
        );
    }
    let l = fx
        .call(Method::GET, "/api/v1/schedules", Some(&admin), None)
        .await
        .json();
    assert_eq!(l["total"], 1);
    // What the collector runs from it.
    let run = hes_api::stored_schedules(&*fx.accounts).await.unwrap();
    assert_eq!(run.len(), 1);
    assert_eq!(run[0].name, "lp-cell-1");
    assert_eq!(run[0].group, Some(("cell".into(), "cell-1".into())));
    assert_eq!(
        run[0].read,
        hes_model::JobKind::ReadLoadProfile { from: None }
    );
    assert_eq!(run[0].window_s, 600);
    assert_eq!(run[0].deadline_s, Some(3600));
    assert_eq!(run[0].deadline(1_000_000), 1_003_600);
    assert!(matches!(run[0].when, hes_model::schedule::When::Cron(_)));
    // Run now: an operator queues the schedule's read for each of its meters (cell-1 holds
    // meters 1 to 3); a viewer may not; an unknown schedule is 404.
    let op = fx.login("op").await;
    let viewer = fx.login("viewer").await;
    let path = "/api/v1/schedules/lp-cell-1/run";
    assert_problem(&fx.call(Method::POST, path, Some(&viewer), None).await, 403);
    assert_problem(
        &fx.call(Method::POST, "/api/v1/schedules/nope/run", Some(&op), None)
            .await,
        404,
    );
    let r = fx.call(Method::POST, path, Some(&op), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let r = r.json();
    assert_eq!(
        (r["meters"].clone(), r["jobs"].clone()),
        (json!(3), json!(3))
    );
    // The jobs are in the store: listed, by whom and for what.
    let jobs = fx
        .call(Method::GET, "/api/v1/jobs?limit=100", Some(&op), None)
        .await
        .json();
    let mine: Vec<&serde_json::Value> = jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["requested_by"] == "op" && j["kind"] == "read_load_profile")
        .collect();
    assert_eq!(mine.len(), 3, "{jobs}");
    let d = fx
        .call(
            Method::DELETE,
            "/api/v1/schedules/lp-cell-1",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(
        fx.call(Method::GET, "/healthz", None, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        fx.call(Method::GET, "/readyz", None, None).await.status,
        StatusCode::OK
    );
    let m = fx.call(Method::GET, "/metrics", None, None).await.text();
    assert!(
        m.contains(
            "hes_api_requests_total{route=\"/api/v1/schedules\",method=\"POST\",status=\"2xx\"} 1"
        ),
        "{m}"
    );
    assert!(
        m.contains("hes_api_request_duration_seconds_bucket{route=\"/api/v1/schedules/{name}\""),
        "{m}"
    );
    let c = fx
        .call(
            Method::GET,
            "/api/v1/stats/completeness?days=3",
            Some(&admin),
            None,
        )
        .await
        .json();
    assert_eq!(c["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn first_admin_password_from_env_or_generated_once() {
    let dir = std::env::temp_dir().join(common::unique("hes_api_first"));
    std::fs::create_dir_all(&dir).unwrap();
    let accounts = hes_api::accounts::SqliteAccounts::open(dir.join("a.db"))
        .await
        .unwrap();
    let generated = hes_api::ensure_first_admin(&accounts, None, common::COST)
        .await
        .unwrap()
        .unwrap();
    assert!(generated.len() >= 16);
    assert_eq!(
        hes_api::ensure_first_admin(&accounts, None, common::COST)
            .await
            .unwrap(),
        None
    );
    let accounts2 = hes_api::accounts::SqliteAccounts::open(dir.join("b.db"))
        .await
        .unwrap();
    assert_eq!(
        hes_api::ensure_first_admin(&accounts2, Some("from-the-env".into()), common::COST)
            .await
            .unwrap(),
        None
    );
    use hes_api::Accounts;
    let u = accounts2.user("admin").await.unwrap().unwrap();
    assert!(hes_api::auth::verify_password(
        "from-the-env",
        &u.password_hash
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
