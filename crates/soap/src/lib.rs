//! The SOAP that Salesforce's partner API (`/services/Soap/u/{version}`) speaks, as much as
//! cairn and its simulator need: a message read into a small tree of elements (namespaces
//! resolved, text unescaped), envelopes and faults written as text. No WSDL, no codegen: the
//! shapes are few, and each is tested where it is used.

#![warn(unreachable_pub)]

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

pub const ENVELOPE_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const PARTNER_NS: &str = "urn:partner.soap.sforce.com";
pub const METADATA_NS: &str = "http://soap.sforce.com/2006/04/metadata";
pub const PARTNER_FAULT_NS: &str = "urn:fault.partner.soap.sforce.com";
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Deeper than this, a message is refused: no SOAP message of Salesforce's nests so far.
const MAX_DEPTH: usize = 64;

/// One element: its namespace and local name, attributes by local name, children, and the
/// text directly inside it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Element {
    pub namespace: Option<String>,
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// The document's root element.
    pub fn parse(xml: &str) -> Result<Element, String> {
        let mut reader = NsReader::from_str(xml);
        let mut stack: Vec<Element> = Vec::new();
        loop {
            let at = reader.buffer_position();
            let (namespace, event) = reader
                .read_resolved_event()
                .map_err(|e| format!("not well-formed XML after byte {at}: {e}"))?;
            let namespace = match namespace {
                ResolveResult::Bound(ns) => Some(String::from_utf8_lossy(ns.as_ref()).into_owned()),
                ResolveResult::Unbound => None,
                ResolveResult::Unknown(prefix) => {
                    return Err(format!(
                        "the prefix {} is not bound to a namespace",
                        String::from_utf8_lossy(&prefix)
                    ));
                }
            };
            let empty = matches!(event, Event::Empty(_));
            match event {
                Event::Start(start) | Event::Empty(start) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(format!("elements nest deeper than {MAX_DEPTH}"));
                    }
                    let mut attributes = Vec::new();
                    for attribute in start.attributes() {
                        let attribute = attribute.map_err(|e| format!("a bad attribute: {e}"))?;
                        let value = attribute
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map_err(|e| format!("a bad attribute value: {e}"))?;
                        attributes.push((
                            String::from_utf8_lossy(attribute.key.local_name().as_ref())
                                .into_owned(),
                            value.into_owned(),
                        ));
                    }
                    let element = Element {
                        namespace,
                        name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
                        attributes,
                        ..Element::default()
                    };
                    if empty {
                        match stack.last_mut() {
                            Some(parent) => parent.children.push(element),
                            None => return Ok(element),
                        }
                    } else {
                        stack.push(element);
                    }
                }
                Event::End(_) => {
                    let Some(done) = stack.pop() else {
                        return Err("an end tag without its start".into());
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                }
                Event::Text(text) => {
                    if let Some(open) = stack.last_mut() {
                        let text = text.decode().map_err(|e| format!("bad text: {e}"))?;
                        open.text.push_str(&text);
                    }
                }
                Event::CData(data) => {
                    if let Some(open) = stack.last_mut() {
                        open.text.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                Event::GeneralRef(reference) => {
                    if let Some(open) = stack.last_mut() {
                        let resolved = match reference.resolve_char_ref() {
                            Ok(Some(c)) => c.to_string(),
                            Ok(None) => {
                                let name =
                                    reference.decode().map_err(|e| format!("bad entity: {e}"))?;
                                quick_xml::escape::resolve_predefined_entity(&name)
                                    .ok_or_else(|| format!("the entity &{name}; is not XML's"))?
                                    .to_string()
                            }
                            Err(e) => return Err(format!("a bad character reference: {e}")),
                        };
                        open.text.push_str(&resolved);
                    }
                }
                Event::Eof => return Err("the document ends before its root element does".into()),
                // Declarations, comments, processing instructions, doctypes: nothing to keep.
                _ => {}
            }
        }
    }

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The children with this local name, in order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child with this local name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `xsi:nil="true"`.
    pub fn is_nil(&self) -> bool {
        self.attribute("nil") == Some("true")
    }

    fn is(&self, namespace: &str, name: &str) -> bool {
        self.namespace.as_deref() == Some(namespace) && self.name == name
    }
}

/// Text made safe inside an element or a double-quoted attribute.
pub fn escape(text: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(text)
}

/// A SOAP fault, as `faultcode` (`sf:INVALID_SESSION_ID`, `soapenv:Client`) and `faultstring`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: String,
    pub message: String,
}

impl Fault {
    /// The code without its prefix: `INVALID_SESSION_ID`.
    pub fn exception_code(&self) -> &str {
        self.code.rsplit(':').next().unwrap_or(&self.code)
    }
}

/// A message's Header and the element its Body holds (the request or response, or a Fault).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub header: Option<Element>,
    pub body: Element,
}

impl Message {
    pub fn parse(xml: &str) -> Result<Message, String> {
        let mut root = Element::parse(xml)?;
        if !root.is(ENVELOPE_NS, "Envelope") {
            return Err(format!(
                "the root element is {}, not a SOAP 1.1 Envelope ({ENVELOPE_NS})",
                root.name
            ));
        }
        let header = root
            .children
            .iter()
            .position(|c| c.is(ENVELOPE_NS, "Header"))
            .map(|i| root.children.remove(i));
        let body = root
            .children
            .iter()
            .position(|c| c.is(ENVELOPE_NS, "Body"))
            .map(|i| root.children.remove(i))
            .ok_or("the Envelope has no Body")?;
        let content = body
            .children
            .into_iter()
            .next()
            .ok_or("the Body is empty")?;
        Ok(Message {
            header,
            body: content,
        })
    }

