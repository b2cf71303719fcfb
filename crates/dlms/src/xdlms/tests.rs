#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;
use crate::obis::ObisCode;
use crate::types::MethodDescriptor;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn inv() -> InvokeIdAndPriority {
    InvokeIdAndPriority::new(1, true, true)
}

fn clock() -> AttributeDescriptor {
    AttributeDescriptor::new(8, ObisCode::new(0, 0, 1, 0, 0, 255), 2)
}

fn samples() -> Vec<Apdu> {
    let sa = Some(SelectiveAccess {
        selector: 2,
        parameters: Data::Structure(vec![
            Data::DoubleLongUnsigned(1),
            Data::DoubleLongUnsigned(0),
        ]),
    });
    let block = DataBlockSA {
        last_block: false,
        block_number: 1,
        raw_data: vec![9, 0, 1, 2],
    };
    let disc = MethodDescriptor::new(70, ObisCode::new(0, 0, 96, 3, 10, 255), 1);
    vec![
        Apdu::GetRequest(GetRequest::Normal {
            invoke: inv(),
            attribute: clock(),
            access: None,
        }),
        Apdu::GetRequest(GetRequest::Normal {
            invoke: inv(),
            attribute: clock(),
            access: sa.clone(),
        }),
        Apdu::GetRequest(GetRequest::Next {
            invoke: inv(),
            block_number: 7,
        }),
        Apdu::GetRequest(GetRequest::WithList {
            invoke: inv(),
            items: vec![(clock(), None), (clock(), sa.clone())],
        }),
        Apdu::GetResponse(GetResponse::Normal {
            invoke: inv(),
            result: GetDataResult::Data(Data::Unsigned(3)),
        }),
        Apdu::GetResponse(GetResponse::Normal {
            invoke: inv(),
            result: GetDataResult::Error(DataAccessResult::ObjectUndefined),
        }),
        Apdu::GetResponse(GetResponse::WithDataBlock {
            invoke: inv(),
            block: DataBlockG {
                last_block: true,
                block_number: 2,
                result: Ok(vec![1, 2, 3]),
            },
        }),
        Apdu::GetResponse(GetResponse::WithDataBlock {
            invoke: inv(),
            block: DataBlockG {
                last_block: true,
                block_number: 2,
                result: Err(DataAccessResult::LongGetAborted),
            },
        }),
        Apdu::GetResponse(GetResponse::WithList {
            invoke: inv(),
            results: vec![
                GetDataResult::Data(Data::Null),
                GetDataResult::Error(DataAccessResult::OtherReason),
            ],
        }),
        Apdu::SetRequest(SetRequest::Normal {
            invoke: inv(),
            attribute: clock(),
            access: None,
            value: Data::Long(-1),
        }),
        Apdu::SetRequest(SetRequest::WithFirstDataBlock {
            invoke: inv(),
            attribute: clock(),
            access: sa.clone(),
            block: block.clone(),
        }),
        Apdu::SetRequest(SetRequest::WithDataBlock {
            invoke: inv(),
            block: block.clone(),
        }),
        Apdu::SetRequest(SetRequest::WithList {
            invoke: inv(),
            items: vec![(clock(), None)],
            values: vec![Data::Boolean(true)],
        }),
        Apdu::SetRequest(SetRequest::WithListAndFirstDataBlock {
            invoke: inv(),
            items: vec![(clock(), None)],
            block: block.clone(),
        }),
        Apdu::SetResponse(SetResponse::Normal {
            invoke: inv(),
            result: DataAccessResult::Success,
        }),
        Apdu::SetResponse(SetResponse::DataBlock {
            invoke: inv(),
            block_number: 3,
        }),
        Apdu::SetResponse(SetResponse::LastDataBlock {
            invoke: inv(),
            result: DataAccessResult::Success,
            block_number: 4,
        }),
        Apdu::SetResponse(SetResponse::LastDataBlockWithList {
            invoke: inv(),
            results: vec![DataAccessResult::Success],
            block_number: 4,
        }),
        Apdu::SetResponse(SetResponse::WithList {
            invoke: inv(),
            results: vec![
                DataAccessResult::TypeUnmatched,
                DataAccessResult::Unknown(77),
            ],
        }),
        Apdu::ActionRequest(ActionRequest::Normal {
            invoke: inv(),
            method: disc,
            parameters: Some(Data::Integer(0)),
        }),
        Apdu::ActionRequest(ActionRequest::Normal {
            invoke: inv(),
            method: disc,
            parameters: None,
        }),
        Apdu::ActionRequest(ActionRequest::NextPBlock {
            invoke: inv(),
            block_number: 2,
        }),
        Apdu::ActionRequest(ActionRequest::WithList {
            invoke: inv(),
            items: vec![(disc, Some(Data::Integer(0))), (disc, None)],
        }),
        Apdu::ActionRequest(ActionRequest::WithFirstPBlock {
            invoke: inv(),
            method: disc,
            block: block.clone(),
        }),
        Apdu::ActionRequest(ActionRequest::WithListAndFirstPBlock {
            invoke: inv(),
            methods: vec![disc],
            block: block.clone(),
        }),
        Apdu::ActionRequest(ActionRequest::WithPBlock {
            invoke: inv(),
            block: block.clone(),
        }),
        Apdu::ActionResponse(ActionResponse::Normal {
            invoke: inv(),
            result: ActionResult::Success,
            return_parameters: None,
        }),
        Apdu::ActionResponse(ActionResponse::Normal {
            invoke: inv(),
            result: ActionResult::Success,
            return_parameters: Some(GetDataResult::Data(Data::OctetString(vec![1; 17]))),
        }),
        Apdu::ActionResponse(ActionResponse::WithPBlock {
            invoke: inv(),
            block,
        }),
        Apdu::ActionResponse(ActionResponse::WithList {
            invoke: inv(),
            results: vec![(ActionResult::ReadWriteDenied, None)],
        }),
        Apdu::ActionResponse(ActionResponse::NextPBlock {
            invoke: inv(),
            block_number: 1,
        }),
        Apdu::GeneralBlockTransfer(GeneralBlockTransfer {
            last_block: true,
            streaming: false,
            window: 1,
            block_number: 2,
            block_number_ack: 1,
            block_data: vec![0xC4, 1],
        }),
        Apdu::DataNotification(DataNotification {
            long_invoke_id_and_priority: 0x8000_0001,
            date_time: Some(vec![0x07, 0xEA, 11, 26, 4, 21, 15, 0, 0, 0, 0, 0]),
            body: Data::Structure(vec![
                Data::OctetString(vec![1, 2]),
                Data::DoubleLongUnsigned(5),
            ]),
        }),
        Apdu::DataNotification(DataNotification {
            long_invoke_id_and_priority: 1,
            date_time: None,
            body: Data::Null,
        }),
        Apdu::EventNotificationRequest(EventNotificationRequest {
            time: None,
            attribute: clock(),
            value: Data::Enum(1),
        }),
        Apdu::ExceptionResponse(ExceptionResponse {
            state_error: 1,
            service_error: 2,
            invocation_counter: None,
        }),
        Apdu::ExceptionResponse(ExceptionResponse {
            state_error: 1,
            service_error: 6,
            invocation_counter: Some(99),
        }),
        Apdu::ConfirmedServiceError(ConfirmedServiceError {
            service: 1,
            error_kind: 6,
            error_value: 1,
        }),
    ]
}

