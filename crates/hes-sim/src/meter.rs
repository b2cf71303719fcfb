//! One simulated meter's COSEM object model (IDIS-like electricity meter), served through
//! `dlms::server::Objects`. The table [`OBJECTS`] lists every object once; the object list of
//! the association, access rights and dispatch all come from it.

use std::collections::VecDeque;
use std::sync::Arc;

use dlms::axdr::Data;
use dlms::codec::Codec;
use dlms::cosem::association_ln::{
    object_list_to_data, AccessRights, AttributeAccess, AttributeAccessMode, MethodAccess,
    MethodAccessMode, ObjectListElement,
};
use dlms::cosem::profile_generic::{
    self, EntryDescriptor, RangeDescriptor, ENTRY_DESCRIPTOR, RANGE_DESCRIPTOR,
};
use dlms::cosem::CaptureObject;
use dlms::security::{CipherKeys, SecurityContext};
use dlms::server::{CounterState, Objects, RequestContext};
use dlms::xdlms::{ActionResult, Apdu, DataAccessResult, DataNotification, SelectiveAccess};
use dlms::{
    AttributeDescriptor, DateTime, Mechanism, MethodDescriptor, ObisCode, SecurityLevel,
    SystemTitle,
};
use rand::RngCore;

use crate::data::{self, Anomaly, Consumption, Event, EventLog, Quantity, INTERVAL};
use crate::fleet::{ClientSaps, Faults, PushKind, Quirks};
use crate::objects::calendar::ActivityCalendar;
use crate::objects::image::ImageTransfer;
use crate::objects::keys::{KeySet, SecuritySetup};
use crate::objects::limiter::Limiter;

/// The public client: reads, no commands.
pub const CLIENT_PUBLIC: u16 = 16;
/// The LLS client (meter reader).
pub const CLIENT_LLS: u16 = 17;
/// The HLS-GMAC client (management): reads and commands.
pub const CLIENT_HLS: u16 = 1;

/// The firmware version a meter starts with.
pub const FIRMWARE_VERSION: &str = "HES-SIM 0.2.0";

