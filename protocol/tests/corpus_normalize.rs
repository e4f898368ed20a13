//! Every sample message goes through parse → normalize → postcard encode →
//! decode → JSON without a panic, and every ORU yields its observations.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::hl7::validate::validate;
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, normalize};
use hl7edge_protocol::record::{Body, Record};

#[test]
fn every_sample_message_normalizes_encodes_and_decodes() {
    let files = common::sample_files();
    assert!(!files.is_empty(), "no sample messages found");
    let (mut normalized, mut rejected, mut orus) = (0, 0, 0);
    for path in &files {
        let raw = std::fs::read(path).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| check(path, &raw)));
        match outcome {
            Ok(Outcome::Normalized { oru }) => {
                normalized += 1;
                orus += usize::from(oru);
            }
            Ok(Outcome::Rejected) => rejected += 1,
            Err(_) => panic!("panicked on {}", path.display()),
        }
    }
    println!("{normalized} normalized ({orus} ORU), {rejected} rejected by the parser");
    assert!(orus >= 2, "the PCD-01 samples at least are ORUs");
}

enum Outcome {
    Normalized { oru: bool },
    Rejected,
}

fn check(path: &Path, raw: &[u8]) -> Outcome {
    let Ok(msg) = Message::parse(raw) else {
        return Outcome::Rejected;
    };
    let tz = jiff::tz::TimeZone::get("America/New_York").unwrap_or(jiff::tz::TimeZone::UTC);
    let mapping = MappingTable::empty();
    let ctx = Context {
        time_zone: &tz,
        mapping: &mapping,
    };
    let issues = validate(&msg);
    let carried = issues.len();
    let out = normalize(&msg, issues, &ctx);
    assert!(out.record.issues.len() >= carried);
    let bytes = postcard::to_allocvec(&out.record).unwrap();
    let back: Record = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(
        back,
        out.record,
        "postcard round trip of {}",
        path.display()
    );
    let json = serde_json::to_string(&out.record).unwrap();
    assert!(json.starts_with("{\"header\""));
    for (_, code) in &out.unmapped {
        assert!(
            !code.is_empty(),
            "empty unmapped code in {}",
            path.display()
        );
    }
    let oru = msg.message_type().code == "ORU";
    if oru {
        let Body::Observations(report) = &out.record.body else {
            panic!("ORU without observations body: {}", path.display());
        };
        let sent = msg.segments_named("OBX").count();
        let got: usize = report.orders.iter().map(|g| g.observations.len()).sum();
        assert_eq!(got, sent, "observations of {}", path.display());
        assert!(
            !report.orders.is_empty(),
            "ORU without groups: {}",
            path.display()
        );
    }
    Outcome::Normalized { oru }
}
