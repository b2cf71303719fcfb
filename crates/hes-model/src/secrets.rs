//! Meter secrets at rest: every key and password is sealed with AES-256-GCM under a
//! key-encryption key (KEK) that comes from the environment (`HES_KEK`, 64 hex digits) or a file
//! (`HES_KEK_FILE`), never from the data itself. Secrets never appear in `Debug` output or logs.
//!
//! With the `pkcs11` feature the KEK may instead live in a hardware security module
//! (`HES_KEK=pkcs11:…`, see [`pkcs11`]): the token does the AES-GCM and the sealed text has the
//! same format, so a row sealed by either opens by the same code. When the token fails, sealing
//! and opening fail: there is no fallback to a key in memory.

#[cfg(feature = "pkcs11")]
pub mod pkcs11;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("no key-encryption key: set HES_KEK (64 hex digits) or HES_KEK_FILE")]
    NoKek,
    #[error("the key-encryption key must be 32 bytes (64 hex digits)")]
    BadKek,
    #[error("a sealed secret does not open with this key-encryption key (wrong KEK or tampered)")]
    Unseal,
    #[error("a sealed secret is malformed")]
    Malformed,
    /// The hardware security module cannot be reached or refuses (its message says which).
    #[error("the KEK's hardware security module (PKCS#11): {0}")]
    Hsm(String),
}

/// The key-encryption key.
pub struct Kek(Backend);

// One or two per process: the size of the software key schedule does not matter.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Soft(Aes256Gcm),
    #[cfg(feature = "pkcs11")]
    Hsm(pkcs11::HsmKek),
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Backend::Soft(_) => f.write_str("Kek(..)"),
            #[cfg(feature = "pkcs11")]
            Backend::Hsm(h) => write!(f, "Kek(pkcs11 {})", h.describe()),
        }
    }
}

impl Kek {
    pub fn from_bytes(key: &[u8]) -> Result<Self, SecretError> {
        if key.len() != 32 {
            return Err(SecretError::BadKek);
        }
        Aes256Gcm::new_from_slice(key)
            .map(|k| Self(Backend::Soft(k)))
            .map_err(|_| SecretError::BadKek)
    }

    /// The KEK named by a `pkcs11:` URI, opened on its token. Errors when the module, the
    /// token, the PIN or the key is missing, or when the key could leave the token.
    pub fn from_pkcs11(uri: &str) -> Result<Self, SecretError> {
        #[cfg(feature = "pkcs11")]
        {
            let uri = pkcs11::Pkcs11Uri::parse(uri)?;
            Ok(Self(Backend::Hsm(pkcs11::HsmKek::connect(&uri)?)))
        }
        #[cfg(not(feature = "pkcs11"))]
        {
            let _ = uri;
            Err(SecretError::Hsm(
                "this build has no PKCS#11 support (the `pkcs11` feature of hes-model)".into(),
            ))
        }
    }

    /// A KEK from its textual form: a `pkcs11:` URI, else 64 hex digits.
    pub fn from_spec(text: &str) -> Result<Self, SecretError> {
        if text.trim_start().starts_with("pkcs11:") {
            Self::from_pkcs11(text)
        } else {
            Self::from_hex(text)
        }
    }

    /// Whether the KEK is kept in a hardware security module.
    pub fn in_hsm(&self) -> bool {
        !matches!(self.0, Backend::Soft(_))
    }

