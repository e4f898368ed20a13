//! ORM^O01 and OML^O21 to [`OrderMessage`]: one [`Order`] per ORC, filled
//! in from the segments that follow it (see `order` for what ORC, OBR and
//! TQ1 give).
//!
//! - ORC: control, status, transaction time; its order numbers, orderer
//!   and priority come first.
//! - OBR (or RXO for pharmacy orders, whose RXO-1 is the service): what is
//!   ordered, and where the ORC left them empty the order numbers, orderer,
//!   priority (OBR-27.6, then OBR-5) and specimen (OBR-15). A second OBR
//!   under the same ORC starts a new order with the ORC's fields.
//! - TQ1: timing; its priority wins over the older fields.
//! - SPM: the specimens; the first one's type wins over OBR-15.
//! - OBX: the order's observations (ask-at-order-entry answers); an OBX
//!   after an SPM is that specimen's.
//! - NTE: comments on what they follow (the order, an observation, a
//!   specimen).
//!
//! A detail segment before any ORC opens an order with an empty control.

use crate::hl7::{Message, Segment};
use crate::normalize::context::Work;
use crate::normalize::datatypes::{Accept, coded};
use crate::normalize::fields::Fields;
use crate::normalize::notes::note;
use crate::normalize::observation::observation;
use crate::normalize::order::{self, Common};
use crate::normalize::specimen::{self, specimen};
use crate::record::{Note, Order, OrderMessage};

/// What an NTE would attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    None,
    Order,
    Observation,
    Specimen(usize),
}

/// Reads every order.
pub(crate) fn orders(work: &mut Work<'_>, msg: &Message<'_>) -> OrderMessage {
    let mut orders: Vec<Order> = Vec::new();
    // The current order, whether it has its detail segment, and its ORC.
    let mut current: Option<(Order, bool)> = None;
    let mut orc: Option<Common> = None;
    let mut anchor = Anchor::None;
    let mut specimen_link: Option<usize> = None;
    // Whether the current order has had its first SPM.
    let mut spm_seen = false;
    for segment in msg.segments() {
        let id = segment.id_bytes();
        match id {
            b"ORC" => {
                work.consume(&segment);
                orders.extend(current.take().map(|(o, _)| o));
                let common = order::common(work, &Fields::new(msg, segment));
                current = Some((from_common(&common), false));
                orc = Some(common);
                anchor = Anchor::Order;
                spm_seen = false;
            }
            b"OBR" | b"RXO" => {
                work.consume(&segment);
                let (previous, has_detail) = current.take().unwrap_or_default();
                let base = if has_detail {
                    orders.push(previous);
                    orc.as_ref().map(from_common).unwrap_or_default()
                } else {
                    previous
                };
                current = Some((detail(work, msg, segment, base, orc.as_ref()), true));
                anchor = Anchor::Order;
                specimen_link = None;
                spm_seen = false;
            }
            b"TQ1" => {
                if let Some((order, _)) = current.as_mut() {
                    work.consume(&segment);
                    let timing = order::timing(work, &Fields::new(msg, segment));
                    if let Some(priority) = order::priority_of(&timing) {
                        order.priority = Some(priority);
                    }
                    order.detail.timing.push(timing);
                }
            }
            b"SPM" => {
                if let Some((order, _)) = current.as_mut() {
                    work.consume(&segment);
                    let read = specimen(work, &Fields::new(msg, segment));
                    if !spm_seen {
                        order.specimen = read.kind.clone().or(order.specimen.take());
                        spm_seen = true;
                    }
                    order.detail.specimens.push(read);
                    let index = order.detail.specimens.len() - 1;
                    anchor = Anchor::Specimen(index);
                    specimen_link = Some(index);
                }
            }
            b"OBX" => {
                if let Some((order, _)) = current.as_mut() {
                    work.consume(&segment);
                    let obx = Fields::new(msg, segment);
                    let mut read = observation(work, &obx, order.observed_at.as_ref());
                    read.specimen = specimen_link.and_then(|i| u16::try_from(i).ok());
                    order.observations.push(read);
                    anchor = Anchor::Observation;
                }
            }
            b"NTE" => {
                if let Some((order, _)) = current.as_mut() {
                    attach(work, msg, segment, order, anchor);
                }
            }
            b"PRT" | b"TQ2" | b"CTD" | b"TCD" => {}
            _ => anchor = Anchor::None,
        }
    }
    orders.extend(current.map(|(o, _)| o));
    for o in &mut orders {
        o.detail.quality_control = o.detail.specimens.iter().any(specimen::is_quality_control);
    }
    OrderMessage { orders }
}

