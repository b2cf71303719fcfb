//! ACSE association APDUs (AARQ/AARE, RLRQ/RLRE), BER-encoded (IEC 62056-5-3 clause 9.3,
//! ISO/IEC 8650-1).
//!
//! DLMS uses a narrow profile of ACSE: the application context and mechanism names are fixed
//! DLMS UA object identifiers, AP titles are system titles in an OCTET STRING, authentication
//! values are `charstring`s and the user information is an OCTET STRING carrying an xDLMS
//! APDU. We model exactly that profile. Decoding skips the optional fields DLMS does not use
//! (protocol version, called titles, invocation identifiers, implementation information) after
//! checking that they are well-formed TLVs, and refuses fields that are out of the SEQUENCE
//! order or repeated, so that a peer cannot make two readers of the same APDU disagree.

mod aare;
mod aarq;
mod ber;
mod release;

#[cfg(test)]
mod gurux_tests;
#[cfg(test)]
mod tests;

pub use aare::{Aare, AcseServiceUser, AssociationResult, Diagnostic};
pub use aarq::Aarq;
pub use release::{
    Rlre, Rlrq, RELEASE_REQUEST_NORMAL, RELEASE_REQUEST_URGENT, RELEASE_REQUEST_USER_DEFINED,
    RELEASE_RESPONSE_NORMAL, RELEASE_RESPONSE_NOT_FINISHED, RELEASE_RESPONSE_USER_DEFINED,
};

use crate::codec::{Codec, DecodeError, Reader};
use crate::types::{ApplicationContext, Mechanism};
use ber::{Tlv, CONSTRUCTED, CONTEXT, OBJECT_IDENTIFIER, OCTET_STRING};

/// APDU tags: `[APPLICATION n] IMPLICIT SEQUENCE`.
pub const AARQ_APDU: u8 = 0x60;
pub const AARE_APDU: u8 = 0x61;
pub const RLRQ_APDU: u8 = 0x62;
pub const RLRE_APDU: u8 = 0x63;

/// `{joint-iso-ccitt(2) country(16) country-name(756) identified-organization(5) DLMS-UA(8)}`
/// in BER: the arc both DLMS name families hang off.
const DLMS_UA_OID: [u8; 5] = [0x60, 0x85, 0x74, 0x05, 0x08];
/// `application-context-name(1)` and `mechanism-name(2)` under [`DLMS_UA_OID`].
const APPLICATION_CONTEXT_NAME_ARC: u8 = 0x01;
const MECHANISM_NAME_ARC: u8 = 0x02;

/// `ACSE-requirements` with only the `authentication(0)` bit: 7 unused bits, then bit 0 set.
const ACSE_REQUIREMENTS_AUTHENTICATION: [u8; 2] = [0x07, 0x80];

/// `Authentication-value ::= CHOICE { charstring [0] IMPLICIT GraphicString, ... }`; DLMS only
/// uses the charstring alternative.
const AUTHENTICATION_VALUE_CHARSTRING: u8 = 0x80;

/// Any of the four ACSE APDUs, told apart by their first octet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcseApdu {
    Aarq(Aarq),
    Aare(Aare),
    Rlrq(Rlrq),
    Rlre(Rlre),
}

impl Codec for AcseApdu {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Aarq(a) => a.encode(out),
            Self::Aare(a) => a.encode(out),
            Self::Rlrq(a) => a.encode(out),
            Self::Rlre(a) => a.encode(out),
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.peek() {
            Some(AARQ_APDU) => Aarq::decode(r).map(Self::Aarq),
            Some(AARE_APDU) => Aare::decode(r).map(Self::Aare),
            Some(RLRQ_APDU) => Rlrq::decode(r).map(Self::Rlrq),
            Some(RLRE_APDU) => Rlre::decode(r).map(Self::Rlre),
            Some(tag) => Err(DecodeError::UnknownTag {
                what: "ACSE APDU",
                tag,
            }),
            None => Err(DecodeError::Truncated {
                what: "ACSE APDU",
                needed: 1,
            }),
        }
    }
}

/// Context-specific identifier octet for field `[number]`.
const fn context(number: u8, constructed: bool) -> u8 {
    CONTEXT | if constructed { CONSTRUCTED } else { 0 } | number
}

fn invalid(what: &'static str, why: &'static str) -> DecodeError {
    DecodeError::Invalid { what, why }
}

/// Walks the components of an APDU's SEQUENCE: context-specific tags only, in strictly
/// increasing tag order.
struct Fields<'a> {
    r: Reader<'a>,
    last: Option<u32>,
    what: &'static str,
}

impl<'a> Fields<'a> {
    /// Reads the APDU TLV `apdu_tag` from `r` and walks its contents.
    fn open(r: &mut Reader<'a>, apdu_tag: u8, what: &'static str) -> Result<Self, DecodeError> {
        let value = ber::expect_tlv(r, apdu_tag, what)?;
        Ok(Self {
            r: Reader::new(value),
            last: None,
            what,
        })
    }

