//! Golden FHIR bundles: one message of each type the rendering maps, its
//! bundle pinned byte for byte (pretty-printed) in `tests/golden/fhir/`.
//! A change to the mapping shows up here as a diff to review;
//! `UPDATE_GOLDEN=1 cargo test -p hl7edge-protocol --test fhir_golden`
//! rewrites them.

mod common;

use std::path::Path;

use hl7edge_protocol::fhir::{self, Origin};
use hl7edge_protocol::normalize::mapping::MappingTable;

/// (golden file, sample message) pairs.
const CASES: &[(&str, &str)] = &[
    (
        "oru_r01.json",
        "corpus/microsoft-fhir-converter/ORU-R01-01.hl7",
    ),
    (
        "adt_a01.json",
        "corpus/microsoft-fhir-converter/ADT-A01-02.hl7",
    ),
    (
        "adt_a40_merge.json",
        "corpus/microsoft-fhir-converter/ADT-A40-01.hl7",
    ),
    (
        "vxu_v04.json",
        "corpus/microsoft-fhir-converter/VXU-V04-01.hl7",
    ),
    ("orm_o01.json", "corpus/rethinkhealth-hl7v2/orm-o01.hl7"),
    ("oml_o21.json", "corpus/hapi-hl7v2/example_oml_o21__004.hl7"),
    ("pcd01_oru.json", "data/pcd01/vital-signs-monitor.hl7"),
];

#[test]
fn each_message_type_renders_to_its_pinned_bundle() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mapping = MappingTable::empty();
    let mut changed = Vec::new();
    for (n, (golden, sample)) in CASES.iter().enumerate() {
        let record = common::record_of(&here.join(sample)).expect(sample);
        let origin = Origin {
            record_id: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001 + n as u128),
            received_at_ms: 1_795_345_301_234,
            gateway: "acme/clinic-12/gw-0001",
            source: "lab",
            mapping_version: mapping.version(),
        };
        let bundle = fhir::bundle(&record, &origin);
        let mut text = serde_json::to_string_pretty(&fhir::Json(&bundle)).unwrap();
        text.push('\n');
        let path = here.join("golden/fhir").join(golden);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let pinned = std::fs::read_to_string(&path).unwrap_or_default();
        if pinned != text {
            changed.push(golden.to_string());
        }
    }
    assert!(
        changed.is_empty(),
        "bundles differ from the golden files {changed:?}: review the change and rewrite them \
         with UPDATE_GOLDEN=1 cargo test -p hl7edge-protocol --test fhir_golden"
    );
}
