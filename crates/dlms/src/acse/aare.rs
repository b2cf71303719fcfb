//! AARE, the server's answer to an AARQ: the result, why, and (under HLS) its challenge.

use std::fmt;

use super::{
    ber, context, decode_acse_requirements, decode_application_context,
    decode_authentication_value, decode_explicit_octets, decode_mechanism,
    encode_acse_requirements, encode_application_context, encode_authentication_value,
    encode_explicit_octets, encode_mechanism, expect_form, invalid, Fields, AARE_APDU,
    USER_INFORMATION,
};
use crate::codec::{Codec, DecodeError, Reader};
use crate::types::{ApplicationContext, Mechanism};

/// AARE component tag numbers (ISO/IEC 8650-1), in SEQUENCE order.
const APPLICATION_CONTEXT_NAME: u8 = 1;
const RESULT: u8 = 2;
const RESULT_SOURCE_DIAGNOSTIC: u8 = 3;
const RESPONDING_AP_TITLE: u8 = 4;
const RESPONDER_ACSE_REQUIREMENTS: u8 = 8;
const MECHANISM_NAME: u8 = 9;
const RESPONDING_AUTHENTICATION_VALUE: u8 = 10;

/// `Associate-source-diagnostic ::= CHOICE { acse-service-user [1], acse-service-provider [2] }`.
const ACSE_SERVICE_USER: u8 = 1;
const ACSE_SERVICE_PROVIDER: u8 = 2;

/// `Associate-result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssociationResult {
    Accepted,
    RejectedPermanent,
    RejectedTransient,
}

impl AssociationResult {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Accepted,
            1 => Self::RejectedPermanent,
            2 => Self::RejectedTransient,
            _ => return None,
        })
    }

    pub fn to_u8(self) -> u8 {
        match self {
            Self::Accepted => 0,
            Self::RejectedPermanent => 1,
            Self::RejectedTransient => 2,
        }
    }

    /// The standard's name, kebab-case.
    pub fn name(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::RejectedPermanent => "rejected-permanent",
            Self::RejectedTransient => "rejected-transient",
        }
    }
}

impl fmt::Display for AssociationResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `result-source-diagnostic`: who refused (or accepted) and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diagnostic {
    ServiceUser(AcseServiceUser),
    /// `null(0)`, `no-reason-given(1)`, `no-common-acse-version(2)`, kept as sent.
    ServiceProvider(u8),
}

impl Diagnostic {
    /// Whether the server refused the credentials (as opposed to the context or the mechanism).
    pub fn is_authentication_failure(&self) -> bool {
        matches!(
            self,
            Diagnostic::ServiceUser(
                AcseServiceUser::AuthenticationFailure | AcseServiceUser::AuthenticationRequired
            )
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ServiceUser(u) => write!(f, "acse-service-user {}", u.name()),
            Self::ServiceProvider(0) => f.write_str("acse-service-provider null"),
            Self::ServiceProvider(1) => f.write_str("acse-service-provider no-reason-given"),
            Self::ServiceProvider(2) => f.write_str("acse-service-provider no-common-acse-version"),
            Self::ServiceProvider(v) => write!(f, "acse-service-provider {v}"),
        }
    }
}

/// `acse-service-user` diagnostic values (ISO/IEC 8650-1; `authentication-*` as amended for
/// DLMS). Values the standard does not name are kept in `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcseServiceUser {
    Null,
    NoReasonGiven,
    ApplicationContextNameNotSupported,
    CallingApTitleNotRecognized,
    CallingApInvocationIdentifierNotRecognized,
    CallingAeQualifierNotRecognized,
    CallingAeInvocationIdentifierNotRecognized,
    CalledApTitleNotRecognized,
    CalledApInvocationIdentifierNotRecognized,
    CalledAeQualifierNotRecognized,
    CalledAeInvocationIdentifierNotRecognized,
    AuthenticationMechanismNameNotRecognised,
    AuthenticationMechanismNameRequired,
    AuthenticationFailure,
    AuthenticationRequired,
    /// A value the standard does not define. `from_u8` never puts a defined value here.
    Other(u8),
}

