#![no_main]
use dlms::security::{open_agreed, AgreementKeys, EcPrivateKey, EcPublicKey, EccSuite};
use dlms::SystemTitle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // A general-ciphering APDU with an agreed key, from a hostile originator: decoding, the
    // ephemeral key's signature, the point itself, ECDH and GCM all fail cleanly.
    let own = SystemTitle(*b"FUZZ0001");
    for suite in [EccSuite::Suite1, EccSuite::Suite2] {
        let (Ok(own_key), Ok(peer)) = (
            EcPrivateKey::from_raw(suite, &vec![0x22; suite.field_len()]),
            EcPrivateKey::from_raw(suite, &vec![0x33; suite.field_len()]),
        ) else {
            return;
        };
        let peer_pub = peer.public_key();
        let keys = AgreementKeys {
            own_agreement_key: &own_key,
            peer_agreement_key: Some(&peer_pub),
            originator_signing_key: Some(&peer_pub),
        };
        let _ = open_agreed(bytes, &own, keys, &vec![0xD0; suite.key_len()]);
        // Public keys straight from hostile bytes.
        let _ = EcPublicKey::from_raw(suite, bytes);
        let _ = EcPublicKey::from_spki_der(bytes);
    }
});
