//! The order segments every order-bearing message shares: ORC (common
//! order), OBR (observation request) and TQ1 (timing/quantity), read into
//! [`Common`], [`Request`] and [`Timing`], and merged into an
//! [`OrderDetail`].
//!
//! Merging: the OBR wins where both say the same thing (order numbers in a
//! result group; in ORM/OML the ORC's come first, see `orders`); ordering
//! providers are OBR-16's then ORC-12's, each once; call-back numbers
//! ORC-14's then OBR-17's; the parent order OBR-29, else ORC-8; the
//! priority TQ1-9, else OBR-27.6, else ORC-7.6, else OBR-5. The old
//! quantity/timing fields (OBR-27, ORC-7, TQ) become a [`Timing`] too.

use crate::hl7::Element;
use crate::normalize::context::Work;
use crate::normalize::datatypes::{
    Accept, address, coded, component, component_time, decimal, each, each_coded, entity_id,
    field_time, first, organization, practitioner, string, telecom, text, unit_in,
};
use crate::normalize::fields::{Fields, Parts};
use crate::normalize::specimen;
use crate::record::{
    Address, Coded, CompactString, EntityId, OrderDetail, Organization, ParentOrder, ParentResult,
    PersonName, Practitioner, Quantity, Specimen, Telecom, Timestamp, Timing,
};

/// What an ORC says.
#[derive(Debug, Default)]
pub(crate) struct Common {
    /// ORC-1.
    pub(crate) control: Option<CompactString>,
    /// ORC-2.
    pub(crate) placer: Number,
    /// ORC-3.
    pub(crate) filler: Number,
    /// ORC-4.
    pub(crate) placer_group: Option<EntityId>,
    /// ORC-5.
    pub(crate) status: Option<CompactString>,
    /// ORC-7 (TQ).
    pub(crate) timing: Option<Timing>,
    /// ORC-8.
    pub(crate) parent: Option<ParentOrder>,
    /// ORC-9.
    pub(crate) ordered_at: Option<Timestamp>,
    /// ORC-10.
    pub(crate) entered_by: Option<Practitioner>,
    /// ORC-12.
    pub(crate) orderers: Vec<Practitioner>,
    /// ORC-14.
    pub(crate) callback: Vec<Telecom>,
    /// ORC-21/22/23.
    pub(crate) facility: Option<Organization>,
    /// ORC-24.
    pub(crate) orderer_address: Option<Address>,
}

/// Reads an ORC.
pub(crate) fn common(work: &mut Work<'_>, orc: &Fields<'_>) -> Common {
    let mut facility = first(orc, 21, organization).unwrap_or_default();
    facility.address = first(orc, 22, address);
    facility.phones = each(orc, 23, telecom);
    Common {
        control: component(orc.field(1), 1),
        placer: number(orc, 2),
        filler: number(orc, 3),
        placer_group: first(orc, 4, entity_id),
        status: component(orc.field(5), 1),
        timing: old_timing(work, orc, 7),
        parent: parent_order(orc, 8),
        ordered_at: field_time(work, orc, 9),
        entered_by: first(orc, 10, practitioner),
        orderers: each(orc, 12, practitioner),
        callback: each(orc, 14, telecom),
        facility: (facility != Organization::default()).then_some(facility),
        orderer_address: first(orc, 24, address),
    }
}

/// What an OBR says.
#[derive(Debug, Default)]
pub(crate) struct Request {
    /// OBR-2.
    pub(crate) placer: Number,
    /// OBR-3.
    pub(crate) filler: Number,
    /// OBR-4.
    pub(crate) service: Option<Coded>,
    /// OBR-5 priority (old versions).
    pub(crate) priority: Option<CompactString>,
    /// OBR-7.
    pub(crate) observed_at: Option<Timestamp>,
    /// OBR-15 as a specimen.
    pub(crate) specimen: Option<Specimen>,
    /// OBR-22.
    pub(crate) reported_at: Option<Timestamp>,
    /// OBR-25.
    pub(crate) status: Option<CompactString>,
    /// OBR-27 (TQ).
    pub(crate) timing: Option<Timing>,
    /// Everything else, as the order detail holds it.
    pub(crate) detail: OrderDetail,
}

