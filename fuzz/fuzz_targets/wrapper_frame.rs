#![no_main]
use dlms::wrapper::Deframer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // Fed in two pieces, any stream yields frames or a typed error, never a panic.
    let mut d = Deframer::new(4096);
    let (a, b) = bytes.split_at(bytes.len() / 2);
    for part in [a, b] {
        d.push(part);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => assert!(f.apdu.len() <= 4096),
                Ok(None) | Err(_) => break,
            }
        }
    }
});
