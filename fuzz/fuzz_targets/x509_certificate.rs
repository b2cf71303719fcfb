#![no_main]
use dlms::security::x509::{verify_certificate_request, verify_chain, Certificate, CertificateType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // Hostile DER (a certificate from a meter's AE-qualifier or an export_certificate answer,
    // a request from generate_certificate_request): parsing, every accessor and verification
    // against itself fail cleanly.
    if let Ok(cert) = Certificate::from_der(bytes) {
        let _ = cert.public_key();
        let _ = cert.subject_system_title();
        let _ = (cert.subject(), cert.issuer(), cert.validity(), cert.is_ca());
        let _ = cert.allows(CertificateType::KeyAgreement);
        let _ = cert.verify_signed_by(&cert);
        let _ = verify_chain(&cert, &[cert.clone()], &[cert.clone()], 1_800_000_000);
        let _ = cert.to_pem();
    }
    let _ = verify_certificate_request(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = Certificate::from_pem_bundle(text);
    }
});
