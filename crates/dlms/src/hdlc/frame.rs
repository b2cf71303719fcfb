//! One HDLC frame of format type 3, and the [`Deframer`] that cuts frames out of a serial or
//! TCP byte stream.
//!
//! Type 3 frames carry their length, so DLMS HDLC uses no byte stuffing: a 0x7E inside the
//! information field is data. The deframer therefore trusts the length field only as far as a
//! closing flag and a good FCS confirm it, and resynchronises on the next flag otherwise.

use super::{fcs16, Control, HdlcError, FLAG};
use crate::codec::Reader;
use std::collections::VecDeque;

/// Frame format type 3 in the upper nibble of the format field.
const FORMAT_TYPE_3: u8 = 0xA0;
const FORMAT_MASK: u8 = 0xF0;
/// Segmentation bit in the first format byte.
const SEGMENTED: u8 = 0x08;
/// The frame length is 11 bits.
const LENGTH_MASK: u16 = 0x07FF;
/// Format (2), one-byte addresses (2), control (1), FCS (2): the shortest frame body.
const MIN_BODY: usize = 7;
/// The longest address field (extended addressing, 4 bytes).
const MAX_ADDRESS: usize = 4;
/// Header overhead at its largest: format, two 4-byte addresses, control, HCS, FCS.
const MAX_OVERHEAD: usize = 2 + 2 * MAX_ADDRESS + 1 + 2 + 2;

/// The largest frame including both flags.
pub const MAX_FRAME_LEN: usize = LENGTH_MASK as usize + 2;
/// The largest information field that fits any frame (whatever the address sizes).
pub const MAX_INFO_LEN: usize = LENGTH_MASK as usize - MAX_OVERHEAD;

/// An HDLC frame. Addresses are kept as their raw field bytes; build and read them with
/// [`ServerAddress`](super::ServerAddress) and [`client_address`](super::client_address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The segmentation bit: more segments of the same information follow.
    pub segmented: bool,
    pub dest: Vec<u8>,
    pub src: Vec<u8>,
    pub control: Control,
    /// Empty when the frame has no information field (then it has no HCS either).
    pub info: Vec<u8>,
}

impl Frame {
    /// Bytes between the flags.
    fn body_len(&self) -> usize {
        let header = 2 + self.dest.len() + self.src.len() + 1;
        if self.info.is_empty() {
            header + 2
        } else {
            header + 2 + self.info.len() + 2
        }
    }

    /// Whether [`encode`](Self::encode) can represent this frame: the length fits 11 bits
    /// and the addresses are 1 to 4 bytes.
    pub fn fits(&self) -> bool {
        self.body_len() <= usize::from(LENGTH_MASK)
            && (1..=MAX_ADDRESS).contains(&self.dest.len())
            && (1..=MAX_ADDRESS).contains(&self.src.len())
    }

    /// Appends the frame, flags included. A frame that does not [`fit`](Self::fits) gets a
    /// truncated length field (the link never builds one).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = (self.body_len() as u16) & LENGTH_MASK;
        out.push(FLAG);
        let start = out.len();
        let seg = if self.segmented { SEGMENTED } else { 0 };
        out.push(FORMAT_TYPE_3 | seg | (len >> 8) as u8);
        out.push(len as u8);
        out.extend_from_slice(&self.dest);
        out.extend_from_slice(&self.src);
        out.push(self.control.to_byte());
        if !self.info.is_empty() {
            let hcs = fcs16(out.get(start..).unwrap_or_default());
            out.extend_from_slice(&hcs.to_le_bytes());
            out.extend_from_slice(&self.info);
        }
        let fcs = fcs16(out.get(start..).unwrap_or_default());
        out.extend_from_slice(&fcs.to_le_bytes());
        out.push(FLAG);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body_len() + 2);
        self.encode(&mut out);
        out
    }

    /// Decodes exactly one frame, flags included.
    pub fn decode(bytes: &[u8]) -> Result<Frame, HdlcError> {
        let body = match bytes {
            [FLAG, body @ .., FLAG] => body,
            _ => return Err(HdlcError::MissingFlag),
        };
        let mut r = Reader::new(body);
        let format = r.u16("format").map_err(|_| short(body))?;
        let [first, _] = format.to_be_bytes();
        if first & FORMAT_MASK != FORMAT_TYPE_3 {
            return Err(HdlcError::BadFormat(first));
        }
        let declared = usize::from(format & LENGTH_MASK);
        if declared != body.len() || declared < MIN_BODY {
            return Err(HdlcError::BadLength {
                declared,
                actual: body.len(),
            });
        }
        let (covered, fcs) = split_check(body)?;
        if fcs16(covered) != fcs {
            return Err(HdlcError::BadFcs);
        }
        let dest = address(&mut r, "destination")?;
        let src = address(&mut r, "source")?;
        let control = Control::from_byte(r.u8("control").map_err(|_| short(body))?)?;
        let header = body.get(..r.position()).unwrap_or_default();
        let info = match r.rest().len() {
            2 => Vec::new(),
            n if n >= 5 => {
                let hcs = r.u16("HCS").map_err(|_| short(body))?.swap_bytes();
                if fcs16(header) != hcs {
                    return Err(HdlcError::BadHcs);
                }
                r.rest().get(..n - 4).unwrap_or_default().to_vec()
            }
            // Room for an HCS but not for an information field.
            _ => return Err(short(body)),
        };
        Ok(Frame {
            segmented: first & SEGMENTED != 0,
            dest,
            src,
            control,
            info,
        })
    }
}

