#![no_main]
use dlms::security::{CipherKeys, GeneralCiphering, SecurityContext};
use dlms::{Codec, SecurityLevel, SystemTitle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // Unprotecting arbitrary bytes fails cleanly or yields an APDU; a failure never moves the
    // replay floor.
    let keys = CipherKeys {
        ek: [0x00; 16],
        ak: [0xD0; 16],
    };
    let mut ctx = SecurityContext::new(SecurityLevel::None, SystemTitle(*b"FUZZ0001"), keys, 1);
    ctx.peer_system_title = Some(SystemTitle(*b"PEER0001"));
    ctx.dedicated_key = Some([0x5A; 16]);
    if ctx.unprotect(bytes).is_err() {
        assert_eq!(ctx.last_rx_invocation_counter(), None);
    }
    // The general-ciphering decoder re-encodes what it accepts stably.
    if let Ok(gc) = GeneralCiphering::decode_exact(bytes) {
        let once = gc.to_bytes();
        assert_eq!(
            GeneralCiphering::decode_exact(&once).map(|g| g.to_bytes()),
            Ok(once)
        );
    }
});
