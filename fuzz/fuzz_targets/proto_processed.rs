#![no_main]
//! `hes.readings.processed` records on hostile bytes: a typed error or a value, never a panic;
//! and what decodes re-encodes to a record that decodes to the same value (non-finite numbers
//! are refused on decode, so the comparison is exact).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = hes_proto::decode_processed(data) {
        let again = hes_proto::decode_processed(&hes_proto::encode_processed(&p));
        assert!(matches!(again, Ok(ref a) if *a == p));
    }
});
