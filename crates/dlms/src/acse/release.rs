//! RLRQ/RLRE, the release of an association. Both carry an optional reason and, when the
//! release is protected, an xDLMS InitiateRequest/Response in `user-information`.

use super::{
    ber, context, decode_explicit_octets, encode_explicit_octets, expect_form, Fields, RLRE_APDU,
    RLRQ_APDU, USER_INFORMATION,
};
use crate::codec::{Codec, DecodeError, Reader};

/// `reason [0] IMPLICIT INTEGER`.
const REASON: u8 = 0;

/// `Release-request-reason` values.
pub const RELEASE_REQUEST_NORMAL: u8 = 0;
pub const RELEASE_REQUEST_URGENT: u8 = 1;
pub const RELEASE_REQUEST_USER_DEFINED: u8 = 30;
/// `Release-response-reason` values.
pub const RELEASE_RESPONSE_NORMAL: u8 = 0;
pub const RELEASE_RESPONSE_NOT_FINISHED: u8 = 1;
pub const RELEASE_RESPONSE_USER_DEFINED: u8 = 30;

/// `RLRQ-apdu`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rlrq {
    /// `Release-request-reason`: see the `RELEASE_REQUEST_*` constants.
    pub reason: Option<u8>,
    pub user_information: Option<Vec<u8>>,
}

/// `RLRE-apdu`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rlre {
    /// `Release-response-reason`: see the `RELEASE_RESPONSE_*` constants.
    pub reason: Option<u8>,
    pub user_information: Option<Vec<u8>>,
}

fn encode(out: &mut Vec<u8>, apdu: u8, reason: Option<u8>, user_information: Option<&[u8]>) {
    let mut body = Vec::new();
    if let Some(reason) = reason {
        ber::put_tlv(
            &mut body,
            context(REASON, false),
            &ber::small_uint_value(reason),
        );
    }
    if let Some(ui) = user_information {
        encode_explicit_octets(&mut body, context(USER_INFORMATION, true), ui);
    }
    ber::put_tlv(out, apdu, &body);
}

type Parts = (Option<u8>, Option<Vec<u8>>);

fn decode(r: &mut Reader<'_>, apdu: u8, what: &'static str) -> Result<Parts, DecodeError> {
    let mut fields = Fields::open(r, apdu, what)?;
    let (mut reason, mut user_information) = (None, None);
    while let Some(tlv) = fields.next()? {
        if tlv.tag.number == u32::from(REASON) {
            expect_form(&tlv, false, "release reason")?;
            reason = Some(ber::small_uint(tlv.value, "release reason")?);
        } else if tlv.tag.number == u32::from(USER_INFORMATION) {
            user_information = Some(decode_explicit_octets(&tlv, "user-information")?);
        } else {
            ber::check_well_formed(&tlv, what)?;
        }
    }
    Ok((reason, user_information))
}

impl Codec for Rlrq {
    fn encode(&self, out: &mut Vec<u8>) {
        encode(
            out,
            RLRQ_APDU,
            self.reason,
            self.user_information.as_deref(),
        );
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (reason, user_information) = decode(r, RLRQ_APDU, "RLRQ")?;
        Ok(Self {
            reason,
            user_information,
        })
    }
}

impl Codec for Rlre {
    fn encode(&self, out: &mut Vec<u8>) {
        encode(
            out,
            RLRE_APDU,
            self.reason,
            self.user_information.as_deref(),
        );
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (reason, user_information) = decode(r, RLRE_APDU, "RLRE")?;
        Ok(Self {
            reason,
            user_information,
        })
    }
}