/// An NTE, attached to what `anchor` says (and marked as read), or left.
fn attach(
    work: &mut Work<'_>,
    msg: &Message<'_>,
    segment: Segment<'_>,
    order: &mut Order,
    anchor: Anchor,
) {
    let list: &mut Vec<Note> = match anchor {
        Anchor::None => return,
        Anchor::Order => &mut order.detail.notes,
        Anchor::Observation => match order.observations.last_mut() {
            Some(o) => &mut o.notes,
            None => return,
        },
        Anchor::Specimen(i) => match order.detail.specimens.get_mut(i) {
            Some(s) => &mut s.notes,
            None => return,
        },
    };
    work.consume(&segment);
    if let Some(n) = note(work, &Fields::new(msg, segment)) {
        list.push(n);
    }
}

/// The ORC part of an order.
fn from_common(common: &Common) -> Order {
    let mut order = Order {
        control: common.control.clone().unwrap_or_default(),
        placer_order: common.placer.id.clone(),
        filler_order: common.filler.id.clone(),
        status: common.status.clone(),
        ordered_at: common.ordered_at,
        orderer: common.orderers.first().cloned(),
        priority: common
            .timing
            .as_ref()
            .and_then(|t| t.priorities.first())
            .map(|p| p.original.code.clone()),
        ..Order::default()
    };
    order::merge(&mut order.detail, common);
    order
}

