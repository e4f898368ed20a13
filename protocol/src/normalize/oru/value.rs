//! OBX-5 typed by OBX-2.
//!
//! | OBX-2 | value |
//! |---|---|
//! | NM | `Quantity` with the OBX-6 unit; several numbers (`1^2^3` or repetitions) give a `Series`; a comparator in front (`<5`) gives `Structured` |
//! | SN | `Structured` with the OBX-6 unit |
//! | NA, MA | `Series` |
//! | CWE, CE, CNE, CF | `Coded` (the first repetition; more repetitions are warned about) |
//! | TS, DTM, DT | `Time` |
//! | ST, TX, FT and anything else | `Text`, repetitions joined by a newline |
//!
//! An empty or null OBX-5 is `Value::None`. A value that does not read as
//! its type is a data type warning at OBX-5 and is kept as `Text`.
//!
//! Trailing delimiters are insignificant (HL7 v2 ch. 2): for NM, NA and MA,
//! empty components and repetitions after the last number are ignored, so
//! `5.4^`, `5.4~` and `<0.5^^` read as `5.4` and `<0.5` with their unit. An
//! empty part followed by a number (`1^^3`) is not a number list.

use crate::hl7::{Element, ErrorCode};
use crate::normalize::context::{At, Work};
use crate::normalize::datatypes::{
    Accept, coded, comparator_number, decimal, structured_numeric, text, timestamp, unit,
};
use crate::normalize::fields::Fields;
use crate::record::{Decimal, Quantity, Series, StructuredNumeric, Value};

/// OBX-5 of `obx`, read as OBX-2 says.
pub(super) fn value(work: &mut Work<'_>, obx: &Fields<'_>) -> Value {
    let Some(field) = obx.field(5).filter(|f| !f.is_empty() && !f.is_null()) else {
        return Value::None;
    };
    let at = obx.at(5);
    let kind = Kind::of(text(obx.field(2).and_then(|f| f.component(1))).as_deref());
    let read = match kind {
        Kind::Numeric => numeric(work, obx, field),
        Kind::Structured => structured(work, obx, field),
        Kind::Series => series(field).map(|s| Value::Series(one_channel(s, work, obx))),
        Kind::Coded => coded_value(work, obx, field, at),
        // An unreadable time is warned about by `timestamp` itself.
        Kind::Time => {
            return timestamp(work, Some(field), at)
                .map_or_else(|| joined_text(field), Value::Time);
        }
        Kind::Text => return joined_text(field),
    };
    read.unwrap_or_else(|| {
        work.warn(
            ErrorCode::DataType,
            at.repetition(1),
            "observation value does not match its value type (OBX-2)",
        );
        joined_text(field)
    })
}

/// How OBX-2 says OBX-5 is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Numeric,
    Structured,
    Series,
    Coded,
    Time,
    Text,
}

impl Kind {
    fn of(value_type: Option<&str>) -> Kind {
        const KINDS: [(&str, Kind); 11] = [
            ("NM", Kind::Numeric),
            ("SN", Kind::Structured),
            ("NA", Kind::Series),
            ("MA", Kind::Series),
            ("CWE", Kind::Coded),
            ("CE", Kind::Coded),
            ("CNE", Kind::Coded),
            ("CF", Kind::Coded),
            ("TS", Kind::Time),
            ("DTM", Kind::Time),
            ("DT", Kind::Time),
        ];
        let Some(value_type) = value_type else {
            return Kind::Text;
        };
        KINDS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(value_type))
            .map_or(Kind::Text, |(_, kind)| *kind)
    }
}

/// NM: one number, several numbers, or a number behind a comparator.
fn numeric(work: &mut Work<'_>, obx: &Fields<'_>, field: Element<'_>) -> Option<Value> {
    let single = if !obx.is_composite(field) {
        field
    } else if let Some(first) = sole_component(field) {
        first
    } else {
        return series(field).map(|s| Value::Series(one_channel(s, work, obx)));
    };
    let raw = text(Some(single))?;
    if let Some(value) = decimal(&raw) {
        let unit = unit(work, obx, 6);
        return Some(Value::Quantity(Quantity { value, unit }));
    }
    let sn = comparator_number(&raw)?;
    Some(with_unit(work, obx, sn))
}

/// SN (first repetition).
fn structured(work: &mut Work<'_>, obx: &Fields<'_>, field: Element<'_>) -> Option<Value> {
    let sn = structured_numeric(obx.parts(field.repetition(1)))?;
    Some(with_unit(work, obx, sn))
}

fn with_unit(work: &mut Work<'_>, obx: &Fields<'_>, mut sn: StructuredNumeric) -> Value {
    sn.unit = unit(work, obx, 6);
    Value::Structured(sn)
}

/// The first component of the first repetition, when all that follows it
/// is empty (trailing delimiters only).
fn sole_component(field: Element<'_>) -> Option<Element<'_>> {
    let is_blank = |rep: Element<'_>, from: usize| {
        (from..=rep.component_count()).all(|n| text(rep.component(n)).is_none())
    };
    let mut reps = field.repetitions();
    let first = reps.next()?;
    (is_blank(first, 2) && reps.all(|rep| is_blank(rep, 1)))
        .then(|| first.component(1))
        .flatten()
}

/// Every number in every repetition and component, in order; `None` if any
/// is not a number. Empty parts are allowed only after the last number of
/// their repetition, empty repetitions only after the last number.
fn series(field: Element<'_>) -> Option<Vec<Decimal>> {
    let mut out = Vec::new();
    let mut empty_repetition = false;
    for rep in field.repetitions() {
        let (before, mut empty_part) = (out.len(), false);
        for n in 1..=rep.component_count() {
            match text(rep.component(n)) {
                None => empty_part = true,
                Some(_) if empty_part || empty_repetition => return None,
                Some(part) => out.push(decimal(&part)?),
            }
        }
        empty_repetition |= out.len() == before;
    }
    (!out.is_empty()).then_some(out)
}

/// CWE and friends: the first repetition; further ones are warned about.
fn coded_value(
    work: &mut Work<'_>,
    obx: &Fields<'_>,
    field: Element<'_>,
    at: At<'_>,
) -> Option<Value> {
    let repetitions = field.repetitions().count();
    let value = coded(work, obx.parts(Some(field)), Accept::GENERAL)?;
    if repetitions > 1 {
        work.warn(
            ErrorCode::DataType,
            at.repetition(2),
            "only the first repetition of a coded observation value is kept",
        );
    }
    Some(Value::Coded(value))
}

/// The field's repetitions as text, joined by newlines.
fn joined_text(field: Element<'_>) -> Value {
    let mut out = String::new();
    for (i, rep) in field.repetitions().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(rep.text().trim_end());
    }
    if out.trim().is_empty() {
        Value::None
    } else {
        Value::Text(out.into())
    }
}

/// A series of one channel with the OBX-6 unit.
fn one_channel(values: Vec<Decimal>, work: &mut Work<'_>, obx: &Fields<'_>) -> Series {
    Series {
        values,
        channels: 1,
        unit: unit(work, obx, 6),
    }
}
