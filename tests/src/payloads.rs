//! Payloads as an agent publishes them, built directly, for tests that publish what no agent
//! would (another gateway's name, crafted counts) beside valid ones.

use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::record::{Body, CompactString, GenericMessage, Header, Processing, Record};
use hl7edge_protocol::telemetry::{
    GatewayId, HEARTBEAT_SCHEMA_VERSION, Heartbeat, QueueStats, SourceStats, Status, TelemetryError,
};
use hl7edge_protocol::wire::{Entry, Envelope, WireError};

/// A record header of message type `code^event` (control id `C1`, version 2.5.1).
pub fn header(code: &str, event: &str) -> Header {
    Header {
        message_code: CompactString::from(code),
        trigger_event: CompactString::from(event),
        control_id: CompactString::from("C1"),
        version: CompactString::from("2.5.1"),
        sending_application: CompactString::from("LAB"),
        sending_facility: CompactString::from("F"),
        message_time: None,
        processing: Processing::Production,
        ..Header::default()
    }
}

/// A records payload naming `gateway` (`org/site/id`), source `lab`, with one generic `ZZZ^Z01`
/// record of id `id`.
pub fn records(gateway: &str, id: u128) -> Result<Vec<u8>, WireError> {
    let entry = Entry {
        id: uuid::Uuid::from_u128(id),
        sequence: Some(1),
        received_at_ms: 1_795_345_301_234,
        mapping_version: MappingTable::empty().version().clone(),
        record: Record {
            header: header("ZZZ", "Z01"),
            patient: None,
            encounter: None,
            body: Body::Generic(GenericMessage {
                delimiters: "|^~\\&".into(),
                segments: vec!["ZZZ|1".into()],
            }),
            issues: vec![],
            not_carried: vec![],
        },
        raw: None,
    };
    Envelope::new(gateway, "lab", vec![entry]).encode()
}

/// A heartbeat naming `gateway`, with queue depth `depth` and one interface per name of
/// `sources` (counters zero).
pub fn heartbeat(
    gateway: GatewayId,
    depth: u64,
    sources: &[&str],
) -> Result<Vec<u8>, TelemetryError> {
    Heartbeat {
        schema_version: HEARTBEAT_SCHEMA_VERSION,
        gateway,
        version: "0.1.0".into(),
        sent_at_ms: 1_795_345_301_234,
        uptime_s: 100,
        interval_s: 60,
        queue: QueueStats {
            depth,
            ..QueueStats::default()
        },
        storage: Default::default(),
        counters: Default::default(),
        broker_reconnects: 0,
        cert_days_left: None,
        cert_not_after_ms: None,
        hours_until_full: None,
        clock_offset_ms: None,
        sources: sources
            .iter()
            .map(|name| SourceStats {
                name: (*name).into(),
                ..SourceStats::default()
            })
            .collect(),
        custody: Default::default(),
        hub: Default::default(),
        pushes: Vec::new(),
    }
    .encode()
}

/// An `online` status.
pub fn status() -> Result<Vec<u8>, TelemetryError> {
    Ok(Status {
        online: true,
        version: "0.1.0".into(),
        started_at_ms: 1_795_345_301_234,
        reason: None,
    }
    .encode()?)
}
