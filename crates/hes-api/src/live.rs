//! Live updates over WebSocket. One hub per API node subscribes to the cache's pub/sub channels
//! (`live.readings`, `live.events`, `live.jobs`: JSON `{"type","meter","data"}`) and fans the
//! messages out to its connections through a bounded broadcast queue; each connection keeps
//! what its subscription and its principal's group scope allow. A client that falls behind
//! loses the oldest messages and is told (`{"type":"dropped","data":{"count":N}}`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use hes_cache::{Cache, RecvError};
use hes_model::MeterId;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;

use crate::auth::{parse_group, Permission, Principal};
use crate::error::ApiError;
use crate::extract::{authenticate, ApiQuery};
use crate::AppState;
use utoipa::IntoParams;

/// The cache channels the hub listens to.
pub const CHANNELS: [&str; 3] = ["live.readings", "live.events", "live.jobs"];

/// Limits of one subscription.
const MAX_METERS: usize = 10_000;
const MAX_GROUPS: usize = 256;
/// A client that cannot take a message within this time is disconnected.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct LiveMsg {
    meter: String,
    text: String,
    /// For every client whatever it subscribed to (the hub itself lost messages).
    everyone: bool,
}

#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<Arc<LiveMsg>>,
    started: tokio::sync::OnceCell<()>,
}

impl Hub {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self {
            tx,
            started: tokio::sync::OnceCell::new(),
        }
    }

    /// Subscribes to the cache channels once; returns when the subscriptions are active.
    async fn ensure(&self, cache: &Arc<dyn Cache>) -> Result<(), ApiError> {
        self.started
            .get_or_try_init(|| async {
                for ch in CHANNELS {
                    let sub = cache.subscribe(ch).await?;
                    tokio::spawn(forward(cache.clone(), ch, sub, self.tx.clone()));
                }
                Ok::<(), ApiError>(())
            })
            .await?;
        Ok(())
    }
}

fn parse(payload: &[u8]) -> Option<LiveMsg> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let meter = v
        .get("meter")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_string();
    v.get("type")?.as_str()?;
    Some(LiveMsg {
        meter,
        text: String::from_utf8(payload.to_vec()).ok()?,
        everyone: false,
    })
}

