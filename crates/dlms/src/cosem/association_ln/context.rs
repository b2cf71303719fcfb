//! The smaller attributes of Association LN: partners, context names, xDLMS context, status
//! and users.

use crate::axdr::{BitString, Data};
use crate::cosem::value::{
    bit_string, enumerated, integer, long_unsigned, octets, structure, unsigned,
};
use crate::cosem::{cosem_value, CosemError};
use crate::types::{ApplicationContext, Mechanism};

/// The `kind` arc of a context name naming an application context.
pub const CONTEXT_KIND_APPLICATION_CONTEXT: u8 = 1;
/// The `kind` arc of a context name naming an authentication mechanism.
pub const CONTEXT_KIND_MECHANISM: u8 = 2;

/// The prefix of every DLMS UA object identifier, 2.16.756.5.8, BER-encoded.
const DLMS_UA_OID_PREFIX: [u8; 5] = [0x60, 0x85, 0x74, 0x05, 0x08];
/// BER tag and length of a 7-byte OBJECT IDENTIFIER, which some meters leave in front.
const OID_TAG_AND_LENGTH: [u8; 2] = [0x06, 0x07];

/// `associated_partners_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AssociatedPartnersId {
    pub client_sap: i8,
    pub server_sap: u16,
}

impl AssociatedPartnersId {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [c, s] = structure(d)?;
        Ok(Self {
            client_sap: integer(c)?,
            server_sap: long_unsigned(s)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::Integer(self.client_sap),
            Data::LongUnsigned(self.server_sap),
        ])
    }
}

/// `application_context_name` / `authentication_mechanism_name`: the object identifier
/// `joint-iso-ctt(2) country(16) country-name(756) identified-organization(5) DLMS-UA(8)
/// kind id`. Version 0 sends it as a structure of its seven arcs; later versions as the
/// BER-encoded identifier in an octet-string. Both are read; [`ContextName::to_data`] writes
/// the octet-string and [`ContextName::to_structure_data`] the version 0 form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContextName {
    pub joint_iso_ctt: u8,
    pub country: u8,
    pub country_name: u16,
    pub identified_organization: u8,
    pub dlms_ua: u8,
    /// 1 = application context, 2 = authentication mechanism.
    pub kind: u8,
    pub id: u8,
}

impl ContextName {
    fn dlms_ua(kind: u8, id: u8) -> Self {
        Self {
            joint_iso_ctt: 2,
            country: 16,
            country_name: 756,
            identified_organization: 5,
            dlms_ua: 8,
            kind,
            id,
        }
    }

    pub fn application_context(ctx: ApplicationContext) -> Self {
        Self::dlms_ua(CONTEXT_KIND_APPLICATION_CONTEXT, ctx as u8)
    }

    pub fn mechanism(m: Mechanism) -> Self {
        Self::dlms_ua(CONTEXT_KIND_MECHANISM, m as u8)
    }

    fn is_dlms_ua(&self) -> bool {
        *self == Self::dlms_ua(self.kind, self.id)
    }

    /// The application context this name designates, if it is one we know.
    pub fn as_application_context(&self) -> Option<ApplicationContext> {
        (self.is_dlms_ua() && self.kind == CONTEXT_KIND_APPLICATION_CONTEXT)
            .then(|| ApplicationContext::from_id(self.id))
            .flatten()
    }

