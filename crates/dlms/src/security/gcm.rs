//! The cryptographic transformation of one payload (Green Book 9.2.7.2.4.6): AES-GCM
//! (128-bit keys for suites 0 and 1, 256-bit for suite 2), IV = system title || invocation
//! counter, 12-byte tag, and the `SC || IC || (ciphertext | plaintext) || T` layout.

use aes::{Aes128, Aes256};
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{AesGcm, Nonce, Tag};

use super::{SecurityControl, SecurityError};
use crate::codec::{DecodeError, Reader};
use crate::types::SystemTitle;

/// Length of the truncated GCM authentication tag of suite 0.
pub const TAG_LEN: usize = 12;

/// AES-GCM with a 96-bit IV and a 96-bit tag, for the key length of the suite.
// Lives on the stack for one APDU; boxing the larger key schedule would cost an allocation
// per APDU to save a few hundred bytes of stack.
#[allow(clippy::large_enum_variant)]
enum Gcm {
    Aes128(AesGcm<Aes128, U12, U12>),
    Aes256(AesGcm<Aes256, U12, U12>),
}

impl Gcm {
    fn encrypt_in_place_detached(
        &self,
        iv: &Nonce<U12>,
        aad: &[u8],
        body: &mut [u8],
    ) -> aes_gcm::aead::Result<Tag<U12>> {
        match self {
            Self::Aes128(g) => g.encrypt_in_place_detached(iv, aad, body),
            Self::Aes256(g) => g.encrypt_in_place_detached(iv, aad, body),
        }
    }

    fn decrypt_in_place_detached(
        &self,
        iv: &Nonce<U12>,
        aad: &[u8],
        body: &mut [u8],
        tag: &Tag<U12>,
    ) -> aes_gcm::aead::Result<()> {
        match self {
            Self::Aes128(g) => g.decrypt_in_place_detached(iv, aad, body, tag),
            Self::Aes256(g) => g.decrypt_in_place_detached(iv, aad, body, tag),
        }
    }
}

/// A 16-byte key selects AES-128 (suites 0 and 1), a 32-byte one AES-256 (suite 2).
fn cipher(key: &[u8]) -> Result<Gcm, SecurityError> {
    if let Ok(k) = <[u8; 16]>::try_from(key) {
        return Ok(Gcm::Aes128(AesGcm::new(&k.into())));
    }
    if let Ok(k) = <[u8; 32]>::try_from(key) {
        return Ok(Gcm::Aes256(AesGcm::new(&k.into())));
    }
    Err(SecurityError::InvalidKey(
        "an AES-GCM key is 16 or 32 bytes",
    ))
}

fn iv(system_title: &SystemTitle, ic: u32) -> Nonce<U12> {
    let mut iv = [0u8; 12];
    let (st, counter) = iv.split_at_mut(8);
    st.copy_from_slice(&system_title.0);
    counter.copy_from_slice(&ic.to_be_bytes());
    iv.into()
}

/// `SC || AK || extra`: the additional authenticated data of authenticated modes. `extra` is
/// empty except for `general-ciphering`, which also authenticates its header fields.
fn aad(sc: SecurityControl, ak: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(1 + ak.len() + extra.len());
    a.push(sc.0);
    a.extend_from_slice(ak);
    a.extend_from_slice(extra);
    a
}

/// Protects `plaintext` as `SC || IC || ciphertext || T` (or `SC || IC || plaintext || T` when
/// only authenticated, or `SC || IC || ciphertext` when only encrypted).
///
/// This is the AES-GCM-128 transformation whatever the suite nibble of `sc` says; choosing
/// the suite is the caller's job. With neither A nor E set the payload is copied unprotected.
pub fn encrypt(
    sc: SecurityControl,
    system_title: &SystemTitle,
    ic: u32,
    ek: &[u8; 16],
    ak: &[u8; 16],
    plaintext: &[u8],
) -> Vec<u8> {
    seal_with(
        &Gcm::Aes128(AesGcm::new(&(*ek).into())),
        sc,
        system_title,
        ic,
        ak,
        &[],
        plaintext,
    )
}

