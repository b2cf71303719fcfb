//! Tests of the building blocks: security control byte, tag mapping, general-ciphering codec,
//! HLS functions, key wrap and the secrecy of keys in `Debug` output.
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
const EK: [u8; 16] = [0x00; 16];
const AK: [u8; 16] = [0xD0; 16];
const DK: [u8; 16] = [0x5A; 16];

fn keys() -> CipherKeys {
    CipherKeys { ek: EK, ak: AK }
}

#[test]
fn security_control_bits() {
    for (level, byte) in [
        (SecurityLevel::None, 0x00),
        (SecurityLevel::Authenticated, 0x10),
        (SecurityLevel::Encrypted, 0x20),
        (SecurityLevel::AuthenticatedEncrypted, 0x30),
    ] {
        let sc = SecurityControl::from_level(level, 0);
        assert_eq!(sc.0, byte);
        assert_eq!(sc.level(), level);
    }
    let sc = SecurityControl::from_level(SecurityLevel::Authenticated, 0x1F);
    assert_eq!(sc.0, 0x1F, "suite keeps only its four bits");
    assert_eq!(sc.suite(), 0x0F);
    assert!(SecurityControl(0x40).broadcast() && !SecurityControl(0x30).broadcast());
    assert!(SecurityControl(0x80).compressed() && !SecurityControl(0x70).compressed());
}

#[test]
fn tag_mapping_is_consistent() {
    assert_eq!(glo_tag(GET_REQUEST), Some(GLO_GET_REQUEST));
    assert_eq!(ded_tag(ACTION_RESPONSE), Some(DED_ACTION_RESPONSE));
    assert_eq!(glo_tag(INITIATE_REQUEST), Some(0x21));
    assert_eq!(ded_tag(INITIATE_REQUEST), None);
    assert_eq!(glo_tag(CONFIRMED_SERVICE_ERROR), Some(0x2E));
    assert_eq!(ded_tag(CONFIRMED_SERVICE_ERROR), Some(0x4E));
    assert_eq!(glo_tag(EVENT_NOTIFICATION_REQUEST), Some(0xCA));
    let mut mapped = 0;
    for t in 0..=u8::MAX {
        if let Some(g) = glo_tag(t) {
            mapped += 1;
            assert_eq!(plain_tag(g), Some((t, false)));
            assert!(is_ciphered(g) && !is_ciphered(t));
        }
        if let Some(d) = ded_tag(t) {
            assert_eq!(plain_tag(d), Some((t, true)));
            assert!(is_ciphered(d));
        }
        if let Some((p, ded)) = plain_tag(t) {
            let back = if ded { ded_tag(p) } else { glo_tag(p) };
            assert_eq!(back, Some(t));
        }
    }
    assert_eq!(mapped, 16);
    for t in [
        GENERAL_GLO_CIPHERING,
        GENERAL_DED_CIPHERING,
        GENERAL_CIPHERING,
    ] {
        assert!(is_ciphered(t));
    }
    // exception-response and general-signing are not ciphered APDUs.
    assert!(!is_ciphered(0xD8) && !is_ciphered(0xDF));
}

#[test]
fn general_ciphering_codec_round_trips_every_key_info() {
    for key_info in [
        None,
        Some(KeyInfo::IdentifiedKey(KeyId::GlobalUnicastEncryptionKey)),
        Some(KeyInfo::IdentifiedKey(KeyId::GlobalBroadcastEncryptionKey)),
        Some(KeyInfo::WrappedKey {
            kek_id: 0,
            key_ciphered_data: vec![0xAA; 24],
        }),
        Some(KeyInfo::AgreedKey {
            key_parameters: vec![0x01],
            key_ciphered_data: vec![0xBB; 128],
        }),
    ] {
        let gc = GeneralCiphering {
            transaction_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
            originator_system_title: CLIENT.0.to_vec(),
            recipient_system_title: SERVER.0.to_vec(),
            date_time: vec![],
            other_information: vec![0x42],
            key_info,
            ciphered_content: vec![0x30; 200],
        };
        let bytes = gc.to_bytes();
        assert_eq!(GeneralCiphering::decode_exact(&bytes).unwrap(), gc);
    }
    let agreed = GeneralCiphering {
        transaction_id: vec![1],
        originator_system_title: vec![],
        recipient_system_title: vec![],
        date_time: vec![],
        other_information: vec![],
        key_info: Some(KeyInfo::AgreedKey {
            key_parameters: vec![1],
            key_ciphered_data: vec![],
        }),
        ciphered_content: vec![0x30],
    };
    assert_eq!(
        agreed.to_bytes(),
        [0xDD, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x01, 0x01, 0x00, 0x01, 0x30]
    );
    // Unknown presence byte, choice and key id.
    for bad in [
        &[0xDD, 0, 0, 0, 0, 0, 0x02, 0x00][..],
        &[0xDD, 0, 0, 0, 0, 0, 0x01, 0x03, 0x00][..],
        &[0xDD, 0, 0, 0, 0, 0, 0x01, 0x00, 0x02, 0x00][..],
    ] {
        assert!(matches!(
            GeneralCiphering::decode_exact(bad),
            Err(DecodeError::UnknownTag { .. })
        ));
    }
}

