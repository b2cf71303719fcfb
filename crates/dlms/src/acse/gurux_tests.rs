//! Byte-exact interop with Gurux DLMS for Python (vectors from `interop/vectors/acse.py`).
//!
//! Gurux quirk recorded in the vectors: its server-side AARE generator (1.0.203) writes
//! `responding-authentication-value` as `AA <n> 80 <n> <challenge>`, i.e. the [10] length
//! omits the two octets of the inner charstring header. The TLV then lies about its contents,
//! and we follow the standard and refuse it (`aare_gurux_server_hls_quirk`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use serde_json::Value;

use super::*;

const VECTORS: &str = include_str!("../../../../testdata/gurux/acse.json");

fn bytes(v: &Value) -> Option<Vec<u8>> {
    v.as_str().map(|s| hex::decode(s).unwrap())
}

fn vectors() -> Vec<Value> {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    doc["vectors"].as_array().unwrap().clone()
}

fn check_aarq(v: &Value, pdu: &[u8]) {
    let aarq = Aarq::decode_exact(pdu).unwrap();
    let ctx = u8::try_from(v["application_context"].as_u64().unwrap()).unwrap();
    assert_eq!(
        Some(aarq.application_context),
        ApplicationContext::from_id(ctx)
    );
    assert_eq!(aarq.calling_ap_title, bytes(&v["calling_ap_title"]));
    assert_eq!(aarq.calling_ae_qualifier, None);
    assert_eq!(
        aarq.sender_acse_requirements,
        v["sender_acse_requirements"].as_bool().unwrap()
    );
    let mechanism = v["mechanism"]
        .as_u64()
        .map(|m| Mechanism::from_id(u8::try_from(m).unwrap()).unwrap());
    assert_eq!(aarq.mechanism, mechanism);
    assert_eq!(
        aarq.calling_authentication_value,
        bytes(&v["calling_authentication_value"])
    );
    assert_eq!(aarq.user_information, bytes(&v["user_information"]));
    assert_eq!(aarq.to_bytes(), pdu);
}

fn check_aare(v: &Value, pdu: &[u8]) {
    let aare = Aare::decode_exact(pdu).unwrap();
    assert_eq!(aare.result, AssociationResult::Accepted);
    let expected = if v["gurux_authentication_required"].as_bool().unwrap() {
        AcseServiceUser::AuthenticationRequired
    } else {
        AcseServiceUser::Null
    };
    assert_eq!(aare.diagnostic, Diagnostic::ServiceUser(expected));
    assert_eq!(
        aare.responding_ap_title,
        bytes(&v["gurux_server_system_title"])
    );
    assert_eq!(
        aare.responding_authentication_value,
        bytes(&v["gurux_stoc_challenge"])
    );
    // Gurux reports "no mechanism" as mechanism 0 (None).
    let mechanism = u8::try_from(v["gurux_mechanism"].as_u64().unwrap()).unwrap();
    assert_eq!(
        aare.mechanism.unwrap_or(Mechanism::None),
        Mechanism::from_id(mechanism).unwrap()
    );
    assert_eq!(aare.responder_acse_requirements, aare.mechanism.is_some());
    assert_eq!(
        aare.application_context.is_ciphered(),
        aare.responding_ap_title.is_some()
    );
    // The InitiateResponse (plain) ends with the max PDU size and the LN VAA name 0x0007.
    let ui = aare.user_information.clone().unwrap();
    if !aare.application_context.is_ciphered() {
        let max_pdu = u64::from(u16::from_be_bytes([ui[ui.len() - 4], ui[ui.len() - 3]]));
        assert_eq!(max_pdu, v["gurux_max_pdu_size"].as_u64().unwrap());
        assert_eq!(ui[ui.len() - 2..], [0x00, 0x07]);
    }
    assert_eq!(aare.to_bytes(), pdu);
}

fn check_rlrq(v: &Value, pdu: &[u8]) {
    let rlrq = Rlrq::decode_exact(pdu).unwrap();
    let reason = v["reason"].as_u64().map(|r| u8::try_from(r).unwrap());
    assert_eq!(rlrq.reason, reason);
    assert_eq!(rlrq.user_information, bytes(&v["user_information"]));
    assert_eq!(rlrq.to_bytes(), pdu);
}

#[test]
fn gurux_vectors_decode_and_re_encode_byte_exactly() {
    let mut seen = Vec::new();
    for v in vectors() {
        let name = v["name"].as_str().unwrap().to_owned();
        let pdu = bytes(&v["hex"]).unwrap();
        if v["reject"].as_bool() == Some(true) {
            assert!(AcseApdu::decode_exact(&pdu).is_err(), "{name} accepted");
        } else {
            match v["kind"].as_str().unwrap() {
                "aarq" => check_aarq(&v, &pdu),
                "aare" => check_aare(&v, &pdu),
                "rlrq" => check_rlrq(&v, &pdu),
                other => panic!("unknown kind {other} in {name}"),
            }
            // The enum agrees with the concrete type.
            assert_eq!(
                AcseApdu::decode_exact(&pdu).unwrap().to_bytes(),
                pdu,
                "{name}"
            );
        }
        seen.push(name);
    }
    for expected in [
        "aarq_ln_no_auth",
        "aarq_lls",
        "aarq_hls_gmac_ciphered",
        "aarq_hls_md5",
        "aarq_hls_sha1",
        "aarq_hls_sha256",
        "aare_gurux_server_ln_no_auth",
        "aare_hls_md5",
        "aare_hls_gmac_ciphered",
        "aare_gurux_server_hls_quirk",
        "rlrq_plain",
        "rlrq_protected",
    ] {
        assert!(
            seen.iter().any(|s| s == expected),
            "vector {expected} missing"
        );
    }
}

#[test]
fn gurux_lls_password_is_the_charstring() {
    let v = vectors()
        .into_iter()
        .find(|v| v["name"] == "aarq_lls")
        .unwrap();
    let aarq = Aarq::decode_exact(&bytes(&v["hex"]).unwrap()).unwrap();
    assert_eq!(aarq.mechanism, Some(Mechanism::Low));
    assert_eq!(
        aarq.calling_authentication_value.as_deref(),
        Some(&b"12345678"[..])
    );
}

#[test]
fn gurux_hls_quirk_differs_from_the_standard_only_in_the_challenge_length() {
    let v = vectors();
    let quirk = v
        .iter()
        .find(|v| v["name"] == "aare_gurux_server_hls_quirk")
        .unwrap();
    let quirk = bytes(&quirk["hex"]).unwrap();
    let fixed = {
        let mut b = quirk.clone();
        let at = b.windows(2).position(|w| w == [0xAA, 0x08]).unwrap();
        // Gurux computes the outer length from what it wrote, so only [10] needs fixing.
        b[at + 1] = 0x0A;
        b
    };
    let aare = Aare::decode_exact(&fixed).unwrap();
    assert_eq!(
        aare.responding_authentication_value.as_deref(),
        Some(&b"P6wRJ21F"[..])
    );
    assert_eq!(aare.mechanism, Some(Mechanism::HighMd5));
}
