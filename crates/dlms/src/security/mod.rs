//! DLMS security: suite 0 ciphering (AES-GCM-128), HLS authentication, key wrap, invocation counters.
//!
//! Green Book (DLMS UA 1000-2) chapter 9.2 / IEC 62056-5-3 clause 9.2.7. Suite 0 is AES-GCM-128
//! with a 12-byte tag and AES-128 key wrap; suite 1 adds ECDH/ECDSA on P-256 with SHA-256,
//! suite 2 ECDH/ECDSA on P-384 with SHA-384 and AES-GCM-256 ([`ecc`]).
//!
//! Layers, from the bottom:
//! - [`encrypt`] / [`decrypt`]: the security header and GCM of one protected payload.
//! - [`glo_tag`], [`ded_tag`], [`plain_tag`]: which ciphered APDU carries which plain one.
//! - [`SecurityContext`]: one association's ciphering state (keys, system titles, invocation
//!   counters) that wraps and unwraps whole APDUs and rejects replays.
//! - [`hls_md5`], [`hls_sha1`], [`hls_sha256`], [`hls_gmac`]: the HLS pass 3/4 functions.
//! - [`wrap_key`] / [`unwrap_key`]: RFC 3394 key wrap for `key_transfer`.
//! - [`GeneralCiphering`]: the `general-ciphering` APDU; [`seal_agreed`] / [`open_agreed`]
//!   with a key agreed by ECDH (suites 1 and 2).
//! - [`GeneralSigning`]: the `general-signing` APDU (suites 1 and 2).

mod context;
pub mod ecc;
mod gcm;
mod general;
mod hls;
mod keywrap;
mod signing;
pub(crate) mod tags;
pub mod x509;

#[cfg(test)]
mod ecc_tests;
#[cfg(test)]
mod primitive_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;
#[cfg(test)]
mod x509_tests;

use std::fmt;

use thiserror::Error;

use crate::codec::DecodeError;
use crate::types::SecurityLevel;

pub use context::{ReplayGuard, SecurityContext, Unprotected, WideKeys};
pub use ecc::{EcPrivateKey, EcPublicKey, EccSuite};
pub use gcm::{decrypt, decrypt_with_key, encrypt, encrypt_with_key, TAG_LEN};
pub use general::{GeneralCiphering, KeyId, KeyInfo};
pub use hls::{
    hls_ecdsa, hls_gmac, hls_md5, hls_sha1, hls_sha256, verify_hls_ecdsa, verify_hls_gmac,
};
pub use keywrap::{unwrap_key, wrap_key};
pub use signing::{
    open_agreed, seal_agreed, AgreementKeys, GeneralSigning, OpenedAgreed, GENERAL_SIGNING,
};
pub use tags::*;

/// The security control byte (Green Book 9.2.7.2.3): bits 0-3 security suite id, bit 4
/// authentication, bit 5 encryption, bit 6 key set (0 unicast, 1 broadcast), bit 7 compression.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecurityControl(pub u8);

impl SecurityControl {
    pub const SUITE_MASK: u8 = 0x0F;
    pub const AUTHENTICATION: u8 = 0x10;
    pub const ENCRYPTION: u8 = 0x20;
    pub const KEY_SET_BROADCAST: u8 = 0x40;
    pub const COMPRESSION: u8 = 0x80;

    /// The byte for `level` under security suite `suite` (only its low four bits are used),
    /// unicast key set, no compression.
    pub fn from_level(level: SecurityLevel, suite: u8) -> Self {
        let bits = match level {
            SecurityLevel::None => 0,
            SecurityLevel::Authenticated => Self::AUTHENTICATION,
            SecurityLevel::Encrypted => Self::ENCRYPTION,
            SecurityLevel::AuthenticatedEncrypted => Self::AUTHENTICATION | Self::ENCRYPTION,
        };
        Self(bits | (suite & Self::SUITE_MASK))
    }

    /// The protection the A and E bits describe.
    pub fn level(self) -> SecurityLevel {
        match (self.authenticated(), self.encrypted()) {
            (false, false) => SecurityLevel::None,
            (true, false) => SecurityLevel::Authenticated,
            (false, true) => SecurityLevel::Encrypted,
            (true, true) => SecurityLevel::AuthenticatedEncrypted,
        }
    }

    pub fn suite(self) -> u8 {
        self.0 & Self::SUITE_MASK
    }

    pub fn authenticated(self) -> bool {
        self.0 & Self::AUTHENTICATION != 0
    }

    pub fn encrypted(self) -> bool {
        self.0 & Self::ENCRYPTION != 0
    }

    pub fn broadcast(self) -> bool {
        self.0 & Self::KEY_SET_BROADCAST != 0
    }

    pub fn compressed(self) -> bool {
        self.0 & Self::COMPRESSION != 0
    }
}

impl fmt::Debug for SecurityControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecurityControl(0x{:02X}: {:?}", self.0, self.level())?;
        write!(f, ", suite {}", self.suite())?;
        if self.broadcast() {
            write!(f, ", broadcast")?;
        }
        if self.compressed() {
            write!(f, ", compressed")?;
        }
        write!(f, ")")
    }
}

/// The global unicast encryption key (EK, called GUEK in the Green Book) and the
/// authentication key (AK) of suite 0. `Debug` never shows them.
#[derive(Clone)]
pub struct CipherKeys {
    pub ek: [u8; 16],
    pub ak: [u8; 16],
}

