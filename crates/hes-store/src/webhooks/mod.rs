//! Webhook subscriptions and their delivery queue: the state the API nodes share to deliver
//! events to external systems (see `docs/api.md`, "Webhooks"). Deliveries are enqueued once
//! per (webhook, event id), claimed under a lease by one node at a time (a killed node's
//! claims expire and another node takes them), and handed out in id order per (webhook,
//! meter): a delivery is not claimable while an earlier one of the same meter is pending, so
//! a meter's events arrive in order even across retries. Adapters: SQLite (`sqlite.rs`) and
//! PostgreSQL (`pg.rs`), both passing the `webhook_` cases of `tests/state_conformance.rs`.

use crate::{BoxFuture, StoreError};

mod pg;
mod sqlite;

/// A subscription. `secret` is the signing secret sealed under the KEK (the store never sees
/// it in clear); `groups` the `key=value` meter groups it is limited to (empty: every meter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// The event kinds it receives.
    pub events: Vec<String>,
    pub groups: Vec<String>,
    pub secret: String,
    /// Failed attempts after which a delivery is dead.
    pub max_attempts: u32,
    pub created_by: String,
    pub created_at: i64,
    /// Whether it may be delivered to non-public addresses (loopback, private, link-local:
    /// an admin's decision at creation; otherwise the sender refuses them after resolving).
    pub allow_private: bool,
}

/// A delivery to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub webhook: String,
    /// The event's natural key: enqueued once per webhook, however often the event is seen.
    pub event_id: String,
    pub kind: String,
    /// The ordering key: deliveries of one meter go out in the order they were enqueued.
    pub meter: String,
    /// The JSON body, as signed and sent.
    pub body: String,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting to be sent (or being sent, when claimed).
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Failed `max_attempts` times: given up (dead letter), kept in the log.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "dead" => Some(Self::Dead),
            _ => None,
        }
    }
}

/// A delivery as stored. Times in Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub webhook: String,
    pub event_id: String,
    pub kind: String,
    pub meter: String,
    pub body: String,
    pub state: DeliveryState,
    /// Attempts started (a claim counts one).
    pub attempts: u32,
    pub next_at: i64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: done.
    Delivered { status: u16 },
    /// Failed; tried again at `retry_at` (ms), or dead when `None`.
    Failed {
        status: Option<u16>,
        error: String,
        retry_at: Option<i64>,
    },
}

/// The webhook state of every API node. Every method is one atomic step in the store.
pub trait WebhookStore: Send + Sync {
    /// Adds a subscription (`Conflict` when the id exists).
    fn create_webhook<'a>(&'a self, w: &'a Webhook) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Replaces subscriptions' sealed secrets, `(id, sealed)` (`hes kek rotate`); returns how
    /// many were found.
    fn replace_webhook_secrets<'a>(
        &'a self,
        secrets: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Every subscription, oldest first.
    fn webhooks(&self) -> BoxFuture<'_, Result<Vec<Webhook>, StoreError>>;

    /// Removes a subscription and its deliveries; `false` when there was none.
    fn delete_webhook<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Enqueues deliveries (in order), due at `now_ms`; one already enqueued for its
    /// (webhook, event id), or for a webhook that no longer exists, is skipped. Returns how
    /// many were added.
    fn enqueue_deliveries<'a>(
        &'a self,
        deliveries: &'a [NewDelivery],
        now_ms: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Claims up to `limit` due deliveries for `holder` until `now_ms + lease_ms`, one attempt
    /// more each: pending, due, not claimed by a live lease, and the oldest pending of their
    /// (webhook, meter). Atomic: two nodes never hold the same delivery, nor two of one meter.
    /// In id order.
    fn claim_deliveries<'a>(
        &'a self,
        holder: &'a str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>>;

    /// Records how the attempt `holder` claimed ended and releases the claim; `false` when the
    /// claim was lost (expired and taken by another node, or the webhook deleted).
    fn finish_delivery<'a>(
        &'a self,
        id: i64,
        holder: &'a str,
        outcome: &'a Outcome,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// A webhook's delivery log, newest first: `limit` from before id `before` (all when
    /// `None`), of one state when given.
    fn deliveries<'a>(
        &'a self,
        webhook: &'a str,
        state: Option<DeliveryState>,
        before: Option<i64>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>>;
}

pub(crate) const DELIVERY_COLUMNS: &str = "id, webhook, event_id, kind, meter, body, state, \
     attempts, next_at, last_status, last_error, created_at, finished_at";

#[allow(clippy::too_many_arguments)]
pub(crate) fn delivery_from_parts(
    id: i64,
    webhook: String,
    event_id: String,
    kind: String,
    meter: String,
    body: String,
    state: &str,
    attempts: i64,
    next_at: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    finished_at: Option<i64>,
) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id,
        webhook,
        event_id,
        kind,
        meter,
        body,
        state: DeliveryState::parse(state)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery {id}: state {state:?}")))?,
        attempts: crate::narrow(attempts, "attempts")?,
        next_at,
        last_status: last_status
            .map(|s| crate::narrow(s, "last_status"))
            .transpose()?,
        last_error,
        created_at,
        finished_at,
    })
}

pub(crate) fn list_text(v: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(e.to_string()))
}

pub(crate) fn parse_list(id: &str, s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("webhook {id}: {e}")))
}

pub(crate) const WEBHOOK_COLUMNS: &str =
    "id, url, events, groups, secret, max_attempts, created_by, created_at, allow_private";

/// The most an error text kept in the log may be, bytes.
pub(crate) const MAX_ERROR: usize = 1000;

pub(crate) fn bounded(s: &str) -> String {
    let mut end = s.len().min(MAX_ERROR);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_string()
}

/// (state, last_status, last_error, next_at, finished_at) an outcome leaves.
pub(crate) fn outcome_columns(
    o: &Outcome,
    now_ms: i64,
) -> (
    &'static str,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
) {
    match o {
        Outcome::Delivered { status } => (
            DeliveryState::Delivered.as_str(),
            Some(i64::from(*status)),
            None,
            None,
            Some(now_ms),
        ),
        Outcome::Failed {
            status,
            error,
            retry_at: Some(at),
        } => (
            DeliveryState::Pending.as_str(),
            status.map(i64::from),
            Some(bounded(error)),
            Some(*at),
            None,
        ),
        Outcome::Failed {
            status,
            error,
            retry_at: None,
        } => (
            DeliveryState::Dead.as_str(),
            status.map(i64::from),
            Some(bounded(error)),
            None,
            Some(now_ms),
        ),
    }
}
