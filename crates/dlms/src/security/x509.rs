//! X.509 certificates of suites 1 and 2 (Green Book 9.2.6: the DLMS PKI): parsing with the
//! RustCrypto `x509-cert` crate, chain verification (device certificate → sub-CA → root CA)
//! and, for a small PKI and for tests, issuing certificates and certificate requests.
//!
//! A device certificate names its system title in the subject's common name as 16 hex
//! digits. Only ECDSA with SHA-256 or SHA-384 on P-256 or P-384 is accepted: that is all
//! suites 1 and 2 use, and anything else is refused rather than half-checked.

use std::str::FromStr;
use std::time::Duration;

use der::asn1::ObjectIdentifier;
use der::{Decode, DecodePem, Encode, EncodePem};
use spki::SubjectPublicKeyInfoOwned;
use thiserror::Error;
use x509_cert::builder::{Builder, CertificateBuilder, Profile, RequestBuilder};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

use super::ecc::{EcPrivateKey, EcPublicKey};
use crate::types::SystemTitle;

const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// The longest chain accepted, anchor included: root, sub-CA, device (and one spare).
pub const MAX_CHAIN: usize = 4;

/// Why a certificate or chain is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CertificateError {
    #[error("malformed certificate: {0}")]
    Malformed(String),
    #[error("signature algorithm or key not ECDSA P-256/P-384 with SHA-256/SHA-384")]
    UnsupportedAlgorithm,
    #[error("the issuer's signature does not verify")]
    BadSignature,
    #[error("not valid before {not_before} (now {now})")]
    NotYetValid { not_before: u64, now: u64 },
    #[error("expired at {not_after} (now {now})")]
    Expired { not_after: u64, now: u64 },
    #[error("no trusted issuer for {0}")]
    UnknownIssuer(String),
    #[error("issuer {0} is not a certification authority")]
    NotACertificationAuthority(String),
    #[error("the certificate's key usage does not allow {0}")]
    KeyUsage(&'static str),
    #[error("chain longer than {MAX_CHAIN}")]
    ChainTooLong,
    #[error("cannot build the certificate: {0}")]
    Build(String),
}

/// What a device's certificate is for (the security setup's `certificate_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateType {
    DigitalSignature = 0,
    KeyAgreement = 1,
    Tls = 2,
}

/// A parsed certificate and its DER bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    cert: x509_cert::Certificate,
}

fn malformed(e: impl std::fmt::Display) -> CertificateError {
    CertificateError::Malformed(e.to_string())
}

