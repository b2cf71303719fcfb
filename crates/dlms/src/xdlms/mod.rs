//! xDLMS APDUs (IEC 62056-5-3): initiate, GET/SET/ACTION in all their forms,
//! general-block-transfer, notifications, exception-response and confirmed-service-error.

mod conformance;
mod results;
mod services;

#[cfg(test)]
mod gurux_tests;
#[cfg(test)]
mod tests;

pub use conformance::Conformance;
pub use results::{ActionResult, ConfirmedServiceError, DataAccessResult, ExceptionResponse};
pub use services::{
    ActionRequest, ActionResponse, DataBlockG, DataBlockSA, GetDataResult, GetRequest, GetResponse,
    SetRequest, SetResponse,
};

use crate::axdr::Data;
use crate::codec::{put_octets, Codec, DecodeError, Reader};
use crate::types::AttributeDescriptor;

/// APDU tags of the Green Book. The plain and ciphered service tags are defined once, with the
/// ciphering table, in `security::tags`.
pub mod tag {
    pub use crate::security::tags::{
        ACTION_REQUEST, ACTION_RESPONSE, CONFIRMED_SERVICE_ERROR, DED_ACTION_REQUEST,
        DED_ACTION_RESPONSE, DED_EVENT_NOTIFICATION_REQUEST as DED_EVENT_NOTIFICATION,
        DED_GET_REQUEST, DED_GET_RESPONSE, DED_SET_REQUEST, DED_SET_RESPONSE,
        EVENT_NOTIFICATION_REQUEST, GENERAL_CIPHERING, GENERAL_DED_CIPHERING,
        GENERAL_GLO_CIPHERING, GET_REQUEST, GET_RESPONSE, GLO_ACTION_REQUEST, GLO_ACTION_RESPONSE,
        GLO_CONFIRMED_SERVICE_ERROR, GLO_EVENT_NOTIFICATION_REQUEST as GLO_EVENT_NOTIFICATION,
        GLO_GET_REQUEST, GLO_GET_RESPONSE, GLO_INITIATE_REQUEST, GLO_INITIATE_RESPONSE,
        GLO_SET_REQUEST, GLO_SET_RESPONSE, INITIATE_REQUEST, INITIATE_RESPONSE, SET_REQUEST,
        SET_RESPONSE,
    };
    pub const DATA_NOTIFICATION: u8 = 0x0F;
    pub const EXCEPTION_RESPONSE: u8 = 0xD8;
    pub const GENERAL_BLOCK_TRANSFER: u8 = 0xE0;
    pub const AARQ: u8 = 0x60;
    pub const AARE: u8 = 0x61;
    pub const RLRQ: u8 = 0x62;
    pub const RLRE: u8 = 0x63;
}

/// The VAA name of logical-name referencing, in the initiate response.
pub const VAA_NAME_LN: u16 = 0x0007;

/// `Invoke-Id-And-Priority`: bits 0-3 invoke id, bit 6 service class (1 = confirmed), bit 7
/// priority (1 = high).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvokeIdAndPriority(pub u8);

impl InvokeIdAndPriority {
    pub fn new(id: u8, high_priority: bool, confirmed: bool) -> Self {
        Self((id & 0x0F) | (u8::from(confirmed) << 6) | (u8::from(high_priority) << 7))
    }
    pub fn invoke_id(self) -> u8 {
        self.0 & 0x0F
    }
    pub fn confirmed(self) -> bool {
        self.0 & 0x40 != 0
    }
    pub fn high_priority(self) -> bool {
        self.0 & 0x80 != 0
    }
}

/// `Selective-Access-Descriptor`.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectiveAccess {
    pub selector: u8,
    pub parameters: Data,
}

pub(crate) fn put_optional_access(out: &mut Vec<u8>, a: &Option<SelectiveAccess>) {
    match a {
        None => out.push(0),
        Some(sa) => {
            out.push(1);
            out.push(sa.selector);
            sa.parameters.encode(out);
        }
    }
}

