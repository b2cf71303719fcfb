#![no_main]
use dlms::cosem::{self, profile_generic, CaptureObject, CosemValue};
use dlms::{Codec, Data};
use libfuzzer_sys::fuzz_target;

/// Every view must answer any value with Ok or a typed error; what it accepts must encode back
/// to a value it accepts again, unchanged.
fn view<T: CosemValue + PartialEq + std::fmt::Debug>(d: &Data) {
    if let Ok(v) = T::from_data(d) {
        assert_eq!(T::from_data(&v.to_data()).as_ref(), Ok(&v));
    }
}

fuzz_target!(|bytes: &[u8]| {
    // The first byte picks a selector; the rest is one or two Data values.
    let Some((&selector, rest)) = bytes.split_first() else {
        return;
    };
    let mut r = dlms::Reader::new(rest);
    let Ok(d) = Data::decode(&mut r) else {
        return;
    };
    view::<cosem::ScalerUnit>(&d);
    view::<CaptureObject>(&d);
    view::<cosem::ValueDefinition>(&d);
    view::<cosem::ScriptRef>(&d);
    view::<profile_generic::SortMethod>(&d);
    view::<profile_generic::EntryDescriptor>(&d);
    view::<cosem::clock::ClockBase>(&d);
    view::<cosem::clock::PresetAdjustingTime>(&d);
    view::<cosem::script_table::Script>(&d);
    view::<cosem::special_days_table::SpecialDay>(&d);
    view::<cosem::association_ln::ObjectListElement>(&d);
    view::<cosem::association_ln::AttributeAccess>(&d);
    view::<cosem::association_ln::MethodAccess>(&d);
    view::<cosem::association_ln::AssociatedPartnersId>(&d);
    view::<cosem::association_ln::ContextName>(&d);
    view::<cosem::association_ln::XdlmsContextInfo>(&d);
    view::<cosem::association_ln::UserEntry>(&d);
    view::<cosem::image_transfer::ImageTransferStatus>(&d);
    view::<cosem::image_transfer::ImageToActivateInfo>(&d);
    view::<cosem::image_transfer::ImageTransferInitiate>(&d);
    view::<cosem::image_transfer::ImageBlockTransfer>(&d);
    view::<cosem::activity_calendar::Season>(&d);
    view::<cosem::activity_calendar::WeekProfile>(&d);
    view::<cosem::activity_calendar::DayProfile>(&d);
    view::<cosem::register_monitor::ActionSet>(&d);
    view::<cosem::single_action_schedule::ScheduleType>(&d);
    view::<cosem::single_action_schedule::ExecutionTime>(&d);
    view::<cosem::iec_hdlc_setup::CommSpeed>(&d);
    view::<cosem::push_setup::SendDestinationAndMethod>(&d);
    view::<cosem::push_setup::Window>(&d);
    view::<cosem::push_setup::RepetitionDelay>(&d);
    view::<cosem::security_setup::KeyData>(&d);
    view::<cosem::security_setup::CertificateInfo>(&d);
    view::<cosem::disconnect_control::ControlState>(&d);
    view::<cosem::disconnect_control::ControlMode>(&d);
    view::<cosem::limiter::EmergencyProfile>(&d);
    view::<cosem::limiter::LimiterActions>(&d);
    // RangeDescriptor holds arbitrary Data (NaN floats compare unequal): only require no panic.
    let _ = profile_generic::RangeDescriptor::from_data(&d);
    let _ = cosem::association_ln::object_list_from_data(&d);
    let _ = profile_generic::buffer_from_data(&d);

    // Selective access: the first value is the buffer (or rows of a default buffer) and an
    // optional second value the capture objects; the parameters are the first value too.
    let rows = profile_generic::buffer_from_data(&d).unwrap_or_default();
    let columns = Data::decode(&mut r)
        .ok()
        .and_then(|c| profile_generic::capture_objects_from_data(&c).ok())
        .unwrap_or_default();
    let params = Data::decode(&mut r).unwrap_or(Data::Null);
    if let Ok(selected) = profile_generic::select(&rows, &columns, selector, &params) {
        assert!(selected.len() <= rows.len());
    }
});
