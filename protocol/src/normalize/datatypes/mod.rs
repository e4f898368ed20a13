//! HL7 data types read into record values.
//!
//! Each reader takes the element (field, repetition or component) that
//! holds the value and the place it came from. A value that is simply
//! absent gives `None` silently; a value that is present but cannot be read
//! gives `None` (or the raw text, where the record has room for it) and a
//! Warning issue (table 0357 code 102 or 103) at that exact place. Text is
//! trimmed of surrounding ASCII whitespace and HL7's explicit null `""` counts as
//! absent.

mod coded;
mod identity;
mod numeric;
mod unit;

pub(crate) use coded::{Accept, coded, coded_answer, coded_private, missing_code, repeated_coded};
pub(crate) use identity::{
    address, entity_id, identifier, organization, person_name, practitioner, telecom,
};
pub(crate) use numeric::{comparator_number, decimal, reference_range, structured_numeric};
pub(crate) use unit::{unit, unit_in};

use std::borrow::Cow;

use crate::hl7::{Element, ErrorCode};
use crate::normalize::context::{At, Work};
use crate::normalize::fields::{Fields, Parts};
use crate::normalize::time::to_timestamp;
use crate::record::{Coded, CompactString, Practitioner, Precision, Timestamp};

/// The element's text, trimmed; `None` when absent, empty, null or blank.
pub(crate) fn text<'a>(element: Option<Element<'a>>) -> Option<Cow<'a, str>> {
    let element = element?;
    if let Some(plain) = element.plain_text() {
        return trimmed(plain).map(Cow::Borrowed);
    }
    let value = element.value()?;
    let trimmed = match value {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim_ascii()),
        Cow::Owned(s) if s.trim_ascii().len() == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(s.trim_ascii().to_owned()),
    };
    (!trimmed.is_empty()).then_some(trimmed)
}

/// [`text`] of text that needs no decoding: trimmed, `None` when empty,
/// null or blank.
fn trimmed(plain: &str) -> Option<&str> {
    let trimmed = plain.trim_ascii();
    (!trimmed.is_empty() && plain != "\"\"").then_some(trimmed)
}

/// [`text`] as an owned string (inline when short).
pub(crate) fn string(element: Option<Element<'_>>) -> Option<CompactString> {
    let element = element?;
    match element.plain_text() {
        Some(plain) => trimmed(plain).map(CompactString::new),
        None => text(Some(element)).map(CompactString::from),
    }
}

/// Component `n` of `element` (first repetition of a field) as a string.
pub(crate) fn component(element: Option<Element<'_>>, n: usize) -> Option<CompactString> {
    string(element?.component(n))
}

/// A TS/DTM/DT element (its first component) as a UTC timestamp.
///
/// Unreadable dates are reported as a data type error at `at`, narrowed to
/// its first repetition and component as validation does. A time without
/// an offset is read in `Work::zone` (the site zone, or the sender's offset:
/// see `header`); one of hour precision or finer is noted in `work`.
pub(crate) fn timestamp(
    work: &mut Work<'_>,
    element: Option<Element<'_>>,
    at: At<'_>,
) -> Option<Timestamp> {
    let element = element?;
    // Keys are first components (no component or repetition separator):
    // an element equal to one is its own first component.
    if let Some(known) = work.times.get(element.raw()) {
        return Some(*known);
    }
    let first = element.component(1)?;
    if let Some(known) = work.times.get(first.raw()) {
        return Some(*known);
    }
    let value = text(Some(first))?;
    match to_timestamp(&value, work.zone()) {
        Ok(ts) => {
            work.read_without_offset |= ts.zone_assumed && ts.precision >= Precision::Hour;
            work.times.put(first.raw(), ts);
            Some(ts)
        }
        Err(_) => {
            work.warn(
                ErrorCode::DataType,
                at.repetition(1).component(1),
                "value is not a valid HL7 date/time",
            );
            None
        }
    }
}