impl Certificate {
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let cert = x509_cert::Certificate::from_der(der).map_err(malformed)?;
        Ok(Self {
            der: der.to_vec(),
            cert,
        })
    }

    pub fn from_pem(pem: &str) -> Result<Self, CertificateError> {
        let cert = x509_cert::Certificate::from_pem(pem).map_err(malformed)?;
        let der = cert.to_der().map_err(malformed)?;
        Ok(Self { der, cert })
    }

    /// Every certificate of a PEM bundle, in order.
    pub fn from_pem_bundle(pem: &str) -> Result<Vec<Self>, CertificateError> {
        let certs = x509_cert::Certificate::load_pem_chain(pem.as_bytes()).map_err(malformed)?;
        certs
            .into_iter()
            .map(|cert| {
                let der = cert.to_der().map_err(malformed)?;
                Ok(Self { der, cert })
            })
            .collect()
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn to_pem(&self) -> Result<String, CertificateError> {
        self.cert
            .to_pem(der::pem::LineEnding::LF)
            .map_err(malformed)
    }

    pub fn inner(&self) -> &x509_cert::Certificate {
        &self.cert
    }

    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate.issuer.to_string()
    }

    /// DER of the subject name, as the security setup's `certificate_info` lists it.
    pub fn subject_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate
            .subject
            .to_der()
            .unwrap_or_default()
    }

    pub fn issuer_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate
            .issuer
            .to_der()
            .unwrap_or_default()
    }

    pub fn serial_number(&self) -> &[u8] {
        self.cert.tbs_certificate.serial_number.as_bytes()
    }

    /// The subject's public key, if it is a P-256 or P-384 key.
    pub fn public_key(&self) -> Result<EcPublicKey, CertificateError> {
        let spki = self
            .cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(malformed)?;
        EcPublicKey::from_spki_der(&spki).map_err(|_| CertificateError::UnsupportedAlgorithm)
    }

    /// The system title of the subject's common name (16 hex digits), the DLMS convention.
    pub fn subject_system_title(&self) -> Option<SystemTitle> {
        let cn = common_name(&self.cert.tbs_certificate.subject)?;
        let bytes = hex_decode(cn.trim())?;
        SystemTitle::from_slice(&bytes)
    }

    /// `notBefore` and `notAfter` in seconds since the Unix epoch.
    pub fn validity(&self) -> (u64, u64) {
        let v = &self.cert.tbs_certificate.validity;
        (
            v.not_before.to_unix_duration().as_secs(),
            v.not_after.to_unix_duration().as_secs(),
        )
    }

    fn extension<'a, T: Decode<'a> + der::oid::AssociatedOid>(&'a self) -> Option<T> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == T::OID)
            .and_then(|e| T::from_der(e.extn_value.as_bytes()).ok())
    }

    pub fn is_ca(&self) -> bool {
        self.extension::<BasicConstraints>().is_some_and(|b| b.ca)
    }

    fn key_usage(&self) -> Option<KeyUsage> {
        self.extension::<KeyUsage>()
    }

    /// Whether the key usage extension allows `what` (a certificate without one allows
    /// nothing here: DLMS certificates always carry it).
    pub fn allows(&self, what: CertificateType) -> bool {
        let Some(ku) = self.key_usage() else {
            return false;
        };
        match what {
            CertificateType::DigitalSignature => ku.digital_signature(),
            CertificateType::KeyAgreement => ku.key_agreement(),
            CertificateType::Tls => ku.digital_signature() || ku.key_agreement(),
        }
    }

    /// Checks that `issuer` signed this certificate: names chain, the issuer is a CA allowed
    /// to sign certificates, and the ECDSA signature over the TBS certificate verifies.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), CertificateError> {
        if self.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
            return Err(CertificateError::UnknownIssuer(self.issuer()));
        }
        if !issuer.is_ca() || !issuer.key_usage().is_some_and(|k| k.key_cert_sign()) {
            return Err(CertificateError::NotACertificationAuthority(
                issuer.subject(),
            ));
        }
        let alg = &self.cert.signature_algorithm.oid;
        if *alg != self.cert.tbs_certificate.signature.oid {
            return Err(malformed(
                "signature algorithms differ inside and outside the TBS",
            ));
        }
        let tbs = self.cert.tbs_certificate.to_der().map_err(malformed)?;
        let digest = if *alg == ECDSA_WITH_SHA256 {
            super::ecc::EccSuite::Suite1.hash(&tbs)
        } else if *alg == ECDSA_WITH_SHA384 {
            super::ecc::EccSuite::Suite2.hash(&tbs)
        } else {
            return Err(CertificateError::UnsupportedAlgorithm);
        };
        let sig = self
            .cert
            .signature
            .as_bytes()
            .ok_or(CertificateError::BadSignature)?;
        verify_der_prehash(&issuer.public_key()?, &digest, sig)
    }

    fn check_time(&self, now: u64) -> Result<(), CertificateError> {
        let (not_before, not_after) = self.validity();
        if now < not_before {
            return Err(CertificateError::NotYetValid { not_before, now });
        }
        if now > not_after {
            return Err(CertificateError::Expired { not_after, now });
        }
        Ok(())
    }
}

fn verify_der_prehash(
    key: &EcPublicKey,
    digest: &[u8],
    sig: &[u8],
) -> Result<(), CertificateError> {
    use ecdsa::signature::hazmat::PrehashVerifier;
    let ok = match key {
        EcPublicKey::P256(k) => p256::ecdsa::Signature::from_der(sig)
            .map(|s| {
                p256::ecdsa::VerifyingKey::from(k)
                    .verify_prehash(digest, &s)
                    .is_ok()
            })
            .unwrap_or(false),
        EcPublicKey::P384(k) => p384::ecdsa::Signature::from_der(sig)
            .map(|s| {
                p384::ecdsa::VerifyingKey::from(k)
                    .verify_prehash(digest, &s)
                    .is_ok()
            })
            .unwrap_or(false),
    };
    if ok {
        Ok(())
    } else {
        Err(CertificateError::BadSignature)
    }
}

