//! The object table: every object of the meter once, with its class, name, rights and what
//! serves it; the object list, access rights and dispatch all come from it.

use super::*;

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
pub(super) enum Inst {
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
pub(super) enum Kind {
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
    pub(super) attributes: i8,
    pub(super) methods: i8,
    pub(super) writable: &'static [i8],
    pub(super) kind: Kind,
}

pub(super) const fn def(
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

pub(super) const fn o(a: u8, b: u8, c: u8, d: u8, e: u8) -> ObisCode {
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
    def(40, 0, PUSH_INTERVAL, 7, 1, &[3, 6, 7], Kind::Push(false)),
    def(40, 0, PUSH_ALARM, 7, 1, &[3, 6, 7], Kind::Push(true)),
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
