//! Human names of classes, attributes and methods, for logs, JSON output and CLIs.

use super::{
    activity_calendar, association_ln, clock, data, demand_register, disconnect_control,
    extended_register, iec_hdlc_setup, image_transfer, limiter, profile_generic, push_setup,
    register, register_monitor, script_table, security_setup, single_action_schedule,
    special_days_table,
};

/// Attribute 1 of every class.
pub const ATTRIBUTE_LOGICAL_NAME: i8 = 1;

struct ClassNames {
    id: u16,
    name: &'static str,
    /// Attribute n at index n - 1.
    attributes: &'static [&'static str],
    /// Method n at index n - 1.
    methods: &'static [&'static str],
}

const CLASSES: &[ClassNames] = &[
    ClassNames {
        id: data::CLASS_ID,
        name: "Data",
        attributes: data::ATTRIBUTES,
        methods: data::METHODS,
    },
    ClassNames {
        id: register::CLASS_ID,
        name: "Register",
        attributes: register::ATTRIBUTES,
        methods: register::METHODS,
    },
    ClassNames {
        id: extended_register::CLASS_ID,
        name: "ExtendedRegister",
        attributes: extended_register::ATTRIBUTES,
        methods: extended_register::METHODS,
    },
    ClassNames {
        id: demand_register::CLASS_ID,
        name: "DemandRegister",
        attributes: demand_register::ATTRIBUTES,
        methods: demand_register::METHODS,
    },
    ClassNames {
        id: profile_generic::CLASS_ID,
        name: "ProfileGeneric",
        attributes: profile_generic::ATTRIBUTES,
        methods: profile_generic::METHODS,
    },
    ClassNames {
        id: clock::CLASS_ID,
        name: "Clock",
        attributes: clock::ATTRIBUTES,
        methods: clock::METHODS,
    },
    ClassNames {
        id: script_table::CLASS_ID,
        name: "ScriptTable",
        attributes: script_table::ATTRIBUTES,
        methods: script_table::METHODS,
    },
    ClassNames {
        id: special_days_table::CLASS_ID,
        name: "SpecialDaysTable",
        attributes: special_days_table::ATTRIBUTES,
        methods: special_days_table::METHODS,
    },
    ClassNames {
        id: association_ln::CLASS_ID,
        name: "AssociationLn",
        attributes: association_ln::ATTRIBUTES,
        methods: association_ln::METHODS,
    },
    ClassNames {
        id: image_transfer::CLASS_ID,
        name: "ImageTransfer",
        attributes: image_transfer::ATTRIBUTES,
        methods: image_transfer::METHODS,
    },
    ClassNames {
        id: activity_calendar::CLASS_ID,
        name: "ActivityCalendar",
        attributes: activity_calendar::ATTRIBUTES,
        methods: activity_calendar::METHODS,
    },
    ClassNames {
        id: register_monitor::CLASS_ID,
        name: "RegisterMonitor",
        attributes: register_monitor::ATTRIBUTES,
        methods: register_monitor::METHODS,
    },
    ClassNames {
        id: single_action_schedule::CLASS_ID,
        name: "SingleActionSchedule",
        attributes: single_action_schedule::ATTRIBUTES,
        methods: single_action_schedule::METHODS,
    },
    ClassNames {
        id: iec_hdlc_setup::CLASS_ID,
        name: "IecHdlcSetup",
        attributes: iec_hdlc_setup::ATTRIBUTES,
        methods: iec_hdlc_setup::METHODS,
    },
    ClassNames {
        id: push_setup::CLASS_ID,
        name: "PushSetup",
        attributes: push_setup::ATTRIBUTES,
        methods: push_setup::METHODS,
    },
    ClassNames {
        id: security_setup::CLASS_ID,
        name: "SecuritySetup",
        attributes: security_setup::ATTRIBUTES,
        methods: security_setup::METHODS,
    },
    ClassNames {
        id: disconnect_control::CLASS_ID,
        name: "DisconnectControl",
        attributes: disconnect_control::ATTRIBUTES,
        methods: disconnect_control::METHODS,
    },
    ClassNames {
        id: limiter::CLASS_ID,
        name: "Limiter",
        attributes: limiter::ATTRIBUTES,
        methods: limiter::METHODS,
    },
];

fn class(class_id: u16) -> Option<&'static ClassNames> {
    CLASSES.iter().find(|c| c.id == class_id)
}

/// Looks up entry `index` (counted from 1) of a name table.
fn nth(names: &'static [&'static str], index: i8) -> Option<&'static str> {
    let i = usize::try_from(index).ok()?.checked_sub(1)?;
    names.get(i).copied()
}

/// The class's name, e.g. `"Register"` for 3; `None` for classes this module does not cover.
pub fn class_name(class_id: u16) -> Option<&'static str> {
    class(class_id).map(|c| c.name)
}

/// The Blue Book name of an attribute, e.g. `"scaler_unit"` for (3, 3). Attribute 1 is
/// `"logical_name"` for every class, known or not.
pub fn attribute_name(class_id: u16, attribute: i8) -> Option<&'static str> {
    if attribute == ATTRIBUTE_LOGICAL_NAME {
        return Some("logical_name");
    }
    nth(class(class_id)?.attributes, attribute)
}

/// The Blue Book name of a method, e.g. `"remote_disconnect"` for (70, 1).
pub fn method_name(class_id: u16, method: i8) -> Option<&'static str> {
    nth(class(class_id)?.methods, method)
}

#[cfg(test)]
pub(super) fn all_class_ids() -> impl Iterator<Item = u16> {
    CLASSES.iter().map(|c| c.id)
}
