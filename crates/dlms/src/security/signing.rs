//! Suites 1 and 2 end-to-end protection (Green Book 9.2.7.2.4.7, 9.5): the `general-signing`
//! APDU (tag 0xDF) and `general-ciphering` whose key is agreed by ECDH (key-info agreed-key).
//!
//! ```text
//! General-Signing ::= SEQUENCE {
//!   transaction-id OCTET STRING, originator-system-title OCTET STRING,
//!   recipient-system-title OCTET STRING, date-time OCTET STRING,
//!   other-information OCTET STRING, content OCTET STRING, signature OCTET STRING }
//! ```
//!
//! The signature covers every field from transaction-id to content, as encoded, except the
//! length of content (the layout Gurux signs and verifies).
//!
//! An agreed key's `key-parameters` is one byte, the scheme ([`KeyAgreementScheme`]):
//! - C(1e, 1s) One-Pass Diffie-Hellman: `key-ciphered-data` = the originator's ephemeral public
//!   key `X || Y` followed by the originator's ECDSA signature of that key `r || s`; the
//!   recipient combines it with its static key agreement key.
//! - C(0e, 2s) Static Unified Model: `key-ciphered-data` is empty; both static key agreement
//!   keys, and the transaction id in the KDF.

use super::ecc::{one_pass_accept, static_unified, EcPrivateKey, EcPublicKey, KeyAgreementScheme};
use super::gcm::{open, seal, SecurityHeader};
use super::general::{GeneralCiphering, KeyInfo};
use super::{SecurityControl, SecurityError};
use crate::codec::{put_octets, Codec, DecodeError, Reader};
use crate::types::SystemTitle;

/// The `general-signing` tag.
pub const GENERAL_SIGNING: u8 = 0xDF;

/// A decoded `general-signing` APDU. `content` is an APDU (plain or ciphered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralSigning {
    pub transaction_id: Vec<u8>,
    pub originator_system_title: Vec<u8>,
    pub recipient_system_title: Vec<u8>,
    pub date_time: Vec<u8>,
    pub other_information: Vec<u8>,
    pub content: Vec<u8>,
    pub signature: Vec<u8>,
}

impl GeneralSigning {
    /// What the signature covers: the five header fields as A-XDR `length || value`, then
    /// the content without its length.
    pub fn signed_data(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.content.len() + 64);
        for field in [
            &self.transaction_id,
            &self.originator_system_title,
            &self.recipient_system_title,
            &self.date_time,
            &self.other_information,
        ] {
            put_octets(&mut out, field);
        }
        out.extend_from_slice(&self.content);
        out
    }

    /// Builds and signs an APDU from us (`originator`) carrying `content`.
    pub fn sign(
        key: &EcPrivateKey,
        transaction_id: &[u8],
        originator: &SystemTitle,
        recipient: Option<&SystemTitle>,
        content: &[u8],
    ) -> Self {
        let mut apdu = Self {
            transaction_id: transaction_id.to_vec(),
            originator_system_title: originator.0.to_vec(),
            recipient_system_title: recipient.map(|r| r.0.to_vec()).unwrap_or_default(),
            date_time: Vec::new(),
            other_information: Vec::new(),
            content: content.to_vec(),
            signature: Vec::new(),
        };
        apdu.signature = key.sign(&apdu.signed_data());
        apdu
    }

    /// The originator as a system title (8 bytes).
    pub fn originator(&self) -> Result<SystemTitle, SecurityError> {
        SystemTitle::from_slice(&self.originator_system_title).ok_or(
            DecodeError::Invalid {
                what: "originator-system-title",
                why: "must be 8 bytes",
            }
            .into(),
        )
    }

    /// Checks the signature with the originator's public signing key (from its certificate)
    /// and returns the content.
    pub fn verify(&self, originator_key: &EcPublicKey) -> Result<&[u8], SecurityError> {
        originator_key.verify(&self.signed_data(), &self.signature)?;
        Ok(&self.content)
    }
}

