//! AARQ, the association request a client opens every DLMS association with.

use super::{
    ber, context, decode_acse_requirements, decode_application_context,
    decode_authentication_value, decode_explicit_octets, decode_mechanism,
    encode_acse_requirements, encode_application_context, encode_authentication_value,
    encode_explicit_octets, encode_mechanism, invalid, Fields, AARQ_APDU, USER_INFORMATION,
};
use crate::codec::{Codec, DecodeError, Reader};
use crate::types::{ApplicationContext, Mechanism};

/// AARQ component tag numbers (ISO/IEC 8650-1), in SEQUENCE order.
const APPLICATION_CONTEXT_NAME: u8 = 1;
const CALLING_AP_TITLE: u8 = 6;
const CALLING_AE_QUALIFIER: u8 = 7;
const SENDER_ACSE_REQUIREMENTS: u8 = 10;
const MECHANISM_NAME: u8 = 11;
const CALLING_AUTHENTICATION_VALUE: u8 = 12;

/// `AARQ-apdu`, restricted to the fields DLMS uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aarq {
    pub application_context: ApplicationContext,
    /// `calling-AP-title [6]`: the client's system title (contents of the OCTET STRING).
    pub calling_ap_title: Option<Vec<u8>>,
    /// `calling-AE-qualifier [7]`: the client's signing certificate under HLS-ECDSA, kept as
    /// the undecoded contents of its OCTET STRING.
    pub calling_ae_qualifier: Option<Vec<u8>>,
    /// `sender-acse-requirements [10]` with the `authentication` bit set.
    pub sender_acse_requirements: bool,
    pub mechanism: Option<Mechanism>,
    /// `calling-authentication-value [12]`: the LLS password or the HLS client challenge.
    pub calling_authentication_value: Option<Vec<u8>>,
    /// `user-information [30]`: the encoded xDLMS InitiateRequest (plain or ciphered).
    pub user_information: Option<Vec<u8>>,
}

impl Aarq {
    /// An AARQ with only the mandatory application context.
    pub fn new(application_context: ApplicationContext) -> Self {
        Self {
            application_context,
            calling_ap_title: None,
            calling_ae_qualifier: None,
            sender_acse_requirements: false,
            mechanism: None,
            calling_authentication_value: None,
            user_information: None,
        }
    }
}

impl Codec for Aarq {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        encode_application_context(
            &mut body,
            context(APPLICATION_CONTEXT_NAME, true),
            self.application_context,
        );
        if let Some(title) = &self.calling_ap_title {
            encode_explicit_octets(&mut body, context(CALLING_AP_TITLE, true), title);
        }
        if let Some(q) = &self.calling_ae_qualifier {
            encode_explicit_octets(&mut body, context(CALLING_AE_QUALIFIER, true), q);
        }
        if self.sender_acse_requirements {
            encode_acse_requirements(&mut body, context(SENDER_ACSE_REQUIREMENTS, false));
        }
        if let Some(m) = self.mechanism {
            encode_mechanism(&mut body, context(MECHANISM_NAME, false), m);
        }
        if let Some(v) = &self.calling_authentication_value {
            encode_authentication_value(&mut body, context(CALLING_AUTHENTICATION_VALUE, true), v);
        }
        if let Some(ui) = &self.user_information {
            encode_explicit_octets(&mut body, context(USER_INFORMATION, true), ui);
        }
        ber::put_tlv(out, AARQ_APDU, &body);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        const WHAT: &str = "AARQ";
        let mut fields = Fields::open(r, AARQ_APDU, WHAT)?;
        let mut application_context = None;
        let mut aarq = Aarq::new(ApplicationContext::LogicalName);
        while let Some(tlv) = fields.next()? {
            let Ok(number) = u8::try_from(tlv.tag.number) else {
                ber::check_well_formed(&tlv, WHAT)?;
                continue;
            };
            match number {
                APPLICATION_CONTEXT_NAME => {
                    application_context = Some(decode_application_context(&tlv)?);
                }
                CALLING_AP_TITLE => {
                    aarq.calling_ap_title = Some(decode_explicit_octets(&tlv, "calling-AP-title")?);
                }
                CALLING_AE_QUALIFIER => {
                    aarq.calling_ae_qualifier =
                        Some(decode_explicit_octets(&tlv, "calling-AE-qualifier")?);
                }
                SENDER_ACSE_REQUIREMENTS => {
                    aarq.sender_acse_requirements =
                        decode_acse_requirements(&tlv, "sender-acse-requirements")?;
                }
                MECHANISM_NAME => aarq.mechanism = Some(decode_mechanism(&tlv)?),
                CALLING_AUTHENTICATION_VALUE => {
                    aarq.calling_authentication_value = Some(decode_authentication_value(
                        &tlv,
                        "calling-authentication-value",
                    )?);
                }
                USER_INFORMATION => {
                    aarq.user_information = Some(decode_explicit_octets(&tlv, "user-information")?);
                }
                // protocol-version, called-*, calling invocation identifiers,
                // application-context-name-list, implementation-information.
                _ => ber::check_well_formed(&tlv, WHAT)?,
            }
        }
        aarq.application_context =
            application_context.ok_or(invalid(WHAT, "application-context-name missing"))?;
        Ok(aarq)
    }
}
