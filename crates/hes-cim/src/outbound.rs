//! Delivery to the MDM: `created MeterReadings` for each meter's complete day and
//! `created EndDeviceEvents` for each event as it arrives, as EventMessages POSTed to the
//! configured endpoint. Every API node runs this; the items live in the store's queue
//! (hes_store::CimOutbox), so any node delivers them, a node killed mid-send loses nothing
//! (its claims run out and another node takes them), a failure is retried with backoff and an
//! item that fails `max_attempts` times is kept as a dead letter. Delivery is at least once:
//! the MessageID is the item's key, the same on every attempt, for the MDM to drop repeats.

use std::sync::Arc;
use std::time::Duration;

use hes_model::MeterId;
use hes_store::{CimOutbox, OutboxItem, OutboxKind, Store};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls;

use crate::message::event_message;
use crate::payload::{end_device_events_xml, meter_readings_xml};
use crate::xml::parse;

/// Settings of the delivery (the node's `[cim]` section).
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// `http://host:port/path` or `https://…`.
    pub url: String,
    /// The `Authorization` header's value sent with every message (none: no header).
    pub authorization: Option<String>,
    /// The CA certificates (PEM) an `https` endpoint's certificate must chain to.
    pub ca_file: Option<std::path::PathBuf>,
    /// This node's name (who holds a claim).
    pub node: String,
    pub events: bool,
    pub readings: bool,
    /// A day is sent this long after it ended (late readings still arrive).
    pub day_delay_s: i64,
    /// Attempts per item before it is a dead letter.
    pub max_attempts: u32,
    pub backoff_base_s: i64,
    pub backoff_max_s: i64,
    /// How long a claim holds (longer than one delivery takes).
    pub lease_s: i64,
    /// How often the queue is looked at.
    pub poll: Duration,
    /// Longest one POST may take.
    pub timeout: Duration,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            authorization: None,
            ca_file: None,
            node: "hes".into(),
            events: true,
            readings: true,
            day_delay_s: 2 * 3600,
            max_attempts: 12,
            backoff_base_s: 10,
            backoff_max_s: 3600,
            lease_s: 120,
            poll: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Events are queued again from this long before the cursor: one stored late (the pipeline
/// lags its arrival) is still found; one already queued is not queued twice.
const EVENT_OVERLAP_S: i64 = 15 * 60;
/// Days missed (all nodes down) are caught up this far back at most.
const MAX_DAYS_BACK: i64 = 7;
/// Items claimed per round.
const BATCH: usize = 50;
/// The producers' cursors in the store.
const EVENTS_CURSOR: &str = "events";
const DAYS_CURSOR: &str = "days";

/// The delivery's parts.
pub struct Outbound {
    pub cfg: OutboundConfig,
    pub outbox: Arc<dyn CimOutbox>,
    pub store: Arc<dyn Store>,
    /// The meters a day is sent for (the registry's, decommissioned ones left out).
    pub meters: Arc<dyn Fn() -> Vec<MeterId> + Send + Sync>,
    /// An event code's text (the API's table).
    pub describe: fn(u16) -> String,
    target: Target,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Where messages go, parsed once.
#[derive(Clone)]
struct Target {
    host: String,
    port: u16,
    /// Path and query.
    path: String,
    tls: Option<tokio_rustls::TlsConnector>,
}

fn target(cfg: &OutboundConfig) -> Result<Target, String> {
    let (tls, rest) = if let Some(r) = cfg.url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = cfg.url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("cim.mdm_url {}: http:// or https://", cfg.url));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(rest), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    };
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = match authority.strip_prefix('[') {
        // An IPv6 literal: [addr] or [addr]:port.
        Some(v6) => {
            let (h, rest) = v6
                .split_once(']')
                .ok_or_else(|| format!("cim.mdm_url: bad host {authority}"))?;
            let port = match rest.strip_prefix(':') {
                Some(p) => p
                    .parse::<u16>()
                    .map_err(|_| format!("cim.mdm_url: bad port {p}"))?,
                None => default_port,
            };
            (h.to_string(), port)
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| format!("cim.mdm_url: bad port {p}"))?,
            ),
            None => (authority.to_string(), default_port),
        },
    };
    if host.is_empty() {
        return Err("cim.mdm_url has no host".into());
    }
    let tls = if tls {
        let ca = cfg
            .ca_file
            .as_ref()
            .ok_or("an https cim.mdm_url needs cim.ca_file (the CA certificates, PEM)")?;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca)
            .map_err(|e| format!("cim.ca_file {}: {e}", ca.display()))?
        {
            let c = c.map_err(|e| format!("cim.ca_file {}: {e}", ca.display()))?;
            roots
                .add(c)
                .map_err(|e| format!("cim.ca_file {}: {e}", ca.display()))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
    } else {
        None
    };
    Ok(Target {
        host,
        port,
        path: path.to_string(),
        tls,
    })
}

