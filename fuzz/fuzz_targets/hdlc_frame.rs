#![no_main]
use dlms::hdlc::{Deframer, Frame, HdlcLink, HdlcParams, LinkLimits, ServerAddress};
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

fuzz_target!(|bytes: &[u8]| {
    // A frame that decodes re-encodes to the same bytes (type 3 frames have one encoding).
    if let Ok(f) = Frame::decode(bytes) {
        assert_eq!(f.to_bytes(), bytes);
    }
    // The deframer never holds more than its bound and yields only valid frames.
    let mut d = Deframer::new();
    for chunk in bytes.chunks(7) {
        d.push(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => assert_eq!(Frame::decode(&f.to_bytes()), Ok(f)),
                Ok(None) => break,
                Err(_) => {}
            }
        }
    }
    let _ = HdlcParams::from_info(bytes);
    // Neither end of the link panics on anything.
    let server = ServerAddress {
        logical: 1,
        physical: None,
        size: 1,
    };
    let now = Instant::now();
    let mut s = HdlcLink::server(server, HdlcParams::default(), LinkLimits::default());
    let mut c = HdlcLink::client(0x10, server, HdlcParams::default(), LinkLimits::default());
    c.connect(now);
    let _ = s.handle_input(bytes, now);
    let _ = c.handle_input(bytes, now);
    let mut out = Vec::new();
    while s.poll_transmit(&mut out) || c.poll_transmit(&mut out) {}
    while s.poll_event().is_some() || c.poll_event().is_some() {}
});
