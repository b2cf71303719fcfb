//! Authorisation holes found by trying the API as an attacker would (issue 14): each test
//! failed before its fix.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{fixture, Fx, PASSWORD};
use hes_api::accounts::{Accounts, AuditFilter, Role, User};
use hes_api::auth::{hash_password, HashCost};
use hes_model::{MeterId, Reading, Source};
use hes_store::Store;
use serde_json::{json, Value};

async fn import(fx: &Fx, token: &str, query: &str, csv: String) -> common::Resp {
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/meters/import{query}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "text/csv")
        .body(Body::from(csv))
        .unwrap();
    fx.send(req).await
}

async fn audit_actions(fx: &Fx) -> Vec<(String, String, Value)> {
    let (rows, _) = fx
        .accounts
        .audit_list(&AuditFilter {
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    rows.into_iter()
        .map(|e| (e.actor, e.action, e.detail))
        .collect()
}

fn names(audit: &[(String, String, Value)]) -> Vec<&str> {
    audit.iter().map(|a| a.1.as_str()).collect()
}

/// An admin scoped to cell-1, created by the unscoped admin.
async fn scoped_admin(fx: &Fx) -> String {
    let admin = fx.login("admin").await;
    let r = fx
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "cadmin", "password": PASSWORD, "role": "admin", "groups": ["cell=cell-1"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    fx.login("cadmin").await
}

#[tokio::test]
async fn a_scoped_admin_hands_out_nothing_beyond_its_groups() {
    let fx = fixture().await;
    let c = scoped_admin(&fx).await;
    let call = |m: Method, uri: &'static str, body: Value| {
        let fx = &fx;
        let c = c.clone();
        async move { fx.call(m, uri, Some(&c), Some(body)).await }
    };
    // Its own groups: neither cleared nor changed to others.
    for groups in [
        json!([]),
        json!(["cell=cell-2"]),
        json!(["cell=cell-1", "cell=cell-2"]),
    ] {
        let r = call(
            Method::PATCH,
            "/api/v1/users/cadmin",
            json!({ "groups": groups }),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{groups}: {}", r.text());
    }
    // Users: only within its groups.
    for groups in [json!([]), json!(["cell=cell-2"]), json!(["junk"])] {
        let r = call(
            Method::POST,
            "/api/v1/users",
            json!({"username": "x", "password": PASSWORD, "role": "viewer", "groups": groups}),
        )
        .await;
        assert!(
            r.status == StatusCode::FORBIDDEN || r.status == StatusCode::BAD_REQUEST,
            "{groups}: {} {}",
            r.status,
            r.text()
        );
    }
    let r = call(
        Method::POST,
        "/api/v1/users",
        json!({"username": "x", "password": PASSWORD, "role": "viewer", "groups": ["cell=cell-1"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // The unscoped admin and the other users are out of its reach (and out of its list).
    let r = call(
        Method::PATCH,
        "/api/v1/users/admin",
        json!({"password": "taken-over-now"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = fx
        .call(Method::DELETE, "/api/v1/users/op", Some(&c), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let users = fx.call(Method::GET, "/api/v1/users", Some(&c), None).await;
    let names: Vec<String> = users.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.iter().any(|n| n == "admin"), "{names:?}");
    // Tokens: only within its groups.
    let r = call(
        Method::POST,
        "/api/v1/tokens",
        json!({"name": "wide", "role": "admin"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = call(
        Method::POST,
        "/api/v1/tokens",
        json!({"name": "narrow", "role": "operator", "groups": ["cell=cell-1"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // A read-only token cannot mint one that commands.
    let read_only = r.json()["token"].as_str().unwrap().to_string();
    let admin = fx.login("admin").await;
    let r = fx
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&admin),
            Some(json!({"name": "ro-admin", "role": "admin", "scopes": ["read", "admin"]})),
        )
        .await;
    let ro_admin = r.json()["token"].as_str().unwrap().to_string();
    let r = fx
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&ro_admin),
            Some(json!({"name": "escalated", "role": "admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = fx
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&ro_admin),
            Some(json!({"username": "y", "password": PASSWORD, "role": "operator"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    drop(read_only);
    // The audit log is the whole fleet's.
    let r = fx.call(Method::GET, "/api/v1/audit", Some(&c), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = fx
        .call(Method::POST, "/api/v1/auth/keys/rotate", Some(&c), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}

#[tokio::test]
async fn a_scoped_admin_places_meters_only_in_its_groups() {
    let fx = fixture().await;
    let c = scoped_admin(&fx).await;
    // Create: outside its groups refused, inside accepted.
    let mut body = serde_json::to_value(common::entry(7)).unwrap();
    body["groups"] = json!({"cell": "cell-2"});
    let r = fx
        .call(Method::POST, "/api/v1/meters", Some(&c), Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    body["groups"] = json!({});
    let r = fx
        .call(Method::POST, "/api/v1/meters", Some(&c), Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    body["groups"] = json!({"cell": "cell-1"});
    let r = fx
        .call(Method::POST, "/api/v1/meters", Some(&c), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // Regrouping its own meter out of its groups.
    let r = fx
        .call(
            Method::PATCH,
            "/api/v1/meters/MTR00000007",
            Some(&c),
            Some(json!({"groups": {"cell": "cell-2"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // Import: into another group, or without groups.
    let r = import(
        &fx,
        &c,
        "?groups=cell=cell-2",
        hes_model::inventory::to_csv(&[common::entry(8)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = import(
        &fx,
        &c,
        "",
        hes_model::inventory::to_csv(&[common::entry(8)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // Replacing cell-2's meter 4 (its keys, its endpoint) by one in cell-1: refused.
    let mut hijack = common::entry(4);
    hijack.endpoint.host = "203.0.113.9".into();
    let r = import(
        &fx,
        &c,
        "?groups=cell=cell-1&replace=true",
        hes_model::inventory::to_csv(&[hijack]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let m4 = fx
        .state
        .registry
        .get(&MeterId::from("MTR00000004"))
        .unwrap();
    assert_eq!(m4.endpoint.host, "127.1.0.4");
    assert_eq!(m4.groups["cell"], "cell-2");
    // Its own meter it may replace.
    let mut own = common::entry(1);
    own.endpoint.host = "127.1.0.101".into();
    let r = import(
        &fx,
        &c,
        "?groups=cell=cell-1&replace=true",
        hes_model::inventory::to_csv(&[own]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn a_second_meter_with_a_known_system_title_is_refused() {
    let fx = fixture().await;
    let admin = fx.login("admin").await;
    // Meter 9 claiming meter 1's system title: its pushes would be taken for meter 1's.
    let mut twin = common::entry(9);
    twin.system_title = common::entry(1).system_title;
    let r = import(
        &fx,
        &admin,
        "",
        hes_model::inventory::to_csv(&[twin.clone()]),
    )
    .await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.text());
    assert!(fx
        .state
        .registry
        .get(&MeterId::from("MTR00000009"))
        .is_none());
    let mut body = serde_json::to_value(&twin).unwrap();
    body["groups"] = json!({"cell": "cell-1"});
    let r = fx
        .call(Method::POST, "/api/v1/meters", Some(&admin), Some(body))
        .await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.text());
    let title = hex_title(&common::entry(1).system_title);
    assert_eq!(
        fx.state.registry.by_system_title(&title).unwrap().id,
        MeterId::from("MTR00000001")
    );
}

fn hex_title(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn sixty_concurrent_wrong_passwords_get_at_most_the_limit_of_401s() {
    let fx = fixture().await;
    // A hash that takes a while, as a real one does: the window the attempts raced through.
    let slow = hash_password(PASSWORD, HashCost { m_kib: 8192, t: 2 }).unwrap();
    fx.accounts
        .create_user(&User {
            username: "target".into(),
            password_hash: slow,
            role: Role::Admin,
            groups: vec![],
            created_at: 0,
        })
        .await
        .unwrap();
    let tries = (0..60).map(|i| {
        fx.call(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "target", "password": format!("guess-{i}")})),
        )
    });
    let answers = futures_util::future::join_all(tries).await;
    let count = |s: u16| answers.iter().filter(|r| r.status.as_u16() == s).count();
    let (unauthorized, limited) = (count(401), count(429));
    assert!(
        unauthorized <= 5,
        "{unauthorized} answers of 401 for a limit of 5"
    );
    assert_eq!(
        unauthorized + limited,
        60,
        "other answers: {:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn concurrent_password_hashing_is_bounded() {
    let fx = common::fixture_with(hes_api::ApiConfig {
        hash_cost: common::COST,
        login_failures_per_minute: 1000,
        hash_concurrency: 1,
        hash_wait: std::time::Duration::from_millis(1),
        ..hes_api::ApiConfig::default()
    })
    .await;
    let slow = hash_password(PASSWORD, HashCost { m_kib: 16384, t: 3 }).unwrap();
    fx.accounts
        .create_user(&User {
            username: "target".into(),
            password_hash: slow,
            role: Role::Viewer,
            groups: vec![],
            created_at: 0,
        })
        .await
        .unwrap();
    let tries = (0..20).map(|i| {
        fx.call(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "target", "password": format!("guess-{i}")})),
        )
    });
    let answers = futures_util::future::join_all(tries).await;
    let count = |s: u16| answers.iter().filter(|r| r.status.as_u16() == s).count();
    assert!(count(401) >= 1);
    assert!(count(503) >= 1, "no login waited for a hashing slot");
    assert_eq!(count(401) + count(503), 20);
}

#[tokio::test]
async fn changes_to_a_user_end_its_sessions_and_logout_ends_one() {
    let fx = fixture().await;
    let admin = fx.login("admin").await;
    let me = |t: String| {
        let fx = &fx;
        async move {
            fx.call(Method::GET, "/api/v1/me", Some(&t), None)
                .await
                .status
        }
    };
    let refresh = |r: String| {
        let fx = &fx;
        async move {
            fx.call(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": r})),
            )
            .await
            .status
        }
    };
    let s = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();
    // A second admin with an API token of its own.
    let r = fx
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "boss", "password": PASSWORD, "role": "admin"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let boss = fx.login_pair("boss").await;
    let t = fx
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&s(&boss, "access_token")),
            Some(json!({"name": "boss-token", "role": "viewer"})),
        )
        .await;
    let api_token = s(&t.json(), "token");
    assert_eq!(me(api_token.clone()).await, StatusCode::OK);
    // Its password changes: access token, refresh token and API token all stop working.
    let r = fx
        .call(
            Method::PATCH,
            "/api/v1/users/boss",
            Some(&admin),
            Some(json!({"password": "a-new-password"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(me(s(&boss, "access_token")).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(s(&boss, "refresh_token")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me(api_token).await, StatusCode::UNAUTHORIZED);

    // A role change.
    let viewer = fx.login_pair("viewer").await;
    let r = fx
        .call(
            Method::PATCH,
            "/api/v1/users/viewer",
            Some(&admin),
            Some(json!({"role": "operator"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        me(s(&viewer, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(s(&viewer, "refresh_token")).await,
        StatusCode::UNAUTHORIZED
    );
    // A new login has the new role.
    let again = fx.login("viewer").await;
    let r = fx.call(Method::GET, "/api/v1/me", Some(&again), None).await;
    assert_eq!(r.json()["role"], "operator");

    // A deleted user.
    let op = fx.login_pair("op").await;
    let r = fx
        .call(Method::DELETE, "/api/v1/users/op", Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(me(s(&op, "access_token")).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(s(&op, "refresh_token")).await,
        StatusCode::UNAUTHORIZED
    );

    // Logout: the refresh token is gone; a second logout (or garbage) is answered the same.
    let pair = fx.login_pair("cell1").await;
    for _ in 0..2 {
        let r = fx
            .call(
                Method::POST,
                "/api/v1/auth/logout",
                None,
                Some(json!({"refresh_token": s(&pair, "refresh_token")})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    }
    assert_eq!(
        refresh(s(&pair, "refresh_token")).await,
        StatusCode::UNAUTHORIZED
    );
    let actions: Vec<String> = audit_actions(&fx).await.into_iter().map(|a| a.1).collect();
    assert_eq!(actions.iter().filter(|a| *a == "auth.logout").count(), 1);
}

#[tokio::test]
async fn logins_and_refreshes_are_audited_and_details_are_bounded() {
    let fx = fixture().await;
    let pair = fx.login_pair("op").await;
    let bad = fx
        .call(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "op", "password": "not-the-one"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let r = fx
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": pair["refresh_token"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // A command with a huge parameter.
    let op = pair["access_token"].as_str().unwrap();
    let junk = "x".repeat(1 << 20);
    let r = fx
        .call(
            Method::POST,
            "/api/v1/meters/MTR00000001/commands",
            Some(op),
            Some(json!({"command": "read", "params": {"junk": junk}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let audit = audit_actions(&fx).await;
    let find = |action: &str| {
        audit
            .iter()
            .find(|a| a.1 == action)
            .unwrap_or_else(|| panic!("no {action} among {:?}", names(&audit)))
    };
    assert_eq!(find("auth.login").0, "op");
    assert_eq!(find("auth.login_failed").0, "op");
    assert_eq!(find("auth.refresh").0, "op");
    let text = serde_json::to_string(&audit).unwrap();
    assert!(!text.contains("not-the-one") && !text.contains(PASSWORD));
    assert!(!text.contains(pair["refresh_token"].as_str().unwrap()));
    let cmd = audit
        .iter()
        .find(|a| a.1.starts_with("command."))
        .unwrap_or_else(|| panic!("no command among {:?}", names(&audit)));
    assert_eq!(cmd.2["truncated"], true, "{}", cmd.2.to_string().len());
    assert!(cmd.2.to_string().len() < 8192);
}

#[tokio::test]
async fn the_first_admin_password_follows_the_rules() {
    let dir = std::env::temp_dir().join(common::unique("hes_api_first_rules"));
    std::fs::create_dir_all(&dir).unwrap();
    let accounts = hes_api::accounts::SqliteAccounts::open(dir.join("a.db"))
        .await
        .unwrap();
    let e = hes_api::ensure_first_admin(&accounts, Some("short".into()), common::COST)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HES_ADMIN_PASSWORD"), "{e}");
    assert!(accounts.users().await.unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn reading(meter: &str, time: i64) -> Reading {
    Reading {
        meter: MeterId::from(meter),
        obis: dlms::ObisCode::new(1, 0, 1, 8, 0, 255),
        class_id: 3,
        attribute: 2,
        time,
        value: 1,
        scaler: 0,
        unit: 30,
        status: 0,
        source: Source::Scheduled,
        received_at: time,
    }
}

#[tokio::test]
async fn scoped_viewers_see_their_groups_statistics_and_schedules_only() {
    let fx = fixture().await;
    let admin = fx.login("admin").await;
    let now = hes_api::auth::unix_now();
    let today = now - now.rem_euclid(86_400);
    // Cell-1 (meter 1) has two readings today, cell-2 (meter 4) ten.
    let mut rs = vec![
        reading("MTR00000001", today),
        reading("MTR00000001", today + 1),
    ];
    rs.extend((0..10).map(|i| reading("MTR00000004", today + i)));
    fx.store.insert_readings(&rs).await.unwrap();
    for (name, group) in [
        ("c1", Some("cell=cell-1")),
        ("c2", Some("cell=cell-2")),
        ("all", None),
    ] {
        let r = fx
            .call(
                Method::POST,
                "/api/v1/schedules",
                Some(&admin),
                Some(json!({"name": name, "group": group, "read": "daily", "every_s": 3600})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    let c = fx.login("cell1").await;
    let r = fx
        .call(Method::GET, "/api/v1/schedules", Some(&c), None)
        .await;
    let names: Vec<String> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["c1"]);
    let r = fx
        .call(Method::POST, "/api/v1/schedules/c2/run", Some(&c), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = fx
        .call(Method::GET, "/api/v1/schedules", Some(&admin), None)
        .await;
    assert_eq!(r.json()["total"], 3);

    let f = fx
        .call(Method::GET, "/api/v1/stats/fleet", Some(&c), None)
        .await;
    assert_eq!(f.json()["readings_stored"], 2, "{}", f.text());
    assert_eq!(f.json()["meters_total"], 3);
    let f = fx
        .call(Method::GET, "/api/v1/stats/fleet", Some(&admin), None)
        .await;
    assert_eq!(f.json()["readings_stored"], 12, "{}", f.text());
    // Completeness today: 2 of cell-1's expected entries, not the fleet's 12.
    let expected = 3 * ((now - today) / 900).clamp(1, 96);
    let d = fx
        .call(
            Method::GET,
            "/api/v1/stats/completeness?days=1",
            Some(&c),
            None,
        )
        .await;
    let got = d.json()["items"][0]["completeness"].as_f64().unwrap();
    let want = (2.0 / expected as f64).min(1.0);
    assert!((got - want).abs() < 1e-9, "{got} != {want}");
}

#[tokio::test]
async fn signing_keys_are_shared_through_the_store_and_rotate() {
    use hes_api::accounts::SqliteAccounts;
    use hes_api::auth::{Claims, JwtKey};
    use std::sync::Arc;
    let fx = fixture().await;
    let db = fx.dir.join("hes.db");
    let a1: Arc<dyn Accounts> = Arc::new(SqliteAccounts::open(&db).await.unwrap());
    let a2: Arc<dyn Accounts> = Arc::new(SqliteAccounts::open(&db).await.unwrap());
    // Two nodes starting together agree on the first key.
    let (k1, k2) = tokio::join!(JwtKey::from_store(a1.clone()), JwtKey::from_store(a2));
    let (k1, k2) = (k1.unwrap(), k2.unwrap());
    let first = k1.current_kid();
    assert_eq!(first, k2.current_kid());
    let now = hes_api::auth::unix_now();
    let claims = Claims {
        sub: "admin".into(),
        role: Role::Admin,
        groups: vec![],
        iat: now,
        exp: now + 100,
        gen: 0,
    };
    let old = k1.sign(&claims).unwrap();
    assert_eq!(k2.verify(&old, now).unwrap(), claims);
    // A rotation on node 1: its new key signs; node 2 takes it when it meets such a token.
    let second = k1.rotate(900).await.unwrap();
    assert_ne!(second, first);
    let new = k1.sign(&claims).unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid.as_deref(),
        Some(second.as_str())
    );
    assert!(k2.verify(&new, now).is_err());
    assert_eq!(k2.verify_fresh(&new, now).await.unwrap(), claims);
    assert_eq!(k2.current_kid(), second);
    // Tokens of the previous key live on until they expire.
    assert!(k1.verify(&old, now).is_ok() && k2.verify(&old, now).is_ok());
    // Once every replaced key's tokens are dead (no token lives longer than `keep_s`; here
    // nothing is kept), the old keys go.
    k1.rotate(-10).await.unwrap();
    assert!(k1.verify(&old, now).is_err());
    assert!(k1.verify(&new, now).is_err());
    // A key that is not in the store: refused, even after reading the keys again.
    let stranger = JwtKey::random().sign(&claims).unwrap();
    assert!(k2.verify_fresh(&stranger, now).await.is_err());
    // A configured key cannot be rotated through the API.
    let admin = fx.login("admin").await;
    let r = fx
        .call(Method::POST, "/api/v1/auth/keys/rotate", Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
}

#[tokio::test]
async fn a_short_jwt_secret_is_refused() {
    let fx = fixture().await;
    let acc: std::sync::Arc<dyn Accounts> = fx.accounts.clone();
    let reg = fx.state.registry.clone();
    let e = hes_api::jwt_key(acc.clone(), Some("00".repeat(31)), reg.clone())
        .await
        .unwrap_err();
    assert!(e.contains("at least 32 bytes"), "{e}");
    assert!(!e.contains(&"00".repeat(31)));
    assert!(
        hes_api::jwt_key(acc.clone(), Some("not hex".into()), reg.clone())
            .await
            .is_err()
    );
    assert!(
        hes_api::jwt_key(acc.clone(), Some("00".repeat(32)), reg.clone())
            .await
            .is_ok()
    );
    // Unset: the store's key, the same for the next node.
    let a = hes_api::jwt_key(acc.clone(), None, reg.clone())
        .await
        .unwrap();
    let b = hes_api::jwt_key(acc, None, reg).await.unwrap();
    assert_eq!(a.current_kid(), b.current_kid());
}

/// Signing keys kept in the store are sealed under the KEK: the row holds no usable key, a
/// node without the KEK (or with another) cannot load them, one with it signs the same.
#[tokio::test]
async fn stored_signing_keys_are_sealed_under_the_kek() {
    use hes_api::accounts::SqliteAccounts;
    use hes_api::auth::{Claims, JwtKey};
    use std::sync::Arc;
    let fx = fixture().await;
    let db = fx.dir.join("hes.db");
    let a: Arc<dyn Accounts> = Arc::new(SqliteAccounts::open(&db).await.unwrap());
    let registry = fx.state.registry.clone();
    let k1 = JwtKey::from_store_sealed(a.clone(), registry.clone())
        .await
        .unwrap();
    let raw: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT secret FROM api_jwt_keys", [], |r| r.get(0))
        .unwrap();
    let raw = hex::decode(raw).unwrap();
    assert!(raw.starts_with(b"kek:"), "the stored key is not sealed");
    assert!(
        JwtKey::from_store(a.clone()).await.is_err(),
        "opened without a KEK"
    );
    let other = hes_store::Registry::open(
        fx.store.clone(),
        hes_model::secrets::Kek::from_bytes(&[9u8; 32]).unwrap(),
    )
    .await
    .unwrap();
    assert!(
        JwtKey::from_store_sealed(a.clone(), other).await.is_err(),
        "opened under another KEK"
    );
    let k2 = JwtKey::from_store_sealed(a, registry).await.unwrap();
    let now = hes_api::auth::unix_now();
    let claims = Claims {
        sub: "admin".into(),
        role: Role::Admin,
        groups: vec![],
        iat: now,
        exp: now + 100,
        gen: 0,
    };
    assert_eq!(k2.verify(&k1.sign(&claims).unwrap(), now).unwrap(), claims);
    // A rotation seals the new key too.
    k1.rotate(900).await.unwrap();
    assert_eq!(
        k2.verify_fresh(&k1.sign(&claims).unwrap(), now)
            .await
            .unwrap(),
        claims
    );
}
