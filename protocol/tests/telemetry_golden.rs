//! Golden-byte tests: the heartbeat encoding is pinned byte for byte.
//!
//! If a change to the telemetry types makes these fail, the heartbeat wire
//! format changed. That is allowed only deliberately: bump
//! `telemetry::HEARTBEAT_SCHEMA_VERSION` when old decoders cannot read the
//! new form, then regenerate with `UPDATE_GOLDEN=1 cargo test -p
//! hl7edge-protocol --test telemetry_golden` and review the diff of the
//! `.bin` file.

use std::path::PathBuf;

use hl7edge_protocol::telemetry::*;

fn sample_heartbeat() -> Heartbeat {
    Heartbeat {
        schema_version: HEARTBEAT_SCHEMA_VERSION,
        gateway: GatewayId {
            org: "acme-health".into(),
            site: "clinic-12".into(),
            id: "gw-0001".into(),
        },
        version: "0.1.0".into(),
        sent_at_ms: 1_795_345_301_234,
        uptime_s: 86_400,
        interval_s: 60,
        queue: QueueStats {
            depth: 42,
            oldest_unsent_age_ms: Some(12_500),
            parked: 1,
        },
        storage: StorageStats {
            disk_free_bytes: 12_884_901_888,
            db_bytes: 73_400_320,
            alarm: false,
            recovery: Some("queue.db was damaged; moved to queue.db.corrupt-1795000000000".into()),
        },
        counters: Counters {
            received: 1_000,
            acknowledged: 990,
            rejected: 2,
            quarantined: 8,
            duplicates: 3,
            forwarded: 948,
        },
        broker_reconnects: 4,
        cert_days_left: Some(245),
        hours_until_full: Some(1.5),
        clock_offset_ms: Some(-350),
        sources: vec![
            SourceStats {
                name: "lab".into(),
                last_message_ms: Some(1_795_345_290_000),
                received: 900,
                acknowledged: 892,
                rejected: 2,
                quarantined: 6,
                codes_mapped: 4_200,
                codes_unmapped: 37,
                top_unmapped: vec![UnmappedCode {
                    system: "99LAB".into(),
                    code: "XGLU".into(),
                    count: 30,
                }],
                drift: vec!["unit for GLU changed: mg/dL → mmol/L".into()],
                resends: 3,
                control_id_reused: 1,
                acks_received: 2,
                oversize_frames: 1,
                garbage_bytes: 12,
                refused_connections: 4,
                tls_failures: 0,
                no_ack_requested: 3,
                rhythm: Some(Rhythm {
                    quiet_s: 5_400,
                    usual_gap_s: Some(240),
                    silent: true,
                }),
            },
            SourceStats {
                name: "monitors".into(),
                last_message_ms: None,
                ..SourceStats::default()
            },
        ],
        custody: Custody {
            refusing: Some(Refusing {
                cause: "reserve".into(),
                reason:
                    "the filesystem has 3.0 MiB available and the store keeps 32.0 MiB of it free"
                        .into(),
            }),
            quarantine_open: 2,
            audit_head: Some(
                "4f2a9c0d5e6b7a8f4f2a9c0d5e6b7a8f4f2a9c0d5e6b7a8f4f2a9c0d5e6b7a8f".into(),
            ),
            audit_lines: 1_234,
            quarantine: QuarantineHold {
                bytes: 48_213,
                max_bytes: 268_435_456,
                expiring: 1,
                next_expiry_ms: Some(1_795_500_000_000),
            },
            set_aside: SetAsideFiles {
                files: 1,
                bytes: 4_194_304,
                oldest_ms: Some(1_795_000_000_000),
            },
        },
        cert_not_after_ms: Some(1_816_513_301_234),
        hub: HubLink {
            custody: "receipt".into(),
            awaiting_receipt: 128,
            oldest_awaiting_receipt_age_ms: Some(42_000),
            receipted: 9_000,
            failures: 0,
            last_error_cause: Some("not_listening".into()),
            last_error: Some("I/O: Connection refused (os error 111)".into()),
            last_error_at_ms: Some(1_795_345_200_000),
            connected_at_ms: Some(1_795_345_210_000),
            last_puback_at_ms: Some(1_795_345_299_000),
            last_receipt_at_ms: Some(1_795_345_299_500),
        },
        pushes: vec![hl7edge_protocol::telemetry::PushReport {
            listener: "lab".into(),
            sequence: Some(1_795_345_000_000),
            outcome: "rejected".into(),
            reason: Some("downgrade".into()),
            at_ms: 1_795_345_100_000,
            mapping_version: "2026-03-lab-v4+0123456789abcdef".into(),
            change: "listener".into(),
            config_hash: "0123456789abcdef".into(),
            disabled: true,
        }],
    }
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

#[test]
fn heartbeat_encoding_matches_the_golden_file() {
    let bytes = sample_heartbeat().encode().unwrap();
    let path = golden("heartbeat_v1.bin");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    let expected = std::fs::read(&path).expect("golden file missing: run with UPDATE_GOLDEN=1");
    assert_eq!(
        bytes, expected,
        "the heartbeat encoding changed (see the module doc)"
    );
}

#[test]
fn golden_file_decodes_to_the_same_heartbeat() {
    let bytes = std::fs::read(golden("heartbeat_v1.bin")).unwrap();
    assert_eq!(Heartbeat::decode(&bytes).unwrap(), sample_heartbeat());
}

#[test]
fn the_schema_version_comes_first_on_the_wire() {
    let bytes = sample_heartbeat().encode().unwrap();
    assert_eq!(
        bytes[0], 1,
        "postcard writes a small u16 as one varint byte"
    );
}

#[test]
fn an_unknown_schema_version_is_refused_clearly() {
    let mut bytes = sample_heartbeat().encode().unwrap();
    bytes[0] = 9;
    match Heartbeat::decode(&bytes) {
        Err(TelemetryError::UnknownSchema {
            found: 9,
            supported,
        }) => assert_eq!(supported, HEARTBEAT_SCHEMA_VERSION),
        other => panic!("expected UnknownSchema, got {other:?}"),
    }
    let text = Heartbeat::decode(&bytes).unwrap_err().to_string();
    assert!(
        text.contains("version 9") && text.contains("upgrade"),
        "{text}"
    );
}

#[test]
fn truncated_payloads_are_malformed_not_panics() {
    let bytes = sample_heartbeat().encode().unwrap();
    for cut in 0..bytes.len() {
        assert!(Heartbeat::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn json_rendering_names_every_part() {
    let json = serde_json::to_value(sample_heartbeat()).unwrap();
    assert_eq!(json["gateway"]["site"], "clinic-12");
    assert_eq!(json["queue"]["oldest_unsent_age_ms"], 12_500);
    assert_eq!(json["listeners"][0]["top_unmapped"][0]["code"], "XGLU");
    assert_eq!(
        json["listeners"][1]["last_message_ms"],
        serde_json::Value::Null
    );
}
