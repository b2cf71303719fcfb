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

/// `key_pair_type` / `certificate_type` of the certificate methods (enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPairType {
    DigitalSignature = 0,
    KeyAgreement = 1,
    Tls = 2,
}

impl KeyPairType {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        Ok(match enumerated(d)? {
            0 => Self::DigitalSignature,
            1 => Self::KeyAgreement,
            2 => Self::Tls,
            _ => return Err(CosemError::Invalid("key_pair_type not in 0..=2")),
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Enum(*self as u8)
    }
}

/// `certificate_entity` (enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateEntity {
    Server = 0,
    Client = 1,
    CertificationAuthority = 2,
    Other = 3,
}

impl CertificateEntity {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        Ok(match enumerated(d)? {
            0 => Self::Server,
            1 => Self::Client,
            2 => Self::CertificationAuthority,
            3 => Self::Other,
            _ => return Err(CosemError::Invalid("certificate_entity not in 0..=3")),
        })
    }
}

/// Which certificate `export_certificate` and `remove_certificate` mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateIdentification {
    /// By what it is for and whose it is (`certificate_identification_type` 0).
    Entity {
        entity: CertificateEntity,
        certificate_type: KeyPairType,
        system_title: Vec<u8>,
    },
    /// By serial number and issuer DER (type 1).
    Serial {
        serial_number: Vec<u8>,
        issuer: Vec<u8>,
    },
}

impl CertificateIdentification {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [kind, options] = structure(d)?;
        Ok(match enumerated(kind)? {
            0 => {
                let [e, t, st] = structure(options)?;
                Self::Entity {
                    entity: CertificateEntity::from_data(e)?,
                    certificate_type: KeyPairType::from_data(t)?,
                    system_title: octets(st)?,
                }
            }
            1 => {
                let [sn, issuer] = structure(options)?;
                Self::Serial {
                    serial_number: octets(sn)?,
                    issuer: octets(issuer)?,
                }
            }
            _ => {
                return Err(CosemError::Invalid(
                    "certificate_identification_type not 0 or 1",
                ))
            }
        })
    }

    pub fn to_data(&self) -> Data {
        match self {
            Self::Entity {
                entity,
                certificate_type,
                system_title,
            } => Data::Structure(vec![
                Data::Enum(0),
                Data::Structure(vec![
                    Data::Enum(*entity as u8),
                    certificate_type.to_data(),
                    Data::OctetString(system_title.clone()),
                ]),
            ]),
            Self::Serial {
                serial_number,
                issuer,
            } => Data::Structure(vec![
                Data::Enum(1),
                Data::Structure(vec![
                    Data::OctetString(serial_number.clone()),
                    Data::OctetString(issuer.clone()),
                ]),
            ]),
        }
    }
}

cosem_value!(KeyPairType, CertificateIdentification);

/// `generate_key_pair` and `generate_certificate_request` take the key pair type; the
/// latter returns the PKCS#10 request (DER) as an octet-string.
pub fn key_pair_params(t: KeyPairType) -> Data {
    t.to_data()
}

/// `import_certificate`: the DER certificate.
pub fn import_certificate_params(der: &[u8]) -> Data {
    Data::OctetString(der.to_vec())
}

/// `export_certificate` returns the DER certificate as an octet-string; `remove_certificate`
/// returns nothing. Both take the identification.
pub fn certificate_identification_params(id: &CertificateIdentification) -> Data {
    id.to_data()
}

/// `key_agreement` (C(2e, 0s)): for each key, the ephemeral public key `X || Y` and its
/// signature `r || s`, concatenated; the answer has the same shape from the server.
pub fn key_agreement_params(keys: &[(KeyId, Vec<u8>)]) -> Data {
    key_transfer_params(keys)
}

impl CertificateInfo {
    /// The `certificates` entry for a parsed certificate.
    pub fn for_certificate(
        entity: CertificateEntity,
        certificate_type: KeyPairType,
        cert: &crate::security::x509::Certificate,
    ) -> Self {
        Self {
            certificate_entity: entity as u8,
            certificate_type: certificate_type as u8,
            serial_number: cert.serial_number().to_vec(),
            issuer: cert.issuer_der(),
            subject: cert.subject_der(),
            subject_alt_name: Vec::new(),
        }
    }
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

    #[test]
    fn certificate_methods_encode_per_the_blue_book() {
        assert_eq!(
            key_pair_params(KeyPairType::KeyAgreement).to_bytes(),
            [0x16, 0x01]
        );
        assert_eq!(
            import_certificate_params(&[0x30, 0x00]).to_bytes(),
            [0x09, 0x02, 0x30, 0x00]
        );
        let by_entity = CertificateIdentification::Entity {
            entity: CertificateEntity::Server,
            certificate_type: KeyPairType::DigitalSignature,
            system_title: b"MMM\x00\x00\xBC\x61\x4E".to_vec(),
        };
        let bytes = certificate_identification_params(&by_entity).to_bytes();
        assert_eq!(
            bytes,
            hex::decode("0202160002031600160009084D4D4D0000BC614E").unwrap()
        );
        let by_serial = CertificateIdentification::Serial {
            serial_number: vec![1, 2],
            issuer: vec![0x30, 0x00],
        };
        for id in [by_entity, by_serial] {
            let d = Data::decode_exact(&id.to_data().to_bytes()).unwrap();
            assert_eq!(CertificateIdentification::from_data(&d).unwrap(), id);
        }
        assert!(CertificateIdentification::from_data(&Data::Structure(vec![
            Data::Enum(2),
            Data::Structure(vec![])
        ]))
        .is_err());
        assert!(KeyPairType::from_data(&Data::Enum(3)).is_err());
    }
}
