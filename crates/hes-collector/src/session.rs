//! One management session with one meter: associate with HLS-GMAC and authenticated encryption
//! (resynchronising the invocation counter from the meter when it refuses ours), read
//! registers, profiles and event logs into [`Reading`]s and [`Event`]s exactly as the meter holds
//! them, and release.

pub use hes_model::clock::unix_now;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dlms::axdr::Data;
use dlms::cosem::profile_generic::{self, RANGE_DESCRIPTOR};
use dlms::cosem::{CaptureObject, ScalerUnit};
use dlms::xdlms::{DataAccessResult, GetDataResult, SelectiveAccess};
use dlms::{AttributeDescriptor, DateTime, ObisCode, SystemTitle};
use dlms_net::{Connection, NetError};
use hes_model::inventory::Role;
use hes_model::{Event, MeterId, Reading, Source};
use rand::RngCore;
use tracing::Instrument;

use crate::counters::{CounterError, Counters};
use crate::metrics;
use crate::registry::{MeterRecord, Registry, RegistryError};
use hes_store::StoreError;

/// What every session needs.
#[derive(Debug)]
pub struct Env {
    pub registry: Arc<Registry>,
    pub counters: Arc<Counters>,
    /// The head-end's system title.
    pub client_title: SystemTitle,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
}

/// The least connect and response timeout for a meter behind a link of this type (the `link`
/// group a utility's inventory, or the simulator's, gives): a meter behind GPRS, LTE-M,
/// NB-IoT or PLC answers in seconds, and a timeout made for loopback would cut its sessions
/// and retry them for nothing.
pub fn link_timeout_floor(link: Option<&str>) -> Duration {
    match link {
        Some("gprs" | "edge" | "3g") => Duration::from_secs(20),
        Some("lte-m" | "nb-iot" | "plc") => Duration::from_secs(40),
        _ => Duration::ZERO,
    }
}

