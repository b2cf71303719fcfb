//! Every attribute of every object of a simulated meter, at every client level: readable where
//! the object list says so, and shaped as the Blue Book defines (checked with the `dlms`
//! crate's strict typed views). A malformed or hostile request never panics the model.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use dlms::axdr::Data;
use dlms::cosem::association_ln::{object_list_from_data, AttributeAccessMode, XdlmsContextInfo};
use dlms::cosem::{clock, image_transfer, profile_generic, push_setup, ScalerUnit};
use dlms::server::{Objects, RequestContext};
use dlms::xdlms::{DataAccessResult, SelectiveAccess};
use dlms::{AttributeDescriptor, DateTime, Mechanism, MethodDescriptor, ObisCode, SecurityLevel};
use hes_sim::{obis, Meter, MeterConfig, OBJECTS};

fn contexts() -> [RequestContext; 3] {
    [
        RequestContext {
            client_sap: 16,
            mechanism: Mechanism::None,
            security: SecurityLevel::None,
        },
        RequestContext {
            client_sap: 17,
            mechanism: Mechanism::Low,
            security: SecurityLevel::None,
        },
        RequestContext {
            client_sap: 1,
            mechanism: Mechanism::HighGmac,
            security: SecurityLevel::AuthenticatedEncrypted,
        },
    ]
}

fn meter() -> Meter {
    let mut cfg = MeterConfig::new(42);
    cfg.profile_entries = 200;
    Meter::new(cfg)
}

/// Checks the shape of the values whose type the Blue Book fixes and our views know.
fn check_shape(class_id: u16, obis: ObisCode, attribute: i8, d: &Data) {
    let what = format!("{class_id}/{obis}/{attribute}: {d:?}");
    match (class_id, attribute) {
        (8, 2) => {
            clock::time_from_data(d).expect(&what);
        }
        (3, 3) => {
            ScalerUnit::from_data(d).expect(&what);
        }
        (7, 2) => {
            profile_generic::buffer_from_data(d).expect(&what);
        }
        (7, 3) => {
            profile_generic::capture_objects_from_data(d).expect(&what);
        }
        (15, 2) => {
            object_list_from_data(d).expect(&what);
        }
        (15, 5) => {
            XdlmsContextInfo::from_data(d).expect(&what);
        }
        (18, 3) => {
            image_transfer::transferred_blocks_from_data(d).expect(&what);
        }
        (18, 7) => {
            image_transfer::image_to_activate_info_from_data(d).expect(&what);
        }
        (40, 2) => {
            push_setup::push_object_list_from_data(d).expect(&what);
        }
        (40, 3) => {
            push_setup::SendDestinationAndMethod::from_data(d).expect(&what);
        }
        _ => {}
    }
}

#[test]
fn every_listed_attribute_reads_and_has_its_standard_shape() {
    let mut m = meter();
    for ctx in contexts() {
        let a = |class_id, instance, attribute| AttributeDescriptor {
            class_id,
            instance,
            attribute,
        };
        let list = m
            .get(&ctx, &a(15, obis::CURRENT_ASSOCIATION, 2), None)
            .unwrap();
        let list = object_list_from_data(&list).unwrap();
        assert_eq!(list.len(), OBJECTS.len());
        for o in &list {
            for access in &o.access_rights.attributes {
                let r = m.get(&ctx, &a(o.class_id, o.logical_name, access.attribute), None);
                if access.mode == AttributeAccessMode::NoAccess {
                    assert_eq!(r, Err(DataAccessResult::ReadWriteDenied));
                    continue;
                }
                let d = r.unwrap_or_else(|e| {
                    panic!(
                        "{}/{}/{}: {e:?}",
                        o.class_id, o.logical_name, access.attribute
                    )
                });
                check_shape(o.class_id, o.logical_name, access.attribute, &d);
            }
        }
    }
}

