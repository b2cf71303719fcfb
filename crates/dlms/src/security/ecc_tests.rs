//! Suites 1 and 2 primitives. The expected values were computed with an independent
//! implementation (Python `cryptography`: ECDH, `ConcatKDFHash`, ECDSA) from the same fixed
//! scalars, so they check our encoding of OtherInfo and of keys and signatures, not only that
//! we agree with ourselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::ecc::*;
use super::hls::{hls_ecdsa, verify_hls_ecdsa};
use super::SecurityError;
use crate::types::SystemTitle;

const ST_U: SystemTitle = SystemTitle(*b"MMM\x00\x00\xBC\x61\x4E");
const ST_V: SystemTitle = SystemTitle(*b"MMM\x00\x00\x00\x00\x01");

struct Vector {
    suite: EccSuite,
    du: Vec<u8>,
    pub_v: &'static str,
    z: &'static str,
    key: &'static str,
    sig: &'static str,
}

fn vectors() -> [Vector; 2] {
    [
        Vector {
            suite: EccSuite::Suite1,
            du: (1..=32).collect(),
            pub_v: "68ec7cf08cd4106e43b14de895426522bd0a45150c027e45c7953434d747e7bae3af39a88ebbee8679bb61e7845c3a89cb9b5a3237c3fdb0b0587dbaf415118d",
            z: "ec559d31e54c6c292383fef21cd1747c331ffc66548e52b56d3588d06c992682",
            key: "ec86d73c19b9897af7398f286719be9f",
            sig: "d752ceb343b7faea33f31ed08b039987f32c5f2ecc3ffd243d2e8e527e55075145b5fdc6e880fb6a9ead70f37a5d93ed428050b928e8ed031c1b12a1d5c71381",
        },
        Vector {
            suite: EccSuite::Suite2,
            du: (1..=48).collect(),
            pub_v: "0f3b4e71292f2de3a7c7befb785008417858f3cffe8192345e11735f4e75ed8a20218bddfd9c6656943b2db8cabf2e40b3348bbbecff8a7b144d73259b20018e9f44f4dac25be0069344c0c70ef4ba5d830080a52f8a05a423b6e83b93e8923e",
            z: "d278922c138f3541e24e81a4a1ba00b99733b286a290532a2bee9b9bc066549bf57af9350203250ed2bff98029bfe206",
            key: "e43e0738e41dacc094c4f796487b52b2a2bcedff3dadf03fd2959251829f209c",
            sig: "aad557aef63d340aa32a3c2f00c6b13440740d61f03969da416cf5fadff47df005ece7c8eacdea146478f62639f04253a7e06e9ef1cc158276f59b1b6afe4e977c625f491479c7534937a970e7af02727809a406cfc86c7e51bbcb7c273491cb",
        },
    ]
}

const MSG: &[u8] = b"DLMS suite test message";

#[test]
fn ecdh_and_kdf_match_an_independent_implementation() {
    for v in vectors() {
        let du = EcPrivateKey::from_raw(v.suite, &v.du).unwrap();
        let pub_v = EcPublicKey::from_raw(v.suite, &hex::decode(v.pub_v).unwrap()).unwrap();
        assert_eq!(pub_v.to_raw(), hex::decode(v.pub_v).unwrap());
        let z = du.diffie_hellman(&pub_v).unwrap();
        assert_eq!(hex::encode(z.as_bytes()), v.z, "{:?}", v.suite);
        let key = kdf(v.suite, &z, v.suite.gcm_algorithm(), &[&ST_U.0, &ST_V.0]);
        assert_eq!(hex::encode(key.as_bytes()), v.key, "{:?}", v.suite);
        assert_eq!(key.as_bytes().len(), v.suite.key_len());
    }
}

#[test]
fn ecdsa_signatures_of_an_independent_signer_verify() {
    for v in vectors() {
        let du = EcPrivateKey::from_raw(v.suite, &v.du).unwrap();
        let sig = hex::decode(v.sig).unwrap();
        du.public_key().verify(MSG, &sig).unwrap();
        let mut bad = sig.clone();
        bad[5] ^= 1;
        assert_eq!(
            du.public_key().verify(MSG, &bad),
            Err(SecurityError::SignatureInvalid)
        );
        assert_eq!(
            du.public_key().verify(b"another message", &sig),
            Err(SecurityError::SignatureInvalid)
        );
        // Our own signatures verify and have the bare r || s length.
        let own = du.sign(MSG);
        assert_eq!(own.len(), v.suite.point_len());
        du.public_key().verify(MSG, &own).unwrap();
    }
}

