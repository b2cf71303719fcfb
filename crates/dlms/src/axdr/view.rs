//! A zero-copy view of an A-XDR value: checked once, then read in place. Load profiles are the
//! bulk of what a head-end decodes; walking their rows through a view costs no allocation per
//! value, where building a `Data` tree costs one per structure and per string.

use crate::codec::{Codec, DecodeError, Reader, MAX_NESTING};

use super::{tag, Data};

/// One encoded value, known to be well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataView<'a> {
    bytes: &'a [u8],
}

impl<'a> DataView<'a> {
    /// Checks one value at the start of the reader and returns a view of it.
    pub fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let rest = r.rest();
        let used = encoded_len(rest, 0).ok_or_else(|| why_malformed(rest, 0))?;
        let bytes = r.take(used, "data")?;
        Ok(Self { bytes })
    }

    /// A view of exactly `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish("data")?;
        Ok(v)
    }

    /// The encoding, tag included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn tag(&self) -> u8 {
        self.bytes.first().copied().unwrap_or(tag::NULL_DATA)
    }

    fn body(&self) -> &'a [u8] {
        self.bytes.get(1..).unwrap_or_default()
    }

    /// The elements of an array or structure.
    pub fn elements(&self) -> Option<Elements<'a>> {
        if !matches!(self.tag(), tag::ARRAY | tag::STRUCTURE) {
            return None;
        }
        let body = self.body();
        let (left, head) = length_at(body, 0)?;
        Some(Elements {
            rest: body.get(head..)?,
            left,
        })
    }

    /// An unsigned or signed integer of any width (and enum, bcd).
    #[inline]
    pub fn as_i128(&self) -> Option<i128> {
        let b = self.body();
        let n = |k: usize| -> Option<u64> {
            Some(
                b.get(..k)?
                    .iter()
                    .fold(0u64, |a, x| (a << 8) | u64::from(*x)),
            )
        };
        Some(match self.tag() {
            tag::DOUBLE_LONG => i128::from(n(4)? as u32 as i32),
            tag::DOUBLE_LONG_UNSIGNED => i128::from(n(4)?),
            tag::INTEGER => i128::from(n(1)? as u8 as i8),
            tag::LONG => i128::from(n(2)? as u16 as i16),
            tag::UNSIGNED | tag::ENUM | tag::BCD | tag::LONG_UNSIGNED => {
                i128::from(n(if self.tag() == tag::LONG_UNSIGNED {
                    2
                } else {
                    1
                })?)
            }
            tag::LONG64 => i128::from(n(8)? as i64),
            tag::LONG64_UNSIGNED => i128::from(n(8)?),
            _ => return None,
        })
    }

    /// The bytes of an octet-, visible- or utf8-string.
    #[inline]
    pub fn as_octets(&self) -> Option<&'a [u8]> {
        match self.tag() {
            tag::OCTET_STRING | tag::VISIBLE_STRING | tag::UTF8_STRING => {
                let (len, head) = length_at(self.bytes, 1)?;
                self.bytes.get(1 + head..1 + head + len)
            }
            _ => None,
        }
    }

    /// The owned value.
    pub fn to_data(&self) -> Result<Data, DecodeError> {
        Data::decode_exact(self.bytes)
    }
}

