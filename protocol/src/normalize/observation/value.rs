//! OBX-5 typed by OBX-2, every repetition.
//!
//! | OBX-2 | value |
//! |---|---|
//! | NM | `Quantity` with the OBX-6 unit, one per repetition; several numbers in components (`1^2^3`, devices) give a `Series`; a comparator in front (`<5`) gives `Structured` |
//! | SN | `Structured` with the OBX-6 unit, one per repetition |
//! | NA | `Series` of every number, one channel |
//! | MA | `Series` whose channels are the components of each repetition (a sample) |
//! | CWE, CE, CNE, CF | `Coded`, one per repetition |
//! | TS, DTM, DT | `Time`, one per repetition |
//! | ST, TX, FT and anything else | `Text`, repetitions joined by a newline |
//!
//! The first repetition is the observation's `value`, the others its
//! `more_values`. OBX-6 goes with numbers; a value of another kind sent
//! with a unit (`>17` as ST with `umol/L`) keeps it beside it (`unit`).
//!
//! An empty or null OBX-5 is `Value::None`. A value that does not read as
//! its type is a data type warning at OBX-5 and is kept as `Text` (all
//! repetitions, joined).
//!
//! Trailing delimiters are insignificant (HL7 v2 ch. 2): for NM, NA and MA,
//! empty components and repetitions after the last number are ignored, so
//! `5.4^`, `5.4~` and `<0.5^^` read as `5.4` and `<0.5` with their unit. An
//! empty part followed by a number (`1^^3`) is not a number list.

use crate::hl7::{Element, ErrorCode};
use crate::normalize::context::Work;
use crate::normalize::datatypes::{
    coded_answer, comparator_number, decimal, structured_numeric, text, timestamp, unit,
};
use crate::normalize::fields::Fields;
use crate::record::{Decimal, Quantity, Series, StructuredNumeric, Unit, Value};

/// OBX-5 read: the first value, the further ones, and OBX-6 when no value
/// carries it.
pub(super) struct Values {
    /// The first repetition.
    pub(super) value: Value,
    /// The further repetitions.
    pub(super) more: Vec<Value>,
    /// OBX-6, when the values have no unit of their own.
    pub(super) unit: Option<Unit>,
}

/// OBX-5 of `obx`, read as OBX-2 says.
pub(super) fn values(work: &mut Work<'_>, obx: &Fields<'_>) -> Values {
    let Some(field) = obx.field(5).filter(|f| !f.is_empty() && !f.is_null()) else {
        return with_unit_beside(work, obx, Value::None, Vec::new());
    };
    let at = obx.at(5);
    let kind = Kind::of(text(obx.field(2).and_then(|f| f.component(1))).as_deref());
    let read = match kind {
        Kind::Numeric => numeric(work, obx, field),
        Kind::Structured => each_repetition(field, |rep| structured(work, obx, rep)),
        Kind::Array => series(field).map(|values| one(Value::Series(array(work, obx, values, 1)))),
        Kind::Multiplexed => multiplexed(work, obx, field),
        Kind::Coded => each_repetition(field, |rep| {
            coded_answer(work, obx.parts(Some(rep)), at.repetition(1)).map(Value::Coded)
        }),
        // An unreadable time is warned about by `timestamp` itself.
        Kind::Time => {
            let times = each_repetition(field, |rep| {
                timestamp(work, Some(rep), at.repetition(1)).map(Value::Time)
            });
            let (value, more) = times.unwrap_or_else(|| (joined_text(field), Vec::new()));
            return with_unit_beside(work, obx, value, more);
        }
        Kind::Text => return with_unit_beside(work, obx, joined_text(field), Vec::new()),
    };
    let (value, more) = read.unwrap_or_else(|| {
        work.warn(
            ErrorCode::DataType,
            at.repetition(1),
            "observation value does not match its value type (OBX-2)",
        );
        (joined_text(field), Vec::new())
    });
    with_unit_beside(work, obx, value, more)
}

/// The values, and OBX-6 beside them when none of them holds a unit.
fn with_unit_beside(
    work: &mut Work<'_>,
    obx: &Fields<'_>,
    value: Value,
    more: Vec<Value>,
) -> Values {
    let holds_unit = |v: &Value| {
        matches!(
            v,
            Value::Quantity(_) | Value::Structured(_) | Value::Series(_)
        )
    };
    let unit = if holds_unit(&value) || more.iter().any(holds_unit) {
        None
    } else {
        unit(work, obx, 6)
    };
    Values { value, more, unit }
}

/// A value with no further repetitions.
fn one(value: Value) -> (Value, Vec<Value>) {
    (value, Vec::new())
}

