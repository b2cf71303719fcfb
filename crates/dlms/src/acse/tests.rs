#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// Green Book: AARQ, LN referencing, no security.
const GB_AARQ: &str =
    "60 1D A1 09 06 07 60 85 74 05 08 01 01 BE 10 04 0E 01 00 00 00 06 5F 1F 04 00 00 7E 1F 04 B0";
/// Green Book: the matching AARE.
const GB_AARE: &str = "61 29 A1 09 06 07 60 85 74 05 08 01 01 A2 03 02 01 00 A3 05 A1 03 02 01 00 BE 10 04 0E 08 00 06 5F 1F 04 00 00 50 1F 01 F4 00 07";

fn hls_gmac_aarq() -> Aarq {
    Aarq {
        application_context: ApplicationContext::LogicalNameCiphered,
        calling_ap_title: Some(h("4D4D4D0000000001")),
        calling_ae_qualifier: None,
        sender_acse_requirements: true,
        mechanism: Some(Mechanism::HighGmac),
        calling_authentication_value: Some(b"K56kKNk7".to_vec()),
        user_information: Some(h("211F30112233440102")),
    }
}

fn full_aare() -> Aare {
    Aare {
        application_context: ApplicationContext::LogicalNameCiphered,
        result: AssociationResult::Accepted,
        diagnostic: Diagnostic::ServiceUser(AcseServiceUser::AuthenticationRequired),
        responding_ap_title: Some(h("4D4D4D0000000002")),
        responder_acse_requirements: true,
        mechanism: Some(Mechanism::HighGmac),
        responding_authentication_value: Some(b"P6wRJ21F".to_vec()),
        user_information: Some(h("2801AA")),
    }
}

fn samples() -> Vec<AcseApdu> {
    let mut ecdsa = hls_gmac_aarq();
    ecdsa.mechanism = Some(Mechanism::HighEcdsa);
    ecdsa.calling_ae_qualifier = Some(vec![0x30; 300]);
    vec![
        AcseApdu::decode_exact(&h(GB_AARQ)).unwrap(),
        AcseApdu::decode_exact(&h(GB_AARE)).unwrap(),
        AcseApdu::Aarq(hls_gmac_aarq()),
        AcseApdu::Aarq(ecdsa),
        AcseApdu::Aarq(Aarq::new(ApplicationContext::ShortName)),
        AcseApdu::Aare(full_aare()),
        AcseApdu::Aare(Aare {
            result: AssociationResult::RejectedPermanent,
            diagnostic: Diagnostic::ServiceProvider(2),
            ..full_aare()
        }),
        AcseApdu::Rlrq(Rlrq {
            reason: Some(RELEASE_REQUEST_NORMAL),
            user_information: Some(h("0100")),
        }),
        AcseApdu::Rlrq(Rlrq::default()),
        AcseApdu::Rlre(Rlre {
            reason: Some(RELEASE_RESPONSE_USER_DEFINED),
            user_information: None,
        }),
    ]
}

#[test]
fn green_book_aarq_round_trips() {
    let bytes = h(GB_AARQ);
    let aarq = Aarq::decode_exact(&bytes).unwrap();
    assert_eq!(
        aarq,
        Aarq {
            user_information: Some(h("01 00 00 00 06 5F 1F 04 00 00 7E 1F 04 B0")),
            ..Aarq::new(ApplicationContext::LogicalName)
        }
    );
    assert_eq!(aarq.to_bytes(), bytes);
}

#[test]
fn green_book_aare_round_trips() {
    let bytes = h(GB_AARE);
    let aare = Aare::decode_exact(&bytes).unwrap();
    assert_eq!(
        aare,
        Aare {
            application_context: ApplicationContext::LogicalName,
            result: AssociationResult::Accepted,
            diagnostic: Diagnostic::ServiceUser(AcseServiceUser::Null),
            responding_ap_title: None,
            responder_acse_requirements: false,
            mechanism: None,
            responding_authentication_value: None,
            user_information: Some(h("08 00 06 5F 1F 04 00 00 50 1F 01 F4 00 07")),
        }
    );
    assert_eq!(aare.to_bytes(), bytes);
}

