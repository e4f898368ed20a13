//! ADT to [`PatientEvent`]: admissions, transfers, discharges, updates
//! (A01, A02, A03, A04, A08, ...), identity merges (A18, A34, A40, ...) and
//! account, visit and identifier moves and changes (A35, A41-A51).
//!
//! The patient (PID) and the visit (PV1) are read for every message type
//! (see `patient`, `encounter`); this module adds the event (EVN-2 recorded,
//! EVN-4 reason, EVN-6 occurred), every MRG of the first patient group (in
//! `prior`: the prior identifiers, account, visit or name the event
//! merged, moved or changed) and the OBX of the message (height, weight).
//!
//! A message with several patient groups (A39/A40 merging several
//! patients, A24/A37 linking two) keeps the first as the record's patient
//! and the others, each with its visit, MRG and OBX, in `more_patients`.
//!
//! Invariant: `merged_from` is filled only by the events HL7 v2.5.1 ch. 3
//! defines as merges of patient or person identity (A18, A30, A34, A36, A39,
//! A40): MRG-1 and MRG-4 of every MRG of the group, duplicates dropped. Every other event carrying MRG (account
//! and visit merges A35, A41, A42; moves A43, A44, A45; identifier changes
//! A46 to A51) leaves it empty, so a hub never takes them for a patient
//! merge; what they changed is in `prior`.

use crate::hl7::{Message, Segment};
use crate::normalize::context::Work;
use crate::normalize::datatypes::{component, field_time, first, identifier, person_name};
use crate::normalize::encounter::encounter;
use crate::normalize::fields::Fields;
use crate::normalize::observation::observation;
use crate::normalize::patient::{IdentifierList, patient_at};
use crate::record::{PatientEvent, PatientGroup, Prior, Timestamp};

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
    let evn = msg.first_segment("EVN");
    if let Some(segment) = &evn {
        work.consume(segment);
    }
    let evn = evn.map(|segment| Fields::new(msg, segment));
    let evn_code = evn.as_ref().and_then(|s| component(s.field(1), 1));
    let event = match event.trim() {
        "" => evn_code.as_deref().unwrap_or_default(),
        sent => sent,
    };
    let is_merge = IDENTITY_MERGES
        .iter()
        .any(|e| e.eq_ignore_ascii_case(event));
    let groups = patient_groups(msg);
    let mut first = groups.first().map(|g| group(work, msg, g, is_merge));
    let more_patients = groups
        .iter()
        .skip(1)
        .filter_map(|g| {
            let pid = g.iter().find(|s| s.id_bytes() == b"PID")?;
            let patient = patient_at(work, msg, *pid);
            let encounter = g.iter().find(|s| s.id_bytes() == b"PV1").map(|pv1| {
                work.consume(pv1);
                encounter(work, &Fields::new(msg, *pv1))
            });
            let mut read = group(work, msg, g, is_merge);
            read.patient = patient;
            read.encounter = encounter;
            Some(read)
        })
        .collect();
    let first = first.take().unwrap_or_default();
    PatientEvent {
        recorded_at: evn
            .as_ref()
            .and_then(|s| field_time(work, s, 2))
            .or(message_time),
        occurred_at: evn.as_ref().and_then(|s| field_time(work, s, 6)),
        merged_from: first.merged_from,
        reason: evn.as_ref().and_then(|s| component(s.field(4), 1)),
        prior: first.prior,
        observations: first.observations,
        more_patients,
    }
}

/// The segments of each patient group: the first runs from the start of
/// the message to the second PID, each later one from its PID to the next.
fn patient_groups<'m>(msg: &'m Message<'_>) -> Vec<Vec<Segment<'m>>> {
    let mut groups: Vec<Vec<Segment<'m>>> = vec![Vec::new()];
    let mut patients = 0;
    for seg in msg.segments() {
        if seg.id_bytes() == b"PID" {
            patients += 1;
            if patients > 1 {
                groups.push(Vec::new());
            }
        }
        if let Some(g) = groups.last_mut() {
            g.push(seg);
        }
    }
    groups
}

