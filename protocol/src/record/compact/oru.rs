//! The compact form of an ORU^R01 observation report: orders (OBR) and
//! their results (OBX). Bit layouts are documented at each function.

use super::parts::{read_coded, read_opt_coded, write_coded, write_opt_coded};
use super::reader::Reader;
use super::writer::Writer;
use super::{CompactError, Pool};
use crate::record::{
    CompactString, Converted, Observation, ObservationGroup, ObservationReport, Quantity,
    ReferenceRange, ResultStatus, StructuredNumeric, Timestamp, Unit, Value,
};

/// Result header bits 0-3: the status; 4-6: the value kind.
const STATUS_MASK: u64 = 0x0f;
/// Result header: where the value kind starts.
const KIND_SHIFT: u32 = 4;
/// Result header: a reference range follows.
const HAS_RANGE: u64 = 1 << 7;
/// Result header: abnormal flags follow.
const HAS_FLAGS: u64 = 1 << 8;
/// Result header: an observation time follows.
const HAS_TIME: u64 = 1 << 9;
/// Result header: equipment identifiers follow.
const HAS_EQUIPMENT: u64 = 1 << 10;
/// Result header: a sub-id follows.
const HAS_SUB_ID: u64 = 1 << 11;
/// Result header: the observation time is the previous result's in this
/// order (for the first result: the order's observation time).
const SAME_TIME: u64 = 1 << 12;

/// Result header: the quantity's unit has no "as sent" spelling (only its
/// UCUM code is written).
const UCUM_ONLY: u64 = 1 << 13;

/// Result header: a method follows (rare, so past the first two bytes).
const HAS_METHOD: u64 = 1 << 14;

/// Result header: the quantity's value converted to the unit the mapping
/// table expects follows the value (decimal, then the unit).
const HAS_CONVERTED: u64 = 1 << 15;

/// Result header: that conversion was rounded (not exact).
const CONVERTED_ROUNDED: u64 = 1 << 16;

/// Every result status, by its number on the wire.
const STATUSES: [ResultStatus; 13] = [
    ResultStatus::Final,
    ResultStatus::Preliminary,
    ResultStatus::Corrected,
    ResultStatus::Cancelled,
    ResultStatus::Deleted,
    ResultStatus::WrongPatient,
    ResultStatus::NotVerified,
    ResultStatus::Pending,
    ResultStatus::Partial,
    ResultStatus::FinalUnchanged,
    ResultStatus::NotAsked,
    ResultStatus::OrderDetail,
    ResultStatus::Unknown,
];

/// The number of orders, then each order.
pub(super) fn write_report<'a>(
    w: &mut Writer<'a>,
    r: &'a ObservationReport,
    base: Option<&Timestamp>,
) {
    w.len(r.orders.len());
    for g in &r.orders {
        write_group(w, g, base);
    }
}

/// What [`write_report`] wrote.
pub(super) fn read_report(
    r: &mut Reader<'_>,
    base: Option<&Timestamp>,
) -> Result<ObservationReport, CompactError> {
    let n = r.len()?;
    let mut orders = Vec::with_capacity(n);
    for _ in 0..n {
        orders.push(read_group(r, base)?);
    }
    Ok(ObservationReport { orders })
}

/// Placer, filler, status, service, the two times (relative to the
/// message time), then the results (each time relative to the previous
/// result's, else the order's observation time, else the message time).
fn write_group<'a>(w: &mut Writer<'a>, g: &'a ObservationGroup, base: Option<&Timestamp>) {
    w.str(Pool::Text, g.placer_order.as_deref());
    w.str(Pool::Text, g.filler_order.as_deref());
    w.str(Pool::Code, g.status.as_deref());
    write_opt_coded(w, g.service.as_ref());
    w.opt_timestamp(g.observed_at.as_ref(), base);
    w.opt_timestamp(g.reported_at.as_ref(), base);
    let mut previous = g.observed_at.as_ref();
    w.len(g.observations.len());
    for o in &g.observations {
        write_observation(w, o, previous.or(base), previous);
        previous = o.observed_at.as_ref().or(previous);
    }
}