fn common_name(name: &Name) -> Option<String> {
    name.0.iter().flat_map(|rdn| rdn.0.iter()).find_map(|atv| {
        if atv.oid != CN {
            return None;
        }
        // PrintableString or UTF8String: both decode as a string.
        der::asn1::Utf8StringRef::try_from(&atv.value)
            .map(|s| s.as_str().to_owned())
            .or_else(|_| {
                der::asn1::PrintableStringRef::try_from(&atv.value).map(|s| s.as_str().to_owned())
            })
            .ok()
    })
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => {
                let digit = |c: u8| char::from(c).to_digit(16);
                Some(u8::try_from(digit(*hi)? * 16 + digit(*lo)?).ok()?)
            }
            _ => None,
        })
        .collect()
}

/// Verifies `leaf` up to one of `anchors` (trusted root or sub-CA certificates) through
/// `intermediates`, at `now` (seconds since the Unix epoch: the caller's clock, this crate
/// reads none). Every certificate of the path must be valid at `now`.
pub fn verify_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &[Certificate],
    now: u64,
) -> Result<(), CertificateError> {
    let mut current = leaf;
    for _ in 0..MAX_CHAIN {
        current.check_time(now)?;
        // An anchor that is the certificate itself (a pinned device certificate) ends the
        // path; otherwise an anchor that signed it does.
        if anchors.iter().any(|a| a == current) {
            return Ok(());
        }
        if let Some(anchor) = anchors
            .iter()
            .find(|a| a.cert.tbs_certificate.subject == current.cert.tbs_certificate.issuer)
        {
            current.verify_signed_by(anchor)?;
            return anchor.check_time(now);
        }
        let Some(next) = intermediates
            .iter()
            .find(|c| c.cert.tbs_certificate.subject == current.cert.tbs_certificate.issuer)
        else {
            return Err(CertificateError::UnknownIssuer(current.issuer()));
        };
        current.verify_signed_by(next)?;
        current = next;
    }
    Err(CertificateError::ChainTooLong)
}

/// A distinguished name from its RFC 4514 string, e.g. `CN=4D4D4D0000BC614E,O=Example`.
pub fn name(rfc4514: &str) -> Result<Name, CertificateError> {
    Name::from_str(rfc4514).map_err(|e| CertificateError::Build(e.to_string()))
}

/// The subject name of a DLMS device: `CN=<system title in hex>` under `organisation`.
pub fn device_name(title: &SystemTitle, organisation: &str) -> Result<Name, CertificateError> {
    let hex: String = title.0.iter().map(|b| format!("{b:02X}")).collect();
    name(&format!("CN={hex},O={organisation}"))
}

/// What [`issue`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueProfile {
    /// A self-signed root CA.
    Root,
    /// A sub-CA that may sign device certificates only.
    SubCa,
    /// A device certificate for one use.
    Device(CertificateType),
}

