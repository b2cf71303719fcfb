//! The message envelope (IEC 61968-100 / 61968-9 Message.xsd): RequestMessage read from a
//! caller, ResponseMessage and EventMessage written by us.

use std::fmt::Write;

use crate::xml::{esc, parse, Element, XmlError};

pub const NS_MESSAGE: &str = "http://iec.ch/TC57/2011/schema/message";
pub const NS_METER_READINGS: &str = "http://iec.ch/TC57/2011/MeterReadings#";
pub const NS_GET_METER_READINGS: &str = "http://iec.ch/TC57/2011/GetMeterReadings#";
pub const NS_END_DEVICE_EVENTS: &str = "http://iec.ch/TC57/2011/EndDeviceEvents#";
pub const NS_GET_END_DEVICE_EVENTS: &str = "http://iec.ch/TC57/2011/GetEndDeviceEvents#";
pub const NS_END_DEVICE_CONTROLS: &str = "http://iec.ch/TC57/2011/EndDeviceControls#";

/// Our reply codes, in the standard's `category.index` form (docs/cim.md, "Errors").
pub mod code {
    pub const OK: &str = "0.0";
    /// Accepted; the outcome follows in a later message.
    pub const ACCEPTED: &str = "0.3";
    /// Not well-formed, over a limit, or not a RequestMessage.
    pub const MALFORMED: &str = "1.0";
    /// The header lacks its Verb or Noun, or names an unknown verb.
    pub const BAD_HEADER: &str = "1.1";
    /// A verb and noun we do not serve.
    pub const UNSUPPORTED: &str = "1.2";
    /// The request's content is wrong (a missing meter, a time that does not parse, an
    /// unknown ReadingType).
    pub const BAD_REQUEST: &str = "2.1";
    /// More than one message may ask for (meters, time range, values).
    pub const TOO_MUCH: &str = "2.2";
    /// A meter that does not exist or that the caller may not see.
    pub const NOT_FOUND: &str = "2.4";
    /// A control type we do not carry out.
    pub const UNSUPPORTED_CONTROL: &str = "2.5";
    /// The command failed at the meter (or was cancelled).
    pub const FAILED_AT_METER: &str = "3.1";
    /// The command had not finished when the reply was due; its outcome follows.
    pub const PENDING: &str = "3.2";
    /// The command could not be queued, or the store failed.
    pub const UNAVAILABLE: &str = "3.3";
    /// The caller's role may not do this.
    pub const FORBIDDEN: &str = "5.1";
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub verb: String,
    pub noun: String,
    pub timestamp: Option<String>,
    pub source: Option<String>,
    pub async_reply: bool,
    pub reply_address: Option<String>,
    pub message_id: Option<String>,
    pub correlation_id: Option<String>,
}

/// A RequestMessage as read: the header, the Request element (its StartTime, EndTime, IDs and
/// any further child such as GetMeterReadings) and the Payload's first element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMessage {
    pub header: Header,
    pub request: Option<Element>,
    pub payload: Option<Element>,
}

/// Why a request was refused before anything was done: a reply code and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub reason: String,
}

impl Refusal {
    pub fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

/// A request refused as a whole, with its header when it could be read (the reply then
/// correlates with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub refusal: Refusal,
    pub header: Option<Box<Header>>,
}

fn rejected(refusal: Refusal, header: Option<Header>) -> Rejected {
    Rejected {
        refusal,
        header: header.map(Box::new),
    }
}

impl From<XmlError> for Refusal {
    fn from(e: XmlError) -> Self {
        Self::new(code::MALFORMED, e.to_string())
    }
}

/// The verbs of IEC 61968-100.
pub const VERBS: &[&str] = &[
    "get", "create", "change", "cancel", "close", "delete", "execute", "reply", "created",
    "changed", "canceled", "closed", "deleted", "executed",
];

