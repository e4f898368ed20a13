//! The compact form (schema 3) of an observation report: orders (OBR) and
//! their results (OBX). The hot path of the wire: a result is a header
//! varint announcing its parts, then those parts; what few results have
//! (performer, producer, notes, further values, ...) hides behind one bit.

use super::coded::{read_coded, write_coded};
use super::parts::{Compact, compact_struct, kind};
use super::reader::Reader;
use super::values::{
    read_list, read_opt_unit_and, read_range, read_structured, read_unit, write_list,
    write_opt_unit_and, write_range, write_structured, write_unit,
};
use super::writer::Writer;
use super::{CompactError, Pool};
use crate::record::limits;
use crate::record::{
    Converted, Decimal, Observation, ObservationGroup, ObservationReport, OrderDetail, Quantity,
    ResultStatus, Series, Timestamp, Unit, Value,
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
/// Result header: a method follows.
const HAS_METHOD: u64 = 1 << 14;
/// Result header: an extras presence varint follows (see `EXTRA_*`).
const HAS_EXTRAS: u64 = 1 << 15;
/// Result header: the quantity's value converted to the unit the mapping
/// table expects follows the value (decimal, then the unit).
const HAS_CONVERTED: u64 = 1 << 16;
/// Result header: that conversion was rounded (not exact).
const CONVERTED_ROUNDED: u64 = 1 << 17;
/// Every result header bit.
const RESULT_BITS: u64 = 18;

/// Extras: the further values.
const EXTRA_MORE_VALUES: u64 = 1 << 0;
/// Extras: OBX-6 of a value without a unit of its own.
const EXTRA_UNIT: u64 = 1 << 1;
/// Extras: OBX-15.
const EXTRA_PRODUCER: u64 = 1 << 2;
/// Extras: OBX-16.
const EXTRA_OBSERVERS: u64 = 1 << 3;
/// Extras: OBX-19.
const EXTRA_ANALYZED_AT: u64 = 1 << 4;
/// Extras: OBX-20.
const EXTRA_SITES: u64 = 1 << 5;
/// Extras: OBX-21.
const EXTRA_INSTANCE_ID: u64 = 1 << 6;
/// Extras: OBX-23/24.
const EXTRA_ORGANIZATION: u64 = 1 << 7;
/// Extras: OBX-25.
const EXTRA_DIRECTOR: u64 = 1 << 8;
/// Extras: the specimen index.
const EXTRA_SPECIMEN: u64 = 1 << 9;
/// Extras: notes.
const EXTRA_NOTES: u64 = 1 << 10;
/// Extras: the producer is the previous result's.
const SAME_PRODUCER: u64 = 1 << 11;
/// Extras: the observers are the previous result's.
const SAME_OBSERVERS: u64 = 1 << 12;
/// Extras: the performing organization is the previous result's.
const SAME_ORGANIZATION: u64 = 1 << 13;
/// Extras: the director is the previous result's.
const SAME_DIRECTOR: u64 = 1 << 14;
/// Every extras bit.
const EXTRA_BITS: u32 = 15;

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

compact_struct!(OrderDetail {
    orderers: items,
    placer_assigner: text,
    filler_assigner: text,
    specimens: items,
    notes: items,
    timing: items,
    collectors: items,
    category: code,
    interpreters: items,
    copies_to: items,
    ordering_facility: item,
    callback_phones: items,
    entered_by: item,
    placer_assigner_id: text,
    filler_assigner_id: text,
    other_placer_order: item,
    other_filler_order: item,
    placer_group: item,
    requested_at: time,
    observed_until: time,
    specimen_action: code,
    clinical_info: text,
    specimen_received_at: time,
    orderer_address: item,
    parent_result: item,
    parent_order: item,
    reasons: items,
    quality_control: flag,
});

/// The number of orders, then each order.
pub(super) fn write_report<'a>(w: &mut Writer<'a>, r: &'a ObservationReport) {
    w.count(r.orders.len());
    for g in &r.orders {
        write_group(w, g);
    }
}

/// What [`write_report`] wrote.
pub(super) fn read_report(r: &mut Reader<'_>) -> Result<ObservationReport, CompactError> {
    let n = r.count(limits::MAX_ORDERS, "orders")?;
    let mut orders = Vec::with_capacity(limits::capacity::<ObservationGroup>(n));
    for _ in 0..n {
        orders.push(read_group(r)?);
    }
    Ok(ObservationReport { orders })
}