#[test]
fn green_book_initiate_vectors() {
    // Green Book AARQ user-information and AARE user-information (LN, no security).
    let req = h("01 00 00 00 06 5F 1F 04 00 00 7E 1F 04 B0");
    let decoded = Apdu::decode_exact(&req).unwrap();
    match &decoded {
        Apdu::InitiateRequest(r) => {
            assert_eq!(r.dedicated_key, None);
            assert!(r.response_allowed);
            assert_eq!(r.proposed_dlms_version, 6);
            assert_eq!(r.proposed_conformance, Conformance(0x00_7E_1F));
            assert_eq!(r.client_max_receive_pdu_size, 0x04B0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(decoded.to_bytes(), req);
    let resp = h("08 00 06 5F 1F 04 00 00 50 1F 01 F4 00 07");
    let decoded = Apdu::decode_exact(&resp).unwrap();
    match &decoded {
        Apdu::InitiateResponse(r) => {
            assert_eq!(r.negotiated_conformance, Conformance(0x00_50_1F));
            assert!(r
                .negotiated_conformance
                .contains(Conformance::GET | Conformance::BLOCK_TRANSFER_WITH_GET_OR_READ));
            assert_eq!(r.server_max_receive_pdu_size, 0x01F4);
            assert_eq!(r.vaa_name, 7);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(decoded.to_bytes(), resp);
}

#[test]
fn green_book_get_request() {
    // GET clock time, invoke id 1 high priority: the Green Book's ciphering example plaintext.
    let bytes = h("C0 01 C1 00 08 00 00 01 00 00 FF 02 00");
    let a = Apdu::GetRequest(GetRequest::Normal {
        invoke: InvokeIdAndPriority(0xC1),
        attribute: clock(),
        access: None,
    });
    assert_eq!(a.to_bytes(), bytes);
    assert_eq!(Apdu::decode_exact(&bytes).unwrap(), a);
}

#[test]
fn round_trip_and_truncation() {
    for a in samples() {
        let bytes = a.to_bytes();
        assert_eq!(
            Apdu::decode_exact(&bytes).unwrap(),
            a,
            "{}",
            hex::encode(&bytes)
        );
        for cut in 0..bytes.len() {
            assert!(
                Apdu::decode_exact(&bytes[..cut]).is_err(),
                "{a:?} cut {cut}"
            );
        }
    }
}

#[test]
fn hostile_inputs() {
    // A list claiming 2^31 items.
    assert!(Apdu::decode_exact(&h("C0 03 C1 84 7F FF FF FF")).is_err());
    assert!(Apdu::decode_exact(&h("C4 03 C1 84 7F FF FF FF")).is_err());
    assert!(Apdu::decode_exact(&h("C5 05 C1 84 7F FF FF FF")).is_err());
    // Unknown APDU and choice tags.
    assert!(matches!(
        Apdu::decode_exact(&[0x42]),
        Err(DecodeError::UnknownTag { tag: 0x42, .. })
    ));
    assert!(Apdu::decode_exact(&h("C0 09 C1")).is_err());
    // A raw-data length beyond the input.
    assert!(Apdu::decode_exact(&h("C4 02 C1 01 00 00 00 01 00 84 00 01 00 00")).is_err());
    // Trailing bytes.
    assert!(Apdu::decode_exact(&h("C4 01 C1 00 11 05 00")).is_err());
}

#[test]
fn invoke_id_and_priority_bits() {
    let i = InvokeIdAndPriority::new(5, true, true);
    assert_eq!(i.0, 0xC5);
    assert_eq!(
        (i.invoke_id(), i.high_priority(), i.confirmed()),
        (5, true, true)
    );
    assert_eq!(Conformance(0x00_7E_1F).names().len(), 11);
}