#[test]
fn aarq_fields_are_written_in_sequence_order() {
    assert_eq!(
        hls_gmac_aarq().to_bytes(),
        h(concat!(
            "603D",
            "A109060760857405080103",
            "A60A04084D4D4D0000000001",
            "8A020780",
            "8B0760857405080205",
            "AC0A80084B35366B4B4E6B37",
            "BE0B0409211F30112233440102",
        ))
    );
}

#[test]
fn aare_fields_are_written_in_sequence_order() {
    assert_eq!(
        full_aare().to_bytes(),
        h(concat!(
            "6143",
            "A109060760857405080103",
            "A203020100",
            "A305A10302010E",
            "A40A04084D4D4D0000000002",
            "88020780",
            "890760857405080205",
            "AA0A8008503677524A323146",
            "BE0504032801AA",
        ))
    );
}

#[test]
fn release_vectors() {
    let rlrq = Rlrq {
        reason: Some(RELEASE_REQUEST_NORMAL),
        user_information: None,
    };
    assert_eq!(rlrq.to_bytes(), h("62 03 80 01 00"));
    assert_eq!(Rlrq::decode_exact(&h("62 03 80 01 00")).unwrap(), rlrq);
    assert_eq!(Rlrq::default().to_bytes(), h("62 00"));
    let rlre = Rlre::decode_exact(&h("63 03 80 01 01")).unwrap();
    assert_eq!(rlre.reason, Some(RELEASE_RESPONSE_NOT_FINISHED));
    // An RLRQ is not an RLRE.
    assert!(matches!(
        Rlre::decode_exact(&h("62 03 80 01 00")),
        Err(DecodeError::UnknownTag { tag: 0x62, .. })
    ));
}

#[test]
fn diagnostic_values_above_127_are_positive_integers() {
    let aare = Aare {
        diagnostic: Diagnostic::ServiceUser(AcseServiceUser::Other(200)),
        ..full_aare()
    };
    let bytes = aare.to_bytes();
    let expected = h("A306A104020200C8");
    assert!(bytes
        .windows(expected.len())
        .any(|w| w == expected.as_slice()));
    assert_eq!(Aare::decode_exact(&bytes).unwrap(), aare);
}

#[test]
fn all_samples_round_trip_through_the_enum() {
    for apdu in samples() {
        let bytes = apdu.to_bytes();
        assert_eq!(
            AcseApdu::decode_exact(&bytes).unwrap(),
            apdu,
            "{bytes:02X?}"
        );
    }
}

#[test]
fn every_strict_prefix_fails_cleanly() {
    for apdu in samples() {
        let bytes = apdu.to_bytes();
        for n in 0..bytes.len() {
            let prefix = &bytes[..n];
            assert!(
                AcseApdu::decode(&mut Reader::new(prefix)).is_err(),
                "prefix {n} of {bytes:02X?}"
            );
        }
    }
}

#[test]
fn decode_consumes_exactly_one_apdu() {
    let mut bytes = h(GB_AARQ);
    bytes.extend_from_slice(&[0xDE, 0xAD]);
    let mut r = Reader::new(&bytes);
    Aarq::decode(&mut r).unwrap();
    assert_eq!(r.rest(), [0xDE, 0xAD]);
    assert!(matches!(
        Aarq::decode_exact(&bytes),
        Err(DecodeError::TrailingBytes { count: 2, .. })
    ));
}