impl AcseServiceUser {
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Null,
            1 => Self::NoReasonGiven,
            2 => Self::ApplicationContextNameNotSupported,
            3 => Self::CallingApTitleNotRecognized,
            4 => Self::CallingApInvocationIdentifierNotRecognized,
            5 => Self::CallingAeQualifierNotRecognized,
            6 => Self::CallingAeInvocationIdentifierNotRecognized,
            7 => Self::CalledApTitleNotRecognized,
            8 => Self::CalledApInvocationIdentifierNotRecognized,
            9 => Self::CalledAeQualifierNotRecognized,
            10 => Self::CalledAeInvocationIdentifierNotRecognized,
            11 => Self::AuthenticationMechanismNameNotRecognised,
            12 => Self::AuthenticationMechanismNameRequired,
            13 => Self::AuthenticationFailure,
            14 => Self::AuthenticationRequired,
            other => Self::Other(other),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            Self::Null => 0,
            Self::NoReasonGiven => 1,
            Self::ApplicationContextNameNotSupported => 2,
            Self::CallingApTitleNotRecognized => 3,
            Self::CallingApInvocationIdentifierNotRecognized => 4,
            Self::CallingAeQualifierNotRecognized => 5,
            Self::CallingAeInvocationIdentifierNotRecognized => 6,
            Self::CalledApTitleNotRecognized => 7,
            Self::CalledApInvocationIdentifierNotRecognized => 8,
            Self::CalledAeQualifierNotRecognized => 9,
            Self::CalledAeInvocationIdentifierNotRecognized => 10,
            Self::AuthenticationMechanismNameNotRecognised => 11,
            Self::AuthenticationMechanismNameRequired => 12,
            Self::AuthenticationFailure => 13,
            Self::AuthenticationRequired => 14,
            Self::Other(v) => v,
        }
    }

    /// The standard's name, kebab-case (`"other"` for undefined values).
    pub fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::NoReasonGiven => "no-reason-given",
            Self::ApplicationContextNameNotSupported => "application-context-name-not-supported",
            Self::CallingApTitleNotRecognized => "calling-ap-title-not-recognized",
            Self::CallingApInvocationIdentifierNotRecognized => {
                "calling-ap-invocation-identifier-not-recognized"
            }
            Self::CallingAeQualifierNotRecognized => "calling-ae-qualifier-not-recognized",
            Self::CallingAeInvocationIdentifierNotRecognized => {
                "calling-ae-invocation-identifier-not-recognized"
            }
            Self::CalledApTitleNotRecognized => "called-ap-title-not-recognized",
            Self::CalledApInvocationIdentifierNotRecognized => {
                "called-ap-invocation-identifier-not-recognized"
            }
            Self::CalledAeQualifierNotRecognized => "called-ae-qualifier-not-recognized",
            Self::CalledAeInvocationIdentifierNotRecognized => {
                "called-ae-invocation-identifier-not-recognized"
            }
            Self::AuthenticationMechanismNameNotRecognised => {
                "authentication-mechanism-name-not-recognised"
            }
            Self::AuthenticationMechanismNameRequired => "authentication-mechanism-name-required",
            Self::AuthenticationFailure => "authentication-failure",
            Self::AuthenticationRequired => "authentication-required",
            Self::Other(_) => "other",
        }
    }
}

impl fmt::Display for AcseServiceUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(v) => write!(f, "other({v})"),
            known => f.write_str(known.name()),
        }
    }
}

/// `AARE-apdu`, restricted to the fields DLMS uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aare {
    pub application_context: ApplicationContext,
    pub result: AssociationResult,
    pub diagnostic: Diagnostic,
    /// `responding-AP-title [4]`: the server's system title (contents of the OCTET STRING).
    pub responding_ap_title: Option<Vec<u8>>,
    /// `responder-acse-requirements [8]` with the `authentication` bit set.
    pub responder_acse_requirements: bool,
    pub mechanism: Option<Mechanism>,
    /// `responding-authentication-value [10]`: the HLS server challenge.
    pub responding_authentication_value: Option<Vec<u8>>,
    /// `user-information [30]`: the encoded xDLMS InitiateResponse or ConfirmedServiceError.
    pub user_information: Option<Vec<u8>>,
}

/// `result [2]`: EXPLICIT INTEGER.
fn decode_result(tlv: &ber::Tlv<'_>) -> Result<AssociationResult, DecodeError> {
    const WHAT: &str = "result";
    expect_form(tlv, true, WHAT)?;
    let v = ber::small_uint(ber::explicit(tlv.value, ber::INTEGER, WHAT)?, WHAT)?;
    AssociationResult::from_u8(v).ok_or(invalid(WHAT, "not accepted/rejected-*"))
}

/// `result-source-diagnostic [3]`: EXPLICIT CHOICE of two EXPLICIT INTEGERs.
fn decode_diagnostic(tlv: &ber::Tlv<'_>) -> Result<Diagnostic, DecodeError> {
    const WHAT: &str = "result-source-diagnostic";
    expect_form(tlv, true, WHAT)?;
    let mut r = Reader::new(tlv.value);
    let choice = ber::read_tlv(&mut r, WHAT)?;
    r.finish(WHAT)?;
    let integer = |c: &ber::Tlv<'_>| -> Result<u8, DecodeError> {
        expect_form(c, true, WHAT)?;
        ber::small_uint(ber::explicit(c.value, ber::INTEGER, WHAT)?, WHAT)
    };
    if choice.tag.is(context(ACSE_SERVICE_USER, true)) {
        Ok(Diagnostic::ServiceUser(AcseServiceUser::from_u8(integer(
            &choice,
        )?)))
    } else if choice.tag.is(context(ACSE_SERVICE_PROVIDER, true)) {
        Ok(Diagnostic::ServiceProvider(integer(&choice)?))
    } else {
        Err(DecodeError::UnknownTag {
            what: WHAT,
            tag: choice.tag.first,
        })
    }
}

