//! The `general-ciphering` APDU (Green Book 9.5, tag 0xDD): ciphered content plus the
//! transaction, addressing and key information a third party would need.
//!
//! ```text
//! General-Ciphering ::= SEQUENCE {
//!   transaction-id OCTET STRING, originator-system-title OCTET STRING,
//!   recipient-system-title OCTET STRING, date-time OCTET STRING,
//!   other-information OCTET STRING, key-info Key-Info OPTIONAL,
//!   ciphered-content OCTET STRING }
//! Key-Info ::= CHOICE { identified-key [0] Key-Id, wrapped-key [1] SEQUENCE { kek-id, key-ciphered-data },
//!   agreed-key [2] SEQUENCE { key-parameters OCTET STRING, key-ciphered-data OCTET STRING } }
//! ```
//!
//! In A-XDR an OPTIONAL is a presence byte (0 or 1), a CHOICE its tag byte, an ENUMERATED one
//! byte.

use super::tags::GENERAL_CIPHERING;
use crate::codec::{put_octets, Codec, DecodeError, Reader};

/// `Key-Id` of an identified key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyId {
    GlobalUnicastEncryptionKey,
    GlobalBroadcastEncryptionKey,
}

impl KeyId {
    const GLOBAL_UNICAST_ENCRYPTION_KEY: u8 = 0x00;
    const GLOBAL_BROADCAST_ENCRYPTION_KEY: u8 = 0x01;
}

/// How the encryption key of a `general-ciphering` APDU is identified or transported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyInfo {
    IdentifiedKey(KeyId),
    /// The key, wrapped (RFC 3394) under the KEK named by `kek_id` (0 = master key).
    WrappedKey {
        kek_id: u8,
        key_ciphered_data: Vec<u8>,
    },
    /// Key agreement (suites 1 and 2 only).
    AgreedKey {
        key_parameters: Vec<u8>,
        key_ciphered_data: Vec<u8>,
    },
}

impl KeyInfo {
    const IDENTIFIED_KEY: u8 = 0x00;
    const WRAPPED_KEY: u8 = 0x01;
    const AGREED_KEY: u8 = 0x02;
}

/// A decoded `general-ciphering` APDU. `ciphered_content` is `SC || IC || ... || T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralCiphering {
    pub transaction_id: Vec<u8>,
    pub originator_system_title: Vec<u8>,
    pub recipient_system_title: Vec<u8>,
    pub date_time: Vec<u8>,
    pub other_information: Vec<u8>,
    pub key_info: Option<KeyInfo>,
    pub ciphered_content: Vec<u8>,
}

impl GeneralCiphering {
    /// The header fields the tag authenticates: each of the first five fields as A-XDR
    /// `length || value` (Green Book, general-ciphering AAD).
    pub fn authenticated_header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for field in [
            &self.transaction_id,
            &self.originator_system_title,
            &self.recipient_system_title,
            &self.date_time,
            &self.other_information,
        ] {
            put_octets(&mut out, field);
        }
        out
    }

    /// Decodes the APDU and also returns the received bytes of the authenticated header, which
    /// is what the sender authenticated even if it used a non-minimal length form.
    pub(crate) fn decode_with_header<'a>(
        r: &mut Reader<'a>,
    ) -> Result<(Self, &'a [u8]), DecodeError> {
        let tag = r.u8("general-ciphering tag")?;
        if tag != GENERAL_CIPHERING {
            return Err(DecodeError::UnknownTag {
                what: "general-ciphering",
                tag,
            });
        }
        let header_start = r.rest();
        let before = r.remaining();
        let transaction_id = r.octets("transaction-id")?.to_vec();
        let originator_system_title = r.octets("originator-system-title")?.to_vec();
        let recipient_system_title = r.octets("recipient-system-title")?.to_vec();
        let date_time = r.octets("date-time")?.to_vec();
        let other_information = r.octets("other-information")?.to_vec();
        let header = header_start
            .get(..before.saturating_sub(r.remaining()))
            .unwrap_or_default();
        let key_info = match r.u8("key-info presence")? {
            0 => None,
            1 => Some(decode_key_info(r)?),
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "key-info presence",
                    tag,
                })
            }
        };
        let ciphered_content = r.octets("ciphered-content")?.to_vec();
        Ok((
            Self {
                transaction_id,
                originator_system_title,
                recipient_system_title,
                date_time,
                other_information,
                key_info,
                ciphered_content,
            },
            header,
        ))
    }
}

fn decode_key_info(r: &mut Reader<'_>) -> Result<KeyInfo, DecodeError> {
    Ok(match r.u8("key-info")? {
        KeyInfo::IDENTIFIED_KEY => KeyInfo::IdentifiedKey(match r.u8("key-id")? {
            KeyId::GLOBAL_UNICAST_ENCRYPTION_KEY => KeyId::GlobalUnicastEncryptionKey,
            KeyId::GLOBAL_BROADCAST_ENCRYPTION_KEY => KeyId::GlobalBroadcastEncryptionKey,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "key-id",
                    tag,
                })
            }
        }),
        KeyInfo::WRAPPED_KEY => KeyInfo::WrappedKey {
            kek_id: r.u8("kek-id")?,
            key_ciphered_data: r.octets("key-ciphered-data")?.to_vec(),
        },
        KeyInfo::AGREED_KEY => KeyInfo::AgreedKey {
            key_parameters: r.octets("key-parameters")?.to_vec(),
            key_ciphered_data: r.octets("key-ciphered-data")?.to_vec(),
        },
        tag => {
            return Err(DecodeError::UnknownTag {
                what: "key-info",
                tag,
            })
        }
    })
}

impl Codec for GeneralCiphering {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(GENERAL_CIPHERING);
        out.extend_from_slice(&self.authenticated_header());
        match &self.key_info {
            None => out.push(0),
            Some(info) => {
                out.push(1);
                match info {
                    KeyInfo::IdentifiedKey(id) => {
                        out.push(KeyInfo::IDENTIFIED_KEY);
                        out.push(match id {
                            KeyId::GlobalUnicastEncryptionKey => {
                                KeyId::GLOBAL_UNICAST_ENCRYPTION_KEY
                            }
                            KeyId::GlobalBroadcastEncryptionKey => {
                                KeyId::GLOBAL_BROADCAST_ENCRYPTION_KEY
                            }
                        });
                    }
                    KeyInfo::WrappedKey {
                        kek_id,
                        key_ciphered_data,
                    } => {
                        out.push(KeyInfo::WRAPPED_KEY);
                        out.push(*kek_id);
                        put_octets(out, key_ciphered_data);
                    }
                    KeyInfo::AgreedKey {
                        key_parameters,
                        key_ciphered_data,
                    } => {
                        out.push(KeyInfo::AGREED_KEY);
                        put_octets(out, key_parameters);
                        put_octets(out, key_ciphered_data);
                    }
                }
            }
        }
        put_octets(out, &self.ciphered_content);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::decode_with_header(r).map(|(v, _)| v)
    }
}
