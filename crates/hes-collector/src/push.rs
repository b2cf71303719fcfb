//! The push listener: meters connect and send data notifications (interval data and alarms),
//! which become readings and events on the bus.
//!
//! Security by default: a push must be general-glo-ciphering (0xDB), authenticated and
//! encrypted under the keys of the meter whose system title it carries, with an invocation
//! counter that the listener has not accepted from that meter before. Replay protection is a
//! sliding window (as in IPsec): counters above the highest accepted pass, and so do the
//! not-yet-seen ones among the 64 below it, because a meter's pushes travel over separate
//! connections and overtake each other (a tamper raises two alarms at once); anything older
//! or seen is a replay. The window lives in the state store
//! (`StateStore::accept_push_counter`), so it holds across restarts and across listeners
//! behind a load balancer: of two listeners given the same push, one accepts it. Everything
//! else is rejected, counted in [`PushStats`] and logged (never with key material).
//!
//! Bounded throughout: connections by a semaphore (beyond it a connection is closed at once),
//! idle connections by a timeout, frames by `max_frame`, the read buffer by a fixed size, and
//! the replay state by the registry (one small row per meter that has authenticated).
//!
//! At-least-once: a push is counted as received only once its readings and events are on the
//! bus. When the bus refuses, the push's invocation counter is released again so that a
//! re-sent copy is still accepted.

use hes_model::clock::unix_now;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dlms::security::{CipherKeys, SecurityContext, SecurityError};
use dlms::wrapper::{Deframer, WrapperFrame};
use dlms::xdlms::{Apdu, DataNotification};
use dlms::{Codec, Data, DateTime, ObisCode, SecurityLevel, SystemTitle};
use hes_model::{Event, MeterId, Reading, Source};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::bus::{publish_events, publish_readings, Bus};
use crate::metrics;
use crate::registry::{MeterRecord, Registry};

/// The wrapper port pushes are addressed to (the IDIS push client).
pub const PUSH_WPORT: u16 = 102;
/// The alarm push setup: the `log` of the events alarm pushes become.
pub const ALARM_PUSH_SETUP: ObisCode = ObisCode::new(0, 0, 25, 9, 1, 255);
/// The alarm register an alarm push carries.
pub const ALARM_REGISTER: ObisCode = ObisCode::new(0, 0, 97, 98, 0, 255);
/// The registers of an interval push, in body order, with their units (Wh, Wh, varh, varh).
pub const INTERVAL_REGISTERS: [(ObisCode, u8); 4] = [
    (ObisCode::new(1, 0, 1, 8, 0, 255), 30),
    (ObisCode::new(1, 0, 2, 8, 0, 255), 30),
    (ObisCode::new(1, 0, 3, 8, 0, 255), 32),
    (ObisCode::new(1, 0, 4, 8, 0, 255), 32),
];

/// general-glo-ciphering.
const GENERAL_GLO_CIPHERING: u8 = 0xDB;
/// Our own system title (only used to build the deciphering context; pushes are not answered).
const OWN_TITLE: SystemTitle = SystemTitle(*b"HES-PUSH");
/// Bytes read from a socket at once.
const READ_CHUNK: usize = 8 * 1024;

/// Limits of the push listener.
#[derive(Debug, Clone)]
pub struct PushListenerConfig {
    /// Connections served at once; beyond that a new connection is closed at once.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// The largest APDU a wrapper frame may announce (at most 65,535, the wrapper's limit); a
    /// larger one ends the connection.
    pub max_frame: usize,
    /// Where the listener counts what it did: clone it before passing the config to
    /// [`serve_pushes`] to read the counters while it runs.
    pub stats: Arc<PushStats>,
}

impl Default for PushListenerConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(30),
            max_frame: 64 * 1024,
            stats: Arc::new(PushStats::default()),
        }
    }
}

/// What the push listener did, counted as it goes (read with [`PushStats::get`]).
#[derive(Debug, Default)]
pub struct PushStats {
    /// Connections accepted and served.
    pub connections: AtomicU64,
    /// Connections closed at once because `max_connections` were being served.
    pub connections_turned_away: AtomicU64,
    /// Pushes accepted and published.
    pub notifications: AtomicU64,
    pub readings: AtomicU64,
    pub events: AtomicU64,
    /// No meter in the registry has the push's system title.
    pub rejected_unknown_meter: AtomicU64,
    /// Not deciphered: wrong keys, tampered bytes, weaker protection than authenticated and
    /// encrypted (plain or authentication-only pushes), or the meter's keys could not be opened.
    pub rejected_crypto: AtomicU64,
    /// An invocation counter already accepted from the meter (or older than the window).
    pub rejected_replay: AtomicU64,
    /// Not a push: bad wrapper header or port, not general-glo-ciphering, not a data
    /// notification, an unknown body layout, a logical device name of another meter, a
    /// partial frame at the end of a connection.
    pub rejected_malformed: AtomicU64,
    /// Pushes deciphered and decoded that the bus refused (not counted as notifications).
    pub bus_failures: AtomicU64,
    /// Pushes whose invocation counter could not be checked because the state store did not
    /// answer (not accepted: the meter sends them again).
    pub store_failures: AtomicU64,
}

