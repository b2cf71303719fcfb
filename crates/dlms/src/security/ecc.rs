//! The public-key primitives of security suites 1 and 2 (Green Book 9.2.3.4, 9.2.7.3):
//! ECDSA and ECDH on NIST P-256 (suite 1, with SHA-256 and AES-GCM-128) and P-384 (suite 2,
//! with SHA-384 and AES-GCM-256), and the NIST SP 800-56A concatenation KDF that turns a
//! shared secret into a symmetric key.
//!
//! On the wire DLMS carries public keys as the bare `X || Y` coordinates (64 or 96 bytes, no
//! SEC1 `04` prefix) and signatures as the bare `r || s` (64 or 96 bytes, no DER).

use std::fmt;

use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rand_core::OsRng;
use sha2::digest::Digest;
use sha2::{Sha256, Sha384};

use super::{Redacted, SecurityError};
use crate::types::SystemTitle;

/// An ECC security suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EccSuite {
    /// ECDH-ECDSA-AES-GCM-128-SHA-256 (P-256).
    Suite1,
    /// ECDH-ECDSA-AES-GCM-256-SHA-384 (P-384).
    Suite2,
}

impl EccSuite {
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Suite1),
            2 => Some(Self::Suite2),
            _ => None,
        }
    }

    pub fn id(self) -> u8 {
        match self {
            Self::Suite1 => 1,
            Self::Suite2 => 2,
        }
    }

    /// Length of one coordinate, of a scalar and of half a signature.
    pub fn field_len(self) -> usize {
        match self {
            Self::Suite1 => 32,
            Self::Suite2 => 48,
        }
    }

    /// `X || Y` of a public key, and `r || s` of a signature.
    pub fn point_len(self) -> usize {
        2 * self.field_len()
    }

    /// The AES-GCM key length of the suite.
    pub fn key_len(self) -> usize {
        match self {
            Self::Suite1 => 16,
            Self::Suite2 => 32,
        }
    }

    /// The algorithm id of the suite's AES-GCM for the KDF.
    pub fn gcm_algorithm(self) -> AlgorithmId {
        match self {
            Self::Suite1 => AlgorithmId::AesGcm128,
            Self::Suite2 => AlgorithmId::AesGcm256,
        }
    }

    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Suite1 => Sha256::digest(data).to_vec(),
            Self::Suite2 => Sha384::digest(data).to_vec(),
        }
    }
}

/// A private key (signing or key agreement) on the curve of a suite. `Debug` never shows it.
#[derive(Clone)]
pub enum EcPrivateKey {
    P256(p256::SecretKey),
    P384(p384::SecretKey),
}

impl fmt::Debug for EcPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EcPrivateKey")
            .field(&self.suite())
            .field(&Redacted)
            .finish()
    }
}

/// A public key on the curve of a suite.
#[derive(Clone, PartialEq, Eq)]
pub enum EcPublicKey {
    P256(p256::PublicKey),
    P384(p384::PublicKey),
}

impl fmt::Debug for EcPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EcPublicKey({:?}, ", self.suite())?;
        for b in self.to_raw() {
            write!(f, "{b:02X}")?;
        }
        write!(f, ")")
    }
}

impl EcPrivateKey {
    /// A fresh key from the operating system's random source.
    pub fn generate(suite: EccSuite) -> Self {
        match suite {
            EccSuite::Suite1 => Self::P256(p256::SecretKey::random(&mut OsRng)),
            EccSuite::Suite2 => Self::P384(p384::SecretKey::random(&mut OsRng)),
        }
    }

    pub fn suite(&self) -> EccSuite {
        match self {
            Self::P256(_) => EccSuite::Suite1,
            Self::P384(_) => EccSuite::Suite2,
        }
    }

    /// The big-endian scalar (32 or 48 bytes), as Gurux and the Green Book examples give keys.
    pub fn from_raw(suite: EccSuite, scalar: &[u8]) -> Result<Self, SecurityError> {
        const WHY: &str = "not a private key scalar of the suite's curve";
        if scalar.len() != suite.field_len() {
            return Err(SecurityError::InvalidKey(WHY));
        }
        Ok(match suite {
            EccSuite::Suite1 => Self::P256(
                p256::SecretKey::from_slice(scalar).map_err(|_| SecurityError::InvalidKey(WHY))?,
            ),
            EccSuite::Suite2 => Self::P384(
                p384::SecretKey::from_slice(scalar).map_err(|_| SecurityError::InvalidKey(WHY))?,
            ),
        })
    }

