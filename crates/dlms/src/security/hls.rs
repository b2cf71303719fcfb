//! HLS pass 3 and 4 functions (Green Book 9.2.2.4 and 9.2.7.4): each side proves it knows the
//! secret by processing the challenge the other side sent.
//!
//! Mechanism 2 (manufacturer specific) has no standard function and is not here.

use md5::Md5;
use sha1::Sha1;
use sha2::digest::{Digest, Output};
use sha2::Sha256;

use super::ecc::{EcPrivateKey, EcPublicKey};
use super::gcm::{gmac, verify_gmac, TAG_LEN};
use super::{CipherKeys, SecurityControl, SecurityError};
use crate::codec::{DecodeError, Reader};
use crate::types::SystemTitle;

fn digest<D: Digest>(parts: &[&[u8]]) -> Output<D> {
    let mut d = D::new();
    for p in parts {
        d.update(p);
    }
    d.finalize()
}

/// Mechanism 3: `MD5(challenge || secret)`.
pub fn hls_md5(challenge: &[u8], secret: &[u8]) -> [u8; 16] {
    digest::<Md5>(&[challenge, secret]).into()
}

/// Mechanism 4: `SHA-1(challenge || secret)`.
pub fn hls_sha1(challenge: &[u8], secret: &[u8]) -> [u8; 20] {
    digest::<Sha1>(&[challenge, secret]).into()
}

/// Mechanism 6: `SHA-256(secret || own system title || peer system title || peer's challenge
/// || own challenge)`.
///
/// The client computes f(StoC) with (ST-C, ST-S, StoC, CtoS); the server computes f(CtoS)
/// with (ST-S, ST-C, CtoS, StoC). Each side verifies the other by calling it with the roles
/// swapped.
pub fn hls_sha256(
    secret: &[u8],
    own_st: &SystemTitle,
    peer_st: &SystemTitle,
    peer_challenge: &[u8],
    own_challenge: &[u8],
) -> [u8; 32] {
    digest::<Sha256>(&[secret, &own_st.0, &peer_st.0, peer_challenge, own_challenge]).into()
}

/// Mechanism 7 (HLS-ECDSA): the ECDSA signature (`r || s`, with the suite's curve and hash) of
/// `own system title || peer system title || peer's challenge || own challenge`.
///
/// The client signs f(StoC) = (ST-C, ST-S, StoC, CtoS) with its private signing key; the
/// server signs f(CtoS) = (ST-S, ST-C, CtoS, StoC). Each side checks the other with
/// [`verify_hls_ecdsa`] and the public key of the peer's certificate.
pub fn hls_ecdsa(
    key: &EcPrivateKey,
    own_st: &SystemTitle,
    peer_st: &SystemTitle,
    peer_challenge: &[u8],
    own_challenge: &[u8],
) -> Vec<u8> {
    key.sign(&[&own_st.0[..], &peer_st.0, peer_challenge, own_challenge].concat())
}

/// Checks the peer's HLS-ECDSA `response`: the peer signed (its title, our title, the
/// challenge we sent, its own challenge).
pub fn verify_hls_ecdsa(
    peer_key: &EcPublicKey,
    peer_st: &SystemTitle,
    own_st: &SystemTitle,
    own_challenge: &[u8],
    peer_challenge: &[u8],
    response: &[u8],
) -> Result<(), SecurityError> {
    peer_key.verify(
        &[&peer_st.0[..], &own_st.0, own_challenge, peer_challenge].concat(),
        response,
    )
}

/// Mechanism 5: `SC || IC || GMAC(SC || AK || challenge)` with SC = 0x10 (authentication only,
/// suite 0) and IV = the responder's own system title || `ic`.
pub fn hls_gmac(
    system_title: &SystemTitle,
    ic: u32,
    keys: &CipherKeys,
    challenge: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + TAG_LEN);
    out.push(SecurityControl::AUTHENTICATION);
    out.extend_from_slice(&ic.to_be_bytes());
    out.extend_from_slice(&gmac(system_title, ic, &keys.ek, &keys.ak, challenge));
    out
}

/// Checks the peer's HLS-GMAC `response` to the `challenge` we sent. `system_title` is the
/// peer's. Returns the invocation counter the peer used so that the caller can check it
/// against replays.
pub fn verify_hls_gmac(
    system_title: &SystemTitle,
    keys: &CipherKeys,
    challenge: &[u8],
    response: &[u8],
) -> Result<u32, SecurityError> {
    let mut r = Reader::new(response);
    let sc = SecurityControl(r.u8("HLS-GMAC security control")?);
    if sc.suite() != 0 {
        return Err(SecurityError::UnsupportedSuite(sc.suite()));
    }
    if sc.0 != SecurityControl::AUTHENTICATION {
        return Err(DecodeError::Invalid {
            what: "HLS-GMAC security control",
            why: "must be 0x10 (authentication only)",
        }
        .into());
    }
    let ic = r.u32("HLS-GMAC invocation counter")?;
    let tag = r.take(TAG_LEN, "HLS-GMAC tag")?;
    r.finish("HLS-GMAC response")?;
    verify_gmac(system_title, ic, &keys.ek, &keys.ak, challenge, tag)?;
    Ok(ic)
}
