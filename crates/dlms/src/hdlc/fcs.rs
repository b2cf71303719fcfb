//! The HDLC check sequence: CRC-16/X-25 (RFC 1662 FCS-16), used for both HCS and FCS.

/// Reflected form of the polynomial x^16 + x^12 + x^5 + 1.
const POLY_REFLECTED: u16 = 0x8408;
const INIT: u16 = 0xFFFF;
const XOROUT: u16 = 0xFFFF;

/// The FCS-16 of `bytes`, to be sent least significant byte first.
pub fn fcs16(bytes: &[u8]) -> u16 {
    let mut crc = INIT;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
        }
    }
    crc ^ XOROUT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        // The catalogue check value of CRC-16/X-25 over "123456789".
        assert_eq!(fcs16(b"123456789"), 0x906E);
    }

    #[test]
    fn known_hcs_from_a_meter_frame() {
        // SNRM without info from Gurux: 7E A0 07 03 21 93 | 0F 01 | 7E (FCS little-endian).
        assert_eq!(
            fcs16(&[0xA0, 0x07, 0x03, 0x21, 0x93]).to_le_bytes(),
            [0x0F, 0x01]
        );
    }
}
