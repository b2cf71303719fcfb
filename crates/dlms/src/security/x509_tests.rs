//! Certificates: a root CA, a sub-CA and device certificates issued here, verified and
//! refused as a meter and a head-end would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;

use super::ecc::{EcPrivateKey, EccSuite};
use super::x509::*;
use crate::types::SystemTitle;

const NOW: u64 = 1_795_651_200; // 2026-11-26
const YEAR: Duration = Duration::from_secs(365 * 86_400);
const METER: SystemTitle = SystemTitle([0x4D, 0x4D, 0x4D, 0, 0, 0xBC, 0x61, 0x4E]);

struct Pki {
    root: Certificate,
    sub: Certificate,
    sub_key: EcPrivateKey,
}

fn pki(root_suite: EccSuite, sub_suite: EccSuite) -> Pki {
    let root_key = EcPrivateKey::generate(root_suite);
    let root = issue(
        IssueProfile::Root,
        1,
        name("CN=Test Root CA,O=HES").unwrap(),
        &root_key.public_key(),
        None,
        &root_key,
        NOW - 86_400,
        10 * YEAR,
    )
    .unwrap();
    let sub_key = EcPrivateKey::generate(sub_suite);
    let sub = issue(
        IssueProfile::SubCa,
        2,
        name("CN=Test Meter CA,O=HES").unwrap(),
        &sub_key.public_key(),
        Some(&root),
        &root_key,
        NOW - 86_400,
        5 * YEAR,
    )
    .unwrap();
    Pki { root, sub, sub_key }
}

fn device(
    p: &Pki,
    suite: EccSuite,
    t: CertificateType,
    not_before: u64,
    validity: Duration,
) -> (EcPrivateKey, Certificate) {
    let key = EcPrivateKey::generate(suite);
    let cert = issue(
        IssueProfile::Device(t),
        1000,
        device_name(&METER, "HES").unwrap(),
        &key.public_key(),
        Some(&p.sub),
        &p.sub_key,
        not_before,
        validity,
    )
    .unwrap();
    (key, cert)
}

#[test]
fn a_device_chain_verifies_at_both_suites() {
    for (root, sub, dev) in [
        (EccSuite::Suite2, EccSuite::Suite1, EccSuite::Suite1),
        (EccSuite::Suite2, EccSuite::Suite2, EccSuite::Suite2),
        (EccSuite::Suite1, EccSuite::Suite1, EccSuite::Suite2),
    ] {
        let p = pki(root, sub);
        let (key, cert) = device(&p, dev, CertificateType::DigitalSignature, NOW - 60, YEAR);
        verify_chain(
            &cert,
            std::slice::from_ref(&p.sub),
            std::slice::from_ref(&p.root),
            NOW,
        )
        .unwrap();
        // The sub-CA as the anchor is enough.
        verify_chain(&cert, &[], std::slice::from_ref(&p.sub), NOW).unwrap();
        assert_eq!(cert.public_key().unwrap(), key.public_key());
        assert_eq!(cert.subject_system_title(), Some(METER));
        assert!(cert.allows(CertificateType::DigitalSignature));
        assert!(!cert.allows(CertificateType::KeyAgreement));
        assert!(!cert.is_ca() && p.sub.is_ca() && p.root.is_ca());
        // DER and PEM round trips.
        assert_eq!(Certificate::from_der(cert.der()).unwrap(), cert);
        let pem = cert.to_pem().unwrap();
        assert_eq!(Certificate::from_pem(&pem).unwrap(), cert);
        let bundle = format!("{}{}", p.sub.to_pem().unwrap(), p.root.to_pem().unwrap());
        assert_eq!(
            Certificate::from_pem_bundle(&bundle).unwrap(),
            vec![p.sub.clone(), p.root.clone()]
        );
    }
}

#[test]
fn key_agreement_certificates() {
    let p = pki(EccSuite::Suite1, EccSuite::Suite1);
    let (_, cert) = device(
        &p,
        EccSuite::Suite1,
        CertificateType::KeyAgreement,
        NOW,
        YEAR,
    );
    assert!(cert.allows(CertificateType::KeyAgreement));
    verify_chain(
        &cert,
        std::slice::from_ref(&p.sub),
        std::slice::from_ref(&p.root),
        NOW,
    )
    .unwrap();
}

