#![no_main]
use dlms::wrapper::{Deframer, WrapperFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // A decoded frame encodes back to the same bytes.
    if let Ok(f) = WrapperFrame::decode_exact(bytes) {
        let mut out = Vec::new();
        assert!(f.encode(&mut out).is_ok());
        assert_eq!(out, bytes);
    }
    // The deframer respects its APDU limit and never panics.
    let mut d = Deframer::new(1024);
    for chunk in bytes.chunks(5) {
        d.push(chunk);
        while let Ok(Some(f)) = d.next_frame() {
            assert!(f.apdu.len() <= 1024);
        }
    }
});
