//! Security setup (class 64): the security policy and suite of an association, the system
//! titles, certificates, and the methods that activate a policy and transfer keys.

use super::value::{array_of, array_to, enumerated, octets, structure};
use super::{cosem_value, CosemError};
use crate::axdr::Data;
use crate::types::SystemTitle;

pub const CLASS_ID: u16 = 64;
pub const VERSION: u8 = 1;

pub const LOGICAL_NAME: i8 = 1;
pub const SECURITY_POLICY: i8 = 2;
pub const SECURITY_SUITE: i8 = 3;
pub const CLIENT_SYSTEM_TITLE: i8 = 4;
pub const SERVER_SYSTEM_TITLE: i8 = 5;
pub const CERTIFICATES: i8 = 6;

pub const SECURITY_ACTIVATE: i8 = 1;
/// `key_transfer` (version 1; `global_key_transfer` in version 0, same parameter shape).
pub const KEY_TRANSFER: i8 = 2;
pub const KEY_AGREEMENT: i8 = 3;
pub const GENERATE_KEY_PAIR: i8 = 4;
pub const GENERATE_CERTIFICATE_REQUEST: i8 = 5;
pub const IMPORT_CERTIFICATE: i8 = 6;
pub const EXPORT_CERTIFICATE: i8 = 7;
pub const REMOVE_CERTIFICATE: i8 = 8;

pub(crate) const ATTRIBUTES: &[&str] = &[
    "logical_name",
    "security_policy",
    "security_suite",
    "client_system_title",
    "server_system_title",
    "certificates",
];
pub(crate) const METHODS: &[&str] = &[
    "security_activate",
    "key_transfer",
    "key_agreement",
    "generate_key_pair",
    "generate_certificate_request",
    "import_certificate",
    "export_certificate",
    "remove_certificate",
];

/// `security_policy` (an enum on the wire). Version 1 reads it as bit flags; version 0 as
/// 0 = none, 1 = authenticated, 2 = encrypted, 3 = authenticated and encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SecurityPolicy(pub u8);

impl SecurityPolicy {
    pub const AUTHENTICATED_REQUEST: u8 = 0x04;
    pub const ENCRYPTED_REQUEST: u8 = 0x08;
    pub const DIGITALLY_SIGNED_REQUEST: u8 = 0x10;
    pub const AUTHENTICATED_RESPONSE: u8 = 0x20;
    pub const ENCRYPTED_RESPONSE: u8 = 0x40;
    pub const DIGITALLY_SIGNED_RESPONSE: u8 = 0x80;

    /// Whether a version 1 policy has every bit of `flags` set.
    pub fn has(&self, flags: u8) -> bool {
        self.0 & flags == flags
    }

    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        enumerated(d).map(Self)
    }

    pub fn to_data(&self) -> Data {
        Data::Enum(self.0)
    }
}

/// `key_id` of a key transfer (enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyId {
    GlobalUnicastEncryption,
    GlobalBroadcastEncryption,
    Authentication,
    /// The master key (KEK) that wraps the others.
    Master,
}

impl KeyId {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        Ok(match enumerated(d)? {
            0 => Self::GlobalUnicastEncryption,
            1 => Self::GlobalBroadcastEncryption,
            2 => Self::Authentication,
            3 => Self::Master,
            _ => return Err(CosemError::Invalid("key_id not in 0..=3")),
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Enum(*self as u8)
    }
}

/// One `key_data` element of `key_transfer`: a key wrapped with the master key
/// (AES key wrap, RFC 3394).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyData {
    pub key_id: KeyId,
    pub key_wrapped: Vec<u8>,
}

impl KeyData {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [id, key] = structure(d)?;
        Ok(Self {
            key_id: KeyId::from_data(id)?,
            key_wrapped: octets(key)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            self.key_id.to_data(),
            Data::OctetString(self.key_wrapped.clone()),
        ])
    }
}

/// One `certificate_info` element of `certificates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// 0 server, 1 client, 2 certification authority, 3 other.
    pub certificate_entity: u8,
    /// 0 digital signature, 1 key agreement, 2 TLS, 3 other.
    pub certificate_type: u8,
    pub serial_number: Vec<u8>,
    pub issuer: Vec<u8>,
    pub subject: Vec<u8>,
    pub subject_alt_name: Vec<u8>,
}

