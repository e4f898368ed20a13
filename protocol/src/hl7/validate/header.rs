//! Checks of the header (MSH), of segment ids and of the character set.
//!
//! These are the checks that decide whether a message can be understood and
//! routed at all, so they hold the only [`Severity::Error`] issues of
//! validation: no message code, no control id, a line that is not a
//! segment, bytes that contradict a declared UTF-8.

use crate::hl7::charset::DeclaredCharset;
use crate::hl7::datetime::parse_ts;
use crate::hl7::element::trim;
use crate::hl7::fields::Fields;
use crate::hl7::issue::{ErrorCode, Issue, Location, Severity};
use crate::hl7::limits::Issues;
use crate::hl7::message::{Message, Segment};
use crate::hl7::message_type::MessageKind;
use crate::hl7::validate::{component_text, segment_location, tables};
use crate::topic::{MAX_MESSAGE_TYPE_PART, TOPIC_UNSAFE};

/// HL7 v2 versions this gateway knows (MSH-12.1); others get a 203 warning.
pub const KNOWN_VERSIONS: [&str; 14] = [
    "2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1",
    "2.8.2", "2.9",
];

/// Runs every header-level check; gives the version number (MSH-12.1) it
/// read, for the structure rules.
pub(super) fn check(msg: &Message<'_>, out: &mut Issues) -> Option<(u8, u8, u8)> {
    check_segment_ids(msg, out);
    check_charset(msg, out);
    let msh = Fields::new(msg, msg.msh());
    let version = component_text(&msh, 12, 1);
    let version_number = version.as_deref().and_then(version_number);
    check_message_type(msg, version_number, out);
    check_control_id(&msh, out);
    check_timestamp(&msh, version_number, out);
    check_processing_id(&msh, out);
    check_version(version.as_deref(), out);
    version_number
}

/// Reads a version id such as `2.5.1` as `(2, 5, 1)`; `None` when it is not
/// one to three dot-separated numbers.
pub(crate) fn version_number(text: &str) -> Option<(u8, u8, u8)> {
    let mut parts = trim(text).as_bytes().split(|&b| b == b'.');
    let mut next = |required: bool| match parts.next() {
        Some([]) => None,
        Some(p) => p.iter().try_fold(0u8, |n, &b| {
            let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
            n.checked_mul(10)?.checked_add(digit)
        }),
        None if !required => Some(0),
        None => None,
    };
    let major = next(true)?;
    let minor = next(false)?;
    let patch = next(false)?;
    parts.next().is_none().then_some((major, minor, patch))
}

fn check_segment_ids(msg: &Message<'_>, out: &mut Issues) {
    for seg in msg.segments().filter(|s| !s.has_valid_id()) {
        let sequence = seg.index() + 1;
        out.push(Issue::error(
            ErrorCode::SegmentSequence,
            segment_location(&seg),
            format!(
                "segment {sequence} has no valid segment id (three uppercase letters or \
                 digits); a line break inside a field leaves such a fragment"
            ),
        ));
    }
}

fn check_charset(msg: &Message<'_>, out: &mut Issues) {
    // Built only when there is something to report.
    let msh18 = || msh_location().field(18);
    match (msg.declared_charset(), msg.charset_mismatch()) {
        (DeclaredCharset::Utf8, Some(at)) => out.push(Issue::error(
            ErrorCode::TableValueNotFound,
            locate_offset(msg, at).unwrap_or_else(msh18),
            "the bytes are not valid UTF-8 although MSH-18 declares UNICODE UTF-8",
        )),
        (DeclaredCharset::Ascii, Some(at)) => out.push(Issue::warning(
            ErrorCode::TableValueNotFound,
            locate_offset(msg, at).unwrap_or_else(msh18),
            "8-bit bytes although MSH-18 declares ASCII; text was read as UTF-8 or Latin-1",
        )),
        (DeclaredCharset::Unsupported(_), _) => out.push(Issue::warning(
            ErrorCode::TableValueNotFound,
            msh18().repetition(1),
            "MSH-18 names an unsupported character set; text was read as UTF-8 or Latin-1",
        )),
        _ => {}
    }
}

/// The segment, field, repetition and component holding byte `offset` of
/// the message.
fn locate_offset(msg: &Message<'_>, offset: usize) -> Option<Location> {
    let base = msg.raw().as_ptr().addr();
    let seg = msg.segments().find(|s| {
        let start = s.raw().as_ptr().addr().wrapping_sub(base);
        (start..start + s.raw().len()).contains(&offset)
    })?;
    let start = seg.raw().as_ptr().addr().wrapping_sub(base);
    let before = seg.raw().get(..offset.checked_sub(start)?)?;
    Some(locate_in_segment(msg, &seg, before))
}

/// Where the end of `before` (a prefix of `seg`) falls inside `seg`.
fn locate_in_segment(msg: &Message<'_>, seg: &Segment<'_>, before: &[u8]) -> Location {
    let d = msg.delimiters();
    let location = segment_location(seg);
    let seps = memchr::memchr_iter(d.field, before).count();
    let header = matches!(seg.id_bytes(), b"MSH" | b"BHS" | b"FHS");
    let field = if header { seps + 1 } else { seps };
    if seps == 0 {
        return location;
    }
    let in_field = before.rsplit(|&b| b == d.field).next().unwrap_or_default();
    let repetitions = memchr::memchr_iter(d.repetition, in_field).count() + 1;
    let in_repetition = in_field
        .rsplit(|&b| b == d.repetition)
        .next()
        .unwrap_or_default();
    let component = memchr::memchr_iter(d.component, in_repetition).count() + 1;
    location
        .field(field)
        .repetition(repetitions)
        .component(component)
}

