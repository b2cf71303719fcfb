#![no_main]
use dlms::security::{EcPrivateKey, EccSuite, GeneralSigning};
use dlms::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // Decoding arbitrary bytes fails cleanly or yields an APDU that re-encodes stably; checking
    // its signature against keys of both curves fails cleanly whatever the signature holds.
    if let Ok(gs) = GeneralSigning::decode_exact(bytes) {
        let once = gs.to_bytes();
        assert_eq!(
            GeneralSigning::decode_exact(&once).map(|g| g.to_bytes()),
            Ok(once)
        );
        for suite in [EccSuite::Suite1, EccSuite::Suite2] {
            let scalar = vec![0x11; suite.field_len()];
            if let Ok(key) = EcPrivateKey::from_raw(suite, &scalar) {
                let _ = gs.verify(&key.public_key());
            }
        }
        let _ = gs.originator();
    }
});
