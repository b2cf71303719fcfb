//! The API in `hes demo`: serves the REST and WebSocket API (hes-api) on `--http`, with users,
//! tokens and the audit log in the demo's SQLite database. The pipeline's process stage feeds
//! the cache it reads (latest values, last seen, the `live.*` channels). TLS when `HES_TLS_CERT`
//! and `HES_TLS_KEY` name PEM files.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use hes_api::{ApiConfig, AppState, CommandSink};
use hes_cache::Cache;
use hes_store::Registry;

/// Starts the API on `addr` over the demo's store, registry and engine. Prints the URL and,
/// at the first start without `HES_ADMIN_PASSWORD`, the generated admin password (once).
/// Returns the address it listens on.
/// What the API serves from.
pub struct Backends {
    pub store: Arc<dyn hes_store::Store>,
    pub cache: Arc<dyn Cache>,
    pub registry: Arc<Registry>,
    pub commands: Arc<dyn CommandSink>,
    /// The node's roles, for `/readyz`.
    pub health: Option<Arc<hes_model::health::Health>>,
}

pub async fn start(
    addr: SocketAddr,
    accounts_at: &str,
    backends: Backends,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let Backends {
        store,
        cache,
        registry,
        commands,
        health,
    } = backends;
    let accounts = hes_api::accounts::open(accounts_at)
        .await
        .context("opening the accounts database")?;
    let tls = match (
        std::env::var_os("HES_TLS_CERT"),
        std::env::var_os("HES_TLS_KEY"),
    ) {
        (Some(c), Some(k)) => {
            let acceptor = hes_api::serve::tls_acceptor(Path::new(&c), Path::new(&k))
                .context("HES_TLS_CERT / HES_TLS_KEY")?;
            // For the expiry alert (deploy/prometheus/): a certificate it cannot read is
            // only a warning, the TLS stack has accepted it.
            if let Err(e) = hes_metrics::cert::watch_pem("api_tls", Path::new(&c)) {
                tracing::warn!(error = %e, "the API certificate's expiry is not in the metrics");
            }
            Some(acceptor)
        }
        (None, None) => None,
        _ => anyhow::bail!("set both HES_TLS_CERT and HES_TLS_KEY, or neither"),
    };
    let config = ApiConfig {
        hsts: tls.is_some(),
        health,
        ..ApiConfig::default()
    };
    let env_password = std::env::var("HES_ADMIN_PASSWORD").ok();
    let from_env = env_password.as_deref().is_some_and(|p| !p.is_empty());
    let generated = hes_api::ensure_first_admin(&*accounts, env_password, config.hash_cost)
        .await
        .map_err(|e| anyhow::anyhow!("creating the first admin: {e}"))?;
    // Without HES_JWT_SECRET the keys live in the accounts database, shared by every node.
    let jwt = hes_api::jwt_key(
        accounts.clone(),
        std::env::var("HES_JWT_SECRET")
            .ok()
            .filter(|s| !s.is_empty()),
        registry.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("the access token signing key: {e}"))?;
    let state = AppState::new(store, cache, registry, commands, accounts, jwt, config);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the API on {addr}"))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("Web UI: open {scheme}://{local}/ in a browser (desktop or phone)");
    println!("API: {scheme}://{local}/api/v1 (OpenAPI: {scheme}://{local}/api/openapi.json)");
    match generated {
        Some(p) => println!(
            "API admin: user admin, password {p} (shown once; set HES_ADMIN_PASSWORD to choose it)"
        ),
        None if from_env => println!("API admin: user admin, password from HES_ADMIN_PASSWORD"),
        None => println!("API admin: user admin (password set at the first start)"),
    }
    let app = hes_api::router(state);
    // Ends only at shutdown, or when the listener fails: the node watches it.
    let task = tokio::spawn(async move {
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
            eprintln!("hes: the API stopped: {e}");
        }
    });
    Ok((local, task))
}

/// Runs the schedules kept through the API (`/api/v1/schedules`) into `sink` (the demo's
/// engine, or the jobs topic): the set is read again every 15 s and the scheduler restarted
/// when it changed.
pub async fn run_api_schedules(
    accounts_at: String,
    sink: hes_collector::schedule::Sink,
    registry: Arc<Registry>,
    fence: hes_collector::schedule::Fence,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let accounts = hes_api::accounts::open(&accounts_at)
        .await
        .context("opening the accounts database")?;
    let mut running: Option<(String, tokio::task::JoinHandle<()>)> = None;
    loop {
        match hes_api::stored_schedules(&*accounts).await {
            Ok(list) => {
                let key = format!("{list:?}");
                if running.as_ref().map(|(k, _)| k) != Some(&key) {
                    if let Some((_, task)) = running.take() {
                        task.abort();
                    }
                    tracing::info!(schedules = list.len(), "API schedules (re)started");
                    let task = tokio::spawn(hes_collector::schedule::run_into(
                        list,
                        sink.clone(),
                        registry.clone(),
                        fence.clone(),
                        stop.clone(),
                    ));
                    running = Some((key, task));
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading the API's schedules"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(15)) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}
