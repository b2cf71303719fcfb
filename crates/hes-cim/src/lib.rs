//! IEC 61968-9 (CIM) messages for the head-end's integration with an MDM: the message envelope
//! (RequestMessage, ResponseMessage, EventMessage), the MeterReadings and EndDeviceEvents
//! payloads we write, the GetMeterReadings, GetEndDeviceEvents and EndDeviceControls we read,
//! ReadingType and EndDeviceEventType codes for our channels and events, and a bounded XML
//! reader for untrusted input; the outbound delivery to an MDM (`outbound`, feature `outbound`:
//! the only part with I/O). The API's endpoint is `hes_api::routes::cim`. See docs/cim.md.

pub mod build;
pub mod event_type;
pub mod message;
#[cfg(feature = "outbound")]
pub mod outbound;
pub mod payload;
pub mod reading_type;
pub mod xml;
pub mod xsd;

pub use message::{code, Refusal, Rejected, ReplyResult, RequestMessage, Response};
