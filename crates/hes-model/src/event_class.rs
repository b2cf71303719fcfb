//! What a meter event means to an operator: its class by its standard event code (IDIS /
//! DLMS numbering), and which event ends which. One table for the store's filters, the API
//! and the correlation into incidents.
//!
//! Only what an operator must act on is an alarm: a cover opened, a magnetic field, a replay
//! attack, an alarm the meter pushed with a code we do not know. The event that ends one (the
//! cover closed again) is information, and a power failure or a voltage excursion is a warning.

/// The standard event log, the fraud detection log and the power quality log (IDIS).
pub const STANDARD_LOG: &str = "0.0.99.98.0.255";
pub const FRAUD_LOG: &str = "0.0.99.98.1.255";
pub const POWER_QUALITY_LOG: &str = "0.0.99.98.4.255";

/// An event's class, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventClass {
    Alarm,
    Warning,
    Info,
}

/// A known event code: its class and the code that ends it (if it starts a condition). Its
/// text for people is the API's (`hes_api::routes::events::describe`), written once there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCode {
    pub code: u16,
    pub class: EventClass,
    pub ended_by: Option<u16>,
}

const fn c(code: u16, class: EventClass, ended_by: Option<u16>) -> EventCode {
    EventCode {
        code,
        class,
        ended_by,
    }
}

/// The codes we know, whatever log (or alarm push) they arrive in.
pub const CODES: &[EventCode] = &[
    c(1, EventClass::Warning, Some(2)),
    c(2, EventClass::Info, None),
    c(40, EventClass::Alarm, Some(41)),
    c(41, EventClass::Info, None),
    c(42, EventClass::Alarm, Some(43)),
    c(43, EventClass::Info, None),
    c(44, EventClass::Alarm, Some(45)),
    c(45, EventClass::Info, None),
    c(46, EventClass::Warning, None),
    c(47, EventClass::Warning, None),
    c(48, EventClass::Alarm, None),
    c(76, EventClass::Warning, None),
    c(77, EventClass::Warning, None),
    c(78, EventClass::Warning, None),
    c(79, EventClass::Warning, None),
    c(80, EventClass::Warning, None),
    c(81, EventClass::Warning, None),
];

/// The entry for `code`, if it is one we know.
pub fn known(code: u16) -> Option<&'static EventCode> {
    CODES.iter().find(|k| k.code == code)
}

/// The class of an event: by its code when known; else by its log (the standard log is
/// information, the power quality log warnings, anything else, such as an alarm push or the
/// fraud log, an alarm).
pub fn classify(log: &str, code: u16) -> EventClass {
    match known(code) {
        Some(k) => k.class,
        None => match log {
            STANDARD_LOG => EventClass::Info,
            POWER_QUALITY_LOG => EventClass::Warning,
            _ => EventClass::Alarm,
        },
    }
}

/// The known codes of `class`, for a store's `code IN (…)` filter.
pub fn codes_of(class: EventClass) -> Vec<u16> {
    CODES
        .iter()
        .filter(|k| k.class == class)
        .map(|k| k.code)
        .collect()
}

/// A SQL condition (on columns `{alias}.log` and `{alias}.code`) that holds exactly for the
/// events [`classify`] puts in `class`; the same text serves SQLite and PostgreSQL. Only
/// constants go into it.
pub fn class_sql(class: EventClass, alias: &str) -> String {
    let list = |codes: Vec<u16>| {
        codes
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all = list(CODES.iter().map(|k| k.code).collect());
    let mine = list(codes_of(class));
    let by_log = match class {
        EventClass::Info => format!("{alias}.log = '{STANDARD_LOG}'"),
        EventClass::Warning => format!("{alias}.log = '{POWER_QUALITY_LOG}'"),
        EventClass::Alarm => {
            format!("{alias}.log NOT IN ('{STANDARD_LOG}', '{POWER_QUALITY_LOG}')")
        }
    };
    format!("({alias}.code IN ({mine}) OR ({alias}.code NOT IN ({all}) AND {by_log}))")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_decide_before_logs() {
        // A tamper pushed as an alarm, or read from the fraud log: an alarm; its end: info.
        assert_eq!(classify("0.0.25.9.1.255", 40), EventClass::Alarm);
        assert_eq!(classify(FRAUD_LOG, 40), EventClass::Alarm);
        assert_eq!(classify("0.0.25.9.1.255", 41), EventClass::Info);
        assert_eq!(classify(FRAUD_LOG, 41), EventClass::Info);
        assert_eq!(classify(STANDARD_LOG, 1), EventClass::Warning);
        assert_eq!(classify(POWER_QUALITY_LOG, 79), EventClass::Warning);
        // Unknown codes: by their log.
        assert_eq!(classify(STANDARD_LOG, 200), EventClass::Info);
        assert_eq!(classify(POWER_QUALITY_LOG, 200), EventClass::Warning);
        assert_eq!(classify("0.0.25.9.1.255", 200), EventClass::Alarm);
        // Every code that starts a condition is ended by a known code.
        for k in CODES {
            if let Some(end) = k.ended_by {
                assert!(known(end).is_some(), "code {}", k.code);
            }
        }
    }

    #[test]
    fn the_sql_condition_lists_the_same_codes() {
        let s = class_sql(EventClass::Alarm, "e");
        assert!(s.starts_with("(e.code IN (40, 42, 44, 48) OR (e.code NOT IN (1, 2, 40"));
        assert!(s.contains("e.log NOT IN ('0.0.99.98.0.255', '0.0.99.98.4.255')"));
    }
}