impl Env {
    /// The connect and response timeouts for `meter`: the configured ones, no shorter than
    /// its link needs.
    pub fn timeouts(&self, meter: &MeterRecord) -> (Duration, Duration) {
        let floor = link_timeout_floor(meter.group("link"));
        (
            self.connect_timeout.max(floor),
            self.response_timeout.max(floor),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Net(#[from] NetError),
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("invocation counters: {0}")]
    Counter(#[from] CounterError),
    #[error("{obis} attribute {attribute}: {result:?}")]
    Object {
        obis: ObisCode,
        attribute: i8,
        result: DataAccessResult,
    },
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

impl SessionError {
    /// A short machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Net(e) => e.reason(),
            Self::Registry(_) => "registry",
            Self::Counter(_) => "counters",
            Self::Object { .. } => "object-error",
            Self::Unexpected(_) => "protocol",
        }
    }

    /// Whether trying again later may succeed: not for a meter the registry lacks or whose
    /// secrets or counters are unusable, but yes when only the store was away (PostgreSQL
    /// restarting or failing over).
    pub fn retryable(&self) -> bool {
        match self {
            Self::Registry(RegistryError::Store(e)) | Self::Counter(CounterError::Store(e)) => {
                store_unavailable(e)
            }
            Self::Registry(_) | Self::Counter(_) => false,
            _ => true,
        }
    }
}

/// A store error that may pass by itself: the store could not be reached or answered with an
/// error of its own, as opposed to a refusal of what was asked (a conflict, bad data).
fn store_unavailable(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Postgres(_) | StoreError::Pool(_) | StoreError::Sqlite(_) | StoreError::Task(_)
    )
}

fn challenge() -> Vec<u8> {
    let mut c = vec![0u8; 16];
    rand::thread_rng().fill_bytes(&mut c);
    c
}

/// A DLMS integer as i64 (`None` for other types).
pub fn integer(d: &Data) -> Option<i64> {
    Some(match d {
        Data::Integer(v) => i64::from(*v),
        Data::Long(v) => i64::from(*v),
        Data::DoubleLong(v) => i64::from(*v),
        Data::Long64(v) => *v,
        Data::Unsigned(v) | Data::Enum(v) => i64::from(*v),
        Data::LongUnsigned(v) => i64::from(*v),
        Data::DoubleLongUnsigned(v) => i64::from(*v),
        Data::Long64Unsigned(v) => i64::try_from(*v).ok()?,
        Data::Boolean(b) => i64::from(*b),
        _ => return None,
    })
}

fn attr(class_id: u16, obis: ObisCode, attribute: i8) -> AttributeDescriptor {
    AttributeDescriptor {
        class_id,
        instance: obis,
        attribute,
    }
}

const CLOCK: ObisCode = ObisCode::new(0, 0, 1, 0, 0, 255);
const INVOCATION_COUNTER: ObisCode = ObisCode::new(0, 0, 43, 1, 0, 255);

/// The registers an instantaneous read takes: energy totals and tariffs, per-phase voltage and
/// current, total active power import and export.
pub fn instant_registers() -> Vec<ObisCode> {
    let mut v = Vec::new();
    for c in 1..=4 {
        for t in 0..=2 {
            v.push(ObisCode::new(1, 0, c, 8, t, 255));
        }
    }
    for c in [32, 52, 72, 31, 51, 71, 1, 2] {
        v.push(ObisCode::new(1, 0, c, 7, 0, 255));
    }
    v
}

/// An open management association with one meter.
#[derive(Debug)]
pub struct MeterSession {
    conn: Option<Connection>,
    pub meter: Arc<MeterRecord>,
    env: Arc<Env>,
    source: Source,
    scalers: HashMap<ObisCode, (i8, u8)>,
    /// For the session's metrics: when it started, and the reason of its last failed step.
    started: Instant,
    failed: Option<&'static str>,
    /// Counted in the metrics already (by `close`).
    counted: bool,
    /// The session's span (with the meter id): every step's logs are in it.
    span: tracing::Span,
}

impl MeterSession {
    /// Connects and associates as the management client. A refused association is retried
    /// once after reading the meter's own invocation counter record.
    pub async fn open(
        env: &Arc<Env>,
        meter: Arc<MeterRecord>,
        source: Source,
    ) -> Result<Self, SessionError> {
        let started = Instant::now();
        let span = tracing::info_span!("session", meter = %meter.id);
        let r = Self::open_inner(env, meter, source, started, span.clone())
            .instrument(span)
            .await;
        match &r {
            Ok(_) => ::metrics::gauge!(metrics::SESSIONS_OPEN).increment(1.0),
            Err(e) => metrics::session("failed", e.reason(), started),
        }
        r
    }

    async fn open_inner(
        env: &Arc<Env>,
        meter: Arc<MeterRecord>,
        source: Source,
        started: Instant,
        span: tracing::Span,
    ) -> Result<Self, SessionError> {
        if !env.counters.knows(&meter.id).await? {
            // A meter this collector has no counter for (first contact, or a partition that
            // moved here): start above the meter's own record, never at a counter it has seen.
            let last = read_counter(env, &meter).await?;
            env.counters.raise_floor(&meter.id, last).await?;
        }
        match Self::associate(env, &meter).await {
            Ok(conn) => Ok(Self::new(env, meter, conn, source, (started, span))),
            Err(SessionError::Net(e)) if e.reason() == "authentication-failure" => {
                ::metrics::counter!(metrics::COUNTER_RESYNCS).increment(1);
                let last = read_counter(env, &meter).await?;
                tracing::info!(meter = %meter.id, last, "resynchronising the invocation counter");
                env.counters.raise_floor(&meter.id, last).await?;
                let conn = Self::associate(env, &meter).await?;
                Ok(Self::new(env, meter, conn, source, (started, span)))
            }
            Err(e) => Err(e),
        }
    }

    fn new(
        env: &Arc<Env>,
        meter: Arc<MeterRecord>,
        conn: Connection,
        source: Source,
        (started, span): (Instant, tracing::Span),
    ) -> Self {
        Self {
            conn: Some(conn),
            meter,
            env: env.clone(),
            source,
            scalers: HashMap::new(),
            started,
            failed: None,
            counted: false,
            span,
        }
    }

