//! Association LN (class 15): the current association as the meter sees it: which objects it
//! exposes with which rights, the partners, the negotiated context and the HLS methods.

mod context;
mod object_list;
#[cfg(test)]
mod tests;

pub use context::{
    AssociatedPartnersId, AssociationStatus, ContextName, UserEntry, XdlmsContextInfo,
    CONTEXT_KIND_APPLICATION_CONTEXT, CONTEXT_KIND_MECHANISM,
};
pub use object_list::{
    object_list_from_data, object_list_to_data, AccessRights, AttributeAccess, AttributeAccessMode,
    MethodAccess, MethodAccessMode, ObjectListElement,
};

use crate::axdr::Data;

pub const CLASS_ID: u16 = 15;
/// Version 2 (user list, current user). Versions 1 and 3 share the attribute layout; the
/// object list reader copes with the differences in access-right encoding.
pub const VERSION: u8 = 2;

pub const LOGICAL_NAME: i8 = 1;
pub const OBJECT_LIST: i8 = 2;
pub const ASSOCIATED_PARTNERS_ID: i8 = 3;
pub const APPLICATION_CONTEXT_NAME: i8 = 4;
pub const XDLMS_CONTEXT_INFO: i8 = 5;
pub const AUTHENTICATION_MECHANISM_NAME: i8 = 6;
pub const SECRET: i8 = 7;
pub const ASSOCIATION_STATUS: i8 = 8;
pub const SECURITY_SETUP_REFERENCE: i8 = 9;
pub const USER_LIST: i8 = 10;
pub const CURRENT_USER: i8 = 11;

pub const REPLY_TO_HLS_AUTHENTICATION: i8 = 1;
pub const CHANGE_HLS_SECRET: i8 = 2;
pub const ADD_OBJECT: i8 = 3;
pub const REMOVE_OBJECT: i8 = 4;
pub const ADD_USER: i8 = 5;
pub const REMOVE_USER: i8 = 6;

pub(crate) const ATTRIBUTES: &[&str] = &[
    "logical_name",
    "object_list",
    "associated_partners_id",
    "application_context_name",
    "xDLMS_context_info",
    "authentication_mechanism_name",
    "secret",
    "association_status",
    "security_setup_reference",
    "user_list",
    "current_user",
];
pub(crate) const METHODS: &[&str] = &[
    "reply_to_HLS_authentication",
    "change_HLS_secret",
    "add_object",
    "remove_object",
    "add_user",
    "remove_user",
];

/// The parameter of `reply_to_HLS_authentication`: the client's answer to the server's
/// challenge, f(StoC).
pub fn reply_to_hls_authentication_params(f_stoc: &[u8]) -> Data {
    Data::OctetString(f_stoc.to_vec())
}

/// The parameter of `change_HLS_secret`: the new secret (for HLS-GMAC, usually wrapped).
pub fn change_hls_secret_params(secret: &[u8]) -> Data {
    Data::OctetString(secret.to_vec())
}

/// The parameter of `add_object` and `remove_object`.
pub fn object_params(element: &ObjectListElement) -> Data {
    element.to_data()
}