impl RequestMessage {
    /// Reads a RequestMessage; the header is read even when the rest is wrong (a refusal then
    /// still correlates with the request).
    pub fn parse(text: &[u8]) -> Result<Self, Rejected> {
        let root = parse(text).map_err(|e| rejected(Refusal::from(e), None))?;
        if root.ns.as_deref() != Some(NS_MESSAGE) || root.name != "RequestMessage" {
            return Err(rejected(
                Refusal::new(
                    code::MALFORMED,
                    format!("expected a RequestMessage in {NS_MESSAGE}"),
                ),
                None,
            ));
        }
        let h = root.child("Header").ok_or_else(|| {
            rejected(
                Refusal::new(code::BAD_HEADER, "the message has no Header"),
                None,
            )
        })?;
        let text = |n: &str| h.child_text(n).map(str::to_string);
        let header = Header {
            verb: text("Verb").unwrap_or_default(),
            noun: text("Noun").unwrap_or_default(),
            timestamp: text("Timestamp"),
            source: text("Source"),
            async_reply: h.child_text("AsyncReplyFlag") == Some("true"),
            reply_address: text("ReplyAddress"),
            message_id: text("MessageID"),
            correlation_id: text("CorrelationID"),
        };
        if header.verb.is_empty() || header.noun.is_empty() {
            return Err(rejected(
                Refusal::new(code::BAD_HEADER, "the Header needs a Verb and a Noun"),
                Some(header),
            ));
        }
        if !VERBS.contains(&header.verb.as_str()) {
            let reason = format!("unknown verb {}", header.verb);
            return Err(rejected(
                Refusal::new(code::BAD_HEADER, reason),
                Some(header),
            ));
        }
        let request = root.child("Request").cloned();
        let payload = root
            .child("Payload")
            .and_then(|p| p.children.first())
            .cloned();
        Ok(Self {
            header,
            request,
            payload,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyResult {
    Ok,
    Partial,
    Failed,
}

impl ReplyResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Partial => "PARTIAL",
            Self::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Inform,
    Warning,
    Fatal,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Self::Inform => "INFORM",
            Self::Warning => "WARNING",
            Self::Fatal => "FATAL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyError {
    pub code: String,
    pub level: Level,
    pub reason: String,
    /// What the error is about (a meter's mRID, a control's mRID), when it concerns one.
    pub details: Option<String>,
}

impl ReplyError {
    pub fn fatal(code: &str, reason: impl Into<String>, details: Option<String>) -> Self {
        Self {
            code: code.to_string(),
            level: Level::Fatal,
            reason: reason.into(),
            details,
        }
    }

    pub fn inform(code: &str, reason: impl Into<String>, details: Option<String>) -> Self {
        Self {
            code: code.to_string(),
            level: Level::Inform,
            reason: reason.into(),
            details,
        }
    }
}

/// An identifier the reply hands back (a job, for a control carried out later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyId {
    pub object_type: String,
    pub id: String,
}

/// A ResponseMessage to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The request's noun (the reply carries the same).
    pub noun: String,
    /// The request's MessageID (or CorrelationID), echoed as CorrelationID.
    pub correlation_id: Option<String>,
    pub result: ReplyResult,
    pub errors: Vec<ReplyError>,
    pub ids: Vec<ReplyId>,
    /// The payload's XML (one element, with its namespace), when there is one.
    pub payload: Option<String>,
}

impl Response {
    /// A reply that refuses the request as a whole.
    pub fn refused(header: Option<&Header>, r: &Refusal) -> Self {
        Self {
            noun: header.map(|h| h.noun.clone()).unwrap_or_default(),
            correlation_id: header.and_then(correlation),
            result: ReplyResult::Failed,
            errors: vec![ReplyError::fatal(r.code, r.reason.clone(), None)],
            ids: Vec::new(),
            payload: None,
        }
    }