    fn next(&mut self) -> Result<Option<Tlv<'a>>, DecodeError> {
        if self.r.is_empty() {
            return Ok(None);
        }
        let tlv = ber::read_tlv(&mut self.r, self.what)?;
        if tlv.tag.class != CONTEXT {
            return Err(DecodeError::UnknownTag {
                what: self.what,
                tag: tlv.tag.first,
            });
        }
        if self.last.is_some_and(|last| tlv.tag.number <= last) {
            return Err(invalid(self.what, "component out of order or repeated"));
        }
        self.last = Some(tlv.tag.number);
        Ok(Some(tlv))
    }
}

/// Fails unless a field uses the primitive/constructed form its definition implies.
fn expect_form(tlv: &Tlv<'_>, constructed: bool, what: &'static str) -> Result<(), DecodeError> {
    if tlv.tag.constructed == constructed {
        Ok(())
    } else {
        Err(DecodeError::UnknownTag {
            what,
            tag: tlv.tag.first,
        })
    }
}

/// The last arc of a DLMS UA object identifier's contents octets `60 85 74 05 08 <arc> <id>`.
fn dlms_oid_id(value: &[u8], arc: u8, what: &'static str) -> Result<u8, DecodeError> {
    match value {
        [p0, p1, p2, p3, p4, a, id]
            if [*p0, *p1, *p2, *p3, *p4] == DLMS_UA_OID && *a == arc && *id < 0x80 =>
        {
            Ok(*id)
        }
        _ => Err(invalid(what, "not a DLMS UA object identifier")),
    }
}

fn dlms_oid(arc: u8, id: u8) -> [u8; 7] {
    let [p0, p1, p2, p3, p4] = DLMS_UA_OID;
    [p0, p1, p2, p3, p4, arc, id]
}

/// `application-context-name`: EXPLICIT OBJECT IDENTIFIER.
fn decode_application_context(tlv: &Tlv<'_>) -> Result<ApplicationContext, DecodeError> {
    const WHAT: &str = "application-context-name";
    expect_form(tlv, true, WHAT)?;
    let oid = ber::explicit(tlv.value, OBJECT_IDENTIFIER, WHAT)?;
    let id = dlms_oid_id(oid, APPLICATION_CONTEXT_NAME_ARC, WHAT)?;
    ApplicationContext::from_id(id).ok_or(invalid(WHAT, "unknown DLMS application context"))
}

fn encode_application_context(out: &mut Vec<u8>, tag: u8, ctx: ApplicationContext) {
    let oid = dlms_oid(APPLICATION_CONTEXT_NAME_ARC, ctx as u8);
    ber::put_explicit(out, tag, OBJECT_IDENTIFIER, &oid);
}

/// `mechanism-name`: IMPLICIT OBJECT IDENTIFIER.
fn decode_mechanism(tlv: &Tlv<'_>) -> Result<Mechanism, DecodeError> {
    const WHAT: &str = "mechanism-name";
    expect_form(tlv, false, WHAT)?;
    let id = dlms_oid_id(tlv.value, MECHANISM_NAME_ARC, WHAT)?;
    Mechanism::from_id(id).ok_or(invalid(WHAT, "unknown DLMS authentication mechanism"))
}

fn encode_mechanism(out: &mut Vec<u8>, tag: u8, mechanism: Mechanism) {
    ber::put_tlv(out, tag, &dlms_oid(MECHANISM_NAME_ARC, mechanism as u8));
}

/// `ACSE-requirements`: IMPLICIT BIT STRING; we only care about the `authentication` bit.
fn decode_acse_requirements(tlv: &Tlv<'_>, what: &'static str) -> Result<bool, DecodeError> {
    expect_form(tlv, false, what)?;
    ber::first_bit(tlv.value, what)
}

fn encode_acse_requirements(out: &mut Vec<u8>, tag: u8) {
    ber::put_tlv(out, tag, &ACSE_REQUIREMENTS_AUTHENTICATION);
}

/// `Authentication-value`: EXPLICIT CHOICE, of which DLMS uses `charstring [0]`.
fn decode_authentication_value(tlv: &Tlv<'_>, what: &'static str) -> Result<Vec<u8>, DecodeError> {
    expect_form(tlv, true, what)?;
    Ok(ber::explicit(tlv.value, AUTHENTICATION_VALUE_CHARSTRING, what)?.to_vec())
}

fn encode_authentication_value(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    ber::put_explicit(out, tag, AUTHENTICATION_VALUE_CHARSTRING, value);
}

/// A field that DLMS fills with an EXPLICIT OCTET STRING: AP titles, AE qualifiers and
/// `user-information`.
fn decode_explicit_octets(tlv: &Tlv<'_>, what: &'static str) -> Result<Vec<u8>, DecodeError> {
    expect_form(tlv, true, what)?;
    Ok(ber::explicit(tlv.value, OCTET_STRING, what)?.to_vec())
}

fn encode_explicit_octets(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    ber::put_explicit(out, tag, OCTET_STRING, value);
}

/// `user-information [30]`, shared by all four APDUs.
const USER_INFORMATION: u8 = 30;
