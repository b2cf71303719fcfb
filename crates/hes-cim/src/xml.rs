//! A small element tree read from untrusted XML, with hard limits: the whole text is bounded,
//! the nesting and the number of elements too, a DOCTYPE (and with it every DTD, external
//! entity and entity expansion) is refused, and only the five predefined entities and
//! character references are resolved. Enough for CIM messages, which carry no mixed content.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// Largest message accepted, bytes.
pub const MAX_BYTES: usize = 1 << 20;
/// Deepest nesting accepted (a CIM message needs about ten levels).
pub const MAX_DEPTH: usize = 32;
/// Most elements in one message.
pub const MAX_ELEMENTS: usize = 50_000;

/// Why a text is not a message we read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the message is larger than {MAX_BYTES} bytes")]
    TooLarge,
    #[error("the message nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the message has more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    #[error("a DOCTYPE is not accepted")]
    Doctype,
    #[error("entity &{0}; is not accepted (only the predefined ones)")]
    Entity(String),
    #[error("not well-formed XML: {0}")]
    Syntax(String),
    #[error("undeclared namespace prefix {0}")]
    UnknownPrefix(String),
    #[error("no root element")]
    Empty,
}

/// One element: its namespace (`None`: none), local name, attributes by local name, text (its
/// character data, concatenated) and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name` (any namespace: CIM payloads are read by local name once
    /// the root's namespace is checked).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child named `name`, when not empty.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn syntax(e: impl std::fmt::Display) -> XmlError {
    XmlError::Syntax(e.to_string())
}

fn start(ns: ResolveResult<'_>, e: &BytesStart<'_>) -> Result<Element, XmlError> {
    let ns = match ns {
        ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into_owned()),
        ResolveResult::Unbound => None,
        ResolveResult::Unknown(p) => {
            return Err(XmlError::UnknownPrefix(
                String::from_utf8_lossy(&p).into_owned(),
            ))
        }
    };
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(syntax)?;
        let key = a.key.as_ref();
        // Namespace declarations are the reader's business, not the message's.
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        let value =
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| match e {
                    quick_xml::Error::Escape(
                        quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                    ) => XmlError::Entity(name),
                    other => syntax(other),
                })?;
        attrs.push((
            String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned(),
            value.into_owned(),
        ));
    }
    Ok(Element {
        ns,
        name,
        attrs,
        ..Element::default()
    })
}

/// The root element of `text`, within the limits above.
pub fn parse(text: &[u8]) -> Result<Element, XmlError> {
    if text.len() > MAX_BYTES {
        return Err(XmlError::TooLarge);
    }
    let mut reader = NsReader::from_reader(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(syntax)?;
        match event {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                let _ = (ns, e);
                return Err(XmlError::Syntax("content after the root element".into()));
            }
            Event::Start(e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let el = start(ns, &e)?;
                stack.push(el);
            }
            Event::Empty(e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let el = start(ns, &e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmlError::Syntax("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(syntax)?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(XmlError::Syntax("text outside the root".into())),
                }
            }
            Event::CData(t) => {
                let s = t.decode().map_err(syntax)?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None => return Err(XmlError::Syntax("CDATA outside the root".into())),
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(syntax)? {
                    Some(c) => c,
                    None => {
                        let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                        match name.as_str() {
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "quot" => '"',
                            "apos" => '\'',
                            _ => return Err(XmlError::Entity(name)),
                        }
                    }
                };
                match stack.last_mut() {
                    Some(el) => el.text.push(c),
                    None => return Err(XmlError::Syntax("reference outside the root".into())),
                }
            }
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Syntax("unclosed element".into()));
    }
    root.ok_or(XmlError::Empty)
}

/// `s` escaped for element text and attribute values.
pub fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn reads_namespaces_text_and_attributes() {
        let x = br#"<?xml version="1.0"?><m:A xmlns:m="urn:x" xmlns="urn:y"><B r="1 &amp; 2">t &lt;&#65;<![CDATA[<c>]]></B><C/></m:A>"#;
        let r = parse(x).unwrap();
        assert_eq!(r.ns.as_deref(), Some("urn:x"));
        assert_eq!(r.name, "A");
        let b = r.child("B").unwrap();
        assert_eq!(b.ns.as_deref(), Some("urn:y"));
        assert_eq!(b.attr("r"), Some("1 & 2"));
        assert_eq!(b.text, "t <A<c>");
        assert!(r.child("C").is_some());
    }

    #[test]
    fn refuses_what_untrusted_input_must_not_do() {
        let doctype = br#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "boom">]><a>&x;</a>"#;
        assert_eq!(parse(doctype), Err(XmlError::Doctype));
        assert_eq!(parse(b"<a>&x;</a>"), Err(XmlError::Entity("x".into())));
        assert_eq!(parse(br#"<a b="&x;"/>"#), Err(XmlError::Entity("x".into())));
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooDeep));
        let many = format!("<a>{}</a>", "<b/>".repeat(MAX_ELEMENTS));
        assert_eq!(parse(many.as_bytes()), Err(XmlError::TooManyElements));
        let big = vec![b' '; MAX_BYTES + 1];
        assert_eq!(parse(&big), Err(XmlError::TooLarge));
        assert!(matches!(parse(b"<a><b></a>"), Err(XmlError::Syntax(_))));
        assert!(matches!(parse(b"<a/><b/>"), Err(XmlError::Syntax(_))));
        assert!(matches!(parse(b"<p:a/>"), Err(XmlError::UnknownPrefix(_))));
        assert_eq!(parse(b""), Err(XmlError::Empty));
    }
}