/// Unix seconds "now" for a meter (real time, accelerated, or fixed in tests).
pub type TimeSource = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Event codes the meter records as things happen (the generated history uses
/// [`data::code`]). IDIS-like numbering.
pub mod code {
    pub use crate::data::code::*;
    /// Clock adjusted: the time before.
    pub const CLOCK_ADJUSTED_OLD: u16 = 4;
    /// Clock adjusted: the time after.
    pub const CLOCK_ADJUSTED_NEW: u16 = 5;
    /// A passive calendar became active.
    pub const TOU_ACTIVATED: u16 = 9;
    pub const FIRMWARE_ACTIVATED: u16 = 18;
    /// The relay was opened remotely.
    pub const RELAY_DISCONNECTED: u16 = 70;
    /// The relay was closed remotely.
    pub const RELAY_RECONNECTED: u16 = 71;
    /// New keys were transferred.
    pub const KEYS_CHANGED: u16 = 92;
}

/// Bits of the alarm register 0.0.97.98.0.255 (simulator's assignment).
pub mod alarm {
    pub const POWER: u32 = 1 << 0;
    pub const TAMPER: u32 = 1 << 1;
    pub const RELAY: u32 = 1 << 2;
    pub const FIRMWARE: u32 = 1 << 3;
    pub const CLOCK: u32 = 1 << 4;
    pub const VOLTAGE: u32 = 1 << 5;
}

/// The profiles a meter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// 1.0.99.1.0.255: every 15 minutes, the four energy totals.
    Load,
    /// 1.0.99.2.0.255: every midnight (UTC), energy per tariff.
    Daily,
    /// 0.0.98.1.0.255: the first of each month, the billing registers.
    Billing,
    /// 0.0.99.98.x.255: events with their codes.
    Events(EventLog),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inst {
    Voltage(usize),
    Current(usize),
    Power(usize),
    PowerImport,
    PowerExport,
    Reactive,
    Frequency,
    PowerFactor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Clock,
    Ldn,
    Serial,
    Firmware,
    Energy(Quantity, u8),
    Instant(Inst),
    Profile(Profile),
    EventCode(EventLog),
    AlarmRegister,
    Disconnect,
    Limiter,
    Calendar,
    Image,
    Push(bool),
    Security,
    InvocationCounter,
    Association,
}

/// One object of the meter: class, version, name, attribute and method counts, and which
/// attributes the management client may write.
#[derive(Debug, Clone, Copy)]
pub struct ObjectDef {
    pub class_id: u16,
    pub version: u8,
    pub obis: ObisCode,
    attributes: i8,
    methods: i8,
    writable: &'static [i8],
    kind: Kind,
}

const fn def(
    class_id: u16,
    version: u8,
    obis: ObisCode,
    attributes: i8,
    methods: i8,
    writable: &'static [i8],
    kind: Kind,
) -> ObjectDef {
    ObjectDef {
        class_id,
        version,
        obis,
        attributes,
        methods,
        writable,
        kind,
    }
}

const fn o(a: u8, b: u8, c: u8, d: u8, e: u8) -> ObisCode {
    ObisCode::new(a, b, c, d, e, 255)
}

pub const CLOCK: ObisCode = o(0, 0, 1, 0, 0);
pub const LDN: ObisCode = o(0, 0, 42, 0, 0);
pub const SERIAL: ObisCode = o(0, 0, 96, 1, 0);
pub const FIRMWARE: ObisCode = o(1, 0, 0, 2, 0);
pub const IMPORT: ObisCode = o(1, 0, 1, 8, 0);
pub const EXPORT: ObisCode = o(1, 0, 2, 8, 0);
pub const REACTIVE: ObisCode = o(1, 0, 3, 8, 0);
pub const REACTIVE_EXPORT: ObisCode = o(1, 0, 4, 8, 0);
pub const LOAD_PROFILE: ObisCode = o(1, 0, 99, 1, 0);
pub const DAILY_PROFILE: ObisCode = o(1, 0, 99, 2, 0);
pub const BILLING_PROFILE: ObisCode = o(0, 0, 98, 1, 0);
pub const STANDARD_LOG: ObisCode = o(0, 0, 99, 98, 0);
pub const FRAUD_LOG: ObisCode = o(0, 0, 99, 98, 1);
pub const POWER_QUALITY_LOG: ObisCode = o(0, 0, 99, 98, 4);
pub const ALARM_REGISTER: ObisCode = o(0, 0, 97, 98, 0);
pub const DISCONNECT: ObisCode = o(0, 0, 96, 3, 10);
pub const LIMITER: ObisCode = o(0, 0, 17, 0, 0);
pub const ACTIVITY_CALENDAR: ObisCode = o(0, 0, 13, 0, 0);
pub const IMAGE_TRANSFER: ObisCode = o(0, 0, 44, 0, 0);
pub const PUSH_INTERVAL: ObisCode = o(0, 0, 25, 9, 0);
pub const PUSH_ALARM: ObisCode = o(0, 0, 25, 9, 1);
pub const SECURITY_SETUP: ObisCode = o(0, 0, 43, 0, 0);
pub const INVOCATION_COUNTER: ObisCode = o(0, 0, 43, 1, 0);
pub const CURRENT_ASSOCIATION: ObisCode = o(0, 0, 40, 0, 0);

use Quantity::{
    ExportActive as AM, ExportReactive as RM, ImportActive as AP, ImportReactive as RP,
};

/// Every object of a simulated meter.
pub static OBJECTS: &[ObjectDef] = &[
    def(8, 0, CLOCK, 9, 6, &[2], Kind::Clock),
    def(1, 0, LDN, 2, 0, &[], Kind::Ldn),
    def(1, 0, SERIAL, 2, 0, &[], Kind::Serial),
    def(1, 0, FIRMWARE, 2, 0, &[], Kind::Firmware),
    def(3, 0, IMPORT, 3, 1, &[], Kind::Energy(AP, 0)),
    def(3, 0, o(1, 0, 1, 8, 1), 3, 1, &[], Kind::Energy(AP, 1)),
    def(3, 0, o(1, 0, 1, 8, 2), 3, 1, &[], Kind::Energy(AP, 2)),
    def(3, 0, EXPORT, 3, 1, &[], Kind::Energy(AM, 0)),
    def(3, 0, o(1, 0, 2, 8, 1), 3, 1, &[], Kind::Energy(AM, 1)),
    def(3, 0, o(1, 0, 2, 8, 2), 3, 1, &[], Kind::Energy(AM, 2)),
    def(3, 0, REACTIVE, 3, 1, &[], Kind::Energy(RP, 0)),
    def(3, 0, o(1, 0, 3, 8, 1), 3, 1, &[], Kind::Energy(RP, 1)),
    def(3, 0, o(1, 0, 3, 8, 2), 3, 1, &[], Kind::Energy(RP, 2)),
    def(3, 0, REACTIVE_EXPORT, 3, 1, &[], Kind::Energy(RM, 0)),
    def(3, 0, o(1, 0, 4, 8, 1), 3, 1, &[], Kind::Energy(RM, 1)),
    def(3, 0, o(1, 0, 4, 8, 2), 3, 1, &[], Kind::Energy(RM, 2)),
    def(
        3,
        0,
        o(1, 0, 32, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::Voltage(0)),
    ),
    def(
        3,
        0,
        o(1, 0, 52, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::Voltage(1)),
    ),
    def(
        3,
        0,
        o(1, 0, 72, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::Voltage(2)),
    ),
    def(
        3,
        0,
        o(1, 0, 31, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::Current(0)),
    ),
    def(
        3,
        0,
        o(1, 0, 51, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::Current(1)),
    ),
    def(
        3,
        0,
        o(1, 0, 71, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::Current(2)),
    ),
    def(
        3,
        0,
        o(1, 0, 21, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::Power(0)),
    ),
    def(
        3,
        0,
        o(1, 0, 41, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::Power(1)),
    ),
    def(
        3,
        0,
        o(1, 0, 61, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::Power(2)),
    ),
    def(
        3,
        0,
        o(1, 0, 1, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::PowerImport),
    ),
    def(
        3,
        0,
        o(1, 0, 2, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::PowerExport),
    ),
    def(
        3,
        0,
        o(1, 0, 3, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::Reactive),
    ),
    def(
        3,
        0,
        o(1, 0, 14, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::Frequency),
    ),
    def(
        3,
        0,
        o(1, 0, 13, 7, 0),
        3,
        1,
        &[],
        Kind::Instant(Inst::PowerFactor),
    ),
    def(7, 1, LOAD_PROFILE, 8, 2, &[], Kind::Profile(Profile::Load)),
    def(
        7,
        1,
        DAILY_PROFILE,
        8,
        2,
        &[],
        Kind::Profile(Profile::Daily),
    ),
    def(
        7,
        1,
        BILLING_PROFILE,
        8,
        2,
        &[],
        Kind::Profile(Profile::Billing),
    ),
    def(
        7,
        1,
        STANDARD_LOG,
        8,
        2,
        &[],
        Kind::Profile(Profile::Events(EventLog::Standard)),
    ),
    def(
        7,
        1,
        FRAUD_LOG,
        8,
        2,
        &[],
        Kind::Profile(Profile::Events(EventLog::Fraud)),
    ),
    def(
        7,
        1,
        POWER_QUALITY_LOG,
        8,
        2,
        &[],
        Kind::Profile(Profile::Events(EventLog::PowerQuality)),
    ),
    def(
        1,
        0,
        o(0, 0, 96, 11, 0),
        2,
        0,
        &[],
        Kind::EventCode(EventLog::Standard),
    ),
    def(
        1,
        0,
        o(0, 0, 96, 11, 1),
        2,
        0,
        &[],
        Kind::EventCode(EventLog::Fraud),
    ),
    def(
        1,
        0,
        o(0, 0, 96, 11, 4),
        2,
        0,
        &[],
        Kind::EventCode(EventLog::PowerQuality),
    ),
    def(1, 0, ALARM_REGISTER, 2, 0, &[2], Kind::AlarmRegister),
    def(70, 0, DISCONNECT, 4, 2, &[4], Kind::Disconnect),
    def(
        71,
        0,
        LIMITER,
        11,
        0,
        &[2, 4, 5, 6, 7, 8, 9, 10, 11],
        Kind::Limiter,
    ),
    def(
        20,
        0,
        ACTIVITY_CALENDAR,
        10,
        1,
        &[6, 7, 8, 9, 10],
        Kind::Calendar,
    ),
    def(18, 0, IMAGE_TRANSFER, 7, 4, &[2, 5], Kind::Image),
    def(40, 0, PUSH_INTERVAL, 7, 1, &[3], Kind::Push(false)),
    def(40, 0, PUSH_ALARM, 7, 1, &[3], Kind::Push(true)),
    def(64, 1, SECURITY_SETUP, 5, 2, &[], Kind::Security),
    def(1, 0, INVOCATION_COUNTER, 2, 0, &[], Kind::InvocationCounter),
    def(15, 1, CURRENT_ASSOCIATION, 9, 2, &[], Kind::Association),
];

/// Finds an object by class and name.
pub fn object(class_id: u16, obis: ObisCode) -> Option<&'static ObjectDef> {
    OBJECTS
        .iter()
        .find(|d| d.class_id == class_id && d.obis == obis)
}