/// The elements of an array or structure view.
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Elements<'a> {
    type Item = DataView<'a>;

    fn next(&mut self) -> Option<DataView<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The whole value was checked when the view was made: this only measures it again.
        let n = encoded_len(self.rest, 0)?;
        let (bytes, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(DataView { bytes })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// An A-XDR length at `at`: the value and how many bytes it took.
#[inline]
fn length_at(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let first = *b.get(at)?;
    if first < 0x80 {
        return Some((usize::from(first), 1));
    }
    let n = usize::from(first & 0x7F);
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 1..=n {
        len = (len << 8) | usize::from(*b.get(at + i)?);
    }
    Some((len, 1 + n))
}

#[inline]
/// The encoded length of the value at the start of `b`, checking it as `Data::decode` would
/// (tags, lengths, nesting), or `None` when it is malformed.
fn encoded_len(b: &[u8], depth: usize) -> Option<usize> {
    let t = *b.first()?;
    let body = match t {
        tag::NULL_DATA | tag::DONT_CARE => 0,
        tag::BOOLEAN | tag::BCD | tag::INTEGER | tag::UNSIGNED | tag::ENUM => 1,
        tag::LONG | tag::LONG_UNSIGNED => 2,
        tag::DOUBLE_LONG | tag::DOUBLE_LONG_UNSIGNED | tag::FLOAT32 => 4,
        tag::LONG64 | tag::LONG64_UNSIGNED | tag::FLOAT64 => 8,
        tag::DATE_TIME => 12,
        tag::DATE => 5,
        tag::TIME => 4,
        tag::OCTET_STRING | tag::VISIBLE_STRING | tag::UTF8_STRING => {
            let (len, head) = length_at(b, 1)?;
            head.checked_add(len)?
        }
        tag::BIT_STRING => {
            let (bits, head) = length_at(b, 1)?;
            head.checked_add(bits.div_ceil(8))?
        }
        tag::ARRAY | tag::STRUCTURE => {
            if depth >= MAX_NESTING {
                return None;
            }
            let (n, head) = length_at(b, 1)?;
            let mut pos = 1 + head;
            if n > b.len().saturating_sub(pos) {
                return None;
            }
            for _ in 0..n {
                pos += encoded_len(b.get(pos..)?, depth + 1)?;
            }
            return Some(pos);
        }
        // Rare and irregular: measured by the full decoder.
        tag::COMPACT_ARRAY => {
            let mut r = Reader::new(b);
            Data::decode_depth(&mut r, depth).ok()?;
            return Some(r.position());
        }
        _ => return None,
    };
    let total = body.checked_add(1)?;
    (total <= b.len()).then_some(total)
}

/// Why `bytes` is not a well-formed value at `depth`: the owned decoder says precisely (only
/// called once `encoded_len` has refused, so the allocation is on the error path alone).
fn why_malformed(bytes: &[u8], depth: usize) -> DecodeError {
    match Data::decode_depth(&mut Reader::new(bytes), depth) {
        Err(e) => e,
        Ok(_) => DecodeError::Invalid {
            what: "data",
            why: "malformed",
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::axdr::{CompactArray, DateTime, TypeDesc};

    #[test]
    fn view_agrees_with_the_owned_decoder() {
        let dt = DateTime::from_unix(1_795_651_200, 60, 0);
        let rows = Data::Array(
            (0..5)
                .map(|i| {
                    Data::Structure(vec![
                        Data::OctetString(dt.to_octets()),
                        Data::DoubleLongUnsigned(i),
                        Data::Long(-3),
                        Data::CompactArray(CompactArray {
                            element: TypeDesc::Simple(tag::UNSIGNED),
                            elements: vec![Data::Unsigned(1), Data::Unsigned(2)],
                        }),
                    ])
                })
                .collect(),
        );
        let bytes = rows.to_bytes();
        let v = DataView::parse(&bytes).unwrap();
        assert_eq!(v.to_data().unwrap(), rows);
        let mut n = 0;
        for (i, row) in v.elements().unwrap().enumerate() {
            let cols: Vec<_> = row.elements().unwrap().collect();
            assert_eq!(cols[0].as_octets(), Some(&dt.to_octets()[..]));
            assert_eq!(cols[1].as_i128(), Some(i as i128));
            assert_eq!(cols[2].as_i128(), Some(-3));
            assert_eq!(cols[3].to_data().unwrap().as_elements().unwrap().len(), 2);
            n += 1;
        }
        assert_eq!(n, 5);
        // Every prefix fails, as with the owned decoder.
        for cut in 0..bytes.len() {
            assert!(DataView::parse(&bytes[..cut]).is_err());
        }
    }
}

/// One step of a [`Cursor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// An array or structure begins; its `count` elements follow.
    Begin { tag: u8, count: usize },
    /// A value that is not an array or structure.
    Value(DataView<'a>),
}

/// A single-pass reader of one encoded value: it yields the value's parts in order and checks
/// each byte exactly once, allocating nothing but its nesting stack. The fastest way through a
/// large buffer when every part is wanted.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    /// Elements still to come at each open level; the bottom entry is the one top-level value.
    open: Vec<usize>,
}

impl<'a> Cursor<'a> {
    /// A cursor over exactly one value filling `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        let mut open = Vec::with_capacity(8);
        open.push(1);
        Self {
            b: bytes,
            pos: 0,
            open,
        }
    }

    /// The next part, `None` once the value is complete (and the input used up exactly).
    pub fn next_item(&mut self) -> Result<Option<Item<'a>>, DecodeError> {
        loop {
            match self.open.last_mut() {
                None => {
                    return match self.b.len() - self.pos {
                        0 => Ok(None),
                        count => Err(DecodeError::TrailingBytes {
                            what: "data",
                            count,
                        }),
                    };
                }
                Some(0) => {
                    self.open.pop();
                }
                Some(left) => {
                    *left -= 1;
                    break;
                }
            }
        }
        let rest = self.b.get(self.pos..).unwrap_or_default();
        let t = *rest.first().ok_or(DecodeError::Truncated {
            what: "data tag",
            needed: 1,
        })?;
        if matches!(t, tag::ARRAY | tag::STRUCTURE) {
            if self.open.len() > MAX_NESTING {
                return Err(DecodeError::NestingTooDeep);
            }
            let (count, head) = length_at(rest, 1).ok_or(DecodeError::Truncated {
                what: "array/structure count",
                needed: 1,
            })?;
            self.pos += 1 + head;
            if count > self.b.len() - self.pos {
                return Err(DecodeError::LengthTooLarge {
                    what: "array/structure",
                    len: count,
                });
            }
            self.open.push(count);
            return Ok(Some(Item::Begin { tag: t, count }));
        }
        let depth = self.open.len() - 1;
        let n = encoded_len(rest, depth).ok_or_else(|| why_malformed(rest, depth))?;
        let bytes = rest.get(..n).unwrap_or_default();
        self.pos += n;
        Ok(Some(Item::Value(DataView { bytes })))
    }
}

