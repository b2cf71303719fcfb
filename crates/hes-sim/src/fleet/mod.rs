//! A fleet of simulated meters in one process: each meter its own TCP endpoint, its own keys,
//! data, quirks and faults; an inventory for the head-end; pushes; and the ground truth.
//!
//! Addressing (see `docs/simulator.md`): by default every meter has its own loopback address
//! (127.1.0.1, 127.1.0.2, …) and listens on the DLMS port 4059, as field meters each have their
//! own IP. Linux routes all of 127.0.0.0/8 to the loopback interface, so no set-up is needed.
//! One listening socket per meter keeps "connection refused" a true refusal; the process raises
//! its open-file limit to fit the fleet.

mod push;
mod spec;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dlms::hdlc::{HdlcParams, ServerAddress};
use dlms::link::TransportConfig;
use dlms::security::{CipherKeys, EccConfig};
use dlms::server::{ClientPolicy, Objects, ServerConfig};
use dlms::xdlms::Conformance;
use dlms::{Authentication, SecurityLevel, SystemTitle};
use dlms_net::{MeterHandle, SessionOptions};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use crate::faults::{pick, Faults};
pub use crate::make::{ClientSaps, Quirks};
pub use crate::meter::PushKind;
pub use push::PushConfig;
pub use spec::{
    address, derive_keys, inventory_entry, to_csv, Addressing, Endpoint, InventoryEntry, MeterSpec,
    Role, Transport, CSV_HEADER, DLMS_PORT, HDLC_LOGICAL, HDLC_PHYSICAL,
};

use crate::link::{Link, LinkStream, NetworkMix};
use crate::objects::keys::KeySet;
use crate::{Meter, MeterConfig, TimeSource};

/// The meters' clock: real time, or accelerated from a start instant (a day per minute is
/// `speed = 1440`), optionally only until it has caught up with real time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Real Unix time (seconds, fractional) when the fleet started.
    real_start: f64,
    /// Meter Unix time at that instant.
    meter_start: i64,
    speed: f64,
    /// Never ahead of real time: accelerated from a past start until it reaches now, then
    /// real time (a demo that fills its history fast, then stays live: its readings are
    /// never from the future).
    catch_up: bool,
}

fn real_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Clock {
    pub fn new(meter_start: Option<i64>, speed: f64) -> Self {
        let real_start = real_now();
        Self {
            real_start,
            meter_start: meter_start.unwrap_or(real_start as i64),
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
            catch_up: false,
        }
    }

    /// Accelerated by `speed` from `seconds_ago` in the past until meter time reaches real
    /// time, then real time.
    pub fn catching_up(seconds_ago: i64, speed: f64) -> Self {
        let real = real_now();
        Self {
            catch_up: true,
            ..Self::new(Some(real as i64 - seconds_ago.max(0)), speed)
        }
    }

    /// Meter time now, Unix seconds.
    pub fn now(&self) -> i64 {
        let real = real_now();
        let t = self.meter_start + ((real - self.real_start) * self.speed) as i64;
        if self.catch_up {
            t.min(real as i64)
        } else {
            t
        }
    }

    /// Real seconds until meter time reaches `t` (0 when it already has).
    pub fn real_delay_until(&self, t: i64) -> Duration {
        let real = real_now();
        // When the accelerated time reaches `t`; caught up, time runs at real speed.
        let mut at = self.real_start + (t - self.meter_start) as f64 / self.speed;
        if self.catch_up {
            at = at.max(t as f64);
        }
        Duration::from_secs_f64((at - real).max(0.0))
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    pub fn source(&self) -> TimeSource {
        let c = *self;
        Arc::new(move || c.now())
    }
}

/// How to build a fleet.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub meters: u32,
    pub first_serial: u32,
    pub addressing: Addressing,
    /// The first meter's address (the next ones count up from it).
    pub first_host: IpAddr,
    /// The port (0: any free port, per meter).
    pub port: u16,
    /// Seeds the data of every meter and the choice of which meters get quirks.
    pub seed: u64,
    /// Keys are derived per meter from this secret, unless `keys` gives one set for all.
    pub fleet_secret: Vec<u8>,
    pub keys: Option<KeySet>,
    /// The system title of a one-meter fleet (default: "HES\0" + serial).
    pub system_title: Option<[u8; 8]>,
    pub password: String,
    /// Quirks, each for a fraction of the fleet (1.0 = every meter).
    pub quirks: Vec<(QuirkName, f64)>,
    pub clock: Clock,
    pub push: Option<PushConfig>,
    /// Concurrent connections one meter accepts (more are closed at once).
    pub max_connections_per_meter: u32,
    pub inactivity_timeout: Duration,
    /// Entries the 15-minute load profile holds.
    pub profile_entries: u32,
    /// One listening socket per meter, or one for the whole fleet.
    pub listen: ListenMode,
    /// Suites 1 and 2: every meter gets a signing key and certificate from this PKI and its
    /// management client authenticates with HLS-ECDSA. `None`: suite 0.
    pub pki: Option<Arc<crate::pki::FleetPki>>,
    /// The meters' links (empty: every link ideal, no delay).
    pub network: NetworkMix,
}