/// Group bits: placer, filler, status, service, observation time, report
/// time, order control, order status, order time, priority, detail.
const GROUP_BITS: u32 = 11;

/// A presence varint (see [`GROUP_BITS`]), the parts present (times
/// relative to the message time), then the results.
fn write_group<'a>(w: &mut Writer<'a>, g: &'a ObservationGroup) {
    let present = [
        g.placer_order.is_some(),
        g.filler_order.is_some(),
        g.status.is_some(),
        g.service.is_some(),
        g.observed_at.is_some(),
        g.reported_at.is_some(),
        g.order_control.is_some(),
        g.order_status.is_some(),
        g.ordered_at.is_some(),
        g.priority.is_some(),
        !g.detail.is_empty(),
    ];
    let bits = present
        .iter()
        .enumerate()
        .fold(0u64, |bits, (i, &p)| bits | u64::from(p) << i);
    w.varint(u128::from(bits));
    kind::text::write(&g.placer_order, w);
    kind::text::write(&g.filler_order, w);
    kind::code::write(&g.status, w);
    if let Some(s) = &g.service {
        write_coded(w, s);
    }
    kind::time::write(&g.observed_at, w);
    kind::time::write(&g.reported_at, w);
    kind::code::write(&g.order_control, w);
    kind::code::write(&g.order_status, w);
    kind::time::write(&g.ordered_at, w);
    kind::code::write(&g.priority, w);
    if !g.detail.is_empty() {
        g.detail.write(w);
    }
    write_results(w, &g.observations, g.observed_at.as_ref());
}

/// What [`write_group`] wrote.
fn read_group(r: &mut Reader<'_>) -> Result<ObservationGroup, CompactError> {
    let bits = r.presence(GROUP_BITS, "result group")?;
    let has = |i: u32| bits & (1 << i) != 0;
    let text = |r: &mut Reader<'_>, i| has(i).then(|| r.req_str(Pool::Text)).transpose();
    let code = |r: &mut Reader<'_>, i| has(i).then(|| r.req_str(Pool::Code)).transpose();
    let time = |r: &mut Reader<'_>, i| has(i).then(|| kind::time::read(r)).transpose();
    let placer_order = text(r, 0)?;
    let filler_order = text(r, 1)?;
    let status = code(r, 2)?;
    let service = has(3).then(|| read_coded(r)).transpose()?;
    let observed_at = time(r, 4)?.flatten();
    let reported_at = time(r, 5)?.flatten();
    let order_control = code(r, 6)?;
    let order_status = code(r, 7)?;
    let ordered_at = time(r, 8)?.flatten();
    let priority = code(r, 9)?;
    let detail = if has(10) {
        OrderDetail::read(r)?
    } else {
        OrderDetail::default()
    };
    let observations = read_results(r, observed_at.as_ref())?;
    Ok(ObservationGroup {
        placer_order,
        filler_order,
        service: service.map(Box::new),
        observed_at,
        reported_at,
        status,
        observations,
        order_control,
        order_status,
        ordered_at,
        priority,
        detail: Box::new(detail),
    })
}

/// The number of results, then each: its times relative to the previous
/// result's, else `start` (the order's observation time), else the
/// message time.
pub(super) fn write_results<'a>(
    w: &mut Writer<'a>,
    results: &'a [Observation],
    start: Option<&Timestamp>,
) {
    let message_time = w.base;
    let mut previous = start.copied();
    let mut before: Option<&Observation> = None;
    w.count(results.len());
    for o in results {
        let base = previous.or(message_time);
        write_observation(w, o, base.as_ref(), previous.as_ref(), before);
        previous = o.observed_at.or(previous);
        before = Some(o);
    }
}

/// What [`write_results`] wrote.
pub(super) fn read_results(
    r: &mut Reader<'_>,
    start: Option<&Timestamp>,
) -> Result<Vec<Observation>, CompactError> {
    let message_time = r.base;
    let n = r.count(limits::MAX_OBSERVATIONS, "results")?;
    r.add_results(n)?;
    let mut results: Vec<Observation> = Vec::with_capacity(limits::capacity::<Observation>(n));
    let mut previous = start.copied();
    for _ in 0..n {
        let base = previous.or(message_time);
        let o = read_observation(r, base.as_ref(), previous.as_ref(), results.last())?;
        previous = o.observed_at.or(previous);
        results.push(o);
    }
    Ok(results)
}

