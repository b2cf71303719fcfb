//! Byte-exact checks against the vectors Gurux produced (interop/vectors/security.py,
//! testdata/gurux/security.json) from the Green Book example keys and system title.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;
use crate::types::{SecurityLevel, SystemTitle};

const JSON: &str = include_str!("../../../../testdata/gurux/security.json");

/// The value of `"key": ...` in the vector file (keys there are unique): a string's contents
/// or a number's digits. Enough for this flat file; not a JSON parser.
fn field(key: &str) -> &'static str {
    let needle = format!("\"{key}\": ");
    let start = JSON
        .find(&needle)
        .unwrap_or_else(|| panic!("{key} missing"))
        + needle.len();
    let rest = &JSON[start..];
    if let Some(s) = rest.strip_prefix('"') {
        &s[..s.find('"').unwrap()]
    } else {
        &rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap()]
    }
}

fn bytes(key: &str) -> Vec<u8> {
    hex::decode(field(key)).unwrap()
}

fn arr<const N: usize>(key: &str) -> [u8; N] {
    bytes(key).try_into().unwrap()
}

fn st() -> SystemTitle {
    SystemTitle(arr("system_title"))
}

fn peer_st() -> SystemTitle {
    SystemTitle(arr("peer_system_title"))
}

fn ic() -> u32 {
    field("ic").parse().unwrap()
}

fn keys() -> CipherKeys {
    CipherKeys {
        ek: arr("ek"),
        ak: arr("ak"),
    }
}

#[test]
fn green_book_example_inputs() {
    // Guards against the vector file drifting away from the Green Book values.
    assert_eq!(field("system_title"), "4D4D4D0000BC614E");
    assert_eq!(ic(), 0x0123_4567);
    assert_eq!(field("ek"), "000102030405060708090A0B0C0D0E0F");
    assert_eq!(field("ak"), "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF");
    assert_eq!(field("plaintext"), "C0010000080000010000FF0200");
}

#[test]
fn low_level_encrypt_and_decrypt_match_gurux() {
    let k = keys();
    let plain = bytes("plaintext");
    for (sc, key) in [(0x10, "sc10"), (0x20, "sc20"), (0x30, "sc30")] {
        let expected = bytes(key);
        let ours = encrypt(SecurityControl(sc), &st(), ic(), &k.ek, &k.ak, &plain);
        assert_eq!(
            hex::encode_upper(&ours),
            hex::encode_upper(&expected),
            "{key}"
        );
        let (got_sc, got_ic, got_plain) = decrypt(&st(), &k.ek, &k.ak, &expected).unwrap();
        assert_eq!(
            (got_sc, got_ic, got_plain),
            (SecurityControl(sc), ic(), plain.clone())
        );
    }
}

fn sender(level: SecurityLevel) -> SecurityContext {
    let mut c = SecurityContext::new(level, st(), keys(), ic());
    c.dedicated_key = Some(keys().ek);
    c
}

fn receiver(level: SecurityLevel) -> SecurityContext {
    let mut c = SecurityContext::new(level, peer_st(), keys(), 1);
    c.peer_system_title = Some(st());
    c.dedicated_key = Some(keys().ek);
    c
}

#[test]
fn service_specific_apdus_match_gurux() {
    let plain = bytes("plaintext");
    // Gurux has no separate dedicated key in this script: the ded vector uses EK as the
    // dedicated key, so only the tag differs.
    for (dedicated, key) in [
        (false, "glo_get_request_sc30"),
        (true, "ded_get_request_sc30"),
    ] {
        let expected = bytes(key);
        let mut tx = sender(SecurityLevel::AuthenticatedEncrypted);
        assert_eq!(tx.protect(&plain, dedicated).unwrap(), expected, "{key}");
        assert_eq!(tx.next_tx_invocation_counter(), ic() + 1);
        let got = receiver(SecurityLevel::AuthenticatedEncrypted)
            .unprotect(&expected)
            .unwrap();
        assert_eq!(got.apdu, plain);
        assert_eq!(got.invocation_counter, ic());
        assert_eq!(got.dedicated, dedicated);
        assert_eq!(got.system_title, None);
    }
}

#[test]
fn general_glo_ciphering_matches_gurux() {
    let plain = bytes("plaintext");
    for (level, key) in [
        (SecurityLevel::AuthenticatedEncrypted, "general_glo_sc30"),
        (SecurityLevel::Authenticated, "general_glo_sc10"),
    ] {
        let expected = bytes(key);
        assert_eq!(sender(level).protect_general_glo(&plain).unwrap(), expected);
        let mut rx = receiver(level);
        rx.peer_system_title = None;
        let got = rx.unprotect(&expected).unwrap();
        assert_eq!(got.apdu, plain);
        assert_eq!(got.level, level);
        assert_eq!(got.system_title, Some(st()));
    }
}

#[test]
fn hls_gmac_matches_gurux() {
    let hls_ic: u32 = field("hls_ic").parse().unwrap();
    let stoc = bytes("stoc");
    let expected = bytes("hls_gmac_stoc");
    assert_eq!(bytes("hls_gmac_stoc_via_secure"), expected);
    assert_eq!(hls_gmac(&st(), hls_ic, &keys(), &stoc), expected);
    assert_eq!(
        verify_hls_gmac(&st(), &keys(), &stoc, &expected),
        Ok(hls_ic)
    );
}

#[test]
fn hls_digests_match_gurux() {
    let stoc = bytes("stoc");
    let ctos = bytes("ctos");
    let secret = bytes("secret");
    assert_eq!(hls_md5(&stoc, &secret).to_vec(), bytes("hls_md5_stoc"));
    assert_eq!(hls_sha1(&stoc, &secret).to_vec(), bytes("hls_sha1_stoc"));
    // Client (ST = 4D4D4D0000BC614E) answers StoC; server (peer ST) answers CtoS.
    assert_eq!(
        hls_sha256(&secret, &st(), &peer_st(), &stoc, &ctos).to_vec(),
        bytes("hls_sha256_client_f_stoc")
    );
    assert_eq!(
        hls_sha256(&secret, &peer_st(), &st(), &ctos, &stoc).to_vec(),
        bytes("hls_sha256_server_f_ctos")
    );
}

#[test]
fn key_wrap_matches_gurux_and_rfc3394() {
    let kek: [u8; 16] = arr("kek");
    let key: [u8; 16] = arr("key");
    let wrapped = bytes("wrapped");
    // RFC 3394 section 4.1.
    assert_eq!(
        hex::encode_upper(&wrapped),
        "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"
    );
    assert_eq!(wrap_key(&kek, &key).to_vec(), wrapped);
    assert_eq!(unwrap_key(&kek, &wrapped), Ok(key));
}
