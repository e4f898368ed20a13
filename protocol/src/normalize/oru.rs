//! ORU (R01 and the other result events) and OUL (R22, R23, R24) to
//! [`ObservationReport`]: lab results, IHE PCD-01 device observations and
//! IHE LAW specimen-oriented results.
//!
//! The segments after the patient are walked once, in order:
//!
//! - **OBR** opens a group (see `order` for its fields). OBX segments
//!   before any OBR go into an implicit group with no order fields.
//! - **ORC** belongs to the next OBR in ORU (ORC, OBR), to the OBR before
//!   it in OUL (OBR, ORC). An ORC no OBR takes is not carried (named).
//! - **TQ1** adds timing to its order (the current one; in ORU one whose
//!   ORC waits for its OBR), and its priority wins.
//! - **OBX** joins the group (see `observation`).
//! - **SPM**: in ORU it follows its order's results and belongs to that
//!   group; the OBX after it are observations of that specimen (their
//!   `specimen` names it). In OUL it comes first: it belongs to every OBR
//!   group that follows it until the next SPM, and the OBX right after it
//!   (before any OBR) are its observations, in a group of their own.
//! - **NTE** attaches to what it follows: the group (after OBR, ORC, TQ1),
//!   the result (after OBX) or the specimen (after SPM).
//!
//! A group whose specimens include quality-control material is marked
//! `quality_control` (see `specimen`). Every segment read is marked, so
//! the rest is named in the record's "not carried" warnings.

use crate::hl7::{Message, Segment};
use crate::normalize::context::Work;
use crate::normalize::fields::Fields;
use crate::normalize::notes::note;
use crate::normalize::observation::observation;
use crate::normalize::order::{self, Common};
use crate::normalize::specimen::{self, specimen};
use crate::record::{Note, ObservationGroup, ObservationReport};

/// What an NTE would attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// Nothing: the NTE is not carried.
    None,
    /// The current group (after OBR, ORC, TQ1).
    Group,
    /// The group's last result.
    Result,
    /// The group's specimen at this index.
    Specimen(usize),
}