impl Codec for GeneralSigning {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(GENERAL_SIGNING);
        for field in [
            &self.transaction_id,
            &self.originator_system_title,
            &self.recipient_system_title,
            &self.date_time,
            &self.other_information,
            &self.content,
            &self.signature,
        ] {
            put_octets(out, field);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8("general-signing tag")?;
        if tag != GENERAL_SIGNING {
            return Err(DecodeError::UnknownTag {
                what: "general-signing",
                tag,
            });
        }
        Ok(Self {
            transaction_id: r.octets("transaction-id")?.to_vec(),
            originator_system_title: r.octets("originator-system-title")?.to_vec(),
            recipient_system_title: r.octets("recipient-system-title")?.to_vec(),
            date_time: r.octets("date-time")?.to_vec(),
            other_information: r.octets("other-information")?.to_vec(),
            content: r.octets("content")?.to_vec(),
            signature: r.octets("signature")?.to_vec(),
        })
    }
}

/// Our side of an agreed-key exchange.
#[derive(Debug, Clone, Copy)]
pub struct AgreementKeys<'a> {
    /// Our static key agreement key.
    pub own_agreement_key: &'a EcPrivateKey,
    /// The peer's static key agreement key (C(0e, 2s) needs it; C(1e, 1s) does not).
    pub peer_agreement_key: Option<&'a EcPublicKey>,
    /// The originator's public signing key, to check the signature of its ephemeral key
    /// (C(1e, 1s)). Required: an unsigned ephemeral key would let anyone pick the key.
    pub originator_signing_key: Option<&'a EcPublicKey>,
}

/// Seals `plain` in a `general-ciphering` APDU whose key is agreed with the recipient.
///
/// `scheme` is C(1e, 1s) (a fresh ephemeral key, signed with `signing_key`, against
/// `recipient_agreement_key`) or C(0e, 2s) (`own_agreement_key` against
/// `recipient_agreement_key`, fresh through `transaction_id`). `ak` is the authentication
/// key of the suite (16 or 32 bytes) when `sc` asks for authentication.
#[allow(clippy::too_many_arguments)]
pub fn seal_agreed(
    scheme: KeyAgreementScheme,
    sc: SecurityControl,
    ic: u32,
    transaction_id: &[u8],
    originator: &SystemTitle,
    recipient: &SystemTitle,
    recipient_agreement_key: &EcPublicKey,
    own_agreement_key: &EcPrivateKey,
    signing_key: &EcPrivateKey,
    ak: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, SecurityError> {
    let suite = recipient_agreement_key.suite();
    if sc.suite() != suite.id()
        || signing_key.suite() != suite
        || own_agreement_key.suite() != suite
    {
        return Err(SecurityError::CurveMismatch);
    }
    let (key, key_ciphered_data) = match scheme {
        KeyAgreementScheme::OnePassDiffieHellman => {
            let (ephemeral, key) =
                super::ecc::one_pass_originate(recipient_agreement_key, originator, recipient)?;
            let mut data = ephemeral.public_key().to_raw();
            let signature = signing_key.sign(&data);
            data.extend_from_slice(&signature);
            (key, data)
        }
        KeyAgreementScheme::StaticUnified => (
            static_unified(
                own_agreement_key,
                recipient_agreement_key,
                originator,
                transaction_id,
                recipient,
            )?,
            Vec::new(),
        ),
        KeyAgreementScheme::EphemeralUnified => return Err(SecurityError::UnsupportedKeyInfo),
    };
    let mut apdu = GeneralCiphering {
        transaction_id: transaction_id.to_vec(),
        originator_system_title: originator.0.to_vec(),
        recipient_system_title: recipient.0.to_vec(),
        date_time: Vec::new(),
        other_information: Vec::new(),
        key_info: Some(KeyInfo::AgreedKey {
            key_parameters: vec![scheme as u8],
            key_ciphered_data,
        }),
        ciphered_content: Vec::new(),
    };
    let header = apdu.authenticated_header();
    apdu.ciphered_content = seal(sc, originator, ic, key.as_bytes(), ak, &header, plain)?;
    Ok(apdu.to_bytes())
}

/// What [`open_agreed`] recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedAgreed {
    pub apdu: Vec<u8>,
    pub originator: SystemTitle,
    pub invocation_counter: u32,
    pub scheme: KeyAgreementScheme,
    pub sc: SecurityControl,
}