impl PushStats {
    /// One counter's current value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What every connection task shares.
struct Shared {
    registry: Arc<Registry>,
    bus: Arc<dyn Bus>,
    stats: Arc<PushStats>,
    idle_timeout: Duration,
    max_frame: usize,
}

/// Serves pushes on `listener` until `shutdown` turns true (or its sender is dropped), then
/// waits (at most `idle_timeout`) for the connections being served to finish. Counters are in
/// `cfg.stats`. Accept errors (e.g. out of file descriptors) are logged and retried, so this
/// returns `Ok` at shutdown.
pub async fn serve_pushes(
    listener: TcpListener,
    registry: Arc<Registry>,
    bus: Arc<dyn Bus>,
    cfg: PushListenerConfig,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let max = cfg
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let permits = Arc::new(Semaphore::new(max));
    let shared = Arc::new(Shared {
        registry,
        bus,
        stats: cfg.stats.clone(),
        idle_timeout: cfg.idle_timeout,
        max_frame: cfg.max_frame.min(dlms::wrapper::MAX_APDU_LEN),
    });
    while !*shutdown.borrow() {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        PushStats::add(&shared.stats.connections, 1);
                        ::metrics::counter!(metrics::PUSH_CONNECTIONS, "outcome" => "accepted").increment(1);
                        let shared = shared.clone();
                        let shutdown = shutdown.clone();
                        tokio::spawn(async move {
                            serve_connection(stream, peer, &shared, shutdown).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        PushStats::add(&shared.stats.connections_turned_away, 1);
                        ::metrics::counter!(metrics::PUSH_CONNECTIONS, "outcome" => "turned_away").increment(1);
                        tracing::warn!(%peer, max, "push connection turned away: too many connections");
                        drop(stream);
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a push connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    // Let connections in the middle of a publish finish it.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(cfg.idle_timeout, permits.acquire_many(all)).await;
    Ok(())
}

/// Reads frames from one connection until it closes, idles, fails or the listener stops.
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut deframer = Deframer::new(shared.max_frame);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let read = tokio::select! {
            _ = shutdown.changed() => return,
            r = tokio::time::timeout(shared.idle_timeout, stream.read(&mut buf)) => r,
        };
        let n = match read {
            Err(_) => {
                tracing::debug!(%peer, "push connection idle: closed");
                break;
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "push connection failed");
                break;
            }
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => n,
        };
        deframer.push(buf.get(..n).unwrap_or_default());
        loop {
            match deframer.next_frame() {
                Ok(Some(frame)) => handle_frame(shared, peer, frame).await,
                Ok(None) => break,
                Err(e) => {
                    PushStats::add(&shared.stats.rejected_malformed, 1);
                    rejected("malformed");
                    tracing::warn!(%peer, error = %e, "bad wrapper frame: connection closed");
                    return;
                }
            }
        }
    }
    if deframer.buffered() > 0 {
        PushStats::add(&shared.stats.rejected_malformed, 1);
        rejected("malformed");
        tracing::warn!(%peer, bytes = deframer.buffered(), "push connection ended inside a frame");
    }
}

fn rejected(reason: &'static str) {
    ::metrics::counter!(metrics::PUSH_REJECTED, "reason" => reason).increment(1);
}

/// Why a push was not accepted.
#[derive(Debug)]
enum Reject {
    UnknownMeter([u8; 8]),
    Crypto(String),
    Replay(u32),
    Malformed(&'static str),
    Bus(String),
    Store(String),
}

async fn handle_frame(shared: &Shared, peer: SocketAddr, frame: WrapperFrame) {
    let stats = &shared.stats;
    match accept_push(shared, &frame).await {
        Ok((meter, readings, events)) => {
            PushStats::add(&stats.notifications, 1);
            PushStats::add(&stats.readings, readings as u64);
            PushStats::add(&stats.events, events as u64);
            ::metrics::counter!(metrics::PUSH_RECEIVED).increment(1);
            ::metrics::counter!(metrics::PUSH_READINGS).increment(readings as u64);
            ::metrics::counter!(metrics::PUSH_EVENTS).increment(events as u64);
            tracing::debug!(%peer, %meter, readings, events, "push received");
        }
        Err(reject) => {
            rejected(match &reject {
                Reject::UnknownMeter(_) => "unknown_meter",
                Reject::Crypto(_) => "crypto",
                Reject::Replay(_) => "replay",
                Reject::Malformed(_) => "malformed",
                Reject::Bus(_) => "bus",
                Reject::Store(_) => "store",
            });
            let (counter, what, detail) = match reject {
                Reject::UnknownMeter(title) => (
                    &stats.rejected_unknown_meter,
                    "unknown system title",
                    hex::encode_upper(title),
                ),
                Reject::Crypto(d) => (&stats.rejected_crypto, "not deciphered", d),
                Reject::Replay(ic) => (
                    &stats.rejected_replay,
                    "replayed",
                    format!("invocation counter {ic}"),
                ),
                Reject::Malformed(d) => (&stats.rejected_malformed, "malformed", d.to_string()),
                Reject::Bus(d) => (&stats.bus_failures, "not published", d),
                Reject::Store(d) => (&stats.store_failures, "not checked", d),
            };
            PushStats::add(counter, 1);
            tracing::warn!(%peer, %detail, "push rejected: {what}");
        }
    }
}

/// Deciphers, checks, decodes and publishes one push; returns the meter and how many readings
/// and events it gave.
async fn accept_push(
    shared: &Shared,
    frame: &WrapperFrame,
) -> Result<(MeterId, usize, usize), Reject> {
    if frame.destination != PUSH_WPORT {
        return Err(Reject::Malformed(
            "wrapper destination is not the push port",
        ));
    }
    let apdu = frame.apdu.as_slice();
    match apdu.first() {
        Some(&GENERAL_GLO_CIPHERING) => {}
        // A plain data-notification, or another ciphering: not the protection required.
        Some(&tag) if tag == 0x0F || dlms::security::is_ciphered(tag) => {
            return Err(Reject::Crypto(format!(
                "APDU tag 0x{tag:02X}, general-glo-ciphering required"
            )))
        }
        _ => return Err(Reject::Malformed("not general-glo-ciphering")),
    }
    let title: [u8; 8] = match (apdu.get(1), apdu.get(2..10)) {
        (Some(8), Some(t)) => t
            .try_into()
            .map_err(|_| Reject::Malformed("system title"))?,
        _ => return Err(Reject::Malformed("no 8-byte system title")),
    };
    let record = shared
        .registry
        .find_by_system_title(&title)
        .await
        .ok_or(Reject::UnknownMeter(title))?;
    let keys = shared
        .registry
        .open_keys(&record)
        .map_err(|e| Reject::Crypto(format!("meter {}: keys not opened: {e}", record.id)))?;
    let mut ctx = SecurityContext::new(
        SecurityLevel::AuthenticatedEncrypted,
        OWN_TITLE,
        CipherKeys {
            ek: keys.ek,
            ak: keys.ak,
        },
        1,
    );
    drop(keys);
    ctx.peer_system_title = Some(SystemTitle(title));
    let plain = ctx.unprotect(apdu).map_err(|e| match e {
        SecurityError::Decode(_) => Reject::Malformed("general-glo-ciphering envelope"),
        e => Reject::Crypto(format!("meter {}: {e}", record.id)),
    })?;
    if plain.level != SecurityLevel::AuthenticatedEncrypted || plain.dedicated {
        return Err(Reject::Crypto(format!(
            "meter {}: protection {:?}",
            record.id, plain.level
        )));
    }
    let ic = plain.invocation_counter;
    let state = shared.registry.state();
    match state.accept_push_counter(&record.id, ic).await {
        Ok(true) => {}
        Ok(false) => return Err(Reject::Replay(ic)),
        // Unchecked is not accepted: the meter sends it again (its push retries).
        Err(e) => return Err(Reject::Store(e.to_string())),
    }
    let result = decode_and_publish(shared, &record, &plain.apdu).await;
    if matches!(result, Err(Reject::Bus(_))) {
        if let Err(e) = state.release_push_counter(&record.id, ic).await {
            tracing::warn!(meter = %record.id, ic, error = %e,
                "a push that was not published keeps its counter: a resent copy will be refused");
        }
    }
    result.map(|(r, e)| (record.id.clone(), r, e))
}

async fn decode_and_publish(
    shared: &Shared,
    record: &MeterRecord,
    plain: &[u8],
) -> Result<(usize, usize), Reject> {
    let notification = match Apdu::decode_exact(plain) {
        Ok(Apdu::DataNotification(n)) => n,
        Ok(_) => return Err(Reject::Malformed("not a data-notification")),
        Err(_) => return Err(Reject::Malformed("undecodable APDU")),
    };
    let (readings, events) = map_notification(record, &notification, unix_now())?;
    publish_readings(shared.bus.as_ref(), &readings)
        .await
        .map_err(|e| Reject::Bus(e.to_string()))?;
    publish_events(shared.bus.as_ref(), &events)
        .await
        .map_err(|e| Reject::Bus(e.to_string()))?;
    // An interval push on the bus: the meter has this interval (`crate::gaps` reads by pull the
    // ones that never come). A meter clock far ahead is not taken as the meter's progress.
    if let Some(time) = readings
        .iter()
        .find(|r| r.class_id == 3)
        .map(|r| r.time)
        .filter(|&t| t <= unix_now() + crate::gaps::FUTURE_TOLERANCE_S)
    {
        if let Err(e) = shared
            .registry
            .state()
            .note_pushed_interval(&record.id, time)
            .await
        {
            // Published already: at worst the interval is read again by pull.
            tracing::warn!(meter = %record.id, error = %e, "noting a pushed interval");
        }
    }
    Ok((readings.len(), events.len()))
}

/// A date-time octet-string as Unix seconds.
fn unix_time(octets: &[u8]) -> Option<i64> {
    DateTime::from_octets(octets).ok()?.to_unix()
}

/// An unsigned integer value of any width.
fn unsigned(d: &Data) -> Option<i64> {
    match *d {
        Data::Unsigned(v) => Some(i64::from(v)),
        Data::LongUnsigned(v) => Some(i64::from(v)),
        Data::DoubleLongUnsigned(v) => Some(i64::from(v)),
        Data::Long64Unsigned(v) => i64::try_from(v).ok(),
        _ => None,
    }
}

/// The readings and events of a push: the interval layout {LDN, clock, A+, A-, R+, R-} or the
/// alarm layout {LDN, clock, alarm register, event code}.
fn map_notification(
    record: &MeterRecord,
    n: &DataNotification,
    received_at: i64,
) -> Result<(Vec<Reading>, Vec<Event>), Reject> {
    let Data::Structure(body) = &n.body else {
        return Err(Reject::Malformed("body is not a structure"));
    };
    let (Some(Data::OctetString(ldn)), Some(clock)) = (body.first(), body.get(1)) else {
        return Err(Reject::Malformed("body does not start with LDN and clock"));
    };
    if ldn.as_slice() != record.logical_device_name.as_bytes() {
        return Err(Reject::Malformed("logical device name of another meter"));
    }
    let clock = match clock {
        Data::OctetString(o) => unix_time(o),
        Data::DateTime(d) => d.to_unix(),
        _ => None,
    };
    let stamped = n.date_time.as_deref().and_then(unix_time);
    let reading = |obis, class_id, value, unit, time| Reading {
        meter: record.id.clone(),
        obis,
        class_id,
        attribute: 2,
        time,
        value,
        scaler: 0,
        unit,
        status: 0,
        source: Source::Push,
        received_at,
    };
    match body.len() {
        6 => {
            let time = stamped
                .or(clock)
                .ok_or(Reject::Malformed("no valid time"))?;
            let readings = INTERVAL_REGISTERS
                .iter()
                .zip(body.iter().skip(2))
                .map(|(&(obis, unit), v)| {
                    unsigned(v)
                        .map(|value| reading(obis, 3, value, unit, time))
                        .ok_or(Reject::Malformed(
                            "register value is not an unsigned integer",
                        ))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((readings, Vec::new()))
        }
        4 => {
            let time = clock
                .or(stamped)
                .ok_or(Reject::Malformed("no valid time"))?;
            let register = body.get(2).and_then(unsigned).ok_or(Reject::Malformed(
                "alarm register is not an unsigned integer",
            ))?;
            let code = body
                .get(3)
                .and_then(unsigned)
                .and_then(|c| u16::try_from(c).ok())
                .ok_or(Reject::Malformed("event code is not a long-unsigned"))?;
            let event = Event {
                meter: record.id.clone(),
                log: ALARM_PUSH_SETUP,
                time,
                code,
                source: Source::Push,
                received_at,
            };
            Ok((
                vec![reading(ALARM_REGISTER, 1, register, 255, time)],
                vec![event],
            ))
        }
        _ => Err(Reject::Malformed("unknown push layout")),
    }
}
