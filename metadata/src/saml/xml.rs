//! XML from outside, read safely, and XML we write, escaped.
//!
//! Every SAML message and metadata document we receive goes through [`parse`] first: a size cap, no
//! `DOCTYPE` (so no entities, no XXE, no billion laughs), no processing instructions, only the
//! predefined entities and character references, bounded depth, element and attribute counts, and
//! no two elements with the same `ID`. The result is a small tree with namespaces resolved. Text
//! split by comments, CDATA sections or references is joined, so `admin@x<!---->.evil` reads as the
//! whole `admin@x.evil`, never the part before the comment.

use std::borrow::Cow;
use std::collections::HashSet;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use quick_xml::XmlVersion;

pub const NS_SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const NS_SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";

/// Caps for one kind of document.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_elements: usize,
    pub max_attributes: usize,
}

/// Protocol messages (AuthnRequest, LogoutRequest/Response).
pub const MESSAGE: Limits = Limits {
    max_bytes: 256 * 1024,
    max_depth: 32,
    max_elements: 2_000,
    max_attributes: 32,
};

/// Metadata: one entity or a federation aggregate.
pub const METADATA: Limits = Limits {
    max_bytes: 32 * 1024 * 1024,
    max_depth: 48,
    max_elements: 2_000_000,
    max_attributes: 64,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("DOCTYPE declarations are not accepted")]
    Doctype,
    #[error("processing instructions are not accepted")]
    ProcessingInstruction,
    #[error("entity reference &{0}; is not accepted")]
    Entity(String),
    #[error("the document nests deeper than {0} levels")]
    TooDeep(usize),
    #[error("the document has too many elements or attributes")]
    TooMany,
    #[error("two elements carry the ID {0:?}")]
    DuplicateId(String),
    #[error("not well-formed XML: {0}")]
    Malformed(String),
}

/// An attribute with its namespace (empty for unqualified attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ns: String,
    pub name: String,
    pub value: String,
}

/// An element with its namespace URI, local name, attributes (namespace declarations left out),
/// child elements, and the text directly inside it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// An unqualified attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_empty() && a.name == name)
            .map(|a| a.value.as_str())
    }

    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The first child element with this name.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// The only child element with this name; an error when there are several (a message with
    /// two `Issuer`s or two `Signature`s is refused rather than read by position).
    pub fn single(&self, ns: &str, name: &str) -> Result<Option<&Element>, XmlError> {
        let mut it = self.children.iter().filter(|c| c.is(ns, name));
        let first = it.next();
        if it.next().is_some() {
            return Err(XmlError::Malformed(format!("more than one {name}")));
        }
        Ok(first)
    }

    /// The text with surrounding white space removed.
    pub fn trimmed(&self) -> &str {
        self.text.trim()
    }

    /// Writes the element as standalone XML (each element declares its own namespace), so an
    /// entity taken out of an aggregate keeps its meaning.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        if !self.ns.is_empty() {
            out.push_str(" xmlns=\"");
            out.push_str(&esc(&self.ns));
            out.push('"');
        }
        for (i, a) in self.attrs.iter().enumerate() {
            if a.ns.is_empty() {
                out.push_str(&format!(" {}=\"{}\"", a.name, esc(&a.value)));
            } else if a.ns == "http://www.w3.org/XML/1998/namespace" {
                out.push_str(&format!(" xml:{}=\"{}\"", a.name, esc(&a.value)));
            } else {
                out.push_str(&format!(
                    " xmlns:a{i}=\"{}\" a{i}:{}=\"{}\"",
                    esc(&a.ns),
                    a.name,
                    esc(&a.value)
                ));
            }
        }
        out.push('>');
        out.push_str(&esc(&self.text));
        for c in &self.children {
            c.write(out);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Escapes text or an attribute value for XML we write (`& < > " '`).
pub fn esc(s: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(s)
}

fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

fn resolved(ns: ResolveResult<'_>) -> Result<String, XmlError> {
    match ns {
        ResolveResult::Bound(n) => Ok(String::from_utf8_lossy(n.as_ref()).into_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => Err(XmlError::Malformed(format!(
            "undeclared namespace prefix {}",
            String::from_utf8_lossy(&p)
        ))),
    }
}

/// Parses an untrusted document into its root element under `limits`.
pub fn parse(xml: &str, limits: Limits) -> Result<Element, XmlError> {
    if xml.len() > limits.max_bytes {
        return Err(XmlError::TooLarge(limits.max_bytes));
    }
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    let mut ids: HashSet<String> = HashSet::new();
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(malformed)?;
        let ns = match &event {
            Event::Start(_) | Event::Empty(_) => Some(resolved(ns)?),
            _ => None,
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err(malformed("content after the root element"));
                }
                elements += 1;
                if elements > limits.max_elements {
                    return Err(XmlError::TooMany);
                }
                if stack.len() >= limits.max_depth {
                    return Err(XmlError::TooDeep(limits.max_depth));
                }
                let mut el = Element {
                    ns: ns.unwrap_or_default(),
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                for (count, a) in e.attributes().enumerate() {
                    if count >= limits.max_attributes {
                        return Err(XmlError::TooMany);
                    }
                    let a = a.map_err(malformed)?;
                    if a.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (ans, local) = reader.resolver().resolve_attribute(a.key);
                    let value = a
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|e| match e {
                            quick_xml::Error::Escape(
                                quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                            ) => XmlError::Entity(name),
                            other => malformed(other),
                        })?
                        .into_owned();
                    let attr = Attr {
                        ns: resolved(ans)?,
                        name: String::from_utf8_lossy(local.as_ref()).into_owned(),
                        value,
                    };
                    if attr.ns.is_empty() && attr.name == "ID" && !ids.insert(attr.value.clone()) {
                        return Err(XmlError::DuplicateId(attr.value));
                    }
                    el.attrs.push(attr);
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(el);
                } else {
                    close(&mut stack, &mut root, el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| malformed("unbalanced end tag"))?;
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let s = t.xml_content(XmlVersion::Implicit1_0).map_err(malformed)?;
                push_text(&mut stack, &s)?;
            }
            Event::CData(t) => {
                let s = t.decode().map_err(malformed)?;
                push_text(&mut stack, &s)?;
            }
            Event::GeneralRef(r) => {
                let s = match r.resolve_char_ref().map_err(malformed)? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(malformed)?.into_owned();
                        match name.as_str() {
                            "lt" => "<".into(),
                            "gt" => ">".into(),
                            "amp" => "&".into(),
                            "apos" => "'".into(),
                            "quot" => "\"".into(),
                            _ => return Err(XmlError::Entity(name)),
                        }
                    }
                };
                push_text(&mut stack, &s)?;
            }
            Event::Comment(_) | Event::Decl(_) => {}
            Event::PI(_) => return Err(XmlError::ProcessingInstruction),
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed("unclosed element"));
    }
    root.ok_or_else(|| malformed("no root element"))
}

