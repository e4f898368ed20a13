//! The parts of a normalized record as people read them: times in ISO 8601 with their zone and
//! precision, coding systems by their common names, values and their units, reference ranges.
//! Shared by `inspect`'s report and the demo.
//!
//! Pure; nothing here lets a control character from a message reach the terminal (text values
//! go through [`crate::cli::text::printable`]).

use std::borrow::Cow;

use hl7edge_protocol::normalize::coding_system::CodingSystem;
use hl7edge_protocol::record::{
    Coded, Precision, ReferenceRange, StructuredNumeric, Timestamp, Unit, Value,
};
use jiff::tz::{Offset, TimeZone};

use crate::cli::text::printable;

/// Most characters of a text value shown in a table cell.
const TEXT_CELL: usize = 40;

/// A record time in ISO 8601 at the precision it was sent with, in the offset it was sent with
/// (`2024-01-02T12:30:45-05:00`, `1970-01-01` for a date). A time sent without an offset, read
/// in the interface's time zone, gets a `*` (callers explain it once).
pub fn iso(t: &Timestamp) -> String {
    let offset = Offset::from_seconds(i32::from(t.offset_minutes) * 60).unwrap_or(Offset::UTC);
    let Ok(instant) = jiff::Timestamp::from_millisecond(t.utc_ms) else {
        return format!("{} ms", t.utc_ms);
    };
    let local = instant.to_zoned(TimeZone::fixed(offset));
    let pattern = match t.precision {
        Precision::Year => "%Y",
        Precision::Month => "%Y-%m",
        Precision::Day => "%Y-%m-%d",
        Precision::Hour => "%Y-%m-%dT%H%:z",
        Precision::Minute => "%Y-%m-%dT%H:%M%:z",
        Precision::Second => "%Y-%m-%dT%H:%M:%S%:z",
        Precision::Fraction => "%Y-%m-%dT%H:%M:%S%.3f%:z",
    };
    let text = local.strftime(pattern).to_string();
    if t.zone_assumed && t.precision >= Precision::Hour {
        format!("{text}*")
    } else {
        text
    }
}

/// What people call a coding system: `LOINC`, `SNOMED CT`, `UCUM`, or its HL7 name.
pub fn system_name(system: &CodingSystem) -> Cow<'_, str> {
    match system {
        CodingSystem::Loinc => "LOINC".into(),
        CodingSystem::SnomedCt => "SNOMED CT".into(),
        other => other.hl7_code(),
    }
}

/// The code as sent with its system: `GLU (99LAB)`, `2345-7 (LN)`, `GLU` without a system.
pub fn sent_code(c: &Coded) -> String {
    let system = c.original.system.hl7_code();
    let code = printable(c.original.code.as_bytes());
    if system.is_empty() {
        code
    } else {
        format!("{code} ({})", printable(system.as_bytes()))
    }
}

/// The standard coding of `c` and where it came from: `LOINC 2345-7` (as sent), `LOINC 2345-7,
/// mapped` (the mapping table), `LOINC 2345-7, alternate` (CWE-4..6); `-` when there is none.
pub fn standard_code(c: &Coded) -> String {
    use hl7edge_protocol::record::Standard;
    let Some(coding) = c.standard_coding() else {
        return "-".to_owned();
    };
    let code = format!(
        "{} {}",
        system_name(&coding.system),
        printable(coding.code.as_bytes())
    );
    match c.standard {
        Standard::Mapped(_) => format!("{code}, mapped"),
        Standard::Alternate => format!("{code}, alternate"),
        Standard::Original | Standard::Unmapped => code,
    }
}

/// The display text of a coded element, from the standard coding when it has one.
pub fn display(c: &Coded) -> String {
    let text = c
        .standard_coding()
        .and_then(|s| s.display.as_deref())
        .or(c.original.display.as_deref())
        .unwrap_or_default();
    printable(text.as_bytes())
}

