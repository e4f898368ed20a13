//! Normalization: turning what a sender wrote into coded, typed values.
//!
//! The terminology layer lives here: [`coding_system`] identifies HL7 coding
//! systems, [`ucum`] translates unit spellings to UCUM, and [`mapping`] holds
//! per-interface tables from local codes and units to standard ones.
//! Everything is sans-IO: tables arrive as text, lookups return borrowed data.
//!
//! On top of it, [`normalize`] turns a parsed message into a [`Record`]:
//! one module per message family (`oru` for ORU and OUL, `adt`, `orders`,
//! `vxu`), `generic` for every other type, readers of the segments several
//! families share (`header`, `patient`, `encounter`, `order`,
//! `observation`, `specimen`, `notes`) and of the HL7 data types, and
//! `carried`, which names what the record does not carry.
//!
//! Invariants of [`normalize`]:
//! - it never fails and never panics: a message type without a normalizer
//!   gives [`Body::Generic`], and a value that cannot be read gives a
//!   Warning issue (table 0357 code 102 or 103) at its exact location, with
//!   the raw text kept where the record has room for it;
//! - codes are never guessed: a code with no standard coding is
//!   [`Standard::Unmapped`](crate::record::Standard::Unmapped) and listed in
//!   [`Normalized::unmapped`];
//! - times are UTC (see [`time`] for zone and DST rules);
//! - warnings never contain values from the message;
//! - nothing is dropped silently: every segment and field of a normalized
//!   type that holds a value the record has no place for is named in
//!   [`Record::not_carried`] (see `carried`); a generic record keeps every
//!   segment.

pub mod coding_system;
pub mod loinc;
pub mod mapping;
pub mod time;
pub mod ucum;

mod adt;
mod carried;
mod context;
mod datatypes;
mod encounter;
mod fields;
mod generic;
mod header;
mod notes;
mod observation;
mod order;
mod orders;
mod oru;
mod patient;
mod specimen;
mod vxu;

pub use context::{Context, Normalized};

use crate::hl7::{Issue, Message};
use crate::record::{Body, Record};

use context::Work;

/// Normalizes one parsed message.
///
/// `issues` are the validation findings for the message; they are carried
/// unchanged at the front of the record's issues (for an accepted message
/// they are warnings), followed by what normalization found.
pub fn normalize(msg: &Message<'_>, issues: Vec<Issue>, ctx: &Context<'_>) -> Normalized {
    let kind = msg.message_kind();
    let mut work = Work::new(*ctx, issues);
    let header = header::header(&mut work, msg, kind);
    let patient = patient::patient(&mut work, msg);
    let encounter = first_visit(msg).map(|pv1| {
        work.consume(&pv1);
        encounter::encounter(&mut work, &fields::Fields::new(msg, pv1))
    });
    let body = match kind.code.as_ref() {
        "ORU" | "OUL" => Body::Observations(oru::observations(&mut work, msg)),
        "ADT" => Body::Patient(adt::patient_event(
            &mut work,
            msg,
            &header.trigger_event,
            header.message_time,
        )),
        "ORM" | "OML" => Body::Orders(orders::orders(&mut work, msg)),
        "VXU" => Body::Immunizations(vxu::immunizations(&mut work, msg)),
        _ => Body::Generic(generic::generic(msg)),
    };
    header::check_site_zone(&mut work, msg);
    let not_carried = match body {
        Body::Generic(_) => Vec::new(),
        _ => carried::not_carried(msg, &work.consumed),
    };
    let (unit_mismatches, unmapped_answers) = (work.unit_mismatches, work.unmapped_answers);
    let (issues, unmapped) = work.finish();
    Normalized {
        record: Record {
            header,
            patient,
            encounter,
            body,
            issues,
            not_carried,
        },
        unmapped,
        unit_mismatches,
        unmapped_answers,
    }
}