/// Header varint (see the constants), code, then the parts the header
/// announces: sub-id, value, range, flags, time, equipment, method, extras.
fn write_observation<'a>(
    w: &mut Writer<'a>,
    o: &'a Observation,
    base: Option<&Timestamp>,
    previous: Option<&Timestamp>,
    before: Option<&Observation>,
) {
    let status = STATUSES.iter().position(|s| *s == o.status).unwrap_or(12) as u64;
    let mut header = status | value_kind(&o.value) << KIND_SHIFT;
    let same_time = o.observed_at.is_some() && o.observed_at.as_ref() == previous;
    let extras = extras(o, before);
    for (present, bit) in [
        (o.reference_range.is_some(), HAS_RANGE),
        (!o.flags.is_empty(), HAS_FLAGS),
        (o.observed_at.is_some() && !same_time, HAS_TIME),
        (!o.equipment.is_empty(), HAS_EQUIPMENT),
        (o.method.is_some(), HAS_METHOD),
        (same_time, SAME_TIME),
        (ucum_only(&o.value), UCUM_ONLY),
        (o.sub_id.is_some(), HAS_SUB_ID),
        (extras != 0, HAS_EXTRAS),
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
    write_converted(w, converted(&o.value));
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
    if extras != 0 {
        write_extras(w, o, extras, base);
    }
}

/// The extras bits of `o`, after the result `before` it.
fn extras(o: &Observation, before: Option<&Observation>) -> u64 {
    let mut bits = 0;
    let same = |mine: bool, theirs: Option<bool>| mine && theirs == Some(true);
    let (same_producer, same_observers, same_organization, same_director) = (
        same(
            o.producer.is_some(),
            before.map(|b| b.producer == o.producer),
        ),
        same(
            !o.observers.is_empty(),
            before.map(|b| b.observers == o.observers),
        ),
        same(
            o.performing_organization.is_some(),
            before.map(|b| b.performing_organization == o.performing_organization),
        ),
        same(
            o.performing_director.is_some(),
            before.map(|b| b.performing_director == o.performing_director),
        ),
    );
    for (present, bit) in [
        (!o.more_values.is_empty(), EXTRA_MORE_VALUES),
        (o.unit.is_some(), EXTRA_UNIT),
        (o.producer.is_some() && !same_producer, EXTRA_PRODUCER),
        (!o.observers.is_empty() && !same_observers, EXTRA_OBSERVERS),
        (o.analyzed_at.is_some(), EXTRA_ANALYZED_AT),
        (!o.sites.is_empty(), EXTRA_SITES),
        (o.instance_id.is_some(), EXTRA_INSTANCE_ID),
        (
            o.performing_organization.is_some() && !same_organization,
            EXTRA_ORGANIZATION,
        ),
        (
            o.performing_director.is_some() && !same_director,
            EXTRA_DIRECTOR,
        ),
        (o.specimen.is_some(), EXTRA_SPECIMEN),
        (!o.notes.is_empty(), EXTRA_NOTES),
        (same_producer, SAME_PRODUCER),
        (same_observers, SAME_OBSERVERS),
        (same_organization, SAME_ORGANIZATION),
        (same_director, SAME_DIRECTOR),
    ] {
        if present {
            bits |= bit;
        }
    }
    bits
}

/// The extras varint, then the extras it announces.
fn write_extras<'a>(w: &mut Writer<'a>, o: &'a Observation, bits: u64, base: Option<&Timestamp>) {
    w.varint(u128::from(bits));
    let has = |bit: u64| bits & bit != 0;
    if has(EXTRA_MORE_VALUES) {
        w.len(o.more_values.len());
        for v in &o.more_values {
            let ucum = ucum_only(v);
            let c = converted(v);
            w.byte(
                value_kind(v) as u8
                    | u8::from(ucum) << 3
                    | u8::from(c.is_some()) << 4
                    | u8::from(c.is_some_and(|c| !c.exact)) << 5,
            );
            write_value(w, v, base, ucum);
            write_converted(w, c);
        }
    }
    if let (true, Some(u)) = (has(EXTRA_UNIT), &o.unit) {
        write_unit(w, u);
    }
    if let (true, Some(p)) = (has(EXTRA_PRODUCER), &o.producer) {
        costed(w, 0, |w| write_coded(w, p));
    }
    if has(EXTRA_OBSERVERS) {
        costed(w, 1, |w| kind::items::write(&o.observers, w));
    }
    if let (true, Some(t)) = (has(EXTRA_ANALYZED_AT), &o.analyzed_at) {
        w.timestamp(t, base);
    }
    if has(EXTRA_SITES) {
        kind::items::write(&o.sites, w);
    }
    if has(EXTRA_INSTANCE_ID) {
        kind::item::write(&o.instance_id, w);
    }
    if has(EXTRA_ORGANIZATION) {
        costed(w, 2, |w| kind::item::write(&o.performing_organization, w));
    }
    if has(EXTRA_DIRECTOR) {
        costed(w, 3, |w| kind::item::write(&o.performing_director, w));
    }
    if let (true, Some(i)) = (has(EXTRA_SPECIMEN), o.specimen) {
        w.varint(u128::from(i));
    }
    if has(EXTRA_NOTES) {
        kind::items::write(&o.notes, w);
    }
    // The parts the reader copies from the result before count as often
    // as they are copied.
    for (i, bit) in SAME_BITS.iter().enumerate() {
        if has(*bit) {
            w.add_cost(w.same_costs[i]);
        }
    }
}

