//! MSH-9, the message type: message code, trigger event and structure.
//!
//! [`MessageType`] is the owned form for callers outside the crate.
//! Validation and normalization read MSH-9 once each per message, so they
//! use [`MessageKind`], the same three parts borrowed from the message
//! (copied only when a part needs unescaping or transcoding), found in one
//! pass over the field.
//!
//! Invariant: `MessageKind::of(msg).into_owned() == msg.message_type()`,
//! and both display the same.

use std::borrow::Cow;

use crate::hl7::element::{Ctx, trim};
use crate::hl7::{Element, Level};

/// MSH-9: message code, trigger event and structure (`ORU^R01^ORU_R01`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageType {
    /// MSH-9.1, e.g. `ORU`.
    pub code: String,
    /// MSH-9.2, e.g. `R01`.
    pub event: String,
    /// MSH-9.3, e.g. `ORU_R01` (often absent in older versions).
    pub structure: String,
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        display(&self.code, &self.event, f)
    }
}

/// MSH-9 borrowed from the message: each part trimmed, empty when absent,
/// empty or null.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MessageKind<'a> {
    /// MSH-9.1.
    pub(crate) code: Cow<'a, str>,
    /// MSH-9.2.
    pub(crate) event: Cow<'a, str>,
    /// MSH-9.3.
    pub(crate) structure: Cow<'a, str>,
    /// True when MSH-9.2 was sent: neither empty nor the explicit null
    /// (before trimming: a blank event counts as sent).
    pub(crate) event_sent: bool,
}

impl<'a> MessageKind<'a> {
    /// The parts of MSH-9 (`field`, `None` when MSH has no field 9; `ctx`
    /// is MSH's), read from its first repetition in one pass.
    pub(crate) fn of(ctx: Ctx<'a>, field: Option<Element<'a>>) -> Self {
        let Some(field) = field else {
            return MessageKind::default();
        };
        // The first repetition (`Element::repetition(1)`), then its first
        // three components, as `Element::component(n)` splits them.
        let raw = field.raw();
        let d = ctx.delims;
        let first = raw
            .iter()
            .position(|&b| b == d.repetition)
            .map_or(raw, |end| raw.get(..end).unwrap_or(raw));
        let mut pieces = first.splitn(4, |&b| b == d.component);
        let mut next = || {
            pieces
                .next()
                .map(|piece| Element::new(piece, ctx, Level::Component))
                .and_then(value)
        };
        let code = next().unwrap_or_default();
        let event = next();
        MessageKind {
            code,
            event_sent: event.is_some(),
            event: event.unwrap_or_default(),
            structure: next().unwrap_or_default(),
        }
    }

    /// The owned form.
    pub(crate) fn into_owned(self) -> MessageType {
        MessageType {
            code: self.code.into_owned(),
            event: self.event.into_owned(),
            structure: self.structure.into_owned(),
        }
    }
}

impl std::fmt::Display for MessageKind<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        display(&self.code, &self.event, f)
    }
}

/// `ORU^R01`, `ORU` without an event, `UNKNOWN` without a code.
fn display(code: &str, event: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    match (code.is_empty(), event.is_empty()) {
        (true, _) => f.write_str("UNKNOWN"),
        (false, true) => f.write_str(code),
        (false, false) => write!(f, "{code}^{event}"),
    }
}

/// A component's value, trimmed; `None` when empty or null.
fn value<'a>(element: Element<'a>) -> Option<Cow<'a, str>> {
    Some(match element.value()? {
        Cow::Borrowed(s) => Cow::Borrowed(trim(s)),
        Cow::Owned(s) => Cow::Owned(trim(&s).to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::hl7::Message;

    /// MSH-9 part `n` read through `Element::component`, the long way.
    fn component_by_component(m: &Message<'_>, n: usize) -> String {
        m.msh()
            .field(9)
            .and_then(|f| f.component(n))
            .and_then(|c| c.value())
            .map(|v| trim(&v).to_string())
            .unwrap_or_default()
    }

    proptest! {
        #[test]
        fn one_pass_reads_what_each_component_reads(msh9 in "[A-Z0-9_ ^~&\\\\\"]{0,16}") {
            let text = format!("MSH|^~\\&|A|B|C|D|2024||{msh9}|1|P|2.5");
            let m = Message::parse(text.as_bytes()).unwrap();
            let kind = m.message_kind();
            prop_assert_eq!(kind.code.as_ref(), component_by_component(&m, 1));
            prop_assert_eq!(kind.event.as_ref(), component_by_component(&m, 2));
            prop_assert_eq!(kind.structure.as_ref(), component_by_component(&m, 3));
            let event = m.msh().field(9).and_then(|f| f.component(2)).and_then(|c| c.value());
            prop_assert_eq!(kind.event_sent, event.is_some());
        }
    }

    #[test]
    fn the_borrowed_kind_reads_what_the_owned_type_reads() {
        let cases: [&[u8]; 6] = [
            b"MSH|^~\\&|A|B|C|D|2024||ORU^R01^ORU_R01|1|P|2.5",
            b"MSH|^~\\&|A|B|C|D|2024|| ADT ^A08~X^Y|1|P|2.5",
            b"MSH|^~\\&|A|B|C|D|2024||\"\"^^|1|P|2.5",
            b"MSH|^~\\&|A|B|C|D|2024||A\\T\\B^E&1|1|P|2.5",
            b"MSH|^~\\&|A|B|C|D|2024||ACK|1|P|2.5",
            b"MSH|^~\\&|A",
        ];
        for raw in cases {
            let m = Message::parse(raw).unwrap();
            let kind = m.message_kind();
            assert_eq!(kind.to_string(), m.message_type().to_string());
            assert_eq!(kind.clone().into_owned(), m.message_type());
        }
        let m = Message::parse(cases[3]).unwrap();
        let kind = m.message_kind();
        assert_eq!((kind.code.as_ref(), kind.event.as_ref()), ("A&B", "E&1"));
        let m = Message::parse(cases[1]).unwrap();
        assert_eq!(m.message_type().to_string(), "ADT^A08");
    }
}
