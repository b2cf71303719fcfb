#![no_main]
use std::time::Instant;

use dlms::hdlc::{Deframer, HdlcLink, HdlcParams, LinkLimits, ServerAddress};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let mut d = Deframer::default();
    d.push(bytes);
    for _ in 0..64 {
        match d.next_frame() {
            Ok(Some(_)) | Err(_) => continue,
            Ok(None) => break,
        }
    }
    // A server link fed the same bytes answers or ignores them, and stays bounded.
    let addr = ServerAddress {
        logical: 1,
        physical: Some(16),
        size: 2,
    };
    let limits = LinkLimits {
        max_apdu: 4096,
        ..LinkLimits::default()
    };
    let mut link = HdlcLink::server(addr, HdlcParams::default(), limits);
    let _ = link.handle_input(bytes, Instant::now());
    let mut out = Vec::new();
    while link.poll_transmit(&mut out) {}
    while link.poll_event().is_some() {}
});
