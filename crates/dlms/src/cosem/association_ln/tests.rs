#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;
use crate::axdr::BitString;
use crate::codec::Codec;
use crate::cosem::CosemError;
use crate::obis::ObisCode;
use crate::types::{ApplicationContext, Mechanism};

fn clock_element() -> ObjectListElement {
    ObjectListElement {
        class_id: 8,
        version: 0,
        logical_name: ObisCode::new(0, 0, 1, 0, 0, 255),
        access_rights: AccessRights {
            attributes: vec![
                AttributeAccess {
                    attribute: 1,
                    mode: AttributeAccessMode::Read,
                    selectors: None,
                },
                AttributeAccess {
                    attribute: 2,
                    mode: AttributeAccessMode::ReadWrite,
                    selectors: Some(vec![]),
                },
            ],
            methods: vec![MethodAccess {
                method: 6,
                mode: MethodAccessMode::AuthenticatedAccess,
            }],
        },
    }
}

#[test]
fn object_list_element_encodes_per_the_blue_book() {
    let bytes = clock_element().to_data().to_bytes();
    let expect = hex::decode(
        concat!(
            "0204",                // object_list_element
            "120008",              // class_id 8
            "1100",                // version 0
            "0906 0000010000FF",   // logical name
            "0202",                // access_rights
            "0102",                // attribute_access: 2 items
            "0203 0F01 1601 00",   // attr 1, read-only, no selectors
            "0203 0F02 1603 0100", // attr 2, read-write, empty selector array
            "0101",                // method_access: 1 item
            "0202 0F06 1602",      // method 6, authenticated access
        )
        .replace(' ', ""),
    )
    .unwrap();
    assert_eq!(bytes, expect);
    let list = vec![clock_element(), clock_element()];
    assert_eq!(
        object_list_from_data(&object_list_to_data(&list)).unwrap(),
        list
    );
}

#[test]
fn access_modes() {
    for v in 0..=255u8 {
        assert_eq!(AttributeAccessMode::from_u8(v).to_u8(), v);
    }
    use AttributeAccessMode::*;
    let readable = [Read, ReadWrite, AuthenticatedRead, AuthenticatedReadWrite];
    let writable = [Write, ReadWrite, AuthenticatedWrite, AuthenticatedReadWrite];
    for m in [
        NoAccess,
        Read,
        Write,
        ReadWrite,
        AuthenticatedRead,
        AuthenticatedWrite,
        AuthenticatedReadWrite,
    ] {
        assert_eq!(m.can_read(), readable.contains(&m), "{m:?}");
        assert_eq!(m.can_write(), writable.contains(&m), "{m:?}");
    }
    let rights = clock_element().access_rights;
    assert_eq!(rights.attribute(2), ReadWrite);
    assert_eq!(rights.attribute(9), NoAccess);
    assert!(rights.method(6).can_execute());
    assert!(!rights.method(1).can_execute());
}

#[test]
fn version_0_boolean_method_access_is_read() {
    let d = Data::Structure(vec![Data::Integer(1), Data::Boolean(true)]);
    assert_eq!(
        MethodAccess::from_data(&d).unwrap().mode,
        MethodAccessMode::Access
    );
    let d = Data::Structure(vec![Data::Integer(1), Data::Unsigned(1)]);
    assert!(matches!(
        MethodAccess::from_data(&d),
        Err(CosemError::WrongType { .. })
    ));
}

#[test]
fn context_names_in_both_forms() {
    let ln = ContextName::application_context(ApplicationContext::LogicalName);
    assert_eq!(
        ln.to_data(),
        Data::OctetString(vec![0x60, 0x85, 0x74, 0x05, 0x08, 0x01, 0x01])
    );
    assert_eq!(ContextName::from_data(&ln.to_data()), Ok(ln));
    assert_eq!(ContextName::from_data(&ln.to_structure_data()), Ok(ln));
    assert_eq!(
        ln.as_application_context(),
        Some(ApplicationContext::LogicalName)
    );
    assert_eq!(ln.as_mechanism(), None);
    let gmac = ContextName::mechanism(Mechanism::HighGmac);
    assert_eq!(gmac.as_mechanism(), Some(Mechanism::HighGmac));
    // With the BER tag and length in front, as some meters send it.
    let tagged = Data::OctetString(hex::decode("060760857405080205").unwrap());
    assert_eq!(ContextName::from_data(&tagged), Ok(gmac));
    assert!(ContextName::from_data(&Data::OctetString(vec![0x60, 0x85])).is_err());
    assert!(ContextName::from_data(&Data::Unsigned(1)).is_err());
    // Outside the DLMS UA arc, only the structure form can hold it.
    let other = ContextName { country: 17, ..ln };
    assert_eq!(ContextName::from_data(&other.to_data()), Ok(other));
    assert_eq!(other.as_application_context(), None);
}

#[test]
fn other_attributes_round_trip() {
    let p = AssociatedPartnersId {
        client_sap: 16,
        server_sap: 1,
    };
    assert_eq!(AssociatedPartnersId::from_data(&p.to_data()), Ok(p));
    let x = XdlmsContextInfo {
        conformance: BitString::new(24, vec![0x00, 0x7E, 0x1F]),
        max_receive_pdu_size: 1024,
        max_send_pdu_size: 512,
        dlms_version_number: 6,
        quality_of_service: 0,
        cyphering_info: vec![],
    };
    assert_eq!(XdlmsContextInfo::from_data(&x.to_data()), Ok(x));
    for s in [
        AssociationStatus::NonAssociated,
        AssociationStatus::AssociationPending,
        AssociationStatus::Associated,
    ] {
        assert_eq!(AssociationStatus::from_data(&s.to_data()), Ok(s));
    }
    assert!(AssociationStatus::from_data(&Data::Enum(3)).is_err());
    let u = UserEntry {
        user_id: 3,
        user_name: b"operator".to_vec(),
    };
    assert_eq!(UserEntry::from_data(&u.to_data()), Ok(u));
    assert_eq!(
        reply_to_hls_authentication_params(&[1, 2]),
        Data::OctetString(vec![1, 2])
    );
}