    /// The ResponseMessage's text: `message_id` is ours, `now` Unix seconds.
    pub fn to_xml(&self, message_id: &str, now: i64) -> String {
        let mut out = String::with_capacity(512 + self.payload.as_ref().map_or(0, String::len));
        out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = write!(out, r#"<ResponseMessage xmlns="{NS_MESSAGE}">"#);
        header_xml(
            &mut out,
            "reply",
            &self.noun,
            now,
            message_id,
            self.correlation_id.as_deref(),
        );
        let _ = write!(out, "<Reply><Result>{}</Result>", self.result.as_str());
        for e in &self.errors {
            let _ = write!(
                out,
                "<Error><code>{}</code><level>{}</level><reason>{}</reason>",
                esc(&e.code),
                e.level.as_str(),
                esc(&e.reason)
            );
            if let Some(d) = &e.details {
                let _ = write!(out, "<details>{}</details>", esc(d));
            }
            out.push_str("</Error>");
        }
        for id in &self.ids {
            let _ = write!(
                out,
                r#"<ID kind="other" objectType="{}">{}</ID>"#,
                esc(&id.object_type),
                esc(&id.id)
            );
        }
        out.push_str("</Reply>");
        if let Some(p) = &self.payload {
            let _ = write!(out, "<Payload>{p}<Format>XML</Format></Payload>");
        }
        out.push_str("</ResponseMessage>");
        out
    }
}

/// The CorrelationID a reply to `h` carries: the request's MessageID, else its CorrelationID.
pub fn correlation(h: &Header) -> Option<String> {
    h.message_id.clone().or_else(|| h.correlation_id.clone())
}

fn header_xml(
    out: &mut String,
    verb: &str,
    noun: &str,
    now: i64,
    message_id: &str,
    correlation_id: Option<&str>,
) {
    let _ = write!(
        out,
        "<Header><Verb>{verb}</Verb><Noun>{}</Noun><Timestamp>{}</Timestamp><Source>HES</Source><MessageID>{}</MessageID>",
        esc(noun),
        timestamp(now),
        esc(message_id)
    );
    if let Some(c) = correlation_id {
        let _ = write!(out, "<CorrelationID>{}</CorrelationID>", esc(c));
    }
    out.push_str("</Header>");
}

/// An EventMessage (`created` NOUN) carrying `payload`: what we send the MDM.
pub fn event_message(noun: &str, payload: &str, message_id: &str, now: i64) -> String {
    let mut out = String::with_capacity(512 + payload.len());
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = write!(out, r#"<EventMessage xmlns="{NS_MESSAGE}">"#);
    header_xml(&mut out, "created", noun, now, message_id, None);
    let _ = write!(
        out,
        "<Payload>{payload}<Format>XML</Format></Payload></EventMessage>"
    );
    out
}

/// A RequestMessage's text (what an MDM sends; for tests and tools).
pub fn request_message(
    verb: &str,
    noun: &str,
    message_id: &str,
    now: i64,
    request: Option<&str>,
    payload: Option<&str>,
) -> String {
    let mut out = String::new();
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = write!(out, r#"<RequestMessage xmlns="{NS_MESSAGE}">"#);
    let _ = write!(
        out,
        "<Header><Verb>{verb}</Verb><Noun>{}</Noun><Timestamp>{}</Timestamp><Source>MDM</Source><MessageID>{}</MessageID></Header>",
        esc(noun),
        timestamp(now),
        esc(message_id)
    );
    if let Some(r) = request {
        let _ = write!(out, "<Request>{r}</Request>");
    }
    if let Some(p) = payload {
        let _ = write!(out, "<Payload>{p}</Payload>");
    }
    out.push_str("</RequestMessage>");
    out
}

/// Unix seconds as an xs:dateTime in UTC.
pub fn timestamp(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// An xs:dateTime (with its offset) as Unix seconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_a_request_and_refuses_bad_ones() {
        let text = request_message("get", "MeterReadings", "m-1", 0, Some("<ID>x</ID>"), None);
        let m = RequestMessage::parse(text.as_bytes()).unwrap();
        assert_eq!(m.header.verb, "get");
        assert_eq!(m.header.noun, "MeterReadings");
        assert_eq!(m.header.message_id.as_deref(), Some("m-1"));
        assert_eq!(m.request.unwrap().child_text("ID"), Some("x"));
        let r = RequestMessage::parse(b"<RequestMessage/>").unwrap_err();
        assert_eq!(r.refusal.code, code::MALFORMED);
        let text = request_message("fetch", "MeterReadings", "m-2", 0, None, None);
        let r = RequestMessage::parse(text.as_bytes()).unwrap_err();
        assert_eq!(r.refusal.code, code::BAD_HEADER);
        assert_eq!(r.header.unwrap().message_id.as_deref(), Some("m-2"));
    }

    #[test]
    fn times() {
        assert_eq!(timestamp(86_400), "1970-01-02T00:00:00Z");
        assert_eq!(parse_timestamp("1970-01-02T01:00:00+01:00"), Some(86_400));
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