/// Reads an OBR.
pub(crate) fn request(work: &mut Work<'_>, obr: &Fields<'_>) -> Request {
    let timing = old_timing(work, obr, 27);
    let priority = timing
        .as_ref()
        .and_then(|t| t.priorities.first())
        .map(|p| p.original.code.clone())
        .or_else(|| component(obr.field(5), 1));
    Request {
        placer: number(obr, 2),
        filler: number(obr, 3),
        service: coded(
            work,
            obr.parts(obr.field(4)),
            Accept::OBSERVATION,
            obr.at(4),
        ),
        priority,
        observed_at: field_time(work, obr, 7),
        specimen: specimen::from_obr15(work, obr),
        reported_at: field_time(work, obr, 22),
        status: component(obr.field(25), 1),
        timing,
        detail: OrderDetail {
            requested_at: field_time(work, obr, 6),
            observed_until: field_time(work, obr, 8),
            collectors: each(obr, 10, practitioner),
            specimen_action: component(obr.field(11), 1),
            clinical_info: string(obr.field(13)),
            specimen_received_at: field_time(work, obr, 14),
            orderers: each(obr, 16, practitioner),
            callback_phones: each(obr, 17, telecom),
            category: component(obr.field(24), 1),
            parent_result: parent_result(work, obr).map(Box::new),
            copies_to: each(obr, 28, practitioner),
            parent_order: parent_order(obr, 29).map(Box::new),
            reasons: each_coded(work, obr, 31, Accept::GENERAL),
            interpreters: interpreters(obr),
            ..OrderDetail::default()
        },
    }
}

/// Merges an ORC into the detail of the order it belongs to (after the
/// OBR's, see the module doc).
pub(crate) fn merge(detail: &mut OrderDetail, common: &Common) {
    assigners(detail, &common.placer, &common.filler);
    detail.placer_group = detail
        .placer_group
        .take()
        .or_else(|| common.placer_group.clone().map(Box::new));
    for p in &common.orderers {
        if !detail.orderers.contains(p) {
            detail.orderers.push(p.clone());
        }
    }
    if detail.orderer_address.is_none() {
        detail.orderer_address = common.orderer_address.clone().map(Box::new);
    }
    if detail.entered_by.is_none() {
        detail.entered_by = common.entered_by.clone().map(Box::new);
    }
    let mut callback = common.callback.clone();
    callback.extend(
        std::mem::take(&mut detail.callback_phones)
            .into_iter()
            .filter(|t| !common.callback.contains(t)),
    );
    detail.callback_phones = callback;
    if detail.ordering_facility.is_none() {
        detail.ordering_facility = common.facility.clone().map(Box::new);
    }
    if detail.parent_order.is_none() {
        detail.parent_order = common.parent.clone().map(Box::new);
    }
    if let Some(t) = &common.timing
        && !detail.timing.contains(t)
    {
        detail.timing.push(t.clone());
    }
}

/// Reads a TQ1.
pub(crate) fn timing(work: &mut Work<'_>, tq1: &Fields<'_>) -> Timing {
    Timing {
        quantity: quantity(work, tq1, tq1.field(2), 2),
        start: field_time(work, tq1, 7),
        end: field_time(work, tq1, 8),
        priorities: each_coded(work, tq1, 9, Accept::GENERAL),
        condition: string(tq1.field(10)),
        instructions: string(tq1.field(11)),
        occurrences: text(tq1.field(14).and_then(|f| f.component(1))).and_then(|t| decimal(&t)),
    }
}

/// The priority a TQ1 gives: its first TQ1-9 code.
pub(crate) fn priority_of(t: &Timing) -> Option<CompactString> {
    t.priorities.first().map(|p| p.original.code.clone())
}

/// An EI order number as sent: its id, its assigner (namespace, else
/// universal id) and the universal id; each may be there without the
/// others.
#[derive(Debug, Default, Clone)]
pub(crate) struct Number {
    /// EI.1.
    pub(crate) id: Option<CompactString>,
    /// EI.2, else EI.3.
    pub(crate) assigner: Option<CompactString>,
    /// EI.3.
    pub(crate) assigner_id: Option<CompactString>,
}

/// Field `n` as an EI order number.
fn number(fields: &Fields<'_>, n: usize) -> Number {
    let parts = fields.parts(fields.field(n));
    let universal = string(parts.part(3));
    Number {
        id: string(parts.part(1)),
        assigner: string(parts.part(2)).or_else(|| universal.clone()),
        assigner_id: universal,
    }
}

/// Keeps in the detail the placer and filler numbers `placer` and
/// `filler` (the other segment's) when they are not the order's own
/// (`own_placer`, `own_filler`).
pub(crate) fn other_numbers(
    detail: &mut OrderDetail,
    own: (Option<&CompactString>, Option<&CompactString>),
    placer: &Number,
    filler: &Number,
) {
    let other = |own: Option<&CompactString>, theirs: &Number| match (own, &theirs.id) {
        (Some(mine), Some(id)) if mine != id => Some(EntityId {
            id: id.clone(),
            authority: theirs.assigner.clone(),
            authority_id: theirs.assigner_id.clone(),
        }),
        _ => None,
    };
    if detail.other_placer_order.is_none() {
        detail.other_placer_order = other(own.0, placer).map(Box::new);
    }
    if detail.other_filler_order.is_none() {
        detail.other_filler_order = other(own.1, filler).map(Box::new);
    }
}

