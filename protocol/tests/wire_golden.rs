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
            text: None,
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
            converted: Some(Converted {
                value: Decimal {
                    mantissa: 112,
                    scale: 2,
                },
                unit: "g/L".into(),
                exact: true,
            }),
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
        ..Observation::default()
    }
}

/// The envelope `envelope_v2.bin` (written by schema 2) holds, as schema 3
/// reads it.
/// The glucose result as the released schema 2 wrote it: before unit
/// conversion, so without a converted value.
fn glucose_unconverted() -> Observation {
    let mut o = glucose();
    if let Value::Quantity(q) = &mut o.value {
        q.converted = None;
    }
    o
}

fn schema2_envelope() -> Envelope {
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
            ..Header::default()
        },
        patient: Some(Patient {
            identifiers: vec![Identifier {
                value: "4711".into(),
                authority: Some("CLINIC12".into()),
                kind: Some("MR".into()),
                ..Identifier::default()
            }],
            name: None,
            birth_date: Some(ts(-170_000_000_000, Precision::Day)),
            sex: Some("F".into()),
            ..Patient::default()
        }),
        body: Body::Observations(ObservationReport {
            orders: vec![ObservationGroup {
                placer_order: Some("ORD-88412".into()),
                filler_order: None,
                service: None,
                observed_at: Some(ts(1_795_341_000_000, Precision::Second)),
                reported_at: None,
                status: Some("F".into()),
                observations: vec![glucose_unconverted()],
                ..ObservationGroup::default()
            }],
        }),
        issues: vec![Issue::warning(
            ErrorCode::DataType,
            Location::segment("OBX", 6).field(14),
            "OBX-14 is not a valid date/time",
        )],
        ..Record::default()
    };
    Envelope::new(
        "acme/clinic-12/gw-0001",
        "lab",
        vec![Entry {
            id: Uuid::from_u128(0x0193_4f6a_1b2c_7d3e_8f40_1234_5678_9abc),
            sequence: None,
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

fn text(s: &str) -> Option<CompactString> {
    Some(s.into())
}

fn coded(code: &str, display: &str, system: CodingSystem) -> Coded {
    let standard = match system {
        CodingSystem::Local(_) | CodingSystem::Other(_) => Standard::Unmapped,
        _ => Standard::Original,
    };
    Coded {
        original: Coding {
            code: code.into(),
            display: text(display),
            system,
        },
        alternate: None,
        standard,
        text: None,
    }
}

/// A system as the normalizer names it: `HL7nnnn` is that HL7 table.
fn hl7(name: &str) -> CodingSystem {
    CodingSystem::from_hl7(name)
}

fn doctor(id: &str, family: &str) -> Practitioner {
    Practitioner {
        id: text(id),
        name: Some(PersonName {
            family: text(family),
            given: text("ANN"),
            prefix: text("Dr"),
            degree: text("MD"),
            ..PersonName::default()
        }),
        authority: text("NPI"),
        authority_id: text("2.16.840.1.113883.4.6"),
        kind: text("NPI"),
    }
}

fn lab() -> Organization {
    Organization {
        name: text("State Hygienic Laboratory"),
        id: text("16D0648109"),
        authority: text("CLIA"),
        authority_id: text("2.16.840.1.113883.4.7"),
        kind: text("XX"),
        address: Some(Address {
            street: text("2490 Crosspark Rd"),
            city: text("Coralville"),
            state: text("IA"),
            postal_code: text("52241"),
            country: text("USA"),
            kind: text("B"),
            ..Address::default()
        }),
        phones: vec![],
    }
}

fn note(words: &str) -> Note {
    Note {
        text: words.into(),
        source: text("L"),
        kind: Some(Box::new(coded("RE", "Remark", hl7("HL70364")))),
        author: None,
        written_at: Some(ts(1_795_345_000_000, Precision::Minute)),
    }
}

/// A result report with every schema-3 part of results: specimens (one a
/// control), parent links, timing, notes, performers, further values, a
/// series with channels, a unit on a text value, a patient with
/// demographics and next of kin, an encounter and "not carried" warnings.
fn report() -> Record {
    let isolate = Observation {
        code: coded(
            "600-7",
            "Bacteria identified in Blood by Culture",
            CodingSystem::Loinc,
        ),
        sub_id: text("1"),
        value: Value::Coded(coded(
            "3092008",
            "Staphylococcus aureus",
            CodingSystem::SnomedCt,
        )),
        more_values: vec![Value::Coded(coded(
            "112283007",
            "Escherichia coli",
            CodingSystem::SnomedCt,
        ))],
        status: ResultStatus::Final,
        producer: Some(Box::new(coded("16D0648109", "SHL", hl7("CLIA")))),
        observers: vec![doctor("1234", "SMITH")],
        analyzed_at: Some(ts(1_795_344_000_000, Precision::Second)),
        sites: vec![coded("LA", "Left arm", hl7("HL70163"))],
        instance_id: Some(Box::new(EntityId {
            id: "OBX-77".into(),
            authority: text("SHL"),
            authority_id: None,
        })),
        performing_organization: Some(Box::new(lab())),
        performing_director: Some(Box::new(doctor("5678", "JONES"))),
        specimen: Some(0),
        notes: vec![note("hemolyzed, potassium falsely high")],
        ..Observation::default()
    };
    let mut second = isolate.clone();
    second.sub_id = text("2");
    second.more_values = vec![];
    second.value = Value::Text(">17".into());
    second.unit = Some(Unit {
        ucum: text("umol/L"),
        original: None,
    });
    second.notes = vec![];
    second.instance_id = None;
    let waveform = Observation {
        code: coded("150452", "MDC_PULS_OXIM_PLETH", CodingSystem::Mdc),
        value: Value::Series(Series {
            values: ["1", "2.5", "-3", "4"]
                .iter()
                .map(|v| Decimal::parse(v).unwrap())
                .collect(),
            channels: 2,
            unit: Some(Unit {
                ucum: text("mV"),
                original: text("mv"),
            }),
        }),
        more_values: vec![Value::Time(ts(1_795_300_000_000, Precision::Day))],
        status: ResultStatus::Preliminary,
        ..Observation::default()
    };
    let blood = Specimen {
        placer_id: Some(EntityId {
            id: "S-1".into(),
            authority: text("CPOE"),
            authority_id: text("1.2.3.4"),
        }),
        filler_id: Some(EntityId {
            id: "88502218".into(),
            ..EntityId::default()
        }),
        kind: Some(coded("BLD", "Whole blood", hl7("HL70487"))),
        source_site: Some(coded("LA", "Left arm", hl7("HL70163"))),
        role: Some(coded("P", "Patient", hl7("HL70369"))),
        amount: Some(Box::new(Quantity {
            value: Decimal::parse("5").unwrap(),
            unit: Some(Unit {
                ucum: text("mL"),
                original: None,
            }),
            converted: None,
        })),
        collected_at: Some(ts(1_795_340_000_000, Precision::Minute)),
        received_at: Some(ts(1_795_341_000_000, Precision::Minute)),
        reject_reasons: vec![coded("RH", "Hemolysis", hl7("HL70490"))],
        conditions: vec![coded("HEM", "Hemolyzed", hl7("HL70493"))],
        notes: vec![note("drawn above IV")],
        ..Specimen::default()
    };
    let control = Specimen {
        role: Some(coded("Q", "Control specimen", hl7("HL70369"))),
        ..Specimen::default()
    };
    let culture = ObservationGroup {
        placer_order: text("ORD-88412"),
        filler_order: text("F-1"),
        service: Some(Box::new(coded(
            "600-7",
            "Blood culture",
            CodingSystem::Loinc,
        ))),
        observed_at: Some(ts(1_795_341_000_000, Precision::Second)),
        reported_at: Some(ts(1_795_345_000_000, Precision::Second)),
        status: text("F"),
        observations: vec![isolate, second, waveform],
        order_control: text("RE"),
        order_status: text("CM"),
        ordered_at: Some(ts(1_795_330_000_000, Precision::Second)),
        priority: text("S"),
        detail: Box::new(OrderDetail {
            placer_assigner: text("CPOE"),
            filler_assigner: text("LIS"),
            filler_assigner_id: text("2.16.840.1.114222.4.3.3.5.1.2"),
            other_placer_order: Some(Box::new(EntityId {
                id: "ORD-88412-B".into(),
                authority: text("CPOE"),
                authority_id: None,
            })),
            orderers: vec![doctor("1234", "SMITH")],
            ordering_facility: Some(Box::new(Organization {
                name: text("Clinic 12"),
                phones: vec![Telecom {
                    value: "+1 (515) 5550100".into(),
                    text: text("515-555-0100"),
                    use_code: text("WPN"),
                    equipment: text("PH"),
                }],
                ..Organization::default()
            })),
            category: text("MB"),
            parent_result: Some(Box::new(ParentResult {
                code: Some(coded("600-7", "Culture", CodingSystem::Loinc)),
                sub_id: text("1"),
                value: text("Staphylococcus aureus"),
            })),
            parent_order: Some(Box::new(ParentOrder {
                placer: Some(EntityId {
                    id: "ORD-88400".into(),
                    ..EntityId::default()
                }),
                filler: None,
            })),
            reasons: vec![coded("R50.9", "Fever", CodingSystem::Icd10Cm)],
            interpreters: vec![doctor("5678", "JONES")],
            timing: vec![Timing {
                start: Some(ts(1_795_330_000_000, Precision::Minute)),
                priorities: vec![coded("S", "Stat", hl7("HL70485"))],
                ..Timing::default()
            }],
            notes: vec![note("susceptibility to follow")],
            specimens: vec![blood, control],
            quality_control: true,
            ..OrderDetail::default()
        }),
    };
    Record {
        header: Header {
            message_code: "ORU".into(),
            trigger_event: "R01".into(),
            control_id: "MSG000124".into(),
            version: "2.5.1".into(),
            sending_application: "LIS".into(),
            sending_facility: "SHL".into(),
            message_time: Some(ts(1_795_345_300_000, Precision::Second)),
            processing: Processing::Production,
            sending_application_id: text("2.16.840.1.114222.4.3.3.5.1.2"),
            sending_facility_id: text("2.16.840.1.114222.4.1.10411"),
            receiving_application: text("HUB"),
            receiving_facility: text("ACME"),
            profiles: vec!["PHLabReport-NoAck".into()],
            software: vec![Software {
                vendor: text("Orion Health"),
                version: text("2.4.3"),
                product: text("Rhapsody"),
                binary_id: text("52854"),
                installed_at: Some(ts(1_185_000_000_000, Precision::Second)),
            }],
        },
        patient: Some(Patient {
            identifiers: vec![Identifier {
                value: "4711".into(),
                authority: text("CLINIC12"),
                kind: text("MR"),
                authority_id: text("2.16.840.1.114222.4.3.3.5.1.2"),
                facility: text("IA Public Health Lab"),
            }],
            name: Some(PersonName {
                family: text("DOE"),
                given: text("JANE"),
                middle: text("Q"),
                suffix: text("JR"),
                kind: text("L"),
                ..PersonName::default()
            }),
            birth_date: Some(ts(-170_000_000_000, Precision::Day)),
            sex: text("F"),
            other_names: vec![PersonName {
                family: text("ROE"),
                kind: text("M"),
                ..PersonName::default()
            }],
            races: vec![coded("2106-3", "White", hl7("CDCREC"))],
            language: Some(Box::new(coded("en", "English", hl7("ISO639")))),
            ethnicities: vec![coded("2186-5", "Not Hispanic or Latino", hl7("CDCREC"))],
            addresses: vec![Address {
                street: text("721 SPRING STREET"),
                city: text("GRINNELL"),
                state: text("IA"),
                postal_code: text("50112"),
                country: text("USA"),
                kind: text("H"),
                county: text("19157"),
                ..Address::default()
            }],
            phones: vec![Telecom {
                value: "(515)555-0199".into(),
                text: None,
                use_code: text("PRN"),
                equipment: text("PH"),
            }],
            deceased_at: Some(ts(1_795_000_000_000, Precision::Minute)),
            deceased: text("Y"),
            contacts: vec![Contact {
                name: Some(PersonName {
                    family: text("DOE"),
                    given: text("JOHN"),
                    ..PersonName::default()
                }),
                relationship: Some(coded("SPO", "Spouse", hl7("HL70063"))),
                ..Contact::default()
            }],
            notes: vec![note("patient fasting")],
            ..Patient::default()
        }),
        encounter: Some(Encounter {
            class: text("O"),
            location: text("LAB/1"),
            attending: Some(doctor("1234", "SMITH")),
            consulting: vec![doctor("5678", "JONES")],
            ..Encounter::default()
        }),
        body: Body::Observations(ObservationReport {
            orders: vec![culture],
        }),
        issues: vec![Issue::warning(
            ErrorCode::DataType,
            Location::segment("OBX", 6).field(14),
            "OBX-14 is not a valid date/time",
        )],
        not_carried: vec![
            NotCarried {
                segment: "ZPI".into(),
                field: 0,
                count: 1,
            },
            NotCarried {
                segment: "OBX".into(),
                field: 26,
                count: 3,
            },
        ],
    }
}

fn header(code: &str, event: &str) -> Header {
    Header {
        message_code: code.into(),
        trigger_event: event.into(),
        control_id: format!("C-{code}{event}").into(),
        version: "2.5.1".into(),
        sending_application: "EHR".into(),
        sending_facility: "HOSP".into(),
        message_time: Some(ts(1_795_345_300_000, Precision::Second)),
        processing: Processing::Production,
        ..Header::default()
    }
}

/// An account merge (A41) with its prior account, an order with its
/// detail and ask-at-order-entry answers, a deleted dose, and a generic
/// message.
fn other_bodies() -> Vec<Record> {
    let merge = Record {
        header: header("ADT", "A41"),
        body: Body::Patient(PatientEvent {
            recorded_at: Some(ts(1_795_345_000_000, Precision::Second)),
            reason: text("01"),
            prior: vec![Prior {
                identifiers: vec![Identifier {
                    value: "12345".into(),
                    authority: text("HOSP"),
                    kind: text("MR"),
                    ..Identifier::default()
                }],
                account: Some(Identifier {
                    value: "ACC1".into(),
                    ..Identifier::default()
                }),
                encounter: Some(Encounter {
                    class: text("O"),
                    ..Encounter::default()
                }),
                ..Prior::default()
            }],
            observations: vec![glucose()],
            more_patients: vec![PatientGroup {
                patient: Patient {
                    identifiers: vec![Identifier {
                        value: "12346".into(),
                        kind: text("MR"),
                        ..Identifier::default()
                    }],
                    ..Patient::default()
                },
                merged_from: vec![Identifier {
                    value: "999".into(),
                    ..Identifier::default()
                }],
                ..PatientGroup::default()
            }],
            ..PatientEvent::default()
        }),
        ..Record::default()
    };
    let order = Record {
        header: header("OML", "O21"),
        body: Body::Orders(OrderMessage {
            orders: vec![Order {
                control: "NW".into(),
                placer_order: text("PL1"),
                service: Some(coded("2345-7", "Glucose", CodingSystem::Loinc)),
                orderer: Some(doctor("1234", "SMITH")),
                priority: text("S"),
                observations: vec![glucose()],
                detail: Box::new(OrderDetail {
                    orderers: vec![doctor("1234", "SMITH")],
                    notes: vec![note("fasting")],
                    ..OrderDetail::default()
                }),
                ..Order::default()
            }],
        }),
        ..Record::default()
    };
    let dose = Record {
        header: header("VXU", "V04"),
        body: Body::Immunizations(ImmunizationReport {
            observations: vec![glucose()],
            immunizations: vec![Immunization {
                administered_at: Some(ts(1_795_000_000_000, Precision::Day)),
                vaccine: coded("08", "Hep B", CodingSystem::Cvx),
                manufacturer: Some(coded("MSD", "Merck", hl7("MVX"))),
                dose: Some(Quantity {
                    value: Decimal::parse("0.5").unwrap(),
                    unit: Some(Unit {
                        ucum: text("mL"),
                        original: None,
                    }),
                    converted: Some(Converted {
                        value: Decimal::parse("0.0005").unwrap(),
                        unit: "L".into(),
                        exact: false,
                    }),
                }),
                action: text("D"),
                refusal_reasons: vec![coded("00", "Parental decision", hl7("NIP002"))],
                performers: vec![doctor("1234", "SMITH")],
                filler_order: text("IZ-1"),
                ..Immunization::default()
            }],
        }),
        ..Record::default()
    };
    let generic = Record {
        header: header("SIU", "S12"),
        body: Body::Generic(GenericMessage {
            delimiters: "|^~\\&".into(),
            segments: vec!["SCH|1".into(), "ZXY|a^b".into()],
        }),
        ..Record::default()
    };
    vec![merge, order, dose, generic]
}

/// The schema 3 golden envelope: every body, every part, sequence numbers.
fn sample_envelope() -> Envelope {
    let records = std::iter::once(report()).chain(other_bodies());
    let entries = records
        .enumerate()
        .map(|(i, record)| Entry {
            id: Uuid::from_u128(0x0193_4f6a_1b2c_7d3e_8f40_1234_5678_9abc + i as u128),
            sequence: Some(41 + i as u64),
            received_at_ms: 1_795_345_301_234 + i as i64,
            mapping_version: MappingVersion {
                declared: Some("2026-03-lab-v4".into()),
                hash: [1, 2, 3, 4, 5, 6, 7, 8],
            },
            record,
            raw: (i == 4).then(|| b"MSH|^~\\&|EHR".to_vec()),
        })
        .collect();
    Envelope::new("acme/clinic-12/gw-0001", "lab", entries)
}

#[test]
fn envelope_encoding_matches_the_golden_file() {
    let bytes = sample_envelope().encode().unwrap();
    let path = golden("envelope_v3.bin");
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
    let bytes = std::fs::read(golden("envelope_v3.bin")).unwrap();
    assert_eq!(Envelope::decode(&bytes).unwrap(), sample_envelope());
}

#[test]
fn a_schema_2_payload_still_decodes_into_the_current_model() {
    // Written by schema 2 (before the record carried comments, specimens,
    // ...): read as the same values, with no sequence number.
    let bytes = std::fs::read(golden("envelope_v2.bin")).unwrap();
    assert_eq!(bytes[0], 2, "a schema 2 payload");
    let envelope = Envelope::decode(&bytes).unwrap();
    assert_eq!(envelope, schema2_envelope());
    assert_eq!(envelope.schema_version, SCHEMA_VERSION);
    // Encoding it again writes the current schema.
    let again = Envelope::decode(&envelope.encode().unwrap()).unwrap();
    assert_eq!(again, envelope);
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
    let entry = &json["entries"][0];
    assert_eq!(entry["id"], "01934f6a-1b2c-7d3e-8f40-123456789abc");
    assert_eq!(entry["sequence"], 41);
    let record = &entry["record"];
    assert_eq!(record["header"]["message_code"], "ORU");
    let group = &record["body"]["Observations"]["orders"][0];
    // The order detail is flattened into the group.
    assert_eq!(group["quality_control"], true);
    assert_eq!(group["specimens"][1]["role"]["original"]["code"], "Q");
    assert_eq!(
        group["observations"][0]["performing_organization"]["id"],
        "16D0648109"
    );
    assert_eq!(record["not_carried"][0]["segment"], "ZPI");
    // Parts added by schema 3 are left out when empty.
    assert!(group["observations"][2].get("notes").is_none());
    let merge = &json["entries"][1]["record"];
    assert!(merge.get("not_carried").is_none());
    assert!(merge.get("encounter").is_none());
    let back: Envelope = serde_json::from_value(json).unwrap();
    assert_eq!(back, sample_envelope());
}
