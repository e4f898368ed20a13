use std::num::NonZeroUsize;

use hl7edge_protocol::record::{Body, GenericMessage, Header, Processing};
use hl7edge_protocol::wire::{Entry, Envelope};

use super::*;

const TOPIC: &str = "hl7edge/v1/acme/clinic-12/gw-0001/records/ZZZ_Z01";

fn entry(id: u128, raw: Option<&[u8]>) -> Entry {
    Entry {
        id: Uuid::from_u128(id),
        sequence: u64::try_from(id).ok(),
        received_at_ms: 1_795_345_301_234,
        mapping_version: MappingVersion {
            declared: Some("lab-v4".into()),
            hash: [0xab; 8],
        },
        record: Record {
            header: Header {
                message_code: "ZZZ".into(),
                trigger_event: "Z01".into(),
                control_id: "C1".into(),
                version: "2.5.1".into(),
                sending_application: "APP".into(),
                sending_facility: "FAC".into(),
                message_time: None,
                processing: Processing::Production,
                ..Header::default()
            },
            patient: None,
            body: Body::Generic(GenericMessage {
                delimiters: "|^~\\&".into(),
                segments: vec![],
            }),
            ..Record::default()
        },
        raw: raw.map(<[u8]>::to_vec),
    }
}

fn payload(entries: Vec<Entry>) -> Vec<u8> {
    Envelope::new("acme/clinic-12/gw-0001", "lab", entries)
        .encode()
        .unwrap()
}

fn dedupe() -> Dedupe {
    Dedupe::new(NonZeroUsize::new(100).unwrap())
}

#[test]
fn each_record_becomes_one_json_line_with_its_delivery_facts() {
    let out = lines(
        "hl7edge/v1",
        TOPIC,
        &payload(vec![entry(1, None), entry(2, None)]),
        &mut dedupe(),
        Format::Record { raw: false },
    )
    .unwrap();
    assert_eq!(out.lines.len(), 2);
    assert_eq!(out.duplicates, 0);
    let first: serde_json::Value = serde_json::from_str(&out.lines[0]).unwrap();
    assert_eq!(first["gateway"], "acme/clinic-12/gw-0001");
    assert_eq!(first["source"], "lab");
    assert_eq!(first["message_type"], "ZZZ_Z01");
    assert_eq!(first["id"], "00000000-0000-0000-0000-000000000001");
    assert_eq!(first["received_at"], "2026-11-22T11:01:41.234Z");
    assert_eq!(first["record"]["header"]["control_id"], "C1");
    assert!(first.get("raw_hl7").is_none());
    assert!(!out.lines[0].contains('\n'), "one line per record");
}

#[test]
fn a_resent_record_is_dropped_and_counted() {
    let mut d = dedupe();
    lines(
        "hl7edge/v1",
        TOPIC,
        &payload(vec![entry(1, None)]),
        &mut d,
        Format::Record { raw: false },
    )
    .unwrap();
    let again = lines(
        "hl7edge/v1",
        TOPIC,
        &payload(vec![entry(1, None), entry(3, None)]),
        &mut d,
        Format::Record { raw: false },
    )
    .unwrap();
    assert_eq!(again.duplicates, 1);
    assert_eq!(again.lines.len(), 1);
    assert!(again.lines[0].contains("00000000-0000-0000-0000-000000000003"));
}

#[test]
fn raw_hl7_is_shown_only_when_asked_for() {
    let p = payload(vec![entry(1, Some(b"MSH|^~\\&|APP"))]);
    let hidden = lines(
        "hl7edge/v1",
        TOPIC,
        &p,
        &mut dedupe(),
        Format::Record { raw: false },
    )
    .unwrap();
    assert!(!hidden.lines[0].contains("raw_hl7"));
    let shown = lines(
        "hl7edge/v1",
        TOPIC,
        &p,
        &mut dedupe(),
        Format::Record { raw: true },
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&shown.lines[0]).unwrap();
    assert_eq!(v["raw_hl7"], "MSH|^~\\&|APP");
}

#[test]
fn an_undecodable_payload_names_its_topic() {
    let err = lines(
        "hl7edge/v1",
        TOPIC,
        b"\x09garbage",
        &mut dedupe(),
        Format::Record { raw: false },
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(TOPIC) && text.contains("upgrade"),
        "{text}"
    );
}

