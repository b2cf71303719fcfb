//! The HDLC parameter negotiation field carried by SNRM and UA (IEC 62056-46 clause 6.4.4.4.3.2,
//! after ISO/IEC 13239): format identifier 0x81, group identifier 0x80, group length, then
//! parameters as `id, length, value`.

use crate::codec::{Codec, DecodeError, Reader};

const FORMAT_IDENTIFIER: u8 = 0x81;
const GROUP_IDENTIFIER: u8 = 0x80;
const MAXIMUM_INFORMATION_FIELD_LENGTH_TRANSMIT: u8 = 0x05;
const MAXIMUM_INFORMATION_FIELD_LENGTH_RECEIVE: u8 = 0x06;
const WINDOW_SIZE_TRANSMIT: u8 = 0x07;
const WINDOW_SIZE_RECEIVE: u8 = 0x08;
/// ISO/IEC 13239 and the Green Book's own examples send window sizes on four bytes.
const WINDOW_VALUE_LEN: u8 = 4;

const DEFAULT_MAX_INFO: u16 = 128;
const DEFAULT_WINDOW: u8 = 1;
/// Sequence numbers are modulo 8, so at most 7 frames may be outstanding.
pub const MAX_WINDOW: u8 = 7;

/// Link parameters, seen from the station that sends them: `max_info_tx` is what it will send
/// at most per frame, `max_info_rx` what it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HdlcParams {
    pub max_info_tx: u16,
    pub max_info_rx: u16,
    pub window_tx: u8,
    pub window_rx: u8,
}

impl Default for HdlcParams {
    fn default() -> Self {
        Self {
            max_info_tx: DEFAULT_MAX_INFO,
            max_info_rx: DEFAULT_MAX_INFO,
            window_tx: DEFAULT_WINDOW,
            window_rx: DEFAULT_WINDOW,
        }
    }
}

impl HdlcParams {
    /// The same parameters seen from the other end (what one sends, the other receives).
    pub fn mirrored(self) -> Self {
        Self {
            max_info_tx: self.max_info_rx,
            max_info_rx: self.max_info_tx,
            window_tx: self.window_rx,
            window_rx: self.window_tx,
        }
    }

    /// The parameters a station may use given its own and the peer's proposal (the peer's
    /// seen from the peer): each limit is the smaller of what one side sends and the other
    /// accepts.
    pub fn negotiate(self, peer: HdlcParams) -> Self {
        let peer = peer.mirrored();
        Self {
            max_info_tx: self.max_info_tx.min(peer.max_info_tx),
            max_info_rx: self.max_info_rx.min(peer.max_info_rx),
            window_tx: self.window_tx.min(peer.window_tx),
            window_rx: self.window_rx.min(peer.window_rx),
        }
    }

    /// Parameters in an SNRM or UA information field; an empty field means the defaults.
    pub fn from_info(info: &[u8]) -> Result<Self, DecodeError> {
        if info.is_empty() {
            Ok(Self::default())
        } else {
            Self::decode_exact(info)
        }
    }
}

fn put_value(out: &mut Vec<u8>, id: u8, value: u32, len: u8) {
    out.extend_from_slice(&[id, len]);
    let bytes = value.to_be_bytes();
    out.extend(bytes.iter().skip(4 - usize::from(len)));
}

fn info_len(v: u16) -> u8 {
    if v <= 0xFF {
        1
    } else {
        2
    }
}

impl Codec for HdlcParams {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[FORMAT_IDENTIFIER, GROUP_IDENTIFIER, 0]);
        let start = out.len();
        let (tx, rx) = (self.max_info_tx, self.max_info_rx);
        put_value(
            out,
            MAXIMUM_INFORMATION_FIELD_LENGTH_TRANSMIT,
            tx.into(),
            info_len(tx),
        );
        put_value(
            out,
            MAXIMUM_INFORMATION_FIELD_LENGTH_RECEIVE,
            rx.into(),
            info_len(rx),
        );
        put_value(
            out,
            WINDOW_SIZE_TRANSMIT,
            self.window_tx.into(),
            WINDOW_VALUE_LEN,
        );
        put_value(
            out,
            WINDOW_SIZE_RECEIVE,
            self.window_rx.into(),
            WINDOW_VALUE_LEN,
        );
        let group_len = (out.len() - start) as u8;
        if let Some(slot) = out.get_mut(start - 1) {
            *slot = group_len;
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        const WHAT: &str = "HDLC parameters";
        let format = r.u8(WHAT)?;
        if format != FORMAT_IDENTIFIER {
            return Err(DecodeError::UnknownTag {
                what: WHAT,
                tag: format,
            });
        }
        let group = r.u8(WHAT)?;
        if group != GROUP_IDENTIFIER {
            return Err(DecodeError::UnknownTag {
                what: WHAT,
                tag: group,
            });
        }
        let len = usize::from(r.u8(WHAT)?);
        let mut g = Reader::new(r.take(len, WHAT)?);
        let mut p = HdlcParams::default();
        while !g.is_empty() {
            let id = g.u8(WHAT)?;
            let n = g.u8(WHAT)?;
            let raw = g.take(usize::from(n), WHAT)?;
            // ISO/IEC 13239 leaves the value length free; meters use 1, 2 or 4 bytes.
            if n == 0 || n > 4 {
                return Err(DecodeError::Invalid {
                    what: WHAT,
                    why: "parameter value must be 1 to 4 bytes",
                });
            }
            let value = raw.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b));
            let max_info = || {
                if value == 0 {
                    return Err(DecodeError::Invalid {
                        what: WHAT,
                        why: "maximum information field length 0",
                    });
                }
                Ok(u16::try_from(value).unwrap_or(u16::MAX))
            };
            let window = || {
                if value == 0 {
                    return Err(DecodeError::Invalid {
                        what: WHAT,
                        why: "window size 0",
                    });
                }
                Ok(u8::try_from(value.min(u32::from(MAX_WINDOW))).unwrap_or(MAX_WINDOW))
            };
            match id {
                MAXIMUM_INFORMATION_FIELD_LENGTH_TRANSMIT => p.max_info_tx = max_info()?,
                MAXIMUM_INFORMATION_FIELD_LENGTH_RECEIVE => p.max_info_rx = max_info()?,
                WINDOW_SIZE_TRANSMIT => p.window_tx = window()?,
                WINDOW_SIZE_RECEIVE => p.window_rx = window()?,
                // Parameters DLMS does not use are skipped, as ISO/IEC 13239 allows.
                _ => {}
            }
        }
        Ok(p)
    }
}
