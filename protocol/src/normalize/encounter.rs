//! PV1 to [`Encounter`]: the visit, for every message type that has one
//! (the first PV1 of the message; a second patient's visit is not read).
//!
//! Read: class (PV1-2), location (PV1-3, point of care/room/bed joined with
//! `/`, and the facility), admission type (4), preadmit number (5), prior
//! location (6), attending (7), referring (8) and consulting (9) doctors,
//! hospital service (10), admit source (14), admitting doctor (17),
//! patient type (18), visit number (19), financial class (20), discharge
//! disposition (36) and destination (37), servicing facility (39), admit
//! and discharge times (44, 45), alternate visit id (50).

use crate::hl7::Element;
use crate::normalize::context::Work;
use crate::normalize::datatypes::{
    component, each, field_time, first, identifier, practitioner, string,
};
use crate::normalize::fields::Fields;
use crate::record::{CompactString, Encounter};

/// Reads a PV1.
pub(crate) fn encounter(work: &mut Work<'_>, pv1: &Fields<'_>) -> Encounter {
    let location = pv1.field(3);
    Encounter {
        class: component(pv1.field(2), 1),
        location: point_of_care(location),
        facility: location
            .and_then(|l| l.component(4))
            .and_then(|hd| string(hd.subcomponent(1))),
        visit_number: first(pv1, 19, identifier),
        attending: first(pv1, 7, practitioner),
        admitted_at: field_time(work, pv1, 44),
        discharged_at: field_time(work, pv1, 45),
        admission_type: component(pv1.field(4), 1),
        preadmit_number: first(pv1, 5, identifier).map(Box::new),
        prior_location: point_of_care(pv1.field(6)),
        referring: first(pv1, 8, practitioner).map(Box::new),
        consulting: each(pv1, 9, practitioner),
        hospital_service: component(pv1.field(10), 1),
        admit_source: component(pv1.field(14), 1),
        admitting: first(pv1, 17, practitioner).map(Box::new),
        patient_type: component(pv1.field(18), 1),
        financial_class: component(pv1.field(20), 1),
        discharge_disposition: component(pv1.field(36), 1),
        discharged_to: component(pv1.field(37), 1),
        servicing_facility: component(pv1.field(39), 1),
        alternate_visit_id: first(pv1, 50, identifier).map(Box::new),
    }
}

/// PL.1-3 (point of care, room, bed; each its first sub-component) joined
/// with `/`; trailing empty parts are dropped, inner ones kept so the parts
/// stay in place (`4W//2`).
fn point_of_care(element: Option<Element<'_>>) -> Option<CompactString> {
    let element = element?;
    let parts: Vec<CompactString> = (1..=3)
        .map(|n| {
            element
                .component(n)
                .and_then(|c| string(c.subcomponent(1)))
                .unwrap_or_default()
        })
        .collect();
    let used = parts.iter().rposition(|p| !p.is_empty())? + 1;
    Some(parts.get(..used).unwrap_or_default().join("/").into())
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::hl7::Message;
    use crate::normalize::context::work_for;

    fn read(segment: &str) -> Encounter {
        let text = format!("MSH|^~\\&|A\r{segment}");
        work_for(&text, |work, m| {
            encounter(work, &Fields::new(m, m.segment("PV1").unwrap()))
        })
        .0
    }

    #[test]
    fn a_visit_reads_class_places_doctors_numbers_and_times() {
        let e = read(
            "PV1|1|I|4W^401^2^NORTH|E|PRE1^^^H|3E^1|2905^Langa^Albert^J|0007^SINGH|C006^Woolfson~C008^Condoc|SUR||||7|||5755^Kuczma|IP|V77^^^HOSP^VN|SP||||||||||||||||01|HOME||NORTH|||||20240101115500|20240102115500|||||ALT9^^^H",
        );
        assert_eq!(e.class.as_deref(), Some("I"));
        assert_eq!(e.location.as_deref(), Some("4W/401/2"));
        assert_eq!(e.facility.as_deref(), Some("NORTH"));
        assert_eq!(e.admission_type.as_deref(), Some("E"));
        assert_eq!(e.preadmit_number.unwrap().value, "PRE1");
        assert_eq!(e.prior_location.as_deref(), Some("3E/1"));
        assert_eq!(e.attending.unwrap().id.as_deref(), Some("2905"));
        assert_eq!(e.referring.unwrap().id.as_deref(), Some("0007"));
        assert_eq!(e.consulting.len(), 2);
        assert_eq!(e.hospital_service.as_deref(), Some("SUR"));
        assert_eq!(e.admit_source.as_deref(), Some("7"));
        assert_eq!(e.admitting.unwrap().id.as_deref(), Some("5755"));
        assert_eq!(e.patient_type.as_deref(), Some("IP"));
        assert_eq!(e.visit_number.unwrap().value, "V77");
        assert_eq!(e.financial_class.as_deref(), Some("SP"));
        assert_eq!(e.discharge_disposition.as_deref(), Some("01"));
        assert_eq!(e.discharged_to.as_deref(), Some("HOME"));
        assert_eq!(e.servicing_facility.as_deref(), Some("NORTH"));
        assert!(e.admitted_at.is_some() && e.discharged_at.is_some());
        assert_eq!(e.alternate_visit_id.unwrap().value, "ALT9");
    }

    #[test]
    fn a_location_keeps_inner_gaps_drops_trailing_ones_and_reads_no_sub_components() {
        let m = Message::parse(
            b"MSH|^~\\&|A\rPV1|1|O|4W^^2~x|\rPV1|1|O|^^^F\rPV1|1|I|HUH AE OMU&9.8&ISO^OMU B^Bed 03",
        )
        .unwrap();
        let mut pv1 = m.segments_named("PV1");
        assert_eq!(
            point_of_care(pv1.next().unwrap().field(3)).as_deref(),
            Some("4W//2")
        );
        assert_eq!(point_of_care(pv1.next().unwrap().field(3)), None);
        assert_eq!(
            point_of_care(pv1.next().unwrap().field(3)).as_deref(),
            Some("HUH AE OMU/OMU B/Bed 03")
        );
    }
}