    async fn associate(env: &Env, meter: &MeterRecord) -> Result<Connection, SessionError> {
        let t = Instant::now();
        let r = Self::associate_inner(env, meter).await;
        metrics::step("associate", t, &r);
        r
    }

    async fn associate_inner(env: &Env, meter: &MeterRecord) -> Result<Connection, SessionError> {
        let keys = env.registry.open_keys(meter)?;
        let ic = env.counters.begin(&meter.id).await?;
        let mut cfg = meter
            .endpoint
            .client_config(
                Role::Management,
                keys.credentials(),
                env.client_title,
                ic,
                challenge(),
            )
            .ok_or_else(|| SessionError::Unexpected("client SAP out of range".into()))?;
        let (connect, response) = env.timeouts(meter);
        cfg.response_timeout = response;
        let e = &meter.endpoint;
        match Connection::connect(&e.host, e.port, cfg, connect).await {
            Ok(c) => Ok(c),
            Err(err) => {
                // Counters spent on a refused attempt are not reused.
                env.counters.end(&meter.id, ic.saturating_add(2)).await?;
                Err(err.into())
            }
        }
    }

    /// A step's latency; a failed step fails the session, the last failure giving its reason.
    /// Only the steps callers see: a quirk handled inside one (a range refused with a time
    /// deviation and asked again without) is no failure.
    fn observe<T>(&mut self, step: &'static str, t: Instant, r: &Result<T, SessionError>) {
        metrics::step(step, t, r);
        if let Err(e) = r {
            self.failed = Some(e.reason());
        }
    }

    /// Counts the session's end once: its bytes, outcome and duration.
    fn count_end(&mut self, conn: Option<&Connection>, outcome: Option<&'static str>) {
        if std::mem::replace(&mut self.counted, true) {
            return;
        }
        if let Some(c) = conn {
            count_bytes(c.bytes());
        }
        ::metrics::gauge!(metrics::SESSIONS_OPEN).decrement(1.0);
        let (outcome, reason) = match self.failed.or(outcome) {
            Some(reason) => ("failed", reason),
            None => ("ok", "none"),
        };
        metrics::session(outcome, reason, self.started);
        // Entered (not only the parent) so that the line carries the span with the others.
        let span = self.span.clone();
        let _in = span.enter();
        tracing::debug!(
            outcome,
            reason,
            ms = self.started.elapsed().as_millis() as u64,
            "session ended"
        );
    }

    fn conn(&mut self) -> Result<&mut Connection, SessionError> {
        self.conn
            .as_mut()
            .ok_or_else(|| SessionError::Unexpected("session closed".into()))
    }

    fn id(&self) -> &MeterId {
        &self.meter.id
    }

    /// One attribute; an object error is an error.
    pub async fn get(
        &mut self,
        a: AttributeDescriptor,
        access: Option<SelectiveAccess>,
    ) -> Result<Data, SessionError> {
        let t = Instant::now();
        let span = self.span.clone();
        let r = self.get_inner(a, access).instrument(span).await;
        self.observe("get", t, &r);
        r
    }

    async fn get_inner(
        &mut self,
        a: AttributeDescriptor,
        access: Option<SelectiveAccess>,
    ) -> Result<Data, SessionError> {
        let (obis, attribute) = (a.instance, a.attribute);
        match self.conn()?.get(a, access).await? {
            GetDataResult::Data(d) => Ok(d),
            GetDataResult::Error(result) => Err(SessionError::Object {
                obis,
                attribute,
                result,
            }),
        }
    }