pub(crate) fn optional_access(r: &mut Reader<'_>) -> Result<Option<SelectiveAccess>, DecodeError> {
    match r.u8("access-selection flag")? {
        0 => Ok(None),
        1 => Ok(Some(SelectiveAccess {
            selector: r.u8("access selector")?,
            parameters: Data::decode(r)?,
        })),
        t => Err(DecodeError::UnknownTag {
            what: "access-selection flag",
            tag: t,
        }),
    }
}

/// A-XDR OPTIONAL flag.
fn optional(r: &mut Reader<'_>, what: &'static str) -> Result<bool, DecodeError> {
    match r.u8(what)? {
        0 => Ok(false),
        1 => Ok(true),
        t => Err(DecodeError::UnknownTag { what, tag: t }),
    }
}

/// `InitiateRequest` (xDLMS-Initiate.request), carried in the AARQ's user-information.
#[derive(Clone, PartialEq, Eq)]
pub struct InitiateRequest {
    pub dedicated_key: Option<Vec<u8>>,
    pub response_allowed: bool,
    pub proposed_quality_of_service: Option<i8>,
    pub proposed_dlms_version: u8,
    pub proposed_conformance: Conformance,
    pub client_max_receive_pdu_size: u16,
}

impl std::fmt::Debug for InitiateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The dedicated key is a secret.
        f.debug_struct("InitiateRequest")
            .field(
                "dedicated_key",
                &self.dedicated_key.as_ref().map(|_| "<redacted>"),
            )
            .field("response_allowed", &self.response_allowed)
            .field("proposed_dlms_version", &self.proposed_dlms_version)
            .field("proposed_conformance", &self.proposed_conformance)
            .field(
                "client_max_receive_pdu_size",
                &self.client_max_receive_pdu_size,
            )
            .finish()
    }
}

impl Codec for InitiateRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(tag::INITIATE_REQUEST);
        match &self.dedicated_key {
            None => out.push(0),
            Some(k) => {
                out.push(1);
                put_octets(out, k);
            }
        }
        // response-allowed BOOLEAN DEFAULT TRUE: the default is encoded as absent.
        if self.response_allowed {
            out.push(0);
        } else {
            out.extend_from_slice(&[1, 0]);
        }
        match self.proposed_quality_of_service {
            None => out.push(0),
            Some(q) => out.extend_from_slice(&[1, q as u8]),
        }
        out.push(self.proposed_dlms_version);
        self.proposed_conformance.encode(out);
        out.extend_from_slice(&self.client_max_receive_pdu_size.to_be_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_tag(r, tag::INITIATE_REQUEST, "initiate-request")?;
        let dedicated_key = if optional(r, "dedicated-key flag")? {
            Some(r.octets("dedicated-key")?.to_vec())
        } else {
            None
        };
        let response_allowed = if optional(r, "response-allowed flag")? {
            r.u8("response-allowed")? != 0
        } else {
            true
        };
        let proposed_quality_of_service = if optional(r, "quality-of-service flag")? {
            Some(r.u8("quality-of-service")? as i8)
        } else {
            None
        };
        Ok(Self {
            dedicated_key,
            response_allowed,
            proposed_quality_of_service,
            proposed_dlms_version: r.u8("dlms-version")?,
            proposed_conformance: Conformance::decode(r)?,
            client_max_receive_pdu_size: r.u16("client-max-receive-pdu-size")?,
        })
    }
}

/// `InitiateResponse`, carried in the AARE's user-information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateResponse {
    pub negotiated_quality_of_service: Option<i8>,
    pub negotiated_dlms_version: u8,
    pub negotiated_conformance: Conformance,
    pub server_max_receive_pdu_size: u16,
    /// 0x0007 for logical name referencing.
    pub vaa_name: u16,
}