impl fmt::Debug for CipherKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CipherKeys")
            .field("ek", &Redacted)
            .field("ak", &Redacted)
            .finish()
    }
}

/// The public-key side of a suite 1 or 2 association, for a client or a server: the suite
/// follows from the curve of `signing_key` (P-256: suite 1, P-384: suite 2).
#[derive(Debug, Clone)]
pub struct EccConfig {
    /// Our private digital signature key (HLS-ECDSA, general-signing).
    pub signing_key: EcPrivateKey,
    /// Our digital signature certificate (DER), sent in the AARQ's calling-AE-qualifier.
    pub certificate: Option<Vec<u8>>,
    /// The peer's public signature key, taken from its certificate once that verified
    /// (a client: the meter's; a meter: the head-end's).
    pub peer_signing_key: Option<EcPublicKey>,
    /// Suite 2's 256-bit EK and AK for the association's ciphering (suite 1 uses the
    /// 128-bit [`CipherKeys`] of the configuration).
    pub wide_keys: Option<WideKeys>,
    /// A meter: the CAs a client's certificate (sent in the AARQ) must chain to. With none,
    /// a certificate in the AARQ is ignored and only `peer_signing_key` is trusted.
    pub trust_anchors: Vec<x509::Certificate>,
}

impl EccConfig {
    pub fn new(signing_key: EcPrivateKey) -> Self {
        Self {
            signing_key,
            certificate: None,
            peer_signing_key: None,
            wide_keys: None,
            trust_anchors: Vec::new(),
        }
    }

    pub fn suite(&self) -> EccSuite {
        self.signing_key.suite()
    }

    /// A ciphering context for `level` at this suite: suite 1 with `keys`, suite 2 with
    /// [`Self::wide_keys`] (an error without them).
    pub fn context(
        &self,
        level: SecurityLevel,
        own: crate::types::SystemTitle,
        keys: CipherKeys,
        first_tx_ic: u32,
    ) -> Result<SecurityContext, SecurityError> {
        match self.suite() {
            EccSuite::Suite1 => SecurityContext::new(level, own, keys, first_tx_ic).with_suite(1),
            EccSuite::Suite2 => {
                let wide = match (&self.wide_keys, level) {
                    (Some(w), _) => w.clone(),
                    // HLS-ECDSA without ciphering: the context only carries the system
                    // titles and never ciphers, so no keys are needed.
                    (None, SecurityLevel::None) => WideKeys {
                        ek: [0; 32],
                        ak: [0; 32],
                    },
                    (None, _) => {
                        return Err(SecurityError::InvalidKey("suite 2 needs 256-bit keys"))
                    }
                };
                Ok(SecurityContext::new_suite2(level, own, wide, first_tx_ic))
            }
        }
    }
}

/// Stands in for secret bytes in `Debug` output.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why an APDU could not be protected or unprotected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// The GCM tag (or HLS-GMAC response) does not match: wrong key, wrong system title or
    /// tampered bytes. Deliberately says nothing about which.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The peer's invocation counter did not increase.
    #[error("replayed invocation counter {received} (last accepted {last})")]
    Replay { received: u32, last: u32 },
    /// Our own invocation counter has been used up; the key must be changed.
    #[error("invocation counter exhausted, the key must be renewed")]
    CounterExhausted,
    /// A security suite other than 0.
    #[error("security suite {0} not supported")]
    UnsupportedSuite(u8),
    /// A tag that is not a (cipherable) xDLMS APDU.
    #[error("APDU tag 0x{0:02X} cannot be ciphered or deciphered here")]
    UnknownTag(u8),
    /// A service-specific ciphered APDU arrived but the peer's system title is not known yet.
    #[error("peer system title unknown")]
    MissingSystemTitle,
    /// The dedicated (or broadcast) key needed is not configured.
    #[error("the key needed is not configured")]
    MissingKey,
    /// The security control byte asks for compression (Green Book V.44), not implemented.
    #[error("compression not supported")]
    CompressionUnsupported,
    /// The APDU is malformed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// RFC 3394 integrity check failed (wrong KEK or tampered data).
    #[error("key unwrap failed")]
    KeyUnwrapFailed,
    /// Protection weaker than the association's security policy requires.
    #[error("protection {received:?} weaker than the required {required:?}")]
    InsufficientProtection {
        required: SecurityLevel,
        received: SecurityLevel,
    },
    /// The context's security level is `None`: there is nothing to protect with.
    #[error("security level None: nothing to protect with")]
    NoProtection,
    /// A system title in the APDU is not the one of this association.
    #[error("system title {0:?} does not belong to this association")]
    SystemTitleMismatch(crate::types::SystemTitle),
    /// A `general-ciphering` key-info choice we cannot honour (wrapped or agreed key).
    #[error("general-ciphering key-info not supported")]
    UnsupportedKeyInfo,
    /// A key of the wrong length, off its curve, or not in a format we read.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// An ECDSA signature (HLS-ECDSA proof, general-signing, signed ephemeral key) that does
    /// not verify under the peer's public key.
    #[error("signature does not verify")]
    SignatureInvalid,
    /// The two keys of an ECDH or the key and the suite are on different curves.
    #[error("keys of different curves")]
    CurveMismatch,
    /// A certificate that cannot be parsed or does not verify.
    #[error("certificate: {0}")]
    Certificate(#[from] x509::CertificateError),
}
