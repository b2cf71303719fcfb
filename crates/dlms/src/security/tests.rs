//! Tests of `SecurityContext` and the GCM layer: round trips, tampering, replay, policy,
//! truncation and hostile input.
//! Byte-exact interop vectors are in `vectors.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;
use crate::codec::{Codec, DecodeError};
use crate::types::{SecurityLevel, SystemTitle};

const CLIENT: SystemTitle = SystemTitle(*b"CLI\x00\x00\x00\x00\x01");
const SERVER: SystemTitle = SystemTitle([0x4D, 0x4D, 0x4D, 0x00, 0x00, 0xBC, 0x61, 0x4E]);
const EK: [u8; 16] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
];
const AK: [u8; 16] = [
    0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF,
];
const DK: [u8; 16] = [0x5A; 16];
const GET: [u8; 13] = [
    0xC0, 0x01, 0x00, 0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0xFF, 0x02, 0x00,
];

const LEVELS: [SecurityLevel; 3] = [
    SecurityLevel::Authenticated,
    SecurityLevel::Encrypted,
    SecurityLevel::AuthenticatedEncrypted,
];

fn keys() -> CipherKeys {
    CipherKeys { ek: EK, ak: AK }
}

/// A client and a server context that know each other.
fn pair(level: SecurityLevel) -> (SecurityContext, SecurityContext) {
    let mut client = SecurityContext::new(level, CLIENT, keys(), 100);
    client.peer_system_title = Some(SERVER);
    client.dedicated_key = Some(DK);
    let mut server = SecurityContext::new(level, SERVER, keys(), 1);
    server.peer_system_title = Some(CLIENT);
    server.dedicated_key = Some(DK);
    (client, server)
}

/// The ways a client can protect `GET`, with the name of each.
fn protected_forms(level: SecurityLevel) -> Vec<(&'static str, Vec<u8>)> {
    let (mut c, _) = pair(level);
    vec![
        ("glo", c.protect(&GET, false).unwrap()),
        ("ded", c.protect(&GET, true).unwrap()),
        ("general-glo", c.protect_general_glo(&GET).unwrap()),
        ("general-ded", c.protect_general_ded(&GET).unwrap()),
        (
            "general-ciphering",
            c.protect_general_ciphering(&[1, 2, 3, 4, 5, 6, 7, 8], &SERVER, &GET)
                .unwrap(),
        ),
    ]
}

#[test]
fn every_form_round_trips_at_every_level() {
    for level in LEVELS {
        let (mut c, mut s) = pair(level);
        let forms = [
            ("glo", c.protect(&GET, false).unwrap(), false, None),
            ("ded", c.protect(&GET, true).unwrap(), true, None),
            (
                "general-glo",
                c.protect_general_glo(&GET).unwrap(),
                false,
                Some(CLIENT),
            ),
            (
                "general-ded",
                c.protect_general_ded(&GET).unwrap(),
                true,
                Some(CLIENT),
            ),
            (
                "general-ciphering",
                c.protect_general_ciphering(&[9; 8], &SERVER, &GET).unwrap(),
                false,
                Some(CLIENT),
            ),
        ];
        for (i, (name, apdu, dedicated, title)) in forms.into_iter().enumerate() {
            let u = s
                .unprotect(&apdu)
                .unwrap_or_else(|e| panic!("{name} {level:?}: {e}"));
            assert_eq!(u.apdu, GET, "{name}");
            assert_eq!(u.level, level);
            assert_eq!(u.invocation_counter, 100 + i as u32);
            assert_eq!(u.dedicated, dedicated, "{name}");
            assert_eq!(u.system_title, title, "{name}");
            assert_eq!(s.last_rx_invocation_counter(), Some(100 + i as u32));
        }
        assert_eq!(c.next_tx_invocation_counter(), 105);
    }
}

#[test]
fn encryption_hides_the_apdu() {
    let (mut c, _) = pair(SecurityLevel::Encrypted);
    let apdu = c.protect(&GET, false).unwrap();
    assert_eq!(
        apdu.len(),
        2 + 5 + GET.len(),
        "no tag in encryption-only mode"
    );
    assert_ne!(&apdu[7..], &GET);
    let (mut c, _) = pair(SecurityLevel::Authenticated);
    let apdu = c.protect(&GET, false).unwrap();
    assert_eq!(
        &apdu[7..7 + GET.len()],
        &GET,
        "authentication-only sends the APDU in clear"
    );
}

