//! The conformance block: which services a client proposes and a server grants.

use std::fmt;

use crate::codec::{DecodeError, Reader};

/// The 24-bit conformance block. Bit n of the standard (0 = first, most significant) is
/// `1 << (23 - n)` here.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Conformance(pub u32);

macro_rules! bits {
    ($($name:ident = $n:expr, $text:expr;)*) => {
        impl Conformance {
            $(pub const $name: Conformance = Conformance(1 << (23 - $n));)*
            const NAMES: &'static [(u32, &'static str)] = &[$((1 << (23 - $n), $text)),*];
        }
    };
}

bits! {
    GENERAL_PROTECTION = 1, "general-protection";
    GENERAL_BLOCK_TRANSFER = 2, "general-block-transfer";
    READ = 3, "read";
    WRITE = 4, "write";
    UNCONFIRMED_WRITE = 5, "unconfirmed-write";
    DELTA_VALUE_ENCODING = 6, "delta-value-encoding";
    ATTRIBUTE0_SUPPORTED_WITH_SET = 8, "attribute0-supported-with-set";
    PRIORITY_MGMT_SUPPORTED = 9, "priority-mgmt-supported";
    ATTRIBUTE0_SUPPORTED_WITH_GET = 10, "attribute0-supported-with-get";
    BLOCK_TRANSFER_WITH_GET_OR_READ = 11, "block-transfer-with-get-or-read";
    BLOCK_TRANSFER_WITH_SET_OR_WRITE = 12, "block-transfer-with-set-or-write";
    BLOCK_TRANSFER_WITH_ACTION = 13, "block-transfer-with-action";
    MULTIPLE_REFERENCES = 14, "multiple-references";
    INFORMATION_REPORT = 15, "information-report";
    DATA_NOTIFICATION = 16, "data-notification";
    ACCESS = 17, "access";
    PARAMETERIZED_ACCESS = 18, "parameterized-access";
    GET = 19, "get";
    SET = 20, "set";
    SELECTIVE_ACCESS = 21, "selective-access";
    EVENT_NOTIFICATION = 22, "event-notification";
    ACTION = 23, "action";
}

impl Conformance {
    /// What our client proposes: the LN services with block transfer and lists (0x007E1F, the
    /// set most meters expect).
    pub const DEFAULT_CLIENT: Conformance = Conformance(0x00_7E_1F);
    /// What our server grants at most.
    pub const DEFAULT_SERVER: Conformance = Conformance(0x00_7E_1F);

    pub fn contains(self, other: Conformance) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn intersection(self, other: Conformance) -> Conformance {
        Conformance(self.0 & other.0)
    }

    pub fn union(self, other: Conformance) -> Conformance {
        Conformance(self.0 | other.0)
    }

    /// The standard's names of the bits set.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(b, _)| self.0 & b != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    /// `[APPLICATION 31] IMPLICIT BIT STRING (SIZE(24))`: `5F 1F 04 00 b1 b2 b3`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let b = self.0.to_be_bytes();
        out.extend_from_slice(&[0x5F, 0x1F, 0x04, 0x00, b[1], b[2], b[3]]);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let [t1, t2, len, unused, b1, b2, b3] = r.array::<7>("conformance block")?;
        if t1 != 0x5F || t2 != 0x1F {
            return Err(DecodeError::UnknownTag {
                what: "conformance block",
                tag: t1,
            });
        }
        if len != 4 || unused != 0 {
            return Err(DecodeError::Invalid {
                what: "conformance block",
                why: "expected 24 bits",
            });
        }
        Ok(Conformance(u32::from_be_bytes([0, b1, b2, b3])))
    }
}

impl fmt::Debug for Conformance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Conformance({:06X}: {})",
            self.0,
            self.names().join(", ")
        )
    }
}

impl std::ops::BitOr for Conformance {
    type Output = Conformance;
    fn bitor(self, rhs: Conformance) -> Conformance {
        self.union(rhs)
    }
}
