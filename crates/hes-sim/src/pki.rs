//! A small PKI for suite 1 and 2 fleets: a root CA, the head-end's signing key and
//! certificate, and each meter's signing key and certificate (subject CN = its system title),
//! all issued when the fleet is made. Test keys, never for real meters.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dlms::security::x509::{self, Certificate, CertificateType, IssueProfile};
use dlms::security::{EcPrivateKey, EccConfig, EccSuite, WideKeys};
use dlms::SystemTitle;
use sha2::{Digest, Sha256};

use crate::objects::keys::KeySet;

/// The head-end's system title in the simulator's certificates (`hes read`'s default).
pub const HEAD_END_TITLE: SystemTitle = SystemTitle([0x4D, 0x4D, 0x4D, 0, 0, 0, 0, 1]);

const TEN_YEARS: Duration = Duration::from_secs(10 * 365 * 86_400);

#[derive(Debug)]
pub struct FleetPki {
    pub suite: EccSuite,
    pub ca_key: EcPrivateKey,
    pub ca: Certificate,
    pub head_end_key: EcPrivateKey,
    pub head_end: Certificate,
    not_before: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate: {0}")]
    Certificate(#[from] x509::CertificateError),
    #[error("key: {0}")]
    Key(#[from] dlms::security::SecurityError),
    #[error("writing {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

impl FleetPki {
    /// A fresh CA and head-end certificate at `suite` (1: P-256, 2: P-384).
    pub fn new(suite: EccSuite) -> Result<Self, PkiError> {
        // An hour back: the head-end's clock may run a little behind the simulator's host.
        let not_before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            .saturating_sub(3600);
        let ca_key = EcPrivateKey::generate(suite);
        let ca = x509::issue(
            IssueProfile::Root,
            1,
            x509::name("CN=hes-sim test CA,O=HES simulator")?,
            &ca_key.public_key(),
            None,
            &ca_key,
            not_before,
            TEN_YEARS,
        )?;
        let head_end_key = EcPrivateKey::generate(suite);
        let head_end = x509::issue(
            IssueProfile::Device(CertificateType::DigitalSignature),
            2,
            x509::device_name(&HEAD_END_TITLE, "HES simulator")?,
            &head_end_key.public_key(),
            Some(&ca),
            &ca_key,
            not_before,
            TEN_YEARS,
        )?;
        Ok(Self {
            suite,
            ca_key,
            ca,
            head_end_key,
            head_end,
            not_before,
        })
    }

    /// A meter's signing key and certificate, and the configuration its server uses: it
    /// trusts the head-end's key, and at suite 2 ciphers with 256-bit keys derived from its
    /// 128-bit ones.
    pub fn meter(
        &self,
        serial: u32,
        title: &SystemTitle,
        keys: &KeySet,
    ) -> Result<(EccConfig, Certificate), PkiError> {
        let key = EcPrivateKey::generate(self.suite);
        let cert = x509::issue(
            IssueProfile::Device(CertificateType::DigitalSignature),
            1000 + u64::from(serial),
            x509::device_name(title, "HES simulator")?,
            &key.public_key(),
            Some(&self.ca),
            &self.ca_key,
            self.not_before,
            TEN_YEARS,
        )?;
        let mut ecc = EccConfig::new(key);
        ecc.certificate = Some(cert.der().to_vec());
        // The head-end's key is pinned: the simulated meter's clock (which may run fast or
        // start anywhere) is no ground to check certificate validity against.
        ecc.peer_signing_key = Some(self.head_end_key.public_key());
        if self.suite == EccSuite::Suite2 {
            ecc.wide_keys = Some(wide_keys(keys));
        }
        Ok((ecc, cert))
    }

    /// Writes `ca.pem`, `hes-key.pem` and `hes-cert.pem` to `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), PkiError> {
        std::fs::create_dir_all(dir).map_err(|e| PkiError::Io(dir.to_owned(), e))?;
        for (name, text) in [
            ("ca.pem", self.ca.to_pem()?),
            ("hes-key.pem", self.head_end_key.to_pkcs8_pem()?),
            ("hes-cert.pem", self.head_end.to_pem()?),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| PkiError::Io(path, e))?;
        }
        Ok(())
    }
}

/// Suite 2's AES-256 EK and AK: SHA-256 of a label and the meter's 128-bit key, so that the
/// inventory's keys determine them (`hes read --ek/--ak` at suite 2 takes these).
pub fn wide_keys(keys: &KeySet) -> WideKeys {
    let derive = |label: &[u8], k: &[u8; 16]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(label);
        h.update(k);
        h.finalize().into()
    };
    WideKeys {
        ek: derive(b"hes-sim suite 2 ek", &keys.ek),
        ak: derive(b"hes-sim suite 2 ak", &keys.ak),
    }
}