#[test]
fn keys_and_signatures_of_the_wrong_curve_or_shape_are_refused() {
    let k1 = EcPrivateKey::generate(EccSuite::Suite1);
    let k2 = EcPrivateKey::generate(EccSuite::Suite2);
    assert_eq!(
        k1.diffie_hellman(&k2.public_key()).unwrap_err(),
        SecurityError::CurveMismatch
    );
    // A P-384 signature checked with a P-256 key: refused, not a panic.
    let sig2 = k2.sign(MSG);
    assert_eq!(
        k1.public_key().verify(MSG, &sig2),
        Err(SecurityError::SignatureInvalid)
    );
    assert_eq!(
        k1.public_key().verify(MSG, &[]),
        Err(SecurityError::SignatureInvalid)
    );
    assert_eq!(
        k1.public_key().verify(MSG, &[0u8; 64]),
        Err(SecurityError::SignatureInvalid)
    );
    // Off-curve points, wrong lengths, zero scalars.
    let mut raw = k1.public_key().to_raw();
    raw[63] ^= 1;
    assert!(EcPublicKey::from_raw(EccSuite::Suite1, &raw).is_err());
    assert!(EcPublicKey::from_raw(EccSuite::Suite2, &k1.public_key().to_raw()).is_err());
    assert!(EcPublicKey::from_raw(EccSuite::Suite1, &[0u8; 64]).is_err());
    assert!(EcPrivateKey::from_raw(EccSuite::Suite1, &[0u8; 32]).is_err());
    assert!(EcPrivateKey::from_raw(EccSuite::Suite1, &[1u8; 31]).is_err());
    // A SEC1 04-prefixed point is the same key.
    let mut sec1 = vec![4u8];
    sec1.extend(k1.public_key().to_raw());
    assert_eq!(
        EcPublicKey::from_raw(EccSuite::Suite1, &sec1).unwrap(),
        k1.public_key()
    );
}

