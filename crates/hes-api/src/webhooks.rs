//! Webhooks: events pushed to external systems over HTTP, signed (see `docs/api.md`).
//!
//! Two loops, on every node with the API role, both stateless (everything is in the store):
//!
//! - **fan-out** ([`run_fanout`], consumer group `webhooks`): takes meter events and alarms
//!   (`hes.events`), job results (`hes.job-results`) and processed data (`hes.readings.processed`:
//!   a meter's day that became complete) from the bus and enqueues one delivery per matching
//!   subscription in the store, keyed by the event's natural id (a replay of the bus enqueues
//!   nothing twice); offsets are committed after the store has them.
//! - **delivery** ([`run_deliveries`]): claims due deliveries from the store under a lease
//!   (a killed node's claims expire and another node sends them), POSTs each with its HMAC
//!   signature, at most `concurrency` at once, and records the outcome: delivered, retried
//!   later with exponential backoff and jitter (the head-end's one retry policy), or dead after
//!   `max_attempts`. A meter's deliveries go out in order (the store hands out the oldest
//!   pending one per webhook and meter). A receiver that is down only fills its queue: the
//!   pipeline never waits on it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hes_bus::{Bus, BusError, Delivery as BusDelivery};
use hes_model::backoff::Backoff;
use hes_model::secrets::Sealed;
use hes_model::{topics, Event, JobResult, MeterId, Period};
use hes_store::{Delivery, NewDelivery, Outcome, Registry, StateStore, Webhook};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::watch;

/// The kinds of event a subscription may ask for.
pub const EVENT_KINDS: [&str; 3] = [EVENT, JOB_RESULT, DAY_COMPLETE];
/// A meter event or alarm (an event-log entry or a push).
pub const EVENT: &str = "event";
/// A job's final result (reads and commands).
pub const JOB_RESULT: &str = "job_result";
/// A meter's day of a channel became complete (every interval stored, or estimated).
pub const DAY_COMPLETE: &str = "day_complete";

/// The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub const SIGNATURE_HEADER: &str = "x-hes-signature";
/// The event's id: the same on every attempt (receivers dedupe by it).
pub const ID_HEADER: &str = "x-hes-event-id";
/// The event's kind.
pub const KIND_HEADER: &str = "x-hes-event";

/// How the webhook loops behave.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// This node's name in the claims it takes.
    pub node: String,
    /// Deliveries in flight at once (the bounded worker).
    pub concurrency: usize,
    /// How often an idle worker looks for due deliveries.
    pub poll: Duration,
    /// A receiver's whole answer must come within this.
    pub timeout: Duration,
    /// The wait before attempt n + 1 (exponential with jitter).
    pub retry: Backoff,
    /// Failed attempts before a delivery is dead, unless the subscription says otherwise.
    pub max_attempts: u32,
    /// Records the fan-out takes from the bus per store write, and how long it waits for them.
    pub batch: usize,
    pub linger: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            node: format!("api-{}", std::process::id()),
            concurrency: 16,
            poll: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
            retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(600)),
            max_attempts: 8,
            batch: 500,
            linger: Duration::from_millis(200),
        }
    }
}

/// The context a webhook's secret is sealed under: bound to its id.
pub fn seal_context(id: &str) -> String {
    format!("webhook-secret:{id}")
}

/// A subscription's secret re-sealed from one KEK to another (`hes kek rotate`): `None` when
/// it opens under `to` already.
pub fn reseal_secret(
    from: &hes_model::secrets::Kek,
    to: &hes_model::secrets::Kek,
    w: &Webhook,
) -> Result<Option<String>, hes_model::secrets::SecretError> {
    let sealed = Sealed::from_stored(w.secret.clone());
    let ctx = seal_context(&w.id);
    let open = match from.open(&sealed, &ctx) {
        Ok(open) => open,
        Err(hes_model::secrets::SecretError::Unseal) if to.open(&sealed, &ctx).is_ok() => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    Ok(Some(to.try_seal(open.expose(), &ctx)?.as_str().to_string()))
}

/// Whether a subscription without `allow_private` may be sent to `ip`: not loopback, private
/// (RFC 1918, IPv6 unique-local), link-local (the cloud metadata address among them), shared
/// (100.64/10), unspecified, multicast, broadcast, reserved, nor NAT64 (which may lead to any of
/// them); an IPv4-mapped IPv6 address is judged as its IPv4. See `docs/security.md`.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(a) => {
            let [o0, o1, o2, _] = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_multicast()
                || a.is_broadcast()
                || o0 == 0
                || (o0 == 100 && (o1 & 0xc0) == 64)
                || (o0 == 192 && o1 == 0 && o2 == 0)
                || (o0 == 198 && (o1 & 0xfe) == 18)
                || o0 >= 240)
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let [s0, s1, s2, s3, s4, s5, _, _] = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s0 & 0xfe00) == 0xfc00
                || (s0 & 0xffc0) == 0xfe80
                || (s0 == 0x64 && s1 == 0xff9b)
                // IPv4-compatible (deprecated): an IPv4 address in disguise.
                || [s0, s1, s2, s3, s4, s5] == [0; 6])
        }
    }
}