/// Issues a certificate for `subject_key` signed by `issuer_key` (for a root, the two are
/// the same key and `issuer` is ignored), valid from `not_before` for `validity`. The
/// signature uses SHA-256 for a P-256 issuer, SHA-384 for a P-384 one.
#[allow(clippy::too_many_arguments)] // each is a field of the certificate
pub fn issue(
    profile: IssueProfile,
    serial: u64,
    subject: Name,
    subject_key: &EcPublicKey,
    issuer: Option<&Certificate>,
    issuer_key: &EcPrivateKey,
    not_before: u64,
    validity: Duration,
) -> Result<Certificate, CertificateError> {
    let build = |e: &dyn std::fmt::Display| CertificateError::Build(e.to_string());
    let issuer_name = || {
        issuer
            .map(|c| c.cert.tbs_certificate.subject.clone())
            .ok_or(CertificateError::Build(
                "an issuer certificate is needed".into(),
            ))
    };
    let profile = match profile {
        IssueProfile::Root => Profile::Root,
        IssueProfile::SubCa => Profile::SubCA {
            issuer: issuer_name()?,
            path_len_constraint: Some(0),
        },
        IssueProfile::Device(t) => Profile::Leaf {
            issuer: issuer_name()?,
            enable_key_agreement: t != CertificateType::DigitalSignature,
            enable_key_encipherment: false,
        },
    };
    let validity = Validity {
        not_before: x509_cert::time::Time::try_from(
            std::time::UNIX_EPOCH + Duration::from_secs(not_before),
        )
        .map_err(|e| build(&e))?,
        not_after: x509_cert::time::Time::try_from(
            std::time::UNIX_EPOCH + Duration::from_secs(not_before) + validity,
        )
        .map_err(|e| build(&e))?,
    };
    let spki =
        SubjectPublicKeyInfoOwned::from_der(&subject_key.to_spki_der().map_err(|e| build(&e))?)
            .map_err(|e| build(&e))?;
    let serial = SerialNumber::from(serial);
    let der = match issuer_key {
        EcPrivateKey::P256(k) => {
            let signer = p256::ecdsa::SigningKey::from(k);
            CertificateBuilder::new(profile, serial, validity, subject, spki, &signer)
                .map_err(|e| build(&e))?
                .build::<p256::ecdsa::DerSignature>()
                .map_err(|e| build(&e))?
                .to_der()
        }
        EcPrivateKey::P384(k) => {
            let signer = p384::ecdsa::SigningKey::from(k);
            CertificateBuilder::new(profile, serial, validity, subject, spki, &signer)
                .map_err(|e| build(&e))?
                .build::<p384::ecdsa::DerSignature>()
                .map_err(|e| build(&e))?
                .to_der()
        }
    }
    .map_err(|e| build(&e))?;
    Certificate::from_der(&der)
}

/// A PKCS#10 certificate signing request for `key`, self-signed, as the security setup's
/// `generate_certificate_request` returns it (DER).
pub fn certificate_request(subject: Name, key: &EcPrivateKey) -> Result<Vec<u8>, CertificateError> {
    let build = |e: &dyn std::fmt::Display| CertificateError::Build(e.to_string());
    match key {
        EcPrivateKey::P256(k) => {
            let signer = p256::ecdsa::SigningKey::from(k);
            RequestBuilder::new(subject, &signer)
                .map_err(|e| build(&e))?
                .build::<p256::ecdsa::DerSignature>()
                .map_err(|e| build(&e))?
                .to_der()
        }
        EcPrivateKey::P384(k) => {
            let signer = p384::ecdsa::SigningKey::from(k);
            RequestBuilder::new(subject, &signer)
                .map_err(|e| build(&e))?
                .build::<p384::ecdsa::DerSignature>()
                .map_err(|e| build(&e))?
                .to_der()
        }
    }
    .map_err(|e| build(&e))
}

/// Reads a DER certificate request and checks its self-signature; returns the subject
/// name and public key to certify.
pub fn verify_certificate_request(der: &[u8]) -> Result<(Name, EcPublicKey), CertificateError> {
    let req = x509_cert::request::CertReq::from_der(der).map_err(malformed)?;
    let key_der = req.info.public_key.to_der().map_err(malformed)?;
    let key =
        EcPublicKey::from_spki_der(&key_der).map_err(|_| CertificateError::UnsupportedAlgorithm)?;
    let info = req.info.to_der().map_err(malformed)?;
    let alg = &req.algorithm.oid;
    let digest = if *alg == ECDSA_WITH_SHA256 {
        super::ecc::EccSuite::Suite1.hash(&info)
    } else if *alg == ECDSA_WITH_SHA384 {
        super::ecc::EccSuite::Suite2.hash(&info)
    } else {
        return Err(CertificateError::UnsupportedAlgorithm);
    };
    let sig = req
        .signature
        .as_bytes()
        .ok_or(CertificateError::BadSignature)?;
    verify_der_prehash(&key, &digest, sig)?;
    Ok((req.info.subject, key))
}