#[test]
fn hls_gmac_rejects_wrong_inputs() {
    let challenge = b"0123456789ABCDEF";
    let resp = hls_gmac(&SERVER, 42, &keys(), challenge);
    assert_eq!(resp.len(), 17);
    assert_eq!(resp[0], 0x10);
    assert_eq!(verify_hls_gmac(&SERVER, &keys(), challenge, &resp), Ok(42));
    assert_eq!(
        verify_hls_gmac(&CLIENT, &keys(), challenge, &resp),
        Err(SecurityError::AuthenticationFailed)
    );
    assert_eq!(
        verify_hls_gmac(&SERVER, &keys(), b"0123456789ABCDEE", &resp),
        Err(SecurityError::AuthenticationFailed)
    );
    for byte in 0..resp.len() {
        let mut bad = resp.clone();
        bad[byte] ^= 0x01;
        assert!(verify_hls_gmac(&SERVER, &keys(), challenge, &bad).is_err());
    }
    for n in 0..resp.len() {
        assert!(verify_hls_gmac(&SERVER, &keys(), challenge, &resp[..n]).is_err());
    }
    let mut longer = resp.clone();
    longer.push(0);
    assert!(verify_hls_gmac(&SERVER, &keys(), challenge, &longer).is_err());
    let mut other_suite = resp;
    other_suite[0] = 0x11;
    assert_eq!(
        verify_hls_gmac(&SERVER, &keys(), challenge, &other_suite),
        Err(SecurityError::UnsupportedSuite(1))
    );
}

#[test]
fn hls_digests_follow_their_definitions() {
    use sha2::{Digest, Sha256};
    let (ctos, stoc, secret) = (
        &b"client-chal"[..],
        &b"server-challenge"[..],
        &b"secret"[..],
    );
    let mut d = Sha256::new();
    for part in [secret, &CLIENT.0, &SERVER.0, stoc, ctos] {
        d.update(part);
    }
    let client_f_stoc: [u8; 32] = d.finalize().into();
    assert_eq!(
        hls_sha256(secret, &CLIENT, &SERVER, stoc, ctos),
        client_f_stoc
    );
    // The server's answer swaps both pairs, so it differs from the client's.
    assert_ne!(
        hls_sha256(secret, &SERVER, &CLIENT, ctos, stoc),
        client_f_stoc
    );
    // MD5 of the empty input, and the challenge-then-secret order.
    assert_eq!(
        hex::encode(hls_md5(b"", b"")),
        "d41d8cd98f00b204e9800998ecf8427e"
    );
    assert_eq!(hls_sha1(b"ab", b"c"), hls_sha1(b"a", b"bc"));
    assert_ne!(hls_md5(b"ab", b"c"), hls_md5(b"c", b"ab"));
}

#[test]
fn key_unwrap_rejects_tampering_and_bad_lengths() {
    let kek = [0x11; 16];
    let wrapped = wrap_key(&kek, &DK);
    assert_eq!(unwrap_key(&kek, &wrapped), Ok(DK));
    assert_eq!(
        unwrap_key(&[0x12; 16], &wrapped),
        Err(SecurityError::KeyUnwrapFailed)
    );
    for byte in 0..wrapped.len() {
        let mut bad = wrapped;
        bad[byte] ^= 0x80;
        assert_eq!(unwrap_key(&kek, &bad), Err(SecurityError::KeyUnwrapFailed));
    }
    for len in [0, 8, 16, 23, 25, 32, 40] {
        assert!(matches!(
            unwrap_key(&kek, &vec![0xA6; len]),
            Err(SecurityError::Decode(_))
        ));
    }
}

/// Every rendering of a key that a `Debug` implementation might produce.
fn renderings(key: &[u8; 16]) -> Vec<String> {
    vec![
        hex::encode(key),
        hex::encode_upper(key),
        format!("{key:?}"),
        format!("{key:02X?}"),
        format!("{:?}", &key[..4]).trim_end_matches(']').to_string(),
    ]
}

#[test]
fn debug_output_never_shows_keys() {
    let mut ctx = SecurityContext::new(SecurityLevel::AuthenticatedEncrypted, CLIENT, keys(), 1);
    ctx.dedicated_key = Some(DK);
    for shown in [
        format!("{:?}", keys()),
        format!("{:#?}", keys()),
        format!("{ctx:?}"),
        format!("{ctx:#?}"),
    ] {
        assert!(shown.contains("redacted"), "{shown}");
        for key in [EK, AK, DK] {
            for r in renderings(&key) {
                assert!(!shown.contains(&r), "{shown} contains {r}");
            }
        }
    }
    // The context's public state is still visible.
    assert!(format!("{ctx:?}").contains("AuthenticatedEncrypted"));
}
