//! ADT to [`PatientEvent`]: admissions, transfers, discharges, updates
//! (A01, A02, A03, A04, A08, ...) and identity merges (A18, A34, A40, ...).
//!
//! The patient itself (PID) is read for every message type (see
//! `patient`); this module adds the event times (EVN), the visit (the first
//! PV1) and, for merges, the identifiers merged away: MRG-1 (prior patient
//! identifier list) and MRG-4 (prior patient id, older versions) of every
//! MRG segment, duplicates dropped.

use crate::hl7::{Element, Message};
use crate::normalize::context::Work;
use crate::normalize::datatypes::{component, field_time, identifier, practitioner, string};
use crate::normalize::fields::Fields;
use crate::normalize::patient::identifiers;
use crate::record::{CompactString, Encounter, Identifier, PatientEvent, Timestamp};

/// Reads the event; `message_time` (MSH-7) stands in for a missing EVN-2.
pub(crate) fn patient_event(
    work: &mut Work<'_>,
    msg: &Message<'_>,
    message_time: Option<Timestamp>,
) -> PatientEvent {
    let evn = msg.first_segment("EVN").map(|evn| Fields::new(msg, evn));
    let recorded_at = evn.as_ref().and_then(|s| field_time(work, s, 2));
    PatientEvent {
        recorded_at: recorded_at.or(message_time),
        occurred_at: evn.as_ref().and_then(|s| field_time(work, s, 6)),
        encounter: msg
            .first_segment("PV1")
            .map(|pv1| encounter(work, &Fields::new(msg, pv1))),
        merged_from: merged_from(msg),
    }
}

/// PV1: class, location, visit number, attending doctor, admit and
/// discharge times.
fn encounter(work: &mut Work<'_>, pv1: &Fields<'_>) -> Encounter {
    let location = pv1.field(3);
    Encounter {
        class: component(pv1.field(2), 1),
        location: point_of_care(location),
        facility: location
            .and_then(|l| l.component(4))
            .and_then(|hd| string(hd.subcomponent(1))),
        visit_number: identifier(pv1.parts(pv1.field(19))),
        attending: practitioner(pv1.parts(pv1.field(7))),
        admitted_at: field_time(work, pv1, 44),
        discharged_at: field_time(work, pv1, 45),
    }
}

/// PL.1-3 (point of care, room, bed) joined with `/`; trailing empty parts
/// are dropped, inner ones kept so the parts stay in place (`4W//2`).
fn point_of_care(element: Option<Element<'_>>) -> Option<CompactString> {
    let element = element?;
    let parts: Vec<CompactString> = (1..=3)
        .map(|n| component(Some(element), n).unwrap_or_default())
        .collect();
    let used = parts.iter().rposition(|p| !p.is_empty())? + 1;
    Some(parts.get(..used).unwrap_or_default().join("/").into())
}

/// Identifiers of every MRG segment.
fn merged_from(msg: &Message<'_>) -> Vec<Identifier> {
    let mut out: Vec<Identifier> = Vec::new();
    for mrg in msg.segments_named("MRG") {
        for id in identifiers(&Fields::new(msg, mrg), &[1, 4]) {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::normalize::context::Context;
    use crate::normalize::mapping::MappingTable;

    fn read(text: &str) -> PatientEvent {
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
        patient_event(&mut work, &m, None)
    }

    #[test]
    fn an_admission_reads_event_times_and_the_visit() {
        let e = read(
            "MSH|^~\\&|ADT|H|HUB|O|20240101120000||ADT^A01^ADT_A01|1|P|2.5.1\r\
             EVN|A01|20240101115900||||20240101115500\r\
             PID|1||123^^^HOSP^MR||DOE^JANE\r\
             PV1|1|I|4W^401^2^NORTH||||2905^Langa^Albert^J||||||||||||V77^^^HOSP^VN|||||||||||||||||||||||||20240101115500",
        );
        assert!(e.recorded_at.is_some());
        assert!(e.occurred_at.is_some());
        let enc = e.encounter.unwrap();
        assert_eq!(enc.class.as_deref(), Some("I"));
        assert_eq!(enc.location.as_deref(), Some("4W/401/2"));
        assert_eq!(enc.facility.as_deref(), Some("NORTH"));
        assert_eq!(enc.visit_number.unwrap().value, "V77");
        assert_eq!(enc.attending.unwrap().id.as_deref(), Some("2905"));
        assert!(enc.admitted_at.is_some());
        assert!(enc.discharged_at.is_none());
        assert!(e.merged_from.is_empty());
    }

    #[test]
    fn a_merge_lists_the_identifiers_merged_away() {
        let e = read(
            "MSH|^~\\&|ADT|H|HUB|O|20240101120000||ADT^A40^ADT_A39|2|P|2.5.1\r\
             EVN|A40|20240101120000\r\
             PID|1||123^^^HOSP^MR\r\
             MRG|456^^^HOSP^MR~789^^^HOSP^PI||||||\r\
             PID|1||124^^^HOSP^MR\r\
             MRG|456^^^HOSP^MR|||555^^^OLD",
        );
        let merged: Vec<_> = e.merged_from.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(merged, ["456", "789", "555"]);
        assert!(e.encounter.is_none());
    }

    #[test]
    fn a_location_keeps_inner_gaps_and_drops_trailing_ones() {
        let m = Message::parse(b"MSH|^~\\&|A\rPV1|1|O|4W^^2~x|\rPV1|1|O|^^^F").unwrap();
        let mut pv1 = m.segments_named("PV1");
        assert_eq!(
            point_of_care(pv1.next().unwrap().field(3)).as_deref(),
            Some("4W//2")
        );
        assert_eq!(point_of_care(pv1.next().unwrap().field(3)), None);
    }
}