    pub fn from_hex(text: &str) -> Result<Self, SecretError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SecretError::BadKek)?;
        Self::from_bytes(&bytes)
    }

    /// `HES_KEK` (64 hex digits or a `pkcs11:` URI), else the file named by `HES_KEK_FILE`
    /// (either form as text).
    pub fn from_env() -> Result<Self, SecretError> {
        if let Ok(v) = std::env::var("HES_KEK") {
            return Self::from_spec(&v);
        }
        if let Ok(path) = std::env::var("HES_KEK_FILE") {
            let text = std::fs::read_to_string(path).map_err(|_| SecretError::NoKek)?;
            return Self::from_spec(&text);
        }
        Err(SecretError::NoKek)
    }

    /// Seals `plain` bound to `context` (e.g. the meter id and the secret's name, so a sealed
    /// secret moved to another meter or field does not open), or says why the KEK could not
    /// (an HSM can fail; a KEK in memory cannot).
    pub fn try_seal(&self, plain: &[u8], context: &str) -> Result<Sealed, SecretError> {
        let out = match &self.0 {
            Backend::Soft(k) => {
                let mut nonce = [0u8; 12];
                rand::thread_rng().fill_bytes(&mut nonce);
                let payload = Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                };
                // Encryption only fails for inputs of gigabytes; a secret is a few bytes.
                let ct = k
                    .encrypt(Nonce::from_slice(&nonce), payload)
                    .map_err(|_| SecretError::Malformed)?;
                let mut out = nonce.to_vec();
                out.extend_from_slice(&ct);
                out
            }
            #[cfg(feature = "pkcs11")]
            Backend::Hsm(h) => h.seal(plain, context)?,
        };
        Ok(Sealed(hex::encode(out)))
    }

    pub fn open(&self, sealed: &Sealed, context: &str) -> Result<Secret, SecretError> {
        let bytes = hex::decode(&sealed.0).map_err(|_| SecretError::Malformed)?;
        if bytes.len() < 12 + 16 {
            return Err(SecretError::Malformed);
        }
        let (nonce, ct) = bytes.split_at(12);
        match &self.0 {
            Backend::Soft(k) => {
                let payload = Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                };
                k.decrypt(Nonce::from_slice(nonce), payload)
                    .map(Secret)
                    .map_err(|_| SecretError::Unseal)
            }
            #[cfg(feature = "pkcs11")]
            Backend::Hsm(h) => h.open(nonce, ct, context).map(Secret),
        }
    }
}

/// A sealed secret as stored: hex of nonce, ciphertext and tag.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(..)")
    }
}

impl Sealed {
    /// The stored form (hex of nonce and ciphertext): safe to keep anywhere.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A stored form read back (checked only when opened).
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }
}

/// An opened secret, held only as long as it is used. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite before the allocation is freed.
        for b in self.0.iter_mut() {
            *b = 0;
        }
    }
}

impl Secret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as an AES-128 key.
    pub fn key16(&self) -> Result<[u8; 16], SecretError> {
        self.0
            .as_slice()
            .try_into()
            .map_err(|_| SecretError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seal_open_and_refusals() {
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        let s = kek.try_seal(b"0123456789abcdef", "MTR1/ek").unwrap();
        assert_eq!(
            kek.open(&s, "MTR1/ek").unwrap().expose(),
            b"0123456789abcdef"
        );
        // Bound to its context, its KEK, and its bytes.
        assert_eq!(kek.open(&s, "MTR2/ek"), Err(SecretError::Unseal));
        let other = Kek::from_bytes(&[8u8; 32]).unwrap();
        assert_eq!(other.open(&s, "MTR1/ek"), Err(SecretError::Unseal));
        let mut t = s.0.clone();
        t.replace_range(30..32, if &t[30..32] == "00" { "01" } else { "00" });
        assert_eq!(kek.open(&Sealed(t), "MTR1/ek"), Err(SecretError::Unseal));
        assert_eq!(
            kek.open(&Sealed("zz".into()), "x"),
            Err(SecretError::Malformed)
        );
        // Two seals of one secret differ (random nonce); nothing shows in Debug.
        assert_ne!(
            kek.try_seal(b"k", "c").unwrap(),
            kek.try_seal(b"k", "c").unwrap()
        );
        let shown = format!("{s:?} {:?} {kek:?}", kek.open(&s, "MTR1/ek").unwrap());
        assert!(!shown.contains("0123") && !shown.contains(&s.0), "{shown}");
        assert_eq!(Kek::from_hex("00").unwrap_err(), SecretError::BadKek);
    }
}