impl CertificateInfo {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [e, t, sn, i, s, alt] = structure(d)?;
        Ok(Self {
            certificate_entity: enumerated(e)?,
            certificate_type: enumerated(t)?,
            serial_number: octets(sn)?,
            issuer: octets(i)?,
            subject: octets(s)?,
            subject_alt_name: octets(alt)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::Enum(self.certificate_entity),
            Data::Enum(self.certificate_type),
            Data::OctetString(self.serial_number.clone()),
            Data::OctetString(self.issuer.clone()),
            Data::OctetString(self.subject.clone()),
            Data::OctetString(self.subject_alt_name.clone()),
        ])
    }
}

cosem_value!(SecurityPolicy, KeyId, KeyData, CertificateInfo);

/// `security_suite` (enum): 0 AES-GCM-128, 1 ECDH-ECDSA-AES-GCM-128-SHA-256,
/// 2 ECDH-ECDSA-AES-GCM-256-SHA-384.
pub fn security_suite_from_data(d: &Data) -> Result<u8, CosemError> {
    enumerated(d)
}

/// `client_system_title` / `server_system_title`: octet-strings of 8 bytes.
pub fn system_title_from_data(d: &Data) -> Result<SystemTitle, CosemError> {
    SystemTitle::from_slice(&octets(d)?).ok_or(CosemError::Invalid("system title is not 8 bytes"))
}

pub fn system_title_to_data(t: &SystemTitle) -> Data {
    Data::OctetString(t.0.to_vec())
}

pub fn certificates_from_data(d: &Data) -> Result<Vec<CertificateInfo>, CosemError> {
    array_of(d, CertificateInfo::from_data)
}

pub fn certificates_to_data(certs: &[CertificateInfo]) -> Data {
    array_to(certs, CertificateInfo::to_data)
}

/// The parameter of `security_activate`: the policy to switch to.
pub fn security_activate_params(policy: SecurityPolicy) -> Data {
    policy.to_data()
}

/// The parameter of `key_transfer`: each key already wrapped with the master key.
pub fn key_transfer_params(keys: &[(KeyId, Vec<u8>)]) -> Data {
    array_to(keys, |(id, wrapped)| {
        KeyData {
            key_id: *id,
            key_wrapped: wrapped.clone(),
        }
        .to_data()
    })
}

pub fn key_transfer_from_data(d: &Data) -> Result<Vec<KeyData>, CosemError> {
    array_of(d, KeyData::from_data)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::codec::Codec;

    #[test]
    fn key_transfer_encodes_per_the_blue_book() {
        let wrapped = vec![0x11; 24];
        let d = key_transfer_params(&[
            (KeyId::GlobalUnicastEncryption, wrapped.clone()),
            (KeyId::Authentication, wrapped.clone()),
        ]);
        let mut expect = hex::decode("0102020216000918").unwrap();
        expect.extend_from_slice(&wrapped);
        expect.extend_from_slice(&hex::decode("020216020918").unwrap());
        expect.extend_from_slice(&wrapped);
        assert_eq!(d.to_bytes(), expect);
        let back = key_transfer_from_data(&d).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].key_id, KeyId::Authentication);
        assert!(KeyId::from_data(&Data::Enum(4)).is_err());
    }

    #[test]
    fn policy_and_titles() {
        let p = SecurityPolicy(
            SecurityPolicy::AUTHENTICATED_REQUEST | SecurityPolicy::ENCRYPTED_RESPONSE,
        );
        assert!(p.has(SecurityPolicy::AUTHENTICATED_REQUEST));
        assert!(!p.has(SecurityPolicy::ENCRYPTED_REQUEST));
        assert_eq!(security_activate_params(p), Data::Enum(0x44));
        let t = SystemTitle(*b"ABCDEFGH");
        assert_eq!(system_title_from_data(&system_title_to_data(&t)), Ok(t));
        assert!(system_title_from_data(&Data::OctetString(vec![1; 7])).is_err());
    }
}
