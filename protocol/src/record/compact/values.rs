//! The compact form of the parts of an observation value and of short
//! lists: units, SN structured numerics, reference ranges, string lists.
//! The same in schema 2 and 3.

use super::reader::Reader;
use super::writer::Writer;
use super::{CompactError, Pool};
use crate::record::limits;
use crate::record::{CompactString, Converted, ReferenceRange, StructuredNumeric, Unit};

/// Unit form byte: no unit.
const NO_UNIT: u8 = 0;
/// Unit form byte: a unit known by its UCUM code only.
const UCUM_UNIT: u8 = 1;
/// Unit form byte: a unit with its UCUM code and its spelling as sent.
const FULL_UNIT: u8 = 2;

/// UCUM code, then the unit as sent.
pub(super) fn write_unit<'a>(w: &mut Writer<'a>, u: &'a Unit) {
    w.str(Pool::Unit, u.ucum.as_deref());
    w.str(Pool::Unit, u.original.as_deref());
}

pub(super) fn read_unit(r: &mut Reader<'_>) -> Result<Unit, CompactError> {
    Ok(Unit {
        ucum: r.str(Pool::Unit)?,
        original: r.str(Pool::Unit)?,
    })
}

/// Presence byte (bit 0 low, 1 high, 2 unit), comparator, separator, then
/// the parts present.
pub(super) fn write_structured<'a>(w: &mut Writer<'a>, sn: &'a StructuredNumeric) {
    let bits = u8::from(sn.low.is_some())
        | u8::from(sn.high.is_some()) << 1
        | u8::from(sn.unit.is_some()) << 2;
    w.byte(bits);
    w.str(Pool::Code, sn.comparator.as_deref());
    w.str(Pool::Code, sn.separator.as_deref());
    if let Some(d) = sn.low {
        w.decimal(d);
    }
    if let Some(d) = sn.high {
        w.decimal(d);
    }
    if let Some(u) = &sn.unit {
        write_unit(w, u);
    }
}

pub(super) fn read_structured(r: &mut Reader<'_>) -> Result<StructuredNumeric, CompactError> {
    let bits = r.byte()?;
    let comparator = r.str(Pool::Code)?;
    let separator = r.str(Pool::Code)?;
    Ok(StructuredNumeric {
        comparator,
        low: if bits & 1 != 0 {
            Some(r.decimal()?)
        } else {
            None
        },
        separator,
        high: if bits & 2 != 0 {
            Some(r.decimal()?)
        } else {
            None
        },
        unit: if bits & 4 != 0 {
            Some(read_unit(r)?)
        } else {
            None
        },
    })
}

/// Presence byte (bit 0 low, 1 high, 2 text), then the parts present.
pub(super) fn write_range<'a>(w: &mut Writer<'a>, range: &'a ReferenceRange) {
    let bits = u8::from(range.low.is_some())
        | u8::from(range.high.is_some()) << 1
        | u8::from(range.text.is_some()) << 2;
    w.byte(bits);
    if let Some(d) = range.low {
        w.decimal(d);
    }
    if let Some(d) = range.high {
        w.decimal(d);
    }
    if range.text.is_some() {
        w.str(Pool::Text, range.text.as_deref());
    }
}

pub(super) fn read_range(r: &mut Reader<'_>) -> Result<ReferenceRange, CompactError> {
    let bits = r.byte()?;
    Ok(ReferenceRange {
        low: if bits & 1 != 0 {
            Some(r.decimal()?)
        } else {
            None
        },
        high: if bits & 2 != 0 {
            Some(r.decimal()?)
        } else {
            None
        },
        text: if bits & 4 != 0 {
            Some(r.req_str(Pool::Text)?)
        } else {
            None
        },
    })
}

/// A count, then the strings.
pub(super) fn write_list<'a>(w: &mut Writer<'a>, pool: Pool, items: &'a [CompactString]) {
    w.count(items.len());
    for s in items {
        w.str(pool, Some(s));
    }
}

pub(super) fn read_list(
    r: &mut Reader<'_>,
    pool: Pool,
) -> Result<Vec<CompactString>, CompactError> {
    let n = r.count(limits::MAX_VALUES, "flags or equipment ids")?;
    r.add_values(n)?;
    let mut items = Vec::with_capacity(limits::capacity::<CompactString>(n));
    for _ in 0..n {
        items.push(r.req_str(pool)?);
    }
    Ok(items)
}

/// A unit form byte ([`NO_UNIT`], [`UCUM_UNIT`], [`FULL_UNIT`]), what
/// `value` writes, then the unit.
pub(super) fn write_opt_unit_and<'a>(
    w: &mut Writer<'a>,
    unit: Option<&'a Unit>,
    value: impl FnOnce(&mut Writer<'a>),
) {
    let form = match unit {
        None => NO_UNIT,
        Some(Unit {
            ucum: Some(_),
            original: None,
        }) => UCUM_UNIT,
        Some(_) => FULL_UNIT,
    };
    w.byte(form);
    value(w);
    match (form, unit) {
        (UCUM_UNIT, Some(u)) => w.str(Pool::Unit, u.ucum.as_deref()),
        (FULL_UNIT, Some(u)) => write_unit(w, u),
        _ => {}
    }
}

/// What [`write_opt_unit_and`] wrote, with `value` reading the value.
pub(super) fn read_opt_unit_and<T>(
    r: &mut Reader<'_>,
    value: impl FnOnce(&mut Reader<'_>) -> Result<T, CompactError>,
) -> Result<(T, Option<Unit>), CompactError> {
    let form = r.byte()?;
    let read = value(r)?;
    let unit = match form {
        NO_UNIT => None,
        UCUM_UNIT => Some(Unit {
            ucum: Some(r.req_str(Pool::Unit)?),
            original: None,
        }),
        FULL_UNIT => Some(read_unit(r)?),
        _ => {
            return Err(CompactError::BadTag {
                what: "unit form",
                tag: u64::from(form),
            });
        }
    };
    Ok((read, unit))
}

/// An optional converted value standing alone (outside a result, whose
/// header announces it): a byte (0 none, 1 exact, 2 rounded), then the
/// decimal and the unit.
pub(super) fn write_opt_converted<'a>(w: &mut Writer<'a>, c: Option<&'a Converted>) {
    match c {
        None => w.byte(0),
        Some(c) => {
            w.byte(if c.exact { 1 } else { 2 });
            w.decimal(c.value);
            w.str(Pool::Unit, Some(&c.unit));
        }
    }
}

/// What [`write_opt_converted`] wrote.
pub(super) fn read_opt_converted(r: &mut Reader<'_>) -> Result<Option<Converted>, CompactError> {
    let exact = match r.byte()? {
        0 => return Ok(None),
        1 => true,
        2 => false,
        tag => {
            return Err(CompactError::BadTag {
                what: "converted value",
                tag: u64::from(tag),
            });
        }
    };
    Ok(Some(Converted {
        value: r.decimal()?,
        unit: r.req_str(Pool::Unit)?,
        exact,
    }))
}