fn close(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn push_text(stack: &mut [Element], s: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(el) => {
            el.text.push_str(s);
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(malformed("text outside the root element")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_namespaces_attributes_and_joined_text() {
        let el = parse(
            r#"<?xml version="1.0"?><p:A xmlns:p="urn:x" ID="a1" b="1 &amp; 2"><p:N>admin@x<!---->.evil&#46;fi<![CDATA[<z>]]></p:N><B xmlns="urn:y"/></p:A>"#,
            MESSAGE,
        )
        .unwrap();
        assert!(el.is("urn:x", "A"));
        assert_eq!(el.attr("ID"), Some("a1"));
        assert_eq!(el.attr("b"), Some("1 & 2"));
        assert_eq!(el.child("urn:x", "N").unwrap().text, "admin@x.evil.fi<z>");
        assert!(el.child("urn:y", "B").is_some());
    }

    #[test]
    fn refuses_doctype_entities_pi_depth_size_and_duplicate_ids() {
        let xxe = r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>"#;
        assert_eq!(parse(xxe, MESSAGE), Err(XmlError::Doctype));
        assert_eq!(
            parse("<x>&e;</x>", MESSAGE),
            Err(XmlError::Entity("e".into()))
        );
        assert_eq!(
            parse(r#"<x a="&e;"/>"#, MESSAGE),
            Err(XmlError::Entity("e".into()))
        );
        assert_eq!(
            parse("<x><?evil x?></x>", MESSAGE),
            Err(XmlError::ProcessingInstruction)
        );
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(parse(&deep, MESSAGE), Err(XmlError::TooDeep(32)));
        let big = format!("<a>{}</a>", " ".repeat(300 * 1024));
        assert_eq!(parse(&big, MESSAGE), Err(XmlError::TooLarge(256 * 1024)));
        assert_eq!(
            parse(r#"<a ID="x"><b ID="x"/></a>"#, MESSAGE),
            Err(XmlError::DuplicateId("x".into()))
        );
        assert!(matches!(
            parse("<a><b></a>", MESSAGE),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse("<a/><b/>", MESSAGE),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse("<p:a/>", MESSAGE),
            Err(XmlError::Malformed(_))
        ));
    }

    #[test]
    fn standalone_copy_keeps_meaning() {
        let el = parse(
            r#"<md:E xmlns:md="urn:md" xmlns:x="urn:x" x:k="v" a="&quot;"><md:C>t&lt;</md:C></md:E>"#,
            MESSAGE,
        )
        .unwrap();
        assert_eq!(parse(&el.to_xml(), MESSAGE).unwrap(), el);
    }
}