/// The MRG and OBX of one patient group (each marked as read); its
/// patient and encounter are left to the caller.
fn group(
    work: &mut Work<'_>,
    msg: &Message<'_>,
    segments: &[Segment<'_>],
    is_merge: bool,
) -> PatientGroup {
    let mut read = PatientGroup::default();
    let mut merged = IdentifierList::default();
    for segment in segments {
        match segment.id_bytes() {
            b"MRG" => {
                work.consume(segment);
                let mrg = Fields::new(msg, *segment);
                let mut ids = IdentifierList::default();
                ids.add(work, &mrg, &[1, 4]);
                let ids = ids.into_vec();
                if is_merge {
                    for id in &ids {
                        merged.push(id.clone());
                    }
                }
                read.prior.push(Prior {
                    identifiers: ids,
                    alternate_id: first(&mrg, 2, identifier),
                    account: first(&mrg, 3, identifier),
                    visit: first(&mrg, 5, identifier),
                    alternate_visit: first(&mrg, 6, identifier),
                    name: first(&mrg, 7, person_name),
                    encounter: None,
                });
            }
            // A PV1 after an MRG that is not the group's own visit goes
            // with that MRG (A45 and its kin: MRG, PV1 pairs).
            b"PV1" if !work.is_consumed(segment) => {
                if let Some(prior) = read.prior.last_mut()
                    && prior.encounter.is_none()
                {
                    work.consume(segment);
                    prior.encounter = Some(encounter(work, &Fields::new(msg, *segment)));
                }
            }
            b"OBX" => {
                work.consume(segment);
                let obx = Fields::new(msg, *segment);
                read.observations.push(observation(work, &obx, None));
            }
            _ => {}
        }
    }
    read.merged_from = merged.into_vec();
    read
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::normalize::context::{Context, work_for};
    use crate::normalize::mapping::MappingTable;
    use crate::record::{Encounter, Record};

    fn read(text: &str) -> PatientEvent {
        read_with_issues(text).0
    }

    fn read_with_issues(text: &str) -> (PatientEvent, Vec<crate::hl7::Issue>) {
        work_for(text, |work, m| {
            patient_event(work, m, &m.message_type().event, None)
        })
    }

    /// The whole record.
    fn record(text: &str) -> Record {
        let m = Message::parse(text.as_bytes()).unwrap();
        let tz = TimeZone::UTC;
        let mapping = MappingTable::empty();
        let ctx = Context {
            time_zone: &tz,
            mapping: &mapping,
        };
        crate::normalize::normalize(&m, Vec::new(), &ctx).record
    }

    fn visit(text: &str) -> Option<Encounter> {
        record(text).encounter
    }

    #[test]
    fn an_admission_reads_event_times_reason_and_the_visit() {
        let text = "MSH|^~\\&|ADT|H|HUB|O|20240101120000||ADT^A01^ADT_A01|1|P|2.5.1\r\
             EVN|A01|20240101115900||03||20240101115500\r\
             PID|1||123^^^HOSP^MR||DOE^JANE\r\
             PV1|1|I|4W^401^2^NORTH||||2905^Langa^Albert^J||||||||||||V77^^^HOSP^VN|||||||||||||||||||||||||20240101115500";
        let e = read(text);
        assert!(e.recorded_at.is_some());
        assert!(e.occurred_at.is_some());
        assert_eq!(e.reason.as_deref(), Some("03"));
        let enc = visit(text).unwrap();
        assert_eq!(enc.class.as_deref(), Some("I"));
        assert_eq!(enc.location.as_deref(), Some("4W/401/2"));
        assert_eq!(enc.visit_number.unwrap().value, "V77");
        assert!(e.merged_from.is_empty());
        assert!(e.prior.is_empty());
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
        assert_eq!(e.prior.len(), 2);
    }

    #[test]
    fn a_visit_number_change_is_not_a_merge_and_names_the_prior_visit() {
        let text = "MSH|^~\\&|EHR|HOSP|GW|CLINIC|20240102123045||ADT^A50^ADT_A50|A50|P|2.5.1\r\
             EVN|A50|20240102123045\r\
             PID|1||12345^^^HOSP^MR\r\
             MRG|12345^^^HOSP^MR||||V111^^^HOSP^VN\r\
             PV1|1|I|||||||||||||||||V222^^^HOSP^VN";
        let (e, issues) = read_with_issues(text);
        assert!(e.merged_from.is_empty(), "{:?}", e.merged_from);
        assert_eq!(e.prior[0].visit.as_ref().unwrap().value, "V111");
        assert_eq!(visit(text).unwrap().visit_number.unwrap().value, "V222");
        assert!(issues.is_empty(), "{issues:?}");
    }

    #[test]
    fn an_account_merge_names_the_prior_account() {
        let (e, _) = read_with_issues(
            "MSH|^~\\&|EHR|HOSP|GW|CLINIC|20240102123045||ADT|A49|P|2.3\r\
             EVN|A49|20240102123045\r\
             PID|1||12345^^^HOSP^MR||DOE^JOHN||||||||||||ACC2\r\
             MRG|12345^^^HOSP^MR||ACC1||||DOE^JON",
        );
        assert!(e.merged_from.is_empty());
        let prior = &e.prior[0];
        assert_eq!(prior.account.as_ref().unwrap().value, "ACC1");
        assert_eq!(prior.identifiers[0].value, "12345");
        assert_eq!(prior.name.as_ref().unwrap().given.as_deref(), Some("JON"));
    }

    #[test]
    fn only_identity_merges_fill_merged_from_and_every_event_keeps_its_mrg() {
        for event in ["A18", "A30", "A34", "A36", "A39", "a40"] {
            let (e, issues) = read_with_issues(&format!(
                "MSH|^~\\&|A|B|C|D|20240101||ADT^{event}|1|P|2.5.1\rPID|1||1^^^H^MR\rMRG|2^^^H^MR"
            ));
            assert_eq!(e.merged_from.len(), 1, "{event}");
            assert_eq!(e.prior.len(), 1, "{event}");
            assert!(issues.is_empty(), "{event}");
        }
        for event in [
            "A35", "A41", "A42", "A43", "A44", "A45", "A46", "A47", "A48", "A51", "A08",
        ] {
            let (e, issues) = read_with_issues(&format!(
                "MSH|^~\\&|A|B|C|D|20240101||ADT^{event}|1|P|2.5.1\rPID|1||1^^^H^MR\rMRG|2^^^H^MR"
            ));
            assert!(e.merged_from.is_empty(), "{event}");
            assert_eq!(e.prior[0].identifiers[0].value, "2", "{event}");
            assert!(issues.is_empty(), "{event}");
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
        assert_eq!(e.prior.len(), 1);
    }

    #[test]
    fn observations_of_an_admission_are_read() {
        let e = read(
            "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1\rEVN|A01|20240101\rPID|1||1^^^H^MR\r\
             PV1|1|I\rOBX|1|NM|3141-9^Body weight^LN||62|kg|||||F",
        );
        assert_eq!(e.observations.len(), 1);
        assert_eq!(e.observations[0].code.original.code, "3141-9");
    }
}
