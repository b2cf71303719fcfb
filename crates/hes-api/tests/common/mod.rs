//! The fixture the API tests share: a router over a fresh SQLite store, an in-memory cache, a
//! registry of six meters in two cells, an engine that is not running (jobs stay queued) and
//! four users.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use dlms::SystemTitle;
use hes_api::accounts::{Accounts, Role, SqliteAccounts, User};
use hes_api::auth::{hash_password, HashCost, JwtKey};
use hes_api::{ApiConfig, AppState};
use hes_cache::{Cache, MemoryCache};
use hes_collector::bus::MemoryBus;
use hes_collector::counters::Counters;
use hes_collector::jobs::{Audit, Engine, EngineConfig};
use hes_collector::registry::Registry;
use hes_collector::secrets::Kek;
use hes_collector::session::Env;
use hes_model::inventory::{Endpoint, InventoryEntry, Transport};
use hes_store::{SqliteStore, StateStore};
use serde_json::Value;
use tower::ServiceExt;

pub const COST: HashCost = HashCost { m_kib: 64, t: 1 };
pub const PASSWORD: &str = "correct horse battery";

pub struct Fx {
    pub app: Router,
    pub state: AppState,
    pub store: Arc<SqliteStore>,
    pub cache: Arc<dyn Cache>,
    pub accounts: Arc<SqliteAccounts>,
    pub dir: PathBuf,
}

impl Drop for Fx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000
    )
}

pub fn entry(i: u32) -> InventoryEntry {
    InventoryEntry {
        id: format!("MTR{i:08}"),
        serial: format!("{i:08}"),
        logical_device_name: format!("HES{i:013}"),
        endpoint: Endpoint {
            host: format!("127.1.0.{i}"),
            port: 4059,
            transport: Transport::Wrapper,
            client_sap_public: 16,
            client_sap_reader: 17,
            client_sap_management: 1,
            hdlc_server_logical: 1,
            hdlc_server_physical: 16,
        },
        password: "12345678".into(),
        ek: "000102030405060708090A0B0C0D0E0F".into(),
        ak: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF".into(),
        kek: "101112131415161718191A1B1C1D1E1F".into(),
        system_title: format!("48455300{i:08X}"),
        security: "hls-gmac-authenticated-encrypted".into(),
        max_pdu: 1024,
        quirks: vec![],
        groups: Default::default(),
    }
}

pub async fn fixture() -> Fx {
    fixture_with(ApiConfig {
        hash_cost: COST,
        ..ApiConfig::default()
    })
    .await
}

pub async fn fixture_with(config: ApiConfig) -> Fx {
    fixture_on(config, Arc::new(MemoryCache::new()), JwtKey::random()).await
}

/// A node of the API on the given cache, signing with the given key (nodes of one deployment
/// share both).
pub async fn fixture_on(config: ApiConfig, cache: Arc<dyn Cache>, jwt: JwtKey) -> Fx {
    fixture_in(config, cache, jwt, None).await
}

/// A fresh PostgreSQL database on `HES_DATABASE_URL` (`eval "$(scripts/services up)"`).
pub struct PgDb {
    admin_url: String,
    name: String,
    pub url: String,
}

async fn pg_admin(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = task.await;
}

impl PgDb {
    pub async fn create() -> Self {
        let admin_url = std::env::var("HES_DATABASE_URL")
            .expect("HES_DATABASE_URL is not set: run `eval \"$(scripts/services up)\"` first");
        let name = unique("hes_api_test");
        pg_admin(&admin_url, &format!("CREATE DATABASE \"{name}\"")).await;
        let (scheme, rest) = admin_url.split_once("://").unwrap();
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, format!("?{q}")),
            None => (rest, String::new()),
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        let url = format!("{scheme}://{authority}/{name}{query}");
        Self {
            admin_url,
            name,
            url,
        }
    }

    pub async fn drop_database(self) {
        pg_admin(
            &self.admin_url,
            &format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name),
        )
        .await;
    }
}

/// The fixture with its state (registry, counters, jobs' state, webhooks) on `state` instead
/// of the SQLite file (the readings and the accounts stay there).
pub async fn fixture_on_state(state: Arc<dyn StateStore>) -> Fx {
    fixture_in(
        ApiConfig {
            hash_cost: COST,
            ..ApiConfig::default()
        },
        Arc::new(MemoryCache::new()),
        JwtKey::random(),
        Some(state),
    )
    .await
}

async fn fixture_in(
    config: ApiConfig,
    cache: Arc<dyn Cache>,
    jwt: JwtKey,
    state: Option<Arc<dyn StateStore>>,
) -> Fx {
    let dir = std::env::temp_dir().join(unique("hes_api_test"));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("hes.db");
    let store = Arc::new(SqliteStore::open(&db).await.unwrap());
    let accounts = Arc::new(SqliteAccounts::open(&db).await.unwrap());
    let state: Arc<dyn StateStore> = state.unwrap_or_else(|| store.clone());
    let registry = Registry::open(state.clone(), Kek::from_bytes(&[7u8; 32]).unwrap())
        .await
        .unwrap();
    let mut entries: Vec<InventoryEntry> = (1..=6).map(entry).collect();
    for e in &mut entries {
        let n: u32 = e.serial.parse().unwrap();
        e.groups = BTreeMap::from([("cell".to_string(), format!("cell-{}", (n - 1) / 3 + 1))]);
    }
    registry.import(&entries, false).await.unwrap();
    let env = Arc::new(Env {
        registry: registry.clone(),
        counters: Arc::new(Counters::new(state)),
        client_title: SystemTitle(*b"HESTEST\x01"),
        connect_timeout: Duration::from_secs(1),
        response_timeout: Duration::from_secs(1),
    });
    let engine = Engine::new(
        env,
        Arc::new(MemoryBus::new()),
        EngineConfig::default(),
        Audit::in_memory(),
    );
    let hash = hash_password(PASSWORD, COST).unwrap();
    for (name, role, groups) in [
        ("admin", Role::Admin, vec![]),
        ("op", Role::Operator, vec![]),
        ("viewer", Role::Viewer, vec![]),
        ("cell1", Role::Operator, vec!["cell=cell-1".to_string()]),
    ] {
        accounts
            .create_user(&User {
                username: name.into(),
                password_hash: hash.clone(),
                role,
                groups,
                created_at: 0,
            })
            .await
            .unwrap();
    }
    let state = AppState::new(
        store.clone(),
        cache.clone(),
        registry,
        engine,
        accounts.clone(),
        jwt,
        config,
    );
    Fx {
        app: hes_api::router(state.clone()),
        state,
        store,
        cache,
        accounts,
        dir,
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Fx {
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = tokio::time::timeout(Duration::from_secs(30), self.app.clone().oneshot(req))
            .await
            .expect("the request timed out")
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .unwrap()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn login_pair(&self, user: &str) -> Value {
        let r = self
            .call(
                Method::POST,
                "/api/v1/auth/token",
                None,
                Some(serde_json::json!({"username": user, "password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()
    }

    pub async fn login(&self, user: &str) -> String {
        self.login_pair(user).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}
