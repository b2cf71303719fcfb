//! Vectors produced by Gurux (interop/vectors/xdlms.py → testdata/gurux/xdlms.json): each is
//! decoded, checked field by field, re-encoded byte for byte, and every strict prefix refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use serde_json::Value;

use super::*;
use crate::axdr::Data;
use crate::codec::Codec;
use crate::obis::ObisCode;

const VECTORS: &str = include_str!("../../../../testdata/gurux/xdlms.json");

fn vectors() -> Vec<Value> {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {}", v["name"]))
}

fn obis(v: &Value) -> ObisCode {
    v["obis"].as_str().unwrap().parse().unwrap()
}

fn kind(apdu: &Apdu) -> &'static str {
    match apdu {
        Apdu::InitiateRequest(_) => "InitiateRequest",
        Apdu::InitiateResponse(_) => "InitiateResponse",
        Apdu::ConfirmedServiceError(_) => "ConfirmedServiceError",
        Apdu::DataNotification(_) => "DataNotification",
        Apdu::GetRequest(_) => "GetRequest",
        Apdu::GetResponse(_) => "GetResponse",
        Apdu::SetRequest(_) => "SetRequest",
        Apdu::SetResponse(_) => "SetResponse",
        Apdu::ActionRequest(_) => "ActionRequest",
        Apdu::ActionResponse(_) => "ActionResponse",
        Apdu::EventNotificationRequest(_) => "EventNotificationRequest",
        Apdu::ExceptionResponse(_) => "ExceptionResponse",
        Apdu::GeneralBlockTransfer(_) => "GeneralBlockTransfer",
    }
}

