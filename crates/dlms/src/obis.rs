//! OBIS codes (IEC 62056-6-1): the six-byte logical names of COSEM objects.

use std::fmt;
use std::str::FromStr;

use crate::codec::{DecodeError, Reader};

/// A logical name `A.B.C.D.E.F`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObisCode(pub [u8; 6]);

/// Why a text is not an OBIS code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OBIS code {text:?}: {why}")]
pub struct ObisParseError {
    pub text: String,
    pub why: &'static str,
}

impl ObisCode {
    pub const fn new(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8) -> Self {
        Self([a, b, c, d, e, f])
    }

    pub fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self(r.array("OBIS code")?))
    }

    /// From an octet-string payload, which must be exactly 6 bytes.
    pub fn from_octets(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }

    /// The IEC reduced form `A-B:C.D.E*F`.
    pub fn to_reduced(&self) -> String {
        let [a, b, c, d, e, f] = self.0;
        format!("{a}-{b}:{c}.{d}.{e}*{f}")
    }

    /// A human name for well-known codes (value group C/D patterns of IEC 62056-6-1 and the
    /// IDIS/DLMS UA object list), if we know one.
    pub fn name(&self) -> Option<&'static str> {
        let n = match self.0 {
            [0, 0, 1, 0, 0, 255] => "Clock",
            [0, 0, 42, 0, 0, 255] => "COSEM logical device name",
            [0, 0, 96, 1, 0, 255] => "Meter serial number",
            [1, 0, 0, 2, 0, 255] => "Active firmware identifier",
            [0, 0, 96, 3, 10, 255] => "Disconnect control",
            [0, 0, 17, 0, 0, 255] => "Limiter",
            [0, 0, 13, 0, 0, 255] => "Activity calendar",
            [0, 0, 11, 0, 0, 255] => "Special days table",
            [0, 0, 44, 0, 0, 255] => "Image transfer",
            [0, 0, 40, 0, 0, 255] => "Current association",
            [0, 0, 40, 0, _, 255] => "Association LN",
            [0, 0, 43, 0, _, 255] => "Security setup",
            [0, 0, 43, 1, _, 255] => "Invocation counter",
            [0, 0, 25, 9, 0, 255] => "Push setup",
            [0, _, 22, 0, 0, 255] => "IEC HDLC setup",
            [0, 0, 10, 0, 0, 255] => "Global meter reset script table",
            [0, 0, 10, 0, 1, 255] => "MDI reset / end of billing period script table",
            [0, 0, 10, 0, 100, 255] => "Tariffication script table",
            [0, 0, 15, 0, _, 255] => "Single action schedule",
            [0, 0, 16, 1, _, 255] => "Register monitor",
            [1, 0, 99, 1, 0, 255] => "Load profile 1 (15-minute)",
            [1, 0, 99, 2, 0, 255] => "Load profile 2 (daily)",
            [0, 0, 98, 1, 0, 255] => "Billing profile (monthly)",
            [0, 0, 99, 98, 0, 255] => "Standard event log",
            [0, 0, 99, 98, 1, 255] => "Fraud detection log",
            [0, 0, 99, 98, 2, 255] => "Disconnector control log",
            [0, 0, 99, 98, 4, 255] => "Power quality log",
            [1, 0, 1, 8, 0, 255] => "Active energy import (+A), total",
            [1, 0, 2, 8, 0, 255] => "Active energy export (-A), total",
            [1, 0, 3, 8, 0, 255] => "Reactive energy import (+R), total",
            [1, 0, 4, 8, 0, 255] => "Reactive energy export (-R), total",
            [1, 0, 1, 8, _, 255] => "Active energy import (+A), tariff",
            [1, 0, 2, 8, _, 255] => "Active energy export (-A), tariff",
            [1, 0, 1, 7, 0, 255] => "Active power import (+P)",
            [1, 0, 2, 7, 0, 255] => "Active power export (-P)",
            [1, 0, 32, 7, 0, 255] => "Voltage L1",
            [1, 0, 52, 7, 0, 255] => "Voltage L2",
            [1, 0, 72, 7, 0, 255] => "Voltage L3",
            [1, 0, 31, 7, 0, 255] => "Current L1",
            [1, 0, 51, 7, 0, 255] => "Current L2",
            [1, 0, 71, 7, 0, 255] => "Current L3",
            [1, 0, 21, 7, 0, 255] => "Active power import L1",
            [1, 0, 41, 7, 0, 255] => "Active power import L2",
            [1, 0, 61, 7, 0, 255] => "Active power import L3",
            [1, 0, 1, 6, 0, 255] => "Maximum demand +A",
            [1, 0, 1, 4, 0, 255] => "Current average demand +A",
            _ => return None,
        };
        Some(n)
    }
}

impl fmt::Display for ObisCode {
    /// The dotted form `A.B.C.D.E.F`, the form used on our command line and in JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a}.{b}.{c}.{d}.{e}.{g}")
    }
}

impl FromStr for ObisCode {
    type Err = ObisParseError;

    /// Accepts `1.0.1.8.0.255`, `1-0:1.8.0*255`, `1-0:1.8.0.255`, `1-0:1.8.0` (F = 255) and the
    /// 12-digit hex form `0100010800FF`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| ObisParseError {
            text: s.to_string(),
            why,
        };
        let t = s.trim();
        if t.len() == 12 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut out = [0u8; 6];
            for (i, o) in out.iter_mut().enumerate() {
                let pair = t.get(i * 2..i * 2 + 2).ok_or_else(|| err("bad hex"))?;
                *o = u8::from_str_radix(pair, 16).map_err(|_| err("bad hex"))?;
            }
            return Ok(Self(out));
        }
        let reduced = t.contains(':') || t.contains('-') || t.contains('*');
        let parts: Vec<&str> = t.split(['.', '-', ':', '*']).collect();
        let mut nums = Vec::with_capacity(6);
        for p in &parts {
            if p.is_empty() {
                return Err(err("empty group"));
            }
            nums.push(
                p.parse::<u8>()
                    .map_err(|_| err("each group must be 0 to 255"))?,
            );
        }
        if reduced && nums.len() == 5 {
            nums.push(255);
        }
        let arr: [u8; 6] = nums.try_into().map_err(|_| err("expected six groups"))?;
        Ok(Self(arr))
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;

    #[test]
    fn parse_all_forms() {
        let want = ObisCode::new(1, 0, 1, 8, 0, 255);
        for s in [
            "1.0.1.8.0.255",
            "1-0:1.8.0*255",
            "1-0:1.8.0.255",
            "1-0:1.8.0",
            "0100010800FF",
        ] {
            assert_eq!(s.parse::<ObisCode>().unwrap(), want, "{s}");
        }
        assert_eq!(want.to_string(), "1.0.1.8.0.255");
        assert_eq!(want.to_reduced(), "1-0:1.8.0*255");
        assert_eq!(want.name(), Some("Active energy import (+A), total"));
    }

    #[test]
    fn parse_rejects_garbage() {
        for s in [
            "",
            "1.0.1.8.0",
            "1.0.1.8.0.256",
            "a.b.c.d.e.f",
            "1..1.8.0.255",
            "1.0.1.8.0.255.1",
        ] {
            assert!(s.parse::<ObisCode>().is_err(), "{s}");
        }
    }
}
