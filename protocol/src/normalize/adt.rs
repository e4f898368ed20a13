//! ADT to [`PatientEvent`]: admissions, transfers, discharges, updates
//! (A01, A02, A03, A04, A08, ...) and identity merges (A18, A34, A40, ...).
//!
//! The patient itself (PID) is read for every message type (see
//! `patient`); this module adds the event times (EVN), the visit (the first
//! PV1) and, for patient identity merges, the identifiers merged away: MRG-1
//! (prior patient identifier list) and MRG-4 (prior patient id, older
//! versions) of every MRG segment of the first patient group (before a
//! second PID), duplicates dropped.
//!
//! Invariant: `merged_from` is filled only by the events HL7 v2.5.1 ch. 3
//! defines as merges of patient or person identity (A18, A30, A34, A36, A39,
//! A40). Every other event carrying MRG (account and visit merges A35, A41,
//! A42; moves A43, A44, A45; identifier changes A46 to A51) leaves it empty:
//! the record has no field for a prior account, visit or changed identifier,
//! so each such MRG gets a warning at the MRG field holding the prior value
//! that says what the event changes.

use crate::hl7::{Element, ErrorCode, Message};
use crate::normalize::context::Work;
use crate::normalize::datatypes::{component, field_time, identifier, practitioner, string};
use crate::normalize::fields::Fields;
use crate::normalize::patient::identifiers;
use crate::record::{CompactString, Encounter, Identifier, PatientEvent, Timestamp};

/// Events whose MRG names a patient (or person) identity merged into the
/// message's patient.
const IDENTITY_MERGES: [&str; 6] = ["A18", "A30", "A34", "A36", "A39", "A40"];

/// Reads the event `event` (MSH-9.2; EVN-1 when that is empty);
/// `message_time` (MSH-7) stands in for a missing EVN-2.
pub(crate) fn patient_event(
    work: &mut Work<'_>,
    msg: &Message<'_>,
    event: &str,
    message_time: Option<Timestamp>,
) -> PatientEvent {
    let evn = msg.first_segment("EVN").map(|evn| Fields::new(msg, evn));
    let evn_code = evn.as_ref().and_then(|s| component(s.field(1), 1));
    let event = match event.trim() {
        "" => evn_code.as_deref().unwrap_or_default(),
        sent => sent,
    };
    let recorded_at = evn.as_ref().and_then(|s| field_time(work, s, 2));
    PatientEvent {
        recorded_at: recorded_at.or(message_time),
        occurred_at: evn.as_ref().and_then(|s| field_time(work, s, 6)),
        merged_from: merged_from(work, msg, event),
        ..PatientEvent::default()
    }
}