#[test]
fn an_observation_record_shows_every_value_in_full() {
    use hl7edge_protocol::hl7::Message;
    use hl7edge_protocol::normalize::mapping::MappingTable;
    use hl7edge_protocol::normalize::{Context, normalize};

    let hl7 = b"MSH|^~\\&|LAB|FAC|HUB|HUB|20260309140000+0100||ORU^R01|M1|P|2.5.1\r\
PID|1||4711^^^CLINIC12^MR||DOE^JANE||19901215|F\r\
OBR|1|ORD001||CBC^Blood count^L|||20260309100000+0100\r\
OBX|1|NM|6690-2^Leukocytes^LN||7.50|10*3/uL|4.5-11.0|N|||F|||20260309100000+0100\r";
    let tz = jiff::tz::TimeZone::UTC;
    let mapping = MappingTable::empty();
    let ctx = Context {
        time_zone: &tz,
        mapping: &mapping,
    };
    let msg = Message::parse(hl7).unwrap();
    let mut e = entry(7, None);
    e.record = normalize(&msg, Vec::new(), &ctx).record;
    let out = lines(
        "hl7edge/v1",
        TOPIC,
        &payload(vec![e]),
        &mut dedupe(),
        Format::Record { raw: false },
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out.lines[0]).unwrap();
    let record = &v["record"];
    assert_eq!(record["patient"]["identifiers"][0]["authority"], "CLINIC12");
    assert_eq!(record["patient"]["identifiers"][0]["kind"], "MR");
    let order = &record["body"]["Observations"]["orders"][0];
    assert_eq!(order["placer_order"], "ORD001");
    let obx = &order["observations"][0];
    assert_eq!(obx["code"]["original"]["code"], "6690-2");
    assert_eq!(obx["code"]["original"]["display"], "Leukocytes");
    assert_eq!(obx["value"]["Quantity"]["value"], "7.50");
    assert_eq!(obx["value"]["Quantity"]["unit"]["ucum"], "10*3/uL");
    assert_eq!(obx["reference_range"]["high"], "11.0");
    assert_eq!(obx["flags"][0], "N");
    // An OBX time equal to the order's is not repeated (see the ORU
    // normalizer); the order's keeps its offset and precision.
    assert!(obx["observed_at"].is_null());
    assert_eq!(order["observed_at"]["offset_minutes"], 60);
    assert_eq!(order["observed_at"]["precision"], "Second");
}

#[test]
fn records_before_a_bad_one_are_written_and_the_bad_one_ends_the_payload() {
    let mut p = payload(vec![entry(1, None), entry(2, None)]);
    // Claim a third entry whose bytes are not there.
    let header = payload(vec![]);
    let count_at = header.len() - 1;
    assert_eq!(p[count_at], 2);
    p[count_at] = 3;
    let mut out = Vec::new();
    let err = write_lines(
        "hl7edge/v1",
        TOPIC,
        &p,
        &mut dedupe(),
        Format::Record { raw: false },
        &mut out,
    )
    .unwrap_err();
    assert!(matches!(err, LineError::Wire { written: 2, .. }), "{err:?}");
    assert_eq!(String::from_utf8_lossy(&out).lines().count(), 2);
}

#[test]
fn an_envelope_naming_another_gateway_than_its_topic_prints_nothing() {
    let spoofed = Envelope::new("acme/clinic-13/gw-0001", "lab", vec![entry(1, None)])
        .encode()
        .unwrap();
    let mut out = Vec::new();
    let mut seen = dedupe();
    let err = write_lines(
        "hl7edge/v1",
        TOPIC,
        &spoofed,
        &mut seen,
        Format::Record { raw: false },
        &mut out,
    )
    .unwrap_err();
    assert!(matches!(err, LineError::GatewayMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("names gateway \"acme/clinic-13/gw-0001\""),
        "{err}"
    );
    assert!(out.is_empty());
    assert!(seen.is_empty(), "its ids are not remembered either");
    let elsewhere = "hl7edge/v1/acme/clinic-12/gw-0001/status";
    let err = write_lines(
        "hl7edge/v1",
        elsewhere,
        &payload(vec![entry(2, None)]),
        &mut dedupe(),
        Format::Record { raw: false },
        &mut out,
    )
    .unwrap_err();
    assert!(matches!(err, LineError::NotARecordsTopic { .. }), "{err}");
    assert!(out.is_empty());
}

#[test]
fn a_claim_certificates_records_under_the_reserved_org_print_nothing() {
    // The envelope names the topic's gateway, so only the reserved organization stops it.
    let forged = Envelope::new("enroll/claim-a/records", "lab", vec![entry(1, None)])
        .encode()
        .unwrap();
    let mut out = Vec::new();
    let mut seen = dedupe();
    let err = write_lines(
        "hl7edge/v1",
        "hl7edge/v1/enroll/claim-a/records/records/ORU_R01",
        &forged,
        &mut seen,
        Format::Record { raw: false },
        &mut out,
    )
    .unwrap_err();
    assert!(matches!(err, LineError::ReservedOrg { .. }), "{err}");
    assert!(err.to_string().contains("reserved for enrollment"), "{err}");
    assert!(out.is_empty());
    assert!(seen.is_empty(), "its ids are not remembered either");
}

#[test]
fn with_fhir_each_record_becomes_one_transaction_bundle_line() {
    let out = lines(
        "hl7edge/v1",
        TOPIC,
        &payload(vec![entry(1, Some(b"MSH|^~\\&|APP")), entry(2, None)]),
        &mut dedupe(),
        Format::Fhir,
    )
    .unwrap();
    assert_eq!(out.lines.len(), 2);
    let first: serde_json::Value = serde_json::from_str(&out.lines[0]).unwrap();
    assert_eq!(first["resourceType"], "Bundle");
    assert_eq!(first["type"], "transaction");
    assert!(!out.lines[0].contains("MSH"), "never the raw message");
}
