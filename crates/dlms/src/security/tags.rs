//! Which ciphered APDU carries which plain one (Green Book 9.5, the xDLMS-APDU CHOICE).
//!
//! Service-specific ciphering keeps the service visible: a get-request protected with the
//! global key travels as glo-get-request, with the dedicated key as ded-get-request. The
//! initiate request and response are only ever global (the dedicated key is carried inside
//! the initiate-request, so it cannot protect it).

// Plain xDLMS APDU tags.
pub const INITIATE_REQUEST: u8 = 0x01;
pub const READ_REQUEST: u8 = 0x05;
pub const WRITE_REQUEST: u8 = 0x06;
pub const INITIATE_RESPONSE: u8 = 0x08;
pub const READ_RESPONSE: u8 = 0x0C;
pub const WRITE_RESPONSE: u8 = 0x0D;
pub const CONFIRMED_SERVICE_ERROR: u8 = 0x0E;
pub const UNCONFIRMED_WRITE_REQUEST: u8 = 0x16;
pub const INFORMATION_REPORT_REQUEST: u8 = 0x18;
pub const GET_REQUEST: u8 = 0xC0;
pub const SET_REQUEST: u8 = 0xC1;
pub const EVENT_NOTIFICATION_REQUEST: u8 = 0xC2;
pub const ACTION_REQUEST: u8 = 0xC3;
pub const GET_RESPONSE: u8 = 0xC4;
pub const SET_RESPONSE: u8 = 0xC5;
pub const ACTION_RESPONSE: u8 = 0xC7;

// Global ciphering.
pub const GLO_INITIATE_REQUEST: u8 = 0x21;
pub const GLO_READ_REQUEST: u8 = 0x25;
pub const GLO_WRITE_REQUEST: u8 = 0x26;
pub const GLO_INITIATE_RESPONSE: u8 = 0x28;
pub const GLO_READ_RESPONSE: u8 = 0x2C;
pub const GLO_WRITE_RESPONSE: u8 = 0x2D;
pub const GLO_CONFIRMED_SERVICE_ERROR: u8 = 0x2E;
pub const GLO_UNCONFIRMED_WRITE_REQUEST: u8 = 0x36;
pub const GLO_INFORMATION_REPORT_REQUEST: u8 = 0x38;
pub const GLO_GET_REQUEST: u8 = 0xC8;
pub const GLO_SET_REQUEST: u8 = 0xC9;
pub const GLO_EVENT_NOTIFICATION_REQUEST: u8 = 0xCA;
pub const GLO_ACTION_REQUEST: u8 = 0xCB;
pub const GLO_GET_RESPONSE: u8 = 0xCC;
pub const GLO_SET_RESPONSE: u8 = 0xCD;
pub const GLO_ACTION_RESPONSE: u8 = 0xCF;

// Dedicated ciphering.
pub const DED_READ_REQUEST: u8 = 0x45;
pub const DED_WRITE_REQUEST: u8 = 0x46;
pub const DED_READ_RESPONSE: u8 = 0x4C;
pub const DED_WRITE_RESPONSE: u8 = 0x4D;
pub const DED_CONFIRMED_SERVICE_ERROR: u8 = 0x4E;
pub const DED_UNCONFIRMED_WRITE_REQUEST: u8 = 0x56;
pub const DED_INFORMATION_REPORT_REQUEST: u8 = 0x58;
pub const DED_GET_REQUEST: u8 = 0xD0;
pub const DED_SET_REQUEST: u8 = 0xD1;
pub const DED_EVENT_NOTIFICATION_REQUEST: u8 = 0xD2;
pub const DED_ACTION_REQUEST: u8 = 0xD3;
pub const DED_GET_RESPONSE: u8 = 0xD4;
pub const DED_SET_RESPONSE: u8 = 0xD5;
pub const DED_ACTION_RESPONSE: u8 = 0xD7;

// General ciphering (the APDU is carried whole, tag included).
pub const GENERAL_GLO_CIPHERING: u8 = 0xDB;
pub const GENERAL_DED_CIPHERING: u8 = 0xDC;
pub const GENERAL_CIPHERING: u8 = 0xDD;

/// (plain, glo, ded) triples; `None` where the standard has no dedicated form.
const MAPPING: [(u8, u8, Option<u8>); 16] = [
    (INITIATE_REQUEST, GLO_INITIATE_REQUEST, None),
    (READ_REQUEST, GLO_READ_REQUEST, Some(DED_READ_REQUEST)),
    (WRITE_REQUEST, GLO_WRITE_REQUEST, Some(DED_WRITE_REQUEST)),
    (INITIATE_RESPONSE, GLO_INITIATE_RESPONSE, None),
    (READ_RESPONSE, GLO_READ_RESPONSE, Some(DED_READ_RESPONSE)),
    (WRITE_RESPONSE, GLO_WRITE_RESPONSE, Some(DED_WRITE_RESPONSE)),
    (
        CONFIRMED_SERVICE_ERROR,
        GLO_CONFIRMED_SERVICE_ERROR,
        Some(DED_CONFIRMED_SERVICE_ERROR),
    ),
    (
        UNCONFIRMED_WRITE_REQUEST,
        GLO_UNCONFIRMED_WRITE_REQUEST,
        Some(DED_UNCONFIRMED_WRITE_REQUEST),
    ),
    (
        INFORMATION_REPORT_REQUEST,
        GLO_INFORMATION_REPORT_REQUEST,
        Some(DED_INFORMATION_REPORT_REQUEST),
    ),
    (GET_REQUEST, GLO_GET_REQUEST, Some(DED_GET_REQUEST)),
    (SET_REQUEST, GLO_SET_REQUEST, Some(DED_SET_REQUEST)),
    (
        EVENT_NOTIFICATION_REQUEST,
        GLO_EVENT_NOTIFICATION_REQUEST,
        Some(DED_EVENT_NOTIFICATION_REQUEST),
    ),
    (ACTION_REQUEST, GLO_ACTION_REQUEST, Some(DED_ACTION_REQUEST)),
    (GET_RESPONSE, GLO_GET_RESPONSE, Some(DED_GET_RESPONSE)),
    (SET_RESPONSE, GLO_SET_RESPONSE, Some(DED_SET_RESPONSE)),
    (
        ACTION_RESPONSE,
        GLO_ACTION_RESPONSE,
        Some(DED_ACTION_RESPONSE),
    ),
];

/// The glo- tag that carries the plain APDU tagged `plain`.
pub fn glo_tag(plain: u8) -> Option<u8> {
    MAPPING.iter().find(|m| m.0 == plain).map(|m| m.1)
}

/// The ded- tag that carries the plain APDU tagged `plain`.
pub fn ded_tag(plain: u8) -> Option<u8> {
    MAPPING.iter().find(|m| m.0 == plain).and_then(|m| m.2)
}

/// The plain tag a service-specific ciphered tag carries, and whether it is the dedicated form.
pub fn plain_tag(ciphered: u8) -> Option<(u8, bool)> {
    MAPPING.iter().find_map(|&(plain, glo, ded)| {
        if glo == ciphered {
            Some((plain, false))
        } else if ded == Some(ciphered) {
            Some((plain, true))
        } else {
            None
        }
    })
}

/// Whether `tag` starts an APDU that [`super::SecurityContext::unprotect`] must handle:
/// service-specific glo-/ded- APDUs and the general-glo/-ded/-ciphering ones.
pub fn is_ciphered(tag: u8) -> bool {
    plain_tag(tag).is_some()
        || matches!(
            tag,
            GENERAL_GLO_CIPHERING | GENERAL_DED_CIPHERING | GENERAL_CIPHERING
        )
}