/// How the meters' endpoints are opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenMode {
    /// One listening socket per meter: a refused meter really refuses (RST to the SYN). Needs
    /// one open file per meter.
    PerMeter,
    /// One socket on the wildcard address at the fleet's port, for `Ip` addressing: each
    /// connection goes to the meter whose address it was made to. Open files do not grow with
    /// the fleet (100,000 meters and more); a refused or powered-down meter resets the
    /// connection right after the handshake instead of refusing it, and connections to the
    /// host's other addresses are closed at once.
    Shared,
}

impl FleetConfig {
    pub fn new(meters: u32) -> Self {
        Self {
            meters,
            first_serial: 1,
            addressing: Addressing::Ip,
            first_host: IpAddr::from([127, 1, 0, 1]),
            port: DLMS_PORT,
            seed: 1,
            fleet_secret: b"hes-sim test fleet".to_vec(),
            keys: None,
            system_title: None,
            password: crate::TEST_PASSWORD.into(),
            quirks: Vec::new(),
            clock: Clock::new(None, 1.0),
            push: None,
            max_connections_per_meter: 4,
            inactivity_timeout: Duration::from_secs(120),
            profile_entries: 96 * 10,
            listen: ListenMode::PerMeter,
            pki: None,
            network: NetworkMix::default(),
        }
    }
}

/// The switchable quirks, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuirkName {
    HdlcOnly,
    SmallPdu,
    NoSetBlocks,
    NoDeviationInRange,
    AlternativeSaps,
}

impl std::str::FromStr for QuirkName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "hdlc_only" => Self::HdlcOnly,
            "small_pdu" => Self::SmallPdu,
            "no_set_blocks" => Self::NoSetBlocks,
            "no_deviation_in_range" => Self::NoDeviationInRange,
            "alternative_saps" => Self::AlternativeSaps,
            _ => {
                return Err(format!(
                    "unknown quirk {s:?} (hdlc_only, small_pdu, no_set_blocks, \
                     no_deviation_in_range, alternative_saps)"
                ))
            }
        })
    }
}

impl QuirkName {
    fn apply(self, q: &mut Quirks) {
        match self {
            Self::HdlcOnly => q.hdlc_only = true,
            Self::SmallPdu => q.small_pdu = true,
            Self::NoSetBlocks => q.no_set_blocks = true,
            Self::NoDeviationInRange => q.no_deviation_in_range = true,
            Self::AlternativeSaps => q.alternative_saps = true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("meter {index}: no address (the fleet does not fit from the first address)")]
    NoAddress { index: u32 },
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "{meters} meters need {needed} open files but the limit is {limit}: raise it \
         (`ulimit -n`), or use one shared listener for the fleet (`--listen shared`)"
    )]
    FileLimit {
        meters: u32,
        needed: u64,
        limit: u64,
    },
    #[error("no meter {0}")]
    NoMeter(String),
    #[error("a shared listener needs IPv4 `ip` addressing")]
    SharedNeedsIp,
    #[error("the password must be printable ASCII without commas or quotes")]
    Password,
    #[error("issuing the meters' certificates: {0}")]
    Pki(String),
}

