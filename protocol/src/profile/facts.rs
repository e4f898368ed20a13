//! The structural facts of one message that an interface profile learns.
//!
//! Invariants:
//! - No PHI: a fact is a message type, an HL7 version, a sending
//!   application, a segment id, a coding system, an observation code with
//!   its unit or value type. Never an observation value, a name or an
//!   identifier of a person.
//! - Every text is cut to [`MAX_FACT_LEN`] bytes (at a character
//!   boundary), so a profile's memory is bounded by its set caps.
//! - Linear in the message: segment ids are deduplicated through a hash
//!   set, not by searching the list of ids found so far.

use std::borrow::Cow;
use std::collections::HashSet;

use foldhash::fast::RandomState;

use crate::hl7::Message;

/// Longest text kept for one fact, in bytes.
pub const MAX_FACT_LEN: usize = 64;

/// What one message shows about its sender. Texts borrow from the message
/// where they can: a profile looks at every accepted message, and only a
/// fact it has not seen before is copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts<'a> {
    /// MSH-9 as `code^event` (or `code`).
    pub message_type: Option<String>,
    /// MSH-12.1.
    pub version: Option<Cow<'a, str>>,
    /// MSH-3.1.
    pub sending_application: Option<Cow<'a, str>>,
    /// Ids of the segments present (valid ids only), first occurrence order.
    pub segments: Vec<Cow<'a, str>>,
    /// One entry per OBX with an observation code.
    pub observations: Vec<Observation<'a>>,
}

/// The structural part of one OBX.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation<'a> {
    /// OBX-3.1, the observation code.
    pub code: Cow<'a, str>,
    /// OBX-3.3, the coding system, when sent.
    pub system: Option<Cow<'a, str>>,
    /// OBX-6.1, the unit, when sent.
    pub unit: Option<Cow<'a, str>>,
    /// OBX-2, the value type, when sent.
    pub value_type: Option<Cow<'a, str>>,
}

impl<'a> Facts<'a> {
    /// The facts of `msg`.
    pub fn of(msg: &Message<'a>) -> Facts<'a> {
        let mt = msg.message_type();
        let message_type = match (mt.code.is_empty(), mt.event.is_empty()) {
            (true, _) => None,
            (false, true) => Some(mt.code),
            (false, false) => Some(format!("{}^{}", mt.code, mt.event)),
        };
        // First occurrences in order; the set makes it one pass, however
        // many distinct ids a message holds.
        let mut segments: Vec<Cow<'a, str>> = Vec::new();
        let mut seen: HashSet<&[u8], RandomState> = HashSet::default();
        for seg in msg.segments().filter(|s| s.has_valid_id()) {
            if seen.insert(seg.id_bytes()) {
                segments.push(seg.id());
            }
        }
        Facts {
            message_type: message_type.map(|t| cut(Cow::Owned(t)).into_owned()),
            version: msg.version().map(cut),
            sending_application: msg.text("MSH-3.1").map(cut).filter(|t| !t.is_empty()),
            segments,
            observations: msg.segments_named("OBX").filter_map(observation).collect(),
        }
    }
}

fn observation(obx: crate::hl7::Segment<'_>) -> Option<Observation<'_>> {
    let part = |field: usize, comp: usize| {
        obx.field(field)
            .and_then(|f| f.repetition(1))
            .and_then(|r| r.component(comp))
            .and_then(|c| c.value())
            .map(cut)
            .filter(|v| !v.is_empty())
    };
    Some(Observation {
        code: part(3, 1)?,
        system: part(3, 3),
        unit: part(6, 1),
        value_type: part(2, 1),
    })
}

/// `text` trimmed and cut to at most [`MAX_FACT_LEN`] bytes at a character
/// boundary; borrowed text stays borrowed.
pub fn cut(text: Cow<'_, str>) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(t) => Cow::Borrowed(cut_str(t)),
        Cow::Owned(t) => {
            let kept = cut_str(&t);
            if kept.len() == t.len() {
                Cow::Owned(t)
            } else {
                Cow::Owned(kept.to_owned())
            }
        }
    }
}

fn cut_str(text: &str) -> &str {
    let text = text.trim();
    let mut end = text.len().min(MAX_FACT_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oru_yields_its_header_segments_and_observations() {
        let raw = "MSH|^~\\&|LABSYS^1.2|LAB|EHR|CLINIC|20240101120000||ORU^R01^ORU_R01|C1|P|2.5.1\r\
                   PID|1||12345^^^MRN||DOE^JANE\r\
                   OBR|1\r\
                   OBX|1|NM|GLU^Glucose^99LAB||5.4|mmol/L\r\
                   OBX|2|ST|NOTE^Note||free text\r";
        let msg = Message::parse(raw.as_bytes()).unwrap();
        let facts = Facts::of(&msg);
        assert_eq!(facts.message_type.as_deref(), Some("ORU^R01"));
        assert_eq!(facts.version.as_deref(), Some("2.5.1"));
        assert_eq!(facts.sending_application.as_deref(), Some("LABSYS"));
        assert_eq!(facts.segments, ["MSH", "PID", "OBR", "OBX"]);
        assert_eq!(
            facts.observations[0],
            Observation {
                code: "GLU".into(),
                system: Some("99LAB".into()),
                unit: Some("mmol/L".into()),
                value_type: Some("NM".into()),
            }
        );
        assert_eq!(facts.observations[1].unit, None);
        let text = format!("{facts:?}");
        assert!(!text.contains("DOE") && !text.contains("5.4") && !text.contains("12345"));
    }

    #[test]
    fn long_texts_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_FACT_LEN);
        let kept = cut(Cow::Borrowed(&long));
        assert!(kept.len() <= MAX_FACT_LEN);
        assert_eq!(kept.len() % 2, 0);
        assert!(matches!(kept, Cow::Borrowed(_)));
        let owned = cut(Cow::Owned(format!(" {long}")));
        assert_eq!(owned, kept);
        assert_eq!(cut(Cow::Borrowed(" GLU ")), "GLU");
    }
}