/// The walk's state.
struct Walk<'m> {
    orders: Vec<ObservationGroup>,
    anchor: Anchor,
    /// ORU: the ORC waiting for its OBR, and its segment.
    pending: Option<(Common, Segment<'m>)>,
    /// TQ1 read after the pending ORC, before its OBR (marked as read
    /// only when an OBR takes them).
    pending_timing: Vec<(crate::record::Timing, Segment<'m>)>,
    /// The specimen the OBX being read are observations of (an index into
    /// the current group's specimens).
    specimen_link: Option<usize>,
    /// OUL: the group that holds the current SPM (specimen first), if any.
    specimen_group: Option<usize>,
    /// OUL: specimens come before their orders.
    specimen_first: bool,
    /// Specimen groups whose specimen an order group took a copy of.
    copied: Vec<usize>,
    /// Whether the current group has had its ORC.
    group_has_orc: bool,
}

/// Reads every group, its results, specimens, timing and comments.
pub(crate) fn observations(work: &mut Work<'_>, msg: &Message<'_>) -> ObservationReport {
    let mut walk = Walk {
        orders: Vec::new(),
        anchor: Anchor::None,
        pending: None,
        pending_timing: Vec::new(),
        specimen_link: None,
        specimen_group: None,
        specimen_first: msg.message_kind().code.as_ref() == "OUL",
        group_has_orc: false,
        copied: Vec::new(),
    };
    for segment in msg.segments() {
        match segment.id_bytes() {
            b"ORC" => walk.orc(work, msg, segment),
            b"OBR" => walk.obr(work, msg, segment),
            b"TQ1" => walk.tq1(work, msg, segment),
            b"OBX" => walk.obx(work, msg, segment),
            b"SPM" => walk.spm(work, msg, segment),
            b"NTE" => walk.nte(work, msg, segment),
            // Patient segments are read by `patient`; a second PID ends
            // what this record carries (validation refuses it).
            b"PID" if !walk.orders.is_empty() || walk.pending.is_some() => break,
            b"PID" | b"PD1" | b"NK1" | b"PV1" | b"PV2" => {}
            // Segments inside a group (participations, timing, container
            // details) keep what an NTE after them attaches to.
            b"PRT" | b"TQ2" | b"CTD" | b"TCD" | b"SID" => {}
            _ => walk.anchor = Anchor::None,
        }
    }
    walk.finish()
}

impl<'m> Walk<'m> {
    fn orc(&mut self, work: &mut Work<'_>, msg: &'m Message<'_>, segment: Segment<'m>) {
        let common = order::common(work, &Fields::new(msg, segment));
        let own = self.specimen_first && self.anchor == Anchor::Group && !self.group_has_orc;
        match self.orders.last_mut() {
            Some(group) if own => {
                work.consume(&segment);
                apply(group, &common);
                self.group_has_orc = true;
            }
            _ => {
                self.pending = Some((common, segment));
                self.pending_timing.clear();
                self.anchor = Anchor::None;
            }
        }
    }

    fn obr(&mut self, work: &mut Work<'_>, msg: &'m Message<'_>, segment: Segment<'m>) {
        work.consume(&segment);
        let request = order::request(work, &Fields::new(msg, segment));
        let mut group = ObservationGroup {
            placer_order: request.placer.id.clone(),
            filler_order: request.filler.id.clone(),
            service: request.service.map(Box::new),
            observed_at: request.observed_at,
            reported_at: request.reported_at,
            status: request.status,
            priority: request.priority,
            detail: Box::new(request.detail),
            ..ObservationGroup::default()
        };
        order::assigners(&mut group.detail, &request.placer, &request.filler);
        group.detail.timing.extend(request.timing);
        if let Some(i) = self.specimen_group
            && let Some(held) = self.orders.get(i)
        {
            group
                .detail
                .specimens
                .extend(held.detail.specimens.first().cloned());
            self.copied.push(i);
        }
        group.detail.specimens.extend(request.specimen);
        self.group_has_orc = false;
        if let Some((common, orc)) = self.pending.take() {
            work.consume(&orc);
            apply(&mut group, &common);
            self.group_has_orc = true;
            for (timing, tq1) in self.pending_timing.drain(..) {
                work.consume(&tq1);
                if let Some(priority) = order::priority_of(&timing) {
                    group.priority = Some(priority);
                }
                group.detail.timing.push(timing);
            }
        }
        group.observations = Vec::with_capacity(obx_count(msg, segment.index() + 1));
        self.orders.push(group);
        self.anchor = Anchor::Group;
        self.specimen_link = None;
    }

    fn tq1(&mut self, work: &mut Work<'_>, msg: &'m Message<'_>, segment: Segment<'m>) {
        if self.pending.is_some() {
            let timing = order::timing(work, &Fields::new(msg, segment));
            self.pending_timing.push((timing, segment));
            return;
        }
        // Timing belongs to the current order wherever it stands in it.
        let Some(group) = self.orders.last_mut() else {
            return;
        };
        work.consume(&segment);
        let timing = order::timing(work, &Fields::new(msg, segment));
        if let Some(priority) = order::priority_of(&timing) {
            group.priority = Some(priority);
        }
        group.detail.timing.push(timing);
    }

    fn obx(&mut self, work: &mut Work<'_>, msg: &'m Message<'_>, segment: Segment<'m>) {
        work.consume(&segment);
        if self.orders.is_empty() {
            self.orders.push(ObservationGroup {
                observations: Vec::with_capacity(obx_count(msg, segment.index())),
                ..ObservationGroup::default()
            });
        }
        let Some(group) = self.orders.last_mut() else {
            return;
        };
        let obx = Fields::new(msg, segment);
        let mut result = observation(work, &obx, group.observed_at.as_ref());
        result.specimen = self.specimen_link.and_then(|i| u16::try_from(i).ok());
        group.observations.push(result);
        self.anchor = Anchor::Result;
    }

    fn spm(&mut self, work: &mut Work<'_>, msg: &'m Message<'_>, segment: Segment<'m>) {
        work.consume(&segment);
        let read = specimen(work, &Fields::new(msg, segment));
        let own_group = self.specimen_first || self.orders.is_empty();
        if own_group {
            // Specimen first: the specimen opens a group of its own for
            // its observations; the orders after it get a copy.
            self.orders.push(ObservationGroup::default());
            self.specimen_group = Some(self.orders.len() - 1);
        }
        let Some(group) = self.orders.last_mut() else {
            return;
        };
        group.detail.specimens.push(read);
        let index = group.detail.specimens.len() - 1;
        self.anchor = Anchor::Specimen(index);
        self.specimen_link = Some(index);
    }

    fn nte(&mut self, work: &mut Work<'_>, msg: &'m Message<'_>, segment: Segment<'m>) {
        let Some(group) = self.orders.last_mut() else {
            return;
        };
        let list: &mut Vec<Note> = match self.anchor {
            Anchor::None => return,
            Anchor::Group => &mut group.detail.notes,
            Anchor::Result => match group.observations.last_mut() {
                Some(result) => &mut result.notes,
                None => return,
            },
            Anchor::Specimen(i) => match group.detail.specimens.get_mut(i) {
                Some(s) => &mut s.notes,
                None => return,
            },
        };
        work.consume(&segment);
        if let Some(n) = note(work, &Fields::new(msg, segment)) {
            list.push(n);
        }
    }

    /// The report: specimen groups that hold no results and whose specimen
    /// went to the orders after them are dropped, and every group with
    /// control material is marked.
    fn finish(self) -> ObservationReport {
        let Walk {
            mut orders, copied, ..
        } = self;
        let mut index = 0;
        orders.retain(|g| {
            let passed_on = copied.contains(&index) && g.observations.is_empty();
            index += 1;
            !passed_on
        });
        for group in &mut orders {
            group.detail.quality_control = group
                .detail
                .specimens
                .iter()
                .any(specimen::is_quality_control);
        }
        ObservationReport { orders }
    }
}

/// An ORC's part of a result group.
fn apply(group: &mut ObservationGroup, common: &Common) {
    group.order_control = common.control.clone();
    group.order_status = common.status.clone();
    group.ordered_at = common.ordered_at;
    if group.placer_order.is_none() {
        group.placer_order = common.placer.id.clone();
    }
    if group.filler_order.is_none() {
        group.filler_order = common.filler.id.clone();
    }
    order::other_numbers(
        &mut group.detail,
        (group.placer_order.as_ref(), group.filler_order.as_ref()),
        &common.placer,
        &common.filler,
    );
    if group.priority.is_none() {
        group.priority = common
            .timing
            .as_ref()
            .and_then(|t| t.priorities.first())
            .map(|p| p.original.code.clone());
    }
    order::merge(&mut group.detail, common);
}

/// How many OBX follow segment `from` before the next OBR (observations
/// are large, so their vector is sized once).
fn obx_count(msg: &Message<'_>, from: usize) -> usize {
    let sep = msg.delimiters().field;
    let is = |raw: &[u8], id: &[u8]| raw.starts_with(id) && raw.get(3) == Some(&sep);
    (from..msg.segment_count())
        .filter_map(|i| msg.segment_at(i))
        .map(|s| s.raw())
        .take_while(|raw| !is(raw, b"OBR"))
        .filter(|raw| is(raw, b"OBX"))
        .count()
}

#[cfg(test)]
mod tests;