fn encode_diagnostic(out: &mut Vec<u8>, d: Diagnostic) {
    let (choice, v) = match d {
        Diagnostic::ServiceUser(u) => (ACSE_SERVICE_USER, u.to_u8()),
        Diagnostic::ServiceProvider(v) => (ACSE_SERVICE_PROVIDER, v),
    };
    let mut inner = Vec::with_capacity(6);
    ber::put_explicit(
        &mut inner,
        context(choice, true),
        ber::INTEGER,
        &ber::small_uint_value(v),
    );
    ber::put_tlv(out, context(RESULT_SOURCE_DIAGNOSTIC, true), &inner);
}

impl Codec for Aare {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        encode_application_context(
            &mut body,
            context(APPLICATION_CONTEXT_NAME, true),
            self.application_context,
        );
        ber::put_explicit(
            &mut body,
            context(RESULT, true),
            ber::INTEGER,
            &ber::small_uint_value(self.result.to_u8()),
        );
        encode_diagnostic(&mut body, self.diagnostic);
        if let Some(title) = &self.responding_ap_title {
            encode_explicit_octets(&mut body, context(RESPONDING_AP_TITLE, true), title);
        }
        if self.responder_acse_requirements {
            encode_acse_requirements(&mut body, context(RESPONDER_ACSE_REQUIREMENTS, false));
        }
        if let Some(m) = self.mechanism {
            encode_mechanism(&mut body, context(MECHANISM_NAME, false), m);
        }
        if let Some(v) = &self.responding_authentication_value {
            encode_authentication_value(
                &mut body,
                context(RESPONDING_AUTHENTICATION_VALUE, true),
                v,
            );
        }
        if let Some(ui) = &self.user_information {
            encode_explicit_octets(&mut body, context(USER_INFORMATION, true), ui);
        }
        ber::put_tlv(out, AARE_APDU, &body);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        const WHAT: &str = "AARE";
        let mut fields = Fields::open(r, AARE_APDU, WHAT)?;
        let (mut application_context, mut result, mut diagnostic) = (None, None, None);
        let mut responding_ap_title = None;
        let mut responder_acse_requirements = false;
        let mut mechanism = None;
        let mut responding_authentication_value = None;
        let mut user_information = None;
        while let Some(tlv) = fields.next()? {
            let Ok(number) = u8::try_from(tlv.tag.number) else {
                ber::check_well_formed(&tlv, WHAT)?;
                continue;
            };
            match number {
                APPLICATION_CONTEXT_NAME => {
                    application_context = Some(decode_application_context(&tlv)?);
                }
                RESULT => result = Some(decode_result(&tlv)?),
                RESULT_SOURCE_DIAGNOSTIC => diagnostic = Some(decode_diagnostic(&tlv)?),
                RESPONDING_AP_TITLE => {
                    responding_ap_title =
                        Some(decode_explicit_octets(&tlv, "responding-AP-title")?);
                }
                RESPONDER_ACSE_REQUIREMENTS => {
                    responder_acse_requirements =
                        decode_acse_requirements(&tlv, "responder-acse-requirements")?;
                }
                MECHANISM_NAME => mechanism = Some(decode_mechanism(&tlv)?),
                RESPONDING_AUTHENTICATION_VALUE => {
                    responding_authentication_value = Some(decode_authentication_value(
                        &tlv,
                        "responding-authentication-value",
                    )?);
                }
                USER_INFORMATION => {
                    user_information = Some(decode_explicit_octets(&tlv, "user-information")?);
                }
                // protocol-version, responding AE qualifier and invocation identifiers,
                // application-context-name-list, implementation-information.
                _ => ber::check_well_formed(&tlv, WHAT)?,
            }
        }
        Ok(Aare {
            application_context: application_context
                .ok_or(invalid(WHAT, "application-context-name missing"))?,
            result: result.ok_or(invalid(WHAT, "result missing"))?,
            diagnostic: diagnostic.ok_or(invalid(WHAT, "result-source-diagnostic missing"))?,
            responding_ap_title,
            responder_acse_requirements,
            mechanism,
            responding_authentication_value,
            user_information,
        })
    }
}
