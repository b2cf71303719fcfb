//! Simulated DLMS/COSEM electricity meters. A [`Meter`] is the object model one meter exposes
//! through `dlms::server::Objects`; its data is a pure function of its seed and the time, so
//! tests can compute what a meter holds without asking it.

mod consumption;
mod meter;

pub use consumption::Consumption;
pub use meter::{Meter, MeterConfig, TimeSource, CLIENT_HLS, CLIENT_LLS, CLIENT_PUBLIC};

/// The DLMS Green Book's example keys: test defaults only, never for a real meter.
pub const TEST_EK: [u8; 16] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
];
/// The Green Book's example authentication key: a test default only.
pub const TEST_AK: [u8; 16] = [
    0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF,
];
/// The LLS password of the simulator: a test default only.
pub const TEST_PASSWORD: &str = "12345678";