/// Counters of what the fleet has served.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub sessions_ended: AtomicU64,
    pub connections_turned_away: AtomicU64,
    pub pushes_sent: AtomicU64,
    /// Pushes given up after their last retry.
    pub pushes_failed: AtomicU64,
    /// Push connection attempts, retries included.
    pub push_attempts: AtomicU64,
    /// Sessions being served now, and the most at once so far.
    pub active_sessions: AtomicU64,
    pub peak_sessions: AtomicU64,
}

/// One meter of the fleet: what it is and its live state.
#[derive(Debug)]
pub struct MeterCell {
    pub spec: MeterSpec,
    meter: Mutex<Meter>,
    listener: Mutex<Option<JoinHandle<()>>>,
    connections: AtomicU32,
    /// The port the meter listens on (known after bind when the configured port is 0).
    port: AtomicU32,
    /// Where the meter's alarm pushes go to be sent.
    pushes: Option<mpsc::Sender<(u32, PushKind)>>,
    /// Suites 1 and 2: the meter's signing key, certificate and trust.
    pub ecc: Option<EccConfig>,
    /// The meter's link to the head-end, and what it went through.
    pub link: Arc<Link>,
}

impl MeterHandle for MeterCell {
    fn with_objects(&self, f: &mut dyn FnMut(&mut dyn Objects)) {
        let mut m = self.lock();
        f(&mut *m);
        let outbox = m.take_outbox();
        drop(m);
        self.post(outbox);
    }

    fn ecc(&self) -> Option<EccConfig> {
        self.ecc.clone()
    }
}

