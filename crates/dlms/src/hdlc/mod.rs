//! HDLC link layer (IEC 62056-46): frame format type 3, addressing, parameter negotiation and
//! the sans-I/O link state machine ([`HdlcLink`]) that carries APDUs in normal response mode.
//!
//! Layering: [`fcs`] (CRC-16/X-25), [`address`] and [`control`] are the fields of a
//! [`Frame`]; [`Deframer`] cuts frames out of a byte stream; [`HdlcParams`] is the SNRM/UA
//! information field; [`HdlcLink`] uses all of them.

mod address;
mod control;
mod fcs;
mod frame;
mod link;
mod params;

#[cfg(test)]
mod tests;

pub use address::{client_address, parse_client_address, ServerAddress};
pub use control::Control;
pub use fcs::fcs16;
pub use frame::{Deframer, Frame, MAX_FRAME_LEN, MAX_INFO_LEN};
pub use link::{HdlcLink, LinkEvent, LinkLimits};
pub use params::HdlcParams;

use crate::codec::DecodeError;
use thiserror::Error;

/// The opening and closing flag of every frame.
pub const FLAG: u8 = 0x7E;

/// LLC header (IEC 62056-46 clause 6.4) that starts every APDU sent by the client:
/// destination LSAP 0xE6, source LSAP 0xE6 (command), LLC quality 0x00.
pub const LLC_REQUEST: [u8; 3] = [0xE6, 0xE6, 0x00];
/// LLC header of every APDU sent by the server (source LSAP 0xE7 marks a response).
pub const LLC_RESPONSE: [u8; 3] = [0xE6, 0xE7, 0x00];

/// Why a frame, a parameter field or a link operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HdlcError {
    /// The frame does not start and end with the 0x7E flag.
    #[error("frame is not delimited by 0x7E flags")]
    MissingFlag,
    /// The frame format field is not type 3 (0xA in the upper nibble).
    #[error("frame format 0x{0:02X} is not type 3")]
    BadFormat(u8),
    /// The 11-bit frame length field disagrees with the bytes between the flags.
    #[error("frame length field says {declared}, frame has {actual}")]
    BadLength { declared: usize, actual: usize },
    /// An address field is not 1, 2 or 4 bytes long, or never ends (no byte with LSB 1).
    #[error("invalid {which} address field")]
    BadAddress { which: &'static str },
    /// The header check sequence is wrong.
    #[error("bad HCS")]
    BadHcs,
    /// The frame check sequence is wrong.
    #[error("bad FCS")]
    BadFcs,
    /// A control byte that is not one of the frames this implementation knows.
    #[error("unknown control byte 0x{0:02X}")]
    UnknownControl(u8),
    /// An information field of a size no frame can carry.
    #[error("information field of {0} bytes is too long for one frame")]
    InfoTooLong(usize),
    /// A bad SNRM/UA parameter negotiation field.
    #[error("bad HDLC parameters: {0}")]
    BadParameters(DecodeError),
    /// The deframer buffer overflowed because frames were not taken out; bytes were dropped.
    #[error("deframer buffer overflow, {0} byte(s) dropped")]
    Overflow(usize),
    /// An operation that needs a connected link.
    #[error("link is not connected")]
    NotConnected,
    /// A received APDU exceeded [`LinkLimits::max_apdu`]; it was discarded.
    #[error("received APDU exceeds the {max}-byte limit")]
    ApduTooLarge { max: usize },
    /// An APDU to send exceeded [`LinkLimits::max_apdu`].
    #[error("APDU of {len} bytes exceeds the {max}-byte limit")]
    SendTooLarge { len: usize, max: usize },
    /// A received APDU did not start with the LLC header expected in that direction.
    #[error("missing or wrong LLC header")]
    BadLlc,
}