/// The first PV1 of the first patient group (a PV1 after a second PID is
/// another patient's).
fn first_visit<'m>(msg: &'m Message<'_>) -> Option<crate::hl7::Segment<'m>> {
    let pv1 = msg.first_segment("PV1")?;
    let second_patient = msg.segments_named("PID").nth(1).map(|s| s.index());
    (second_patient.is_none_or(|p| pv1.index() < p)).then_some(pv1)
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::hl7::{ErrorCode, Location};
    use crate::normalize::coding_system::CodingSystem;
    use crate::normalize::mapping::MappingTable;
    use crate::record::{Standard, Value};

    const LAB_MAP: &str = "# version: lab-v1\n\
        kind,local_system,local_code,target_system,target_code,target_display\n\
        code,L,GLU,LN,2345-7,Glucose [Mass/volume] in Serum or Plasma\n\
        unit,,MGS/DL,UCUM,mg/dL,\n";

    const ORU: &str = "MSH|^~\\&|LAB|H|HUB|O|20240102030405||ORU^R01|C1|P|2.3\r\
        PID|1||123^^^HOSP^MR||DOE^JANE||19800101|F\r\
        OBR|1|||PANEL^Chemistry^L|||20240102020000\r\
        OBX|1|NM|GLU^Glucose^L||95|MGS/DL|70-99|N|||F\r\
        OBX|2|NM|NA^Sodium^L||140|mmol/L|||||F\r\
        OBX|3|NM|NA^Sodium^L||141|mmol/L|||||F\r";

    fn run(text: &str, mapping: &MappingTable, issues: Vec<Issue>) -> Normalized {
        let msg = Message::parse(text.as_bytes()).unwrap();
        let tz = TimeZone::fixed(jiff::tz::offset(1));
        normalize(
            &msg,
            issues,
            &Context {
                time_zone: &tz,
                mapping,
            },
        )
    }

    fn observations(n: &Normalized) -> &[crate::record::Observation] {
        let Body::Observations(r) = &n.record.body else {
            panic!("{:?}", n.record.body);
        };
        &r.orders[0].observations
    }

    #[test]
    fn the_mapping_table_codes_local_results_and_the_rest_is_counted() {
        let table = MappingTable::parse(LAB_MAP).unwrap();
        let n = run(ORU, &table, Vec::new());
        let obs = observations(&n);
        let Standard::Mapped(loinc) = &obs[0].code.standard else {
            panic!("{:?}", obs[0].code.standard);
        };
        assert_eq!(
            (loinc.system.clone(), loinc.code.as_str()),
            (CodingSystem::Loinc, "2345-7")
        );
        let Value::Quantity(q) = &obs[0].value else {
            panic!("{:?}", obs[0].value);
        };
        assert_eq!(q.unit.as_ref().unwrap().ucum.as_deref(), Some("mg/dL"));
        let local = CodingSystem::Local("L".into());
        assert_eq!(
            n.unmapped,
            [
                (local.clone(), "PANEL".to_string()),
                (local, "NA".to_string())
            ]
        );
    }

    #[test]
    fn a_result_in_another_unit_than_its_row_expects_is_converted_or_flagged_and_counted() {
        let table = MappingTable::parse(
            "kind,local_system,local_code,target_system,target_code,target_unit\n\
             code,L,GLU,LN,2345-7,g/L\n\
             code,L,NA,LN,2951-2,mmol/L\n",
        )
        .unwrap();
        let oru = "MSH|^~\\&|LAB|H|HUB|O|20240102030405||ORU^R01|C1|P|2.5\r\
            PID|1||123^^^HOSP^MR\r\
            OBR|1|||PANEL^Chemistry^L\r\
            OBX|1|NM|GLU^Glucose^L||95|mg/dL|||||F\r\
            OBX|2|NM|NA^Sodium^L||140|mg/dL|||||F\r\
            OBX|3|NM|NA^Sodium^L||140|mmol/L|||||F\r";
        let n = run(oru, &table, Vec::new());
        let obs = observations(&n);
        let Value::Quantity(glucose) = &obs[0].value else {
            panic!("{:?}", obs[0].value);
        };
        assert_eq!(glucose.value.to_string(), "95", "the value as sent stays");
        let converted = glucose.converted.as_ref().unwrap();
        assert_eq!(
            (
                converted.value.to_string().as_str(),
                converted.unit.as_str(),
                converted.exact
            ),
            ("0.95", "g/L", true)
        );
        let Value::Quantity(sodium) = &obs[1].value else {
            panic!("{:?}", obs[1].value);
        };
        assert_eq!(sodium.converted, None);
        assert_eq!(n.unit_mismatches, 1);
        let flagged: Vec<_> = n
            .record
            .issues
            .iter()
            .map(|i| i.location.to_string())
            .collect();
        assert_eq!(flagged, ["OBX(segment 5)-6"]);
        let Value::Quantity(same) = &obs[2].value else {
            panic!("{:?}", obs[2].value);
        };
        assert_eq!(same.converted, None, "already in the expected unit");
    }

    #[test]
    fn without_a_mapping_every_local_code_is_unmapped() {
        let n = run(ORU, &MappingTable::empty(), Vec::new());
        assert!(observations(&n).iter().all(|o| !o.code.is_mapped()));
        let codes: Vec<_> = n.unmapped.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(codes, ["PANEL", "GLU", "MGS/DL", "NA"]);
    }

    #[test]
    fn validation_issues_come_first_and_normalization_adds_its_own() {
        let earlier = Issue::warning(
            ErrorCode::RequiredFieldMissing,
            Location::segment("PV1", 3),
            "patient class is empty",
        );
        let text = ORU.replace("|95|", "|9,5|");
        let n = run(&text, &MappingTable::empty(), vec![earlier.clone()]);
        assert_eq!(n.record.issues.len(), 2);
        assert_eq!(n.record.issues[0], earlier);
        assert_eq!(n.record.issues[1].code, ErrorCode::DataType);
        assert_eq!(observations(&n)[0].value, Value::Text("9,5".into()));
    }

    #[test]
    fn a_problem_found_by_validation_is_not_reported_twice() {
        let text = ORU
            .replace("20240102030405", "2024010203040")
            .replace("|95|", "|9,5|");
        let msg = Message::parse(text.as_bytes()).unwrap();
        let issues = crate::hl7::validate::validate(&msg);
        let n = run(&text, &MappingTable::empty(), issues);
        let mut places: Vec<_> = n
            .record
            .issues
            .iter()
            .map(|i| (i.code.code(), i.location.segment_sequence, i.location.field))
            .collect();
        let all = places.len();
        places.sort_unstable();
        places.dedup();
        assert_eq!(places.len(), all, "{:?}", n.record.issues);
        assert!(places.contains(&(102, 1, 7)));
        assert!(places.contains(&(102, 4, 5)));
    }

    #[test]
    fn header_and_patient_are_read_for_every_type() {
        let n = run(ORU, &MappingTable::empty(), Vec::new());
        assert_eq!(n.record.header.control_id, "C1");
        let message_time = n.record.header.message_time.unwrap();
        assert!(message_time.zone_assumed);
        assert_eq!(message_time.offset_minutes, 60);
        let patient = n.record.patient.unwrap();
        assert_eq!(patient.identifiers[0].value, "123");
    }

    #[test]
    fn a_type_without_a_normalizer_is_kept_generically() {
        let n = run(
            "MSH|^~\\&|S|F|R|F|20240101||SIU^S12^SIU_S12|9|P|2.5\rSCH|1|||||x\rPID|1||7^^^H^MR",
            &MappingTable::empty(),
            Vec::new(),
        );
        let Body::Generic(g) = &n.record.body else {
            panic!("{:?}", n.record.body);
        };
        assert_eq!(g.segments, ["SCH|1|||||x", "PID|1||7^^^H^MR"]);
        assert_eq!(n.record.patient.unwrap().identifiers[0].value, "7");
        assert!(n.record.issues.is_empty());
    }

    #[test]
    fn each_family_goes_to_its_normalizer() {
        let cases = [
            ("ADT^A08", "Patient"),
            ("ADT^A40^ADT_A39", "Patient"),
            ("ORM^O01", "Orders"),
            ("OML^O21^OML_O21", "Orders"),
            ("VXU^V04^VXU_V04", "Immunizations"),
            ("ORU^R01^ORU_R01", "Observations"),
            ("OUL^R22^OUL_R22", "Observations"),
            ("ACK^A01", "Generic"),
            ("", "Generic"),
        ];
        for (kind, want) in cases {
            let text = format!("MSH|^~\\&|A|B|C|D|20240101||{kind}|1|P|2.5");
            let n = run(&text, &MappingTable::empty(), Vec::new());
            let got = match n.record.body {
                Body::Observations(_) => "Observations",
                Body::Patient(_) => "Patient",
                Body::Orders(_) => "Orders",
                Body::Immunizations(_) => "Immunizations",
                Body::Generic(_) => "Generic",
            };
            assert_eq!(got, want, "{kind}");
        }
    }
}