/// The MDM's answer to one message: accepted, or why not.
async fn post(
    t: &Target,
    authorization: Option<&str>,
    body: String,
    timeout: Duration,
) -> Result<(), String> {
    let run = async {
        let tcp = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let host = if (t.tls.is_some() && t.port == 443) || (t.tls.is_none() && t.port == 80) {
            t.host.clone()
        } else {
            format!("{}:{}", t.host, t.port)
        };
        let req = hyper::Request::post(t.path.as_str())
            .header(hyper::header::HOST, host)
            .header(
                hyper::header::CONTENT_TYPE,
                "application/xml; charset=utf-8",
            );
        let req = match authorization {
            Some(a) => req.header(hyper::header::AUTHORIZATION, a),
            None => req,
        };
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = match &t.tls {
            Some(tls) => {
                let name = ServerName::try_from(t.host.clone())
                    .map_err(|e| format!("server name {}: {e}", t.host))?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                send(TokioIo::new(stream), req).await?
            }
            None => send(TokioIo::new(tcp), req).await?,
        };
        let status = resp.status();
        // The answer is read within a bound: only a refusal in it matters.
        let body = http_body_util::Limited::new(resp.into_body(), 64 << 10)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        // A ResponseMessage that says FAILED is a refusal, whatever the HTTP status.
        if let Ok(root) = parse(&body) {
            if root.name == "ResponseMessage" {
                let reply = root.child("Reply");
                if reply.and_then(|r| r.child_text("Result")) == Some("FAILED") {
                    let why = reply
                        .and_then(|r| r.child("Error"))
                        .map(|e| {
                            format!(
                                "{} {}",
                                e.child_text("code").unwrap_or(""),
                                e.child_text("reason").unwrap_or("")
                            )
                        })
                        .unwrap_or_default();
                    return Err(format!("the MDM replied FAILED: {why}"));
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| "timed out".to_string())?
}

async fn send<I>(
    io: I,
    req: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP: {e}"))
}

/// The UTC day (its start) that ended at least `delay_s` before `now`.
pub fn last_complete_day(now: i64, delay_s: i64) -> i64 {
    (now - delay_s).div_euclid(86_400) * 86_400 - 86_400
}

impl Outbound {
    pub fn new(
        cfg: OutboundConfig,
        outbox: Arc<dyn CimOutbox>,
        store: Arc<dyn Store>,
        meters: Arc<dyn Fn() -> Vec<MeterId> + Send + Sync>,
        describe: fn(u16) -> String,
    ) -> Result<Self, String> {
        let target = target(&cfg)?;
        if u64::try_from(cfg.lease_s).unwrap_or(0) <= cfg.timeout.as_secs() {
            return Err(format!(
                "cim.lease_s ({}) must be longer than cim.timeout_s ({})",
                cfg.lease_s,
                cfg.timeout.as_secs()
            ));
        }
        if cfg.max_attempts == 0 {
            return Err("cim.max_attempts must be at least 1".into());
        }
        Ok(Self {
            cfg,
            outbox,
            store,
            meters,
            describe,
            target,
        })
    }

    /// Until `shutdown`: queue what is new, deliver what is due.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            let now = hes_model::clock::unix_now();
            if let Err(e) = self.produce(now).await {
                tracing::warn!(error = %e, "cim outbound: queueing");
            }
            let busy = match self.deliver(now).await {
                Ok(n) => n == BATCH,
                Err(e) => {
                    tracing::warn!(error = %e, "cim outbound: delivering");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.poll) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Queues the events that arrived since the cursor and the days completed since the
    /// last one queued (the store drops repeats: every node may do this).
    pub async fn produce(&self, now: i64) -> Result<(), hes_store::StoreError> {
        if self.cfg.events {
            let cursor = self.outbox.cim_cursor(EVENTS_CURSOR).await?.unwrap_or(now);
            self.outbox
                .cim_enqueue_events(cursor - EVENT_OVERLAP_S, now, now)
                .await?;
            self.outbox.cim_set_cursor(EVENTS_CURSOR, now).await?;
        }
        if self.cfg.readings {
            let last = last_complete_day(now, self.cfg.day_delay_s);
            let first = match self.outbox.cim_cursor(DAYS_CURSOR).await? {
                Some(c) => (c + 86_400).max(last - (MAX_DAYS_BACK - 1) * 86_400),
                None => last,
            };
            let mut day = first;
            while day <= last {
                let meters = (self.meters)();
                self.outbox.cim_enqueue_day(day, &meters, now).await?;
                self.outbox.cim_set_cursor(DAYS_CURSOR, day).await?;
                day += 86_400;
            }
        }
        Ok(())
    }

    /// The message an item sends (`None`: nothing to send, a day without readings).
    pub async fn message(&self, item: &OutboxItem, now: i64) -> Result<Option<String>, String> {
        Ok(match item.kind {
            OutboxKind::Event => {
                let e = crate::build::device_event(
                    &item.meter.0,
                    &item.log,
                    item.time,
                    item.code,
                    self.describe,
                );
                Some(event_message(
                    "EndDeviceEvents",
                    &end_device_events_xml(&[e]),
                    &item.key,
                    now,
                ))
            }
            OutboxKind::Day => {
                let (start, end) = (item.time, item.time + 86_400);
                let rows = self
                    .store
                    .meter_readings(&item.meter, None, start - 900, end, hes_store::MAX_PAGE)
                    .await
                    .map_err(|e| format!("the store: {e}"))?;
                let mr = crate::build::meter_reading(&item.meter.0, &rows, start, end, &[]);
                if mr.readings.is_empty() && mr.blocks.is_empty() {
                    None
                } else {
                    Some(event_message(
                        "MeterReadings",
                        &meter_readings_xml(&[mr]),
                        &item.key,
                        now,
                    ))
                }
            }
        })
    }

    /// Claims due items and sends them; returns how many were claimed.
    pub async fn deliver(&self, now: i64) -> Result<usize, hes_store::StoreError> {
        let items = self
            .outbox
            .cim_claim(&self.cfg.node, now, self.cfg.lease_s, BATCH)
            .await?;
        let started = std::time::Instant::now();
        // Items left when the claim could run out before one more send are not tried: their
        // claims lapse and the next round (here or on another node) takes them, so an item is
        // never sent by two nodes at once because of a slow MDM.
        let budget = Duration::from_secs(u64::try_from(self.cfg.lease_s).unwrap_or(0))
            .saturating_sub(self.cfg.timeout);
        for item in &items {
            if started.elapsed() > budget {
                break;
            }
            let sent = match self.message(item, now).await {
                Ok(None) => Ok(()),
                Ok(Some(body)) => {
                    post(
                        &self.target,
                        self.cfg.authorization.as_deref(),
                        body,
                        self.cfg.timeout,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            let now = hes_model::clock::unix_now().max(now);
            match sent {
                Ok(()) => self.outbox.cim_delivered(&item.key, now).await?,
                Err(e) => {
                    let dead = item.attempts + 1 >= self.cfg.max_attempts;
                    let wait = self
                        .cfg
                        .backoff_base_s
                        .saturating_mul(1i64 << item.attempts.min(20))
                        .min(self.cfg.backoff_max_s);
                    if dead {
                        tracing::warn!(item = %item.key, error = %e, "cim outbound: a dead letter after {} attempts", item.attempts + 1);
                    }
                    self.outbox
                        .cim_failed(&item.key, &e, now + wait, dead, now)
                        .await?;
                }
            }
        }
        Ok(items.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The loop can run on a spawned task.
    #[allow(dead_code)]
    fn run_is_send(o: Outbound, stop: tokio::sync::watch::Receiver<bool>) {
        fn send<T: Send + 'static>(_: T) {}
        send(o.run(stop));
    }

    #[test]
    fn targets_and_days() {
        let t = target(&OutboundConfig {
            url: "http://mdm.example:8081/cim/in?x=1".into(),
            ..OutboundConfig::default()
        })
        .unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("mdm.example", 8081, "/cim/in?x=1")
        );
        let t = target(&OutboundConfig {
            url: "http://[::1]".into(),
            ..OutboundConfig::default()
        })
        .unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("::1", 80, "/"));
        assert!(
            target(&OutboundConfig {
                url: "https://mdm".into(),
                ..OutboundConfig::default()
            })
            .is_err(),
            "https needs a CA file"
        );
        assert!(target(&OutboundConfig {
            url: "ftp://mdm".into(),
            ..OutboundConfig::default()
        })
        .is_err());
        // 2026-01-02 03:00 UTC, two hours' delay: 2026-01-01 is complete.
        let jan2 = 1_767_312_000;
        assert_eq!(last_complete_day(jan2 + 3 * 3600, 7200), jan2 - 86_400);
        assert_eq!(last_complete_day(jan2 + 3600, 7200), jan2 - 2 * 86_400);
    }
}