    /// A PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`) PEM key, P-256 or
    /// P-384, as OpenSSL writes them.
    pub fn from_pem(pem: &str) -> Result<Self, SecurityError> {
        const WHY: &str = "not a P-256 or P-384 private key in PKCS#8 or SEC1 PEM";
        if let Ok(k) = p256::SecretKey::from_pkcs8_pem(pem) {
            return Ok(Self::P256(k));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_pem(pem) {
            return Ok(Self::P384(k));
        }
        if let Ok(k) = p256::SecretKey::from_sec1_pem(pem) {
            return Ok(Self::P256(k));
        }
        p384::SecretKey::from_sec1_pem(pem)
            .map(Self::P384)
            .map_err(|_| SecurityError::InvalidKey(WHY))
    }

    /// A PKCS#8 DER key, P-256 or P-384.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, SecurityError> {
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(Self::P256(k));
        }
        p384::SecretKey::from_pkcs8_der(der)
            .map(Self::P384)
            .map_err(|_| SecurityError::InvalidKey("not a P-256 or P-384 PKCS#8 private key"))
    }

    /// PKCS#8 PEM, for a key file.
    pub fn to_pkcs8_pem(&self) -> Result<String, SecurityError> {
        let pem = match self {
            Self::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            Self::P384(k) => k.to_pkcs8_pem(LineEnding::LF),
        };
        pem.map(|p| p.to_string())
            .map_err(|_| SecurityError::InvalidKey("private key cannot be encoded"))
    }

    pub fn public_key(&self) -> EcPublicKey {
        match self {
            Self::P256(k) => EcPublicKey::P256(k.public_key()),
            Self::P384(k) => EcPublicKey::P384(k.public_key()),
        }
    }

    /// ECDSA over `message` with the suite's hash; the bare `r || s`. Deterministic
    /// (RFC 6979), so no random source can weaken it.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use ecdsa::signature::Signer;
        match self {
            Self::P256(k) => {
                let sig: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(k).sign(message);
                sig.to_bytes().to_vec()
            }
            Self::P384(k) => {
                let sig: p384::ecdsa::Signature = p384::ecdsa::SigningKey::from(k).sign(message);
                sig.to_bytes().to_vec()
            }
        }
    }

    /// The ECC CDH primitive (SP 800-56A 5.7.1.2): the X coordinate of `own * peer`. The
    /// curves must match.
    pub fn diffie_hellman(&self, peer: &EcPublicKey) -> Result<SharedSecret, SecurityError> {
        match (self, peer) {
            (Self::P256(k), EcPublicKey::P256(p)) => Ok(SharedSecret(
                p256::ecdh::diffie_hellman(k.to_nonzero_scalar(), p.as_affine())
                    .raw_secret_bytes()
                    .to_vec(),
            )),
            (Self::P384(k), EcPublicKey::P384(p)) => Ok(SharedSecret(
                p384::ecdh::diffie_hellman(k.to_nonzero_scalar(), p.as_affine())
                    .raw_secret_bytes()
                    .to_vec(),
            )),
            _ => Err(SecurityError::CurveMismatch),
        }
    }
}

impl EcPublicKey {
    pub fn suite(&self) -> EccSuite {
        match self {
            Self::P256(_) => EccSuite::Suite1,
            Self::P384(_) => EccSuite::Suite2,
        }
    }

    /// `X || Y` (64 or 96 bytes) of a point on the suite's curve; a SEC1 uncompressed point
    /// (`04 || X || Y`) is accepted too. Points off the curve are refused.
    pub fn from_raw(suite: EccSuite, bytes: &[u8]) -> Result<Self, SecurityError> {
        const WHY: &str = "not a point of the suite's curve";
        let mut sec1 = Vec::with_capacity(1 + suite.point_len());
        if bytes.len() == suite.point_len() {
            sec1.push(0x04);
        } else if bytes.len() != suite.point_len() + 1 || bytes.first() != Some(&0x04) {
            return Err(SecurityError::InvalidKey(WHY));
        }
        sec1.extend_from_slice(bytes);
        Ok(match suite {
            EccSuite::Suite1 => Self::P256(
                p256::PublicKey::from_sec1_bytes(&sec1)
                    .map_err(|_| SecurityError::InvalidKey(WHY))?,
            ),
            EccSuite::Suite2 => Self::P384(
                p384::PublicKey::from_sec1_bytes(&sec1)
                    .map_err(|_| SecurityError::InvalidKey(WHY))?,
            ),
        })
    }

