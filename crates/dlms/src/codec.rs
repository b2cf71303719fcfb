//! The one codec shape every wire type uses: `encode` into a `Vec<u8>`, `decode` from a
//! [`Reader`] that never panics and reports truncation as a typed error.

use thiserror::Error;

/// Why a sequence of bytes could not be decoded. Every decoder in this crate returns this.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value was complete.
    #[error("truncated: {needed} more byte(s) needed while decoding {what}")]
    Truncated { what: &'static str, needed: usize },
    /// A tag or discriminant that the standard does not define (or that we do not support).
    #[error("unknown tag 0x{tag:02X} while decoding {what}")]
    UnknownTag { what: &'static str, tag: u8 },
    /// A length field larger than what the input can hold or than a configured limit.
    #[error("length {len} too large while decoding {what}")]
    LengthTooLarge { what: &'static str, len: usize },
    /// Bytes were left over after a value that must fill its input exactly.
    #[error("{count} trailing byte(s) after {what}")]
    TrailingBytes { what: &'static str, count: usize },
    /// Nested structures deeper than [`MAX_NESTING`].
    #[error("nesting deeper than {MAX_NESTING} levels")]
    NestingTooDeep,
    /// A structurally invalid value (the string says which rule was broken).
    #[error("invalid {what}: {why}")]
    Invalid {
        what: &'static str,
        why: &'static str,
    },
}

/// Deepest nesting of arrays/structures a decoder accepts; real meters use fewer than 8.
pub const MAX_NESTING: usize = 32;

/// A cursor over untrusted bytes. All reads are bounds-checked and never panic.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let rest = self.rest();
        if rest.len() < n {
            return Err(DecodeError::Truncated {
                what,
                needed: n - rest.len(),
            });
        }
        let (head, _) = rest.split_at(n);
        self.pos += n;
        Ok(head)
    }

    /// Everything that is left.
    pub fn take_rest(&mut self) -> &'a [u8] {
        let rest = self.rest();
        self.pos = self.buf.len();
        rest
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub fn peek(&self) -> Option<u8> {
        self.rest().first().copied()
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// An A-XDR length (the BER definite form): `0..=0x7F` in one byte, or `0x8N` followed by N
    /// big-endian bytes (N from 1 to 4).
    pub fn length(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let first = self.u8(what)?;
        if first < 0x80 {
            return Ok(usize::from(first));
        }
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return Err(DecodeError::Invalid {
                what,
                why: "length of length must be 1 to 4",
            });
        }
        let mut len = 0usize;
        for b in self.take(n, what)? {
            len = (len << 8) | usize::from(*b);
        }
        Ok(len)
    }

    /// A length that must also fit in what is left of the input (so that callers may allocate
    /// on it without trusting the peer).
    pub fn bounded_length(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let len = self.length(what)?;
        if len > self.remaining() {
            return Err(DecodeError::Truncated {
                what,
                needed: len - self.remaining(),
            });
        }
        Ok(len)
    }

    /// A length-prefixed byte string.
    pub fn octets(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.bounded_length(what)?;
        self.take(len, what)
    }

    /// Fails unless the input has been consumed entirely.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { what, count }),
        }
    }
}

/// Appends an A-XDR length (the shortest form).
pub fn put_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend_from_slice(&[0x81, len as u8]);
    } else if len <= 0xFFFF {
        out.push(0x82);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x84);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Appends a length-prefixed byte string.
pub fn put_octets(out: &mut Vec<u8>, bytes: &[u8]) {
    put_length(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// The codec shape shared by every wire type of the crate.
pub trait Codec: Sized {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes a value that must fill `bytes` exactly.
    fn decode_exact(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish(std::any::type_name::<Self>())?;
        Ok(v)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;

    #[test]
    fn length_forms_round_trip() {
        for len in [
            0usize,
            1,
            0x7F,
            0x80,
            0xFF,
            0x100,
            0xFFFF,
            0x10000,
            0x00FF_FFFF,
        ] {
            let mut out = Vec::new();
            put_length(&mut out, len);
            let mut r = Reader::new(&out);
            assert_eq!(r.length("t").unwrap(), len);
            assert!(r.is_empty());
        }
        let mut out = Vec::new();
        put_length(&mut out, 0x80);
        assert_eq!(out, [0x81, 0x80]);
    }

    #[test]
    fn length_rejects_bad_forms() {
        assert!(Reader::new(&[0x80]).length("t").is_err());
        assert!(Reader::new(&[0x85, 0, 0, 0, 0, 0]).length("t").is_err());
        assert!(Reader::new(&[0x82, 0x01]).length("t").is_err());
        // A length larger than the input must not be trusted.
        assert!(Reader::new(&[0x84, 0xFF, 0xFF, 0xFF, 0xFF])
            .bounded_length("t")
            .is_err());
    }

    #[test]
    fn reader_never_panics_on_short_input() {
        let mut r = Reader::new(&[1, 2]);
        assert!(r.u32("t").is_err());
        assert_eq!(r.u16("t").unwrap(), 0x0102);
        assert!(r.u8("t").is_err());
        assert!(r.take(1, "t").is_err());
    }
}
