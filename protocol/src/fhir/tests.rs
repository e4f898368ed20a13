//! What the rendering promises, message by message: merges as links,
//! quality-control results never under the patient, doses not given or
//! deleted never posing as given, partial records saying so.

use serde_json::Value;
use uuid::Uuid;

use super::{Origin, bundle};
use crate::hl7::Message;
use crate::hl7::validate::validate;
use crate::normalize::mapping::MappingTable;
use crate::normalize::{Context, normalize};

/// The bundle of a message given as segments.
fn render(segments: &[&str]) -> Value {
    let text = segments.join("\r");
    let msg = Message::parse(text.as_bytes()).unwrap();
    let tz = jiff::tz::TimeZone::UTC;
    let mapping = MappingTable::empty();
    let ctx = Context {
        time_zone: &tz,
        mapping: &mapping,
    };
    let record = normalize(&msg, validate(&msg), &ctx).record;
    let origin = Origin {
        record_id: Uuid::from_u128(7),
        received_at_ms: 1_700_000_000_000,
        gateway: "acme/site/gw",
        source: "lab",
        mapping_version: mapping.version(),
    };
    bundle(&record, &origin)
}

/// The resources of a type, with their requests.
fn of_type<'a>(bundle: &'a Value, kind: &str) -> Vec<(&'a Value, &'a Value)> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == kind)
        .map(|e| (&e["resource"], &e["request"]))
        .collect()
}

const MSH_ORU: &str = "MSH|^~\\&|LIS|LAB^2.16.840.1.113883.19.4.6^ISO|EHR|CLINIC|20240301123400-0500||ORU^R01^ORU_R01|C1|P|2.5.1";
const PID: &str = "PID|1||12345^^^HOSP^MR||Doe^Jane||19800101|F";

#[test]
fn a_result_is_keyed_on_the_filler_order_and_keeps_the_senders_digits() {
    let b = render(&[
        MSH_ORU,
        PID,
        "OBR|1|P1|F1^LAB|2345-7^Glucose^LN|||20240301120000-0500||||||||||||||||F",
        "OBX|1|NM|2345-7^Glucose^LN||5.40|mmol/L^^UCUM|3.9-5.5|H|||F",
    ]);
    let (patient, request) = of_type(&b, "Patient")[0];
    assert_eq!(
        request["method"], "POST",
        "a lab result never overwrites the patient"
    );
    assert_eq!(
        request["ifNoneExist"],
        "identifier=urn%3Ahl7edge%3Aauthority%3AHOSP|12345"
    );
    assert_eq!(patient["gender"], "female");
    let (_, report) = of_type(&b, "DiagnosticReport")[0];
    assert_eq!(report["method"], "PUT");
    assert!(report["url"].as_str().unwrap().ends_with("|F1"));
    let (obs, _) = of_type(&b, "Observation")[0];
    let text = super::to_json(obs);
    assert!(text.contains(r#""value":5.40"#), "{text}");
    assert_eq!(obs["valueQuantity"]["system"], "http://unitsofmeasure.org");
    assert_eq!(obs["interpretation"][0]["coding"][0]["code"], "H");
    assert_eq!(obs["effectiveDateTime"], "2024-03-01T12:00:00-05:00");
}

#[test]
fn a_quality_control_result_is_never_filed_under_the_patient() {
    let b = render(&[
        MSH_ORU,
        PID,
        "OBR|1|P1|F1|2345-7^Glucose^LN|||20240301120000",
        "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L^^UCUM|||||F",
        "SPM|1|S1||SER^Serum^HL70487|||||||Q^Control specimen^HL70369",
    ]);
    for kind in ["Observation", "DiagnosticReport", "Specimen"] {
        for (r, _) in of_type(&b, kind) {
            assert!(r.get("subject").is_none(), "{kind} has a subject");
        }
    }
}

#[test]
fn a_merge_links_the_survivor_to_the_old_patient_without_rewriting_it() {
    let b = render(&[
        "MSH|^~\\&|ADT|HOSP|EHR|CLINIC|20240301123400||ADT^A40^ADT_A39|C2|P|2.5.1",
        "EVN|A40|20240301123400",
        "PID|1||222^^^HOSP^MR||Doe^Jane",
        "MRG|111^^^HOSP^MR",
    ]);
    let patients = of_type(&b, "Patient");
    assert_eq!(patients.len(), 1, "the old patient is not written");
    let (survivor, request) = patients[0];
    assert_eq!(request["method"], "PUT", "ADT is the registry's voice");
    assert_eq!(survivor["link"][0]["type"], "replaces");
    assert_eq!(survivor["link"][0]["other"]["identifier"]["value"], "111");
}

#[test]
fn a_dose_not_given_or_deleted_never_poses_as_given() {
    let base = [
        "MSH|^~\\&|EHR|CLINIC|IIS|STATE|20240301123400||VXU^V04^VXU_V04|C3|P|2.5.1",
        PID,
        "ORC|RE||9999^IIS",
    ];
    let refused = [
        &base[..],
        &["RXA|0|1|20240301||03^MMR^CVX|999||||||||||||00^Parental decision^NIP002||NA"],
    ]
    .concat();
    let b = render(&refused);
    let (dose, request) = of_type(&b, "Immunization")[0];
    assert_eq!(dose["status"], "not-done");
    assert_eq!(dose["statusReason"]["coding"][0]["code"], "00");
    assert!(request["url"].as_str().unwrap().ends_with("|9999"));
    let deleted = [
        &base[..],
        &["RXA|0|1|20240301||03^MMR^CVX|999||||||||||||||CP|D"],
    ]
    .concat();
    let b = render(&deleted);
    let (dose, _) = of_type(&b, "Immunization")[0];
    assert_eq!(dose["status"], "entered-in-error");
}

#[test]
fn a_partial_record_tags_every_resource_and_names_the_gap_without_its_value() {
    let b = render(&[
        MSH_ORU,
        PID,
        "ZPI|1|SECRET-VALUE",
        "OBR|1|P1|F1|2345-7^Glucose^LN",
        "OBX|1|NM|2345-7^Glucose^LN||5.4|||||||F",
    ]);
    for entry in b["entry"].as_array().unwrap() {
        let tags = entry["resource"]["meta"]["tag"].as_array().unwrap();
        assert!(
            tags.iter().any(|t| t["code"] == "partial"),
            "{}",
            entry["resource"]["resourceType"]
        );
    }
    let (provenance, _) = of_type(&b, "Provenance")[0];
    let text = provenance.to_string();
    assert!(text.contains("ZPI segment"), "{text}");
    assert!(
        !text.contains("SECRET-VALUE"),
        "a value leaked into the Provenance"
    );
    let targets = provenance["target"].as_array().unwrap().len();
    assert_eq!(targets, b["entry"].as_array().unwrap().len() - 1);
}

#[test]
fn a_complete_record_has_no_provenance_and_no_partial_tag() {
    let b = render(&[
        MSH_ORU,
        PID,
        "OBR|1|P1|F1|2345-7^Glucose^LN",
        "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L^^UCUM|||||F",
    ]);
    assert!(of_type(&b, "Provenance").is_empty(), "{b}");
    assert!(!b.to_string().contains("\"partial\""));
}