    /// `X || Y`, as DLMS carries public keys.
    pub fn to_raw(&self) -> Vec<u8> {
        let sec1 = match self {
            Self::P256(k) => k.to_encoded_point(false).as_bytes().to_vec(),
            Self::P384(k) => k.to_encoded_point(false).as_bytes().to_vec(),
        };
        sec1.get(1..).map(<[u8]>::to_vec).unwrap_or_default()
    }

    /// A DER `SubjectPublicKeyInfo` with an id-ecPublicKey P-256 or P-384 key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, SecurityError> {
        if let Ok(k) = p256::PublicKey::from_public_key_der(der) {
            return Ok(Self::P256(k));
        }
        p384::PublicKey::from_public_key_der(der)
            .map(Self::P384)
            .map_err(|_| SecurityError::InvalidKey("not a P-256 or P-384 public key"))
    }

    pub fn to_spki_der(&self) -> Result<Vec<u8>, SecurityError> {
        let der = match self {
            Self::P256(k) => k.to_public_key_der(),
            Self::P384(k) => k.to_public_key_der(),
        };
        der.map(|d| d.into_vec())
            .map_err(|_| SecurityError::InvalidKey("public key cannot be encoded"))
    }

    /// Checks an ECDSA `r || s` signature of `message` (hashed with the suite's hash). A
    /// signature of the wrong length, of the other curve or that does not verify is refused
    /// alike.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SecurityError> {
        use ecdsa::signature::Verifier;
        if signature.len() != self.suite().point_len() {
            return Err(SecurityError::SignatureInvalid);
        }
        let ok = match self {
            Self::P256(k) => p256::ecdsa::Signature::from_slice(signature)
                .map(|s| {
                    p256::ecdsa::VerifyingKey::from(k)
                        .verify(message, &s)
                        .is_ok()
                })
                .unwrap_or(false),
            Self::P384(k) => p384::ecdsa::Signature::from_slice(signature)
                .map(|s| {
                    p384::ecdsa::VerifyingKey::from(k)
                        .verify(message, &s)
                        .is_ok()
                })
                .unwrap_or(false),
        };
        if ok {
            Ok(())
        } else {
            Err(SecurityError::SignatureInvalid)
        }
    }
}

/// The ECDH shared secret Z. `Debug` never shows it.
pub struct SharedSecret(Vec<u8>);

impl SharedSecret {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedSecret").field(&Redacted).finish()
    }
}

impl Drop for SharedSecret {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// The cryptographic algorithm ids of the KDF (Green Book table "Cryptographic algorithm
/// ID-s"): the arc 2.16.756.5.8.3.x, given to the KDF as its 7-byte BER encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlgorithmId {
    AesGcm128 = 0,
    AesGcm256 = 1,
    AesWrap128 = 2,
    AesWrap256 = 3,
}

impl AlgorithmId {
    /// The BER contents of the OID 2.16.756.5.8.3.x.
    pub fn encoded(self) -> [u8; 7] {
        [0x60, 0x85, 0x74, 0x05, 0x08, 0x03, self as u8]
    }

    fn key_len(self) -> usize {
        match self {
            Self::AesGcm128 | Self::AesWrap128 => 16,
            Self::AesGcm256 | Self::AesWrap256 => 32,
        }
    }
}

/// A symmetric key derived by [`kdf`]: 16 or 32 bytes. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DerivedKey(Vec<u8>);

impl DerivedKey {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DerivedKey").field(&Redacted).finish()
    }
}

