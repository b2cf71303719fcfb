//! HDLC addresses (IEC 62056-46 clause 6.4.2.2): extended addressing where the least
//! significant bit of each byte is 1 only on the last byte, and the other 7 bits carry data.

use super::HdlcError;

/// A server (meter) address: an upper HDLC address (logical device) and an optional lower one
/// (physical device), sent on 1, 2 or 4 bytes.
///
/// Values that do not fit `size` (7 bits each for 1 and 2 bytes, 14 bits each for 4 bytes) are
/// truncated on encoding; the `one_byte`/`two_byte`/`four_byte` constructors refuse them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerAddress {
    pub logical: u16,
    pub physical: Option<u16>,
    /// 1, 2 or 4 (anything else encodes as 4).
    pub size: u8,
}

const SEVEN: u16 = 0x7F;
const FOURTEEN: u16 = 0x3FFF;

impl ServerAddress {
    /// Only the logical device, on one byte (logical < 128).
    pub fn one_byte(logical: u16) -> Result<Self, HdlcError> {
        check(logical <= SEVEN)?;
        Ok(Self {
            logical,
            physical: None,
            size: 1,
        })
    }

    /// Logical and physical device, 7 bits each, on two bytes.
    pub fn two_byte(logical: u16, physical: u16) -> Result<Self, HdlcError> {
        check(logical <= SEVEN && physical <= SEVEN)?;
        Ok(Self {
            logical,
            physical: Some(physical),
            size: 2,
        })
    }

    /// Logical and physical device, 14 bits each, on four bytes.
    pub fn four_byte(logical: u16, physical: u16) -> Result<Self, HdlcError> {
        check(logical <= FOURTEEN && physical <= FOURTEEN)?;
        Ok(Self {
            logical,
            physical: Some(physical),
            size: 4,
        })
    }

    /// The address field bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let seven = |v: u16| ((v & SEVEN) as u8) << 1;
        let physical = self.physical.unwrap_or(0);
        match self.size {
            1 => vec![seven(self.logical) | 1],
            2 => vec![seven(self.logical), seven(physical) | 1],
            _ => vec![
                seven(self.logical >> 7),
                seven(self.logical),
                seven(physical >> 7),
                seven(physical) | 1,
            ],
        }
    }

    /// Parses an address field (as cut out by [`Frame::decode`](super::Frame::decode)).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HdlcError> {
        let bad = HdlcError::BadAddress { which: "server" };
        let v = |b: &u8| u16::from(b >> 1);
        match bytes {
            [a] if a & 1 == 1 => Ok(Self {
                logical: v(a),
                physical: None,
                size: 1,
            }),
            [a, b] if a & 1 == 0 && b & 1 == 1 => Ok(Self {
                logical: v(a),
                physical: Some(v(b)),
                size: 2,
            }),
            [a, b, c, d] if a & 1 == 0 && b & 1 == 0 && c & 1 == 0 && d & 1 == 1 => Ok(Self {
                logical: (v(a) << 7) | v(b),
                physical: Some((v(c) << 7) | v(d)),
                size: 4,
            }),
            _ => Err(bad),
        }
    }

    /// Same device, whatever the size it was written with.
    pub(crate) fn same_device(&self, other: &ServerAddress) -> bool {
        self.logical == other.logical && self.physical.unwrap_or(0) == other.physical.unwrap_or(0)
    }
}

fn check(ok: bool) -> Result<(), HdlcError> {
    if ok {
        Ok(())
    } else {
        Err(HdlcError::BadAddress { which: "server" })
    }
}

/// The one-byte address field of a client SAP (0..=127; e.g. 0x10 public client -> 0x21).
pub fn client_address(sap: u8) -> Result<Vec<u8>, HdlcError> {
    if sap > 0x7F {
        return Err(HdlcError::BadAddress { which: "client" });
    }
    Ok(vec![(sap << 1) | 1])
}

/// The client SAP in a one-byte address field.
pub fn parse_client_address(bytes: &[u8]) -> Result<u8, HdlcError> {
    match bytes {
        [a] if a & 1 == 1 => Ok(a >> 1),
        _ => Err(HdlcError::BadAddress { which: "client" }),
    }
}