/// The bits of the parts copied from the result before, in the order of
/// `same_costs` (producer, observers, organization, director).
const SAME_BITS: [u64; 4] = [
    SAME_PRODUCER,
    SAME_OBSERVERS,
    SAME_ORGANIZATION,
    SAME_DIRECTOR,
];

/// Writes a part a later result may copy, noting what it cost as part `i`
/// of `same_costs`.
fn costed<'a>(w: &mut Writer<'a>, i: usize, write: impl FnOnce(&mut Writer<'a>)) {
    let before = w.cost();
    write(w);
    let after = w.cost();
    w.same_costs[i] = (after.0 - before.0, after.1 - before.1);
}

fn read_observation(
    r: &mut Reader<'_>,
    base: Option<&Timestamp>,
    previous: Option<&Timestamp>,
    before: Option<&Observation>,
) -> Result<Observation, CompactError> {
    let header = r.presence(RESULT_BITS as u32, "result header")?;
    let status = usize::try_from(header & STATUS_MASK).unwrap_or(usize::MAX);
    let status = *STATUSES.get(status).ok_or(CompactError::BadTag {
        what: "result status",
        tag: header & STATUS_MASK,
    })?;
    let code = read_coded(r)?;
    let has = |bit: u64| header & bit != 0;
    let sub_id = has(HAS_SUB_ID).then(|| r.req_str(Pool::Text)).transpose()?;
    let mut value = read_value(r, (header >> KIND_SHIFT) & 7, base, has(UCUM_ONLY))?;
    read_converted(r, &mut value, has(HAS_CONVERTED), has(CONVERTED_ROUNDED))?;
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
    let mut o = Observation {
        code,
        sub_id,
        value,
        reference_range,
        flags,
        status,
        observed_at,
        equipment,
        method: method.map(Box::new),
        ..Observation::default()
    };
    if has(HAS_EXTRAS) {
        read_extras(r, &mut o, base, before)?;
    }
    Ok(o)
}

