//! The API and live data in `hes demo`: serves the REST and WebSocket API (hes-api) on
//! `--http`, with users, tokens and the audit log in the demo's SQLite database, and feeds the
//! cache (latest values, last seen, the `live.*` channels) from what the demo stores, until
//! the processing pipeline does that itself. TLS when `HES_TLS_CERT` and `HES_TLS_KEY` name PEM
//! files.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hes_api::auth::JwtKey;
use hes_api::{ApiConfig, AppState, CommandSink};
use hes_cache::Cache;
use hes_collector::bus::{Bus, MemoryBus};
use hes_collector::registry::Registry;
use hes_model::{topics, Event, JobResult, Reading};
use serde_json::json;

/// Starts the API on `addr` over the demo's store, registry and engine. Prints the URL and,
/// at the first start without `HES_ADMIN_PASSWORD`, the generated admin password (once).
/// Returns the address it listens on.
pub async fn start(
    addr: SocketAddr,
    db: &Path,
    store: Arc<dyn hes_store::Store>,
    cache: Arc<dyn Cache>,
    registry: Arc<Registry>,
    commands: Arc<dyn CommandSink>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let accounts = hes_api::accounts::SqliteAccounts::open(db)
        .await
        .context("opening the accounts database")?;
    let tls = match (
        std::env::var_os("HES_TLS_CERT"),
        std::env::var_os("HES_TLS_KEY"),
    ) {
        (Some(c), Some(k)) => Some(
            hes_api::serve::tls_acceptor(Path::new(&c), Path::new(&k))
                .context("HES_TLS_CERT / HES_TLS_KEY")?,
        ),
        (None, None) => None,
        _ => anyhow::bail!("set both HES_TLS_CERT and HES_TLS_KEY, or neither"),
    };
    let config = ApiConfig {
        hsts: tls.is_some(),
        ..ApiConfig::default()
    };
    let env_password = std::env::var("HES_ADMIN_PASSWORD").ok();
    let from_env = env_password.as_deref().is_some_and(|p| !p.is_empty());
    let generated = hes_api::ensure_first_admin(&accounts, env_password, config.hash_cost)
        .await
        .map_err(|e| anyhow::anyhow!("creating the first admin: {e}"))?;
    let jwt = match std::env::var("HES_JWT_SECRET") {
        Ok(hexkey) => JwtKey::new(hex::decode(hexkey.trim()).context("HES_JWT_SECRET is not hex")?),
        Err(_) => JwtKey::random(),
    };
    let state = AppState::new(
        store,
        cache,
        registry,
        commands,
        Arc::new(accounts),
        jwt,
        config,
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the API on {addr}"))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("API: {scheme}://{local}/api/v1 (OpenAPI: {scheme}://{local}/api/openapi.json)");
    match generated {
        Some(p) => println!(
            "API admin: user admin, password {p} (shown once; set HES_ADMIN_PASSWORD to choose it)"
        ),
        None if from_env => println!("API admin: user admin, password from HES_ADMIN_PASSWORD"),
        None => println!("API admin: user admin (password set at the first start)"),
    }
    let app = hes_api::router(state);
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.changed().await;
        };
        let served = match tls {
            Some(acceptor) => match hes_api::serve::TlsListener::new(listener, acceptor) {
                Ok(l) => hes_api::serve::serve_tls(l, app, shutdown).await,
                Err(e) => Err(e),
            },
            None => hes_api::serve::serve(listener, app, shutdown).await,
        };
        if let Err(e) = served {
            eprintln!("hes demo: the API stopped: {e}");
        }
    });
    Ok(local)
}

/// Puts what was just stored into the cache: latest values, last seen (at reception), and one
/// `live.readings` / `live.events` message per reading and event.
pub async fn feed_cache(cache: &dyn Cache, readings: &[Reading], events: &[Event]) {
    if let Err(e) = cache.put_latest(readings).await {
        tracing::warn!(error = %e, "caching the latest values");
    }
    let mut seen: std::collections::HashMap<&hes_model::MeterId, i64> = Default::default();
    for r in readings {
        let t = seen.entry(&r.meter).or_insert(r.received_at);
        *t = (*t).max(r.received_at);
    }
    for e in events {
        let t = seen.entry(&e.meter).or_insert(e.received_at);
        *t = (*t).max(e.received_at);
    }
    for (m, t) in seen {
        let _ = cache.mark_seen(m, t).await;
    }
    for r in readings {
        let msg = json!({"type": "reading", "meter": r.meter, "data": r}).to_string();
        let _ = cache.publish("live.readings", msg.as_bytes()).await;
    }
    for e in events {
        let msg = json!({"type": "event", "meter": e.meter, "data": e}).to_string();
        let _ = cache.publish("live.events", msg.as_bytes()).await;
    }
}

/// Publishes every job result on the bus to `live.jobs`.
pub async fn relay_jobs(
    bus: Arc<MemoryBus>,
    cache: Arc<dyn Cache>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut consumer = bus.subscribe(&[topics::JOB_RESULTS], "api-live").await?;
    loop {
        let next = tokio::select! {
            d = consumer.next(Duration::from_secs(1)) => d?,
            _ = stop.changed() => return Ok(()),
        };
        let Some(d) = next else { continue };
        if let Ok(r) = serde_json::from_slice::<JobResult>(&d.payload) {
            let msg = json!({"type": "job", "meter": r.meter, "data": r}).to_string();
            let _ = cache.publish("live.jobs", msg.as_bytes()).await;
        }
        consumer.commit(&d).await?;
    }
}