fn msh_location() -> Location {
    Location::segment("MSH", 1)
}

fn check_message_type(msg: &Message<'_>, version: Option<(u8, u8, u8)>, out: &mut Issues) {
    let at = || msh_location().field(9).repetition(1);
    let kind = msg.message_kind();
    // The code is trimmed there, and empty when not sent.
    if kind.code.is_empty() {
        out.push(Issue::error(
            ErrorCode::RequiredFieldMissing,
            at().component(1),
            "MSH-9.1 (message code) is missing; the message cannot be routed",
        ));
    }
    check_message_type_parts(kind, out);
    // v2.1 carried the trigger event outside MSH-9.
    let has_event_component = version.is_none_or(|v| v >= (2, 2, 0));
    if has_event_component && !kind.event_sent {
        out.push(Issue::warning(
            ErrorCode::RequiredFieldMissing,
            at().component(2),
            "MSH-9.2 (trigger event) is missing",
        ));
    }
}

/// MSH-9's parts become an MQTT topic level (`records/ORU_R01`): a part
/// longer than [`MAX_MESSAGE_TYPE_PART`] characters (104) or holding a
/// character that is a topic separator or wildcard, NUL or another control
/// character (102) is refused, so no message can make a malformed or
/// absurdly long topic.
fn check_message_type_parts(kind: &MessageKind<'_>, out: &mut Issues) {
    let parts = [
        (1, "MSH-9.1 (message code)", &kind.code),
        (2, "MSH-9.2 (trigger event)", &kind.event),
        (3, "MSH-9.3 (message structure)", &kind.structure),
    ];
    for (component, name, part) in parts {
        let at = msh_location().field(9).repetition(1).component(component);
        let chars = part.chars().count();
        if chars > MAX_MESSAGE_TYPE_PART {
            out.push(Issue::error(
                ErrorCode::ValueTooLong,
                at,
                format!(
                    "{name} is {chars} characters long; at most {MAX_MESSAGE_TYPE_PART} are \
                     accepted (HL7 codes and events have 3, structures 7)"
                ),
            ));
        } else if part
            .chars()
            .any(|c| TOPIC_UNSAFE.contains(&c) || c.is_control())
        {
            out.push(Issue::error(
                ErrorCode::DataType,
                at,
                format!(
                    "{name} contains '/', '+', '#' or a control character, which cannot be \
                     part of a message type"
                ),
            ));
        }
    }
}

fn check_control_id(msh: &Fields<'_>, out: &mut Issues) {
    let control_id = msh.field(10).and_then(|f| f.value());
    if control_id.is_none_or(|id| trim(&id).is_empty()) {
        out.push(Issue::error(
            ErrorCode::RequiredFieldMissing,
            msh_location().field(10),
            "MSH-10 (message control id) is empty; the message cannot be acknowledged",
        ));
    }
}

fn check_timestamp(msh: &Fields<'_>, version: Option<(u8, u8, u8)>, out: &mut Issues) {
    match component_text(msh, 7, 1) {
        Some(text) if parse_ts(&text).is_none() => out.push(Issue::warning(
            ErrorCode::DataType,
            msh_location().field(7).repetition(1).component(1),
            "MSH-7 (date/time of message) is not a valid date/time",
        )),
        Some(_) => {}
        // Optional before v2.4.
        None if version.is_none_or(|v| v >= (2, 4, 0)) => out.push(Issue::warning(
            ErrorCode::RequiredFieldMissing,
            msh_location().field(7),
            "MSH-7 (date/time of message) is missing",
        )),
        None => {}
    }
}

fn check_processing_id(msh: &Fields<'_>, out: &mut Issues) {
    let at = || msh_location().field(11);
    let Some(id) = component_text(msh, 11, 1) else {
        out.push(Issue::warning(
            ErrorCode::RequiredFieldMissing,
            at(),
            "MSH-11 (processing id) is missing",
        ));
        return;
    };
    if !tables::contains(tables::PROCESSING_ID, &id) {
        out.push(Issue::warning(
            ErrorCode::TableValueNotFound,
            at().repetition(1).component(1),
            "MSH-11.1 (processing id) is not in HL7 table 0103",
        ));
    }
    let mode = component_text(msh, 11, 2);
    if mode.is_some_and(|m| !tables::contains(tables::PROCESSING_MODE, &m)) {
        out.push(Issue::warning(
            ErrorCode::TableValueNotFound,
            at().repetition(1).component(2),
            "MSH-11.2 (processing mode) is not in HL7 table 0207",
        ));
    }
}

fn check_version(version: Option<&str>, out: &mut Issues) {
    let at = || msh_location().field(12);
    match version {
        None => out.push(Issue::warning(
            ErrorCode::RequiredFieldMissing,
            at(),
            "MSH-12 (version id) is missing",
        )),
        Some(v) if !KNOWN_VERSIONS.contains(&trim(v)) => out.push(Issue {
            code: ErrorCode::UnsupportedVersion,
            severity: Severity::Warning,
            location: at().repetition(1).component(1),
            message: "MSH-12 (version id) is not a known HL7 v2 version (2.1 to 2.9)".into(),
        }),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::version_number;

    #[test]
    fn version_ids_read_as_one_to_three_numbers() {
        assert_eq!(version_number("2.5.1"), Some((2, 5, 1)));
        assert_eq!(version_number(" 2.3 "), Some((2, 3, 0)));
        assert_eq!(version_number("2"), Some((2, 0, 0)));
        assert_eq!(version_number("02.007"), Some((2, 7, 0)));
        for bad in [
            "", "2.", ".5", "2.5.1.0", "2.x", "256", "2.-1", "2..1", "v2.5",
        ] {
            assert_eq!(version_number(bad), None, "{bad:?}");
        }
    }
}