/// Fills the assigners of the detail's placer and filler numbers where it
/// has none yet.
pub(crate) fn assigners(detail: &mut OrderDetail, placer: &Number, filler: &Number) {
    let fill = |slot: &mut Option<CompactString>, value: &Option<CompactString>| {
        if slot.is_none() {
            slot.clone_from(value);
        }
    };
    fill(&mut detail.placer_assigner, &placer.assigner);
    fill(&mut detail.placer_assigner_id, &placer.assigner_id);
    fill(&mut detail.filler_assigner, &filler.assigner);
    fill(&mut detail.filler_assigner_id, &filler.assigner_id);
}

/// A TQ value (OBR-27, ORC-7): quantity^interval^duration^start^end^
/// priority^condition^text; `None` when it says nothing.
fn old_timing(work: &mut Work<'_>, fields: &Fields<'_>, n: usize) -> Option<Timing> {
    let tq = fields.field(n)?;
    let at = fields.at(n);
    let priority = string(tq.component(6)).map(|code| Coded {
        original: crate::record::Coding {
            code,
            ..Default::default()
        },
        ..Coded::default()
    });
    let timing = Timing {
        quantity: quantity(work, fields, tq.component(1), n),
        start: component_time(work, tq.component(4), at.component(4)),
        end: component_time(work, tq.component(5), at.component(5)),
        priorities: priority.into_iter().collect(),
        condition: string(tq.component(7)),
        instructions: string(tq.component(8)),
        occurrences: None,
    };
    (timing != Timing::default()).then_some(timing)
}

/// A CQ in `element` (quantity&units sub-components, or components).
fn quantity(
    work: &mut Work<'_>,
    fields: &Fields<'_>,
    element: Option<Element<'_>>,
    n: usize,
) -> Option<Quantity> {
    let element = element?;
    let parts = fields.parts(Some(element));
    let value = decimal(&text(parts.part(1))?)?;
    let unit = match parts.part(2) {
        Some(units) => unit_in(work, fields.parts(Some(units)), fields.at(n)),
        None => None,
    };
    Some(Quantity {
        value,
        unit,
        converted: None,
    })
}

/// An EIP parent order (OBR-29, ORC-8): placer and filler EIs.
fn parent_order(fields: &Fields<'_>, n: usize) -> Option<ParentOrder> {
    let eip = fields.field(n)?;
    let id = |c| entity_id(fields.parts(eip.component(c)));
    let parent = ParentOrder {
        placer: id(1),
        filler: id(2),
    };
    (parent != ParentOrder::default()).then_some(parent)
}

/// OBR-26 (PRL): the parent's OBX-3 (in sub-components), OBX-4 and part of
/// its OBX-5.
fn parent_result(work: &mut Work<'_>, obr: &Fields<'_>) -> Option<ParentResult> {
    let prl = obr.field(26)?;
    let parent = ParentResult {
        code: coded(
            work,
            obr.parts(prl.component(1)),
            Accept::OBSERVATION,
            obr.at(26).repetition(1).component(1),
        ),
        sub_id: string(prl.component(2)),
        value: string(prl.component(3)),
    };
    (parent != ParentResult::default()).then_some(parent)
}

/// OBR-32 principal result interpreters. NDL puts the person (CNN) in the
/// sub-components of its first component; older senders write an XCN
/// there instead, which is read as one.
fn interpreters(obr: &Fields<'_>) -> Vec<Practitioner> {
    let Some(field) = obr.field(32) else {
        return Vec::new();
    };
    field
        .repetitions()
        .filter_map(|rep| {
            let person = rep.component(1)?;
            if person.subcomponent(2).is_some() {
                cnn(obr.parts(Some(person)))
            } else {
                practitioner(obr.parts(Some(rep)))
            }
        })
        .collect()
}

/// A CNN (id&family&given&middle&suffix&prefix&degree&source&authority
/// namespace&authority id&id type).
fn cnn(parts: Parts<'_>) -> Option<Practitioner> {
    let part = |n| string(parts.part(n));
    let name = PersonName {
        family: part(2),
        given: part(3),
        middle: part(4),
        suffix: part(5),
        prefix: part(6),
        degree: part(7),
        kind: None,
    };
    let named = name != PersonName::default();
    let universal = part(10);
    let p = Practitioner {
        id: part(1),
        name: named.then_some(name),
        authority: part(9).or_else(|| universal.clone()),
        authority_id: universal,
        kind: part(11),
    };
    (p != Practitioner::default()).then_some(p)
}