#[test]
fn every_bit_flip_fails_in_authenticated_modes() {
    for level in [
        SecurityLevel::Authenticated,
        SecurityLevel::AuthenticatedEncrypted,
    ] {
        for (name, apdu) in protected_forms(level) {
            // Where the security header starts: after tag and length, plus the system title
            // for the general forms. Everything from there on is covered by the tag.
            let header = match name {
                "glo" | "ded" => 2,
                "general-glo" | "general-ded" => 11,
                _ => apdu.len() - (5 + GET.len() + TAG_LEN),
            };
            for byte in 0..apdu.len() {
                for bit in 0..8 {
                    let mut bad = apdu.clone();
                    bad[byte] ^= 1 << bit;
                    let (_, mut s) = pair(level);
                    let res = s.unprotect(&bad);
                    assert!(res.is_err(), "{name} {level:?}: flip {byte}.{bit} accepted");
                    if byte > header {
                        // IC, body and tag: nothing but the tag check can notice.
                        assert_eq!(
                            res,
                            Err(SecurityError::AuthenticationFailed),
                            "{name} {byte}.{bit}"
                        );
                    }
                    assert_eq!(
                        s.last_rx_invocation_counter(),
                        None,
                        "a failure moved the counter"
                    );
                }
            }
        }
    }
}

#[test]
fn general_ciphering_header_is_authenticated() {
    let (mut c, _) = pair(SecurityLevel::AuthenticatedEncrypted);
    let apdu = c.protect_general_ciphering(&[7; 8], &SERVER, &GET).unwrap();
    // DD 08 <transaction-id>: change the transaction id, keep the rest.
    let mut bad = apdu.clone();
    bad[2] ^= 0x01;
    let (_, mut s) = pair(SecurityLevel::AuthenticatedEncrypted);
    assert_eq!(s.unprotect(&bad), Err(SecurityError::AuthenticationFailed));
    assert!(s.unprotect(&apdu).is_ok());
}

#[test]
fn replays_and_lower_counters_are_rejected() {
    let (mut c, mut s) = pair(SecurityLevel::AuthenticatedEncrypted);
    let first = c.protect(&GET, false).unwrap();
    let second = c.protect(&GET, false).unwrap();
    let third = c.protect(&GET, false).unwrap();
    s.unprotect(&second).unwrap();
    assert_eq!(
        s.unprotect(&second),
        Err(SecurityError::Replay {
            received: 101,
            last: 101
        })
    );
    assert_eq!(
        s.unprotect(&first),
        Err(SecurityError::Replay {
            received: 100,
            last: 101
        })
    );
    assert_eq!(s.unprotect(&third).unwrap().invocation_counter, 102);

    let mut g = ReplayGuard::new();
    assert_eq!(g.check_and_update(5), Ok(()));
    assert!(g.check_and_update(5).is_err());
    assert!(g.check_and_update(4).is_err());
    assert_eq!(g.check_and_update(6), Ok(()));
    assert_eq!(g.last(), Some(6));
    assert!(ReplayGuard::with_floor(u32::MAX).check(u32::MAX).is_err());
}

#[test]
fn forged_apdu_with_high_counter_does_not_move_the_floor() {
    let (mut c, mut s) = pair(SecurityLevel::AuthenticatedEncrypted);
    let good = c.protect(&GET, false).unwrap();
    let mut forged = good.clone();
    forged[3..7].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        s.unprotect(&forged),
        Err(SecurityError::AuthenticationFailed)
    );
    assert_eq!(s.unprotect(&good).unwrap().invocation_counter, 100);
}

#[test]
fn rx_floor_from_persisted_value() {
    let (mut c, mut s) = pair(SecurityLevel::Authenticated);
    s.set_rx_floor(100);
    let apdu = c.protect(&GET, false).unwrap(); // IC 100
    assert_eq!(
        s.unprotect(&apdu),
        Err(SecurityError::Replay {
            received: 100,
            last: 100
        })
    );
    s.set_rx_floor(50); // never lowers
    assert_eq!(s.last_rx_invocation_counter(), Some(100));
    assert!(s.unprotect(&c.protect(&GET, false).unwrap()).is_ok());
}

