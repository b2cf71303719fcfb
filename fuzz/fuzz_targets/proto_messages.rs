#![no_main]
//! The bus contract's decoders on hostile bytes: a typed error or a value, never a panic. Every
//! record a stage takes from the bus goes through one of these.
use hes_proto::v1;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let _ = hes_proto::decode_reading(data);
    let _ = hes_proto::decode_readings(data);
    let _ = hes_proto::decode_validated(data);
    let _ = hes_proto::decode_events(data);
    let _ = hes_proto::decode_job_result(data);
    let _ = hes_proto::decode_job_request(data);
    let _ = hes_proto::decode_processed(data);
    if let Ok(e) = v1::Event::decode(data) {
        let _ = hes_model::Event::try_from(e);
    }
});
