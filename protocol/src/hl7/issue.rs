//! Located problems found in a message, coded with HL7 table 0357.
//!
//! The same [`Issue`] value feeds the ERR segment of a NAK, the warnings on
//! a normalized record, the quarantine entry and the per-interface
//! counters, so a problem is described once and reads the same everywhere.

use serde::{Deserialize, Serialize};

/// HL7 table 0357 (message error condition codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// 0: message accepted.
    Accepted,
    /// 100: segment sequence error (missing, out of order, unknown or malformed segment).
    SegmentSequence,
    /// 101: required field missing.
    RequiredFieldMissing,
    /// 102: data type error (bad date, non-numeric number, ...).
    DataType,
    /// 103: table value not found.
    TableValueNotFound,
    /// 104: value too long (v2.7+).
    ValueTooLong,
    /// 200: unsupported message type.
    UnsupportedMessageType,
    /// 201: unsupported event code.
    UnsupportedEvent,
    /// 202: unsupported processing id.
    UnsupportedProcessingId,
    /// 203: unsupported version id.
    UnsupportedVersion,
    /// 204: unknown key identifier.
    UnknownKey,
    /// 205: duplicate key identifier.
    DuplicateKey,
    /// 206: application record locked (used for "store full, retry later").
    RecordLocked,
    /// 207: application internal error.
    InternalError,
}

impl ErrorCode {
    /// The numeric code of table 0357.
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::Accepted => 0,
            ErrorCode::SegmentSequence => 100,
            ErrorCode::RequiredFieldMissing => 101,
            ErrorCode::DataType => 102,
            ErrorCode::TableValueNotFound => 103,
            ErrorCode::ValueTooLong => 104,
            ErrorCode::UnsupportedMessageType => 200,
            ErrorCode::UnsupportedEvent => 201,
            ErrorCode::UnsupportedProcessingId => 202,
            ErrorCode::UnsupportedVersion => 203,
            ErrorCode::UnknownKey => 204,
            ErrorCode::DuplicateKey => 205,
            ErrorCode::RecordLocked => 206,
            ErrorCode::InternalError => 207,
        }
    }

    /// The table 0357 description, as written into ERR.
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::Accepted => "Message accepted",
            ErrorCode::SegmentSequence => "Segment sequence error",
            ErrorCode::RequiredFieldMissing => "Required field missing",
            ErrorCode::DataType => "Data type error",
            ErrorCode::TableValueNotFound => "Table value not found",
            ErrorCode::ValueTooLong => "Value too long",
            ErrorCode::UnsupportedMessageType => "Unsupported message type",
            ErrorCode::UnsupportedEvent => "Unsupported event code",
            ErrorCode::UnsupportedProcessingId => "Unsupported processing id",
            ErrorCode::UnsupportedVersion => "Unsupported version id",
            ErrorCode::UnknownKey => "Unknown key identifier",
            ErrorCode::DuplicateKey => "Duplicate key identifier",
            ErrorCode::RecordLocked => "Application record locked",
            ErrorCode::InternalError => "Application internal error",
        }
    }
}

/// How bad an issue is (HL7 table 0516, ERR-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// `I`: information only.
    Information,
    /// `W`: accepted, but the record carries this warning.
    Warning,
    /// `E`: the message cannot be accepted (AE, quarantine).
    Error,
}

impl Severity {
    /// The table 0516 code written into ERR-4.
    pub fn hl7_code(self) -> &'static str {
        match self {
            Severity::Information => "I",
            Severity::Warning => "W",
            Severity::Error => "E",
        }
    }
}

/// Where in the message an issue is (the ERL data type of ERR-2).
///
/// Numbers are 1-based as in HL7; `segment_sequence` is the position of the
/// segment in the message (1 = MSH). Zero means "not applicable".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    /// Segment id, e.g. `PID` (empty when the issue concerns the whole message).
    pub segment: String,
    /// 1-based position of the segment in the message.
    pub segment_sequence: u32,
    /// Field number.
    pub field: u16,
    /// Field repetition.
    pub repetition: u16,
    /// Component number.
    pub component: u16,
    /// Sub-component number.
    pub subcomponent: u16,
}

impl Location {
    /// A location naming a segment (and its position) only.
    pub fn segment(id: &str, sequence: usize) -> Self {
        Location {
            segment: id.to_string(),
            segment_sequence: u32::try_from(sequence).unwrap_or(u32::MAX),
            ..Location::default()
        }
    }