/// Moves one cache channel into the hub, subscribing again when the subscription closes.
async fn forward(
    cache: Arc<dyn Cache>,
    channel: &'static str,
    mut sub: hes_cache::Subscription,
    tx: broadcast::Sender<Arc<LiveMsg>>,
) {
    loop {
        match sub.recv().await {
            Ok(p) => {
                if let Some(m) = parse(&p) {
                    // No receivers is fine: nobody is connected.
                    let _ = tx.send(Arc::new(m));
                }
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(channel, lost = n, "live hub fell behind the cache");
                let _ = tx.send(Arc::new(LiveMsg {
                    meter: String::new(),
                    text: json!({"type": "dropped", "data": {"count": n, "channel": channel}})
                        .to_string(),
                    everyone: true,
                }));
            }
            Err(RecvError::Closed) => loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match cache.subscribe(channel).await {
                    Ok(s) => {
                        sub = s;
                        break;
                    }
                    Err(e) => tracing::warn!(channel, error = %e, "resubscribing"),
                }
            },
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    access_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wanted {
    #[serde(default)]
    meters: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    fleet: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMsg {
    subscribe: Wanted,
}

#[derive(Debug, Default)]
struct Subscription {
    meters: HashSet<String>,
    groups: Vec<(String, String)>,
    fleet: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/ws",
    operation_id = "get_ws",
    tag = "live",
    summary = "Live readings, events, job changes and fleet figures over a WebSocket (see docs/api.md)",
    params(WsQuery),
    responses((status = 101, description = "switching to the WebSocket protocol"), (status = 400, response = crate::openapi::P400), (status = 401, response = crate::openapi::P401), (status = 403, response = crate::openapi::P403)),
    security(()),
)]
pub async fn ws(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<WsQuery>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_string);
    // A URL ends up in proxy and server logs and in browser history: only short-lived access
    // tokens may travel there, never a long-lived API token.
    if q.access_token
        .as_deref()
        .is_some_and(|t| t.starts_with("hes_"))
    {
        return Err(ApiError::Unauthorized(
            "API tokens are taken in the Authorization header only, never in the URL".into(),
        ));
    }
    let cred = q
        .access_token
        .or(header)
        .ok_or_else(|| ApiError::Unauthorized("access_token is required".into()))?;
    let who = authenticate(&state, &cred).await?;
    who.require(Permission::Read)?;
    let upgrade = upgrade.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    state.live.ensure(&state.cache).await?;
    let rx = state.live.tx.subscribe();
    Ok(upgrade
        .max_message_size(64 << 10)
        .on_upgrade(move |socket| session(state, who, cred, rx, socket)))
}

async fn send(socket: &mut WebSocket, text: String) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

fn wanted(state: &AppState, who: &Principal, sub: &Subscription, m: &LiveMsg) -> bool {
    if m.everyone {
        return true;
    }
    if !(sub.fleet || !sub.meters.is_empty() || !sub.groups.is_empty()) {
        return false;
    }
    let Some(rec) = state.registry.get(&MeterId(m.meter.clone())) else {
        return who.unrestricted() && sub.fleet;
    };
    if !who.sees_groups(&rec.groups) {
        return false;
    }
    sub.fleet
        || sub.meters.contains(&m.meter)
        || sub
            .groups
            .iter()
            .any(|(k, v)| rec.groups.get(k).is_some_and(|x| x == v))
}

fn subscribe(text: &str) -> Result<Subscription, String> {
    let msg: ClientMsg = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let w = msg.subscribe;
    if w.meters.len() > MAX_METERS || w.groups.len() > MAX_GROUPS {
        return Err(format!(
            "at most {MAX_METERS} meters and {MAX_GROUPS} groups per subscription"
        ));
    }
    let groups = w
        .groups
        .iter()
        .map(|g| parse_group(g).ok_or_else(|| format!("group {g:?}: expected key=value")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Subscription {
        meters: w.meters.into_iter().collect(),
        groups,
        fleet: w.fleet,
    })
}

/// Close code for a session whose credential expired or was revoked (policy violation).
const CLOSE_CREDENTIAL: u16 = 1008;

async fn session(
    state: AppState,
    who: Principal,
    credential: String,
    mut rx: broadcast::Receiver<Arc<LiveMsg>>,
    mut socket: WebSocket,
) {
    state.metrics.ws_connected(1);
    let mut sub = Subscription::default();
    let mut tick = tokio::time::interval(state.config.ws_stats_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut recheck = tokio::time::interval_at(
        tokio::time::Instant::now() + state.config.ws_recheck_every,
        state.config.ws_recheck_every,
    );
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = recheck.tick() => {
                // The credential expired, was revoked, or its user changed: the session ends
                // as a new request with it would be refused.
                let why = match authenticate(&state, &credential).await {
                    Ok(_) => None,
                    Err(ApiError::Unauthorized(why)) => Some(why),
                    Err(e) => {
                        tracing::warn!(error = %e, "checking a live client's credential again");
                        None
                    }
                };
                if let Some(why) = why {
                    let frame = CloseFrame {
                        code: CLOSE_CREDENTIAL,
                        reason: why.chars().take(100).collect::<String>().into(),
                    };
                    let _ = tokio::time::timeout(
                        SEND_TIMEOUT,
                        socket.send(Message::Close(Some(frame))),
                    )
                    .await;
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(t))) => {
                    let reply = match subscribe(t.as_str()) {
                        Ok(s) => {
                            let ack = json!({"type": "subscribed", "data": {
                                "meters": s.meters.len(), "groups": s.groups.len(), "fleet": s.fleet}});
                            sub = s;
                            ack
                        }
                        Err(detail) => json!({"type": "error", "data": {"detail": detail}}),
                    };
                    if !send(&mut socket, reply.to_string()).await {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            m = rx.recv() => match m {
                Ok(m) => {
                    if wanted(&state, &who, &sub, &m) && !send(&mut socket, m.text.clone()).await {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    state.metrics.ws_dropped(n);
                    let msg = json!({"type": "dropped", "data": {"count": n}});
                    if !send(&mut socket, msg.to_string()).await {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick(), if sub.fleet => {
                match crate::routes::stats::fleet_for(&state, &who).await {
                    Ok(f) => {
                        let msg = json!({"type": "stats", "data": f});
                        if !send(&mut socket, msg.to_string()).await {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "fleet statistics for a live client"),
                }
            }
        }
    }
    state.metrics.ws_connected(-1);
}