/// [`encrypt`] with a key of either length: 16 bytes (suites 0, 1) or 32 bytes (suite 2).
pub fn encrypt_with_key(
    sc: SecurityControl,
    system_title: &SystemTitle,
    ic: u32,
    ek: &[u8],
    ak: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SecurityError> {
    seal(sc, system_title, ic, ek, ak, &[], plaintext)
}

pub(crate) fn seal(
    sc: SecurityControl,
    system_title: &SystemTitle,
    ic: u32,
    ek: &[u8],
    ak: &[u8],
    extra_aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SecurityError> {
    Ok(seal_with(
        &cipher(ek)?,
        sc,
        system_title,
        ic,
        ak,
        extra_aad,
        plaintext,
    ))
}

fn seal_with(
    gcm: &Gcm,
    sc: SecurityControl,
    system_title: &SystemTitle,
    ic: u32,
    ak: &[u8],
    extra_aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + plaintext.len() + TAG_LEN);
    out.push(sc.0);
    out.extend_from_slice(&ic.to_be_bytes());
    let header_len = out.len();
    out.extend_from_slice(plaintext);
    let iv = iv(system_title, ic);
    // GCM over a Vec tail cannot fail: the only error is a message longer than 2^36 bytes,
    // which no Vec here reaches. Should it ever happen, the result carries no valid tag and
    // the peer rejects it, which is the safe failure.
    match (sc.authenticated(), sc.encrypted()) {
        (true, true) => {
            let a = aad(sc, ak, extra_aad);
            if let Some(body) = out.get_mut(header_len..) {
                if let Ok(tag) = gcm.encrypt_in_place_detached(&iv, &a, body) {
                    out.extend_from_slice(&tag);
                }
            }
        }
        (true, false) => {
            // GMAC: the payload travels in clear and is authenticated as part of the AAD.
            let mut a = aad(sc, ak, extra_aad);
            a.extend_from_slice(plaintext);
            if let Ok(tag) = gcm.encrypt_in_place_detached(&iv, &a, &mut []) {
                out.extend_from_slice(&tag);
            }
        }
        (false, true) => {
            // No tag: GCM's counter mode alone; the tag it computes is dropped.
            if let Some(body) = out.get_mut(header_len..) {
                let _tag = gcm.encrypt_in_place_detached(&iv, &[], body);
            }
        }
        (false, false) => {}
    }
    out
}

/// Reads `SC || IC || ...` as produced by [`encrypt`], checks the tag and returns the security
/// control byte, the invocation counter and the plaintext. The replay check is the caller's.
pub fn decrypt(
    system_title: &SystemTitle,
    ek: &[u8; 16],
    ak: &[u8; 16],
    protected: &[u8],
) -> Result<(SecurityControl, u32, Vec<u8>), SecurityError> {
    decrypt_with_key(system_title, ek, ak, protected)
}

/// [`decrypt`] with a key of either length (16 or 32 bytes).
pub fn decrypt_with_key(
    system_title: &SystemTitle,
    ek: &[u8],
    ak: &[u8],
    protected: &[u8],
) -> Result<(SecurityControl, u32, Vec<u8>), SecurityError> {
    let header = SecurityHeader::parse(protected)?;
    let plain = open(&header, system_title, ek, ak, &[])?;
    Ok((header.sc, header.ic, plain))
}

/// The parsed security header and the rest of a protected payload, before any cryptography.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecurityHeader<'a> {
    pub sc: SecurityControl,
    pub ic: u32,
    /// Ciphertext or plaintext, without the tag.
    pub body: &'a [u8],
    /// Empty unless authenticated.
    pub tag: &'a [u8],
}

