//! The slice of BER (ITU-T X.690) that ACSE needs: definite-length TLVs, identifier octets in
//! both the low and the high tag-number form, and the handful of universal types DLMS puts in
//! an association request.
//!
//! Decoding is strict about structure (every length must fit its parent exactly, INTEGERs must
//! be minimal, indefinite lengths are refused) and lenient only where BER itself is: a long-form
//! length may be longer than needed. Encoding always writes the shortest form.

use crate::codec::{put_length, DecodeError, Reader, MAX_NESTING};

/// Identifier-octet class bits.
pub(crate) const CONTEXT: u8 = 0x80;
const CLASS_MASK: u8 = 0xC0;
/// Identifier-octet bit marking a constructed encoding.
pub(crate) const CONSTRUCTED: u8 = 0x20;
/// Low tag-number bits; all ones announces the high tag-number form.
const TAG_NUMBER_MASK: u8 = 0x1F;
const HIGH_TAG_NUMBER: u8 = 0x1F;
/// More tag-number octets than this cannot be a tag any ACSE peer uses; refusing them keeps the
/// tag number within a `u32`.
const MAX_TAG_NUMBER_OCTETS: usize = 4;

/// Universal tags of the types ACSE fields are built from.
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OBJECT_IDENTIFIER: u8 = 0x06;

/// The identifier octets of a TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tag {
    pub class: u8,
    pub constructed: bool,
    pub number: u32,
    /// The first identifier octet, for error reports.
    pub first: u8,
}

impl Tag {
    /// Whether this is the single-octet identifier `byte` (class, form and number all match).
    pub fn is(&self, byte: u8) -> bool {
        self.number < u32::from(HIGH_TAG_NUMBER) && self.first == byte
    }
}

/// One decoded TLV; `value` is the contents octets, borrowed from the input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: Tag,
    pub value: &'a [u8],
}

fn invalid(what: &'static str, why: &'static str) -> DecodeError {
    DecodeError::Invalid { what, why }
}

fn read_tag(r: &mut Reader<'_>, what: &'static str) -> Result<Tag, DecodeError> {
    let first = r.u8(what)?;
    let mut number = u32::from(first & TAG_NUMBER_MASK);
    if number == u32::from(HIGH_TAG_NUMBER) {
        number = 0;
        for i in 0.. {
            if i == MAX_TAG_NUMBER_OCTETS {
                return Err(invalid(what, "tag number too long"));
            }
            let b = r.u8(what)?;
            if i == 0 && b == 0x80 {
                return Err(invalid(what, "tag number with a leading zero"));
            }
            number = (number << 7) | u32::from(b & 0x7F);
            if b & 0x80 == 0 {
                break;
            }
        }
        if number < u32::from(HIGH_TAG_NUMBER) {
            return Err(invalid(what, "high tag-number form for a low tag number"));
        }
    }
    Ok(Tag {
        class: first & CLASS_MASK,
        constructed: first & CONSTRUCTED != 0,
        number,
        first,
    })
}

/// Reads one TLV. The length must be definite and fit in what is left of `r`, so a lying
/// length can neither read past its parent nor make anyone allocate.
pub(crate) fn read_tlv<'a>(r: &mut Reader<'a>, what: &'static str) -> Result<Tlv<'a>, DecodeError> {
    let tag = read_tag(r, what)?;
    let len = r.bounded_length(what)?;
    let value = r.take(len, what)?;
    Ok(Tlv { tag, value })
}

/// Checks that a TLV we are about to skip is well formed all the way down: a constructed
/// value must be a sequence of TLVs that fill it exactly.
pub(crate) fn check_well_formed(tlv: &Tlv<'_>, what: &'static str) -> Result<(), DecodeError> {
    fn walk(value: &[u8], depth: usize, what: &'static str) -> Result<(), DecodeError> {
        if depth > MAX_NESTING {
            return Err(DecodeError::NestingTooDeep);
        }
        let mut r = Reader::new(value);
        while !r.is_empty() {
            let inner = read_tlv(&mut r, what)?;
            if inner.tag.constructed {
                walk(inner.value, depth + 1, what)?;
            }
        }
        Ok(())
    }
    if tlv.tag.constructed {
        walk(tlv.value, 1, what)
    } else {
        Ok(())
    }
}