#[test]
fn profiles_answer_selective_access_and_extreme_ranges_without_panicking() {
    let mut m = meter();
    let ctx = contexts()[2];
    let now = m.now();
    for p in [
        obis::LOAD_PROFILE,
        obis::DAILY_PROFILE,
        obis::BILLING_PROFILE,
        obis::STANDARD_LOG,
        obis::FRAUD_LOG,
        obis::POWER_QUALITY_LOG,
    ] {
        let a = AttributeDescriptor {
            class_id: 7,
            instance: p,
            attribute: 2,
        };
        let columns = m
            .get(&ctx, &AttributeDescriptor { attribute: 3, ..a }, None)
            .unwrap();
        let columns = profile_generic::capture_objects_from_data(&columns).unwrap();
        let dt = |t: i64| Data::OctetString(DateTime::from_unix(t, 0, 0).to_octets());
        for (from, to) in [
            (now - 40 * 86_400, now),
            (now - 400 * 86_400, now + 86_400),
            (0, 1),
            (now, now - 86_400),
            (-62_000_000_000, 253_000_000_000),
        ] {
            let sa = SelectiveAccess {
                selector: 1,
                parameters: profile_generic::range_descriptor(&columns[0], &dt(from), &dt(to), &[]),
            };
            let r = m.get(&ctx, &a, Some(&sa));
            assert!(
                r.is_ok() || r == Err(DataAccessResult::OtherReason),
                "{p}: {r:?}"
            );
        }
        for (from, to) in [(1, 0), (0, 0), (5, 3), (u32::MAX, u32::MAX), (1, 1)] {
            let sa = SelectiveAccess {
                selector: 2,
                parameters: profile_generic::entry_descriptor(from, to, 1, 0),
            };
            let _ = m.get(&ctx, &a, Some(&sa));
        }
        // A range whose bounds are garbage is an error, not a panic.
        let sa = SelectiveAccess {
            selector: 1,
            parameters: Data::Structure(vec![Data::Null; 4]),
        };
        assert!(m.get(&ctx, &a, Some(&sa)).is_err());
    }
}

#[test]
fn reading_clients_cannot_write_or_command_and_bad_values_are_refused() {
    let mut m = meter();
    let [public, reader, management] = contexts();
    let clock = AttributeDescriptor {
        class_id: 8,
        instance: obis::CLOCK,
        attribute: 2,
    };
    let t = Data::OctetString(DateTime::from_unix(m.now() + 60, 0, 0).to_octets());
    for ctx in [public, reader] {
        assert_eq!(
            m.set(&ctx, &clock, None, t.clone()),
            DataAccessResult::ReadWriteDenied
        );
        let relay = MethodDescriptor {
            class_id: 70,
            instance: obis::DISCONNECT,
            method: 1,
        };
        assert!(m.action(&ctx, &relay, Some(Data::Integer(0))).is_err());
    }
    assert_eq!(
        m.set(&management, &clock, None, Data::Null),
        DataAccessResult::TypeUnmatched
    );
    assert_eq!(
        m.set(&management, &clock, None, t),
        DataAccessResult::Success
    );
    assert!((m.clock_offset() - 60).abs() <= 1);
    // Every object, every attribute, every method, with hostile values: no panics.
    let hostile = [
        Data::Null,
        Data::OctetString(vec![0xFF; 300]),
        Data::Array(vec![Data::Structure(vec![Data::Null]); 50]),
        Data::DoubleLongUnsigned(u32::MAX),
        Data::Structure(vec![
            Data::OctetString(b"x".to_vec()),
            Data::DoubleLongUnsigned(u32::MAX),
        ]),
    ];
    for d in OBJECTS {
        for attribute in -1..=12 {
            for v in &hostile {
                let a = AttributeDescriptor {
                    class_id: d.class_id,
                    instance: d.obis,
                    attribute,
                };
                let _ = m.set(&management, &a, None, v.clone());
            }
        }
        for method in -1..=6 {
            for v in &hostile {
                let md = MethodDescriptor {
                    class_id: d.class_id,
                    instance: d.obis,
                    method,
                };
                let _ = m.action(&management, &md, Some(v.clone()));
            }
        }
    }
}