    /// The same location narrowed to a field.
    pub fn field(mut self, field: usize) -> Self {
        self.field = clamp(field);
        self
    }

    /// The same location narrowed to a repetition.
    pub fn repetition(mut self, repetition: usize) -> Self {
        self.repetition = clamp(repetition);
        self
    }

    /// The same location narrowed to a component.
    pub fn component(mut self, component: usize) -> Self {
        self.component = clamp(component);
        self
    }

    /// The same location narrowed to a sub-component.
    pub fn subcomponent(mut self, subcomponent: usize) -> Self {
        self.subcomponent = clamp(subcomponent);
        self
    }
}

fn clamp(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

impl Location {
    /// The location as ERR-2 writes it (the ERL data type, with `^` between its components):
    /// `OBX^1^5`, zeros left empty and trailing empty components dropped, the segment
    /// numbered as the caller gives it (the ACK builder numbers it by occurrence, see
    /// `ack::erl::by_occurrence`). `message` when no segment is named.
    pub fn erl(&self) -> String {
        if self.segment.is_empty() {
            return "message".to_owned();
        }
        let numbers = [
            self.segment_sequence,
            u32::from(self.field),
            u32::from(self.repetition),
            u32::from(self.component),
            u32::from(self.subcomponent),
        ];
        let used = numbers.iter().rposition(|&n| n > 0).map_or(0, |i| i + 1);
        let mut out = self.segment.clone();
        for &n in numbers.iter().take(used) {
            out.push('^');
            if n > 0 {
                out.push_str(&n.to_string());
            }
        }
        out
    }
}

impl std::fmt::Display for Location {
    /// Writes the location as an HL7 path, e.g. `PID(2)-3[1].4`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.segment.is_empty() {
            return f.write_str("message");
        }
        write!(f, "{}", self.segment)?;
        if self.segment_sequence > 0 {
            write!(f, "(segment {})", self.segment_sequence)?;
        }
        if self.field > 0 {
            write!(f, "-{}", self.field)?;
            if self.repetition > 0 {
                write!(f, "[{}]", self.repetition)?;
            }
            if self.component > 0 {
                write!(f, ".{}", self.component)?;
                if self.subcomponent > 0 {
                    write!(f, ".{}", self.subcomponent)?;
                }
            }
        }
        Ok(())
    }
}

/// One problem found in a message: what, where, how bad, and its code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Issue {
    /// HL7 table 0357 code.
    pub code: ErrorCode,
    /// Error (reject) or warning (accept and flag).
    pub severity: Severity,
    /// Where it is.
    pub location: Location,
    /// What is wrong, for people. Never contains field values (no PHI).
    pub message: String,
}

impl Issue {
    /// An issue that makes the message unacceptable.
    pub fn error(code: ErrorCode, location: Location, message: impl Into<String>) -> Self {
        Issue {
            code,
            severity: Severity::Error,
            location,
            message: message.into(),
        }
    }

    /// An issue the message is accepted with.
    pub fn warning(code: ErrorCode, location: Location, message: impl Into<String>) -> Self {
        Issue {
            code,
            severity: Severity::Warning,
            location,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} at {}: {} ({})",
            match self.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Information => "info",
            },
            self.code.code(),
            self.location,
            self.message,
            self.code.description()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_renders_as_an_hl7_path() {
        let l = Location::segment("PID", 2)
            .field(3)
            .repetition(1)
            .component(4);
        assert_eq!(l.to_string(), "PID(segment 2)-3[1].4");
        assert_eq!(Location::default().to_string(), "message");
    }

    #[test]
    fn location_as_erl_is_what_err_2_writes() {
        let l = Location::segment("OBX", 1).field(5).component(2);
        assert_eq!(l.erl(), "OBX^1^5^^2");
        assert_eq!(Location::segment("PID", 1).field(3).erl(), "PID^1^3");
        assert_eq!(Location::segment("MSH", 0).erl(), "MSH");
        assert_eq!(Location::default().erl(), "message");
    }

    #[test]
    fn issue_text_names_code_place_and_problem() {
        let i = Issue::error(
            ErrorCode::RequiredFieldMissing,
            Location::segment("MSH", 1).field(10),
            "message control id is empty",
        );
        assert_eq!(
            i.to_string(),
            "error 101 at MSH(segment 1)-10: message control id is empty (Required field missing)"
        );
    }
}