/// Field checks against what the generator recorded, plus the values the script set up.
fn check_fields(v: &Value, apdu: &Apdu) {
    let name = v["name"].as_str().unwrap();
    let invoke = InvokeIdAndPriority::new(1, true, true);
    match apdu {
        Apdu::InitiateRequest(r) => {
            assert_eq!(r.dedicated_key, None);
            assert!(r.response_allowed);
            assert_eq!(r.proposed_quality_of_service, None);
            assert_eq!(r.proposed_dlms_version, 6);
            assert_eq!(
                r.proposed_conformance.0,
                num(v, "proposed_conformance") as u32
            );
            assert_eq!(
                u64::from(r.client_max_receive_pdu_size),
                num(v, "client_max_receive_pdu_size")
            );
        }
        Apdu::InitiateResponse(r) => {
            assert_eq!(r.negotiated_dlms_version, 6);
            assert_eq!(
                r.negotiated_conformance.0,
                num(v, "negotiated_conformance") as u32
            );
            assert_eq!(
                u64::from(r.server_max_receive_pdu_size),
                num(v, "server_max_receive_pdu_size")
            );
            assert_eq!(r.vaa_name, VAA_NAME_LN);
        }
        Apdu::GetRequest(GetRequest::Normal {
            invoke: i,
            attribute,
            access,
        }) => {
            assert_eq!(*i, invoke);
            assert_eq!(u64::from(attribute.class_id), num(v, "class_id"));
            assert_eq!(attribute.instance, obis(v));
            assert_eq!(attribute.attribute as u64, num(v, "attribute"));
            match v.get("selector") {
                None => assert_eq!(*access, None),
                Some(s) => {
                    let access = access.as_ref().unwrap();
                    assert_eq!(u64::from(access.selector), s.as_u64().unwrap());
                    // Range: structure{restricting object, from, to, columns}; entry:
                    // structure{from entry, to entry, from column, to column}.
                    assert_eq!(access.parameters.as_elements().unwrap().len(), 4);
                }
            }
        }
        Apdu::GetRequest(GetRequest::Next {
            invoke: i,
            block_number,
        }) => {
            assert_eq!(*i, invoke);
            assert_eq!(u64::from(*block_number), num(v, "block_number"));
        }
        Apdu::GetRequest(GetRequest::WithList { invoke: i, items }) => {
            assert_eq!(*i, invoke);
            assert_eq!(items.len() as u64, num(v, "count"));
            assert_eq!(items[0].0.instance, ObisCode::new(0, 0, 1, 0, 0, 255));
            assert_eq!(items[1].0.instance, ObisCode::new(1, 0, 1, 8, 0, 255));
            assert!(items.iter().all(|(_, a)| a.is_none()));
        }
        Apdu::GetResponse(r) => {
            assert_eq!(r.invoke(), invoke);
            match (name, r) {
                ("get-response-normal clock time", GetResponse::Normal { result, .. }) => {
                    let GetDataResult::Data(Data::OctetString(b)) = result else {
                        panic!("{result:?}");
                    };
                    assert_eq!(b.len(), 12);
                    assert_eq!(&b[..5], &[0x07, 0xE8, 5, 17, 0xFF]);
                }
                ("get-response-normal register", GetResponse::Normal { result, .. }) => {
                    assert_eq!(
                        *result,
                        GetDataResult::Data(Data::DoubleLongUnsigned(123_456))
                    );
                }
                ("get-response-with-list", GetResponse::WithList { results, .. }) => {
                    assert_eq!(results.len() as u64, num(v, "count"));
                    assert_eq!(
                        results[1],
                        GetDataResult::Data(Data::DoubleLongUnsigned(123_456))
                    );
                }
                ("get-response-error object undefined", GetResponse::Normal { result, .. }) => {
                    assert_eq!(
                        *result,
                        GetDataResult::Error(DataAccessResult::ObjectUndefined)
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        Apdu::SetRequest(SetRequest::Normal {
            invoke: i,
            attribute,
            access,
            value,
        }) => {
            assert_eq!(*i, invoke);
            assert_eq!(u64::from(attribute.class_id), num(v, "class_id"));
            assert_eq!(attribute.instance, obis(v));
            assert_eq!(attribute.attribute as u64, num(v, "attribute"));
            assert_eq!(*access, None);
            assert_eq!(*value, Data::VisibleString(b"XYZ".to_vec()));
        }
        Apdu::SetResponse(r) => {
            assert_eq!(
                *r,
                SetResponse::Normal {
                    invoke,
                    result: DataAccessResult::Success
                }
            );
        }
        Apdu::ActionRequest(ActionRequest::Normal {
            invoke: i,
            method,
            parameters,
        }) => {
            assert_eq!(*i, invoke);
            assert_eq!(u64::from(method.class_id), num(v, "class_id"));
            assert_eq!(method.instance, obis(v));
            assert_eq!(method.method as u64, num(v, "method"));
            assert_eq!(*parameters, Some(Data::Integer(0)));
        }
        Apdu::ActionResponse(r) => {
            assert_eq!(
                *r,
                ActionResponse::Normal {
                    invoke,
                    result: ActionResult::Success,
                    return_parameters: None
                }
            );
        }
        Apdu::DataNotification(n) => {
            assert_eq!(n.date_time.is_some(), v["has_date_time"].as_bool().unwrap());
            if let Some(t) = &n.date_time {
                assert_eq!(t.len(), 12);
            }
            assert_eq!(
                n.body,
                Data::Structure(vec![Data::DoubleLongUnsigned(123_456)])
            );
        }
        other => panic!("{name}: no field check for {other:?}"),
    }
}

#[test]
fn gurux_vectors_decode_check_and_reencode() {
    let all = vectors();
    assert!(all.len() >= 15, "vector file lost entries");
    for v in &all {
        let name = v["name"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let apdu = Apdu::decode_exact(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(kind(&apdu), v["kind"].as_str().unwrap(), "{name}");
        check_fields(v, &apdu);
        assert_eq!(apdu.to_bytes(), bytes, "{name}: re-encoding differs");
    }
}

#[test]
fn gurux_vectors_every_prefix_fails() {
    for v in vectors() {
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        for n in 0..bytes.len() {
            assert!(
                Apdu::decode_exact(&bytes[..n]).is_err(),
                "{}: prefix of {n} bytes decoded",
                v["name"]
            );
        }
    }
}
