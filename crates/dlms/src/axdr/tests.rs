#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
use super::*;

fn sample_values() -> Vec<Data> {
    let dt = DateTime::from_unix(1_795_727_700, 60, 0x80);
    vec![
        Data::Null,
        Data::Boolean(true),
        Data::BitString(BitString::new(10, vec![0xAA, 0xC0])),
        Data::DoubleLong(-123_456),
        Data::DoubleLongUnsigned(0x1234_5678),
        Data::OctetString(vec![1, 2, 3]),
        Data::VisibleString(b"ABC".to_vec()),
        Data::Utf8String("Zähler".as_bytes().to_vec()),
        Data::Bcd(0x42),
        Data::Integer(-5),
        Data::Long(-300),
        Data::Unsigned(200),
        Data::LongUnsigned(65_000),
        Data::Long64(-1),
        Data::Long64Unsigned(u64::MAX),
        Data::Enum(3),
        Data::Float32(1.5),
        Data::Float64(-2.25),
        Data::DateTime(dt),
        Data::Date(dt.date),
        Data::Time(dt.time),
        Data::DontCare,
        Data::Array(vec![Data::Unsigned(1), Data::Unsigned(2)]),
        Data::Structure(vec![
            Data::OctetString(dt.to_octets()),
            Data::Structure(vec![Data::Long(-1), Data::Array(vec![])]),
        ]),
        Data::CompactArray(CompactArray {
            element: TypeDesc::Structure(vec![
                TypeDesc::Simple(tag::OCTET_STRING),
                TypeDesc::Simple(tag::DOUBLE_LONG_UNSIGNED),
            ]),
            elements: vec![
                Data::Structure(vec![
                    Data::OctetString(vec![9; 12]),
                    Data::DoubleLongUnsigned(7),
                ]),
                Data::Structure(vec![Data::OctetString(vec![]), Data::DoubleLongUnsigned(8)]),
            ],
        }),
    ]
}

#[test]
fn byte_exact_vectors() {
    let cases: &[(Data, &str)] = &[
        (Data::DoubleLongUnsigned(0x1234_5678), "0612345678"),
        (Data::OctetString(b"ABC".to_vec()), "0903414243"),
        (
            Data::Structure(vec![Data::Unsigned(5), Data::Long(-2)]),
            "0202110510fffe",
        ),
        (
            Data::BitString(BitString::new(10, vec![0xAA, 0xC0])),
            "040aaac0",
        ),
        (Data::Enum(0), "1600"),
        (Data::Boolean(true), "0301"),
        (Data::Null, "00"),
        (Data::Float32(1.0), "173f800000"),
        (
            Data::CompactArray(CompactArray {
                element: TypeDesc::Simple(tag::LONG_UNSIGNED),
                elements: vec![
                    Data::LongUnsigned(1),
                    Data::LongUnsigned(2),
                    Data::LongUnsigned(3),
                ],
            }),
            "131206000100020003",
        ),
        (
            Data::OctetString(vec![0; 200]),
            // 200 bytes need the long length form 0x81 0xC8.
            &format!("0981c8{}", "00".repeat(200)),
        ),
    ];
    for (value, hex_str) in cases {
        assert_eq!(hex::encode(value.to_bytes()), *hex_str, "{value:?}");
        assert_eq!(
            &Data::decode_exact(&hex::decode(hex_str).unwrap()).unwrap(),
            value
        );
    }
}

#[test]
fn round_trip_every_type() {
    for v in sample_values() {
        let bytes = v.to_bytes();
        let back = Data::decode_exact(&bytes).unwrap_or_else(|e| panic!("{v:?}: {e}"));
        assert_eq!(back, v);
        assert_eq!(back.to_bytes(), bytes);
    }
}

#[test]
fn every_prefix_fails_cleanly() {
    for v in sample_values() {
        let bytes = v.to_bytes();
        for cut in 0..bytes.len() {
            // Null and dont-care are complete after their tag; anything else must fail.
            let r = Data::decode_exact(&bytes[..cut]);
            assert!(
                r.is_err() || cut == bytes.len(),
                "{v:?} cut at {cut} decoded: {r:?}"
            );
        }
    }
}

#[test]
fn hostile_inputs_are_rejected_without_allocation() {
    // An array claiming 2^31 elements in 6 bytes.
    assert!(matches!(
        Data::decode_exact(&[0x01, 0x84, 0x7F, 0xFF, 0xFF, 0xFF]),
        Err(DecodeError::LengthTooLarge { .. })
    ));
    // Nesting bomb: 1000 nested single-element structures.
    let mut deep = Vec::new();
    for _ in 0..1000 {
        deep.extend_from_slice(&[0x02, 0x01]);
    }
    deep.push(0x00);
    assert_eq!(Data::decode_exact(&deep), Err(DecodeError::NestingTooDeep));
    // A compact-array of null elements would never advance.
    assert!(Data::decode_exact(&[0x13, 0x00, 0x01, 0x00]).is_err());
    // Unknown tag.
    assert!(matches!(
        Data::decode_exact(&[0x07]),
        Err(DecodeError::UnknownTag { tag: 7, .. })
    ));
    // Trailing bytes.
    assert!(matches!(
        Data::decode_exact(&[0x11, 0x01, 0x00]),
        Err(DecodeError::TrailingBytes { .. })
    ));
}

#[test]
fn date_time_from_octet_string() {
    let dt = DateTime::from_unix(1_795_727_700, 0, 0);
    let d = Data::OctetString(dt.to_octets());
    assert_eq!(d.as_date_time(), Some(dt));
    assert_eq!(Data::OctetString(vec![1, 2]).as_date_time(), None);
}

#[test]
fn compact_array_of_empty_elements_is_refused_not_expanded() {
    // 13 (compact-array), description: array of 0xFFFF of array of 0xFFFF of an empty
    // structure, then 1 byte of contents: billions of values from a dozen bytes before the fix.
    let bytes = [
        0x13, 0x01, 0xFF, 0xFF, 0x01, 0xFF, 0xFF, 0x02, 0x00, 0x01, 0x00,
    ];
    let mut r = Reader::new(&bytes);
    assert!(matches!(
        Data::decode(&mut r),
        Err(DecodeError::Invalid { .. })
    ));
    // The fuzzer's case (nested compact-array descriptions of empty structures).
    let found: &[u8] = &[
        0, 19, 1, 0, 19, 1, 0, 19, 1, 0, 18, 1, 0, 19, 1, 0, 19, 1, 0, 19, 1, 0, 18, 1, 0, 0, 0,
        23, 0, 23, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 23, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 2, 255, 255, 255, 184, 255, 19, 1, 0, 82, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 2, 255, 255, 255, 184, 255, 19, 1, 0, 82, 0, 0, 0, 0, 0, 36, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 255,
    ];
    let mut r = Reader::new(found.get(1..).unwrap_or_default());
    let _ = Data::decode(&mut r);
    // An array of real elements is still fine.
    let ok = [0x13, 0x01, 0x00, 0x02, 0x11, 0x02, 0x07, 0x08];
    let mut r = Reader::new(&ok);
    assert!(Data::decode(&mut r).is_ok());
}