/// Reads a TLV that must carry the single-octet identifier `tag`.
pub(crate) fn expect_tlv<'a>(
    r: &mut Reader<'a>,
    tag: u8,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let tlv = read_tlv(r, what)?;
    if !tlv.tag.is(tag) {
        return Err(DecodeError::UnknownTag {
            what,
            tag: tlv.tag.first,
        });
    }
    Ok(tlv.value)
}

/// The contents of an EXPLICIT wrapper: exactly one TLV with identifier `tag`, nothing after it.
pub(crate) fn explicit<'a>(
    wrapper: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let mut r = Reader::new(wrapper);
    let value = expect_tlv(&mut r, tag, what)?;
    r.finish(what)?;
    Ok(value)
}

/// A non-negative INTEGER that fits in a `u8`, in the minimal form X.690 8.3.2 requires.
pub(crate) fn small_uint(value: &[u8], what: &'static str) -> Result<u8, DecodeError> {
    match value {
        [b] if *b < 0x80 => Ok(*b),
        [0x00, b] if *b >= 0x80 => Ok(*b),
        [] => Err(invalid(what, "empty INTEGER")),
        [b, ..] if *b >= 0x80 => Err(invalid(what, "negative INTEGER")),
        [0x00, b, ..] if *b < 0x80 => Err(invalid(what, "INTEGER not in minimal form")),
        _ => Err(invalid(what, "INTEGER out of range")),
    }
}

/// Contents octets of a non-negative INTEGER `v` (minimal two's complement).
pub(crate) fn small_uint_value(v: u8) -> Vec<u8> {
    if v < 0x80 {
        vec![v]
    } else {
        vec![0x00, v]
    }
}

/// Whether bit 0 of a BIT STRING's contents is set (ACSE-requirements' `authentication` bit).
pub(crate) fn first_bit(value: &[u8], what: &'static str) -> Result<bool, DecodeError> {
    match value {
        [] => Err(invalid(what, "BIT STRING without unused-bits octet")),
        [0] => Ok(false),
        [_] => Err(invalid(what, "empty BIT STRING with unused bits")),
        [unused, ..] if *unused > 7 => Err(invalid(what, "more than 7 unused bits")),
        [_, bits, ..] => Ok(bits & 0x80 != 0),
    }
}

/// Appends a TLV with a single-octet identifier.
pub(crate) fn put_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    put_length(out, value.len());
    out.extend_from_slice(value);
}

