//! Simulated DLMS/COSEM electricity meters: a fleet of thousands in one process.
//!
//! * [`Meter`]: one meter's object model (IDIS-like), served through `dlms::server::Objects`;
//!   its data is a pure function of its seed and its clock ([`data`]), so tests can compute
//!   what a meter holds without asking it.
//! * [`objects`]: the stateful objects (image transfer, calendar, limiter, security setup).
//! * [`fleet`]: many meters, each its own TCP endpoint, with an inventory, pushes, faults and
//!   quirks on demand; [`control`]: the HTTP control surface and ground truth.
//! * [`link`]: per-meter link profiles (GPRS, LTE-M, NB-IoT or custom) emulated in user space.

pub mod control;
pub mod data;
pub mod faults;
pub mod fleet;
pub mod link;
pub mod make;
mod meter;
pub mod objects;
pub mod pki;

pub use meter::{
    alarm, code, object, Meter, MeterConfig, ObjectDef, Profile, TimeSource, CLIENT_HLS,
    CLIENT_LLS, CLIENT_PUBLIC, FIRMWARE_VERSION, IMAGE_BLOCK_SIZE, OBJECTS,
};
/// Logical names of the meter's objects.
pub mod obis {
    pub use crate::meter::{
        ACTIVITY_CALENDAR, ALARM_REGISTER, BILLING_PROFILE, CLOCK, CURRENT_ASSOCIATION,
        DAILY_PROFILE, DISCONNECT, EXPORT, FIRMWARE, FRAUD_LOG, IMAGE_TRANSFER, IMPORT,
        INVOCATION_COUNTER, LDN, LIMITER, LOAD_PROFILE, POWER_QUALITY_LOG, PUSH_ALARM,
        PUSH_INTERVAL, REACTIVE, REACTIVE_EXPORT, SECURITY_SETUP, SERIAL, STANDARD_LOG,
    };
}

/// The DLMS Green Book's example keys: test defaults only, never for a real meter.
pub const TEST_EK: [u8; 16] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
];
/// The Green Book's example authentication key: a test default only.
pub const TEST_AK: [u8; 16] = [
    0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF,
];
/// The Green Book's example master key (KEK): a test default only.
pub const TEST_KEK: [u8; 16] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
];
/// The LLS password of the simulator: a test default only.
pub const TEST_PASSWORD: &str = "12345678";

/// The logical device name of meter `serial`: "HES" and the serial on 13 digits (16 bytes).
pub fn logical_device_name(serial: u32) -> String {
    format!("HES{serial:013}")
}

/// The system title of meter `serial`: the manufacturer flag "HES", a zero, the serial.
pub fn system_title(serial: u32) -> [u8; 8] {
    let t = serial.to_be_bytes();
    [b'H', b'E', b'S', 0, t[0], t[1], t[2], t[3]]
}
