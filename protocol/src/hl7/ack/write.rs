//! The bytes of one ACK: MSH, MSA and ERR segments.
//!
//! Values copied from the incoming message are written as the raw bytes
//! received; text this gateway writes (error messages, reasons, the stamp)
//! is reduced to printable ASCII, so it is valid in every HL7 character
//! set, and escaped with the sender's delimiters.

use std::borrow::Cow;

use crate::hl7::ack::{AckCode, AckHeader, AckStamp, Outcome};
use crate::hl7::delimiters::Delimiters;
use crate::hl7::escape::escape;
use crate::hl7::issue::{ErrorCode, Issue, Location, Severity};
use crate::hl7::validate::header::version_number;
use crate::topic::MAX_MESSAGE_TYPE_PART;

/// MSH-12 written when the message's version is absent or unreadable.
const DEFAULT_VERSION: &[u8] = b"2.5.1";

/// Most ERR segments one ACK carries (errors first).
const MAX_ERR_SEGMENTS: usize = 10;

/// MSA-3 is 80 characters in the versions that use it.
const MSA3_MAX_CHARS: usize = 80;

/// Cap on ERR-8 and other free text.
const TEXT_MAX_CHARS: usize = 250;

/// The version an ACK is written for.
#[derive(Clone, Copy)]
struct Version<'h> {
    raw: &'h [u8],
    number: (u8, u8, u8),
}

impl<'h> Version<'h> {
    fn of(header: &'h AckHeader) -> Self {
        let parsed = std::str::from_utf8(&header.version)
            .ok()
            .and_then(version_number);
        match parsed {
            Some(number) => Version {
                raw: &header.version,
                number,
            },
            None => Version {
                raw: DEFAULT_VERSION,
                number: (2, 5, 1),
            },
        }
    }

    /// v2.5 and later: ERR-2/3/4/8, warnings on AA, no MSA-3.
    fn has_modern_err(self) -> bool {
        self.number >= (2, 5, 0)
    }

    /// v2.3.1 and later: MSH-9.3 message structure.
    fn has_structure(self) -> bool {
        self.number >= (2, 3, 1)
    }
}

/// Writes one ACK.
pub(super) fn ack(
    header: &AckHeader,
    code: AckCode,
    outcome: &Outcome,
    stamp: &AckStamp<'_>,
) -> Vec<u8> {
    let version = Version::of(header);
    let mut w = Writer {
        out: Vec::with_capacity(256),
        d: header.delimiters,
    };
    w.msh(header, version, stamp);
    w.msa(header, code, outcome, version);
    for issue in err_issues(code, outcome, version) {
        if version.has_modern_err() {
            w.err_modern(&issue);
        } else {
            w.err_legacy(&issue);
        }
    }
    w.out
}

/// The issues an ACK lists, errors first, capped.
fn err_issues(code: AckCode, outcome: &Outcome, version: Version<'_>) -> Vec<Issue> {
    let modern = version.has_modern_err();
    let warnings = |issues: &[Issue]| -> Vec<Issue> {
        issues
            .iter()
            .filter(|i| modern && i.severity == Severity::Warning)
            .cloned()
            .collect()
    };
    let mut list = match (code, outcome) {
        (AckCode::CommitAccept, _) => Vec::new(),
        (_, Outcome::Accepted { issues }) => warnings(issues),
        (_, Outcome::Error { issues }) => {
            let mut list: Vec<Issue> = issues
                .iter()
                .filter(|i| i.severity == Severity::Error)
                .cloned()
                .collect();
            if list.is_empty() {
                list.push(Issue::error(
                    ErrorCode::InternalError,
                    Location::default(),
                    "the message could not be accepted",
                ));
            }
            list.extend(warnings(issues));
            list
        }
        (_, Outcome::Rejected { code, reason }) => {
            vec![Issue::error(*code, Location::default(), reason.clone())]
        }
    };
    list.truncate(MAX_ERR_SEGMENTS);
    list
}

/// MSA-3 text (pre-v2.5 only).
fn msa_text(code: AckCode, outcome: &Outcome) -> Cow<'_, str> {
    match (code, outcome) {
        (AckCode::ApplicationAccept, _) => "Message accepted".into(),
        (AckCode::CommitAccept, _) => "Message committed".into(),
        (_, Outcome::Rejected { reason, .. }) => reason.as_str().into(),
        (_, Outcome::Error { issues }) => issues
            .iter()
            .find(|i| i.severity == Severity::Error)
            .map_or("Message not accepted".into(), |i| i.message.as_str().into()),
        (_, Outcome::Accepted { .. }) => "Message not accepted".into(),
    }
}

/// Appends segments to the output with one message's delimiters.
struct Writer {
    out: Vec<u8>,
    d: Delimiters,
}