    /// Scaler and unit of registers (class 3), read once per session.
    async fn scalers(&mut self, objects: &[ObisCode]) -> Result<(), SessionError> {
        let missing: Vec<ObisCode> = objects
            .iter()
            .filter(|o| !self.scalers.contains_key(o))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let items = missing.iter().map(|&o| (attr(3, o, 3), None)).collect();
        let results = self.conn()?.get_list(items).await?;
        for (o, r) in missing.into_iter().zip(results) {
            let su = match r {
                GetDataResult::Data(d) => ScalerUnit::from_data(&d)
                    .map(|su| (su.scaler, su.unit.0))
                    .unwrap_or((0, 255)),
                GetDataResult::Error(_) => (0, 255),
            };
            self.scalers.insert(o, su);
        }
        Ok(())
    }

    fn reading(&self, obis: ObisCode, class_id: u16, time: i64, value: i64) -> Reading {
        let (scaler, unit) = self.scalers.get(&obis).copied().unwrap_or((0, 255));
        Reading {
            meter: self.id().clone(),
            obis,
            class_id,
            attribute: 2,
            time,
            value,
            scaler,
            unit,
            status: 0,
            source: self.source,
            received_at: unix_now(),
        }
    }

    /// The meter's clock, Unix seconds.
    pub async fn clock(&mut self) -> Result<i64, SessionError> {
        let t = Instant::now();
        let span = self.span.clone();
        let r = self.clock_inner().instrument(span).await;
        self.observe("clock", t, &r);
        r
    }

    async fn clock_inner(&mut self) -> Result<i64, SessionError> {
        let d = self.get_inner(attr(8, CLOCK, 2), None).await?;
        date_of(&d).ok_or_else(|| SessionError::Unexpected("clock is not a date-time".into()))
    }

    /// Energy registers and instantaneous values, stamped with the meter's clock.
    pub async fn read_instant(&mut self) -> Result<Vec<Reading>, SessionError> {
        let t = Instant::now();
        let span = self.span.clone();
        let r = self.read_instant_inner().instrument(span).await;
        self.observe("read_instant", t, &r);
        r
    }

    async fn read_instant_inner(&mut self) -> Result<Vec<Reading>, SessionError> {
        let objects = instant_registers();
        self.scalers(&objects).await?;
        let mut items = vec![(attr(8, CLOCK, 2), None)];
        items.extend(objects.iter().map(|&o| (attr(3, o, 2), None)));
        let results = self.conn()?.get_list(items).await?;
        let mut it = results.into_iter();
        let time = match it.next() {
            Some(GetDataResult::Data(d)) => date_of(&d),
            _ => None,
        }
        .ok_or_else(|| SessionError::Unexpected("no clock".into()))?;
        let mut out = Vec::new();
        for (o, r) in objects.into_iter().zip(it) {
            if let GetDataResult::Data(d) = r {
                if let Some(v) = integer(&d) {
                    out.push(self.reading(o, 3, time, v));
                }
            }
        }
        Ok(out)
    }

    /// A profile's buffer from `from` (inclusive, meter time) to its end, or all of it.
    async fn buffer(
        &mut self,
        profile: ObisCode,
        columns: &[CaptureObject],
        from: Option<i64>,
    ) -> Result<Vec<Vec<Data>>, SessionError> {
        let a = attr(7, profile, 2);
        let data = match (from, columns.first()) {
            (Some(from), Some(clock)) => {
                let range = |deviation: i16| {
                    let mut f = DateTime::from_unix(from, 0, 0);
                    let mut t = DateTime::from_unix(unix_now() + 400 * 86_400, 0, 0);
                    f.deviation = deviation;
                    t.deviation = deviation;
                    SelectiveAccess {
                        selector: RANGE_DESCRIPTOR,
                        parameters: profile_generic::range_descriptor(
                            clock,
                            &Data::OctetString(f.to_octets()),
                            &Data::OctetString(t.to_octets()),
                            &[],
                        ),
                    }
                };
                match self.get_inner(a, Some(range(0))).await {
                    // Some makes refuse a deviation in the range: ask again without one.
                    Err(SessionError::Object {
                        result: DataAccessResult::OtherReason,
                        ..
                    }) => {
                        self.get_inner(a, Some(range(dlms::axdr::DEVIATION_UNSPECIFIED)))
                            .await?
                    }
                    r => r?,
                }
            }
            _ => self.get_inner(a, None).await?,
        };
        profile_generic::buffer_from_data(&data)
            .map_err(|e| SessionError::Unexpected(format!("{profile} buffer: {e}")))
    }

