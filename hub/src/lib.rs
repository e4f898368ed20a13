//! hl7edge hub tools: the fleet view, the record tail, the metrics
//! exporter and the PostgreSQL ingest with custody receipts, over the wire
//! format and topics of `hl7edge-protocol`.
//!
//! The models (fleet, dedupe, metrics rendering, NDJSON lines) are pure and
//! unit-tested; the `command` functions only connect them to MQTT, stdout
//! and a TCP listener.

pub mod claim;
pub mod cli;
pub mod enroll;
pub mod error;
pub mod fleet;
pub mod human;
pub mod ingest;
pub mod metrics;
pub mod mqtt;
pub mod push;
pub mod serve;
pub mod tail;
pub mod topics;