impl Codec for InitiateResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(tag::INITIATE_RESPONSE);
        match self.negotiated_quality_of_service {
            None => out.push(0),
            Some(q) => out.extend_from_slice(&[1, q as u8]),
        }
        out.push(self.negotiated_dlms_version);
        self.negotiated_conformance.encode(out);
        out.extend_from_slice(&self.server_max_receive_pdu_size.to_be_bytes());
        out.extend_from_slice(&self.vaa_name.to_be_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_tag(r, tag::INITIATE_RESPONSE, "initiate-response")?;
        let negotiated_quality_of_service = if optional(r, "quality-of-service flag")? {
            Some(r.u8("quality-of-service")? as i8)
        } else {
            None
        };
        Ok(Self {
            negotiated_quality_of_service,
            negotiated_dlms_version: r.u8("dlms-version")?,
            negotiated_conformance: Conformance::decode(r)?,
            server_max_receive_pdu_size: r.u16("server-max-receive-pdu-size")?,
            vaa_name: r.u16("vaa-name")?,
        })
    }
}

/// `General-Block-Transfer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralBlockTransfer {
    pub last_block: bool,
    pub streaming: bool,
    pub window: u8,
    pub block_number: u16,
    pub block_number_ack: u16,
    pub block_data: Vec<u8>,
}

impl Codec for GeneralBlockTransfer {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(tag::GENERAL_BLOCK_TRANSFER);
        out.push(
            (u8::from(self.last_block) << 7)
                | (u8::from(self.streaming) << 6)
                | (self.window & 0x3F),
        );
        out.extend_from_slice(&self.block_number.to_be_bytes());
        out.extend_from_slice(&self.block_number_ack.to_be_bytes());
        put_octets(out, &self.block_data);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_tag(r, tag::GENERAL_BLOCK_TRANSFER, "general-block-transfer")?;
        let ctl = r.u8("block-control")?;
        Ok(Self {
            last_block: ctl & 0x80 != 0,
            streaming: ctl & 0x40 != 0,
            window: ctl & 0x3F,
            block_number: r.u16("block-number")?,
            block_number_ack: r.u16("block-number-ack")?,
            block_data: r.octets("block-data")?.to_vec(),
        })
    }
}

/// `Data-Notification` (push).
#[derive(Debug, Clone, PartialEq)]
pub struct DataNotification {
    pub long_invoke_id_and_priority: u32,
    /// The date-time as an octet-string payload (12 bytes when present).
    pub date_time: Option<Vec<u8>>,
    pub body: Data,
}

impl Codec for DataNotification {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(tag::DATA_NOTIFICATION);
        out.extend_from_slice(&self.long_invoke_id_and_priority.to_be_bytes());
        // OPTIONAL octet-string: a length of 0 stands for "absent", as meters and Gurux send.
        match &self.date_time {
            None => out.push(0),
            Some(dt) => put_octets(out, dt),
        }
        self.body.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_tag(r, tag::DATA_NOTIFICATION, "data-notification")?;
        let long_invoke_id_and_priority = r.u32("long-invoke-id-and-priority")?;
        let dt = r.octets("date-time")?;
        let date_time = if dt.is_empty() {
            None
        } else {
            Some(dt.to_vec())
        };
        Ok(Self {
            long_invoke_id_and_priority,
            date_time,
            body: Data::decode(r)?,
        })
    }
}

/// `EventNotificationRequest`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventNotificationRequest {
    pub time: Option<Vec<u8>>,
    pub attribute: AttributeDescriptor,
    pub value: Data,
}

impl Codec for EventNotificationRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(tag::EVENT_NOTIFICATION_REQUEST);
        match &self.time {
            None => out.push(0),
            Some(t) => {
                out.push(1);
                put_octets(out, t);
            }
        }
        self.attribute.encode(out);
        self.value.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_tag(
            r,
            tag::EVENT_NOTIFICATION_REQUEST,
            "event-notification-request",
        )?;
        let time = if optional(r, "time flag")? {
            Some(r.octets("time")?.to_vec())
        } else {
            None
        };
        Ok(Self {
            time,
            attribute: AttributeDescriptor::decode(r)?,
            value: Data::decode(r)?,
        })
    }
}

