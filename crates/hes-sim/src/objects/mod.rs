//! COSEM objects of a simulated meter that hold state of their own, each a plain struct the
//! meter's `dlms::server::Objects` implementation dispatches to.
//!
//! | object | class (version) | OBIS | behaviour |
//! |---|---|---|---|
//! | [`ImageTransfer`] | 18 (0) | [`IMAGE_TRANSFER`] `0.0.44.0.0.255` | firmware upgrade: blocks in any order into a buffer sized at initiate (≤ 4 MiB), resume by re-initiating with the same identifier and size, verify (all blocks, [image format](image) with SHA-256), activate (running version changes, buffer dropped) |
//! | [`ActivityCalendar`] | 20 (0) | [`ACTIVITY_CALENDAR`] `0.0.13.0.0.255` | tariff calendar, default two-rate "HES-TOU-1"; active 2–5 read-only, passive 6–9 writable, activation by method 1 or at attribute 10 (applied lazily: [`ActivityCalendar::tick`]) |
//! | [`Limiter`] | 71 (0) | [`LIMITER`] `0.0.17.0.0.255` | demand limit configuration: thresholds (W) and durations (s) writable, active threshold and emergency state computed from the clock |
//! | [`SecuritySetup`] | 64 (1) | [`SECURITY_SETUP`] `0.0.43.0.0.255` | keys and system titles; method 2 `key_transfer` unwraps every key with the current master key and applies all or nothing |
//!
//! Every object has the same three entry points, with `now` the meter's clock (Unix seconds):
//!
//! ```text
//! fn get(&self, attribute: i8, now: i64) -> Result<Data, DataAccessResult>
//! fn set(&mut self, attribute: i8, value: Data, now: i64) -> DataAccessResult
//! fn action(&mut self, method: i8, params: Option<Data>, now: i64)
//!     -> Result<Option<Data>, ActionResult>
//! ```
//!
//! Attribute 1 (the logical name) is the caller's: `get` answers it `object-undefined`, `set`
//! `read-write-denied`. Common results: an attribute or method the object does not have is
//! `object-undefined`; a read-only attribute on `set` is `read-write-denied`; a value or
//! parameter of the wrong type or shape is `type-unmatched`. Every value comes from an
//! untrusted client: nothing here panics on it, and what an object keeps from it is bounded.

pub mod calendar;
pub mod image;
pub mod keys;
pub mod limiter;

pub use calendar::ActivityCalendar;
pub use image::{build_image, image_version, ImageTransfer};
pub use keys::{KeySet, SecuritySetup};
pub use limiter::Limiter;

use dlms::ObisCode;

/// The logical name of the image transfer object.
pub const IMAGE_TRANSFER: ObisCode = ObisCode::new(0, 0, 44, 0, 0, 255);
/// The logical name of the activity calendar.
pub const ACTIVITY_CALENDAR: ObisCode = ObisCode::new(0, 0, 13, 0, 0, 255);
/// The logical name of the limiter.
pub const LIMITER: ObisCode = ObisCode::new(0, 0, 17, 0, 0, 255);
/// The logical name of the security setup object.
pub const SECURITY_SETUP: ObisCode = ObisCode::new(0, 0, 43, 0, 0, 255);