impl Drop for DerivedKey {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// The single-step concatenation KDF of SP 800-56A 5.8.1 with the suite's hash:
/// `Hash(counter || Z || OtherInfo)` for counter = 1, 2, ... until `algorithm`'s key length
/// is reached. DLMS's OtherInfo is `AlgorithmID || PartyUInfo || PartyVInfo` (+ the optional
/// SuppPubInfo), each a fixed-length field, concatenated without length prefixes.
pub fn kdf(
    suite: EccSuite,
    z: &SharedSecret,
    algorithm: AlgorithmId,
    other_info: &[&[u8]],
) -> DerivedKey {
    let len = algorithm.key_len();
    let mut out = Vec::with_capacity(len + 48);
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut input = Vec::with_capacity(4 + z.0.len() + 32);
        input.extend_from_slice(&counter.to_be_bytes());
        input.extend_from_slice(&z.0);
        input.extend_from_slice(&algorithm.encoded());
        for part in other_info {
            input.extend_from_slice(part);
        }
        out.extend_from_slice(&suite.hash(&input));
        input.iter_mut().for_each(|b| *b = 0);
        counter = counter.saturating_add(1);
    }
    out.truncate(len);
    DerivedKey(out)
}

/// The key agreement schemes of `general-ciphering`'s agreed-key (the `key-parameters` byte)
/// and of the security setup's `key_agreement` (Green Book 9.2.3.4.6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAgreementScheme {
    /// C(2e, 0s): both sides send a signed ephemeral key (security setup key_agreement).
    EphemeralUnified = 0,
    /// C(1e, 1s): the originator's signed ephemeral key against the recipient's static key.
    OnePassDiffieHellman = 1,
    /// C(0e, 2s): both static keys; the transaction id keeps each derived key fresh.
    StaticUnified = 2,
}

impl KeyAgreementScheme {
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(Self::EphemeralUnified),
            1 => Some(Self::OnePassDiffieHellman),
            2 => Some(Self::StaticUnified),
            _ => None,
        }
    }
}

/// C(1e, 1s), originator side: a fresh ephemeral key against the recipient's static key
/// agreement key. Returns the ephemeral public key to send (`X || Y`) and the content key,
/// derived with PartyUInfo = originator, PartyVInfo = recipient system title.
pub fn one_pass_originate(
    recipient_agreement_key: &EcPublicKey,
    originator: &SystemTitle,
    recipient: &SystemTitle,
) -> Result<(EcPrivateKey, DerivedKey), SecurityError> {
    let suite = recipient_agreement_key.suite();
    let ephemeral = EcPrivateKey::generate(suite);
    let z = ephemeral.diffie_hellman(recipient_agreement_key)?;
    let key = kdf(
        suite,
        &z,
        suite.gcm_algorithm(),
        &[&originator.0, &recipient.0],
    );
    Ok((ephemeral, key))
}

/// C(1e, 1s), recipient side: our static key agreement key against the originator's
/// ephemeral key.
pub fn one_pass_accept(
    own_agreement_key: &EcPrivateKey,
    ephemeral: &EcPublicKey,
    originator: &SystemTitle,
    recipient: &SystemTitle,
) -> Result<DerivedKey, SecurityError> {
    let suite = own_agreement_key.suite();
    let z = own_agreement_key.diffie_hellman(ephemeral)?;
    Ok(kdf(
        suite,
        &z,
        suite.gcm_algorithm(),
        &[&originator.0, &recipient.0],
    ))
}

/// C(0e, 2s), either side: both static key agreement keys. The same two keys always give
/// the same Z, so OtherInfo carries the transaction id (A-XDR `length || id`) between the
/// originator (U) and recipient (V) system titles, as Gurux does.
pub fn static_unified(
    own_agreement_key: &EcPrivateKey,
    peer_agreement_key: &EcPublicKey,
    originator: &SystemTitle,
    transaction_id: &[u8],
    recipient: &SystemTitle,
) -> Result<DerivedKey, SecurityError> {
    let suite = own_agreement_key.suite();
    let z = own_agreement_key.diffie_hellman(peer_agreement_key)?;
    let mut tid = Vec::with_capacity(transaction_id.len() + 3);
    crate::codec::put_octets(&mut tid, transaction_id);
    Ok(kdf(
        suite,
        &z,
        suite.gcm_algorithm(),
        &[&originator.0, &tid, &recipient.0],
    ))
}