/// Opens a `general-ciphering` APDU with an agreed key addressed to `own` (the recipient).
/// The replay check on the returned invocation counter is the caller's.
pub fn open_agreed(
    bytes: &[u8],
    own: &SystemTitle,
    keys: AgreementKeys<'_>,
    ak: &[u8],
) -> Result<OpenedAgreed, SecurityError> {
    let mut r = Reader::new(bytes);
    let (gc, aad_header) = GeneralCiphering::decode_with_header(&mut r)?;
    r.finish("general-ciphering")?;
    let Some(KeyInfo::AgreedKey {
        key_parameters,
        key_ciphered_data,
    }) = &gc.key_info
    else {
        return Err(SecurityError::UnsupportedKeyInfo);
    };
    let scheme = match key_parameters.as_slice() {
        [id] => KeyAgreementScheme::from_id(*id).ok_or(SecurityError::UnsupportedKeyInfo)?,
        _ => {
            return Err(DecodeError::Invalid {
                what: "key-parameters",
                why: "must be one byte",
            }
            .into())
        }
    };
    let originator =
        SystemTitle::from_slice(&gc.originator_system_title).ok_or(DecodeError::Invalid {
            what: "originator-system-title",
            why: "must be 8 bytes",
        })?;
    if gc.recipient_system_title != own.0 {
        let recipient =
            SystemTitle::from_slice(&gc.recipient_system_title).unwrap_or(SystemTitle([0; 8]));
        return Err(SecurityError::SystemTitleMismatch(recipient));
    }
    let header = SecurityHeader::parse(&gc.ciphered_content)?;
    let suite = keys.own_agreement_key.suite();
    if header.sc.suite() != suite.id() {
        return Err(SecurityError::UnsupportedSuite(header.sc.suite()));
    }
    let key = match scheme {
        KeyAgreementScheme::OnePassDiffieHellman => {
            let (point, signature) = key_ciphered_data
                .split_at_checked(suite.point_len())
                .ok_or(DecodeError::Invalid {
                    what: "key-ciphered-data",
                    why: "shorter than an ephemeral public key",
                })?;
            let signer = keys
                .originator_signing_key
                .ok_or(SecurityError::InvalidKey(
                    "the originator's signing key is needed",
                ))?;
            signer.verify(point, signature)?;
            let ephemeral = EcPublicKey::from_raw(suite, point)?;
            one_pass_accept(keys.own_agreement_key, &ephemeral, &originator, own)?
        }
        KeyAgreementScheme::StaticUnified => {
            if !key_ciphered_data.is_empty() {
                return Err(DecodeError::Invalid {
                    what: "key-ciphered-data",
                    why: "must be empty for the static unified model",
                }
                .into());
            }
            let peer = keys.peer_agreement_key.ok_or(SecurityError::InvalidKey(
                "the originator's key agreement key is needed",
            ))?;
            static_unified(
                keys.own_agreement_key,
                peer,
                &originator,
                &gc.transaction_id,
                own,
            )?
        }
        KeyAgreementScheme::EphemeralUnified => return Err(SecurityError::UnsupportedKeyInfo),
    };
    let apdu = open(&header, &originator, key.as_bytes(), ak, aad_header)?;
    Ok(OpenedAgreed {
        apdu,
        originator,
        invocation_counter: header.ic,
        scheme,
        sc: header.sc,
    })
}