    /// The fault the body holds, if it is one.
    pub fn fault(&self) -> Option<Fault> {
        self.body.is(ENVELOPE_NS, "Fault").then(|| Fault {
            code: self
                .body
                .child_text("faultcode")
                .unwrap_or_default()
                .trim()
                .to_string(),
            message: self
                .body
                .child_text("faultstring")
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// A header element's child text, such as `SessionHeader`'s `sessionId`.
    pub fn header_text(&self, header: &str, field: &str) -> Option<&str> {
        self.header.as_ref()?.child(header)?.child_text(field)
    }
}

/// A partner-API envelope: `header` and `body` are already-escaped XML in the partner
/// namespace (the default namespace of the message).
pub fn envelope(header: &str, body: &str) -> String {
    envelope_in(PARTNER_NS, header, body)
}

/// An envelope whose default namespace is `namespace` (the Metadata API's, for one).
pub fn envelope_in(namespace: &str, header: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"{ENVELOPE_NS}\" xmlns=\"{namespace}\" xmlns:xsi=\"{XSI_NS}\"><soapenv:Header>{header}</soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )
}

/// A partner-API request with its session: `SessionHeader` and the operation element.
pub fn request(session_id: &str, operation: &str, content: &str) -> String {
    request_in(PARTNER_NS, session_id, operation, content)
}

/// A request to the API of `namespace` (partner or Metadata) with its session.
pub fn request_in(namespace: &str, session_id: &str, operation: &str, content: &str) -> String {
    envelope_in(
        namespace,
        &format!(
            "<SessionHeader><sessionId>{}</sessionId></SessionHeader>",
            escape(session_id)
        ),
        &format!("<{operation}>{content}</{operation}>"),
    )
}

/// A fault as Salesforce's partner API sends it: `sf:CODE` and the message; `client` faults
/// (a message that is not a request at all) use `soapenv:Client`.
pub fn fault(code: &str, message: &str) -> String {
    let (faultcode, detail) = match code {
        "Client" => ("soapenv:Client".to_string(), String::new()),
        code => (
            format!("sf:{code}"),
            format!(
                "<detail><sf:UnexpectedErrorFault xsi:type=\"sf:UnexpectedErrorFault\"><sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{}</sf:exceptionMessage></sf:UnexpectedErrorFault></detail>",
                escape(message)
            ),
        ),
    };
    let string = if code == "Client" {
        escape(message).into_owned()
    } else {
        format!("{code}: {}", escape(message))
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"{ENVELOPE_NS}\" xmlns:sf=\"{PARTNER_FAULT_NS}\" xmlns:xsi=\"{XSI_NS}\"><soapenv:Body><soapenv:Fault><faultcode>{faultcode}</faultcode><faultstring>{string}</faultstring>{detail}</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_with_namespaces_and_entities_resolved() {
        let xml = request(
            "00D!se<ss>",
            "undelete",
            "<ids>001000000000001AAA</ids><ids>003&amp;x</ids>",
        );
        let message = Message::parse(&xml).expect("parses");
        assert_eq!(
            message.header_text("SessionHeader", "sessionId"),
            Some("00D!se<ss>")
        );
        assert_eq!(message.body.name, "undelete");
        assert_eq!(message.body.namespace.as_deref(), Some(PARTNER_NS));
        let ids: Vec<&str> = message
            .body
            .children_named("ids")
            .map(|e| e.text.as_str())
            .collect();
        assert_eq!(ids, ["001000000000001AAA", "003&x"]);
        assert!(message.fault().is_none());
    }

    #[test]
    fn prefixed_namespaces_resolve_like_default_ones() {
        let xml = format!(
            "<s:Envelope xmlns:s=\"{ENVELOPE_NS}\"><s:Body><p:undelete xmlns:p=\"{PARTNER_NS}\"><p:ids>a</p:ids></p:undelete></s:Body></s:Envelope>"
        );
        let message = Message::parse(&xml).expect("parses");
        assert_eq!(message.body.namespace.as_deref(), Some(PARTNER_NS));
        assert_eq!(message.body.child_text("ids"), Some("a"));
    }

    #[test]
    fn faults_read_back_with_their_code_and_message() {
        let message = Message::parse(&fault(
            "INVALID_SESSION_ID",
            "Invalid Session ID found in SessionHeader: Illegal Session",
        ))
        .expect("parses");
        let fault = message.fault().expect("a fault");
        assert_eq!(fault.code, "sf:INVALID_SESSION_ID");
        assert_eq!(fault.exception_code(), "INVALID_SESSION_ID");
        assert!(
            fault
                .message
                .starts_with("INVALID_SESSION_ID: Invalid Session ID")
        );
    }

    #[test]
    fn what_is_not_an_envelope_is_refused_with_why() {
        for (xml, why) in [
            ("", "ends before"),
            ("<a><b></a>", "not well-formed"),
            ("<Envelope/>", "not a SOAP 1.1 Envelope"),
            (
                &*format!("<s:Envelope xmlns:s=\"{ENVELOPE_NS}\"/>"),
                "no Body",
            ),
            ("<x:a/>", "not bound"),
        ] {
            let error = Message::parse(xml).expect_err(xml);
            assert!(error.contains(why), "{xml}: {error}");
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(
            Element::parse(&deep)
                .expect_err("deep")
                .contains("nest deeper")
        );
    }
}
