//! The head-end's REST and WebSocket API (axum): meters, readings, events, jobs, commands,
//! schedules, groups, users, tokens, the audit log and fleet statistics under `/api/v1`, with
//! JWT and API-token authentication, roles and group scopes; `/metrics`, `/healthz`, `/readyz`
//! and the OpenAPI document. `router(state)` builds the app; `serve` runs it (TLS optional).
//! See `docs/api.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hes_cache::Cache;
use hes_store::Registry;
use hes_store::Store;

pub mod accounts;
pub mod auth;
pub mod error;
mod extract;
mod http;
mod live;
pub mod metrics;
mod openapi;
mod routes;

pub use routes::admin::ScheduleSpec;
/// What an event code means (the API's table; the CIM outbound delivery's reasons too).
pub use routes::events::describe as describe_event;
pub mod serve;
pub mod ui;
pub mod webhooks;

pub use accounts::Accounts;
pub use error::ApiError;
pub use http::router;
pub use openapi::{generate as openapi_document, OPENAPI_JSON};

use accounts::AuditEntry;
use auth::{HashCost, JwtKey, LoginLimiter};

pub use hes_model::CommandSink;

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Access token lifetime (15 min).
    pub access_ttl_s: i64,
    /// Refresh token lifetime (12 h).
    pub refresh_ttl_s: i64,
    /// A meter heard from within this many seconds is online.
    pub online_within_s: i64,
    /// Argon2id cost of new password hashes.
    pub hash_cost: HashCost,
    /// Failed logins per username and per client address within a minute before 429.
    pub login_failures_per_minute: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Origins allowed to call the API from a browser on another origin (empty: CORS off).
    pub cors_origins: Vec<String>,
    /// Send Strict-Transport-Security (set when serving TLS).
    pub hsts: bool,
    /// Interval between `stats` messages to WebSocket clients subscribed to the fleet.
    pub ws_stats_every: Duration,
    /// Messages a WebSocket client may fall behind before it loses some (and is told).
    pub ws_queue: usize,
    /// The node's roles, for `/readyz` (none: the API alone).
    pub health: Option<std::sync::Arc<hes_model::health::Health>>,
    /// How often an open WebSocket checks its credential again (expiry, revocation).
    pub ws_recheck_every: Duration,
    /// Password hashes computed at once (argon2 is CPU- and memory-heavy); more wait.
    pub hash_concurrency: usize,
    /// Longest a request waits for a hashing slot before 503.
    pub hash_wait: Duration,
    /// Longest a CIM `create EndDeviceControls` waits for its jobs before it replies (the
    /// ones not done are reported pending with their job ids).
    pub cim_control_wait: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            access_ttl_s: 15 * 60,
            refresh_ttl_s: 12 * 3600,
            online_within_s: 2 * 3600,
            hash_cost: HashCost::default(),
            login_failures_per_minute: 5,
            max_body_bytes: 8 << 20,
            cors_origins: Vec::new(),
            hsts: false,
            ws_stats_every: Duration::from_secs(5),
            ws_queue: 1024,
            health: None,
            ws_recheck_every: Duration::from_secs(15),
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            hash_wait: Duration::from_secs(10),
            cim_control_wait: Duration::from_secs(60),
        }
    }
}

/// What the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub cache: Arc<dyn Cache>,
    pub registry: Arc<Registry>,
    pub commands: Arc<dyn CommandSink>,
    pub accounts: Arc<dyn Accounts>,
    pub config: ApiConfig,
    pub jwt: JwtKey,
    pub limiter: LoginLimiter,
    pub metrics: metrics::Metrics,
    pub started: Instant,
    live: live::Hub,
    stats_cache: std::sync::Mutex<Option<(Instant, routes::stats::Slow)>>,
    stats_refreshing: std::sync::atomic::AtomicBool,
    stats_init: tokio::sync::Mutex<()>,
    scoped_stats:
        std::sync::Mutex<std::collections::HashMap<String, (Instant, routes::stats::Slow)>>,
    dummy_hash: tokio::sync::OnceCell<String>,
    hashing: tokio::sync::Semaphore,
}

/// Largest audit detail kept whole (JSON text, bytes); longer ones are cut and marked.
pub const MAX_AUDIT_DETAIL: usize = 4096;