#[test]
fn expired_early_unsigned_and_foreign_certificates_are_refused() {
    let p = pki(EccSuite::Suite1, EccSuite::Suite1);
    let subs = std::slice::from_ref(&p.sub);
    let roots = std::slice::from_ref(&p.root);
    // Expired, and not yet valid.
    let (_, old) = device(
        &p,
        EccSuite::Suite1,
        CertificateType::DigitalSignature,
        NOW - 3 * 86_400,
        Duration::from_secs(86_400),
    );
    assert!(matches!(
        verify_chain(&old, subs, roots, NOW),
        Err(CertificateError::Expired { .. })
    ));
    let (_, early) = device(
        &p,
        EccSuite::Suite1,
        CertificateType::DigitalSignature,
        NOW + 86_400,
        YEAR,
    );
    assert!(matches!(
        verify_chain(&early, subs, roots, NOW),
        Err(CertificateError::NotYetValid { .. })
    ));
    // An issuer we do not have.
    let (_, good) = device(
        &p,
        EccSuite::Suite1,
        CertificateType::DigitalSignature,
        NOW,
        YEAR,
    );
    assert!(matches!(
        verify_chain(&good, &[], roots, NOW),
        Err(CertificateError::UnknownIssuer(_))
    ));
    // Another PKI with the same names: the names chain, the signatures do not.
    let other = pki(EccSuite::Suite1, EccSuite::Suite1);
    assert_eq!(
        verify_chain(
            &good,
            std::slice::from_ref(&other.sub),
            std::slice::from_ref(&other.root),
            NOW
        ),
        Err(CertificateError::BadSignature)
    );
    assert_eq!(
        verify_chain(&good, subs, std::slice::from_ref(&other.root), NOW),
        Err(CertificateError::BadSignature)
    );
    // Self-signed by the device (an unsigned certificate as far as the PKI goes).
    let key = EcPrivateKey::generate(EccSuite::Suite1);
    let selfish = issue(
        IssueProfile::Root,
        9,
        device_name(&METER, "HES").unwrap(),
        &key.public_key(),
        None,
        &key,
        NOW,
        YEAR,
    )
    .unwrap();
    assert!(verify_chain(&selfish, subs, roots, NOW).is_err());
    // A device certificate cannot act as an issuer.
    let (dev_key, dev) = device(
        &p,
        EccSuite::Suite1,
        CertificateType::DigitalSignature,
        NOW,
        YEAR,
    );
    let child = issue(
        IssueProfile::Device(CertificateType::DigitalSignature),
        10,
        name("CN=0000000000000001").unwrap(),
        &EcPrivateKey::generate(EccSuite::Suite1).public_key(),
        Some(&dev),
        &dev_key,
        NOW,
        YEAR,
    )
    .unwrap();
    assert!(matches!(
        verify_chain(&child, &[dev.clone(), p.sub.clone()], roots, NOW),
        Err(CertificateError::NotACertificationAuthority(_))
    ));
    // A pinned device certificate is its own anchor.
    verify_chain(&dev, &[], std::slice::from_ref(&dev), NOW).unwrap();
}

#[test]
fn tampered_and_truncated_der_fails_cleanly() {
    let p = pki(EccSuite::Suite1, EccSuite::Suite1);
    let (_, cert) = device(
        &p,
        EccSuite::Suite1,
        CertificateType::DigitalSignature,
        NOW,
        YEAR,
    );
    let der = cert.der().to_vec();
    for n in 0..der.len() {
        assert!(Certificate::from_der(&der[..n]).is_err());
    }
    let mut refused = 0;
    for i in (0..der.len()).step_by(7) {
        let mut d = der.clone();
        d[i] ^= 0x01;
        match Certificate::from_der(&d) {
            Err(_) => refused += 1,
            Ok(c) => {
                if verify_chain(
                    &c,
                    std::slice::from_ref(&p.sub),
                    std::slice::from_ref(&p.root),
                    NOW,
                )
                .is_err()
                {
                    refused += 1;
                }
            }
        }
    }
    // Every flipped bit is refused somewhere (a flip inside an unused field can still parse
    // but then the signature fails).
    assert_eq!(refused, der.len().div_ceil(7));
}