/// PV1: class, location, visit number, attending doctor, admit and
/// discharge times.
pub(crate) fn encounter(work: &mut Work<'_>, pv1: &Fields<'_>) -> Encounter {
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
        ..Encounter::default()
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

/// Identifiers of every MRG segment of the first patient group of an
/// identity merge; for any other event, a warning per MRG saying what it
/// changes.
fn merged_from(work: &mut Work<'_>, msg: &Message<'_>, event: &str) -> Vec<Identifier> {
    let is_merge = IDENTITY_MERGES
        .iter()
        .any(|e| e.eq_ignore_ascii_case(event));
    let mut out: Vec<Identifier> = Vec::new();
    let mut patients = 0;
    for seg in msg.segments() {
        match seg.id_bytes() {
            // A later patient group is another patient's (validation
            // flags it): its MRG must not be merged into this one.
            b"PID" if patients == 1 => break,
            b"PID" => patients += 1,
            _ => {}
        }
        if seg.id_bytes() != b"MRG" {
            continue;
        }
        let mrg = Fields::new(msg, seg);
        if !is_merge {
            not_a_merge(work, &mrg, event);
            continue;
        }
        for id in identifiers(&mrg, &[1, 4]) {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

/// Warns that `mrg` is not a merged identity, naming what `event`
/// changes, at the MRG field that holds the prior value.
fn not_a_merge(work: &mut Work<'_>, mrg: &Fields<'_>, event: &str) {
    let event = event.to_ascii_uppercase();
    let field = match event.as_str() {
        "A35" | "A41" | "A44" | "A49" => 3,
        "A42" | "A45" | "A50" => 5,
        "A46" => 4,
        "A48" => 2,
        "A51" => 6,
        _ => 1,
    };
    let message = match event.as_str() {
        "A35" => "A35: account merged from MRG-3 into PID-18; not a patient merge",
        "A41" => "A41: account merged from MRG-3 into PID-18; not a patient merge",
        "A42" => "A42: visit merged from MRG-5 into PV1-19; not a patient merge",
        "A43" => "A43: data under MRG-1 moved to the patient in PID-3; not a patient merge",
        "A44" => "A44: account in MRG-3 moved to this patient; not a patient merge",
        "A45" => "A45: visit in MRG-5 moved to the account in PID-18; not a patient merge",
        "A46" => "A46: patient id changed from MRG-4 to PID-2; not a patient merge",
        "A47" => "A47: patient identifier changed from MRG-1 to PID-3; not a patient merge",
        "A48" => "A48: alternate patient id changed from MRG-2 to PID-4; not a patient merge",
        "A49" => "A49: account number changed from MRG-3 to PID-18; not a patient merge",
        "A50" => "A50: visit number changed from MRG-5 to PV1-19; not a patient merge",
        "A51" => "A51: alternate visit id changed from MRG-6 to PV1-50; not a patient merge",
        _ => "MRG is not read: this event is not a patient identity merge",
    };
    work.warn(ErrorCode::UnsupportedEvent, mrg.at(field), message);
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::normalize::context::Context;
    use crate::normalize::mapping::MappingTable;

    fn read(text: &str) -> PatientEvent {
        read_with_issues(text).0
    }

    fn read_with_issues(text: &str) -> (PatientEvent, Vec<crate::hl7::Issue>) {
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
        let event = patient_event(&mut work, &m, &m.message_type().event, None);
        (event, work.issues)
    }

    /// The record's encounter.
    fn visit(text: &str) -> Option<Encounter> {
        let m = Message::parse(text.as_bytes()).unwrap();
        let tz = TimeZone::UTC;
        let mapping = MappingTable::empty();
        let ctx = Context {
            time_zone: &tz,
            mapping: &mapping,
        };
        crate::normalize::normalize(&m, Vec::new(), &ctx)
            .record
            .encounter
    }

    #[test]
    fn an_admission_reads_event_times_and_the_visit() {
        let text = "MSH|^~\\&|ADT|H|HUB|O|20240101120000||ADT^A01^ADT_A01|1|P|2.5.1\r\
             EVN|A01|20240101115900||||20240101115500\r\
             PID|1||123^^^HOSP^MR||DOE^JANE\r\
             PV1|1|I|4W^401^2^NORTH||||2905^Langa^Albert^J||||||||||||V77^^^HOSP^VN|||||||||||||||||||||||||20240101115500";
        let e = read(text);
        assert!(e.recorded_at.is_some());
        assert!(e.occurred_at.is_some());
        let enc = visit(text).unwrap();
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
             MRG|456^^^HOSP^MR|||555^^^OLD",
        );
        let merged: Vec<_> = e.merged_from.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(merged, ["456", "789", "555"]);
    }

    #[test]
    fn a_visit_number_change_is_not_a_merge_and_says_what_changed() {
        let text = "MSH|^~\\&|EHR|HOSP|GW|CLINIC|20240102123045||ADT^A50^ADT_A50|A50|P|2.5.1\r\
             EVN|A50|20240102123045\r\
             PID|1||12345^^^HOSP^MR\r\
             MRG|12345^^^HOSP^MR||||V111^^^HOSP^VN\r\
             PV1|1|I|||||||||||||||||V222^^^HOSP^VN";
        let (e, issues) = read_with_issues(text);
        assert!(e.merged_from.is_empty(), "{:?}", e.merged_from);
        assert_eq!(visit(text).unwrap().visit_number.unwrap().value, "V222");
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].location.to_string(), "MRG(segment 4)-5");
        assert!(
            issues[0]
                .message
                .starts_with("A50: visit number changed from MRG-5")
        );
    }

    #[test]
    fn an_account_change_found_only_in_evn_is_not_a_merge() {
        let (e, issues) = read_with_issues(
            "MSH|^~\\&|EHR|HOSP|GW|CLINIC|20240102123045||ADT|A49|P|2.3\r\
             EVN|A49|20240102123045\r\
             PID|1||12345^^^HOSP^MR||DOE^JOHN||||||||||||ACC2\r\
             MRG|12345^^^HOSP^MR||ACC1",
        );
        assert!(e.merged_from.is_empty());
        assert_eq!(issues[0].location.to_string(), "MRG(segment 4)-3");
        assert!(issues[0].message.contains("account number"));
    }

    #[test]
    fn only_identity_merges_fill_merged_from() {
        for event in ["A18", "A30", "A34", "A36", "A39", "a40"] {
            let (e, issues) = read_with_issues(&format!(
                "MSH|^~\\&|A|B|C|D|20240101||ADT^{event}|1|P|2.5.1\rPID|1||1^^^H^MR\rMRG|2^^^H^MR"
            ));
            assert_eq!(e.merged_from.len(), 1, "{event}");
            assert!(issues.is_empty(), "{event}");
        }
        for event in [
            "A35", "A41", "A42", "A43", "A44", "A45", "A46", "A47", "A48", "A51", "A08",
        ] {
            let (e, issues) = read_with_issues(&format!(
                "MSH|^~\\&|A|B|C|D|20240101||ADT^{event}|1|P|2.5.1\rPID|1||1^^^H^MR\rMRG|2^^^H^MR"
            ));
            assert!(e.merged_from.is_empty(), "{event}");
            assert_eq!(issues.len(), 1, "{event}");
            assert_eq!(issues[0].code, ErrorCode::UnsupportedEvent, "{event}");
        }
    }

    #[test]
    fn a_second_patient_groups_mrg_is_not_merged_into_the_first_patient() {
        let (e, _) = read_with_issues(
            "MSH|^~\\&|A|B|C|D|20240101||ADT^A40^ADT_A39|1|P|2.5.1\r\
             PID|1||12345^^^H^MR\rMRG|67890^^^H^MR\r\
             PID|1||22222^^^H^MR\rMRG|33333^^^H^MR",
        );
        let merged: Vec<_> = e.merged_from.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(merged, ["67890"]);
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