/// `detail`, or when its JSON text is over [`MAX_AUDIT_DETAIL`], its start with a marker:
/// `{"truncated": true, "bytes": <whole length>, "start": "<the first bytes of the text>"}`.
pub fn bounded_detail(detail: serde_json::Value) -> serde_json::Value {
    let text = detail.to_string();
    if text.len() <= MAX_AUDIT_DETAIL {
        return detail;
    }
    let mut end = MAX_AUDIT_DETAIL;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    serde_json::json!({
        "truncated": true,
        "bytes": text.len(),
        "start": text.get(..end).unwrap_or_default(),
    })
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("meters", &self.0.registry.len())
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<dyn Cache>,
        registry: Arc<Registry>,
        commands: Arc<dyn CommandSink>,
        accounts: Arc<dyn Accounts>,
        jwt: JwtKey,
        config: ApiConfig,
    ) -> Self {
        let limiter = LoginLimiter::new(config.login_failures_per_minute, Duration::from_secs(60));
        Self(Arc::new(Inner {
            store,
            cache,
            registry,
            commands,
            accounts,
            jwt,
            limiter,
            metrics: metrics::Metrics::default(),
            started: Instant::now(),
            live: live::Hub::new(config.ws_queue),
            stats_cache: std::sync::Mutex::new(None),
            stats_refreshing: std::sync::atomic::AtomicBool::new(false),
            stats_init: tokio::sync::Mutex::new(()),
            scoped_stats: std::sync::Mutex::new(std::collections::HashMap::new()),
            dummy_hash: tokio::sync::OnceCell::new(),
            hashing: tokio::sync::Semaphore::new(config.hash_concurrency.max(1)),
            config,
        }))
    }

    /// Writes an audit entry; a failure fails the act it records.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        let e = AuditEntry {
            time: auth::unix_now(),
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail: bounded_detail(detail),
        };
        self.accounts.audit(&e).await?;
        Ok(())
    }

    /// Runs argon2 work (`f`) on the blocking pool once one of the bounded hashing slots is
    /// free: at most `hash_concurrency` at once, so that a flood of logins cannot take every
    /// core and all memory; a request that waits longer than `hash_wait` gets 503.
    pub async fn hashing<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = tokio::time::timeout(self.config.hash_wait, self.hashing.acquire())
            .await
            .map_err(|_| ApiError::Unavailable("too many logins at once; try again".into()))?
            .map_err(ApiError::internal)?;
        let out = tokio::task::spawn_blocking(f)
            .await
            .map_err(ApiError::internal);
        drop(permit);
        out
    }
}

/// The key that signs access tokens: `HES_JWT_SECRET` when set (hex, at least 32 bytes; every
/// node of a deployment sets the same), else the keys kept in the accounts database (created
/// by the first node, shared by all). The error says what is wrong, never the key.
pub async fn jwt_key(
    accounts: Arc<dyn Accounts>,
    env_secret: Option<String>,
    registry: Arc<hes_store::Registry>,
) -> Result<JwtKey, String> {
    match env_secret {
        Some(text) => JwtKey::from_secret_text(&text),
        // Sealed under the KEK at rest: a copy of the database signs nothing.
        None => JwtKey::from_store_sealed(accounts, registry)
            .await
            .map_err(|e| format!("the signing key in the accounts database: {e:?}")),
    }
}

/// Creates the first admin when there are no users: user `admin` with `HES_ADMIN_PASSWORD`
/// (from `env_password`), else a generated password that is returned (to be shown once).
/// Returns `None` when users exist already or the password came from the environment.
pub async fn ensure_first_admin(
    accounts: &dyn Accounts,
    env_password: Option<String>,
    cost: HashCost,
) -> Result<Option<String>, ApiError> {
    let env_password = env_password.filter(|p| !p.is_empty());
    if let Some(p) = &env_password {
        auth::check_password(p).map_err(|e| {
            ApiError::BadRequest(format!("HES_ADMIN_PASSWORD does not follow the rules: {e}"))
        })?;
    }
    if !accounts.users().await?.is_empty() {
        return Ok(None);
    }
    let (password, generated) = match env_password {
        Some(p) => (p, false),
        None => (auth::generate_password(), true),
    };
    let p = password.clone();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&p, cost))
        .await
        .map_err(ApiError::internal)??;
    let user = accounts::User {
        username: "admin".into(),
        password_hash: hash,
        role: accounts::Role::Admin,
        groups: Vec::new(),
        created_at: auth::unix_now(),
    };
    match accounts.create_user(&user).await {
        Ok(()) => {}
        // Another node created it first.
        Err(accounts::AccountsError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    Ok(generated.then_some(password))
}

/// The schedules kept by the API (`PUT /api/v1/schedules`), as the collector runs them;
/// stored ones that no longer check out are left out.
pub async fn stored_schedules(
    accounts: &dyn Accounts,
) -> Result<Vec<hes_model::schedule::Schedule>, ApiError> {
    Ok(accounts
        .schedules()
        .await?
        .into_iter()
        .filter_map(|s| serde_json::from_str::<ScheduleSpec>(&s.spec).ok())
        .filter_map(|s| s.to_schedule())
        .collect())
}
