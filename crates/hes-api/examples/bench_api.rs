//! The API benchmark's two halves (`scripts/bench-api` drives them):
//!
//! `bench_api gen DB METERS DAYS`: a store holding METERS meters' 15-minute import register
//! (1.0.1.8.0.255) for the last DAYS days. DB is an SQLite file or a `postgres://` URL (of a
//! database of the benchmark's own: the script creates it).
//! `bench_api serve DB METERS`: the API over that store, with a registry of METERS meters in
//! cells of 50 (all seen and with a latest value in the cache), on 127.0.0.1:0; prints
//! `URL http://…` and `TOKEN <access JWT of admin>`, then serves until killed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dlms::{ObisCode, SystemTitle};
use hes_api::auth::{HashCost, JwtKey};
use hes_api::{ApiConfig, AppState};
use hes_cache::{Cache, MemoryCache};
use hes_collector::bus::MemoryBus;
use hes_collector::counters::Counters;
use hes_collector::jobs::{Audit, Engine, EngineConfig};
use hes_collector::secrets::Kek;
use hes_collector::session::Env;
use hes_model::inventory::{Endpoint, InventoryEntry, Transport};
use hes_model::{MeterId, Reading, Source};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn id(i: u32) -> String {
    format!("MTR{i:08}")
}

