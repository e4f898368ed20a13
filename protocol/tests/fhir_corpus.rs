//! Every sample message renders to a FHIR R4 transaction bundle that
//! keeps the rendering's promises: deterministic bytes, every entry a
//! conditional create or update, unique entry URLs, no empty strings.
//! (Validation against the FHIR R4 models runs in the end-to-end tests,
//! `tests/tests/fhir_validate.rs`.)

mod common;

use hl7edge_protocol::fhir::{self, Origin};
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::record::Record;
use serde_json::Value;

fn records() -> Vec<(String, Record)> {
    common::sample_files()
        .iter()
        .filter_map(|path| Some((path.display().to_string(), common::record_of(path)?)))
        .collect()
}

fn origin(mapping: &hl7edge_protocol::normalize::mapping::MappingVersion, n: u128) -> Origin<'_> {
    Origin {
        record_id: uuid::Uuid::from_u128(n),
        received_at_ms: 1_700_000_000_000,
        gateway: "acme/clinic/gw1",
        source: "lab",
        mapping_version: mapping,
    }
}

#[test]
fn every_sample_renders_to_a_transaction_of_conditional_entries() {
    let mapping = MappingTable::empty();
    let records = records();
    assert!(records.len() >= 100);
    let mut dump = String::new();
    for (n, (path, record)) in records.iter().enumerate() {
        let o = origin(mapping.version(), n as u128 + 1);
        let bundle = fhir::bundle(record, &o);
        let text = fhir::to_json(&bundle);
        assert_eq!(
            text,
            fhir::to_json(&fhir::bundle(record, &o)),
            "{path}: not deterministic"
        );
        check(path, &bundle);
        dump.push_str(&text);
        dump.push('\n');
    }
    if let Some(out) = std::env::var_os("HL7EDGE_FHIR_DUMP") {
        std::fs::write(out, dump).unwrap();
    }
}

fn check(path: &str, bundle: &Value) {
    assert_eq!(bundle["type"], "transaction", "{path}");
    let mut urls = std::collections::HashSet::new();
    for entry in bundle["entry"].as_array().into_iter().flatten() {
        let url = entry["fullUrl"].as_str().unwrap();
        assert!(urls.insert(url.to_owned()), "{path}: {url} twice");
        let request = &entry["request"];
        match request["method"].as_str() {
            Some("PUT") => assert!(request["url"].as_str().unwrap().contains('?'), "{path}"),
            Some("POST") => assert!(request["ifNoneExist"].is_string(), "{path}"),
            other => panic!("{path}: method {other:?}"),
        }
        no_empty_strings(path, entry);
    }
}

fn no_empty_strings(path: &str, v: &Value) {
    match v {
        Value::String(s) => assert!(!s.trim().is_empty(), "{path}: empty string"),
        Value::Array(a) => {
            assert!(!a.is_empty(), "{path}: empty array");
            a.iter().for_each(|x| no_empty_strings(path, x));
        }
        Value::Object(o) => {
            assert!(!o.is_empty(), "{path}: empty object");
            o.values().for_each(|x| no_empty_strings(path, x));
        }
        _ => {}
    }
}