fn read_group(
    r: &mut Reader<'_>,
    base: Option<&Timestamp>,
) -> Result<ObservationGroup, CompactError> {
    let placer_order = r.str(Pool::Text)?;
    let filler_order = r.str(Pool::Text)?;
    let status = r.str(Pool::Code)?;
    let service = read_opt_coded(r)?;
    let observed_at = r.opt_timestamp(base)?;
    let reported_at = r.opt_timestamp(base)?;
    let n = r.len()?;
    let mut observations: Vec<Observation> = Vec::with_capacity(n);
    let mut previous = observed_at;
    for _ in 0..n {
        let o = read_observation(r, previous.as_ref().or(base), previous.as_ref())?;
        previous = o.observed_at.or(previous);
        observations.push(o);
    }
    Ok(ObservationGroup {
        placer_order,
        filler_order,
        service,
        observed_at,
        reported_at,
        status,
        observations,
    })
}

/// Header varint (see the constants), code, then the parts the header
/// announces: sub-id, value, range, flags, time, equipment, method.
fn write_observation<'a>(
    w: &mut Writer<'a>,
    o: &'a Observation,
    base: Option<&Timestamp>,
    previous: Option<&Timestamp>,
) {
    let status = STATUSES.iter().position(|s| *s == o.status).unwrap_or(12) as u64;
    let mut header = status | value_kind(&o.value) << KIND_SHIFT;
    let same_time = o.observed_at.is_some() && o.observed_at.as_ref() == previous;
    for (present, bit) in [
        (o.reference_range.is_some(), HAS_RANGE),
        (!o.flags.is_empty(), HAS_FLAGS),
        (o.observed_at.is_some() && !same_time, HAS_TIME),
        (!o.equipment.is_empty(), HAS_EQUIPMENT),
        (o.method.is_some(), HAS_METHOD),
        (same_time, SAME_TIME),
        (ucum_only(&o.value), UCUM_ONLY),
        (o.sub_id.is_some(), HAS_SUB_ID),
        (converted(&o.value).is_some(), HAS_CONVERTED),
        (
            converted(&o.value).is_some_and(|c| !c.exact),
            CONVERTED_ROUNDED,
        ),
    ] {
        if present {
            header |= bit;
        }
    }
    w.varint(u128::from(header));
    write_coded(w, &o.code);
    if o.sub_id.is_some() {
        w.str(Pool::Text, o.sub_id.as_deref());
    }
    write_value(w, &o.value, base, ucum_only(&o.value));
    if let Some(c) = converted(&o.value) {
        w.decimal(c.value);
        w.str(Pool::Unit, Some(&c.unit));
    }
    if let Some(range) = &o.reference_range {
        write_range(w, range);
    }
    if !o.flags.is_empty() {
        write_list(w, Pool::Code, &o.flags);
    }
    if let (Some(t), false) = (&o.observed_at, same_time) {
        w.timestamp(t, base);
    }
    if !o.equipment.is_empty() {
        write_list(w, Pool::Text, &o.equipment);
    }
    if let Some(m) = &o.method {
        write_coded(w, m);
    }
}

fn read_observation(
    r: &mut Reader<'_>,
    base: Option<&Timestamp>,
    previous: Option<&Timestamp>,
) -> Result<Observation, CompactError> {
    let header = u64::try_from(r.varint()?).map_err(|_| CompactError::Overflow)?;
    let status = usize::try_from(header & STATUS_MASK).unwrap_or(usize::MAX);
    let status = *STATUSES.get(status).ok_or(CompactError::BadTag {
        what: "result status",
        tag: header & STATUS_MASK,
    })?;
    let code = read_coded(r)?;
    let has = |bit: u64| header & bit != 0;
    let sub_id = has(HAS_SUB_ID).then(|| r.req_str(Pool::Text)).transpose()?;
    let mut value = read_value(r, (header >> KIND_SHIFT) & 7, base, has(UCUM_ONLY))?;
    if has(HAS_CONVERTED) {
        let Value::Quantity(q) = &mut value else {
            return Err(CompactError::Missing("quantity for a converted value"));
        };
        q.converted = Some(Converted {
            value: r.decimal()?,
            unit: r.req_str(Pool::Unit)?,
            exact: !has(CONVERTED_ROUNDED),
        });
    }
    let reference_range = has(HAS_RANGE).then(|| read_range(r)).transpose()?;
    let flags = has(HAS_FLAGS)
        .then(|| read_list(r, Pool::Code))
        .transpose()?
        .unwrap_or_default();
    let observed_at = if has(SAME_TIME) {
        Some(*previous.ok_or(CompactError::Missing("previous time"))?)
    } else if has(HAS_TIME) {
        Some(r.timestamp(base)?)
    } else {
        None
    };
    let equipment = has(HAS_EQUIPMENT)
        .then(|| read_list(r, Pool::Text))
        .transpose()?
        .unwrap_or_default();
    let method = has(HAS_METHOD).then(|| read_coded(r)).transpose()?;
    Ok(Observation {
        code,
        sub_id,
        value,
        reference_range,
        flags,
        status,
        observed_at,
        equipment,
        method,
    })
}

