#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::association_ln::*;
use super::profile_generic::{
    entry_descriptor, range_descriptor, select, ENTRY_DESCRIPTOR, RANGE_DESCRIPTOR,
};
use super::*;
use crate::axdr::DateTime;

fn columns() -> Vec<CaptureObject> {
    let c = |class_id, ln: [u8; 6]| CaptureObject {
        class_id,
        logical_name: ObisCode(ln),
        attribute_index: 2,
        data_index: 0,
    };
    vec![
        c(8, [0, 0, 1, 0, 0, 255]),
        c(3, [1, 0, 1, 8, 0, 255]),
        c(3, [1, 0, 2, 8, 0, 255]),
        c(3, [1, 0, 3, 8, 0, 255]),
    ]
}

const T0: i64 = 1_795_651_200;

fn rows() -> Vec<Vec<Data>> {
    (0..96)
        .map(|i| {
            vec![
                Data::OctetString(DateTime::from_unix(T0 + 900 * i, 60, 0).to_octets()),
                Data::DoubleLongUnsigned(i as u32),
                Data::DoubleLongUnsigned(2 * i as u32),
                Data::DoubleLongUnsigned(3 * i as u32),
            ]
        })
        .collect()
}

fn at(t: i64) -> Data {
    Data::OctetString(DateTime::from_unix(t, 0, 0).to_octets())
}

#[test]
fn range_selection() {
    let cols = columns();
    let p = range_descriptor(&cols[0], &at(T0 + 900 * 10), &at(T0 + 900 * 13), &[]);
    let r = select(&rows(), &cols, RANGE_DESCRIPTOR, &p).unwrap();
    assert_eq!(r, rows()[10..14].to_vec());
    // Column subset.
    let p = range_descriptor(&cols[0], &at(T0), &at(T0 + 900), &[cols[0], cols[2]]);
    let r = select(&rows(), &cols, RANGE_DESCRIPTOR, &p).unwrap();
    assert_eq!(
        r,
        vec![
            vec![rows()[0][0].clone(), rows()[0][2].clone()],
            vec![rows()[1][0].clone(), rows()[1][2].clone()]
        ]
    );
    // Empty and inverted ranges.
    let p = range_descriptor(&cols[0], &at(T0 - 9000), &at(T0 - 900), &[]);
    assert!(select(&rows(), &cols, RANGE_DESCRIPTOR, &p)
        .unwrap()
        .is_empty());
    let p = range_descriptor(&cols[0], &at(T0 + 9000), &at(T0), &[]);
    assert!(select(&rows(), &cols, RANGE_DESCRIPTOR, &p)
        .unwrap()
        .is_empty());
    // A restricting object that is not captured.
    let other = CaptureObject {
        class_id: 1,
        logical_name: ObisCode([0; 6]),
        attribute_index: 2,
        data_index: 0,
    };
    let p = range_descriptor(&other, &at(T0), &at(T0), &[]);
    assert!(select(&rows(), &cols, RANGE_DESCRIPTOR, &p).is_err());
}

#[test]
fn entry_selection() {
    let cols = columns();
    let r = select(
        &rows(),
        &cols,
        ENTRY_DESCRIPTOR,
        &entry_descriptor(3, 5, 1, 0),
    )
    .unwrap();
    assert_eq!(r, rows()[2..5].to_vec());
    let r = select(
        &rows(),
        &cols,
        ENTRY_DESCRIPTOR,
        &entry_descriptor(95, 0, 2, 3),
    )
    .unwrap();
    assert_eq!(
        r,
        vec![rows()[94][1..3].to_vec(), rows()[95][1..3].to_vec()]
    );
    assert!(select(
        &rows(),
        &cols,
        ENTRY_DESCRIPTOR,
        &entry_descriptor(10, 5, 1, 0)
    )
    .unwrap()
    .is_empty());
    assert!(select(
        &rows(),
        &cols,
        ENTRY_DESCRIPTOR,
        &entry_descriptor(0, 5, 1, 0)
    )
    .is_err());
    assert!(select(
        &rows(),
        &cols,
        ENTRY_DESCRIPTOR,
        &entry_descriptor(1, 5, 1, 9)
    )
    .is_err());
    assert!(select(&rows(), &cols, 9, &Data::Null).is_err());
    assert!(select(&rows(), &cols, ENTRY_DESCRIPTOR, &Data::Null).is_err());
}

#[test]
fn structured_values_round_trip_and_reject_wrong_shapes() {
    let su = ScalerUnit {
        scaler: -3,
        unit: Unit::WATT_HOUR,
    };
    assert_eq!(ScalerUnit::from_data(&su.to_data()).unwrap(), su);
    assert_eq!(su.apply(12345.0), 12.345);
    assert_eq!(Unit::WATT_HOUR.symbol(), Some("Wh"));
    assert!(ScalerUnit::from_data(&Data::Structure(vec![Data::Integer(0)])).is_err());
    assert!(ScalerUnit::from_data(&Data::Unsigned(1)).is_err());
    for c in columns() {
        assert_eq!(CaptureObject::from_data(&c.to_data()).unwrap(), c);
    }
    assert!(CaptureObject::from_data(&Data::Structure(vec![Data::Null; 4])).is_err());
    let e = ObjectListElement {
        class_id: 7,
        version: 1,
        logical_name: ObisCode([1, 0, 99, 1, 0, 255]),
        access_rights: AccessRights {
            attributes: vec![
                AttributeAccess {
                    attribute: 1,
                    mode: AttributeAccessMode::Read,
                    selectors: None,
                },
                AttributeAccess {
                    attribute: 2,
                    mode: AttributeAccessMode::Read,
                    selectors: Some(vec![1, 2]),
                },
            ],
            methods: vec![MethodAccess {
                method: 1,
                mode: MethodAccessMode::NoAccess,
            }],
        },
    };
    let list = object_list_to_data(&[e.clone(), e.clone()]);
    assert_eq!(object_list_from_data(&list).unwrap(), vec![e.clone(), e]);
    assert!(object_list_from_data(&Data::Array(vec![Data::Null])).is_err());
}

#[test]
fn names() {
    for c in [
        1, 3, 4, 5, 7, 8, 9, 11, 15, 18, 20, 21, 22, 23, 40, 64, 70, 71,
    ] {
        assert!(class_name(c).is_some(), "{c}");
        assert_eq!(attribute_name(c, 1), Some("logical_name"));
    }
    assert_eq!(attribute_name(3, 3), Some("scaler_unit"));
    assert_eq!(attribute_name(7, 2), Some("buffer"));
    assert_eq!(method_name(70, 1), Some("remote_disconnect"));
    assert_eq!(method_name(15, 1), Some("reply_to_HLS_authentication"));
    assert_eq!(attribute_name(3, 9), None);
    assert_eq!(method_name(3, 0), None);
}
