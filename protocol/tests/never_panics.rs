//! Property tests: nothing a sender can put in a frame makes the gateway's
//! message path panic, and every message gets exactly one ACK in original
//! mode that answers its control id, except an incoming ACK, which gets none.

use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::hl7::ack::{self, AckHeader, AckMode, Outcome, ack_code_of};
use hl7edge_protocol::hl7::validate::{self, Validation};
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, normalize};
use proptest::prelude::*;

/// Runs the full path and returns the ACK bytes (`None` for an ACK).
fn process(raw: &[u8]) -> Option<Vec<u8>> {
    let tz = jiff::tz::TimeZone::UTC;
    let mapping = MappingTable::empty();
    let (header, outcome) = match Message::parse(raw) {
        Ok(msg) => {
            let v = Validation::of(&msg);
            if v.is_acceptable() {
                let ctx = Context {
                    time_zone: &tz,
                    mapping: &mapping,
                };
                let out = normalize(&msg, v.issues.clone(), &ctx);
                let bytes = postcard::to_allocvec(&out.record).unwrap();
                assert!(!bytes.is_empty());
            }
            let outcome = if v.is_acceptable() {
                Outcome::Accepted { issues: v.issues }
            } else {
                Outcome::Error { issues: v.issues }
            };
            (AckHeader::from_message(&msg), outcome)
        }
        Err(e) => (
            AckHeader::scrape(raw),
            Outcome::Error {
                issues: vec![validate::parse_error_issue(&e)],
            },
        ),
    };
    let acks = ack::build_acks(
        &header,
        &outcome,
        AckMode::Original,
        "20260101000000+0000",
        || "ACK1".to_string(),
    );
    if header.is_acknowledgment() {
        assert!(acks.is_empty(), "an ACK is never acknowledged");
        return None;
    }
    assert_eq!(acks.len(), 1);
    acks.into_iter().next().map(|(_, b)| b)
}

/// HL7-shaped text: segments of delimiter-rich fields, sometimes broken.
fn hl7ish() -> impl Strategy<Value = Vec<u8>> {
    let field = "[A-Za-z0-9 ^~&\\\\.\"+-]{0,12}";
    let segment = (
        prop::sample::select(vec![
            "PID", "PV1", "OBR", "OBX", "ORC", "RXA", "EVN", "MRG", "ZXX", "NTE", "SPM",
        ]),
        prop::collection::vec(field, 0..20),
    )
        .prop_map(|(id, fields)| format!("{id}|{}", fields.join("|")));
    (
        prop::sample::select(vec![
            "ORU^R01", "ADT^A01", "ADT^A40", "ORM^O01", "OML^O21", "VXU^V04", "SIU^S12", "", "ACK",
        ]),
        prop::sample::select(vec!["2.1", "2.3", "2.5.1", "2.8", "", "9"]),
        prop::collection::vec(segment, 0..12),
        prop::sample::select(vec!["\r", "\n", "\r\n"]),
    )
        .prop_map(|(kind, version, segments, eol)| {
            let mut m = format!("MSH|^~\\&|APP|FAC|GW|HUB|20260102030405||{kind}|C123|P|{version}");
            for s in segments {
                m.push_str(eol);
                m.push_str(&s);
            }
            m.into_bytes()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_and_always_get_an_ack(raw in prop::collection::vec(any::<u8>(), 0..600)) {
        let Some(ack) = process(&raw) else {
            return Ok(());
        };
        let summary = ack_code_of(&ack).expect("the ACK itself parses");
        prop_assert!(!summary.code.is_positive() || Message::parse(&raw).is_ok());
    }

    #[test]
    fn hl7_shaped_messages_are_answered_for_their_control_id(raw in hl7ish()) {
        let Some(ack) = process(&raw) else {
            prop_assert!(raw.windows(5).any(|w| w == b"|ACK|"));
            return Ok(());
        };
        let summary = ack_code_of(&ack).expect("the ACK parses");
        prop_assert_eq!(summary.acknowledged_id.as_str(), "C123");
    }
}

/// Mapping-file-shaped text: a header and rows of the kinds and columns a
/// site writes, sometimes wrong.
fn mapping_text() -> impl Strategy<Value = String> {
    let cell = "[A-Za-z0-9 ./\\[\\]{}*%#\"-]{0,10}";
    let kind = prop::sample::select(vec!["code", "unit", "system", "x", ""]);
    let row = (kind, prop::collection::vec(cell, 0..8))
        .prop_map(|(k, cells)| format!("{k},{}", cells.join(",")));
    let header = prop::sample::select(vec![
        "kind,local_system,local_code,target_system,target_code",
        "kind,local_system,local_code,target_system,target_code,target_display",
        "kind,local_system,local_code,target_system,target_code,target_display,target_unit",
        "kind,local_system,local_code,target_system,target_code,target_unit,target_display",
        "kind,local_system",
    ]);
    (header, prop::collection::vec(row, 0..12))
        .prop_map(|(h, rows)| format!("{h}\n{}\n", rows.join("\n")))
}

proptest! {
    #[test]
    fn a_mapping_file_never_panics_the_reader_and_a_loaded_one_never_panics_normalization(
        text in mapping_text(),
        obx in "[A-Za-z0-9.^/\\[\\]{}*%-]{0,16}",
    ) {
        if let Ok(table) = MappingTable::parse(&text) {
            let msg = format!(
                "MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5\rPID|1||1\rOBR|1\rOBX|1|NM|{obx}||5.4|{obx}\r"
            );
            let parsed = Message::parse(msg.as_bytes()).unwrap();
            let tz = jiff::tz::TimeZone::UTC;
            let ctx = Context { time_zone: &tz, mapping: &table };
            let _ = normalize(&parsed, Vec::new(), &ctx);
        }
    }
}