#[derive(Clone)]
pub struct MeterConfig {
    pub serial: u32,
    pub seed: u64,
    pub system_title: SystemTitle,
    /// Entries the 15-minute load profile holds (96 = one day).
    pub profile_entries: u32,
    /// Local time offset from UTC, minutes (reported by the clock; profiles are in UTC).
    pub utc_offset_minutes: i16,
    pub time: TimeSource,
    pub saps: ClientSaps,
    pub quirks: Quirks,
    pub keys: KeySet,
    /// Where pushes go (`host:port`), as the push setup objects report it.
    pub push_destination: Option<String>,
}

impl std::fmt::Debug for MeterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeterConfig")
            .field("serial", &self.serial)
            .field("seed", &self.seed)
            .field("system_title", &self.system_title)
            .field("profile_entries", &self.profile_entries)
            .field("saps", &self.saps)
            .field("quirks", &self.quirks)
            .finish()
    }
}

impl MeterConfig {
    pub fn new(serial: u32) -> Self {
        Self {
            serial,
            seed: u64::from(serial).wrapping_mul(0x2545_F491_4F6C_DD1D),
            system_title: SystemTitle(crate::system_title(serial)),
            profile_entries: 96,
            utc_offset_minutes: 0,
            time: Arc::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64)
            }),
            saps: ClientSaps::STANDARD,
            quirks: Quirks::default(),
            keys: KeySet {
                ek: crate::TEST_EK,
                ak: crate::TEST_AK,
                kek: crate::TEST_KEK,
            },
            push_destination: None,
        }
    }
}

/// Periods without supply (relay open or power down): energy is not registered in them.
const MAX_OFF_PERIODS: usize = 32;
/// Live events kept beside the generated history.
const MAX_LIVE_EVENTS: usize = 64;
/// Pushes waiting to be sent.
const MAX_OUTBOX: usize = 16;
/// Days of generated events an event log holds.
const EVENT_LOG_DAYS: i64 = 90;
/// Entries an event log holds at most.
const EVENT_LOG_ENTRIES: usize = 100;
const DAILY_ENTRIES: i64 = 40;
const BILLING_ENTRIES: i64 = 24;
const DAY: i64 = 86_400;

/// One entry of a profile before its values are computed.
#[derive(Debug, Clone, Copy)]
struct Entry {
    time: i64,
    /// The event code (event logs).
    code: u16,
}

/// The optional, rarely-changed parts of a meter, allocated when first touched so that an idle
/// meter stays small.
#[derive(Debug, Default)]
struct Extras {
    calendar: Option<ActivityCalendar>,
    limiter: Option<Limiter>,
    image: Option<ImageTransfer>,
    live_events: VecDeque<Event>,
    /// `(from, to)`: no supply; `to == None` while it lasts.
    off: Vec<(i64, Option<i64>)>,
    /// Energy not registered in off periods folded away (per quantity), and until when.
    folded: [u64; 4],
    folded_until: i64,
}

/// A simulated meter.
#[derive(Debug)]
pub struct Meter {
    cfg: MeterConfig,
    consumption: Consumption,
    /// Seconds added to the time source by clock SETs and drift.
    clock_offset: i64,
    relay_connected: bool,
    powered: bool,
    alarms: u32,
    counters: CounterState,
    security: SecuritySetup,
    pub faults: Faults,
    extras: Option<Box<Extras>>,
    outbox: Vec<PushKind>,
}

fn quantity_index(q: Quantity) -> usize {
    match q {
        Quantity::ImportActive => 0,
        Quantity::ExportActive => 1,
        Quantity::ImportReactive => 2,
        Quantity::ExportReactive => 3,
    }
}

fn date_time(t: i64, offset: i16) -> Data {
    Data::OctetString(DateTime::from_unix(t, offset, 0).to_octets())
}

fn capture(class_id: u16, logical_name: ObisCode, attribute_index: i8) -> CaptureObject {
    CaptureObject {
        class_id,
        logical_name,
        attribute_index,
        data_index: 0,
    }
}

/// Unix time of 00:00 UTC on the first day of the month `months` after January 1970.
fn month_start(months: i64) -> i64 {
    let month = months.rem_euclid(12) as u8 + 1;
    dlms::axdr::days_from_civil(months.div_euclid(12) + 1970, month, 1) * DAY
}

/// Months since January 1970 of the month holding `t` (clamped to years 1..9999).
fn month_of(t: i64) -> i64 {
    const LO: i64 = (1 - 1970) * 12;
    const HI: i64 = (9999 - 1970) * 12;
    // 4800 months are 146,097 days: the estimate is within a month; step to the answer.
    let mut guess = (t.div_euclid(DAY).saturating_mul(4800) / 146_097).clamp(LO, HI);
    while guess > LO && month_start(guess) > t {
        guess -= 1;
    }
    while guess < HI && month_start(guess + 1) <= t {
        guess += 1;
    }
    guess
}

impl Meter {
    pub fn new(cfg: MeterConfig) -> Self {
        Self {
            consumption: Consumption::new(cfg.seed),
            security: SecuritySetup::new(cfg.system_title, cfg.keys.clone()),
            cfg,
            clock_offset: 0,
            relay_connected: true,
            powered: true,
            alarms: 0,
            counters: CounterState::default(),
            faults: Faults::default(),
            extras: None,
            outbox: Vec::new(),
        }
    }

    pub fn config(&self) -> &MeterConfig {
        &self.cfg
    }

    /// The meter's clock, Unix seconds.
    pub fn now(&self) -> i64 {
        (self.cfg.time)() + self.clock_offset
    }

    /// How far the meter's clock is from the time source (drift and adjustments).
    pub fn clock_offset(&self) -> i64 {
        self.clock_offset
    }

    pub fn logical_device_name(&self) -> Vec<u8> {
        crate::logical_device_name(self.cfg.serial).into_bytes()
    }

    pub fn relay_connected(&self) -> bool {
        self.relay_connected
    }

    pub fn powered(&self) -> bool {
        self.powered
    }

    pub fn alarm_register(&self) -> u32 {
        self.alarms
    }

    /// The keys in force (they change with key transfer).
    pub fn keys(&self) -> KeySet {
        self.security.keys().clone()
    }

    pub fn key_version(&self) -> u32 {
        self.security.key_version()
    }

    pub fn firmware_version(&self) -> String {
        self.extras
            .as_ref()
            .and_then(|x| x.image.as_ref())
            .map_or_else(
                || FIRMWARE_VERSION.to_string(),
                |i| i.running_version().into(),
            )
    }

    pub fn calendar_name(&self) -> Vec<u8> {
        self.extras
            .as_ref()
            .and_then(|x| x.calendar.as_ref())
            .map_or_else(
                || crate::objects::calendar::DEFAULT_CALENDAR_NAME.to_vec(),
                ActivityCalendar::active_name,
            )
    }

