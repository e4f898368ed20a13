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
//! - A fact taken from an OBX must look like what its field is meant to
//!   hold, or it is replaced by a fixed word: a code or coding system
//!   with white space is free text ([`FREE_TEXT`]), a "unit" that is a
//!   number or has white space is a shifted value ([`NOT_A_UNIT`]), a
//!   value type that is not two or three capitals is [`NOT_A_TYPE`]. A
//!   sender that shifts its OBX fields (OBX-2 left out, so OBX-6 holds the
//!   value) or writes text into a code field thus never gets that text
//!   into a drift alert, a log line or a heartbeat.

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

/// Stands for an OBX-3 code or coding system that is free text.
pub const FREE_TEXT: &str = "(free text)";
/// Stands for an OBX-6 "unit" that is a number or free text (a shifted value).
pub const NOT_A_UNIT: &str = "(not a unit)";
/// Stands for an OBX-2 that is not a value type.
pub const NOT_A_TYPE: &str = "(not a value type)";

/// `text` if it can be an identifier (no white space or control character), else `FREE_TEXT`.
fn identifier(text: Cow<'_, str>) -> Cow<'_, str> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Cow::Borrowed(FREE_TEXT)
    } else {
        text
    }
}

/// `text` if it can be a unit: an identifier that is not a number.
fn unit_like(text: Cow<'_, str>) -> Cow<'_, str> {
    let number = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '+' | '-' | '<' | '>' | '='));
    if number || identifier(Cow::Borrowed(&text)) == FREE_TEXT {
        Cow::Borrowed(NOT_A_UNIT)
    } else {
        text
    }
}

/// `text` if it can be an HL7 value type (two or three capitals or digits).
fn value_type_like(text: Cow<'_, str>) -> Cow<'_, str> {
    let ok = (2..=3).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if ok { text } else { Cow::Borrowed(NOT_A_TYPE) }
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
        code: identifier(part(3, 1)?),
        system: part(3, 3).map(identifier),
        unit: part(6, 1).map(unit_like),
        value_type: part(2, 1).map(value_type_like),
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
    fn a_shifted_or_free_text_obx_never_yields_its_text_as_a_fact() {
        // One field too many before OBX-5: the value lands in OBX-6, the unit in OBX-7.
        let raw = "MSH|^~\\&|LAB|F|EHR|C|20240101||ORU^R01|C1|P|2.5.1\r\
                   OBX|1|NM|GLU^Glucose^99LAB|||138.4|mg/dL\r\
                   OBX|2|CWE|Pain score said aloud^^L||7|Patient said something\r\
                   OBX|3|said aloud|K^Potassium^99LAB||4.1|mmol/L\r";
        let msg = Message::parse(raw.as_bytes()).unwrap();
        let facts = Facts::of(&msg);
        let text = format!("{facts:?}");
        for secret in ["138.4", "Pain score", "Patient said", "said aloud"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(facts.observations[0].unit.as_deref(), Some(NOT_A_UNIT));
        assert_eq!(facts.observations[1].code, FREE_TEXT);
        assert_eq!(facts.observations[1].unit.as_deref(), Some(NOT_A_UNIT));
        assert_eq!(
            facts.observations[2].value_type.as_deref(),
            Some(NOT_A_TYPE)
        );
        assert_eq!(facts.observations[2].unit.as_deref(), Some("mmol/L"));
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