/// The signature header's value for `body` sent at `t`.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body)))
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret) else {
        return Vec::new();
    };
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// Checks a signature header as a receiver does: the HMAC matches (compared in constant time)
/// and `t` is within `tolerance_s` of `now`.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_s: i64) -> bool {
    let mut t = None;
    let mut sig = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sig = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(sig)) = (t, sig) else {
        return false;
    };
    if (now - t).abs() > tolerance_s {
        return false;
    }
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.verify_slice(&sig).is_ok()
}

/// One event to deliver: its natural id, kind, meter and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub id: String,
    pub kind: &'static str,
    pub meter: String,
    pub body: serde_json::Value,
}

fn outgoing(id: String, kind: &'static str, meter: &str, data: serde_json::Value) -> Outgoing {
    Outgoing {
        body: json!({"id": id, "kind": kind, "meter": meter, "data": data}),
        id,
        kind,
        meter: meter.to_string(),
    }
}

/// A meter event as a webhook event; its id is the event's natural key.
pub fn event_of(e: &Event) -> Outgoing {
    let id = format!("event:{}:{}:{}:{}", e.meter, e.log, e.time, e.code);
    let data = serde_json::to_value(e).unwrap_or_default();
    outgoing(id, EVENT, &e.meter.0, data)
}

/// A job result as a webhook event.
pub fn job_result_of(r: &JobResult) -> Outgoing {
    let id = format!("job:{}:{}", r.job, r.finished_at);
    let data = serde_json::to_value(r).unwrap_or_default();
    outgoing(id, JOB_RESULT, &r.meter.0, data)
}

/// A processed record's meter days that are complete, as webhook events (groups' aggregates
/// and hours and months are not announced).
pub fn days_complete_of(p: &hes_proto::Processed) -> Vec<Outgoing> {
    p.aggregates
        .iter()
        .filter(|a| a.period == Period::Day && a.complete && !a.subject.contains('='))
        .map(|a| {
            let id = format!("day:{}:{}:{}", a.subject, a.channel, a.period_start);
            let data = json!({
                "channel": a.channel, "day_start": a.period_start, "total": a.total,
                "unit": "Wh", "intervals": a.count, "quality": a.quality_worst.0,
            });
            outgoing(id, DAY_COMPLETE, &a.subject, data)
        })
        .collect()
}

