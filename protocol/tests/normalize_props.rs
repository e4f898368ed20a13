//! Property: whatever a sender puts in the segments the normalizers read,
//! normalization returns a record (no panic) that survives a postcard round
//! trip (the compact form of wire schema 3: compact(record) decodes to the
//! same record), and its warnings never quote the message.

use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, normalize};
use hl7edge_protocol::record::Record;
use proptest::prelude::*;

const TYPES: [&str; 9] = [
    "ORU^R01^ORU_R01",
    "OUL^R22^OUL_R22",
    "ADT^A01",
    "ADT^A40^ADT_A39",
    "ADT^A45^ADT_A45",
    "ORM^O01",
    "OML^O21",
    "VXU^V04",
    "SIU^S12",
];
const IDS: [&str; 16] = [
    "OBR", "OBX", "PID", "PV1", "ORC", "RXA", "RXR", "MRG", "EVN", "SPM", "TQ1", "NTE", "NK1",
    "SFT", "PD1", "ZXX",
];

/// A field made of the characters that matter to HL7: delimiters, escape,
/// signs, digits, comparators, quotes and a marker for leaks.
fn field() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r#"[0-9A-Z.+\-<>=:^~&\\" ]{0,24}|SECRET[0-9]{3}"#).unwrap()
}

fn segment() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(IDS.to_vec()),
        // Past OBX-25, OBR-29, PV1-45 and PID-30: every field the record reads.
        proptest::collection::vec(field(), 0..48),
    )
        .prop_map(|(id, fields)| format!("{id}|{}", fields.join("|")))
}

fn message() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(TYPES.to_vec()),
        field(),
        proptest::collection::vec(segment(), 0..12),
    )
        .prop_map(|(kind, time, segments)| {
            let mut text = format!("MSH|^~\\&|A|B|C|D|{time}||{kind}|1|P|2.5.1");
            for s in segments {
                text.push('\r');
                text.push_str(&s);
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_message_normalizes_and_round_trips(text in message()) {
        let msg = Message::parse(text.as_bytes()).unwrap();
        let tz = jiff::tz::TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
        let mapping = MappingTable::empty();
        let out = normalize(&msg, Vec::new(), &Context { time_zone: &tz, mapping: &mapping });
        let bytes = postcard::to_allocvec(&out.record).unwrap();
        let back: Record = postcard::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &out.record);
        for issue in &out.record.issues {
            prop_assert!(!issue.message.contains("SECRET"), "{}", issue.message);
        }
    }
}
