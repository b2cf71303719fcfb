//! The suite-0 cryptographic transformation of one payload (Green Book 9.2.7.2.4.6):
//! AES-GCM-128, IV = system title || invocation counter, 12-byte tag, and the
//! `SC || IC || (ciphertext | plaintext) || T` layout.

use aes::Aes128;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{AesGcm, Nonce, Tag};

use super::{SecurityControl, SecurityError};
use crate::codec::{DecodeError, Reader};
use crate::types::SystemTitle;

/// Length of the truncated GCM authentication tag of suite 0.
pub const TAG_LEN: usize = 12;

/// AES-128-GCM with a 96-bit IV and a 96-bit tag.
type Gcm = AesGcm<Aes128, U12, U12>;

fn cipher(key: &[u8; 16]) -> Gcm {
    Gcm::new(&(*key).into())
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
fn aad(sc: SecurityControl, ak: &[u8; 16], extra: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(1 + ak.len() + extra.len());
    a.push(sc.0);
    a.extend_from_slice(ak);
    a.extend_from_slice(extra);
    a
}

/// Protects `plaintext` as `SC || IC || ciphertext || T` (or `SC || IC || plaintext || T` when
/// only authenticated, or `SC || IC || ciphertext` when only encrypted).
///
/// This is the suite-0 transformation whatever the suite nibble of `sc` says; choosing the
/// suite is the caller's job ([`super::SecurityContext`] only ever asks for suite 0). With
/// neither A nor E set the payload is copied unprotected.
pub fn encrypt(
    sc: SecurityControl,
    system_title: &SystemTitle,
    ic: u32,
    ek: &[u8; 16],
    ak: &[u8; 16],
    plaintext: &[u8],
) -> Vec<u8> {
    seal(sc, system_title, ic, ek, ak, &[], plaintext)
}

pub(crate) fn seal(
    sc: SecurityControl,
    system_title: &SystemTitle,
    ic: u32,
    ek: &[u8; 16],
    ak: &[u8; 16],
    extra_aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + plaintext.len() + TAG_LEN);
    out.push(sc.0);
    out.extend_from_slice(&ic.to_be_bytes());
    let header_len = out.len();
    out.extend_from_slice(plaintext);
    let gcm = cipher(ek);
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
    /// Splits `SC || IC || body || T` and refuses what suite 0 cannot handle.
    pub fn parse(protected: &'a [u8]) -> Result<Self, SecurityError> {
        let mut r = Reader::new(protected);
        let sc = SecurityControl(r.u8("security control")?);
        if sc.suite() != 0 {
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
    ek: &[u8; 16],
    ak: &[u8; 16],
    extra_aad: &[u8],
) -> Result<Vec<u8>, SecurityError> {
    let gcm = cipher(ek);
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
    seal(sc, system_title, ic, ek, ak, &[], challenge)
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
