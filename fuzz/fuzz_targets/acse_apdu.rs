#![no_main]
use dlms::acse::AcseApdu;
use dlms::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // Any input either fails cleanly or decodes to an APDU whose encoding decodes back to the
    // same APDU. Inputs may use non-minimal lengths or carry fields we skip, so the bytes are
    // only compared from the second generation on.
    if let Ok(apdu) = AcseApdu::decode_exact(bytes) {
        let once = apdu.to_bytes();
        let again = AcseApdu::decode_exact(&once);
        assert_eq!(again.as_ref(), Ok(&apdu));
        assert_eq!(again.map(|a| a.to_bytes()).as_deref(), Ok(once.as_slice()));
    }
});