/// The events of one bus record (an undecodable record gives none: the stages dead-letter it).
fn events_of(d: &BusDelivery) -> Vec<Outgoing> {
    match d.topic.as_str() {
        topics::EVENTS => d
            .decode::<Event>()
            .map(|es| es.iter().map(event_of).collect())
            .unwrap_or_default(),
        topics::JOB_RESULTS => d
            .decode::<JobResult>()
            .map(|rs| rs.iter().map(job_result_of).collect())
            .unwrap_or_default(),
        topics::READINGS_PROCESSED => d
            .decode::<hes_proto::Processed>()
            .map(|ps| ps.iter().flat_map(days_complete_of).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Whether a subscription limited to `groups` (`key=value`; none: every meter) may receive
/// data of `meter`: one of its groups is one of the meter's. A meter the registry does not
/// know goes to unrestricted subscriptions only.
pub fn in_scope(groups: &[String], meter: &MeterId, registry: &Registry) -> bool {
    if groups.is_empty() {
        return true;
    }
    let Some(m) = registry.get(meter) else {
        return false;
    };
    groups.iter().any(|g| {
        g.split_once('=')
            .is_some_and(|(k, v)| m.groups.get(k).is_some_and(|x| x == v))
    })
}

/// The deliveries of `events` for `hooks`, in the events' order.
pub fn deliveries_for(
    hooks: &[Webhook],
    events: &[Outgoing],
    registry: &Registry,
) -> Vec<NewDelivery> {
    let mut out = Vec::new();
    let mut scope: HashMap<(&str, &str), bool> = HashMap::new();
    for e in events {
        for h in hooks
            .iter()
            .filter(|h| h.events.iter().any(|k| k == e.kind))
        {
            let ok = *scope
                .entry((h.id.as_str(), e.meter.as_str()))
                .or_insert_with(|| in_scope(&h.groups, &MeterId(e.meter.clone()), registry));
            if ok {
                out.push(NewDelivery {
                    webhook: h.id.clone(),
                    event_id: e.id.clone(),
                    kind: e.kind.to_string(),
                    meter: e.meter.clone(),
                    body: e.body.to_string(),
                });
            }
        }
    }
    out
}

fn now_ms() -> i64 {
    hes_model::clock::unix_ms()
}

/// Waits `d` or until told to stop; false when told to stop.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// The fan-out: bus records in, deliveries enqueued in the store, until `stop`.
pub async fn run_fanout(
    bus: Arc<dyn Bus>,
    registry: Arc<Registry>,
    cfg: WebhookConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<(), BusError> {
    let state = registry.state().clone();
    let inputs = [
        topics::EVENTS,
        topics::JOB_RESULTS,
        topics::READINGS_PROCESSED,
    ];
    match bus
        .ensure_topics(&inputs, hes_bus::DEFAULT_PARTITIONS)
        .await
    {
        Ok(()) | Err(BusError::Unsupported(_)) => {}
        Err(e) => return Err(e),
    }
    let mut consumer = bus.subscribe(&inputs, "webhooks").await?;
    loop {
        let mut taken: Vec<BusDelivery> = Vec::new();
        let until = tokio::time::Instant::now() + cfg.linger;
        while taken.len() < cfg.batch {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let next = tokio::select! {
                d = consumer.next(left) => d,
                _ = stop.changed() => {
                    let _ = consumer.close(Duration::from_secs(5)).await;
                    return Ok(());
                }
            };
            match next {
                Ok(Some(d)) => taken.push(d),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: consuming failed; retrying");
                    break;
                }
            }
        }
        if *stop.borrow() {
            let _ = consumer.close(Duration::from_secs(5)).await;
            return Ok(());
        }
        if taken.is_empty() {
            continue;
        }
        let events: Vec<Outgoing> = taken.iter().flat_map(events_of).collect();
        // Enqueued before the offsets are committed: a crash in between replays the records,
        // and the store's unique (webhook, event id) makes that enqueue nothing twice.
        let mut attempt = 0;
        loop {
            let done = async {
                if events.is_empty() {
                    return Ok(0);
                }
                let hooks = state.webhooks().await?;
                let ds = deliveries_for(&hooks, &events, &registry);
                state.enqueue_deliveries(&ds, now_ms()).await
            }
            .await;
            match done {
                Ok(n) => {
                    if n > 0 {
                        ::metrics::counter!(crate::metrics::WEBHOOK_ENQUEUED).increment(n);
                    }
                    break;
                }
                Err(e) => {
                    attempt += 1;
                    let wait = cfg.retry.delay(attempt).min(Duration::from_secs(5));
                    tracing::warn!(error = %e, "webhooks: enqueueing failed; retrying in {wait:?}");
                    if !pause(&mut stop, wait).await {
                        let _ = consumer.close(Duration::from_secs(5)).await;
                        return Ok(());
                    }
                }
            }
        }
        let mut newest: BTreeMap<(String, i32), BusDelivery> = BTreeMap::new();
        for d in taken {
            let k = (d.topic.clone(), d.partition);
            if newest.get(&k).is_none_or(|n| n.offset < d.offset) {
                newest.insert(k, d);
            }
        }
        let newest: Vec<BusDelivery> = newest.into_values().collect();
        match consumer.commit_all(&newest).await {
            Ok(()) | Err(BusError::Rebalanced(_)) => {}
            // Redelivered later; enqueueing again is harmless.
            Err(e) => tracing::warn!(error = %e, "webhooks: commit failed"),
        }
    }
}

/// A minimal HTTP/1.1 POST (the receivers are plain HTTP endpoints; see `docs/api.md`):
/// the status, or why there is none.
/// Unless `allow_private`, only to public addresses ([`is_public`]), checked on the addresses
/// the name resolves to at this attempt and connected to as checked (a name that rebinds to
/// an internal address between the check and the connection gains nothing).
async fn post(
    url: &hyper::Uri,
    headers: Vec<(&'static str, String)>,
    body: String,
    timeout: Duration,
    allow_private: bool,
) -> Result<u16, String> {
    use http_body_util::BodyExt;
    let host = url.host().ok_or("no host in the URL")?.to_string();
    let port = url.port_u16().unwrap_or(80);
    // The Host header names the port too when it is not the default.
    let authority = url
        .authority()
        .map_or(host.clone(), |a| a.as_str().to_string());
    let path = url
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    let exchange = async {
        // An IPv6 literal comes bracketed in the URL, bare to the resolver.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| format!("resolve {bare}: {e}"))?
            .collect();
        let allowed: Vec<std::net::SocketAddr> = resolved
            .iter()
            .copied()
            .filter(|a| allow_private || is_public(a.ip()))
            .collect();
        if allowed.is_empty() {
            return Err(format!(
                "{bare} has no public address (only a subscription an admin made with \
                 allow_private may reach internal ones)"
            ));
        }
        let tcp = tokio::net::TcpStream::connect(&allowed[..])
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
        let conn = tokio::spawn(conn);
        let mut req = hyper::Request::post(path)
            .header(hyper::header::HOST, authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "hes-webhooks/1");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| format!("request: {e}"))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = resp.status().as_u16();
        // The answer's body is not used, but read (bounded by the timeout) so the exchange
        // completes cleanly.
        let _ = resp.into_body().collect().await;
        conn.abort();
        Ok(status)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

/// Sends one claimed delivery: the outcome to record.
async fn attempt(hook: &Webhook, secret: &[u8], d: &Delivery, cfg: &WebhookConfig) -> Outcome {
    let t = hes_model::clock::unix_now();
    let headers = vec![
        (SIGNATURE_HEADER, sign(secret, t, d.body.as_bytes())),
        (ID_HEADER, d.event_id.clone()),
        (KIND_HEADER, d.kind.clone()),
    ];
    let sent = match hook.url.parse::<hyper::Uri>() {
        Ok(u) => post(&u, headers, d.body.clone(), cfg.timeout, hook.allow_private).await,
        Err(e) => Err(format!("url: {e}")),
    };
    let (status, error) = match sent {
        Ok(s) if (200..300).contains(&s) => return Outcome::Delivered { status: s },
        Ok(s) => (Some(s), format!("the receiver answered {s}")),
        Err(e) => (None, e),
    };
    let retry_at = (d.attempts < hook.max_attempts).then(|| {
        let wait = cfg.retry.delay(d.attempts);
        now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
    });
    Outcome::Failed {
        status,
        error,
        retry_at,
    }
}

/// The delivery worker: claims due deliveries and sends them, at most `cfg.concurrency` at
/// once, until `stop`.
pub async fn run_deliveries(
    registry: Arc<Registry>,
    cfg: WebhookConfig,
    mut stop: watch::Receiver<bool>,
) {
    let state: Arc<dyn StateStore> = registry.state().clone();
    let kek = registry.kek();
    // Longer than any attempt: a claim outlives its attempt unless the node died.
    let lease_ms = i64::try_from((cfg.timeout * 3).as_millis()).unwrap_or(60_000);
    let mut inflight: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    let mut hooks: HashMap<String, (Webhook, Arc<Vec<u8>>)> = HashMap::new();
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        let free = cfg.concurrency.max(1).saturating_sub(inflight.len());
        let mut claimed = Vec::new();
        if free > 0 {
            match state
                .claim_deliveries(&cfg.node, now_ms(), lease_ms, free)
                .await
            {
                Ok(c) => {
                    failures = 0;
                    claimed = c;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "webhooks: claiming failed");
                    if !pause(&mut stop, cfg.retry.delay(failures).min(cfg.poll * 10)).await {
                        break;
                    }
                    continue;
                }
            }
        }
        if claimed.iter().any(|d| !hooks.contains_key(&d.webhook)) {
            match state.webhooks().await {
                Ok(list) => {
                    hooks = list
                        .into_iter()
                        .filter_map(|h| {
                            let open = kek.open(
                                &Sealed::from_stored(h.secret.clone()),
                                &seal_context(&h.id),
                            );
                            match open {
                                Ok(s) => {
                                    let s = Arc::new(s.expose().to_vec());
                                    Some((h.id.clone(), (h, s)))
                                }
                                Err(e) => {
                                    tracing::error!(webhook = %h.id, error = %e, "webhook secret does not open");
                                    None
                                }
                            }
                        })
                        .collect();
                }
                Err(e) => tracing::warn!(error = %e, "webhooks: listing failed"),
            }
        }
        for d in claimed {
            let Some((hook, secret)) = hooks.get(&d.webhook).cloned() else {
                // Deleted meanwhile (its deliveries went with it), or its secret does not
                // open: the claim lapses; nothing is sent unsigned.
                continue;
            };
            let (state, cfg) = (state.clone(), cfg.clone());
            inflight.spawn(async move {
                let t = std::time::Instant::now();
                let outcome = attempt(&hook, &secret, &d, &cfg).await;
                let label = match &outcome {
                    Outcome::Delivered { .. } => "delivered",
                    Outcome::Failed { retry_at: Some(_), .. } => "retry",
                    Outcome::Failed { retry_at: None, .. } => "dead",
                };
                ::metrics::counter!(crate::metrics::WEBHOOK_ATTEMPTS, "outcome" => label)
                    .increment(1);
                ::metrics::histogram!(crate::metrics::WEBHOOK_DURATION)
                    .record(t.elapsed().as_secs_f64());
                if label == "dead" {
                    tracing::warn!(webhook = %hook.id, event = %d.event_id, "webhook delivery dead after {} attempts", d.attempts);
                }
                // Recorded until the store takes it; the claim keeps the delivery ours
                // meanwhile (and lapses, to be sent again, if this node dies).
                let mut n = 0;
                while let Err(e) = state
                    .finish_delivery(d.id, &cfg.node, &outcome, now_ms())
                    .await
                {
                    n += 1;
                    tracing::warn!(error = %e, "webhooks: recording an outcome failed");
                    tokio::time::sleep(cfg.retry.delay(n).min(Duration::from_secs(5))).await;
                }
            });
        }
        if inflight.is_empty() {
            if !pause(&mut stop, cfg.poll).await {
                break;
            }
            continue;
        }
        // Claim again as soon as a slot frees, or after a poll interval for new work.
        tokio::select! {
            _ = inflight.join_next() => {}
            _ = tokio::time::sleep(cfg.poll) => {}
            _ = stop.changed() => break,
        }
    }
    // Attempts under way finish (bounded by the timeout) so their outcomes are recorded.
    while inflight.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signatures_verify_and_refuse_tampering() {
        let body = br#"{"id":"event:M1:0.0.99.98.0.255:5:7"}"#;
        let h = sign(b"secret", 1_800_000_000, body);
        assert!(h.starts_with("t=1800000000,v1="));
        assert!(verify(b"secret", &h, body, 1_800_000_100, 300));
        assert!(!verify(b"other", &h, body, 1_800_000_100, 300));
        assert!(!verify(b"secret", &h, b"{}", 1_800_000_100, 300));
        assert!(!verify(b"secret", &h, body, 1_800_001_000, 300), "too old");
        assert!(!verify(b"secret", "v1=00", body, 1_800_000_000, 300));
        // The value docs/api.md shows (computed there with Python's hmac module), so a
        // receiver in any language can check its implementation against it.
        assert_eq!(
            sign(b"whsec_test", 1_700_000_000, b"{\"id\":\"x\"}"),
            "t=1700000000,v1=80e8d098018f757aa814ab1abb924f35d304affa1d93d29611a54696207eb7c3"
        );
    }

    #[test]
    fn only_public_addresses_without_allow_private() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in ["203.0.113.10", "8.8.8.8", "2001:4860:4860::8888"] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
    }
}