#[test]
fn certificate_requests_carry_a_checked_self_signature() {
    for suite in [EccSuite::Suite1, EccSuite::Suite2] {
        let key = EcPrivateKey::generate(suite);
        let csr = certificate_request(device_name(&METER, "HES").unwrap(), &key).unwrap();
        let (subject, public) = verify_certificate_request(&csr).unwrap();
        assert_eq!(public, key.public_key());
        assert_eq!(subject, device_name(&METER, "HES").unwrap());
        let mut bad = csr.clone();
        let last = bad.len() - 3;
        bad[last] ^= 0x01;
        assert!(verify_certificate_request(&bad).is_err());
        for n in 0..csr.len() {
            assert!(verify_certificate_request(&csr[..n]).is_err());
        }
    }
}

/// An independent check: OpenSSL accepts the chain and the request we make (the `openssl`
/// command is required: `scripts/lib/ensure-toolchain` installs it).
#[test]
fn openssl_accepts_our_chain_and_request() {
    use std::process::Command;
    assert!(
        Command::new("openssl").arg("version").output().is_ok(),
        "the openssl command is needed: apt-get install openssl (scripts/lib/ensure-toolchain)"
    );
    let dir = std::env::temp_dir().join(format!("dlms-x509-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (root_suite, dev_suite) in [
        (EccSuite::Suite2, EccSuite::Suite1),
        (EccSuite::Suite1, EccSuite::Suite2),
    ] {
        let root_key = EcPrivateKey::generate(root_suite);
        let root = issue(
            IssueProfile::Root,
            1,
            name("CN=Root,O=HES").unwrap(),
            &root_key.public_key(),
            None,
            &root_key,
            now - 60,
            YEAR,
        )
        .unwrap();
        let sub_key = EcPrivateKey::generate(root_suite);
        let sub = issue(
            IssueProfile::SubCa,
            2,
            name("CN=Sub,O=HES").unwrap(),
            &sub_key.public_key(),
            Some(&root),
            &root_key,
            now - 60,
            YEAR,
        )
        .unwrap();
        let p = Pki { root, sub, sub_key };
        let (key, leaf) = device(
            &p,
            dev_suite,
            CertificateType::DigitalSignature,
            now - 60,
            YEAR,
        );
        let write = |n: &str, s: String| {
            let f = dir.join(n);
            std::fs::write(&f, s).unwrap();
            f
        };
        let root_f = write("root.pem", p.root.to_pem().unwrap());
        let sub_f = write("sub.pem", p.sub.to_pem().unwrap());
        let leaf_f = write("leaf.pem", leaf.to_pem().unwrap());
        let out = Command::new("openssl")
            .args(["verify", "-x509_strict", "-CAfile"])
            .arg(&root_f)
            .arg("-untrusted")
            .arg(&sub_f)
            .arg(&leaf_f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let csr = certificate_request(device_name(&METER, "HES").unwrap(), &key).unwrap();
        let csr_f = dir.join("req.der");
        std::fs::write(&csr_f, csr).unwrap();
        let out = Command::new("openssl")
            .args(["req", "-inform", "DER", "-verify", "-noout", "-in"])
            .arg(&csr_f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // And a key OpenSSL wrote reads back here.
        let key_f = dir.join("k.pem");
        let curve = match dev_suite {
            EccSuite::Suite1 => "prime256v1",
            EccSuite::Suite2 => "secp384r1",
        };
        let out = Command::new("openssl")
            .args(["genpkey", "-algorithm", "EC", "-pkeyopt"])
            .arg(format!("ec_paramgen_curve:{curve}"))
            .arg("-out")
            .arg(&key_f)
            .output()
            .unwrap();
        assert!(out.status.success());
        let k = EcPrivateKey::from_pem(&std::fs::read_to_string(&key_f).unwrap()).unwrap();
        assert_eq!(k.suite(), dev_suite);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