impl MeterCell {
    /// The meter's live state (a poisoned lock is taken as it stands).
    pub fn lock(&self) -> MutexGuard<'_, Meter> {
        self.meter.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands pushes the meter raised to the push task (dropped when pushing is off or the
    /// queue is full: a meter's alarm buffer is small too).
    fn post(&self, kinds: Vec<PushKind>) {
        let Some(tx) = &self.pushes else { return };
        for k in kinds {
            let _ = tx.try_send((self.spec.index, k));
        }
    }

    /// Runs `f` on the meter and sends the pushes it raised.
    pub fn with_meter<R>(&self, f: impl FnOnce(&mut Meter) -> R) -> R {
        let mut m = self.lock();
        let r = f(&mut m);
        let outbox = m.take_outbox();
        drop(m);
        self.post(outbox);
        r
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(
            self.spec.addr.ip(),
            u16::try_from(self.port.load(Ordering::Relaxed)).unwrap_or(0),
        )
    }

    pub fn inventory_entry(&self) -> InventoryEntry {
        let keys = self.lock().keys();
        let mut e = inventory_entry(&self.spec, &keys);
        e.endpoint.port = self.addr().port();
        if !self.link.is_ideal() {
            // The head-end's registry learns the link kind from the inventory, to fit its
            // timeouts to it.
            e.groups
                .insert("link".to_string(), self.link.profile.name.clone());
        }
        e
    }

    /// The server configuration for the next connection: keys and faults as they are now.
    fn server_config(&self, inactivity: Duration) -> (ServerConfig, SessionOptions, Faults) {
        let m = self.lock();
        let keys = m.keys();
        let faults = m.faults;
        drop(m);
        let s = &self.spec;
        let transport = match s.transport {
            Transport::Hdlc => TransportConfig::Hdlc {
                client_sap: 0,
                server: ServerAddress {
                    logical: HDLC_LOGICAL,
                    physical: Some(HDLC_PHYSICAL),
                    size: 2,
                },
                params: HdlcParams::default(),
            },
            Transport::Wrapper => TransportConfig::Wrapper {
                client_wport: 0,
                server_wport: 1,
            },
        };
        let clients = if faults.refuse_association {
            Vec::new()
        } else {
            vec![
                ClientPolicy {
                    sap: s.saps.public,
                    authentication: Authentication::None,
                    security: SecurityLevel::None,
                },
                ClientPolicy {
                    sap: s.saps.reader,
                    authentication: Authentication::Low {
                        password: s.password.clone().into_bytes(),
                    },
                    security: SecurityLevel::None,
                },
                ClientPolicy {
                    sap: s.saps.management,
                    authentication: if self.ecc.is_some() {
                        Authentication::HighEcdsa
                    } else {
                        Authentication::HighGmac
                    },
                    security: SecurityLevel::AuthenticatedEncrypted,
                },
            ]
        };
        let mut conformance = Conformance::DEFAULT_SERVER;
        if s.quirks.no_set_blocks {
            conformance =
                Conformance(conformance.0 & !Conformance::BLOCK_TRANSFER_WITH_SET_OR_WRITE.0);
        }
        let cfg = ServerConfig {
            transport,
            system_title: SystemTitle(s.system_title),
            keys: CipherKeys {
                ek: keys.ek,
                ak: keys.ak,
            },
            clients,
            max_receive_pdu: s.quirks.max_pdu(),
            conformance,
            max_request_bytes: 64 * 1024,
            inactivity_timeout: inactivity,
        };
        let opts = SessionOptions {
            response_delay: Duration::from_millis(u64::from(faults.slow_ms)),
            drop_mid_block: faults.drop_mid_block,
            corrupt_first_answer: faults.corrupt_frame,
            stall_mid_block: faults.stall_mid_block,
        };
        (cfg, opts, faults)
    }
}

/// What the fleet's tasks share.
#[derive(Debug)]
struct Shared {
    cfg: FleetConfig,
    stats: Stats,
    shutdown: watch::Sender<bool>,
}

/// A running fleet.
#[derive(Debug)]
pub struct Fleet {
    cells: Vec<Arc<MeterCell>>,
    by_id: HashMap<String, usize>,
    shared: Arc<Shared>,
    push_task: Mutex<Option<JoinHandle<()>>>,
    shared_listener: Mutex<Option<JoinHandle<()>>>,
}

/// Open files the process needs beyond one per meter (sessions, control, runtime).
const FILE_HEADROOM: u64 = 4096;

/// Raises the open-file limit to fit `meters` listeners plus headroom; as root the hard limit
/// too (up to the kernel's `nr_open`).
pub fn ensure_file_limit(meters: u32) -> Result<(), FleetError> {
    let needed = u64::from(meters) + FILE_HEADROOM;
    let (soft, hard) = rlimit::Resource::NOFILE
        .get()
        .map_err(|_| FleetError::FileLimit {
            meters,
            needed,
            limit: 0,
        })?;
    if soft >= needed {
        return Ok(());
    }
    if hard >= needed {
        let _ = rlimit::Resource::NOFILE.set(needed, hard);
    } else {
        let _ = rlimit::Resource::NOFILE.set(needed, needed);
    }
    let (soft, _) = rlimit::Resource::NOFILE.get().unwrap_or((soft, hard));
    if soft >= needed {
        Ok(())
    } else {
        Err(FleetError::FileLimit {
            meters,
            needed,
            limit: soft,
        })
    }
}

impl Fleet {
    /// Builds the meters, binds every listener and starts serving (and pushing, if set up).
    pub async fn start(cfg: FleetConfig) -> Result<Arc<Self>, FleetError> {
        if !spec::password_is_plain(&cfg.password) {
            return Err(FleetError::Password);
        }
        let shared_listen = cfg.listen == ListenMode::Shared;
        if shared_listen {
            if cfg.addressing != Addressing::Ip || !cfg.first_host.is_ipv4() {
                return Err(FleetError::SharedNeedsIp);
            }
        } else {
            ensure_file_limit(cfg.meters)?;
        }
        let mut quirk_sets: Vec<Quirks> = vec![Quirks::default(); cfg.meters as usize];
        for (k, (name, fraction)) in cfg.quirks.iter().enumerate() {
            let seed = cfg.seed ^ (0xA5A5_0000 + k as u64).wrapping_mul(0x1000_0000_01B3);
            for i in pick(cfg.meters, *fraction, seed) {
                if let Some(q) = quirk_sets.get_mut(i as usize) {
                    name.apply(q);
                }
            }
        }
        let time = cfg.clock.source();
        let (push_tx, push_rx) = mpsc::channel(4096);
        let push_tx = cfg.push.as_ref().map(|_| push_tx);
        let mut cells = Vec::with_capacity(cfg.meters as usize);
        let mut by_id = HashMap::with_capacity(cfg.meters as usize);
        for (i, quirks) in (0..cfg.meters).zip(quirk_sets) {
            let serial = cfg.first_serial.wrapping_add(i);
            let addr = address(cfg.addressing, cfg.first_host, cfg.port, i)
                .ok_or(FleetError::NoAddress { index: i })?;
            let keys = cfg
                .keys
                .clone()
                .unwrap_or_else(|| derive_keys(&cfg.fleet_secret, serial));
            let mut system_title = crate::system_title(serial);
            if cfg.meters == 1 {
                if let Some(t) = cfg.system_title {
                    system_title = t;
                }
            }
            let spec = MeterSpec {
                index: i,
                serial,
                addr,
                transport: if quirks.hdlc_only {
                    Transport::Hdlc
                } else {
                    Transport::Wrapper
                },
                saps: if quirks.alternative_saps {
                    ClientSaps::ALTERNATIVE
                } else {
                    ClientSaps::STANDARD
                },
                password: cfg.password.clone(),
                keys: keys.clone(),
                system_title,
                quirks,
            };
            let mut mc = MeterConfig::new(serial);
            mc.seed ^= cfg.seed.wrapping_mul(0xD6E8_FEB8_6659_FD93);
            mc.system_title = SystemTitle(system_title);
            mc.time = time.clone();
            mc.profile_entries = cfg.profile_entries;
            mc.saps = spec.saps;
            mc.quirks = quirks;
            mc.keys = keys;
            mc.push_destination = cfg.push.as_ref().map(|p| p.destination.to_string());
            if let Some(p) = &cfg.push {
                mc.push_retries = u8::try_from(p.attempts.saturating_sub(1)).unwrap_or(u8::MAX);
                mc.push_repetition_delay_s = p.repetition_delay_s;
            }
            let link = Arc::new(cfg.network.link(cfg.seed, i));
            let meter = Meter::new(mc);
            let ecc = match &cfg.pki {
                Some(pki) => Some(
                    pki.meter(serial, &SystemTitle(system_title), &spec.keys)
                        .map_err(|e| FleetError::Pki(e.to_string()))?
                        .0,
                ),
                None => None,
            };
            by_id.insert(spec.id(), cells.len());
            cells.push(Arc::new(MeterCell {
                spec,
                meter: Mutex::new(meter),
                listener: Mutex::new(None),
                connections: AtomicU32::new(0),
                port: AtomicU32::new(u32::from(addr.port())),
                pushes: push_tx.clone(),
                ecc,
                link,
            }));
        }
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            cfg,
            stats: Stats::default(),
            shutdown,
        });
        let fleet = Arc::new(Self {
            cells,
            by_id,
            shared,
            push_task: Mutex::new(None),
            shared_listener: Mutex::new(None),
        });
        if shared_listen {
            let port = fleet.shared.cfg.port;
            let addr = SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port);
            let listener = std::net::TcpListener::bind(addr)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .and_then(TcpListener::from_std)
                .map_err(|source| FleetError::Bind { addr, source })?;
            let port = listener.local_addr().map_or(port, |a| a.port());
            for cell in &fleet.cells {
                cell.port.store(u32::from(port), Ordering::Relaxed);
            }
            let task = tokio::spawn(shared_accept_loop(fleet.clone(), listener));
            *fleet
                .shared_listener
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(task);
        } else {
            for cell in &fleet.cells {
                fleet.listen(cell)?;
            }
        }
        if let Some(p) = fleet.shared.cfg.push.clone() {
            let task = push::spawn(fleet.clone(), p, push_rx);
            *fleet.push_task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        }
        Ok(fleet)
    }

    /// Binds the meter's listener and starts accepting.
    fn listen(&self, cell: &Arc<MeterCell>) -> Result<(), FleetError> {
        if self.shared.cfg.listen == ListenMode::Shared {
            return Ok(()); // the shared listener checks the meter's state at each accept
        }
        let addr = cell.addr();
        let std_listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| FleetError::Bind { addr, source })?;
        let listener = TcpListener::from_std(std_listener)
            .map_err(|source| FleetError::Bind { addr, source })?;
        if let Ok(local) = listener.local_addr() {
            cell.port.store(u32::from(local.port()), Ordering::Relaxed);
        }
        let task = tokio::spawn(accept_loop(cell.clone(), listener, self.shared.clone()));
        let mut slot = cell.listener.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = slot.replace(task) {
            old.abort();
        }
        Ok(())
    }

    /// Stops the meter's listener and waits until its socket is closed, so that the next
    /// connection attempt is refused.
    async fn unlisten(cell: &MeterCell) {
        let task = cell
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    pub fn meters(&self) -> &[Arc<MeterCell>] {
        &self.cells
    }

    pub fn meter(&self, id: &str) -> Option<&Arc<MeterCell>> {
        self.by_id.get(id).and_then(|&i| self.cells.get(i))
    }

    pub fn clock(&self) -> Clock {
        self.shared.cfg.clock
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// How many times a client presented `id` an invocation counter the meter had already
    /// seen (ground truth of replays; `None` for an unknown meter).
    pub fn replays(&self, id: &str) -> Option<u64> {
        self.meter(id).map(|c| c.lock().replays())
    }

    /// Replays refused by the whole fleet so far.
    pub fn total_replays(&self) -> u64 {
        self.cells.iter().map(|c| c.lock().replays()).sum()
    }

    pub fn inventory(&self) -> Vec<InventoryEntry> {
        self.cells.iter().map(|c| c.inventory_entry()).collect()
    }

    /// Replaces the faults of one meter. One-shot faults (`ic_jump`, `clock_drift_s`) act when
    /// they are set; the others last until cleared.
    pub async fn set_faults(&self, id: &str, faults: Faults) -> Result<(), FleetError> {
        let cell = self
            .meter(id)
            .ok_or_else(|| FleetError::NoMeter(id.to_string()))?;
        let was_refused = {
            let mut m = cell.lock();
            let was = m.faults.refused;
            m.apply_faults(faults);
            was
        };
        match (was_refused, faults.refused) {
            (false, true) => Self::unlisten(cell).await,
            (true, false) if cell.lock().powered() => self.listen(cell)?,
            _ => {}
        }
        Ok(())
    }

    /// Sets `faults` on a reproducible fraction of the fleet; returns the ids chosen.
    pub async fn set_faults_fraction(
        &self,
        faults: Faults,
        fraction: f64,
        seed: u64,
    ) -> Result<Vec<String>, FleetError> {
        let n = u32::try_from(self.cells.len()).unwrap_or(u32::MAX);
        let mut ids = Vec::new();
        for i in pick(n, fraction, seed) {
            if let Some(cell) = self.cells.get(i as usize) {
                let id = cell.spec.id();
                self.set_faults(&id, faults).await?;
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Clears every meter's faults.
    pub async fn clear_faults(&self) -> Result<(), FleetError> {
        for cell in &self.cells {
            if cell.lock().faults.any() {
                self.set_faults(&cell.spec.id(), Faults::default()).await?;
            }
        }
        Ok(())
    }

    /// Power fails (`false`) or returns at a meter: it stops or starts listening, and logs
    /// and pushes the event.
    pub async fn set_power(&self, id: &str, on: bool) -> Result<(), FleetError> {
        let cell = self
            .meter(id)
            .ok_or_else(|| FleetError::NoMeter(id.to_string()))?;
        let refused = cell.with_meter(|m| {
            m.set_power(on);
            m.faults.refused
        });
        if on && !refused {
            self.listen(cell)?;
        } else if !on {
            Self::unlisten(cell).await;
        }
        Ok(())
    }

    /// A tamper at a meter (terminal cover opened and closed): logged and pushed.
    pub fn tamper(&self, id: &str) -> Result<(), FleetError> {
        let cell = self
            .meter(id)
            .ok_or_else(|| FleetError::NoMeter(id.to_string()))?;
        cell.with_meter(Meter::tamper);
        Ok(())
    }

    /// The meter a connection to `ip` is for (shared listener).
    fn index_of(&self, ip: IpAddr) -> Option<usize> {
        let (IpAddr::V4(ip), IpAddr::V4(first)) = (ip, self.shared.cfg.first_host) else {
            return None;
        };
        let (ip, first) = (u32::from(ip), u32::from(first));
        let host = ip & 0xFF;
        if host == 0 || host == 255 {
            return None;
        }
        let blocks = (ip >> 8).checked_sub(first >> 8)?;
        let n = blocks.checked_mul(254)?.checked_add(host - 1)?;
        let i = n.checked_sub((first & 0xFF).clamp(1, 254) - 1)? as usize;
        (i < self.cells.len()).then_some(i)
    }

    /// Stops listening, pushing and serving.
    pub fn shutdown(&self) {
        let _ = self.shared.shutdown.send(true);
        if let Some(t) = self
            .shared_listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            t.abort();
        }
        for cell in &self.cells {
            if let Some(t) = cell
                .listener
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                t.abort();
            }
        }
        if let Some(t) = self
            .push_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            t.abort();
        }
    }
}

async fn accept_loop(cell: Arc<MeterCell>, listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => admit(&cell, stream, peer, &shared),
            Err(e) => {
                // Out of files or similar: back off instead of spinning.
                tracing::warn!(meter = %cell.spec.id(), error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One socket for the whole fleet: each connection goes to the meter it was made to.
async fn shared_accept_loop(fleet: Arc<Fleet>, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let cell = stream
            .local_addr()
            .ok()
            .and_then(|a| fleet.index_of(a.ip()))
            .and_then(|i| fleet.cells.get(i));
        let Some(cell) = cell else {
            // Not one of ours (another address of the host): close at once.
            continue;
        };
        let (refused, powered) = {
            let m = cell.lock();
            (m.faults.refused, m.powered())
        };
        if refused || !powered {
            // As near to a refusal as one shared socket gets: a reset.
            let _ = stream.set_zero_linger();
            fleet
                .shared
                .stats
                .connections_turned_away
                .fetch_add(1, Ordering::Relaxed);
            continue;
        }
        admit(cell, stream, peer, &fleet.shared);
    }
}

/// Serves one accepted connection in its own task, within the meter's connection limit.
fn admit(
    cell: &Arc<MeterCell>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
) {
    let stats = &shared.stats;
    if cell.connections.fetch_add(1, Ordering::AcqRel) >= shared.cfg.max_connections_per_meter {
        cell.connections.fetch_sub(1, Ordering::AcqRel);
        stats
            .connections_turned_away
            .fetch_add(1, Ordering::Relaxed);
        return;
    }
    if cell.link.connect_fails() {
        // The link refuses: a reset right after the handshake, as near to a refused connect
        // as an accepted socket gets.
        cell.connections.fetch_sub(1, Ordering::AcqRel);
        let _ = stream.set_zero_linger();
        stats
            .connections_turned_away
            .fetch_add(1, Ordering::Relaxed);
        return;
    }
    stats.connections.fetch_add(1, Ordering::Relaxed);
    let active = stats.active_sessions.fetch_add(1, Ordering::AcqRel) + 1;
    stats.peak_sessions.fetch_max(active, Ordering::AcqRel);
    let cell = cell.clone();
    let shared = shared.clone();
    tokio::spawn(async move {
        let (cfg, opts, faults) = cell.server_config(shared.cfg.inactivity_timeout);
        let mut stop = shared.shutdown.subscribe();
        let _ = stream.set_nodelay(true);
        let stream = LinkStream::new(stream, cell.link.clone(), faults.trickle);
        let serve = async {
            if stream.is_transparent() {
                dlms_net::serve_stream(stream.into_inner(), cfg, &*cell, &opts).await
            } else {
                dlms_net::serve_stream(stream, cfg, &*cell, &opts).await
            }
        };
        tokio::select! {
            r = serve => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "session ended with an error");
                }
            }
            _ = stop.changed() => {}
        }
        cell.connections.fetch_sub(1, Ordering::AcqRel);
        shared.stats.active_sessions.fetch_sub(1, Ordering::AcqRel);
        shared.stats.sessions_ended.fetch_add(1, Ordering::Relaxed);
    });
}