/// Every repetition of field `n` of `fields`, read by `read` from its
/// components; repetitions it makes nothing of are left out.
pub(crate) fn each<T>(
    fields: &Fields<'_>,
    n: usize,
    mut read: impl FnMut(Parts<'_>) -> Option<T>,
) -> Vec<T> {
    let Some(field) = fields.field(n) else {
        return Vec::new();
    };
    field
        .repetitions()
        .filter_map(|rep| read(fields.parts(Some(rep))))
        .collect()
}

/// The first repetition of field `n` read by `read` from its components.
pub(crate) fn first<T>(
    fields: &Fields<'_>,
    n: usize,
    read: impl FnOnce(Parts<'_>) -> Option<T>,
) -> Option<T> {
    read(fields.parts(fields.field(n)))
}

/// Every XCN repetition of field `n`, for a field whose value usually
/// repeats on every segment of a message (OBX-16, OBX-25): the same bytes
/// are read once per message.
pub(crate) fn repeated_people(
    work: &mut Work<'_>,
    fields: &Fields<'_>,
    n: usize,
) -> Vec<Practitioner> {
    let Some(field) = fields.field(n) else {
        return Vec::new();
    };
    if let Some(known) = work.people.get(field.raw()) {
        return known.clone();
    }
    let people = each(fields, n, practitioner);
    work.people.put(field.raw(), people.clone());
    people
}

/// Every repetition of field `n` as a coded element about the patient
/// (unmapped codes counted, never named: see [`coded_private`]).
pub(crate) fn each_coded(
    work: &mut Work<'_>,
    fields: &Fields<'_>,
    n: usize,
    accept: Accept,
) -> Vec<Coded> {
    let Some(field) = fields.field(n) else {
        return Vec::new();
    };
    field
        .repetitions()
        .enumerate()
        .filter_map(|(i, rep)| {
            coded_private(
                work,
                fields.parts(Some(rep)),
                accept,
                fields.at(n).repetition(i + 1),
            )
        })
        .collect()
}

/// The time in a component of a composite (DR.1, CQ, ...): its first
/// sub-component (a TS there is `time&precision`).
pub(crate) fn component_time(
    work: &mut Work<'_>,
    component: Option<Element<'_>>,
    at: At<'_>,
) -> Option<Timestamp> {
    let time = component?.subcomponent(1)?;
    timestamp(work, Some(time), at)
}

/// Field `n` read as a timestamp.
pub(crate) fn field_time(work: &mut Work<'_>, fields: &Fields<'_>, n: usize) -> Option<Timestamp> {
    timestamp(work, fields.field(n), fields.at(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::Message;

    #[test]
    fn text_is_trimmed_and_nulls_and_blanks_are_absent() {
        let m = Message::parse(b"MSH|^~\\&|A\rPID|1| x |\"\"|  |a\\T\\b ").unwrap();
        let pid = m.segment("PID").unwrap();
        assert_eq!(text(pid.field(2)).unwrap(), "x");
        assert!(text(pid.field(3)).is_none());
        assert!(text(pid.field(4)).is_none());
        assert_eq!(text(pid.field(5)).unwrap(), "a&b");
        assert!(text(pid.field(9)).is_none());
    }

    #[test]
    fn a_string_is_the_text_owned_escaped_or_not() {
        for raw in [
            &b"PID|1| x |\"\"|  |a\\T\\b |\" \"\" "[..],
            b"PID|1| x |\"\"|  |ab |y",
        ] {
            let mut bytes = b"MSH|^~\\&|A\r".to_vec();
            bytes.extend_from_slice(raw);
            let m = Message::parse(&bytes).unwrap();
            let pid = m.segment("PID").unwrap();
            for n in 1..8 {
                assert_eq!(
                    string(pid.field(n)).as_deref(),
                    text(pid.field(n)).as_deref(),
                    "PID-{n}"
                );
            }
        }
    }
}
