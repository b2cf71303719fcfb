//! The CIM round trip against a simulated meter: `create EndDeviceControls` (disconnect) through
//! the endpoint opens the meter's relay, as the simulator's control API reports (ground truth),
//! and the reply says so; a reconnect closes it again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{unique, Fx, COST, PASSWORD};
use dlms::SystemTitle;
use hes_api::accounts::{Accounts, Role, SqliteAccounts, User};
use hes_api::auth::{hash_password, JwtKey};
use hes_api::{ApiConfig, AppState};
use hes_cache::MemoryCache;
use hes_cim::event_type::Control;
use hes_cim::message::request_message;
use hes_cim::payload::{end_device_controls_xml, ControlRequest};
use hes_cim::xml::parse;
use hes_cim::xsd::validate;
use hes_collector::bus::MemoryBus;
use hes_collector::counters::Counters;
use hes_collector::jobs::{Audit, Engine, EngineConfig};
use hes_collector::registry::Registry;
use hes_collector::secrets::Kek;
use hes_collector::session::Env;
use hes_sim::fleet::{Fleet, FleetConfig};
use hes_store::SqliteStore;
use tower::ServiceExt;

/// The simulator's own answer: is the meter's relay connected?
async fn relay_connected(fleet: &Arc<Fleet>, id: &str) -> bool {
    let resp = hes_sim::control::router(fleet.clone())
        .oneshot(
            Request::builder()
                .uri(format!("/meters/{id}"))
                .header("host", "127.0.0.1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["relay_connected"].as_bool().unwrap()
}

async fn control(fx: &Fx, token: &str, control: Control, meter: &str) -> (String, String) {
    let c = end_device_controls_xml(&[ControlRequest {
        mrid: Some(format!("{control:?}-1")),
        control,
        meters: vec![meter.to_string()],
    }]);
    let body = request_message("create", "EndDeviceControls", "rt-1", 0, None, Some(&c));
    let r = fx
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/api/v1/cim")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/xml")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    let text = r.text();
    assert_eq!(r.status, StatusCode::OK, "{text}");
    validate(&text).unwrap();
    let root = parse(text.as_bytes()).unwrap();
    let result = root
        .child("Reply")
        .unwrap()
        .child_text("Result")
        .unwrap()
        .to_string();
    let event = root
        .child("Payload")
        .and_then(|p| p.child("EndDeviceEvents"))
        .and_then(|e| e.child("EndDeviceEvent"))
        .unwrap_or_else(|| panic!("no outcome event: {text}"));
    let kind = event
        .child("EndDeviceEventType")
        .unwrap()
        .attr("ref")
        .unwrap()
        .to_string();
    let detail = event
        .children_named("EndDeviceEventDetails")
        .find(|d| d.child_text("name") == Some("relay_connected"))
        .and_then(|d| d.child_text("value"))
        .unwrap()
        .to_string();
    (result, format!("{kind} relay_connected={detail}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cim_disconnect_opens_a_simulated_meters_relay() {
    let mut cfg = FleetConfig::new(1);
    cfg.first_host = IpAddr::from([127, 77, 0, 1]);
    let fleet = Fleet::start(cfg).await.unwrap();
    let dir = std::env::temp_dir().join(unique("hes_cim_sim"));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("hes.db");
    let store = Arc::new(SqliteStore::open(&db).await.unwrap());
    let accounts = Arc::new(SqliteAccounts::open(&db).await.unwrap());
    let registry = Registry::open(store.clone(), Kek::from_bytes(&[9u8; 32]).unwrap())
        .await
        .unwrap();
    registry.import(&fleet.inventory(), false).await.unwrap();
    let meter = fleet.inventory()[0].id.clone();
    let env = Arc::new(Env {
        registry: registry.clone(),
        counters: Arc::new(Counters::new(store.clone())),
        client_title: SystemTitle(*b"HESCIM01"),
        connect_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(5),
    });
    let engine = Engine::new(
        env,
        Arc::new(MemoryBus::new()),
        EngineConfig::default(),
        Audit::in_memory(),
    );
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(engine.clone().run(rx));
    accounts
        .create_user(&User {
            username: "op".into(),
            password_hash: hash_password(PASSWORD, COST).unwrap(),
            role: Role::Operator,
            groups: vec![],
            created_at: 0,
        })
        .await
        .unwrap();
    let state = AppState::new(
        store.clone(),
        Arc::new(MemoryCache::new()),
        registry,
        engine,
        accounts.clone(),
        JwtKey::random(),
        ApiConfig {
            hash_cost: COST,
            // Long enough for a loaded machine; the reply comes as soon as the job is done.
            cim_control_wait: Duration::from_secs(60),
            ..ApiConfig::default()
        },
    );
    let fx = Fx {
        app: hes_api::router(state.clone()),
        state,
        store,
        cache: Arc::new(MemoryCache::new()),
        accounts,
        dir,
    };
    let op = fx.login("op").await;
    assert!(
        relay_connected(&fleet, &meter).await,
        "connected to begin with"
    );
    let (result, outcome) = control(&fx, &op, Control::Disconnect, &meter).await;
    assert_eq!(result, "OK");
    assert_eq!(outcome, "3.31.0.68 relay_connected=false");
    assert!(!relay_connected(&fleet, &meter).await, "the relay is open");
    let (result, outcome) = control(&fx, &op, Control::Connect, &meter).await;
    assert_eq!(result, "OK");
    assert_eq!(outcome, "3.31.0.42 relay_connected=true");
    assert!(
        relay_connected(&fleet, &meter).await,
        "the relay is closed again"
    );
    let _ = stop.send(true);
    fleet.shutdown();
}