#[test]
fn counter_exhaustion() {
    let mut c = SecurityContext::new(SecurityLevel::Authenticated, CLIENT, keys(), u32::MAX);
    assert!(!c.tx_exhausted());
    let last = c.protect(&GET, false).unwrap();
    assert_eq!(&last[3..7], &[0xFF; 4]);
    assert!(c.tx_exhausted());
    assert_eq!(c.protect(&GET, false), Err(SecurityError::CounterExhausted));
    assert_eq!(
        c.protect_general_glo(&GET),
        Err(SecurityError::CounterExhausted)
    );
}

#[test]
fn failures_before_sending_do_not_consume_counters() {
    let mut c = SecurityContext::new(SecurityLevel::Authenticated, CLIENT, keys(), 7);
    assert_eq!(c.protect(&GET, true), Err(SecurityError::MissingKey));
    assert_eq!(
        c.protect(&[0x60, 0x00], false),
        Err(SecurityError::UnknownTag(0x60))
    );
    assert!(matches!(
        c.protect(&[], false),
        Err(SecurityError::Decode(_))
    ));
    assert_eq!(c.next_tx_invocation_counter(), 7);
    let mut none = SecurityContext::new(SecurityLevel::None, CLIENT, keys(), 7);
    assert_eq!(none.protect(&GET, false), Err(SecurityError::NoProtection));
}

#[test]
fn policy_and_configuration_errors() {
    let (mut c, _) = pair(SecurityLevel::Authenticated);
    let auth_only = c.protect(&GET, false).unwrap();
    let (_, mut strict) = pair(SecurityLevel::AuthenticatedEncrypted);
    assert_eq!(
        strict.unprotect(&auth_only),
        Err(SecurityError::InsufficientProtection {
            required: SecurityLevel::AuthenticatedEncrypted,
            received: SecurityLevel::Authenticated,
        })
    );
    let (_, mut s) = pair(SecurityLevel::Authenticated);
    s.peer_system_title = None;
    assert_eq!(
        s.unprotect(&auth_only),
        Err(SecurityError::MissingSystemTitle)
    );
    let (_, mut s) = pair(SecurityLevel::Authenticated);
    s.dedicated_key = None;
    let ded = c.protect(&GET, true).unwrap();
    assert_eq!(s.unprotect(&ded), Err(SecurityError::MissingKey));
    let (_, mut s) = pair(SecurityLevel::Authenticated);
    s.peer_system_title = Some(SystemTitle([1; 8]));
    let general = c.protect_general_glo(&GET).unwrap();
    assert_eq!(
        s.unprotect(&general),
        Err(SecurityError::SystemTitleMismatch(CLIENT))
    );
    // A general-ciphering APDU addressed to someone else.
    let (_, mut s) = pair(SecurityLevel::Authenticated);
    let other = c
        .protect_general_ciphering(&[1], &SystemTitle([2; 8]), &GET)
        .unwrap();
    assert_eq!(
        s.unprotect(&other),
        Err(SecurityError::SystemTitleMismatch(SystemTitle([2; 8])))
    );
}

/// `tag || len || SC || IC || body`, with SC chosen by the test.
fn glo_with_sc(sc: u8) -> Vec<u8> {
    let content = encrypt(SecurityControl(sc & 0x3F), &CLIENT, 1, &EK, &AK, &GET);
    let mut apdu = vec![GLO_GET_REQUEST, content.len() as u8, sc];
    apdu.extend_from_slice(&content[1..]);
    apdu
}

#[test]
fn unsupported_security_control_values() {
    let (_, mut s) = pair(SecurityLevel::None);
    assert_eq!(
        s.unprotect(&glo_with_sc(0x31)),
        Err(SecurityError::UnsupportedSuite(1))
    );
    assert_eq!(
        s.unprotect(&glo_with_sc(0xB0)),
        Err(SecurityError::CompressionUnsupported)
    );
    assert_eq!(
        s.unprotect(&glo_with_sc(0x70)),
        Err(SecurityError::MissingKey)
    );
    assert!(matches!(
        s.unprotect(&glo_with_sc(0x00)),
        Err(SecurityError::Decode(_))
    ));
    assert!(
        s.unprotect(&glo_with_sc(0x30)).is_ok(),
        "the control case must pass"
    );
}

