//! Names of the interface classes, their attributes and methods (Blue Book), for display.

/// The Blue Book name of an interface class.
pub fn class_name(class_id: u16) -> Option<&'static str> {
    Some(match class_id {
        1 => "Data",
        3 => "Register",
        4 => "Extended register",
        5 => "Demand register",
        7 => "Profile generic",
        8 => "Clock",
        9 => "Script table",
        11 => "Special days table",
        15 => "Association LN",
        18 => "Image transfer",
        20 => "Activity calendar",
        21 => "Register monitor",
        22 => "Single action schedule",
        23 => "IEC HDLC setup",
        40 => "Push setup",
        64 => "Security setup",
        70 => "Disconnect control",
        71 => "Limiter",
        _ => return None,
    })
}

/// The name of an attribute; attribute 1 is `logical_name` in every class.
pub fn attribute_name(class_id: u16, attribute: i8) -> Option<&'static str> {
    if attribute == 1 {
        return Some("logical_name");
    }
    let names: &[&str] = match class_id {
        1 => &["value"],
        3 => &["value", "scaler_unit"],
        4 => &["value", "scaler_unit", "status", "capture_time"],
        5 => &[
            "current_average_value",
            "last_average_value",
            "scaler_unit",
            "status",
            "capture_time",
            "start_time_current",
            "period",
            "number_of_periods",
        ],
        7 => &[
            "buffer",
            "capture_objects",
            "capture_period",
            "sort_method",
            "sort_object",
            "entries_in_use",
            "profile_entries",
        ],
        8 => &[
            "time",
            "time_zone",
            "status",
            "daylight_savings_begin",
            "daylight_savings_end",
            "daylight_savings_deviation",
            "daylight_savings_enabled",
            "clock_base",
        ],
        9 => &["scripts"],
        11 => &["entries"],
        15 => &[
            "object_list",
            "associated_partners_id",
            "application_context_name",
            "xdlms_context_info",
            "authentication_mechanism_name",
            "secret",
            "association_status",
            "security_setup_reference",
            "user_list",
            "current_user",
        ],
        18 => &[
            "image_block_size",
            "image_transferred_blocks_status",
            "image_first_not_transferred_block_number",
            "image_transfer_enabled",
            "image_transfer_status",
            "image_to_activate_info",
        ],
        20 => &[
            "calendar_name_active",
            "season_profile_active",
            "week_profile_table_active",
            "day_profile_table_active",
            "calendar_name_passive",
            "season_profile_passive",
            "week_profile_table_passive",
            "day_profile_table_passive",
            "activate_passive_calendar_time",
        ],
        21 => &["thresholds", "monitored_value", "actions"],
        22 => &["executed_script", "type", "execution_time"],
        23 => &[
            "comm_speed",
            "window_size_transmit",
            "window_size_receive",
            "max_info_field_length_transmit",
            "max_info_field_length_receive",
            "inter_octet_time_out",
            "inactivity_time_out",
            "device_address",
        ],
        40 => &[
            "push_object_list",
            "send_destination_and_method",
            "communication_window",
            "randomisation_start_interval",
            "number_of_retries",
            "repetition_delay",
        ],
        64 => &[
            "security_policy",
            "security_suite",
            "client_system_title",
            "server_system_title",
            "certificates",
        ],
        70 => &["output_state", "control_state", "control_mode"],
        71 => &[
            "monitored_value",
            "threshold_active",
            "threshold_normal",
            "threshold_emergency",
            "min_over_threshold_duration",
            "min_under_threshold_duration",
            "emergency_profile",
            "emergency_profile_group_id_list",
            "emergency_profile_active",
            "actions",
        ],
        _ => return None,
    };
    names
        .get(usize::try_from(attribute).ok()?.checked_sub(2)?)
        .copied()
}

/// The name of a method.
pub fn method_name(class_id: u16, method: i8) -> Option<&'static str> {
    let names: &[&str] = match class_id {
        1 | 3 | 4 | 5 => &["reset", "next_period"],
        7 => &["reset", "capture"],
        8 => &[
            "adjust_to_quarter",
            "adjust_to_measuring_period",
            "adjust_to_minute",
            "adjust_to_preset_time",
            "preset_adjusting_time",
            "shift_time",
        ],
        9 => &["execute"],
        11 => &["insert", "delete"],
        15 => &[
            "reply_to_HLS_authentication",
            "change_HLS_secret",
            "add_object",
            "remove_object",
        ],
        18 => &[
            "image_transfer_initiate",
            "image_block_transfer",
            "image_verify",
            "image_activate",
        ],
        20 => &["activate_passive_calendar"],
        40 => &["push"],
        64 => &[
            "security_activate",
            "key_transfer",
            "key_agreement",
            "generate_key_pair",
        ],
        70 => &["remote_disconnect", "remote_reconnect"],
        _ => return None,
    };
    let names: &[&str] = if matches!(class_id, 1 | 3 | 4) && method > 1 {
        &[]
    } else {
        names
    };
    names
        .get(usize::try_from(method).ok()?.checked_sub(1)?)
        .copied()
}
