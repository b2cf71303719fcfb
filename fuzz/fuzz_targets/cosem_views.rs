#![no_main]
use dlms::cosem::{association_ln, classes, profile_generic, CaptureObject, ScalerUnit};
use dlms::{Codec, Data};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(d) = Data::decode_exact(bytes) else {
        return;
    };
    // Typed views of arbitrary values give a value or a typed error.
    let _ = ScalerUnit::from_data(&d);
    let _ = CaptureObject::from_data(&d);
    let _ = association_ln::object_list_from_data(&d);
    let _ = classes::Script::from_data(&d);
    let _ = classes::SpecialDay::from_data(&d);
    let _ = classes::Season::from_data(&d);
    let _ = classes::WeekProfile::from_data(&d);
    let _ = classes::DayProfile::from_data(&d);
    let _ = classes::ActionSet::from_data(&d);
    let _ = classes::ExecutionTime::from_data(&d);
    let _ = classes::SendDestination::from_data(&d);
    let _ = classes::Window::from_data(&d);
    let _ = classes::EmergencyProfile::from_data(&d);
    if let Some(attrs) = d.as_elements() {
        let _ = classes::HdlcSetup::from_attributes(attrs);
        let _ = classes::ExtendedRegister::from_attributes(attrs);
        let _ = classes::DemandRegister::from_attributes(attrs);
    }
    // A meter applying arbitrary selective-access parameters to a small buffer.
    let columns: Vec<CaptureObject> = (0..3)
        .map(|i| CaptureObject {
            class_id: 3,
            logical_name: dlms::ObisCode::new(1, 0, i, 8, 0, 255),
            attribute_index: 2,
            data_index: 0,
        })
        .collect();
    let rows: Vec<Vec<Data>> = (0..5u32)
        .map(|i| vec![Data::DoubleLongUnsigned(i), Data::Null, Data::Unsigned(1)])
        .collect();
    for selector in [1, 2, 3] {
        if let Ok(r) = profile_generic::select(&rows, &columns, selector, &d) {
            assert!(r.len() <= rows.len());
        }
    }
});
