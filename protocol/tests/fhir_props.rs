//! Properties of the FHIR rendering over the corpus records with any
//! record ids and receive times: rendering twice gives the same bytes;
//! the keys a bundle scopes to its record (`urn:uuid:<record id>`) and its
//! entry URLs never meet another record's; within a bundle, no two
//! entries ask a server for the same conditional operation.

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use hl7edge_protocol::fhir::{self, Origin};
use hl7edge_protocol::normalize::mapping::{MappingTable, MappingVersion};
use hl7edge_protocol::record::Record;
use proptest::prelude::*;
use serde_json::Value;

fn records() -> &'static [Record] {
    static RECORDS: OnceLock<Vec<Record>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        common::sample_files()
            .iter()
            .filter_map(|p| common::record_of(p))
            .collect()
    })
}

fn version() -> &'static MappingVersion {
    static TABLE: OnceLock<MappingTable> = OnceLock::new();
    TABLE.get_or_init(MappingTable::empty).version()
}

fn render(record: &Record, id: u128, at: i64) -> Value {
    let origin = Origin {
        record_id: uuid::Uuid::from_u128(id),
        received_at_ms: at,
        gateway: "acme/clinic/gw1",
        source: "lab",
        mapping_version: version(),
    };
    fhir::bundle(record, &origin)
}

/// The record-scoped identifiers (and tags) and the entry URLs of a bundle.
fn scoped(bundle: &Value, id: u128) -> BTreeSet<String> {
    let own = format!("urn:uuid:{}", uuid::Uuid::from_u128(id));
    let mut out = BTreeSet::new();
    for entry in bundle["entry"].as_array().into_iter().flatten() {
        out.insert(entry["fullUrl"].as_str().unwrap().to_owned());
        let request = &entry["request"];
        let search = request["ifNoneExist"]
            .as_str()
            .or_else(|| request["url"].as_str())
            .unwrap();
        let escaped = own.replace(':', "%3A");
        if search.contains(&escaped) {
            out.insert(format!("{}?{search}", request["url"]));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn rendering_twice_gives_the_same_bytes(i in any::<prop::sample::Index>(), id in any::<u128>(), at in 0i64..4_102_444_800_000) {
        let record = &records()[i.index(records().len())];
        let a = fhir::to_json(&render(record, id, at));
        let b = fhir::to_json(&render(record, id, at));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn the_record_scoped_keys_of_two_records_never_meet(
        i in any::<prop::sample::Index>(),
        j in any::<prop::sample::Index>(),
        a in any::<u128>(),
        b in any::<u128>(),
    ) {
        prop_assume!(a != b);
        let records = records();
        let first = scoped(&render(&records[i.index(records.len())], a, 0), a);
        let second = scoped(&render(&records[j.index(records.len())], b, 0), b);
        prop_assert!(first.is_disjoint(&second), "{:?}", first.intersection(&second).collect::<Vec<_>>());
    }
}

#[test]
fn no_bundle_asks_twice_for_one_conditional_operation() {
    for (n, record) in records().iter().enumerate() {
        let bundle = render(record, n as u128 + 1, 0);
        let mut seen = BTreeSet::new();
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            let r = &entry["request"];
            let op = format!("{} {} {}", r["method"], r["url"], r["ifNoneExist"]);
            assert!(seen.insert(op.clone()), "record {n}: {op} twice");
        }
    }
}

#[test]
fn every_resource_names_its_record_and_the_mapping_version() {
    for (n, record) in records().iter().enumerate() {
        let id = n as u128 + 1;
        let bundle = render(record, id, 0);
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            let meta = &entry["resource"]["meta"];
            assert_eq!(
                meta["source"],
                format!("urn:uuid:{}", uuid::Uuid::from_u128(id))
            );
            let tags: Vec<&str> = meta["tag"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|t| t["system"].as_str())
                .collect();
            assert!(tags.contains(&fhir::MAPPING_TAG) && tags.contains(&fhir::RENDERER_TAG));
            let partial = !record.issues.is_empty() || !record.not_carried.is_empty();
            if partial {
                assert!(
                    tags.contains(&fhir::FIDELITY_TAG),
                    "record {n}: a partial record's resource poses as complete"
                );
            }
        }
    }
}