/// The value kind's number: 0 none, 1 quantity without unit, 2 quantity
/// with unit, 3 structured numeric, 4 coded, 5 time, 6 text, 7 series.
fn value_kind(v: &Value) -> u64 {
    match v {
        Value::None => 0,
        Value::Quantity(Quantity { unit: None, .. }) => 1,
        Value::Quantity(_) => 2,
        Value::Structured(_) => 3,
        Value::Coded(_) => 4,
        Value::Time(_) => 5,
        Value::Text(_) => 6,
        Value::Series(_) => 7,
    }
}

/// The converted value of a quantity, if any.
fn converted(v: &Value) -> Option<&Converted> {
    match v {
        Value::Quantity(q) => q.converted.as_ref(),
        _ => None,
    }
}

/// True for a quantity whose unit is known by its UCUM code only.
fn ucum_only(v: &Value) -> bool {
    matches!(
        v,
        Value::Quantity(Quantity {
            unit: Some(Unit {
                ucum: Some(_),
                original: None
            }),
            ..
        })
    )
}

fn write_value<'a>(w: &mut Writer<'a>, v: &'a Value, base: Option<&Timestamp>, ucum_only: bool) {
    match v {
        Value::None => {}
        Value::Quantity(q) => {
            w.decimal(q.value);
            match &q.unit {
                Some(u) if ucum_only => w.str(Pool::Unit, u.ucum.as_deref()),
                Some(u) => write_unit(w, u),
                None => {}
            }
        }
        Value::Structured(sn) => write_structured(w, sn),
        Value::Coded(c) => write_coded(w, c),
        Value::Time(t) => w.timestamp(t, base),
        Value::Text(t) => w.str(Pool::Text, Some(t)),
        Value::Series(items) => {
            w.len(items.len());
            for d in items {
                w.decimal(*d);
            }
        }
    }
}

fn read_value(
    r: &mut Reader<'_>,
    kind: u64,
    base: Option<&Timestamp>,
    ucum_only: bool,
) -> Result<Value, CompactError> {
    Ok(match kind {
        0 => Value::None,
        1 | 2 => Value::Quantity(Quantity {
            value: r.decimal()?,
            unit: match (kind, ucum_only) {
                (1, _) => None,
                (_, true) => Some(Unit {
                    ucum: Some(r.req_str(Pool::Unit)?),
                    original: None,
                }),
                _ => Some(read_unit(r)?),
            },
            converted: None,
        }),
        3 => Value::Structured(read_structured(r)?),
        4 => Value::Coded(read_coded(r)?),
        5 => Value::Time(r.timestamp(base)?),
        6 => Value::Text(r.req_str(Pool::Text)?),
        _ => {
            let n = r.len()?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(r.decimal()?);
            }
            Value::Series(items)
        }
    })
}

/// UCUM code, then the unit as sent.
fn write_unit<'a>(w: &mut Writer<'a>, u: &'a Unit) {
    w.str(Pool::Unit, u.ucum.as_deref());
    w.str(Pool::Unit, u.original.as_deref());
}

fn read_unit(r: &mut Reader<'_>) -> Result<Unit, CompactError> {
    Ok(Unit {
        ucum: r.str(Pool::Unit)?,
        original: r.str(Pool::Unit)?,
    })
}

/// Presence byte (bit 0 low, 1 high, 2 unit), comparator, separator, then
/// the parts present.
fn write_structured<'a>(w: &mut Writer<'a>, sn: &'a StructuredNumeric) {
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

fn read_structured(r: &mut Reader<'_>) -> Result<StructuredNumeric, CompactError> {
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
fn write_range<'a>(w: &mut Writer<'a>, range: &'a ReferenceRange) {
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

fn read_range(r: &mut Reader<'_>) -> Result<ReferenceRange, CompactError> {
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
fn write_list<'a>(w: &mut Writer<'a>, pool: Pool, items: &'a [CompactString]) {
    w.len(items.len());
    for s in items {
        w.str(pool, Some(s));
    }
}

fn read_list(r: &mut Reader<'_>, pool: Pool) -> Result<Vec<CompactString>, CompactError> {
    let n = r.len()?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        items.push(r.req_str(pool)?);
    }
    Ok(items)
}