/// Each non-blank repetition read by `read`; `None` if any fails (or none
/// is there).
fn each_repetition(
    field: Element<'_>,
    mut read: impl FnMut(Element<'_>) -> Option<Value>,
) -> Option<(Value, Vec<Value>)> {
    let mut values = Vec::new();
    for rep in field.repetitions() {
        if is_blank(rep, 1) {
            continue;
        }
        values.push(read(rep)?);
    }
    let mut values = values.into_iter();
    let first = values.next()?;
    Some((first, values.collect()))
}

/// How OBX-2 says OBX-5 is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Numeric,
    Structured,
    Array,
    Multiplexed,
    Coded,
    Time,
    Text,
}

impl Kind {
    fn of(value_type: Option<&str>) -> Kind {
        const KINDS: [(&str, Kind); 11] = [
            ("NM", Kind::Numeric),
            ("SN", Kind::Structured),
            ("NA", Kind::Array),
            ("MA", Kind::Multiplexed),
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

/// NM: one number per repetition (each perhaps behind a comparator), or
/// several numbers in the components of one (a device's series).
fn numeric(
    work: &mut Work<'_>,
    obx: &Fields<'_>,
    field: Element<'_>,
) -> Option<(Value, Vec<Value>)> {
    if obx.is_composite(field) && sole_component(field).is_none() {
        let several_repetitions = field.repetitions().filter(|r| !is_blank(*r, 1)).count() > 1;
        let single_numbers = field
            .repetitions()
            .all(|r| is_blank(r, 1) || is_blank(r, 2));
        if several_repetitions && single_numbers {
            return each_repetition(field, |rep| number(work, obx, rep.component(1)?));
        }
        return series(field).map(|values| one(Value::Series(array(work, obx, values, 1))));
    }
    let single = if obx.is_composite(field) {
        sole_component(field)?
    } else {
        field
    };
    number(work, obx, single).map(one)
}

/// One number (or comparator and number) with the OBX-6 unit.
fn number(work: &mut Work<'_>, obx: &Fields<'_>, element: Element<'_>) -> Option<Value> {
    let raw = text(Some(element))?;
    if let Some(value) = decimal(&raw) {
        let unit = unit(work, obx, 6);
        return Some(Value::Quantity(Quantity {
            value,
            unit,
            converted: None,
        }));
    }
    let sn = comparator_number(&raw)?;
    Some(with_unit(work, obx, sn))
}

/// One SN repetition with the OBX-6 unit.
fn structured(work: &mut Work<'_>, obx: &Fields<'_>, rep: Element<'_>) -> Option<Value> {
    let sn = structured_numeric(obx.parts(Some(rep)))?;
    Some(with_unit(work, obx, sn))
}

fn with_unit(work: &mut Work<'_>, obx: &Fields<'_>, mut sn: StructuredNumeric) -> Value {
    sn.unit = unit(work, obx, 6);
    Value::Structured(sn)
}

/// A series of `channels` with the OBX-6 unit.
fn array(work: &mut Work<'_>, obx: &Fields<'_>, values: Vec<Decimal>, channels: u16) -> Series {
    Series {
        values,
        channels,
        unit: unit(work, obx, 6),
    }
}

/// MA: each repetition is a sample, its components the channels. Samples
/// of different lengths are no MA: a data type warning, and the numbers as
/// one channel.
fn multiplexed(
    work: &mut Work<'_>,
    obx: &Fields<'_>,
    field: Element<'_>,
) -> Option<(Value, Vec<Value>)> {
    let values = series(field)?;
    let widths: Vec<usize> = field
        .repetitions()
        .filter(|r| !is_blank(*r, 1))
        .map(|r| used_components(r))
        .collect();
    let channels = widths.first().copied().unwrap_or(1);
    let regular = widths.iter().all(|&w| w == channels) && channels * widths.len() == values.len();
    let channels = if regular {
        u16::try_from(channels).unwrap_or(1)
    } else {
        work.warn(
            ErrorCode::DataType,
            obx.at(5),
            "the samples of a multiplexed array (MA) have different numbers of channels; read as one channel",
        );
        1
    };
    Some(one(Value::Series(array(work, obx, values, channels))))
}

/// Components of `rep` up to its last non-blank one (one pass over them).
fn used_components(rep: Element<'_>) -> usize {
    rep.components()
        .enumerate()
        .filter(|(_, c)| text(Some(*c)).is_some())
        .last()
        .map_or(0, |(i, _)| i + 1)
}

/// True when components `from` onwards of `rep` are all blank (one pass
/// over them: reading component `n` by number scans from the start).
fn is_blank(rep: Element<'_>, from: usize) -> bool {
    rep.components()
        .skip(from.saturating_sub(1))
        .all(|c| text(Some(c)).is_none())
}

/// The first component of the first repetition, when all that follows it
/// is empty (trailing delimiters only).
fn sole_component(field: Element<'_>) -> Option<Element<'_>> {
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
        for component in rep.components() {
            match text(Some(component)) {
                None => empty_part = true,
                Some(_) if empty_part || empty_repetition => return None,
                Some(part) => out.push(decimal(&part)?),
            }
        }
        empty_repetition |= out.len() == before;
    }
    (!out.is_empty()).then_some(out)
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
