//! The TCP wrapper (IEC 62056-47): an 8-byte header carrying version, ports and length.

use thiserror::Error;

/// The only wrapper version defined.
pub const VERSION: u16 = 0x0001;
pub const HEADER_LEN: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WrapperError {
    #[error("wrapper version {0:#06x} is not 0x0001")]
    BadVersion(u16),
    #[error("an APDU of {len} bytes exceeds the limit of {limit}")]
    TooLong { len: usize, limit: usize },
}

/// One wrapper frame: the wPorts and the APDU it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapperFrame {
    pub source: u16,
    pub destination: u16,
    pub apdu: Vec<u8>,
}

/// Appends a frame carrying `apdu`.
pub fn encode(
    source: u16,
    destination: u16,
    apdu: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), WrapperError> {
    let len = u16::try_from(apdu.len()).map_err(|_| WrapperError::TooLong {
        len: apdu.len(),
        limit: usize::from(u16::MAX),
    })?;
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&source.to_be_bytes());
    out.extend_from_slice(&destination.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(apdu);
    Ok(())
}

/// Cuts a byte stream into frames; never blocks, never holds more than one frame plus what
/// the last read brought.
#[derive(Debug)]
pub struct Deframer {
    buf: Vec<u8>,
    max_apdu: usize,
}

impl Deframer {
    pub fn new(max_apdu: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_apdu,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `None` when more bytes are needed. After an error the stream is
    /// out of step and must be dropped.
    pub fn next_frame(&mut self) -> Result<Option<WrapperFrame>, WrapperError> {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let word = |i: usize| {
            u16::from_be_bytes([
                header.get(i).copied().unwrap_or(0),
                header.get(i + 1).copied().unwrap_or(0),
            ])
        };
        let (version, source, destination, len) = (word(0), word(2), word(4), usize::from(word(6)));
        if version != VERSION {
            return Err(WrapperError::BadVersion(version));
        }
        if len > self.max_apdu {
            return Err(WrapperError::TooLong {
                len,
                limit: self.max_apdu,
            });
        }
        let Some(apdu) = self.buf.get(HEADER_LEN..HEADER_LEN + len) else {
            return Ok(None);
        };
        let frame = WrapperFrame {
            source,
            destination,
            apdu: apdu.to_vec(),
        };
        self.buf.drain(..HEADER_LEN + len);
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn frame_round_trip_and_byte_at_a_time() {
        let mut out = Vec::new();
        encode(16, 1, &[0x60, 0x1D], &mut out).unwrap();
        assert_eq!(out, [0, 1, 0, 16, 0, 1, 0, 2, 0x60, 0x1D]);
        encode(16, 1, &[0xC0, 1, 2], &mut out).unwrap();
        let mut d = Deframer::new(1024);
        let mut frames = Vec::new();
        for b in &out {
            d.push(&[*b]);
            while let Some(f) = d.next_frame().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[0],
            WrapperFrame {
                source: 16,
                destination: 1,
                apdu: vec![0x60, 0x1D]
            }
        );
        assert_eq!(frames[1].apdu, [0xC0, 1, 2]);
    }

    #[test]
    fn partial_frames_wait_and_bad_headers_fail() {
        let mut d = Deframer::new(16);
        d.push(&[0, 1, 0, 16, 0, 1, 0, 5, 1, 2]);
        assert_eq!(d.next_frame(), Ok(None));
        let mut d = Deframer::new(16);
        d.push(&[0, 2, 0, 16, 0, 1, 0, 0]);
        assert_eq!(d.next_frame(), Err(WrapperError::BadVersion(2)));
        let mut d = Deframer::new(16);
        d.push(&[0, 1, 0, 16, 0, 1, 0xFF, 0xFF]);
        assert!(matches!(d.next_frame(), Err(WrapperError::TooLong { .. })));
        assert!(encode(1, 1, &vec![0; 70_000], &mut Vec::new()).is_err());
    }
}