    /// The last invocation counter the meter accepted from `sap`.
    pub fn last_invocation_counter(&self, sap: u16) -> u32 {
        self.counters.rx_last.get(&sap).copied().unwrap_or(0)
    }

    /// The counter the meter will use for its next ciphered APDU.
    pub fn next_invocation_counter(&self) -> u32 {
        self.counters.tx.max(1)
    }

    fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// Pushes the meter wants sent (alarms raised by its objects), oldest first.
    pub fn take_outbox(&mut self) -> Vec<PushKind> {
        std::mem::take(&mut self.outbox)
    }

    /// Records an event as it happens: in its log, in the alarm register, and as an alarm push.
    pub fn record_event(&mut self, log: EventLog, code: u16, alarm_bits: u32) {
        let time = self.now();
        let x = self.extras();
        if x.live_events.len() >= MAX_LIVE_EVENTS {
            x.live_events.pop_front();
        }
        x.live_events.push_back(Event { time, log, code });
        self.alarms |= alarm_bits;
        if self.outbox.len() < MAX_OUTBOX {
            self.outbox.push(PushKind::Alarm { code, time });
        }
    }

    /// Applies new faults. One-shot faults act now: the counter expected from the management
    /// client jumps ahead; the clock moves.
    pub fn apply_faults(&mut self, faults: Faults) {
        if faults.ic_jump > 0 {
            let sap = self.cfg.saps.management;
            let last = self.counters.rx_last.entry(sap).or_insert(0);
            *last = last.saturating_add(faults.ic_jump);
        }
        if faults.clock_drift_s != 0 {
            self.clock_offset += i64::from(faults.clock_drift_s);
        }
        self.faults = faults;
    }

    /// Power fails or returns: no energy is registered while it is down, and both are logged.
    pub fn set_power(&mut self, on: bool) {
        if on == self.powered {
            return;
        }
        self.set_supply(on, self.relay_connected);
        self.powered = on;
        let code = if on { code::POWER_UP } else { code::POWER_DOWN };
        self.record_event(EventLog::Standard, code, alarm::POWER);
    }

    /// A tamper: the terminal cover opened (and closed again).
    pub fn tamper(&mut self) {
        self.record_event(EventLog::Fraud, code::TERMINAL_COVER_REMOVED, alarm::TAMPER);
        self.record_event(EventLog::Fraud, code::TERMINAL_COVER_CLOSED, 0);
    }

    /// Opens or closes an off period when supply (power and relay together) changes.
    fn set_supply(&mut self, powered: bool, relay: bool) {
        let was = self.powered && self.relay_connected;
        let is = powered && relay;
        if was == is {
            return;
        }
        let now = self.now();
        let x = self.extras.get_or_insert_with(Box::default);
        if !is {
            x.off.push((now, None));
            if x.off.len() > MAX_OFF_PERIODS {
                fold_oldest(x, &self.consumption);
            }
        } else if let Some(last) = x.off.last_mut() {
            if last.1.is_none() {
                last.1 = Some(now);
            }
        }
    }

    /// An energy register at `t`: the consumption model less what fell in off periods.
    pub fn energy(&self, q: Quantity, tariff: u8, t: i64) -> u64 {
        let raw = self.consumption.cumulative(q, tariff, t);
        let Some(x) = &self.extras else { return raw };
        let mut lost = 0u64;
        if t >= x.folded_until && tariff == 0 {
            lost = x.folded.get(quantity_index(q)).copied().unwrap_or(0);
        }
        for &(from, to) in &x.off {
            if from >= t {
                continue;
            }
            let end = to.unwrap_or(i64::MAX).min(t);
            lost += self
                .consumption
                .cumulative(q, tariff, end)
                .saturating_sub(self.consumption.cumulative(q, tariff, from));
        }
        raw.saturating_sub(lost)
    }

    fn supplied_at(&self, t: i64) -> bool {
        match &self.extras {
            None => true,
            Some(x) => !x
                .off
                .iter()
                .any(|&(from, to)| from <= t && to.is_none_or(|e| t < e)),
        }
    }

    pub fn instantaneous(&self) -> data::Instantaneous {
        let now = self.now();
        let mut v = self.consumption.instantaneous(now);
        if !self.supplied_at(now) {
            v.current_ma = [0; 3];
            v.active_power_w = [0; 3];
            v.reactive_power_var = [0; 3];
            v.power_factor_milli = 1000;
            if !self.powered {
                v.voltage_dv = [0; 3];
                v.frequency_mhz = 0;
            }
        }
        v
    }

    /// The columns of a profile.
    pub fn profile_columns(p: Profile) -> Vec<CaptureObject> {
        let reg = |obis| capture(3, obis, 2);
        match p {
            Profile::Load => vec![
                capture(8, CLOCK, 2),
                reg(IMPORT),
                reg(EXPORT),
                reg(REACTIVE),
                reg(REACTIVE_EXPORT),
            ],
            Profile::Daily => vec![
                capture(8, CLOCK, 2),
                reg(o(1, 0, 1, 8, 1)),
                reg(o(1, 0, 1, 8, 2)),
                reg(o(1, 0, 2, 8, 1)),
                reg(o(1, 0, 2, 8, 2)),
            ],
            Profile::Billing => vec![
                capture(8, CLOCK, 2),
                reg(IMPORT),
                reg(o(1, 0, 1, 8, 1)),
                reg(o(1, 0, 1, 8, 2)),
                reg(EXPORT),
                reg(REACTIVE),
                reg(REACTIVE_EXPORT),
            ],
            Profile::Events(log) => vec![
                capture(8, CLOCK, 2),
                capture(1, ObisCode(event_code_obis(log)), 2),
            ],
        }
    }

    /// How often a profile captures, seconds (0: on events).
    fn capture_period(p: Profile) -> u32 {
        match p {
            Profile::Load => INTERVAL as u32,
            Profile::Daily => DAY as u32,
            Profile::Billing | Profile::Events(_) => 0,
        }
    }

    fn max_entries(&self, p: Profile) -> u32 {
        match p {
            Profile::Load => self.cfg.profile_entries,
            Profile::Daily => DAILY_ENTRIES as u32,
            Profile::Billing => BILLING_ENTRIES as u32,
            Profile::Events(_) => EVENT_LOG_ENTRIES as u32,
        }
    }

    /// The entries of a profile captured in `[from, to]` (meter time), oldest first, as the
    /// meter holds them: what a GET of the buffer returns, and the simulator's ground truth.
    pub fn profile_rows(&self, p: Profile, from: i64, to: i64) -> Vec<(i64, Vec<Data>)> {
        self.entries(p, from, to)
            .into_iter()
            .map(|e| (e.time, self.row(p, e)))
            .collect()
    }

