//! The TCP/UDP wrapper (IEC 62056-47 clause 7, Green Book "wrapper sub-layer"): an 8-byte
//! header of version, source wPort, destination wPort and APDU length, then the APDU.
//!
//! The header carries no checksum and no marker to resynchronise on, so after a bad header
//! the stream cannot be trusted: the [`Deframer`] stays failed and the connection should be
//! closed.

use crate::codec::{Codec, DecodeError, Reader};
use std::collections::VecDeque;
use thiserror::Error;

/// The only wrapper version defined.
pub const WRAPPER_VERSION: u16 = 0x0001;
/// Size of the wrapper header.
pub const HEADER_LEN: usize = 8;
/// The length field is 16 bits.
pub const MAX_APDU_LEN: usize = 0xFFFF;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WrapperError {
    /// A header with a version other than 0x0001.
    #[error("wrapper version 0x{0:04X} is not 0x0001")]
    BadVersion(u16),
    /// A received length field above the configured limit.
    #[error("wrapper APDU length {len} exceeds the {max}-byte limit")]
    TooLong { len: usize, max: usize },
    /// An APDU too long for the 16-bit length field.
    #[error("APDU of {0} bytes does not fit a wrapper frame")]
    ApduTooLarge(usize),
    /// A complete frame could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// The wrapper header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrapperHeader {
    pub version: u16,
    pub source: u16,
    pub destination: u16,
    pub length: u16,
}

impl Codec for WrapperHeader {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.source.to_be_bytes());
        out.extend_from_slice(&self.destination.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        const WHAT: &str = "wrapper header";
        Ok(Self {
            version: r.u16(WHAT)?,
            source: r.u16(WHAT)?,
            destination: r.u16(WHAT)?,
            length: r.u16(WHAT)?,
        })
    }
}

/// One wrapper frame: the ports and the APDU it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapperFrame {
    pub source: u16,
    pub destination: u16,
    pub apdu: Vec<u8>,
}

impl WrapperFrame {
    /// Decodes a frame that fills `bytes` exactly.
    pub fn decode_exact(bytes: &[u8]) -> Result<Self, WrapperError> {
        let mut r = Reader::new(bytes);
        let header = WrapperHeader::decode(&mut r)?;
        if header.version != WRAPPER_VERSION {
            return Err(WrapperError::BadVersion(header.version));
        }
        let apdu = r.take(usize::from(header.length), "wrapper APDU")?.to_vec();
        r.finish("wrapper frame")?;
        Ok(Self {
            source: header.source,
            destination: header.destination,
            apdu,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), WrapperError> {
        encode(self.source, self.destination, &self.apdu, out)
    }
}

/// Appends a wrapper frame carrying `apdu`.
pub fn encode(
    source: u16,
    destination: u16,
    apdu: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), WrapperError> {
    let length = u16::try_from(apdu.len()).map_err(|_| WrapperError::ApduTooLarge(apdu.len()))?;
    WrapperHeader {
        version: WRAPPER_VERSION,
        source,
        destination,
        length,
    }
    .encode(out);
    out.extend_from_slice(apdu);
    Ok(())
}

/// Cuts wrapper frames out of a TCP byte stream.
#[derive(Debug, Clone)]
pub struct Deframer {
    buf: VecDeque<u8>,
    max_apdu: usize,
    failed: Option<WrapperError>,
}

impl Deframer {
    /// Refuses frames announcing more than `max_apdu` bytes, so that the buffer never holds
    /// more than one header, one such APDU and whatever was pushed since.
    pub fn new(max_apdu: usize) -> Self {
        Self {
            buf: VecDeque::new(),
            max_apdu: max_apdu.min(MAX_APDU_LEN),
            failed: None,
        }
    }

    /// Adds received bytes. Once the stream has failed, bytes are dropped.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend(bytes);
        }
    }

