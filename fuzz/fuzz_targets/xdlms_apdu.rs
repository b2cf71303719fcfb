#![no_main]
use dlms::xdlms::Apdu;
use dlms::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // Decoding never panics; what decodes re-encodes to bytes that decode to the same encoding.
    if let Ok(a) = Apdu::decode_exact(bytes) {
        let once = a.to_bytes();
        let twice = Apdu::decode_exact(&once).map(|d| d.to_bytes());
        assert_eq!(twice.as_deref(), Ok(once.as_slice()));
    }
});
