#![no_main]
use dlms::axdr::{Cursor, DataView};
use dlms::{Codec, Data};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let owned = Data::decode_exact(bytes);
    // Any input either fails cleanly or decodes to a value whose encoding is stable (inputs may
    // use non-minimal forms, so compare the second generation, and compare bytes: NaN != NaN).
    if let Ok(v) = &owned {
        let once = v.to_bytes();
        let twice = Data::decode_exact(&once).map(|d| d.to_bytes());
        assert_eq!(twice.as_deref(), Ok(once.as_slice()));
    }
    // The zero-copy view and the single-pass cursor accept exactly what the owned decoder does.
    assert_eq!(DataView::parse(bytes).is_ok(), owned.is_ok());
    let mut c = Cursor::new(bytes);
    let cursor_ok = loop {
        match c.next_item() {
            Ok(Some(_)) => continue,
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    assert_eq!(cursor_ok, owned.is_ok());
});