fn entry(i: u32) -> InventoryEntry {
    InventoryEntry {
        id: id(i),
        serial: format!("{i:08}"),
        logical_device_name: format!("HES{i:013}"),
        endpoint: Endpoint {
            host: format!("127.{}.{}.{}", 10 + (i >> 16), (i >> 8) & 255, i & 255),
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

/// The benchmark's readings of meter `m` from `start` to `end`, calling `f` with (time, value).
fn series(m: u32, start: i64, end: i64, mut f: impl FnMut(i64, i64)) {
    let mut value = i64::from(m) * 1000;
    let mut t = start;
    while t <= end {
        value += 50 + (t / 900 + i64::from(m)) % 200;
        f(t, value);
        t += 900;
    }
}

async fn gen_pg(url: &str, meters: u32, days: i64) {
    use hes_store::Store;
    let store = hes_store::PgStore::connect(url).await.unwrap();
    let end = now() - now().rem_euclid(900);
    let start = end - days * 86_400;
    let t0 = std::time::Instant::now();
    let obis = ObisCode::new(1, 0, 1, 8, 0, 255);
    for chunk in (1..=meters).collect::<Vec<_>>().chunks(20) {
        let mut batch = Vec::new();
        for &m in chunk {
            let meter = MeterId(id(m));
            series(m, start, end, |t, value| {
                batch.push(Reading {
                    meter: meter.clone(),
                    obis,
                    class_id: 3,
                    attribute: 2,
                    time: t,
                    value,
                    scaler: 0,
                    unit: 30,
                    status: 0,
                    source: Source::Scheduled,
                    received_at: t + 60,
                });
            });
        }
        store.insert_readings(&batch).await.unwrap();
    }
    eprintln!("generated in {:.0} s", t0.elapsed().as_secs_f64());
}

async fn gen(db: &str, meters: u32, days: i64) {
    if hes_store::is_postgres_url(db) {
        return gen_pg(db, meters, days).await;
    }
    drop(hes_store::SqliteStore::open(db).await.unwrap());
    let db = db.to_string();
    tokio::task::spawn_blocking(move || {
        let mut c = rusqlite::Connection::open(db).unwrap();
        c.pragma_update(None, "synchronous", "OFF").unwrap();
        let end = now() - now().rem_euclid(900);
        let start = end - days * 86_400;
        let t0 = std::time::Instant::now();
        for chunk in (1..=meters).collect::<Vec<_>>().chunks(100) {
            let tx = c.transaction().unwrap();
            {
                let mut st = tx
                    .prepare(
                        "INSERT OR IGNORE INTO readings (meter, obis, attribute, time, class_id, value,
                         scaler, unit, status, source, received_at)
                         VALUES (?1, '1.0.1.8.0.255', 2, ?2, 3, ?3, 0, 30, 0, 'scheduled', ?4)",
                    )
                    .unwrap();
                for &m in chunk {
                    let meter = id(m);
                    series(m, start, end, |t, value| {
                        st.execute(rusqlite::params![meter, t, value, t + 60])
                            .unwrap();
                    });
                }
            }
            tx.commit().unwrap();
        }
        eprintln!("generated in {:.0} s", t0.elapsed().as_secs_f64());
    })
    .await
    .unwrap();
}

async fn serve(db: &str, meters: u32) {
    if hes_store::is_postgres_url(db) {
        let store = Arc::new(hes_store::PgStore::connect(db).await.unwrap());
        let accounts = Arc::new(hes_api::accounts::PgAccounts::connect(db).await.unwrap());
        serve_on(store, accounts, meters).await
    } else {
        let store = Arc::new(hes_store::SqliteStore::open(db).await.unwrap());
        let accounts = Arc::new(hes_api::accounts::SqliteAccounts::open(db).await.unwrap());
        serve_on(store, accounts, meters).await
    }
}

async fn serve_on<S: hes_store::Store + hes_store::StateStore + 'static>(
    store: Arc<S>,
    accounts: Arc<dyn hes_api::Accounts>,
    meters: u32,
) {
    let registry = hes_store::Registry::open(store.clone(), Kek::from_bytes(&[9u8; 32]).unwrap())
        .await
        .unwrap();
    let mut entries: Vec<InventoryEntry> = (1..=meters).map(entry).collect();
    for e in &mut entries {
        let n: u32 = e.serial.parse().unwrap_or(0);
        e.groups = BTreeMap::from([("cell".to_string(), format!("cell-{}", n / 50))]);
    }
    if registry.is_empty() {
        registry.import(&entries, false).await.unwrap();
    }
    let cache = Arc::new(MemoryCache::new());
    let t = now();
    for i in 1..=meters {
        let m = MeterId(id(i));
        cache.mark_seen(&m, t).await.unwrap();
        cache
            .put_latest(&[Reading {
                meter: m,
                obis: ObisCode::new(1, 0, 1, 8, 0, 255),
                class_id: 3,
                attribute: 2,
                time: t - t.rem_euclid(900),
                value: 1,
                scaler: 0,
                unit: 30,
                status: 0,
                source: Source::Scheduled,
                received_at: t,
            }])
            .await
            .unwrap();
    }
    let env = Arc::new(Env {
        registry: registry.clone(),
        counters: Arc::new(Counters::new(registry.state().clone())),
        client_title: SystemTitle(*b"HESBENCH"),
        connect_timeout: Duration::from_secs(1),
        response_timeout: Duration::from_secs(1),
    });
    let engine = Engine::new(
        env,
        Arc::new(MemoryBus::new()),
        EngineConfig::default(),
        Audit::in_memory(),
    );
    let config = ApiConfig {
        hash_cost: HashCost { m_kib: 1024, t: 1 },
        ..ApiConfig::default()
    };
    hes_api::ensure_first_admin(&*accounts, Some("bench-password".into()), config.hash_cost)
        .await
        .unwrap();
    let jwt = JwtKey::random();
    let claims = hes_api::auth::Claims {
        sub: "admin".into(),
        role: hes_api::accounts::Role::Admin,
        groups: vec![],
        iat: t,
        exp: t + 3600,
        gen: 0,
    };
    let token = jwt.sign(&claims).unwrap();
    let state = AppState::new(store, cache, registry, engine, accounts, jwt, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("URL http://{}", listener.local_addr().unwrap());
    println!("TOKEN {token}");
    hes_api::serve::serve(listener, hes_api::router(state), std::future::pending())
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") => gen(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap()).await,
        Some("serve") => serve(&args[2], args[3].parse().unwrap()).await,
        _ => eprintln!("usage: bench_api gen DB METERS DAYS | serve DB METERS"),
    }
}