#[test]
fn unknown_apdu_tags_are_refused() {
    assert!(matches!(
        AcseApdu::decode_exact(&h("64 00")),
        Err(DecodeError::UnknownTag { tag: 0x64, .. })
    ));
    assert!(matches!(
        AcseApdu::decode_exact(&[]),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn optional_fields_dlms_does_not_use_are_skipped() {
    let bytes = apdu(
        AARQ_APDU,
        concat!(
            "80020780",               // protocol-version
            "A109060760857405080101", // application-context-name
            "A2060404AABBCCDD",       // called-AP-title
            "A403020101",             // called-AP-invocation-identifier
            "A9030201FF", // calling-AE-invocation-identifier (negative: not ours to judge)
            "9D03010203", // implementation-information
            "BE0404020100", // user-information
            "BF1F03040100", // [31], high tag-number form, after everything we know
        ),
    );
    let aarq = Aarq::decode_exact(&bytes).unwrap();
    assert_eq!(aarq.application_context, ApplicationContext::LogicalName);
    assert_eq!(aarq.user_information, Some(h("0100")));
    assert_eq!(aarq.calling_ap_title, None);
    // Re-encoding drops what we skipped.
    assert_eq!(
        aarq.to_bytes(),
        apdu(AARQ_APDU, "A109060760857405080101BE0404020100")
    );
}

#[test]
fn non_minimal_lengths_decode_and_re_encode_minimally() {
    let gb = h(GB_AARQ);
    let mut long = vec![0x60, 0x84, 0x00, 0x00, 0x00, 0x1D];
    long.extend_from_slice(&gb[2..]);
    let aarq = Aarq::decode_exact(&long).unwrap();
    assert_eq!(aarq.to_bytes(), gb);
}

#[test]
fn long_values_use_long_form_lengths() {
    let mut aarq = Aarq::new(ApplicationContext::LogicalName);
    aarq.user_information = Some(vec![0x01; 0x100]);
    let bytes = aarq.to_bytes();
    // Outer, [30] and OCTET STRING lengths all need the two-byte form.
    assert_eq!(&bytes[..2], [0x60, 0x82]);
    assert!(bytes.windows(4).any(|w| w == [0xBE, 0x82, 0x01, 0x04]));
    assert!(bytes.windows(4).any(|w| w == [0x04, 0x82, 0x01, 0x00]));
    assert_eq!(Aarq::decode_exact(&bytes).unwrap(), aarq);
}

/// Wraps `body` (hex) in an APDU TLV with the right outer length, so that each hostile case
/// below is broken only where it says.
fn apdu(tag: u8, body: &str) -> Vec<u8> {
    let body = h(body);
    let mut out = vec![tag];
    crate::codec::put_length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

const LN: &str = "A109060760857405080101";
const ACCEPTED: &str = "A203020100";
const NULL_DIAGNOSTIC: &str = "A305A103020100";

#[test]
fn hostile_inputs_are_refused() {
    let raw: &[(&str, &str)] = &[
        (
            "outer length beyond input",
            "601EA109060760857405080101BE10040E01000000065F1F0400007E1F04B0",
        ),
        (
            "0x84 length beyond input",
            "6084FFFFFFFFA109060760857405080101",
        ),
        ("length of length 5", "608500000000"),
        ("indefinite length", "6080A1090607608574050801010000"),
    ];
    let aarq: &[(&str, String)] = &[
        ("[1] longer than its OID", "A10A06076085740508010100".into()),
        ("OID longer than [1]", "A1080607608574050801".into()),
        (
            "OID claims more than [1] holds",
            "A109060860857405080101".into(),
        ),
        ("[30] octet string lies", format!("{LN}BE0404030102")),
        ("[30] octet string short", format!("{LN}BE050402010203")),
        ("missing application context", "BE0404020100".into()),
        ("fields out of order", format!("BE0404020100{LN}")),
        ("repeated field", format!("{LN}{LN}")),
        ("universal tag in sequence", format!("{LN}0400")),
        (
            "application context under mechanism arc",
            "A109060760857405080201".into(),
        ),
        ("application context id 5", "A109060760857405080105".into()),
        (
            "application context primitive",
            "8109060760857405080101".into(),
        ),
        ("mechanism id 8", format!("{LN}8B0760857405080208")),
        (
            "mechanism as constructed",
            format!("{LN}AB0760857405080201"),
        ),
        (
            "mechanism under context arc",
            format!("{LN}8B0760857405080101"),
        ),
        ("auth value bitstring choice", format!("{LN}AC0481020780")),
        ("acse requirements 8 unused bits", format!("{LN}8A020880")),
        (
            "ap title not an octet string",
            format!("{LN}A6080606010203040506"),
        ),
        (
            "skipped field with lying inside",
            format!("{LN}A206040501020304"),
        ),
    ];
    let aare: &[(&str, String)] = &[
        ("result 3", format!("{LN}A203020103{NULL_DIAGNOSTIC}")),
        (
            "result negative",
            format!("{LN}A2030201FF{NULL_DIAGNOSTIC}"),
        ),
        (
            "result non-minimal",
            format!("{LN}A20402020000{NULL_DIAGNOSTIC}"),
        ),
        ("result missing", format!("{LN}{NULL_DIAGNOSTIC}")),
        ("diagnostic missing", format!("{LN}{ACCEPTED}")),
        (
            "diagnostic choice [3]",
            format!("{LN}{ACCEPTED}A305A303020100"),
        ),
        (
            "diagnostic with trailing TLV",
            format!("{LN}{ACCEPTED}A307A1030201000500"),
        ),
        (
            "diagnostic integer lies",
            format!("{LN}{ACCEPTED}A305A103020200"),
        ),
    ];
    let rlrq: &[(&str, String)] = &[
        ("reason constructed", "A00100".into()),
        ("reason empty", "8000".into()),
        ("reason negative", "8001FF".into()),
    ];
    let mut cases: Vec<(&str, Vec<u8>)> = raw.iter().map(|(w, x)| (*w, h(x))).collect();
    cases.extend(aarq.iter().map(|(w, b)| (*w, apdu(AARQ_APDU, b))));
    cases.extend(aare.iter().map(|(w, b)| (*w, apdu(AARE_APDU, b))));
    cases.extend(rlrq.iter().map(|(w, b)| (*w, apdu(RLRQ_APDU, b))));
    for (why, bytes) in &cases {
        assert!(
            AcseApdu::decode_exact(bytes).is_err(),
            "{why} was accepted: {bytes:02X?}"
        );
    }
    // The healthy versions of the building blocks do decode, so the failures above come from
    // what each case breaks.
    assert!(AcseApdu::decode_exact(&apdu(AARQ_APDU, LN)).is_ok());
    assert!(AcseApdu::decode_exact(&apdu(
        AARE_APDU,
        &format!("{LN}{ACCEPTED}{NULL_DIAGNOSTIC}")
    ))
    .is_ok());
    assert!(AcseApdu::decode_exact(&apdu(RLRQ_APDU, "800100")).is_ok());
}

#[test]
fn acse_service_user_values() {
    for v in 0..=255u8 {
        let u = AcseServiceUser::from_u8(v);
        assert_eq!(u.to_u8(), v);
        assert_eq!(matches!(u, AcseServiceUser::Other(_)), v > 14, "{v}");
    }
    assert_eq!(
        AcseServiceUser::from_u8(13).name(),
        "authentication-failure"
    );
    assert_eq!(
        AcseServiceUser::from_u8(11).name(),
        "authentication-mechanism-name-not-recognised"
    );
    assert_eq!(
        AcseServiceUser::from_u8(3).name(),
        "calling-ap-title-not-recognized"
    );
    assert_eq!(AcseServiceUser::Other(99).to_string(), "other(99)");
    assert_eq!(
        Diagnostic::ServiceUser(AcseServiceUser::AuthenticationRequired).to_string(),
        "acse-service-user authentication-required"
    );
    assert_eq!(
        AssociationResult::from_u8(2),
        Some(AssociationResult::RejectedTransient)
    );
    assert_eq!(AssociationResult::from_u8(3), None);
}

/// A deterministic slice of what the `acse_apdu` fuzz target checks: single-byte mutations of
/// every sample either fail or decode to something whose encoding is stable.
#[test]
fn single_byte_mutations_never_panic_and_round_trip() {
    let mut decoded = 0usize;
    for apdu in samples() {
        let bytes = apdu.to_bytes();
        for i in 0..bytes.len() {
            for v in [
                0x00,
                0x01,
                0x7F,
                0x80,
                0x81,
                0x84,
                0xFF,
                bytes[i] ^ 0x20,
                bytes[i].wrapping_add(1),
            ] {
                let mut m = bytes.clone();
                m[i] = v;
                if let Ok(a) = AcseApdu::decode_exact(&m) {
                    decoded += 1;
                    let once = a.to_bytes();
                    assert_eq!(AcseApdu::decode_exact(&once).as_ref(), Ok(&a), "{m:02X?}");
                }
            }
        }
    }
    // Mutating payload bytes keeps many APDUs valid; the loop must have exercised both paths.
    assert!(decoded > 100, "only {decoded} mutants decoded");
}
