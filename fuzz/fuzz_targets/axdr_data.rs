#![no_main]
use dlms::{Codec, Data};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // Any input either fails cleanly or decodes to a value that re-encodes to the same bytes.
    if let Ok(v) = Data::decode_exact(bytes) {
        let again = v.to_bytes();
        assert_eq!(Data::decode_exact(&again).ok(), Some(v));
    }
});