/// A body too short for the fields its header announces.
fn short(body: &[u8]) -> HdlcError {
    HdlcError::BadLength {
        declared: 0,
        actual: body.len(),
    }
}

/// Splits a frame body into the bytes the FCS covers and the FCS itself.
fn split_check(body: &[u8]) -> Result<(&[u8], u16), HdlcError> {
    let cut = body.len().checked_sub(2).ok_or_else(|| short(body))?;
    let (covered, fcs) = body.split_at(cut);
    match fcs {
        [lo, hi] => Ok((covered, u16::from_le_bytes([*lo, *hi]))),
        _ => Err(short(body)),
    }
}

/// An extended-addressing field: bytes up to and including the first one with LSB 1.
fn address(r: &mut Reader<'_>, which: &'static str) -> Result<Vec<u8>, HdlcError> {
    let bad = HdlcError::BadAddress { which };
    let mut out = Vec::with_capacity(MAX_ADDRESS);
    loop {
        let b = r.u8(which).map_err(|_| bad.clone())?;
        out.push(b);
        if b & 1 == 1 {
            break;
        }
        if out.len() >= MAX_ADDRESS {
            return Err(bad);
        }
    }
    if out.len() == 3 {
        return Err(bad);
    }
    Ok(out)
}

/// Buffer bound of [`Deframer::new`]: sixteen frames of the largest size.
const DEFAULT_BUFFER: usize = 16 * MAX_FRAME_LEN;

/// Cuts HDLC frames out of a byte stream: skips bytes between frames, reports a damaged frame
/// as an error and carries on with the next flag, and never holds more than its bound.
#[derive(Debug, Clone)]
pub struct Deframer {
    buf: VecDeque<u8>,
    limit: usize,
    dropped: usize,
}

impl Default for Deframer {
    fn default() -> Self {
        Self::new()
    }
}

impl Deframer {
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_BUFFER)
    }

    /// A deframer holding at most `limit` bytes (at least one largest frame).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            buf: VecDeque::new(),
            limit: limit.max(MAX_FRAME_LEN),
            dropped: 0,
        }
    }

    /// Adds received bytes. When more than the bound is pending, the oldest bytes go and the
    /// next [`next_frame`](Self::next_frame) reports [`HdlcError::Overflow`].
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
        let excess = self.buf.len().saturating_sub(self.limit);
        if excess > 0 {
            self.buf.drain(..excess);
            self.dropped += excess;
        }
    }

    /// Bytes held, for tests and diagnostics.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame; `Ok(None)` when more bytes are needed. After an error, call
    /// again: the damaged frame has been skipped.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, HdlcError> {
        if self.dropped > 0 {
            return Err(HdlcError::Overflow(std::mem::take(&mut self.dropped)));
        }
        loop {
            match self.buf.iter().position(|&b| b == FLAG) {
                Some(start) => {
                    self.buf.drain(..start);
                }
                None => {
                    self.buf.clear();
                    return Ok(None);
                }
            }
            let (Some(&f0), Some(&f1)) = (self.buf.get(1), self.buf.get(2)) else {
                return Ok(None);
            };
            // Consecutive flags (idle fill, or a closing flag followed by an opening one), or
            // a flag that opens no type 3 frame: drop this flag and look at the next.
            if f0 == FLAG || f0 & FORMAT_MASK != FORMAT_TYPE_3 {
                self.buf.pop_front();
                continue;
            }
            let body = usize::from(u16::from_be_bytes([f0, f1]) & LENGTH_MASK);
            if body < MIN_BODY {
                self.buf.pop_front();
                continue;
            }
            let total = body + 2;
            if self.buf.len() < total {
                return Ok(None);
            }
            if self.buf.get(total - 1) != Some(&FLAG) {
                // The length field lied (or this flag was data): resynchronise after it.
                self.buf.pop_front();
                return Err(HdlcError::MissingFlag);
            }
            let bytes: Vec<u8> = self.buf.iter().take(total).copied().collect();
            return match Frame::decode(&bytes) {
                Ok(frame) => {
                    // Keep the closing flag: it may also open the next frame.
                    self.buf.drain(..total - 1);
                    Ok(Some(frame))
                }
                Err(e) => {
                    // The opening flag may have been garbage whose fake length swallowed a
                    // good frame: resynchronise right after it, not after the fake end.
                    self.buf.pop_front();
                    Err(e)
                }
            };
        }
    }
}