/// Every xDLMS APDU (plain; ciphered ones are handled by `security`, ACSE ones by `acse`).
#[derive(Debug, Clone, PartialEq)]
pub enum Apdu {
    InitiateRequest(InitiateRequest),
    InitiateResponse(InitiateResponse),
    ConfirmedServiceError(ConfirmedServiceError),
    DataNotification(DataNotification),
    GetRequest(GetRequest),
    GetResponse(GetResponse),
    SetRequest(SetRequest),
    SetResponse(SetResponse),
    ActionRequest(ActionRequest),
    ActionResponse(ActionResponse),
    EventNotificationRequest(EventNotificationRequest),
    ExceptionResponse(ExceptionResponse),
    GeneralBlockTransfer(GeneralBlockTransfer),
}

impl Apdu {
    pub fn tag(&self) -> u8 {
        match self {
            Apdu::InitiateRequest(_) => tag::INITIATE_REQUEST,
            Apdu::InitiateResponse(_) => tag::INITIATE_RESPONSE,
            Apdu::ConfirmedServiceError(_) => tag::CONFIRMED_SERVICE_ERROR,
            Apdu::DataNotification(_) => tag::DATA_NOTIFICATION,
            Apdu::GetRequest(_) => tag::GET_REQUEST,
            Apdu::GetResponse(_) => tag::GET_RESPONSE,
            Apdu::SetRequest(_) => tag::SET_REQUEST,
            Apdu::SetResponse(_) => tag::SET_RESPONSE,
            Apdu::ActionRequest(_) => tag::ACTION_REQUEST,
            Apdu::ActionResponse(_) => tag::ACTION_RESPONSE,
            Apdu::EventNotificationRequest(_) => tag::EVENT_NOTIFICATION_REQUEST,
            Apdu::ExceptionResponse(_) => tag::EXCEPTION_RESPONSE,
            Apdu::GeneralBlockTransfer(_) => tag::GENERAL_BLOCK_TRANSFER,
        }
    }
}

impl Codec for Apdu {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Apdu::InitiateRequest(a) => a.encode(out),
            Apdu::InitiateResponse(a) => a.encode(out),
            Apdu::ConfirmedServiceError(a) => a.encode(out),
            Apdu::DataNotification(a) => a.encode(out),
            Apdu::GetRequest(a) => a.encode(out),
            Apdu::GetResponse(a) => a.encode(out),
            Apdu::SetRequest(a) => a.encode(out),
            Apdu::SetResponse(a) => a.encode(out),
            Apdu::ActionRequest(a) => a.encode(out),
            Apdu::ActionResponse(a) => a.encode(out),
            Apdu::EventNotificationRequest(a) => a.encode(out),
            Apdu::ExceptionResponse(a) => a.encode(out),
            Apdu::GeneralBlockTransfer(a) => a.encode(out),
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = r.peek().ok_or(DecodeError::Truncated {
            what: "APDU",
            needed: 1,
        })?;
        Ok(match t {
            tag::INITIATE_REQUEST => Apdu::InitiateRequest(Codec::decode(r)?),
            tag::INITIATE_RESPONSE => Apdu::InitiateResponse(Codec::decode(r)?),
            tag::CONFIRMED_SERVICE_ERROR => Apdu::ConfirmedServiceError(Codec::decode(r)?),
            tag::DATA_NOTIFICATION => Apdu::DataNotification(Codec::decode(r)?),
            tag::GET_REQUEST => Apdu::GetRequest(Codec::decode(r)?),
            tag::GET_RESPONSE => Apdu::GetResponse(Codec::decode(r)?),
            tag::SET_REQUEST => Apdu::SetRequest(Codec::decode(r)?),
            tag::SET_RESPONSE => Apdu::SetResponse(Codec::decode(r)?),
            tag::ACTION_REQUEST => Apdu::ActionRequest(Codec::decode(r)?),
            tag::ACTION_RESPONSE => Apdu::ActionResponse(Codec::decode(r)?),
            tag::EVENT_NOTIFICATION_REQUEST => Apdu::EventNotificationRequest(Codec::decode(r)?),
            tag::EXCEPTION_RESPONSE => Apdu::ExceptionResponse(Codec::decode(r)?),
            tag::GENERAL_BLOCK_TRANSFER => Apdu::GeneralBlockTransfer(Codec::decode(r)?),
            other => {
                return Err(DecodeError::UnknownTag {
                    what: "xDLMS APDU",
                    tag: other,
                })
            }
        })
    }
}