    async fn columns(&mut self, profile: ObisCode) -> Result<Vec<CaptureObject>, SessionError> {
        let d = self.get_inner(attr(7, profile, 3), None).await?;
        profile_generic::capture_objects_from_data(&d)
            .map_err(|e| SessionError::Unexpected(format!("{profile} capture objects: {e}")))
    }

    /// A load or billing profile from `from`: one reading per register column and entry, the
    /// entry's clock as its time.
    pub async fn read_profile(
        &mut self,
        profile: ObisCode,
        from: Option<i64>,
    ) -> Result<Vec<Reading>, SessionError> {
        let t = Instant::now();
        let span = self.span.clone();
        let r = self
            .read_profile_inner(profile, from)
            .instrument(span)
            .await;
        self.observe("read_profile", t, &r);
        r
    }

    async fn read_profile_inner(
        &mut self,
        profile: ObisCode,
        from: Option<i64>,
    ) -> Result<Vec<Reading>, SessionError> {
        let columns = self.columns(profile).await?;
        let registers: Vec<ObisCode> = columns
            .iter()
            .filter(|c| c.class_id == 3 || c.class_id == 4)
            .map(|c| c.logical_name)
            .collect();
        self.scalers(&registers).await?;
        let rows = self.buffer(profile, &columns, from).await?;
        let clock_col = columns.iter().position(|c| c.class_id == 8);
        let mut out = Vec::with_capacity(rows.len() * columns.len());
        for row in rows {
            let Some(time) = clock_col.and_then(|i| row.get(i)).and_then(date_of) else {
                continue;
            };
            if from.is_some_and(|f| time < f) {
                continue;
            }
            for (c, v) in columns.iter().zip(&row) {
                if c.class_id == 8 {
                    continue;
                }
                if let Some(v) = integer(v) {
                    let mut r = self.reading(c.logical_name, c.class_id, time, v);
                    r.attribute = c.attribute_index;
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// Events of one log from `from`.
    pub async fn read_events(
        &mut self,
        log: ObisCode,
        from: Option<i64>,
    ) -> Result<Vec<Event>, SessionError> {
        let t = Instant::now();
        let span = self.span.clone();
        let r = self.read_events_inner(log, from).instrument(span).await;
        self.observe("read_events", t, &r);
        r
    }

    async fn read_events_inner(
        &mut self,
        log: ObisCode,
        from: Option<i64>,
    ) -> Result<Vec<Event>, SessionError> {
        let columns = self.columns(log).await?;
        let rows = self.buffer(log, &columns, from).await?;
        let clock_col = columns.iter().position(|c| c.class_id == 8);
        let code_col = columns.iter().position(|c| c.class_id != 8);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let time = clock_col.and_then(|i| row.get(i)).and_then(date_of);
            let code = code_col.and_then(|i| row.get(i)).and_then(integer);
            if let (Some(time), Some(code)) = (time, code) {
                if from.is_some_and(|f| time < f) {
                    continue;
                }
                out.push(Event {
                    meter: self.id().clone(),
                    log,
                    time,
                    code: u16::try_from(code).unwrap_or(u16::MAX),
                    source: self.source,
                    received_at: unix_now(),
                });
            }
        }
        Ok(out)
    }

    /// The open connection, for commands.
    pub fn connection(&mut self) -> Result<&mut Connection, SessionError> {
        self.conn()
    }

    /// Releases the association and records the counters used.
    pub async fn close(mut self) -> Result<(), SessionError> {
        let Some(conn) = self.conn.take() else {
            return Ok(());
        };
        self.count_end(Some(&conn), None);
        let next = conn.next_invocation_counter();
        let t = Instant::now();
        let released = conn.release().await.map_err(SessionError::from);
        metrics::step("release", t, &released);
        if let Some(next) = next {
            self.env.counters.end(&self.meter.id, next).await?;
        }
        released
    }
}

impl Drop for MeterSession {
    fn drop(&mut self) {
        // A session dropped without `close` (a cancelled or timed-out job) still counts, and
        // records the invocation counters it used.
        let conn = self.conn.take();
        self.count_end(conn.as_ref(), Some("aborted"));
        self.conn = conn;
        if let Some(next) = self
            .conn
            .as_ref()
            .and_then(Connection::next_invocation_counter)
        {
            // Nothing to write unless the session went past its lease (rare): then in the
            // background, as a drop cannot wait.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let (counters, meter) = (self.env.counters.clone(), self.meter.id.clone());
                rt.spawn(async move {
                    if let Err(e) = counters.end(&meter, next).await {
                        tracing::warn!(%meter, error = %e, "recording a session's counters");
                    }
                });
            }
        }
    }
}

fn count_bytes((sent, received): (u64, u64)) {
    ::metrics::counter!(metrics::BYTES_SENT).increment(sent);
    ::metrics::counter!(metrics::BYTES_RECEIVED).increment(received);
}

/// A COSEM date-time value (octet-string or date-time type) as Unix seconds.
pub fn date_of(d: &Data) -> Option<i64> {
    d.as_date_time().and_then(|t| t.to_unix())
}

/// The meter's own record of the management client's last invocation counter, read through
/// the public client.
pub async fn read_counter(env: &Env, meter: &MeterRecord) -> Result<u32, SessionError> {
    let t = Instant::now();
    let r = read_counter_inner(env, meter).await;
    metrics::step("read_counter", t, &r);
    r
}

async fn read_counter_inner(env: &Env, meter: &MeterRecord) -> Result<u32, SessionError> {
    let keys = env.registry.open_keys(meter)?;
    let mut cfg = meter
        .endpoint
        .client_config(
            Role::Public,
            keys.credentials(),
            env.client_title,
            1,
            Vec::new(),
        )
        .ok_or_else(|| SessionError::Unexpected("client SAP out of range".into()))?;
    let (connect, response) = env.timeouts(meter);
    cfg.response_timeout = response;
    let e = &meter.endpoint;
    let mut c = Connection::connect(&e.host, e.port, cfg, connect).await?;
    let r = c.get(attr(1, INVOCATION_COUNTER, 2), None).await?;
    let _ = c.release().await;
    match r {
        GetDataResult::Data(d) => integer(&d)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| SessionError::Unexpected("invocation counter type".into())),
        GetDataResult::Error(result) => Err(SessionError::Object {
            obis: INVOCATION_COUNTER,
            attribute: 2,
            result,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_store_that_was_away_makes_registry_and_counter_errors_retryable() {
        let away = || StoreError::Pool("connection refused".into());
        assert!(SessionError::Registry(RegistryError::Store(away())).retryable());
        assert!(SessionError::Counter(CounterError::Store(away())).retryable());
        let meter = MeterId("M1".into());
        assert!(!SessionError::Registry(RegistryError::NoMeter(meter.clone())).retryable());
        assert!(!SessionError::Counter(CounterError::Exhausted(meter)).retryable());
        let refused = StoreError::Conflict("key version moved on".into());
        assert!(!SessionError::Registry(RegistryError::Store(refused)).retryable());
        assert!(SessionError::Unexpected("x".into()).retryable());
    }

    #[test]
    fn slow_links_get_longer_timeouts_and_loopback_keeps_its_own() {
        assert_eq!(link_timeout_floor(None), Duration::ZERO);
        assert_eq!(link_timeout_floor(Some("ideal")), Duration::ZERO);
        assert_eq!(link_timeout_floor(Some("gprs")), Duration::from_secs(20));
        assert_eq!(link_timeout_floor(Some("nb-iot")), Duration::from_secs(40));
        assert!(link_timeout_floor(Some("lte-m")) > link_timeout_floor(Some("gprs")));
    }
}
