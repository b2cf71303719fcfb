//! A sans-I/O DLMS/COSEM (IEC 62056) protocol stack.
//!
//! Nothing here opens a socket, reads a clock or needs an async runtime: state machines take
//! bytes and the current time in and hand bytes, timeouts and events out. `dlms-net` drives them
//! over TCP. Every decoder takes untrusted bytes and returns a typed error, never panics.

pub mod acse;
pub mod axdr;
pub mod client;
pub mod codec;
pub mod cosem;
pub mod error;
pub mod hdlc;
pub mod link;
pub mod obis;
pub mod security;
pub mod server;
pub mod types;
pub mod wrapper;
pub mod xdlms;

pub use axdr::{Data, DateTime};
pub use codec::{Codec, DecodeError, Reader};
pub use obis::ObisCode;
pub use types::{
    ApplicationContext, AttributeDescriptor, Authentication, Mechanism, MethodDescriptor,
    SecurityLevel, SystemTitle,
};