/// The header of a get-response-normal: the invoke id, and whether data follows (else the
/// data-access-result). The reader is left at the data.
fn get_response_normal_header<'a>(
    r: &mut Reader<'a>,
) -> Result<(InvokeIdAndPriority, Option<DataAccessResult>), DecodeError> {
    expect_tag(r, tag::GET_RESPONSE, "get-response")?;
    match r.u8("get-response choice")? {
        1 => {}
        t => {
            return Err(DecodeError::UnknownTag {
                what: "get-response-normal",
                tag: t,
            })
        }
    }
    let invoke = InvokeIdAndPriority(r.u8("invoke-id-and-priority")?);
    match r.u8("get-data-result choice")? {
        0 => Ok((invoke, None)),
        1 => {
            let dar = DataAccessResult::from_code(r.u8("data-access-result")?);
            r.finish("get-response")?;
            Ok((invoke, Some(dar)))
        }
        t => Err(DecodeError::UnknownTag {
            what: "get-data-result",
            tag: t,
        }),
    }
}

/// Reads a get-response-normal without building its value: the invoke id and a checked view
/// of the data (or the data-access-result).
pub fn get_response_normal_view(
    apdu: &[u8],
) -> Result<
    (
        InvokeIdAndPriority,
        Result<crate::axdr::DataView<'_>, DataAccessResult>,
    ),
    DecodeError,
> {
    let mut r = Reader::new(apdu);
    match get_response_normal_header(&mut r)? {
        (invoke, Some(dar)) => Ok((invoke, Err(dar))),
        (invoke, None) => {
            let view = crate::axdr::DataView::read(&mut r)?;
            r.finish("get-response")?;
            Ok((invoke, Ok(view)))
        }
    }
}

/// Reads the header of a get-response-normal and returns a single-pass cursor over its data
/// (or the data-access-result): the hot path of load-profile collection.
pub fn get_response_normal_cursor(
    apdu: &[u8],
) -> Result<
    (
        InvokeIdAndPriority,
        Result<crate::axdr::Cursor<'_>, DataAccessResult>,
    ),
    DecodeError,
> {
    let mut r = Reader::new(apdu);
    match get_response_normal_header(&mut r)? {
        (invoke, Some(dar)) => Ok((invoke, Err(dar))),
        (invoke, None) => Ok((invoke, Ok(crate::axdr::Cursor::new(r.rest())))),
    }
}

pub(crate) fn expect_tag(
    r: &mut Reader<'_>,
    want: u8,
    what: &'static str,
) -> Result<(), DecodeError> {
    match r.u8(what)? {
        t if t == want => Ok(()),
        t => Err(DecodeError::UnknownTag { what, tag: t }),
    }
}

/// A count that must fit the input (each element takes at least `min` bytes).
pub(crate) fn bounded_count(
    r: &mut Reader<'_>,
    min: usize,
    what: &'static str,
) -> Result<usize, DecodeError> {
    let n = r.length(what)?;
    if n.saturating_mul(min) > r.remaining() {
        return Err(DecodeError::LengthTooLarge { what, len: n });
    }
    Ok(n)
}