#[test]
fn pem_and_der_round_trips() {
    for suite in [EccSuite::Suite1, EccSuite::Suite2] {
        let k = EcPrivateKey::generate(suite);
        let pem = k.to_pkcs8_pem().unwrap();
        let back = EcPrivateKey::from_pem(&pem).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        let spki = k.public_key().to_spki_der().unwrap();
        assert_eq!(EcPublicKey::from_spki_der(&spki).unwrap(), k.public_key());
        assert!(format!("{k:?}").contains("redacted"));
    }
    assert!(EcPrivateKey::from_pem(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    .is_err());
}

#[test]
fn key_agreement_schemes_agree_on_both_sides() {
    for suite in [EccSuite::Suite1, EccSuite::Suite2] {
        let u = EcPrivateKey::generate(suite);
        let v = EcPrivateKey::generate(suite);
        // C(1e, 1s)
        let (eph, k_u) = one_pass_originate(&v.public_key(), &ST_U, &ST_V).unwrap();
        let k_v = one_pass_accept(&v, &eph.public_key(), &ST_U, &ST_V).unwrap();
        assert_eq!(k_u, k_v);
        assert_eq!(k_u.as_bytes().len(), suite.key_len());
        // C(0e, 2s): fresh per transaction id.
        let a =
            static_unified(&u, &v.public_key(), &ST_U, &[0, 0, 0, 0, 0, 0, 0, 1], &ST_V).unwrap();
        let b =
            static_unified(&v, &u.public_key(), &ST_U, &[0, 0, 0, 0, 0, 0, 0, 1], &ST_V).unwrap();
        let c =
            static_unified(&v, &u.public_key(), &ST_U, &[0, 0, 0, 0, 0, 0, 0, 2], &ST_V).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}

#[test]
fn hls_ecdsa_proofs_verify_with_roles_swapped() {
    let (ctos, stoc) = (&[7u8; 32][..], &[9u8; 48][..]);
    for suite in [EccSuite::Suite1, EccSuite::Suite2] {
        let client = EcPrivateKey::generate(suite);
        let server = EcPrivateKey::generate(suite);
        // Pass 3: the client signs ST-C || ST-S || StoC || CtoS.
        let f_stoc = hls_ecdsa(&client, &ST_U, &ST_V, stoc, ctos);
        verify_hls_ecdsa(&client.public_key(), &ST_U, &ST_V, stoc, ctos, &f_stoc).unwrap();
        client
            .public_key()
            .verify(&[&ST_U.0[..], &ST_V.0, stoc, ctos].concat(), &f_stoc)
            .unwrap();
        // Pass 4: the server signs ST-S || ST-C || CtoS || StoC.
        let f_ctos = hls_ecdsa(&server, &ST_V, &ST_U, ctos, stoc);
        verify_hls_ecdsa(&server.public_key(), &ST_V, &ST_U, ctos, stoc, &f_ctos).unwrap();
        // The wrong key, challenge or title: refused.
        assert!(verify_hls_ecdsa(&client.public_key(), &ST_V, &ST_U, ctos, stoc, &f_ctos).is_err());
        assert!(verify_hls_ecdsa(&server.public_key(), &ST_V, &ST_U, stoc, ctos, &f_ctos).is_err());
        assert!(verify_hls_ecdsa(&server.public_key(), &ST_U, &ST_V, ctos, stoc, &f_ctos).is_err());
    }
}

#[test]
fn association_ciphering_at_suites_1_and_2() {
    use super::{CipherKeys, SecurityContext, WideKeys};
    use crate::types::SecurityLevel;
    let apdu = [0xC0, 0x01, 0x41, 0x00, 0x08, 0, 0, 1, 0, 0, 255, 2, 0];
    let level = SecurityLevel::AuthenticatedEncrypted;
    let k16 = || CipherKeys {
        ek: [1; 16],
        ak: [2; 16],
    };
    let k32 = || WideKeys {
        ek: [3; 32],
        ak: [4; 32],
    };
    let mut c1 = SecurityContext::new(level, ST_U, k16(), 1)
        .with_suite(1)
        .unwrap();
    let mut s1 = SecurityContext::new(level, ST_V, k16(), 1)
        .with_suite(1)
        .unwrap();
    let mut s0 = SecurityContext::new(level, ST_V, k16(), 1);
    let mut c2 = SecurityContext::new_suite2(level, ST_U, k32(), 1);
    let mut s2 = SecurityContext::new_suite2(level, ST_V, k32(), 1);
    for s in [&mut s0, &mut s1, &mut s2] {
        s.peer_system_title = Some(ST_U);
    }
    assert!(SecurityContext::new(level, ST_U, k16(), 1)
        .with_suite(2)
        .is_err());

    let p1 = c1.protect(&apdu, false).unwrap();
    assert_eq!(p1[2], 0x31, "SC carries suite 1");
    assert_eq!(s1.unprotect(&p1).unwrap().apdu, apdu);
    // A suite 0 association refuses suite 1 APDUs even under the same keys.
    assert_eq!(s0.unprotect(&p1), Err(SecurityError::UnsupportedSuite(1)));

    let p2 = c2.protect(&apdu, false).unwrap();
    assert_eq!(p2[2], 0x32);
    assert_eq!(s2.unprotect(&p2).unwrap().apdu, apdu);
    assert_eq!(s1.unprotect(&p2), Err(SecurityError::UnsupportedSuite(2)));
    // Suite 2 has no dedicated key.
    assert_eq!(c2.protect(&apdu, true), Err(SecurityError::MissingKey));
    let mut tampered = c2.protect(&apdu, false).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(
        s2.unprotect(&tampered),
        Err(SecurityError::AuthenticationFailed)
    );
}

#[test]
fn general_signing_round_trip_and_refusals() {
    use super::signing::{GeneralSigning, GENERAL_SIGNING};
    use crate::codec::Codec;
    for suite in [EccSuite::Suite1, EccSuite::Suite2] {
        let key = EcPrivateKey::generate(suite);
        let content = [0xC0, 0x01, 0x41, 0x00, 0x01];
        let gs = GeneralSigning::sign(
            &key,
            &[0, 0, 0, 0, 0, 0, 0, 9],
            &ST_U,
            Some(&ST_V),
            &content,
        );
        let bytes = gs.to_bytes();
        assert_eq!(bytes[0], GENERAL_SIGNING);
        let back = GeneralSigning::decode_exact(&bytes).unwrap();
        assert_eq!(back, gs);
        assert_eq!(back.verify(&key.public_key()).unwrap(), content);
        assert_eq!(back.originator().unwrap(), ST_U);
        // The signature covers the header fields and the content.
        let mut other = back.clone();
        other.content[4] = 2;
        assert_eq!(
            other.verify(&key.public_key()),
            Err(SecurityError::SignatureInvalid)
        );
        let mut other = back.clone();
        other.transaction_id[7] = 8;
        assert_eq!(
            other.verify(&key.public_key()),
            Err(SecurityError::SignatureInvalid)
        );
        let mut other = back.clone();
        other.signature.truncate(10);
        assert_eq!(
            other.verify(&key.public_key()),
            Err(SecurityError::SignatureInvalid)
        );
        let stranger = EcPrivateKey::generate(suite);
        assert_eq!(
            back.verify(&stranger.public_key()),
            Err(SecurityError::SignatureInvalid)
        );
        // Every truncation fails to decode, never panics.
        for n in 0..bytes.len() {
            assert!(GeneralSigning::decode_exact(&bytes[..n]).is_err());
        }
    }
}

#[test]
fn general_ciphering_with_agreed_keys() {
    use super::signing::{open_agreed, seal_agreed, AgreementKeys};
    use super::SecurityControl;
    let plain = [0xC0, 0x01, 0x41, 0x00, 0x01, 0x00, 0x00, 0x2A];
    for suite in [EccSuite::Suite1, EccSuite::Suite2] {
        let ak = vec![0xA5; suite.key_len()];
        let (u_sign, u_agree) = (EcPrivateKey::generate(suite), EcPrivateKey::generate(suite));
        let v_agree = EcPrivateKey::generate(suite);
        let sc = SecurityControl(0x30 | suite.id());
        for scheme in [
            KeyAgreementScheme::OnePassDiffieHellman,
            KeyAgreementScheme::StaticUnified,
        ] {
            let bytes = seal_agreed(
                scheme,
                sc,
                7,
                &[0, 0, 0, 0, 0, 0, 0, 1],
                &ST_U,
                &ST_V,
                &v_agree.public_key(),
                &u_agree,
                &u_sign,
                &ak,
                &plain,
            )
            .unwrap();
            let keys = AgreementKeys {
                own_agreement_key: &v_agree,
                peer_agreement_key: Some(&u_agree.public_key()),
                originator_signing_key: Some(&u_sign.public_key()),
            };
            let opened = open_agreed(&bytes, &ST_V, keys, &ak).unwrap();
            assert_eq!(opened.apdu, plain);
            assert_eq!(opened.originator, ST_U);
            assert_eq!(opened.invocation_counter, 7);
            assert_eq!(opened.scheme, scheme);
            // Addressed to someone else.
            assert!(matches!(
                open_agreed(&bytes, &ST_U, keys, &ak),
                Err(SecurityError::SystemTitleMismatch(_))
            ));
            // A wrong AK, or any flipped byte: refused, never a panic.
            assert!(open_agreed(&bytes, &ST_V, keys, &vec![0; suite.key_len()]).is_err());
            // Debug-build ECDH is slow: every 5th byte and the whole tail (content and tag).
            let tail = bytes.len().saturating_sub(24);
            for i in (0..bytes.len()).filter(|i| i % 5 == 0 || *i >= tail) {
                let mut b = bytes.clone();
                b[i] ^= 0x01;
                assert!(
                    open_agreed(&b, &ST_V, keys, &ak).is_err(),
                    "{scheme:?} byte {i}"
                );
            }
            for n in (0..bytes.len()).step_by(3) {
                assert!(open_agreed(&bytes[..n], &ST_V, keys, &ak).is_err());
            }
        }
        // C(1e, 1s) with an ephemeral key signed by someone else.
        let bytes = seal_agreed(
            KeyAgreementScheme::OnePassDiffieHellman,
            sc,
            8,
            &[1],
            &ST_U,
            &ST_V,
            &v_agree.public_key(),
            &u_agree,
            &EcPrivateKey::generate(suite),
            &ak,
            &plain,
        )
        .unwrap();
        let keys = AgreementKeys {
            own_agreement_key: &v_agree,
            peer_agreement_key: None,
            originator_signing_key: Some(&u_sign.public_key()),
        };
        assert_eq!(
            open_agreed(&bytes, &ST_V, keys, &ak),
            Err(SecurityError::SignatureInvalid)
        );
        // Keys of the other curve are refused when sealing.
        let other = EcPrivateKey::generate(match suite {
            EccSuite::Suite1 => EccSuite::Suite2,
            EccSuite::Suite2 => EccSuite::Suite1,
        });
        assert_eq!(
            seal_agreed(
                KeyAgreementScheme::StaticUnified,
                sc,
                9,
                &[1],
                &ST_U,
                &ST_V,
                &v_agree.public_key(),
                &other,
                &u_sign,
                &ak,
                &plain,
            ),
            Err(SecurityError::CurveMismatch)
        );
    }
}