impl<'a> SecurityHeader<'a> {
    /// Splits `SC || IC || body || T` and refuses suites that do not exist and compression.
    /// Whether the suite is the association's is the caller's check.
    pub fn parse(protected: &'a [u8]) -> Result<Self, SecurityError> {
        let mut r = Reader::new(protected);
        let sc = SecurityControl(r.u8("security control")?);
        if sc.suite() > 2 {
            return Err(SecurityError::UnsupportedSuite(sc.suite()));
        }
        if sc.compressed() {
            return Err(SecurityError::CompressionUnsupported);
        }
        if !sc.authenticated() && !sc.encrypted() {
            return Err(DecodeError::Invalid {
                what: "security control",
                why: "neither authentication nor encryption",
            }
            .into());
        }
        let ic = r.u32("invocation counter")?;
        let rest = r.take_rest();
        let (body, tag) = if sc.authenticated() {
            let Some(body_len) = rest.len().checked_sub(TAG_LEN) else {
                return Err(DecodeError::Truncated {
                    what: "authentication tag",
                    needed: TAG_LEN - rest.len(),
                }
                .into());
            };
            rest.split_at(body_len)
        } else {
            (rest, &[][..])
        };
        Ok(Self { sc, ic, body, tag })
    }
}

/// Verifies and removes the protection described by `header`.
pub(crate) fn open(
    header: &SecurityHeader<'_>,
    system_title: &SystemTitle,
    ek: &[u8],
    ak: &[u8],
    extra_aad: &[u8],
) -> Result<Vec<u8>, SecurityError> {
    let gcm = cipher(ek)?;
    let iv = iv(system_title, header.ic);
    let mut body = header.body.to_vec();
    match (header.sc.authenticated(), header.sc.encrypted()) {
        (true, true) => {
            let tag = tag_of(header.tag)?;
            let a = aad(header.sc, ak, extra_aad);
            gcm.decrypt_in_place_detached(&iv, &a, &mut body, &tag)
                .map_err(|_| SecurityError::AuthenticationFailed)?;
        }
        (true, false) => {
            let tag = tag_of(header.tag)?;
            let mut a = aad(header.sc, ak, extra_aad);
            a.extend_from_slice(header.body);
            // Decrypting an empty message checks the tag in constant time.
            gcm.decrypt_in_place_detached(&iv, &a, &mut [], &tag)
                .map_err(|_| SecurityError::AuthenticationFailed)?;
        }
        (false, true) => {
            // Counter mode is its own inverse; nothing authenticates this mode.
            let _tag = gcm.encrypt_in_place_detached(&iv, &[], &mut body);
        }
        (false, false) => {}
    }
    Ok(body)
}

fn tag_of(bytes: &[u8]) -> Result<Tag<U12>, SecurityError> {
    let tag: [u8; TAG_LEN] = bytes.try_into().map_err(|_| DecodeError::Invalid {
        what: "authentication tag",
        why: "must be 12 bytes",
    })?;
    Ok(tag.into())
}

/// The 12-byte GMAC of `SC(0x10) || AK || challenge` under IV `system_title || ic`, as used
/// by HLS-GMAC.
pub(crate) fn gmac(
    system_title: &SystemTitle,
    ic: u32,
    ek: &[u8; 16],
    ak: &[u8; 16],
    challenge: &[u8],
) -> Vec<u8> {
    let sc = SecurityControl(SecurityControl::AUTHENTICATION);
    encrypt(sc, system_title, ic, ek, ak, challenge)
        .get(5 + challenge.len()..)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// Checks a GMAC tag in constant time.
pub(crate) fn verify_gmac(
    system_title: &SystemTitle,
    ic: u32,
    ek: &[u8; 16],
    ak: &[u8; 16],
    challenge: &[u8],
    tag: &[u8],
) -> Result<(), SecurityError> {
    let header = SecurityHeader {
        sc: SecurityControl(SecurityControl::AUTHENTICATION),
        ic,
        body: challenge,
        tag,
    };
    open(&header, system_title, ek, ak, &[]).map(|_| ())
}