/// Appends `tag` wrapping (EXPLICIT) a TLV `inner_tag` with `value`.
pub(crate) fn put_explicit(out: &mut Vec<u8>, tag: u8, inner_tag: u8, value: &[u8]) {
    let mut inner = Vec::with_capacity(value.len() + 6);
    put_tlv(&mut inner, inner_tag, value);
    put_tlv(out, tag, &inner);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn low_and_high_tag_forms() {
        let mut r = Reader::new(&[0xBE, 0x00, 0x9F, 0x81, 0x00, 0x01, 0xAA]);
        let t = read_tlv(&mut r, "t").unwrap();
        assert_eq!(
            (t.tag.class, t.tag.constructed, t.tag.number),
            (CONTEXT, true, 30)
        );
        assert!(t.tag.is(0xBE));
        let t = read_tlv(&mut r, "t").unwrap();
        assert_eq!((t.tag.class, t.tag.number), (CONTEXT, 128));
        assert!(!t.tag.is(0x9F));
        assert_eq!(t.value, [0xAA]);
        assert!(r.is_empty());
    }

    #[test]
    fn bad_tags_and_lengths_are_refused() {
        // High form for a number that fits the low form.
        assert!(read_tlv(&mut Reader::new(&[0x9F, 0x1E, 0x00]), "t").is_err());
        // Leading zero in the tag number.
        assert!(read_tlv(&mut Reader::new(&[0x9F, 0x80, 0x20, 0x00]), "t").is_err());
        // Tag number that never ends, and one longer than four octets.
        assert!(read_tlv(&mut Reader::new(&[0x9F, 0x81, 0x81]), "t").is_err());
        assert!(read_tlv(
            &mut Reader::new(&[0x9F, 0x81, 0x81, 0x81, 0x81, 0x01, 0x00]),
            "t"
        )
        .is_err());
        // Indefinite length, and lengths beyond the input.
        assert!(read_tlv(&mut Reader::new(&[0x30, 0x80, 0x00, 0x00]), "t").is_err());
        assert!(read_tlv(&mut Reader::new(&[0x04, 0x02, 0x00]), "t").is_err());
        assert!(read_tlv(&mut Reader::new(&[0x04, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), "t").is_err());
        assert!(read_tlv(&mut Reader::new(&[0x04, 0x85, 0, 0, 0, 0, 1, 0]), "t").is_err());
    }

    #[test]
    fn non_minimal_length_is_accepted_as_ber_allows() {
        let mut r = Reader::new(&[0x04, 0x82, 0x00, 0x01, 0x42]);
        assert_eq!(read_tlv(&mut r, "t").unwrap().value, [0x42]);
    }

    #[test]
    fn skipped_fields_are_checked_all_the_way_down() {
        let ok = [0xA2, 0x06, 0xA0, 0x04, 0x04, 0x02, 0x01, 0x02];
        let t = read_tlv(&mut Reader::new(&ok), "t").unwrap();
        assert!(check_well_formed(&t, "t").is_ok());
        // The inner OCTET STRING claims three bytes where two are left in its parent.
        let lying = [0xA2, 0x06, 0xA0, 0x04, 0x04, 0x03, 0x01, 0x02];
        let t = read_tlv(&mut Reader::new(&lying), "t").unwrap();
        assert!(check_well_formed(&t, "t").is_err());
        // Deep nesting stops at MAX_NESTING rather than recursing without bound.
        let mut deep = vec![0x04, 0x00];
        for _ in 0..(MAX_NESTING + 1) {
            let mut outer = vec![0xA0];
            put_length(&mut outer, deep.len());
            outer.extend_from_slice(&deep);
            deep = outer;
        }
        let t = read_tlv(&mut Reader::new(&deep), "t").unwrap();
        assert_eq!(check_well_formed(&t, "t"), Err(DecodeError::NestingTooDeep));
    }

    #[test]
    fn integers() {
        assert_eq!(small_uint(&[0x05], "t").unwrap(), 5);
        assert_eq!(small_uint(&[0x00, 0xFF], "t").unwrap(), 255);
        assert!(small_uint(&[], "t").is_err());
        assert!(small_uint(&[0xFF], "t").is_err());
        assert!(small_uint(&[0x00, 0x05], "t").is_err());
        assert!(small_uint(&[0x01, 0x00], "t").is_err());
        assert!(small_uint(&[0x00, 0x00, 0x80], "t").is_err());
        for v in 0..=255u8 {
            assert_eq!(small_uint(&small_uint_value(v), "t").unwrap(), v);
        }
    }

    #[test]
    fn bit_strings() {
        assert!(first_bit(&[0x07, 0x80], "t").unwrap());
        assert!(!first_bit(&[0x07, 0x00], "t").unwrap());
        assert!(!first_bit(&[0x00], "t").unwrap());
        assert!(first_bit(&[], "t").is_err());
        assert!(first_bit(&[0x07], "t").is_err());
        assert!(first_bit(&[0x08, 0x80], "t").is_err());
    }
}