    /// Which entries a profile holds in `[from, to]`: their capture times (and event codes),
    /// cheap to list; [`Meter::row`] computes the values of one.
    fn entries(&self, p: Profile, from: i64, to: i64) -> Vec<Entry> {
        let now = self.now();
        let to = to.min(now);
        let at = |time| Entry { time, code: 0 };
        let mut out = Vec::new();
        match p {
            Profile::Load => {
                let last = now.div_euclid(INTERVAL) * INTERVAL;
                let first = last - (i64::from(self.cfg.profile_entries) - 1) * INTERVAL;
                let start = from.max(first);
                let mut end = start.div_euclid(INTERVAL) * INTERVAL;
                if end < start {
                    end += INTERVAL;
                }
                let per_mille = self.faults.profile_anomalies_per_mille;
                while end <= to {
                    if per_mille == 0
                        || data::anomaly(self.cfg.seed, per_mille, end) != Anomaly::Gap
                    {
                        out.push(at(end));
                    }
                    end += INTERVAL;
                }
            }
            Profile::Daily => {
                let last = now.div_euclid(DAY) * DAY;
                let start = from.max(last - (DAILY_ENTRIES - 1) * DAY);
                let mut day = start.div_euclid(DAY) * DAY;
                if day < start {
                    day += DAY;
                }
                while day <= to {
                    out.push(at(day));
                    day += DAY;
                }
            }
            Profile::Billing => {
                let last = month_of(now);
                let mut m = (last - BILLING_ENTRIES + 1).max(month_of(from));
                if month_start(m) < from {
                    m += 1;
                }
                while m <= last && month_start(m) <= to {
                    out.push(at(month_start(m)));
                    m += 1;
                }
            }
            Profile::Events(log) => {
                let mut events: Vec<Event> =
                    data::events(self.cfg.seed, now - EVENT_LOG_DAYS * DAY, now + 1)
                        .into_iter()
                        .filter(|e| e.log == log)
                        .collect();
                if let Some(x) = &self.extras {
                    events.extend(x.live_events.iter().filter(|e| e.log == log));
                    events.sort_by_key(|e| e.time);
                }
                let skip = events.len().saturating_sub(EVENT_LOG_ENTRIES);
                out.extend(
                    events
                        .into_iter()
                        .skip(skip)
                        .filter(|e| e.time >= from && e.time <= to)
                        .map(|e| Entry {
                            time: e.time,
                            code: e.code,
                        }),
                );
            }
        }
        out
    }

    /// The values of one entry, in the profile's column order.
    fn row(&self, p: Profile, e: Entry) -> Vec<Data> {
        let t = e.time;
        let stamp = date_time(t, self.cfg.utc_offset_minutes);
        let e32 = |q, tariff| Data::DoubleLongUnsigned(self.energy(q, tariff, t) as u32);
        match p {
            Profile::Load => {
                let per_mille = self.faults.profile_anomalies_per_mille;
                let spike = if per_mille > 0
                    && data::anomaly(self.cfg.seed, per_mille, t) == Anomaly::Spike
                {
                    data::SPIKE_WH
                } else {
                    0
                };
                vec![
                    stamp,
                    Data::DoubleLongUnsigned((self.energy(AP, 0, t) + spike) as u32),
                    e32(AM, 0),
                    e32(RP, 0),
                    e32(RM, 0),
                ]
            }
            Profile::Daily => vec![stamp, e32(AP, 1), e32(AP, 2), e32(AM, 1), e32(AM, 2)],
            Profile::Billing => vec![
                stamp,
                e32(AP, 0),
                e32(AP, 1),
                e32(AP, 2),
                e32(AM, 0),
                e32(RP, 0),
                e32(RM, 0),
            ],
            Profile::Events(_) => vec![stamp, Data::LongUnsigned(e.code)],
        }
    }

    fn last_event_code(&self, log: EventLog) -> u16 {
        let now = self.now();
        self.entries(Profile::Events(log), now - EVENT_LOG_DAYS * DAY, now)
            .last()
            .map_or(0, |e| e.code)
    }

