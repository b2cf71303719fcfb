//! One simulated meter's COSEM object model (IDIS-like electricity meter), served through
//! `dlms::server::Objects`. The table [`OBJECTS`] lists every object once; the object list of
//! the association, access rights and dispatch all come from it.

mod profiles;
mod push;
mod serve;
mod table;

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
use crate::faults::Faults;
use crate::make::{ClientSaps, Quirks};
use crate::objects::calendar::ActivityCalendar;
use crate::objects::image::ImageTransfer;
use crate::objects::keys::{KeySet, SecuritySetup};
use crate::objects::limiter::Limiter;
use Quantity::{
    ExportActive as AM, ExportReactive as RM, ImportActive as AP, ImportReactive as RP,
};

pub use push::PushKind;
pub use table::*;

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
    /// The push setups' number_of_retries and repetition_delay (seconds) until a client sets
    /// them.
    pub push_retries: u8,
    pub push_repetition_delay_s: u16,
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
            push_retries: 2,
            push_repetition_delay_s: 1,
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
    /// (number_of_retries, repetition_delay) set by a client, interval setup then alarm setup.
    push_retry: [Option<(u8, u16)>; 2],
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
    /// Ciphered APDUs refused because their invocation counter was not above the client's last.
    replays: u64,
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
            replays: 0,
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

    /// How many ciphered APDUs (an AARQ's initiate request or a request inside an association)
    /// the meter refused because the client presented an invocation counter it had already
    /// seen. Other refusals (wrong keys, wrong password) are not counted.
    pub fn replays(&self) -> u64 {
        self.replays
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
