#![no_main]
//! The bus contract's decoders on hostile bytes: a typed error or a value, never a panic.
use hes_proto::v1;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let _ = hes_proto::decode_reading(data);
    if let Ok(e) = v1::Event::decode(data) {
        let _ = hes_model::Event::try_from(e);
    }
    if let Ok(j) = v1::JobResult::decode(data) {
        let _ = hes_model::JobResult::try_from(j);
    }
});