/// A value without its unit, for a table cell: the number, the coded answer, the time, the text
/// (one line, cut to [`TEXT_CELL`] characters), or how many numbers a series holds.
pub fn value(v: &Value) -> String {
    match v {
        Value::None => "(no value)".into(),
        Value::Quantity(q) => q.value.to_string(),
        Value::Structured(sn) => structured(sn),
        Value::Coded(c) => {
            let shown = display(c);
            if shown.is_empty() {
                printable(c.original.code.as_bytes())
            } else {
                shown
            }
        }
        Value::Time(t) => iso(t),
        Value::Text(t) => one_line(t, TEXT_CELL),
        Value::Series(s) => format!("{} values", s.values.len()),
    }
}

/// The unit of a value, for a table cell: the UCUM unit, with the spelling sent when the
/// gateway translated it (`mg/dL (sent mgs/dl)`), or the spelling sent when it has no UCUM form.
pub fn unit(v: &Value) -> String {
    let unit = match v {
        Value::Quantity(q) => q.unit.as_ref(),
        Value::Structured(sn) => sn.unit.as_ref(),
        _ => None,
    };
    unit.map(unit_text).unwrap_or_default()
}

/// A unit as UCUM, with what was sent when that differs.
pub fn unit_text(u: &Unit) -> String {
    let sent = u.original.as_deref().map(|s| printable(s.as_bytes()));
    match (&u.ucum, sent) {
        (Some(ucum), Some(sent)) => format!("{ucum} (sent {sent})"),
        (Some(ucum), None) => ucum.to_string(),
        (None, Some(sent)) => sent,
        (None, None) => String::new(),
    }
}

/// An SN value without its unit: `>100`, `10-20`, `1:128`.
pub fn structured(sn: &StructuredNumeric) -> String {
    [
        sn.comparator.as_deref().map(str::to_owned),
        sn.low.map(|d| d.to_string()),
        sn.separator.as_deref().map(str::to_owned),
        sn.high.map(|d| d.to_string()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A reference range: `70-99`, `>70`, `<99`, or its text.
pub fn range(r: &ReferenceRange) -> String {
    match (&r.low, &r.high, &r.text) {
        (Some(low), Some(high), _) => format!("{low}-{high}"),
        (Some(low), None, _) => format!(">{low}"),
        (None, Some(high), _) => format!("<{high}"),
        (None, None, Some(text)) => printable(text.as_bytes()),
        (None, None, None) => String::new(),
    }
}

/// Text on one line (line breaks as ` / `), cut to `max` characters with `…`.
pub fn one_line(text: &str, max: usize) -> String {
    let joined = text
        .split(['\r', '\n'])
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" / ");
    let printable = printable(joined.as_bytes());
    if printable.chars().count() <= max {
        printable
    } else {
        let mut cut: String = printable.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(utc_ms: i64, precision: Precision, offset_minutes: i16, assumed: bool) -> Timestamp {
        Timestamp {
            utc_ms,
            precision,
            offset_minutes,
            zone_assumed: assumed,
        }
    }

    #[test]
    fn times_keep_their_precision_and_offset() {
        // 2024-01-02T17:30:45Z
        let ms = 1_704_216_645_000;
        assert_eq!(
            iso(&at(ms, Precision::Second, -300, false)),
            "2024-01-02T12:30:45-05:00"
        );
        assert_eq!(
            iso(&at(ms, Precision::Minute, 60, true)),
            "2024-01-02T18:30+01:00*"
        );
        assert_eq!(
            iso(&at(ms + 123, Precision::Fraction, 0, false)),
            "2024-01-02T17:30:45.123+00:00"
        );
        assert_eq!(iso(&at(0, Precision::Day, 0, true)), "1970-01-01");
    }

    #[test]
    fn text_values_become_one_line_cut_to_the_cell() {
        assert_eq!(one_line("a\rb\r\rc", 40), "a / b / c");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("\u{1b}[2J", 40), "<0x1B>[2J");
    }
}