/// What [`write_extras`] wrote, into `o`.
fn read_extras(
    r: &mut Reader<'_>,
    o: &mut Observation,
    base: Option<&Timestamp>,
    before: Option<&Observation>,
) -> Result<(), CompactError> {
    let bits = r.presence(EXTRA_BITS, "result extras")?;
    let has = |bit: u64| bits & bit != 0;
    let previous = || before.ok_or(CompactError::Missing("previous result"));
    if has(EXTRA_MORE_VALUES) {
        let n = r.len()?;
        o.more_values.reserve(limits::capacity::<Value>(n));
        for _ in 0..n {
            let tag = r.byte()?;
            if tag >> 6 != 0 {
                return Err(CompactError::BadTag {
                    what: "value",
                    tag: u64::from(tag),
                });
            }
            let mut v = read_value(r, u64::from(tag & 7), base, tag & 8 != 0)?;
            read_converted(r, &mut v, tag & 0x10 != 0, tag & 0x20 != 0)?;
            o.more_values.push(v);
        }
    }
    if has(EXTRA_UNIT) {
        o.unit = Some(read_unit(r)?);
    }
    if has(EXTRA_PRODUCER) {
        o.producer = Some(Box::new(read_costed(r, 0, read_coded)?));
    }
    if has(EXTRA_OBSERVERS) {
        o.observers = read_costed(r, 1, kind::items::read)?;
    }
    if has(EXTRA_ANALYZED_AT) {
        o.analyzed_at = Some(r.timestamp(base)?);
    }
    if has(EXTRA_SITES) {
        o.sites = kind::items::read(r)?;
    }
    if has(EXTRA_INSTANCE_ID) {
        o.instance_id = kind::item::read(r)?;
    }
    if has(EXTRA_ORGANIZATION) {
        o.performing_organization = read_costed(r, 2, kind::item::read)?;
    }
    if has(EXTRA_DIRECTOR) {
        o.performing_director = read_costed(r, 3, kind::item::read)?;
    }
    if has(EXTRA_SPECIMEN) {
        o.specimen = Some(u16::try_from(r.varint()?).map_err(|_| CompactError::Overflow)?);
    }
    if has(EXTRA_NOTES) {
        o.notes = kind::items::read(r)?;
    }
    if has(SAME_PRODUCER) {
        o.producer = previous()?.producer.clone();
    }
    if has(SAME_OBSERVERS) {
        o.observers = previous()?.observers.clone();
    }
    if has(SAME_ORGANIZATION) {
        o.performing_organization = previous()?.performing_organization.clone();
    }
    if has(SAME_DIRECTOR) {
        o.performing_director = previous()?.performing_director.clone();
    }
    for (i, bit) in SAME_BITS.iter().enumerate() {
        if has(*bit) {
            r.add_cost(r.same_costs[i])?;
        }
    }
    let copied = [
        (SAME_PRODUCER, o.producer.is_none()),
        (SAME_OBSERVERS, o.observers.is_empty()),
        (SAME_ORGANIZATION, o.performing_organization.is_none()),
        (SAME_DIRECTOR, o.performing_director.is_none()),
    ];
    // "The previous result's" stands for a value: copying an absent one is
    // no form an encoder writes.
    if copied.iter().any(|&(bit, empty)| has(bit) && empty) {
        return Err(CompactError::Missing("previous result's part"));
    }
    Ok(())
}

/// Reads a part a later result may copy, noting what it cost as part `i`
/// of `same_costs` (see [`costed`]).
fn read_costed<T>(
    r: &mut Reader<'_>,
    i: usize,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, CompactError>,
) -> Result<T, CompactError> {
    let before = r.cost();
    let part = read(r)?;
    let after = r.cost();
    r.same_costs[i] = (after.0 - before.0, after.1 - before.1);
    Ok(part)
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

/// A quantity's converted value, when it has one: the decimal, then the
/// unit (its exactness is a bit where the value is announced).
fn write_converted<'a>(w: &mut Writer<'a>, c: Option<&'a Converted>) {
    if let Some(c) = c {
        w.decimal(c.value);
        w.str(Pool::Unit, Some(&c.unit));
    }
}

/// What [`write_converted`] wrote, into `value` (which must then be a
/// quantity) when `present`.
fn read_converted(
    r: &mut Reader<'_>,
    value: &mut Value,
    present: bool,
    rounded: bool,
) -> Result<(), CompactError> {
    if !present {
        return if rounded {
            Err(CompactError::Missing(
                "converted value of a rounded conversion",
            ))
        } else {
            Ok(())
        };
    }
    let Value::Quantity(q) = value else {
        return Err(CompactError::Missing("quantity for a converted value"));
    };
    q.converted = Some(Converted {
        value: r.decimal()?,
        unit: r.req_str(Pool::Unit)?,
        exact: !rounded,
    });
    Ok(())
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
        Value::Series(s) => {
            w.varint(u128::from(s.channels));
            write_opt_unit_and(w, s.unit.as_ref(), |w| {
                w.count(s.values.len());
                for d in &s.values {
                    w.decimal(*d);
                }
            });
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
            let channels = u16::try_from(r.varint()?).map_err(|_| CompactError::Overflow)?;
            let (values, unit) = read_opt_unit_and(r, |r| {
                let n = r.count(limits::MAX_VALUES, "series numbers")?;
                r.add_values(n)?;
                let mut values = Vec::with_capacity(limits::capacity::<Decimal>(n));
                for _ in 0..n {
                    values.push(r.decimal()?);
                }
                Ok(values)
            })?;
            Value::Series(Series {
                values,
                channels,
                unit,
            })
        }
    })
}