impl Writer {
    fn msh(&mut self, h: &AckHeader, version: Version<'_>, stamp: &AckStamp<'_>) {
        self.raw(b"MSH");
        self.sep();
        self.raw(&h.encoding_characters);
        for value in [
            &h.receiving_application,
            &h.receiving_facility,
            &h.sending_application,
            &h.sending_facility,
        ] {
            self.sep();
            self.raw(value);
        }
        self.sep();
        self.text(stamp.timestamp, TEXT_MAX_CHARS);
        self.sep(); // MSH-8, security
        self.sep();
        self.message_type(h, version);
        self.sep();
        self.text(stamp.control_id, TEXT_MAX_CHARS);
        self.sep();
        if h.processing_id.is_empty() {
            self.raw(b"P");
        } else {
            self.raw(&h.processing_id);
        }
        self.sep();
        self.raw(version.raw);
        if !h.charset.is_empty() {
            for _ in 13..=18 {
                self.sep();
            }
            self.raw(&h.charset);
        }
        self.end();
    }

    /// `ACK^<event>^ACK`, `ACK^<event>` before v2.3.1, `ACK` without an
    /// event, or with an event too long to be one (over
    /// [`MAX_MESSAGE_TYPE_PART`] bytes, which validation refuses): a refusal
    /// does not echo an absurd value back.
    fn message_type(&mut self, h: &AckHeader, version: Version<'_>) {
        self.raw(b"ACK");
        if h.trigger_event.is_empty() || h.trigger_event.len() > MAX_MESSAGE_TYPE_PART {
            return;
        }
        self.component();
        self.raw(&h.trigger_event);
        if version.has_structure() {
            self.component();
            self.raw(b"ACK");
        }
    }

    fn msa(&mut self, h: &AckHeader, code: AckCode, outcome: &Outcome, version: Version<'_>) {
        self.raw(b"MSA");
        self.sep();
        self.raw(code.as_str().as_bytes());
        self.sep();
        self.raw(&h.control_id);
        if !version.has_modern_err() {
            self.sep();
            self.text(&msa_text(code, outcome), MSA3_MAX_CHARS);
        }
        self.end();
    }

    /// v2.5+: `ERR||<ERL>|<code>^<text>^HL70357|<severity>||||<message>`.
    fn err_modern(&mut self, issue: &Issue) {
        self.raw(b"ERR");
        self.sep(); // ERR-1, backward compatible only
        self.sep();
        self.error_location(&issue.location);
        self.sep();
        self.raw(issue.code.code().to_string().as_bytes());
        self.component();
        self.text(issue.code.description(), TEXT_MAX_CHARS);
        self.component();
        self.raw(b"HL70357");
        self.sep();
        self.raw(issue.severity.hl7_code().as_bytes());
        for _ in 5..=8 {
            self.sep();
        }
        self.text(&issue.message, TEXT_MAX_CHARS);
        self.end();
    }

    /// ERL: `SEG^sequence^field^repetition^component^subcomponent`, zeros
    /// left empty and trailing empty components dropped.
    fn error_location(&mut self, l: &Location) {
        let numbers = [
            l.segment_sequence,
            u32::from(l.field),
            u32::from(l.repetition),
            u32::from(l.component),
            u32::from(l.subcomponent),
        ];
        let used = numbers.iter().rposition(|&n| n > 0).map_or(0, |i| i + 1);
        self.text(&l.segment, 4);
        for &n in numbers.iter().take(used) {
            self.component();
            self.number(n);
        }
    }

    /// Before v2.5: `ERR|SEG^sequence^field^code&text&HL70357` (ELD).
    fn err_legacy(&mut self, issue: &Issue) {
        let l = &issue.location;
        self.raw(b"ERR");
        self.sep();
        self.text(&l.segment, 4);
        self.component();
        self.number(l.segment_sequence);
        self.component();
        self.number(u32::from(l.field));
        self.component();
        self.raw(issue.code.code().to_string().as_bytes());
        if let Some(sub) = self.d.subcomponent {
            self.out.push(sub);
            self.text(issue.code.description(), TEXT_MAX_CHARS);
            self.out.push(sub);
            self.raw(b"HL70357");
        }
        self.end();
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn number(&mut self, n: u32) {
        if n > 0 {
            self.raw(n.to_string().as_bytes());
        }
    }

    /// Writes text of ours: printable ASCII only, at most `max` characters,
    /// escaped with the message's delimiters.
    fn text(&mut self, text: &str, max: usize) {
        let clean: String = text
            .chars()
            .take(max)
            .map(|c| match c {
                ' '..='~' => c,
                _ if c.is_control() => ' ',
                _ => '?',
            })
            .collect();
        self.raw(escape(&clean, &self.d).as_bytes());
    }

    fn sep(&mut self) {
        self.out.push(self.d.field);
    }

    fn component(&mut self) {
        self.out.push(self.d.component);
    }

    fn end(&mut self) {
        self.out.push(b'\r');
    }
}
