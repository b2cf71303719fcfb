#![no_main]
//! The CIM endpoint's reader on hostile bytes: a refusal with a reply code or a message, never
//! a panic, and never more than the limits allow (the reader stops at them).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hes_cim::xml::parse(data);
    if let Ok(m) = hes_cim::RequestMessage::parse(data) {
        let _ = hes_cim::payload::query(m.request.as_ref(), &m.header.noun);
        let _ = hes_cim::payload::controls(m.payload.as_ref());
    }
});
