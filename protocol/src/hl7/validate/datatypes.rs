//! Data type checks for the values normalization relies on: NM numbers, SN
//! structured numerics and DTM/TS date/times.
//!
//! The checks read decoded text (escapes resolved) and never copy a value
//! into an issue.

use crate::hl7::datetime::{Precision, parse_ts};
use crate::hl7::element::{Element, trim};
use crate::hl7::fields::Fields;
use crate::hl7::issue::ErrorCode;
use crate::hl7::limits::Issues;
use crate::hl7::validate::segment_location;

/// SN.1 comparators.
const COMPARATORS: &[&str] = &["", ">", "<", ">=", "<=", "=", "<>"];

/// SN.3 separators/suffixes (range, ratio, ...).
const SEPARATORS: &[&str] = &["", "-", "+", "/", ".", ":"];

/// True for an HL7 NM value: an optional sign, digits with at most one
/// decimal point, at least one digit. Surrounding spaces are tolerated.
pub(super) fn is_numeric(text: &str) -> bool {
    let body = trim(text).as_bytes();
    let body = match body {
        [b'+' | b'-', rest @ ..] => rest,
        _ => body,
    };
    let (mut digits, mut point) = (0, false);
    for &b in body {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' if !point => point = true,
            _ => return false,
        }
    }
    digits > 0
}

/// True for an HL7 SN value held in one repetition:
/// `[comparator]^number[^separator^number]`, e.g. `>^100`, `^10^-^20`,
/// `<^5`, `^1^/^128`.
pub(super) fn is_structured_numeric(value: &Element<'_>) -> bool {
    if value.component_count() > 4 {
        return false;
    }
    let part = |n| {
        value
            .component(n)
            .and_then(|c| c.value())
            .unwrap_or_default()
    };
    let (comparator, first, separator, second) = (part(1), part(2), part(3), part(4));
    let (comparator, separator, second) = (trim(&comparator), trim(&separator), trim(&second));
    COMPARATORS.contains(&comparator)
        && is_numeric(&first)
        && SEPARATORS.contains(&separator)
        && if separator.is_empty() {
            second.is_empty()
        } else {
            is_numeric(second)
        }
}

/// How many valid date/times [`ValidTimes`] remembers.
const REMEMBERED_TIMES: usize = 4;

/// Date/times of one message already found valid, by their raw bytes: the
/// same OBX-14 (and OBR-7) usually repeats on every observation, and is
/// then parsed once.
#[derive(Debug, Default)]
pub(super) struct ValidTimes<'a> {
    /// `(raw bytes, read as a date only)`, filled in turn.
    seen: [Option<(&'a [u8], bool)>; REMEMBERED_TIMES],
    /// The slot the next valid value goes to.
    next: usize,
}

impl<'a> ValidTimes<'a> {
    fn contains(&self, raw: &[u8], date_only: bool) -> bool {
        self.seen
            .iter()
            .flatten()
            .any(|&(seen, only)| only == date_only && seen.len() == raw.len() && seen == raw)
    }

    fn remember(&mut self, raw: &'a [u8], date_only: bool) {
        if let Some(slot) = self.seen.get_mut(self.next) {
            *slot = Some((raw, date_only));
        }
        self.next = (self.next + 1) % REMEMBERED_TIMES;
    }
}

/// Pushes a 102 warning for each repetition of field `field` whose first
/// component is not a valid DTM (or, with `date_only`, a DT: no finer than
/// a day).
pub(super) fn check_date_time<'a>(
    seg: &Fields<'a>,
    times: &mut ValidTimes<'a>,
    field: usize,
    what: &str,
    date_only: bool,
    out: &mut Issues,
) {
    let Some(f) = seg.field(field) else { return };
    // A remembered value never holds a component or repetition separator,
    // so a field equal to one is that single valid value.
    if times.contains(f.raw(), date_only) {
        return;
    }
    for (r, rep) in f.repetitions().enumerate() {
        let Some(first) = rep.component(1) else {
            continue;
        };
        if times.contains(first.raw(), date_only) {
            continue;
        }
        let Some(text) = first.value() else {
            continue;
        };
        let valid = parse_ts(&text).is_some_and(|ts| {
            !date_only || (ts.precision <= Precision::Day && ts.offset_minutes.is_none())
        });
        if valid {
            times.remember(first.raw(), date_only);
        } else {
            let kind = if date_only { "date" } else { "date/time" };
            out.warn_with(
                ErrorCode::DataType,
                || {
                    segment_location(&seg.segment())
                        .field(field)
                        .repetition(r + 1)
                        .component(1)
                },
                || {
                    let id = seg.segment().id();
                    format!("{id}-{field} ({what}) is not a valid {kind}")
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::Message;

    fn sn(raw: &str) -> bool {
        let text = format!("MSH|^~\\&|A\rOBX|1|SN|c||{raw}");
        let m = Message::parse(text.as_bytes()).unwrap();
        let f = m.segment("OBX").unwrap().field(5).unwrap();
        is_structured_numeric(&f.repetition(1).unwrap())
    }

    #[test]
    fn a_repeated_date_time_is_parsed_once_and_a_bad_one_warned_every_time() {
        let obx = |n: u8, time: &str| format!("OBX|{n}|NM|c||1||||||F|||{time}");
        let text = [
            "MSH|^~\\&|A".to_string(),
            obx(1, "20240101"),
            obx(2, "20240101"),
            obx(3, "2024011"),
            obx(4, "2024011"),
        ]
        .join("\r");
        let m = Message::parse(text.as_bytes()).unwrap();
        let bad: Vec<_> = crate::hl7::validate::validate(&m)
            .iter()
            .filter(|i| i.location.field == 14)
            .map(|i| i.location.segment_sequence)
            .collect();
        assert_eq!(bad, [4, 5]);
        let mut times = ValidTimes::default();
        times.remember(b"20240101", false);
        assert!(times.contains(b"20240101", false));
        assert!(!times.contains(b"20240101", true));
        assert!(!times.contains(b"2024010", false));
    }

    #[test]
    fn numbers_follow_the_nm_grammar() {
        for ok in ["95", "-1.5", "+.5", "1.", "0012", " 7 "] {
            assert!(is_numeric(ok), "{ok:?}");
        }
        for bad in ["", ".", "-", "1.2.3", "1e5", "<5", "5 mg", "1,5", "--1"] {
            assert!(!is_numeric(bad), "{bad:?}");
        }
    }

    #[test]
    fn structured_numerics_follow_the_sn_grammar() {
        for ok in [
            ">^100", "^10^-^20", "<^5", "^1^/^128", "^95", ">=^7.5", "^2^:^1",
        ] {
            assert!(sn(ok), "{ok:?}");
        }
        for bad in [
            "", "^", ">", "^>^100", "~^5", "^10^-", "^10^^20", "^1^x^2", "^a", "^1^-^2^3",
        ] {
            assert!(!sn(bad), "{bad:?}");
        }
    }
}