    /// The authentication mechanism this name designates, if it is one we know.
    pub fn as_mechanism(&self) -> Option<Mechanism> {
        (self.is_dlms_ua() && self.kind == CONTEXT_KIND_MECHANISM)
            .then(|| Mechanism::from_id(self.id))
            .flatten()
    }

    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        match d {
            Data::OctetString(b) => {
                let oid = b.strip_prefix(&OID_TAG_AND_LENGTH[..]).unwrap_or(b);
                match oid.strip_prefix(&DLMS_UA_OID_PREFIX[..]) {
                    Some([kind, id]) => Ok(Self::dlms_ua(*kind, *id)),
                    _ => Err(CosemError::Invalid("not a DLMS UA object identifier")),
                }
            }
            Data::Structure(_) => {
                let [a, b, c, d, e, f, g] = structure(d)?;
                Ok(Self {
                    joint_iso_ctt: unsigned(a)?,
                    country: unsigned(b)?,
                    country_name: long_unsigned(c)?,
                    identified_organization: unsigned(d)?,
                    dlms_ua: unsigned(e)?,
                    kind: unsigned(f)?,
                    id: unsigned(g)?,
                })
            }
            _ => Err(CosemError::WrongType {
                expected: "octet-string or structure (context name)",
            }),
        }
    }

    /// The octet-string form (versions 1 and later). A name outside the DLMS UA arc cannot be
    /// written this way and falls back to the structure form.
    pub fn to_data(&self) -> Data {
        if !self.is_dlms_ua() {
            return self.to_structure_data();
        }
        let mut b = DLMS_UA_OID_PREFIX.to_vec();
        b.extend_from_slice(&[self.kind, self.id]);
        Data::OctetString(b)
    }

    /// The structure form (version 0).
    pub fn to_structure_data(&self) -> Data {
        Data::Structure(vec![
            Data::Unsigned(self.joint_iso_ctt),
            Data::Unsigned(self.country),
            Data::LongUnsigned(self.country_name),
            Data::Unsigned(self.identified_organization),
            Data::Unsigned(self.dlms_ua),
            Data::Unsigned(self.kind),
            Data::Unsigned(self.id),
        ])
    }
}

/// `xDLMS_context_info`: what was negotiated in the xDLMS InitiateRequest/Response.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XdlmsContextInfo {
    /// The 24-bit conformance block.
    pub conformance: BitString,
    pub max_receive_pdu_size: u16,
    pub max_send_pdu_size: u16,
    pub dlms_version_number: u8,
    pub quality_of_service: i8,
    pub cyphering_info: Vec<u8>,
}

impl XdlmsContextInfo {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [c, rx, tx, v, q, ci] = structure(d)?;
        Ok(Self {
            conformance: bit_string(c)?,
            max_receive_pdu_size: long_unsigned(rx)?,
            max_send_pdu_size: long_unsigned(tx)?,
            dlms_version_number: unsigned(v)?,
            quality_of_service: integer(q)?,
            cyphering_info: octets(ci)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::BitString(self.conformance.clone()),
            Data::LongUnsigned(self.max_receive_pdu_size),
            Data::LongUnsigned(self.max_send_pdu_size),
            Data::Unsigned(self.dlms_version_number),
            Data::Integer(self.quality_of_service),
            Data::OctetString(self.cyphering_info.clone()),
        ])
    }
}

/// `association_status` (enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssociationStatus {
    NonAssociated,
    AssociationPending,
    Associated,
}

impl AssociationStatus {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        Ok(match enumerated(d)? {
            0 => Self::NonAssociated,
            1 => Self::AssociationPending,
            2 => Self::Associated,
            _ => return Err(CosemError::Invalid("association_status not in 0..=2")),
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Enum(*self as u8)
    }
}

/// A `user_list` element and `current_user`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserEntry {
    pub user_id: u8,
    /// A visible-string, kept as bytes.
    pub user_name: Vec<u8>,
}

impl UserEntry {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [id, name] = structure(d)?;
        Ok(Self {
            user_id: unsigned(id)?,
            user_name: match name {
                Data::VisibleString(v) => v.clone(),
                _ => {
                    return Err(CosemError::WrongType {
                        expected: "visible-string",
                    })
                }
            },
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::Unsigned(self.user_id),
            Data::VisibleString(self.user_name.clone()),
        ])
    }
}

cosem_value!(
    AssociatedPartnersId,
    ContextName,
    XdlmsContextInfo,
    AssociationStatus,
    UserEntry
);
