//! ORM^O01 and OML^O21 to [`OrderMessage`]: one [`Order`] per ORC, filled
//! in from the segments that follow it.
//!
//! - ORC: control (ORC-1), placer and filler numbers (ORC-2/3, entity id),
//!   status (ORC-5), transaction time (ORC-9), orderer (ORC-12), priority
//!   (ORC-7.6, the old quantity/timing).
//! - OBR (or RXO for pharmacy orders): what is ordered (OBR-4 / RXO-1), and
//!   where the ORC left them empty the order numbers (OBR-2/3), orderer
//!   (OBR-16), priority (OBR-27.6, then OBR-5) and specimen (OBR-15.1).
//!   A second OBR under the same ORC starts a new order with the ORC's
//!   fields.
//! - TQ1: priority (TQ1-9), which wins over the older fields.
//! - SPM: specimen type (SPM-4), which wins over OBR-15.
//!
//! A detail segment before any ORC opens an order with an empty control.

use crate::hl7::Message;
use crate::normalize::context::Work;
use crate::normalize::datatypes::{Accept, coded, component, field_time, practitioner};
use crate::normalize::fields::Fields;
use crate::record::{CompactString, Order, OrderMessage};

/// HL7 tables 0487 (specimen type, SPM-4) and 0070 (specimen source,
/// OBR-15) are standard vocabularies for the specimen.
const SPECIMEN_SYSTEMS: Accept = Accept(&["HL70487", "HL70070"]);

/// Reads every order.
pub(crate) fn orders(work: &mut Work<'_>, msg: &Message<'_>) -> OrderMessage {
    let mut orders: Vec<Order> = Vec::new();
    // The ORC fields of the current order, and whether it has its detail.
    let mut current: Option<(Order, bool)> = None;
    for segment in msg.segments() {
        let id = segment.id_bytes();
        if !matches!(id, b"ORC" | b"OBR" | b"RXO" | b"TQ1" | b"SPM") {
            continue;
        }
        let segment = Fields::new(msg, segment);
        match id {
            b"ORC" => {
                orders.extend(current.take().map(|(o, _)| o));
                current = Some((common(work, &segment), false));
            }
            b"OBR" | b"RXO" => {
                let (order, has_detail) = current.take().unwrap_or_else(|| (empty(), false));
                let order = if has_detail {
                    orders.push(order.clone());
                    Order {
                        service: None,
                        specimen: None,
                        ..order
                    }
                } else {
                    order
                };
                current = Some((detail(work, &segment, order), true));
            }
            b"TQ1" => {
                if let Some((order, _)) = current.as_mut() {
                    order.priority = component(segment.field(9), 1).or(order.priority.take());
                }
            }
            b"SPM" => {
                if let Some((order, _)) = current.as_mut() {
                    let spm4 = segment.parts(segment.field(4));
                    let specimen = coded(work, spm4, SPECIMEN_SYSTEMS);
                    order.specimen = specimen.or(order.specimen.take());
                }
            }
            _ => {}
        }
    }
    orders.extend(current.map(|(o, _)| o));
    OrderMessage { orders }
}

/// The ORC part of an order.
fn common(work: &mut Work<'_>, orc: &Fields<'_>) -> Order {
    Order {
        control: component(orc.field(1), 1).unwrap_or_default(),
        placer_order: component(orc.field(2), 1),
        filler_order: component(orc.field(3), 1),
        status: component(orc.field(5), 1),
        service: None,
        ordered_at: field_time(work, orc, 9),
        orderer: practitioner(orc.parts(orc.field(12))),
        priority: component(orc.field(7), 6),
        specimen: None,
        ..Order::default()
    }
}

/// An order with nothing known yet.
fn empty() -> Order {
    Order {
        control: CompactString::const_new(""),
        placer_order: None,
        filler_order: None,
        status: None,
        service: None,
        ordered_at: None,
        orderer: None,
        priority: None,
        specimen: None,
        ..Order::default()
    }
}

/// Fills `order` from an OBR or RXO.
fn detail(work: &mut Work<'_>, segment: &Fields<'_>, mut order: Order) -> Order {
    if segment.segment().id_bytes() == b"RXO" {
        order.service = coded(work, segment.parts(segment.field(1)), Accept::GENERAL);
        return order;
    }
    let obr = segment;
    order.service = coded(work, obr.parts(obr.field(4)), Accept::GENERAL);
    order.placer_order = order.placer_order.or_else(|| component(obr.field(2), 1));
    order.filler_order = order.filler_order.or_else(|| component(obr.field(3), 1));
    if order.orderer.is_none() {
        order.orderer = practitioner(obr.parts(obr.field(16)));
    }
    order.priority = order
        .priority
        .or_else(|| component(obr.field(27), 6))
        .or_else(|| component(obr.field(5), 1));
    if order.specimen.is_none() {
        let source = obr.field(15).and_then(|f| f.component(1));
        order.specimen = coded(work, obr.parts(source), SPECIMEN_SYSTEMS);
    }
    order
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::normalize::context::Context;
    use crate::normalize::mapping::MappingTable;
    use crate::record::Standard;

    fn read(text: &str) -> OrderMessage {
        let m = Message::parse(text.as_bytes()).unwrap();
        let tz = TimeZone::UTC;
        let mapping = MappingTable::empty();
        let mut work = Work::new(
            Context {
                time_zone: &tz,
                mapping: &mapping,
            },
            Vec::new(),
        );
        orders(&mut work, &m)
    }

    #[test]
    fn an_oml_order_reads_orc_obr_tq1_and_spm() {
        let m = read(
            "MSH|^~\\&|CPOE|H|LAB|H|20240101120000||OML^O21^OML_O21|1|P|2.5.1\r\
             PID|1||123^^^HOSP^MR\r\
             ORC|NW|PL1^CPOE||G1|SC||||20240101115900|||1234^SMITH^ANN\r\
             TQ1|1||||||||S^Stat^HL70485\r\
             OBR|1|PL1^CPOE||2345-7^Glucose^LN|R\r\
             SPM|1|||BLD^Whole blood^HL70487",
        );
        assert_eq!(m.orders.len(), 1);
        let o = &m.orders[0];
        assert_eq!(o.control, "NW");
        assert_eq!(o.placer_order.as_deref(), Some("PL1"));
        assert_eq!(o.status.as_deref(), Some("SC"));
        assert!(o.ordered_at.is_some());
        assert_eq!(o.orderer.as_ref().unwrap().id.as_deref(), Some("1234"));
        assert_eq!(o.priority.as_deref(), Some("S"));
        assert_eq!(o.service.as_ref().unwrap().original.code, "2345-7");
        let specimen = o.specimen.as_ref().unwrap();
        assert_eq!(specimen.original.code, "BLD");
        assert_eq!(specimen.standard, Standard::Original);
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