/// Fills `order` from an OBR or RXO; `common` is the ORC it follows.
fn detail(
    work: &mut Work<'_>,
    msg: &Message<'_>,
    segment: Segment<'_>,
    mut order: Order,
    common: Option<&Common>,
) -> Order {
    let fields = Fields::new(msg, segment);
    if segment.id_bytes() == b"RXO" {
        order.service = coded(
            work,
            fields.parts(fields.field(1)),
            Accept::OBSERVATION,
            fields.at(1),
        );
        return order;
    }
    let request = order::request(work, &fields);
    order.service = request.service;
    order.placer_order = order.placer_order.or_else(|| request.placer.id.clone());
    order.filler_order = order.filler_order.or_else(|| request.filler.id.clone());
    order.observed_at = request.observed_at;
    order.reported_at = request.reported_at;
    order.result_status = request.status;
    order.priority = order.priority.or(request.priority);
    let mut detail = request.detail;
    detail.placer_assigner = order.detail.placer_assigner.take();
    detail.placer_assigner_id = order.detail.placer_assigner_id.take();
    detail.filler_assigner = order.detail.filler_assigner.take();
    detail.filler_assigner_id = order.detail.filler_assigner_id.take();
    order::assigners(&mut detail, &request.placer, &request.filler);
    order::other_numbers(
        &mut detail,
        (order.placer_order.as_ref(), order.filler_order.as_ref()),
        &request.placer,
        &request.filler,
    );
    // Timing and comments read after the ORC, before this segment.
    let mut timing = std::mem::take(&mut order.detail.timing);
    timing.extend(request.timing);
    detail.timing = timing;
    let mut notes = std::mem::take(&mut order.detail.notes);
    notes.append(&mut detail.notes);
    detail.notes = notes;
    if order.specimen.is_none() {
        order.specimen = request.specimen.as_ref().and_then(|s| s.kind.clone());
    }
    detail.specimens.extend(request.specimen);
    if let Some(common) = common {
        order::merge(&mut detail, common);
    }
    if order.orderer.is_none() {
        order.orderer = detail.orderers.first().cloned();
    }
    order.detail = Box::new(detail);
    order
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::normalize::context::work_for;

    use crate::record::Standard;

    fn read(text: &str) -> OrderMessage {
        work_for(text, orders).0
    }

    #[test]
    fn an_oml_order_reads_orc_obr_tq1_spm_obx_and_comments() {
        let m = read(
            "MSH|^~\\&|CPOE|H|LAB|H|20240101120000||OML^O21^OML_O21|1|P|2.5.1\r\
             PID|1||123^^^HOSP^MR\r\
             ORC|NW|PL1^CPOE||G1|SC||||20240101115900|||1234^SMITH^ANN\r\
             TQ1|1||||||||S^Stat^HL70485\r\
             OBR|1|PL1^CPOE||2345-7^Glucose^LN|R\r\
             NTE|1|P|fasting\r\
             OBX|1|CWE|FAST^Fasting^L||Y^Yes^HL70136\r\
             NTE|1|P|since midnight\r\
             SPM|1|S1||BLD^Whole blood^HL70487\r\
             NTE|1||drawn above IV",
        );
        assert_eq!(m.orders.len(), 1);
        let o = &m.orders[0];
        assert_eq!(o.control, "NW");
        assert_eq!(o.placer_order.as_deref(), Some("PL1"));
        assert_eq!(o.detail.placer_assigner.as_deref(), Some("CPOE"));
        assert_eq!(o.detail.placer_group.as_ref().unwrap().id, "G1");
        assert_eq!(o.status.as_deref(), Some("SC"));
        assert!(o.ordered_at.is_some());
        assert_eq!(o.orderer.as_ref().unwrap().id.as_deref(), Some("1234"));
        assert_eq!(o.priority.as_deref(), Some("S"));
        assert_eq!(o.detail.timing.len(), 1);
        assert_eq!(o.service.as_ref().unwrap().original.code, "2345-7");
        let specimen = o.specimen.as_ref().unwrap();
        assert_eq!(specimen.original.code, "BLD");
        assert_eq!(specimen.standard, Standard::Original);
        assert_eq!(o.detail.notes[0].text, "fasting");
        assert_eq!(o.observations[0].notes[0].text, "since midnight");
        assert_eq!(o.detail.specimens[0].notes[0].text, "drawn above IV");
    }

    #[test]
    fn an_orm_order_falls_back_to_obr_fields() {
        let m = read(
            "MSH|^~\\&|CPOE|H|LAB|H|20240101120000||ORM^O01|1|P|2.3\r\
             ORC|NW||||||^^^^^R\r\
             OBR|1|PL9|FL9|CBC^Blood count^L|||||||||||BLD&Blood&HL70070|77^JONES^TOM\r\
             ORC|CA|PL10\r\
             OBR|1|||K^Potassium^L\r\
             OBR|2|||NA^Sodium^L",
        );
        let controls: Vec<_> = m.orders.iter().map(|o| o.control.as_str()).collect();
        assert_eq!(controls, ["NW", "CA", "CA"]);
        let first = &m.orders[0];
        assert_eq!(first.placer_order.as_deref(), Some("PL9"));
        assert_eq!(first.filler_order.as_deref(), Some("FL9"));
        assert_eq!(first.priority.as_deref(), Some("R"));
        assert_eq!(first.orderer.as_ref().unwrap().id.as_deref(), Some("77"));
        assert_eq!(first.specimen.as_ref().unwrap().original.code, "BLD");
        assert_eq!(m.orders[2].service.as_ref().unwrap().original.code, "NA");
        assert_eq!(m.orders[2].placer_order.as_deref(), Some("PL10"));
    }
}