    /// Bytes held, for tests and diagnostics.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame; `Ok(None)` when more bytes are needed. After an error the stream is
    /// out of step for good and every later call returns the same error.
    pub fn next_frame(&mut self) -> Result<Option<WrapperFrame>, WrapperError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut head = [0u8; HEADER_LEN];
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        for (slot, b) in head.iter_mut().zip(self.buf.iter()) {
            *slot = *b;
        }
        let header = WrapperHeader::decode_exact(&head)?;
        let error = if header.version != WRAPPER_VERSION {
            Some(WrapperError::BadVersion(header.version))
        } else if usize::from(header.length) > self.max_apdu {
            Some(WrapperError::TooLong {
                len: header.length.into(),
                max: self.max_apdu,
            })
        } else {
            None
        };
        if let Some(e) = error {
            self.buf = VecDeque::new();
            self.failed = Some(e.clone());
            return Err(e);
        }
        let total = HEADER_LEN + usize::from(header.length);
        if self.buf.len() < total {
            return Ok(None);
        }
        self.buf.drain(..HEADER_LEN);
        let apdu = self.buf.drain(..usize::from(header.length)).collect();
        Ok(Some(WrapperFrame {
            source: header.source,
            destination: header.destination,
            apdu,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    fn frame(src: u16, dst: u16, apdu: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(src, dst, apdu, &mut out).unwrap();
        out
    }

    #[test]
    fn byte_exact_header() {
        // Public client (0x10) to management logical device (1), a 3-byte APDU.
        assert_eq!(
            frame(0x10, 0x01, &[0xC0, 0x01, 0xC1]),
            [0x00, 0x01, 0x00, 0x10, 0x00, 0x01, 0x00, 0x03, 0xC0, 0x01, 0xC1]
        );
        let decoded = WrapperFrame::decode_exact(&frame(0x10, 0x01, &[0xC0])).unwrap();
        assert_eq!(
            decoded,
            WrapperFrame {
                source: 0x10,
                destination: 1,
                apdu: vec![0xC0]
            }
        );
    }

    #[test]
    fn encode_refuses_oversized_apdu() {
        let mut out = Vec::new();
        assert_eq!(
            encode(1, 1, &vec![0; MAX_APDU_LEN + 1], &mut out),
            Err(WrapperError::ApduTooLarge(MAX_APDU_LEN + 1))
        );
        assert!(out.is_empty());
        assert!(encode(1, 1, &vec![0; MAX_APDU_LEN], &mut out).is_ok());
        assert_eq!(out.len(), HEADER_LEN + MAX_APDU_LEN);
    }

    #[test]
    fn deframer_splits_and_joins_chunks() {
        let mut stream = frame(0x10, 1, b"first");
        stream.extend(frame(1, 0x10, b""));
        stream.extend(frame(0x30, 1, &[7; 300]));
        // Every way of cutting the stream in two yields the same three frames.
        for cut in 0..=stream.len() {
            let mut d = Deframer::new(1024);
            let mut got = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                d.push(part);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got.len(), 3, "cut {cut}");
            assert_eq!(got[0].apdu, b"first");
            assert_eq!((got[1].source, got[1].destination), (1, 0x10));
            assert!(got[1].apdu.is_empty());
            assert_eq!(got[2].apdu, [7; 300]);
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn truncation_loop() {
        let bytes = frame(0x10, 1, &[1, 2, 3, 4]);
        for cut in 0..bytes.len() {
            assert!(WrapperFrame::decode_exact(&bytes[..cut]).is_err(), "{cut}");
            let mut d = Deframer::new(100);
            d.push(&bytes[..cut]);
            assert_eq!(d.next_frame(), Ok(None), "{cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(WrapperFrame::decode_exact(&long).is_err());
    }

    #[test]
    fn bad_version_poisons_the_stream() {
        let mut bytes = frame(0x10, 1, &[1]);
        bytes[1] = 2;
        assert_eq!(
            WrapperFrame::decode_exact(&bytes),
            Err(WrapperError::BadVersion(2))
        );
        let mut d = Deframer::new(100);
        d.push(&bytes);
        assert_eq!(d.next_frame(), Err(WrapperError::BadVersion(2)));
        // A good frame afterwards cannot be told apart from garbage: stay failed.
        d.push(&frame(0x10, 1, &[1]));
        assert_eq!(d.next_frame(), Err(WrapperError::BadVersion(2)));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn length_over_limit_is_refused_before_buffering() {
        let mut d = Deframer::new(16);
        // The header claims 0xFFFF bytes; only the header is there.
        d.push(&[0x00, 0x01, 0x00, 0x10, 0x00, 0x01, 0xFF, 0xFF]);
        assert_eq!(
            d.next_frame(),
            Err(WrapperError::TooLong {
                len: 0xFFFF,
                max: 16
            })
        );
        // Exactly at the limit is fine.
        let mut d = Deframer::new(16);
        d.push(&frame(1, 1, &[0; 16]));
        assert_eq!(d.next_frame().unwrap().unwrap().apdu.len(), 16);
    }

    #[test]
    fn header_round_trip() {
        let h = WrapperHeader {
            version: 1,
            source: 0xABCD,
            destination: 0x1234,
            length: 0xFFFF,
        };
        assert_eq!(WrapperHeader::decode_exact(&h.to_bytes()), Ok(h));
    }
}