#[test]
fn ciphered_tag_must_match_the_content() {
    let (mut c, mut s) = pair(SecurityLevel::AuthenticatedEncrypted);
    let mut apdu = c.protect(&GET, false).unwrap();
    apdu[0] = GLO_SET_REQUEST;
    assert!(matches!(
        s.unprotect(&apdu),
        Err(SecurityError::Decode(DecodeError::Invalid { .. }))
    ));
}

#[test]
fn every_truncation_fails_cleanly() {
    for level in LEVELS {
        for (name, apdu) in protected_forms(level) {
            for n in 0..apdu.len() {
                let (_, mut s) = pair(level);
                assert!(
                    s.unprotect(&apdu[..n]).is_err(),
                    "{name} {level:?} prefix {n}"
                );
            }
            let mut longer = apdu.clone();
            longer.push(0);
            let (_, mut s) = pair(level);
            assert!(
                s.unprotect(&longer).is_err(),
                "{name}: trailing byte accepted"
            );
        }
        let content = encrypt(
            SecurityControl::from_level(level, 0),
            &CLIENT,
            1,
            &EK,
            &AK,
            &GET,
        );
        for n in 0..content.len() {
            let res = decrypt(&CLIENT, &EK, &AK, &content[..n]);
            // Encryption-only has no tag: shorter input decrypts to a shorter APDU.
            if level == SecurityLevel::Encrypted && n >= 5 {
                assert_eq!(res.unwrap().2, GET[..n - 5].to_vec());
            } else {
                assert!(res.is_err(), "{level:?} prefix {n}");
            }
        }
    }
    let gc = protected_forms(SecurityLevel::Authenticated)
        .pop()
        .unwrap()
        .1;
    for n in 0..gc.len() {
        assert!(GeneralCiphering::decode_exact(&gc[..n]).is_err());
    }
}

#[test]
fn hostile_lengths_and_tags() {
    let (_, mut s) = pair(SecurityLevel::AuthenticatedEncrypted);
    let hostile: &[&[u8]] = &[
        &[],
        &[GLO_GET_REQUEST],
        &[GLO_GET_REQUEST, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0x30],
        &[GLO_GET_REQUEST, 0x85, 0, 0, 0, 0, 1],
        &[GLO_GET_REQUEST, 0x80],
        &[GLO_GET_REQUEST, 0x00],
        &[GLO_GET_REQUEST, 0x05, 0x30, 0, 0, 0, 1],
        &[
            GLO_GET_REQUEST,
            0x10,
            0x30,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ],
        &[GENERAL_GLO_CIPHERING, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
        &[GENERAL_GLO_CIPHERING, 0x03, 1, 2, 3, 0x00],
        &[GENERAL_GLO_CIPHERING, 0x00, 0x82, 0xFF, 0xFF],
        &[GENERAL_CIPHERING, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07],
        &[
            GENERAL_CIPHERING,
            0x00,
            0x08,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0x00,
            0x00,
            0x00,
            0x01,
            0x09,
        ],
        &[GENERAL_CIPHERING, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
        &[GET_REQUEST, 0x01, 0x00],
        &[0xD8, 0x01, 0x01],
        &[0xFF; 64],
    ];
    for input in hostile {
        assert!(s.unprotect(input).is_err(), "{input:02X?} accepted");
    }
    assert_eq!(
        s.unprotect(&[0x60, 0x00]),
        Err(SecurityError::UnknownTag(0x60))
    );
    assert_eq!(s.last_rx_invocation_counter(), None);
}

#[test]
fn general_ciphering_with_wrapped_key_is_refused() {
    let (mut c, mut s) = pair(SecurityLevel::AuthenticatedEncrypted);
    let apdu = c.protect_general_ciphering(&[1; 8], &SERVER, &GET).unwrap();
    let mut gc = GeneralCiphering::decode_exact(&apdu).unwrap();
    gc.key_info = Some(KeyInfo::WrappedKey {
        kek_id: 0,
        key_ciphered_data: vec![0; 24],
    });
    assert_eq!(
        s.unprotect(&gc.to_bytes()),
        Err(SecurityError::UnsupportedKeyInfo)
    );
    gc.key_info = None;
    assert!(
        s.unprotect(&gc.to_bytes()).is_ok(),
        "absent key-info means the global key"
    );
}
