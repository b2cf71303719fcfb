//! RFC 3394 AES key wrap, used by the security setup object's `key_transfer` method (Green
//! Book 9.2.3.3.7.2) to carry a new key encrypted under the master key (KEK).

use aes_kw::KekAes128;

use super::SecurityError;
use crate::codec::DecodeError;

/// Wraps a 128-bit key under `kek`.
pub fn wrap_key(kek: &[u8; 16], key: &[u8; 16]) -> [u8; 24] {
    let mut out = [0u8; 24];
    let res = KekAes128::from(*kek).wrap(key, &mut out);
    // Both lengths are fixed by the types: wrap fails only on a length mismatch.
    debug_assert!(res.is_ok());
    out
}

/// Unwraps a 24-byte wrapped 128-bit key, checking RFC 3394's integrity value.
pub fn unwrap_key(kek: &[u8; 16], wrapped: &[u8]) -> Result<[u8; 16], SecurityError> {
    if wrapped.len() != 24 {
        return Err(DecodeError::Invalid {
            what: "wrapped key",
            why: "must be 24 bytes",
        }
        .into());
    }
    let mut out = [0u8; 16];
    KekAes128::from(*kek)
        .unwrap(wrapped, &mut out)
        .map_err(|_| SecurityError::KeyUnwrapFailed)?;
    Ok(out)
}
