//! EndDeviceEventType and EndDeviceControlType codes (IEC 61968-9 Annex E):
//! `type.domain.subdomain.eventOrAction`, for our meters' event codes (IDIS numbering, see
//! hes_model::event_class) and the controls we carry out.

/// EndDeviceType 3: electricity meter.
pub const ELECTRIC_METER: u16 = 3;

/// One of our event codes as a CIM event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    /// Our (IDIS) event code.
    pub code: u16,
    pub domain: u16,
    pub subdomain: u16,
    pub event_or_action: u16,
    /// What the fields say, for people (the documentation's table).
    pub meaning: &'static str,
}

impl EventType {
    pub fn code_text(&self) -> String {
        format!(
            "{ELECTRIC_METER}.{}.{}.{}",
            self.domain, self.subdomain, self.event_or_action
        )
    }
}

// Domains.
const POWER: u16 = 26;
const SECURITY: u16 = 12;
const RCD_SWITCH: u16 = 31;
const DEMAND: u16 = 8;
// Subdomains.
const NA: u16 = 0;
const ACCESS: u16 = 1;
const COVER: u16 = 29;
const MAGNETIC_TAMPER: u16 = 66;
const MESSAGE: u16 = 93;
const TERMINAL_COVER: u16 = 141;
const VOLTAGE: u16 = 38;
// Events or actions.
const CONNECTED: u16 = 42;
const DISCONNECTED: u16 = 68;
const FAILED: u16 = 85;
const HIGH: u16 = 93;
const LOW: u16 = 150;
const OFF: u16 = 185;
const REMOVED: u16 = 212;
const REPLACED: u16 = 213;
const RESET: u16 = 214;
const RESTORED: u16 = 216;
const CLEARED: u16 = 28;
const TAMPER: u16 = 257;
const DUPLICATE: u16 = 74;

const fn t(
    code: u16,
    domain: u16,
    subdomain: u16,
    event_or_action: u16,
    meaning: &'static str,
) -> EventType {
    EventType {
        code,
        domain,
        subdomain,
        event_or_action,
        meaning,
    }
}

/// Our event codes with a CIM type. The phase of a voltage event is not part of the type; it
/// goes into the event's `reason`.
pub const EVENT_TYPES: &[EventType] = &[
    t(1, POWER, NA, OFF, "Power / - / off (power down)"),
    t(2, POWER, NA, RESTORED, "Power / - / restored (power up)"),
    t(
        40,
        SECURITY,
        TERMINAL_COVER,
        REMOVED,
        "Security / terminal cover / removed",
    ),
    t(
        41,
        SECURITY,
        TERMINAL_COVER,
        REPLACED,
        "Security / terminal cover / replaced",
    ),
    t(
        42,
        SECURITY,
        MAGNETIC_TAMPER,
        TAMPER,
        "Security / magnetic tamper / tamper detected",
    ),
    t(
        43,
        SECURITY,
        MAGNETIC_TAMPER,
        CLEARED,
        "Security / magnetic tamper / cleared",
    ),
    t(44, SECURITY, COVER, REMOVED, "Security / cover / removed"),
    t(45, SECURITY, COVER, REPLACED, "Security / cover / replaced"),
    t(
        46,
        SECURITY,
        ACCESS,
        FAILED,
        "Security / access / failed (authentication)",
    ),
    t(
        47,
        SECURITY,
        MESSAGE,
        FAILED,
        "Security / message / failed (decryption)",
    ),
    t(
        48,
        SECURITY,
        MESSAGE,
        DUPLICATE,
        "Security / message / duplicate (replay)",
    ),
    t(
        59,
        RCD_SWITCH,
        NA,
        DISCONNECTED,
        "RCDSwitch / - / disconnected",
    ),
    t(60, RCD_SWITCH, NA, CONNECTED, "RCDSwitch / - / connected"),
    t(76, POWER, VOLTAGE, LOW, "Power / voltage / low (L1)"),
    t(77, POWER, VOLTAGE, LOW, "Power / voltage / low (L2)"),
    t(78, POWER, VOLTAGE, LOW, "Power / voltage / low (L3)"),
    t(79, POWER, VOLTAGE, HIGH, "Power / voltage / high (L1)"),
    t(80, POWER, VOLTAGE, HIGH, "Power / voltage / high (L2)"),
    t(81, POWER, VOLTAGE, HIGH, "Power / voltage / high (L3)"),
];

/// The CIM type of our event `code`; a code we have no type for is `3.0.0.0` (an electricity
/// meter's event, otherwise unspecified) and the event carries its code in `reason`.
pub fn event_type(code: u16) -> String {
    EVENT_TYPES
        .iter()
        .find(|e| e.code == code)
        .map_or_else(|| format!("{ELECTRIC_METER}.0.0.0"), EventType::code_text)
}

/// A control the MDM may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Disconnect,
    Connect,
    DemandReset,
}

impl Control {
    pub fn code(self) -> String {
        let (domain, subdomain, action) = match self {
            Self::Disconnect => (RCD_SWITCH, NA, DISCONNECTED),
            Self::Connect => (RCD_SWITCH, NA, CONNECTED),
            Self::DemandReset => (DEMAND, NA, RESET),
        };
        format!("{ELECTRIC_METER}.{domain}.{subdomain}.{action}")
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Disconnect, Self::Connect, Self::DemandReset]
            .into_iter()
            .find(|c| c.code() == code.trim())
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Disconnect => "disconnect",
            Self::Connect => "connect",
            Self::DemandReset => "demand reset",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(event_type(1), "3.26.0.185");
        assert_eq!(event_type(44), "3.12.29.212");
        assert_eq!(event_type(999), "3.0.0.0");
        assert_eq!(Control::Disconnect.code(), "3.31.0.68");
        assert_eq!(Control::from_code(" 3.31.0.42"), Some(Control::Connect));
        assert_eq!(Control::from_code("3.8.0.214"), Some(Control::DemandReset));
        assert_eq!(Control::from_code("3.31.0.0"), None);
        // Every code of the classification table has a type.
        for k in EVENT_TYPES {
            assert!(event_type(k.code).starts_with("3."));
        }
    }
}
