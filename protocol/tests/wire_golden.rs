//! Golden-byte tests: the wire encoding is pinned byte for byte.
//!
//! If a change to the record or envelope types makes these fail, the wire
//! format changed. That is allowed only deliberately: bump
//! `wire::SCHEMA_VERSION` when old decoders cannot read the new form, then
//! regenerate with `UPDATE_GOLDEN=1 cargo test -p hl7edge-protocol --test
//! wire_golden` and review the diff of the `.bin` files.

use std::path::PathBuf;

use hl7edge_protocol::hl7::{ErrorCode, Issue, Location};
use hl7edge_protocol::normalize::coding_system::CodingSystem;
use hl7edge_protocol::normalize::mapping::MappingVersion;
use hl7edge_protocol::record::*;
use hl7edge_protocol::wire::{Entry, Envelope, SCHEMA_VERSION, StoredRecord, WireError};
use uuid::Uuid;

fn ts(utc_ms: i64, precision: Precision) -> Timestamp {
    Timestamp {
        utc_ms,
        precision,
        offset_minutes: 60,
        zone_assumed: false,
    }
}

fn glucose() -> Observation {
    Observation {
        code: Coded {
            original: Coding {
                code: "GLU".into(),
                display: Some("Glucose".into()),
                system: CodingSystem::Local("99LAB".into()),
            },
            alternate: None,
            standard: Standard::Mapped(Coding {
                code: "2345-7".into(),
                display: None,
                system: CodingSystem::Loinc,
            }),
        },
        sub_id: None,
        value: Value::Quantity(Quantity {
            value: Decimal {
                mantissa: 112,
                scale: 0,
            },
            unit: Some(Unit {
                ucum: Some("mg/dL".into()),
                original: None,
            }),
            converted: None,
        }),
        reference_range: Some(ReferenceRange {
            low: Some(Decimal {
                mantissa: 70,
                scale: 0,
            }),
            high: Some(Decimal {
                mantissa: 99,
                scale: 0,
            }),
            text: None,
        }),
        flags: vec!["H".into()],
        status: ResultStatus::Final,
        observed_at: None,
        equipment: vec![],
        method: None,
    }
}

fn sample_envelope() -> Envelope {
    let record = Record {
        header: Header {
            message_code: "ORU".into(),
            trigger_event: "R01".into(),
            control_id: "MSG000123".into(),
            version: "2.5.1".into(),
            sending_application: "COBAS".into(),
            sending_facility: "MAINLAB".into(),
            message_time: Some(ts(1_795_345_300_000, Precision::Second)),
            processing: Processing::Production,
        },
        patient: Some(Patient {
            identifiers: vec![Identifier {
                value: "4711".into(),
                authority: Some("CLINIC12".into()),
                kind: Some("MR".into()),
            }],
            name: None,
            birth_date: Some(ts(-170_000_000_000, Precision::Day)),
            sex: Some("F".into()),
        }),
        body: Body::Observations(ObservationReport {
            orders: vec![ObservationGroup {
                placer_order: Some("ORD-88412".into()),
                filler_order: None,
                service: None,
                observed_at: Some(ts(1_795_341_000_000, Precision::Second)),
                reported_at: None,
                status: Some("F".into()),
                observations: vec![glucose()],
            }],
        }),
        issues: vec![Issue::warning(
            ErrorCode::DataType,
            Location::segment("OBX", 6).field(14),
            "OBX-14 is not a valid date/time",
        )],
    };
    Envelope::new(
        "acme/clinic-12/gw-0001",
        "lab",
        vec![Entry {
            id: Uuid::from_u128(0x0193_4f6a_1b2c_7d3e_8f40_1234_5678_9abc),
            received_at_ms: 1_795_345_301_234,
            mapping_version: MappingVersion {
                declared: Some("2026-03-lab-v4".into()),
                hash: [1, 2, 3, 4, 5, 6, 7, 8],
            },
            record,
            raw: None,
        }],
    )
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

#[test]
fn envelope_encoding_matches_the_golden_file() {
    let bytes = sample_envelope().encode().unwrap();
    let path = golden("envelope_v2.bin");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    let expected = std::fs::read(&path).expect("golden file missing: run with UPDATE_GOLDEN=1");
    assert_eq!(
        bytes, expected,
        "the wire encoding changed (see the module doc)"
    );
}

#[test]
fn golden_file_decodes_to_the_same_envelope() {
    let bytes = std::fs::read(golden("envelope_v2.bin")).unwrap();
    assert_eq!(Envelope::decode(&bytes).unwrap(), sample_envelope());
}

#[test]
fn an_unknown_schema_version_is_refused_clearly() {
    // 1 is the retired schema (records in postcard's derived form): it must
    // be named, not misread as the compact form.
    for version in [1u8, 9] {
        let mut bytes = sample_envelope().encode().unwrap();
        bytes[0] = version;
        match Envelope::decode(&bytes) {
            Err(WireError::UnknownSchema { found, supported }) => {
                assert_eq!((found, supported), (u16::from(version), SCHEMA_VERSION))
            }
            other => panic!("expected UnknownSchema, got {other:?}"),
        }
        let text = Envelope::decode(&bytes).unwrap_err().to_string();
        assert!(
            text.contains(&format!("version {version}")) && text.contains("upgrade"),
            "{text}"
        );
    }
}

#[test]
fn a_stored_record_carries_its_schema_version() {
    let entry = sample_envelope().entries.remove(0);
    let stored = StoredRecord {
        mapping_version: entry.mapping_version,
        record: entry.record,
    };
    let mut bytes = stored.encode().unwrap();
    assert_eq!(StoredRecord::decode(&bytes).unwrap(), stored);
    // A row queued by a build with another record layout is refused by
    // version, not misread as this layout.
    bytes[0] = 9;
    match StoredRecord::decode(&bytes) {
        Err(WireError::UnknownSchema {
            found: 9,
            supported,
        }) => {
            assert_eq!(supported, SCHEMA_VERSION)
        }
        other => panic!("expected UnknownSchema, got {other:?}"),
    }
}

#[test]
fn truncated_payloads_are_malformed_not_panics() {
    let bytes = sample_envelope().encode().unwrap();
    for cut in 0..bytes.len() {
        assert!(Envelope::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn json_rendering_is_readable() {
    let json = serde_json::to_value(sample_envelope()).unwrap();
    assert_eq!(
        json["entries"][0]["id"],
        "01934f6a-1b2c-7d3e-8f40-123456789abc"
    );
    assert_eq!(
        json["entries"][0]["record"]["header"]["message_code"],
        "ORU"
    );
}