#[cfg(test)]
mod cursor_tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn cursor_walks_every_part_once_and_checks_the_end() {
        let v = Data::Array(vec![
            Data::Structure(vec![Data::Unsigned(1), Data::OctetString(vec![2, 3])]),
            Data::Structure(vec![]),
            Data::Long(-4),
        ]);
        let bytes = v.to_bytes();
        let mut c = Cursor::new(&bytes);
        let mut items = Vec::new();
        while let Some(i) = c.next_item().unwrap() {
            items.push(match i {
                Item::Begin { tag, count } => format!("{tag}:{count}"),
                Item::Value(v) => format!(
                    "{:?}",
                    v.as_i128()
                        .map(|x| x.to_string())
                        .or(v.as_octets().map(|o| format!("{o:?}")))
                ),
            });
        }
        assert_eq!(
            items,
            [
                "1:3",
                "2:2",
                "Some(\"1\")",
                "Some(\"[2, 3]\")",
                "2:0",
                "Some(\"-4\")"
            ]
        );
        for cut in 0..bytes.len() {
            let mut c = Cursor::new(&bytes[..cut]);
            let mut failed = false;
            for _ in 0..20 {
                match c.next_item() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            assert!(failed, "prefix {cut} accepted");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        let mut c = Cursor::new(&extra);
        let r = loop {
            match c.next_item() {
                Ok(Some(_)) => continue,
                other => break other,
            }
        };
        assert!(r.is_err());
    }
}
