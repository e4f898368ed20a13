//! Validation: located, coded problems in a parsed message.
//!
//! Policy: accept liberally, reject precisely. A message is refused (an
//! [`Issue`] of [`Severity::Error`], answered with AE and kept in
//! quarantine) only when it cannot be understood or routed:
//!
//! - MSH-9.1 (message code) or MSH-10 (control id) is missing (101);
//! - a part of MSH-9 is longer than 32 characters (104) or holds `/`, `+`,
//!   `#` or a control character (102): it becomes an MQTT topic level;
//! - a segment's id is not three uppercase letters or digits, e.g. `PIDX`, or
//!   a fragment line left by a line break inside a field (100);
//! - the bytes contradict a declared MSH-18 `UNICODE UTF-8` (103);
//! - a second MSH or a batch segment: two messages in one frame (100);
//! - a second PID: several patients in one message, which a record cannot
//!   carry (207);
//! - more than [`limits::MAX_SEGMENTS`] segments, or more than
//!   [`limits::MAX_IDENTIFIERS`] patient or merged identifiers (207): the
//!   gateway's caps (see [`limits`]).
//!
//! Everything else is a [`Severity::Warning`]: the message is stored and the
//! warning travels on its record. Unknown message types and events are only
//! [`Severity::Information`]. Every issue names its place exactly (segment
//! id, 1-based segment sequence with MSH = 1, field, repetition,
//! component), and no issue text ever contains a field value: messages say
//! "PID-7 is not a valid date/time", never the date itself.

mod datatypes;
pub(crate) mod header;
mod obx;
mod repeats;
mod segments;
mod structure;
mod tables;

use std::borrow::Cow;

use crate::hl7::error::ParseError;
use crate::hl7::fields::Fields;
use crate::hl7::issue::{ErrorCode, Issue, Location, Severity};
use crate::hl7::limits::{self, Issues};
use crate::hl7::message::{Message, Segment};

pub use header::KNOWN_VERSIONS;

/// The outcome of validating one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validation {
    /// Every issue found, in message order within each kind of check.
    pub issues: Vec<Issue>,
}

impl Validation {
    /// Validates `msg`.
    pub fn of(msg: &Message<'_>) -> Self {
        Validation {
            issues: validate(msg),
        }
    }

    /// True when no issue has [`Severity::Error`]: the message may be stored
    /// and acknowledged with AA (its warnings travel on the record).
    pub fn is_acceptable(&self) -> bool {
        !self.issues.iter().any(|i| i.severity == Severity::Error)
    }

    /// The issues that make the message unacceptable.
    pub fn errors(&self) -> impl Iterator<Item = &Issue> {
        self.of_severity(Severity::Error)
    }

    /// The issues the message is accepted with.
    pub fn warnings(&self) -> impl Iterator<Item = &Issue> {
        self.of_severity(Severity::Warning)
    }

    fn of_severity(&self, severity: Severity) -> impl Iterator<Item = &Issue> {
        self.issues.iter().filter(move |i| i.severity == severity)
    }
}

/// Validates a parsed message: header, segment ids, character set, the
/// structure of supported message types, required fields, data types and
/// coded tables of the segments normalization reads.
///
/// A message over [`limits::MAX_SEGMENTS`] is refused with the header
/// checks only, one with more than [`limits::MAX_IDENTIFIERS`] patient or
/// merged identifiers too; at most [`limits::MAX_ISSUES`] issues are
/// listed, the rest summarized in one more (see [`limits`]).
pub fn validate(msg: &Message<'_>) -> Vec<Issue> {
    let mut out = Issues::default();
    let too_many = limits::too_many_segments(msg);
    let capped = too_many.is_some();
    out.extend(too_many);
    let version = header::check(msg, &mut out);
    if !capped {
        structure::check(msg, version, &mut out);
        let mut times = datatypes::ValidTimes::default();
        let mut identifiers = repeats::IdentifierCounts::default();
        for seg in msg.segments().filter(|s| s.has_valid_id()) {
            segments::check(msg, seg, &mut times, &mut out);
            if matches!(seg.id_bytes(), b"PID" | b"MRG") {
                identifiers.check(&Fields::new(msg, seg), &mut out);
            }
        }
    }
    out.into_vec()
}

/// The issue to report for a message that [`Message::parse`] refused.
///
/// Always [`Severity::Error`]; the location names MSH (the segment that is
/// missing or unreadable) and the message names the problem without quoting
/// the input.
pub fn parse_error_issue(err: &ParseError) -> Issue {
    let msh = Location::segment("MSH", 1);
    match err {
        ParseError::Empty => Issue::error(
            ErrorCode::SegmentSequence,
            Location::default(),
            "the message is empty",
        ),
        ParseError::NoMsh { .. } => Issue::error(
            ErrorCode::SegmentSequence,
            msh,
            "the message does not start with an MSH segment",
        ),
        ParseError::BadDelimiters { reason } => {
            let field = if reason.contains("(MSH-1)") { 1 } else { 2 };
            Issue::error(
                ErrorCode::DataType,
                msh.field(field),
                format!("unreadable delimiters: {reason}"),
            )
        }
        ParseError::TooLarge => Issue::error(
            ErrorCode::SegmentSequence,
            Location::default(),
            "the message is too large to read",
        ),
    }
}

/// The location of a whole segment: its id and 1-based position.
///
/// An id that is not a short run of letters and digits (a fragment line, for
/// instance, whose "id" is free text) is left out so that no message content
/// reaches an issue; the position still names the line.
pub(crate) fn segment_location(seg: &Segment<'_>) -> Location {
    let id = seg.id_bytes();
    let safe = (1..=4).contains(&id.len()) && id.iter().all(u8::is_ascii_alphanumeric);
    let id = if safe { seg.id() } else { "".into() };
    Location::segment(&id, seg.index() + 1)
}

/// The value of field `n`, component `c` of its first repetition, or `None`
/// when it is empty or an explicit null.
fn component_text<'a>(seg: &Fields<'a>, field: usize, component: usize) -> Option<Cow<'a, str>> {
    seg.field(field)
        .and_then(|f| f.component(component))
        .and_then(|c| c.value())
}

/// True when field `n` has a value (not empty, not an explicit null).
fn has_value(seg: &Fields<'_>, field: usize) -> bool {
    seg.field(field)
        .is_some_and(|f| !f.is_empty() && !f.is_null())
}

/// Pushes a 101 warning for every listed field of `seg` that has no value.
fn require_fields(seg: &Fields<'_>, fields: &[(usize, &str)], out: &mut Issues) {
    for &(n, what) in fields {
        if !has_value(seg, n) {
            let segment = seg.segment();
            let id = segment.id();
            out.push(Issue::warning(
                ErrorCode::RequiredFieldMissing,
                segment_location(&segment).field(n),
                format!("{id}-{n} ({what}) is missing"),
            ));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
