//! Fuzzes everything the gateway does with a received frame: parse,
//! validate, normalize, encode and decode the record, render it as a FHIR
//! bundle, and build the ACK (also from a header scraped out of bytes that
//! do not parse).
//!
//! Checked: no panic anywhere; a stored record decodes to itself; in
//! original mode exactly one ACK is produced, except for a message that is
//! itself an ACK, which is never acknowledged.

#![no_main]

use hl7edge_protocol::fhir;
use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::hl7::ack::{self, AckHeader, AckMode, Outcome};
use hl7edge_protocol::hl7::validate::{self, Validation};
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{self, Context};
use hl7edge_protocol::wire::StoredRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tz = jiff::tz::TimeZone::UTC;
    let mapping = MappingTable::empty();
    let (header, outcome) = match Message::parse(data) {
        Ok(msg) => {
            for seg in msg.segments() {
                for (_, field) in seg.fields() {
                    for rep in field.repetitions() {
                        let _ = rep.component(2).map(|c| c.subcomponent(2).map(|s| s.text()));
                    }
                }
            }
            let _ = msg.get("PID-3[2].4.1");
            let validation = Validation::of(&msg);
            if validation.is_acceptable() {
                let ctx = Context { time_zone: &tz, mapping: &mapping };
                let normalized = normalize::normalize(&msg, validation.issues.clone(), &ctx);
                let stored = StoredRecord { mapping_version: mapping.version().clone(), record: normalized.record };
                let bytes = stored.encode().expect("records always encode");
                assert_eq!(StoredRecord::decode(&bytes).expect("own encoding decodes"), stored);
                let origin = fhir::Origin {
                    record_id: fhir::preview_record_id(data),
                    received_at_ms: 0,
                    gateway: "fuzz",
                    source: "fuzz",
                    mapping_version: mapping.version(),
                };
                let bundle = fhir::to_json(&fhir::bundle(&stored.record, &origin));
                assert_eq!(bundle, fhir::to_json(&fhir::bundle(&stored.record, &origin)));
            }
            let outcome = if validation.is_acceptable() {
                Outcome::Accepted { issues: validation.issues }
            } else {
                Outcome::Error { issues: validation.issues }
            };
            (AckHeader::from_message(&msg), outcome)
        }
        Err(e) => (AckHeader::scrape(data), Outcome::Error { issues: vec![validate::parse_error_issue(&e)] }),
    };
    let acks = ack::build_acks(&header, &outcome, AckMode::Original, "20260101000000+0000", || "ID1".to_string());
    if header.is_acknowledgment() {
        assert!(acks.is_empty(), "an ACK is never acknowledged");
    } else {
        assert_eq!(acks.len(), 1, "original mode always answers anything else once");
    }
});
