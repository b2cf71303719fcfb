//! Small newtypes and enumerations shared by several layers of the stack.

use std::fmt;

use crate::codec::{DecodeError, Reader};
use crate::obis::ObisCode;

/// The 8-byte system title of a DLMS entity (3 bytes of manufacturer id, then 5 bytes of
/// serial), used as the AP title and in the GCM initialisation vector.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SystemTitle(pub [u8; 8]);

impl SystemTitle {
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        Some(Self(b.try_into().ok()?))
    }
}

impl fmt::Debug for SystemTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SystemTitle(")?;
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        write!(f, ")")
    }
}

/// Authentication mechanism names (Green Book, `mechanism-name` arc 2.16.756.5.8.2.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Mechanism {
    None = 0,
    Low = 1,
    High = 2,
    HighMd5 = 3,
    HighSha1 = 4,
    HighGmac = 5,
    HighSha256 = 6,
    HighEcdsa = 7,
}

impl Mechanism {
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::None,
            1 => Self::Low,
            2 => Self::High,
            3 => Self::HighMd5,
            4 => Self::HighSha1,
            5 => Self::HighGmac,
            6 => Self::HighSha256,
            7 => Self::HighEcdsa,
            _ => return None,
        })
    }

    /// Whether this mechanism needs the four-pass HLS exchange (challenges both ways).
    pub fn is_hls(self) -> bool {
        matches!(
            self,
            Self::High
                | Self::HighMd5
                | Self::HighSha1
                | Self::HighGmac
                | Self::HighSha256
                | Self::HighEcdsa
        )
    }
}

/// Application context names (Green Book, arc 2.16.756.5.8.1.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ApplicationContext {
    LogicalName = 1,
    ShortName = 2,
    LogicalNameCiphered = 3,
    ShortNameCiphered = 4,
}

impl ApplicationContext {
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            1 => Self::LogicalName,
            2 => Self::ShortName,
            3 => Self::LogicalNameCiphered,
            4 => Self::ShortNameCiphered,
            _ => return None,
        })
    }

    pub fn is_ciphered(self) -> bool {
        matches!(self, Self::LogicalNameCiphered | Self::ShortNameCiphered)
    }
}

/// What protection an APDU gets (the security control byte's A and E bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SecurityLevel {
    #[default]
    None,
    Authenticated,
    Encrypted,
    AuthenticatedEncrypted,
}

/// `Cosem-Attribute-Descriptor`: class, instance (OBIS) and attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttributeDescriptor {
    pub class_id: u16,
    pub instance: ObisCode,
    pub attribute: i8,
}

/// `Cosem-Method-Descriptor`: class, instance (OBIS) and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodDescriptor {
    pub class_id: u16,
    pub instance: ObisCode,
    pub method: i8,
}

impl AttributeDescriptor {
    pub fn new(class_id: u16, instance: ObisCode, attribute: i8) -> Self {
        Self {
            class_id,
            instance,
            attribute,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.class_id.to_be_bytes());
        self.instance.encode(out);
        out.push(self.attribute as u8);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            class_id: r.u16("class id")?,
            instance: ObisCode::decode(r)?,
            attribute: r.u8("attribute id")? as i8,
        })
    }
}

impl MethodDescriptor {
    pub fn new(class_id: u16, instance: ObisCode, method: i8) -> Self {
        Self {
            class_id,
            instance,
            method,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.class_id.to_be_bytes());
        self.instance.encode(out);
        out.push(self.method as u8);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            class_id: r.u16("class id")?,
            instance: ObisCode::decode(r)?,
            method: r.u8("method id")? as i8,
        })
    }
}

impl fmt::Display for AttributeDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.class_id, self.instance, self.attribute)
    }
}

impl fmt::Display for MethodDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.class_id, self.instance, self.method)
    }
}

/// How a client authenticates itself: what the client sends, and what a server requires of
/// one client SAP.
#[derive(Clone, PartialEq, Eq)]
pub enum Authentication {
    None,
    /// LLS: the password travels in the AARQ.
    Low {
        password: Vec<u8>,
    },
    /// HLS with MD5, SHA-1 or SHA-256 and a shared secret.
    High {
        mechanism: Mechanism,
        secret: Vec<u8>,
    },
    /// HLS-GMAC: proves possession of the keys given in [`ClientSecurity`].
    HighGmac,
    /// HLS-ECDSA (mechanism 7, suites 1 and 2): each side signs the other's challenge with its
    /// private signing key; the keys are in the side's [`crate::security::EccConfig`].
    HighEcdsa,
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach a log.
        f.write_str(match self {
            Self::None => "None",
            Self::Low { .. } => "Low",
            Self::High { .. } => "High",
            Self::HighGmac => "HighGmac",
            Self::HighEcdsa => "HighEcdsa",
        })
    }
}

impl Authentication {
    pub fn mechanism(&self) -> Mechanism {
        match self {
            Self::None => Mechanism::None,
            Self::Low { .. } => Mechanism::Low,
            Self::High { mechanism, .. } => *mechanism,
            Self::HighGmac => Mechanism::HighGmac,
            Self::HighEcdsa => Mechanism::HighEcdsa,
        }
    }
}