    fn profile_get(
        &self,
        p: Profile,
        attribute: i8,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        let columns = Self::profile_columns(p);
        match attribute {
            2 => {
                let rows = match access {
                    Some(sa) if sa.selector == RANGE_DESCRIPTOR => {
                        let range = RangeDescriptor::from_data(&sa.parameters)
                            .map_err(|_| DataAccessResult::OtherReason)?;
                        let bound = |d: &Data| {
                            d.as_date_time()
                                .map(|dt| (dt.deviation, dt.to_unix()))
                                .ok_or(DataAccessResult::TypeUnmatched)
                        };
                        let (dev_from, from) = bound(&range.from_value)?;
                        let (dev_to, to) = bound(&range.to_value)?;
                        if self.cfg.quirks.no_deviation_in_range
                            && (dev_from != i16::MIN || dev_to != i16::MIN)
                        {
                            return Err(DataAccessResult::OtherReason);
                        }
                        let (Some(from), Some(to)) = (from, to) else {
                            return Err(DataAccessResult::OtherReason);
                        };
                        // Generate the range only; `select` then picks exactly and the columns.
                        let rows: Vec<Vec<Data>> = self
                            .profile_rows(p, from.saturating_sub(DAY), to.saturating_add(DAY))
                            .into_iter()
                            .map(|(_, r)| r)
                            .collect();
                        profile_generic::select(&rows, &columns, sa.selector, &sa.parameters)
                            .map_err(|_| DataAccessResult::OtherReason)?
                    }
                    Some(sa) if sa.selector == ENTRY_DESCRIPTOR => {
                        let d = EntryDescriptor::from_data(&sa.parameters)
                            .map_err(|_| DataAccessResult::OtherReason)?;
                        // Compute only the entries asked for, then let `select` pick columns.
                        let all = self.entries(p, i64::MIN, i64::MAX);
                        let first = d.from_entry.max(1) as usize - 1;
                        let last = match d.to_entry {
                            0 => all.len(),
                            n => (n as usize).min(all.len()),
                        };
                        let rows: Vec<Vec<Data>> = all
                            .get(first..last.max(first))
                            .unwrap_or_default()
                            .iter()
                            .map(|&e| self.row(p, e))
                            .collect();
                        let columns_only = EntryDescriptor {
                            from_entry: 1,
                            to_entry: 0,
                            ..d
                        };
                        profile_generic::select(
                            &rows,
                            &columns,
                            ENTRY_DESCRIPTOR,
                            &columns_only.to_data(),
                        )
                        .map_err(|_| DataAccessResult::OtherReason)?
                    }
                    Some(_) => return Err(DataAccessResult::OtherReason),
                    None => self
                        .profile_rows(p, i64::MIN, i64::MAX)
                        .into_iter()
                        .map(|(_, r)| r)
                        .collect(),
                };
                Ok(Data::Array(rows.into_iter().map(Data::Structure).collect()))
            }
            3 => Ok(Data::Array(
                columns.iter().map(CaptureObject::to_data).collect(),
            )),
            4 => Ok(Data::DoubleLongUnsigned(Self::capture_period(p))),
            5 => Ok(Data::Enum(1)), // fifo
            6 => Ok(Data::Structure(vec![
                Data::LongUnsigned(0),
                Data::OctetString(vec![0; 6]),
                Data::Integer(0),
                Data::LongUnsigned(0),
            ])),
            7 => Ok(Data::DoubleLongUnsigned(
                self.entries(p, i64::MIN, i64::MAX).len() as u32,
            )),
            8 => Ok(Data::DoubleLongUnsigned(self.max_entries(p))),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    fn energy_get(&self, q: Quantity, tariff: u8, attribute: i8) -> Result<Data, DataAccessResult> {
        match attribute {
            2 => Ok(Data::DoubleLongUnsigned(
                self.energy(q, tariff, self.now()) as u32
            )),
            // Scaler 0; unit Wh (30) or varh (32).
            3 => Ok(Data::Structure(vec![
                Data::Integer(0),
                Data::Enum(match q {
                    AP | AM => 30,
                    RP | RM => 32,
                }),
            ])),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    fn instant_get(&self, i: Inst, attribute: i8) -> Result<Data, DataAccessResult> {
        // (scaler, unit) per the Blue Book unit table: V 35, A 33, W 27, var 29, Hz 44.
        let (scaler, unit) = match i {
            Inst::Voltage(_) => (-1, 35),
            Inst::Current(_) => (-3, 33),
            Inst::Power(_) | Inst::PowerImport | Inst::PowerExport => (0, 27),
            Inst::Reactive => (0, 29),
            Inst::Frequency => (-3, 44),
            Inst::PowerFactor => (-3, 255),
        };
        match attribute {
            2 => {
                let v = self.instantaneous();
                let pick = |a: &[u32; 3], k: usize| a.get(k).copied().unwrap_or(0);
                Ok(match i {
                    Inst::Voltage(k) => {
                        Data::LongUnsigned(v.voltage_dv.get(k).copied().unwrap_or(0))
                    }
                    Inst::Current(k) => Data::DoubleLongUnsigned(pick(&v.current_ma, k)),
                    Inst::Power(k) => {
                        Data::DoubleLong(v.active_power_w.get(k).copied().unwrap_or(0))
                    }
                    Inst::PowerImport => Data::DoubleLongUnsigned(
                        v.active_power_w.iter().map(|&w| w.max(0) as u32).sum(),
                    ),
                    Inst::PowerExport => Data::DoubleLongUnsigned(
                        v.active_power_w.iter().map(|&w| (-w).max(0) as u32).sum(),
                    ),
                    Inst::Reactive => Data::DoubleLong(v.reactive_power_var.iter().sum()),
                    Inst::Frequency => Data::LongUnsigned(v.frequency_mhz.min(65_535) as u16),
                    Inst::PowerFactor => Data::LongUnsigned(v.power_factor_milli),
                })
            }
            3 => Ok(Data::Structure(vec![
                Data::Integer(scaler),
                Data::Enum(unit),
            ])),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    fn clock_get(&self, attribute: i8) -> Result<Data, DataAccessResult> {
        match attribute {
            2 => Ok(date_time(self.now(), self.cfg.utc_offset_minutes)),
            3 => Ok(Data::Long(self.cfg.utc_offset_minutes)),
            4 => Ok(Data::Unsigned(0)),
            5 | 6 => Ok(Data::OctetString(vec![0xFF; 12])),
            7 => Ok(Data::Integer(60)),
            8 => Ok(Data::Boolean(false)),
            9 => Ok(Data::Enum(1)),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    fn push_get(&self, alarm_push: bool, attribute: i8) -> Result<Data, DataAccessResult> {
        match attribute {
            2 => Ok(Data::Array(
                Self::push_objects(alarm_push)
                    .iter()
                    .map(CaptureObject::to_data)
                    .collect(),
            )),
            3 => Ok(Data::Structure(vec![
                Data::Enum(0), // TCP
                Data::OctetString(
                    self.cfg
                        .push_destination
                        .clone()
                        .unwrap_or_default()
                        .into_bytes(),
                ),
                Data::Enum(0), // A-XDR APDU
            ])),
            4 => Ok(Data::Array(Vec::new())),
            5 => Ok(Data::LongUnsigned(0)),
            6 => Ok(Data::Unsigned(2)),
            7 => Ok(Data::LongUnsigned(1)),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    /// What each push carries, in order (the body of the data notification is a structure of
    /// these values).
    pub fn push_objects(alarm_push: bool) -> Vec<CaptureObject> {
        if alarm_push {
            vec![
                capture(1, LDN, 2),
                capture(8, CLOCK, 2),
                capture(1, ALARM_REGISTER, 2),
                capture(1, o(0, 0, 96, 11, 0), 2),
            ]
        } else {
            vec![
                capture(1, LDN, 2),
                capture(8, CLOCK, 2),
                capture(3, IMPORT, 2),
                capture(3, EXPORT, 2),
                capture(3, REACTIVE, 2),
                capture(3, REACTIVE_EXPORT, 2),
            ]
        }
    }

    /// The plain data notification of a push.
    pub fn push_notification(&self, kind: PushKind, invoke_id: u32) -> DataNotification {
        let off = self.cfg.utc_offset_minutes;
        let ldn = Data::OctetString(self.logical_device_name());
        let (at, body) = match kind {
            PushKind::Interval(t) => {
                let e = |q| Data::DoubleLongUnsigned(self.energy(q, 0, t) as u32);
                (t, vec![ldn, date_time(t, off), e(AP), e(AM), e(RP), e(RM)])
            }
            PushKind::Alarm { code, time } => (
                time,
                vec![
                    ldn,
                    date_time(time, off),
                    Data::DoubleLongUnsigned(self.alarms),
                    Data::LongUnsigned(code),
                ],
            ),
        };
        DataNotification {
            long_invoke_id_and_priority: invoke_id & 0x00FF_FFFF,
            date_time: Some(DateTime::from_unix(at, off, 0).to_octets()),
            body: Data::Structure(body),
        }
    }

    /// A push ready for the wire: the notification, ciphered (general-glo, authenticated and
    /// encrypted, with the meter's next invocation counter), in a wrapper frame to `wport`.
    pub fn push_frame(&mut self, kind: PushKind, wport: u16) -> Option<Vec<u8>> {
        let keys = self.keys();
        let ic = self.counters.tx.max(1);
        let plain = Apdu::DataNotification(self.push_notification(kind, ic)).to_bytes();
        let mut ctx = SecurityContext::new(
            SecurityLevel::AuthenticatedEncrypted,
            self.cfg.system_title,
            CipherKeys {
                ek: keys.ek,
                ak: keys.ak,
            },
            ic,
        );
        let ciphered = ctx.protect_general_glo(&plain).ok()?;
        self.counters.tx = ctx.next_tx_invocation_counter();
        let mut out = Vec::with_capacity(ciphered.len() + 8);
        dlms::wrapper::encode(1, wport, &ciphered, &mut out).ok()?;
        Some(out)
    }

    fn is_management(&self, ctx: &RequestContext) -> bool {
        ctx.client_sap == self.cfg.saps.management && ctx.mechanism.is_hls()
    }

    /// Every object with its class version and what `client` may do with it.
    fn object_list(&self, ctx: &RequestContext) -> Vec<ObjectListElement> {
        let manage = self.is_management(ctx);
        OBJECTS
            .iter()
            .map(|d| {
                let attributes = (1..=d.attributes)
                    .map(|attribute| AttributeAccess {
                        attribute,
                        mode: if manage && d.writable.contains(&attribute) {
                            AttributeAccessMode::ReadWrite
                        } else if d.kind == Kind::Association && attribute == 7 {
                            AttributeAccessMode::NoAccess
                        } else {
                            AttributeAccessMode::Read
                        },
                        selectors: (d.class_id == 7 && attribute == 2).then(|| vec![1, 2]),
                    })
                    .collect();
                let methods = (1..=d.methods)
                    .map(|method| MethodAccess {
                        method,
                        mode: if manage {
                            MethodAccessMode::Access
                        } else {
                            MethodAccessMode::NoAccess
                        },
                    })
                    .collect();
                ObjectListElement {
                    class_id: d.class_id,
                    version: d.version,
                    logical_name: d.obis,
                    access_rights: AccessRights {
                        attributes,
                        methods,
                    },
                }
            })
            .collect()
    }

    fn association_get(
        &self,
        ctx: &RequestContext,
        attribute: i8,
    ) -> Result<Data, DataAccessResult> {
        match attribute {
            2 => Ok(object_list_to_data(&self.object_list(ctx))),
            3 => Ok(Data::Structure(vec![
                Data::Integer(ctx.client_sap as i8),
                Data::LongUnsigned(1),
            ])),
            4 => Ok(Data::Structure(vec![
                Data::Unsigned(2),
                Data::Unsigned(16),
                Data::LongUnsigned(756),
                Data::Unsigned(5),
                Data::Unsigned(8),
                Data::Unsigned(1),
                Data::Unsigned(if ctx.security == SecurityLevel::None {
                    1
                } else {
                    3
                }),
            ])),
            // The mechanism name as the Blue Book's structure of the OID 2.16.756.5.8.2.x.
            6 => Ok(Data::Structure(vec![
                Data::Unsigned(2),
                Data::Unsigned(16),
                Data::LongUnsigned(756),
                Data::Unsigned(5),
                Data::Unsigned(8),
                Data::Unsigned(2),
                Data::Unsigned(ctx.mechanism as u8),
            ])),
            7 => Err(DataAccessResult::ReadWriteDenied), // the secret is never readable
            8 => Ok(Data::Enum(2)),                      // associated
            9 => Ok(Data::OctetString(SECURITY_SETUP.as_bytes().to_vec())),
            // xDLMS_context_info: conformance, max receive and send PDU sizes, DLMS version,
            // quality of service, cyphering info.
            5 => Ok(Data::Structure(vec![
                Data::BitString(dlms::axdr::BitString {
                    bits: 24,
                    bytes: vec![0x00, 0x7E, 0x1F],
                }),
                Data::LongUnsigned(self.cfg.quirks.max_pdu()),
                Data::LongUnsigned(self.cfg.quirks.max_pdu()),
                Data::Unsigned(6),
                Data::Integer(0),
                Data::OctetString(Vec::new()),
            ])),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    fn disconnect_action(&mut self, method: i8) -> Result<Option<Data>, ActionResult> {
        let connect = match method {
            1 => false,
            2 => true,
            _ => return Err(ActionResult::ObjectUndefined),
        };
        if connect != self.relay_connected {
            self.set_supply(self.powered, connect);
            self.relay_connected = connect;
            let code = if connect {
                code::RELAY_RECONNECTED
            } else {
                code::RELAY_DISCONNECTED
            };
            self.record_event(EventLog::Standard, code, alarm::RELAY);
        }
        Ok(None)
    }
}

/// Folds the oldest finished off period into the per-quantity constant.
fn fold_oldest(x: &mut Extras, c: &Consumption) {
    let Some(pos) = x.off.iter().position(|p| p.1.is_some()) else {
        return;
    };
    let (from, to) = x.off.remove(pos);
    let to = to.unwrap_or(from);
    for q in Quantity::ALL {
        if let Some(f) = x.folded.get_mut(quantity_index(q)) {
            *f += c
                .cumulative(q, 0, to)
                .saturating_sub(c.cumulative(q, 0, from));
        }
    }
    x.folded_until = x.folded_until.max(to);
}

fn event_code_obis(log: EventLog) -> [u8; 6] {
    match log {
        EventLog::Standard => [0, 0, 96, 11, 0, 255],
        EventLog::Fraud => [0, 0, 96, 11, 1, 255],
        EventLog::PowerQuality => [0, 0, 96, 11, 4, 255],
    }
}

impl Objects for Meter {
    fn get(
        &mut self,
        ctx: &RequestContext,
        a: &AttributeDescriptor,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        let Some(d) = object(a.class_id, a.instance) else {
            return Err(DataAccessResult::ObjectUndefined);
        };
        if a.attribute == 1 {
            return Ok(Data::OctetString(a.instance.as_bytes().to_vec()));
        }
        if a.attribute > d.attributes || a.attribute < 1 {
            return Err(DataAccessResult::ObjectUndefined);
        }
        let now = self.now();
        match d.kind {
            Kind::Clock => self.clock_get(a.attribute),
            Kind::Ldn => Ok(Data::OctetString(self.logical_device_name())),
            Kind::Serial => Ok(Data::VisibleString(
                format!("{:08}", self.cfg.serial).into_bytes(),
            )),
            Kind::Firmware => Ok(Data::VisibleString(self.firmware_version().into_bytes())),
            Kind::Energy(q, t) => self.energy_get(q, t, a.attribute),
            Kind::Instant(i) => self.instant_get(i, a.attribute),
            Kind::Profile(p) => self.profile_get(p, a.attribute, access),
            Kind::EventCode(log) => Ok(Data::LongUnsigned(self.last_event_code(log))),
            Kind::AlarmRegister => Ok(Data::DoubleLongUnsigned(self.alarms)),
            Kind::Disconnect => match a.attribute {
                2 => Ok(Data::Boolean(self.relay_connected)),
                3 => Ok(Data::Enum(u8::from(self.relay_connected))),
                _ => Ok(Data::Enum(4)),
            },
            Kind::Limiter => match self.extras.as_ref().and_then(|x| x.limiter.as_ref()) {
                Some(l) => l.get(a.attribute, now),
                None => Limiter::new().get(a.attribute, now),
            },
            Kind::Calendar => {
                let x = self.extras();
                match x.calendar.as_mut() {
                    Some(c) => {
                        c.tick(now);
                        c.get(a.attribute, now)
                    }
                    None => ActivityCalendar::new().get(a.attribute, now),
                }
            }
            Kind::Image => match self.extras.as_ref().and_then(|x| x.image.as_ref()) {
                Some(i) => i.get(a.attribute, now),
                None => {
                    ImageTransfer::new(FIRMWARE_VERSION, IMAGE_BLOCK_SIZE).get(a.attribute, now)
                }
            },
            Kind::Push(alarm_push) => self.push_get(alarm_push, a.attribute),
            Kind::Security => {
                if a.attribute == 2 {
                    // What this association actually runs.
                    return Ok(Data::Enum(match ctx.security {
                        SecurityLevel::None => 0,
                        _ => crate::objects::keys::SECURITY_POLICY_AUTH_ENC,
                    }));
                }
                self.security.get(a.attribute, now)
            }
            Kind::InvocationCounter => Ok(Data::DoubleLongUnsigned(
                self.last_invocation_counter(self.cfg.saps.management),
            )),
            Kind::Association => self.association_get(ctx, a.attribute),
        }
    }

    fn set(
        &mut self,
        ctx: &RequestContext,
        a: &AttributeDescriptor,
        _access: Option<&SelectiveAccess>,
        value: Data,
    ) -> DataAccessResult {
        let Some(d) = object(a.class_id, a.instance) else {
            return DataAccessResult::ObjectUndefined;
        };
        if a.attribute < 1 || a.attribute > d.attributes {
            return DataAccessResult::ObjectUndefined;
        }
        if !self.is_management(ctx) || !d.writable.contains(&a.attribute) {
            return DataAccessResult::ReadWriteDenied;
        }
        let now = self.now();
        match d.kind {
            Kind::Clock => match value.as_date_time().and_then(|dt| dt.to_unix()) {
                Some(t) => {
                    self.record_event(EventLog::Standard, code::CLOCK_ADJUSTED_OLD, 0);
                    self.clock_offset += t - now;
                    self.record_event(EventLog::Standard, code::CLOCK_ADJUSTED_NEW, alarm::CLOCK);
                    DataAccessResult::Success
                }
                None => DataAccessResult::TypeUnmatched,
            },
            Kind::AlarmRegister => match value {
                Data::DoubleLongUnsigned(v) => {
                    self.alarms = v;
                    DataAccessResult::Success
                }
                _ => DataAccessResult::TypeUnmatched,
            },
            Kind::Disconnect => match value {
                Data::Enum(_) => DataAccessResult::Success,
                _ => DataAccessResult::TypeUnmatched,
            },
            Kind::Limiter => {
                self.extras()
                    .limiter
                    .get_or_insert_with(Limiter::new)
                    .set(a.attribute, value, now)
            }
            Kind::Calendar => {
                let c = self
                    .extras()
                    .calendar
                    .get_or_insert_with(ActivityCalendar::new);
                c.tick(now);
                c.set(a.attribute, value, now)
            }
            Kind::Image => self.image().set(a.attribute, value, now),
            Kind::Push(_) => match value {
                Data::Structure(_) => DataAccessResult::Success,
                _ => DataAccessResult::TypeUnmatched,
            },
            _ => DataAccessResult::ReadWriteDenied,
        }
    }

    fn action(
        &mut self,
        ctx: &RequestContext,
        m: &MethodDescriptor,
        parameters: Option<Data>,
    ) -> Result<Option<Data>, ActionResult> {
        let Some(d) = object(m.class_id, m.instance) else {
            return Err(ActionResult::ObjectUndefined);
        };
        if m.method < 1 || m.method > d.methods {
            return Err(ActionResult::ObjectUndefined);
        }
        if !self.is_management(ctx) || ctx.mechanism == Mechanism::None {
            return Err(ActionResult::ReadWriteDenied);
        }
        let now = self.now();
        match d.kind {
            Kind::Disconnect => self.disconnect_action(m.method),
            Kind::Calendar => {
                let before = self.calendar_name();
                let r = self
                    .extras()
                    .calendar
                    .get_or_insert_with(ActivityCalendar::new)
                    .action(m.method, parameters, now);
                if r.is_ok() && self.calendar_name() != before {
                    self.record_event(EventLog::Standard, code::TOU_ACTIVATED, 0);
                }
                r
            }
            Kind::Image => {
                let before = self.firmware_version();
                let r = self.image().action(m.method, parameters, now);
                if r.is_ok() && self.firmware_version() != before {
                    self.record_event(
                        EventLog::Standard,
                        code::FIRMWARE_ACTIVATED,
                        alarm::FIRMWARE,
                    );
                }
                r
            }
            Kind::Security => {
                let version = self.security.key_version();
                let r = self.security.action(m.method, parameters, now);
                if self.security.key_version() != version {
                    self.record_event(EventLog::Standard, code::KEYS_CHANGED, 0);
                }
                r
            }
            Kind::Push(alarm_push) => {
                if self.outbox.len() < MAX_OUTBOX {
                    let kind = if alarm_push {
                        PushKind::Alarm { code: 0, time: now }
                    } else {
                        PushKind::Interval(now.div_euclid(INTERVAL) * INTERVAL)
                    };
                    self.outbox.push(kind);
                }
                Ok(None)
            }
            Kind::Clock | Kind::Profile(_) | Kind::Energy(..) | Kind::Instant(_) => {
                // Reset, capture, adjust-to-quarter and the like: accepted, no effect on a
                // meter whose data is a function of time.
                Ok(None)
            }
            _ => Err(ActionResult::ObjectUndefined),
        }
    }

    fn counters(&mut self) -> &mut CounterState {
        &mut self.counters
    }

    fn fill_random(&mut self, buf: &mut [u8]) {
        rand::thread_rng().fill_bytes(buf);
    }
}

/// Block size of the image transfer (fits a 128-byte PDU's block after the ciphering overhead
/// is not needed: blocks travel as ACTION parameters, cut by the client when longer).
pub const IMAGE_BLOCK_SIZE: u32 = 192;

impl Meter {
    fn image(&mut self) -> &mut ImageTransfer {
        self.extras()
            .image
            .get_or_insert_with(|| ImageTransfer::new(FIRMWARE_VERSION, IMAGE_BLOCK_SIZE))
    }
}
