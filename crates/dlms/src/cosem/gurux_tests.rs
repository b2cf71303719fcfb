//! Byte-exact checks against Gurux's encodings (testdata/gurux/cosem.json, written by
//! interop/vectors/cosem.py): we decode what Gurux writes and encode the same bytes.
//!
//! Gurux quirks seen here (both are within the standard): its range descriptors leave the
//! day of week unspecified (0xFF) in the from/to date-times, and its entry descriptors send
//! `from_selected_value` 1 where 0 would also mean "from the first column".
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use serde_json::Value;

use super::association_ln::object_list_from_data;
use super::profile_generic::{
    capture_objects_from_data, capture_objects_to_data, entry_descriptor, range_descriptor,
    RangeDescriptor, ENTRY_DESCRIPTOR, RANGE_DESCRIPTOR,
};
use super::{CaptureObject, ScalerUnit, Unit};
use crate::axdr::Data;
use crate::codec::Codec;
use crate::obis::ObisCode;

fn vectors(kind: &str) -> Vec<Value> {
    let all: Value =
        serde_json::from_str(include_str!("../../../../testdata/gurux/cosem.json")).unwrap();
    let v: Vec<Value> = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["kind"] == kind)
        .cloned()
        .collect();
    assert!(!v.is_empty(), "no {kind} vectors");
    v
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v["hex"].as_str().unwrap()).unwrap()
}

fn data(v: &Value) -> Data {
    Data::decode_exact(&bytes(v)).unwrap()
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap()
}

fn obis(v: &Value) -> ObisCode {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn scaler_unit_matches_gurux() {
    for v in vectors("scaler_unit") {
        let ours = ScalerUnit::new(int(&v["scaler"]) as i8, Unit(int(&v["unit"]) as u8));
        assert_eq!(ScalerUnit::from_data(&data(&v)), Ok(ours));
        assert_eq!(ours.to_data().to_bytes(), bytes(&v));
    }
}

#[test]
fn capture_objects_match_gurux() {
    for v in vectors("capture_objects") {
        let want: Vec<CaptureObject> = v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| CaptureObject {
                class_id: int(&o["class_id"]) as u16,
                logical_name: obis(&o["logical_name"]),
                attribute_index: int(&o["attribute_index"]) as i8,
                data_index: int(&o["data_index"]) as u16,
            })
            .collect();
        assert_eq!(capture_objects_from_data(&data(&v)).unwrap(), want);
        assert_eq!(capture_objects_to_data(&want).to_bytes(), bytes(&v));
    }
}

#[test]
fn object_list_matches_gurux() {
    for v in vectors("object_list") {
        let list = object_list_from_data(&data(&v)).unwrap();
        let want = v["objects"].as_array().unwrap();
        assert_eq!(list.len(), want.len());
        for (ours, theirs) in list.iter().zip(want) {
            assert_eq!(i64::from(ours.class_id), int(&theirs["class_id"]));
            assert_eq!(i64::from(ours.version), int(&theirs["version"]));
            assert_eq!(ours.logical_name, obis(&theirs["logical_name"]));
            assert!(ours.access_rights.attributes.is_empty());
        }
        assert_eq!(
            super::association_ln::object_list_to_data(&list).to_bytes(),
            bytes(&v)
        );
    }
}

#[test]
fn range_descriptor_matches_gurux() {
    let clock = CaptureObject::new(8, ObisCode::new(0, 0, 1, 0, 0, 255), 2);
    for v in vectors("range_descriptor") {
        assert_eq!(int(&v["selector"]), i64::from(RANGE_DESCRIPTOR));
        let r = RangeDescriptor::from_data(&data(&v)).unwrap();
        assert_eq!(r.restricting_object, clock);
        let instant = |d: &Data| d.as_date_time().and_then(|t| t.to_unix()).unwrap();
        assert_eq!(instant(&r.from_value), int(&v["from_unix"]));
        assert_eq!(instant(&r.to_value), int(&v["to_unix"]));
        let selected: Vec<ObisCode> = v["selected"].as_array().unwrap().iter().map(obis).collect();
        let ours: Vec<ObisCode> = r.selected_values.iter().map(|c| c.logical_name).collect();
        assert_eq!(ours, selected);
        let encoded = range_descriptor(&clock, &r.from_value, &r.to_value, &r.selected_values);
        assert_eq!(encoded.to_bytes(), bytes(&v));
    }
}

#[test]
fn entry_descriptor_matches_gurux() {
    for v in vectors("entry_descriptor") {
        assert_eq!(int(&v["selector"]), i64::from(ENTRY_DESCRIPTOR));
        // Gurux's readRowsByEntry(index, count): entries index..index+count-1, count 0 = all.
        let from = int(&v["index"]) as u32;
        let count = int(&v["count"]) as u32;
        let to = if count == 0 { 0 } else { from + count - 1 };
        assert_eq!(entry_descriptor(from, to, 1, 0).to_bytes(), bytes(&v));
    }
}
