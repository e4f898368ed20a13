//! One MQTT record payload into NDJSON lines, one per new record.
//!
//! A line: `{"gateway", "source", "message_type", "id", "sequence",
//! "received_at", "received_at_ms", "mapping_version", "record"}` (plus
//! `"raw_hl7"` when asked for and forwarded). `sequence` is the record's
//! number among its source's records (absent for schema 2 payloads).
//! Records already seen (same id) are dropped.
//!
//! With [`Format::Fhir`] a line is instead the record as a FHIR R4
//! transaction bundle (`hl7edge_protocol::fhir`), keyed on the record id,
//! for loading into a FHIR server; the raw HL7 is never in it.
//!
//! The payload is read one record at a time ([`EnvelopeReader`]) and each
//! line written as soon as it is made, so memory holds one decoded record
//! (within the record limits of `hl7edge_protocol::record::limits`) and
//! one line, however many records a payload claims. A record that does not
//! decode ends the payload: the lines before it stay written.
//!
//! An envelope is believed only when the gateway it names is its topic's
//! ([`crate::claim`]): one that names another gateway, or arrives on a topic
//! that names none (among them every topic under the organization reserved for
//! enrollment, where only a claim certificate can publish), is refused before
//! any line is written.

use std::io::{self, Write};

use serde::Serialize;
use uuid::Uuid;

use hl7edge_protocol::fhir;
use hl7edge_protocol::normalize::mapping::MappingVersion;
use hl7edge_protocol::record::Record;
use hl7edge_protocol::wire::{EnvelopeReader, WireError};

use super::dedupe::Dedupe;
use crate::claim::{self, GatewayMismatch};
use crate::topics::{self, NotAGatewayTopic, ParsedTopic, TopicKind};

/// The lines of one payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lines {
    /// One JSON document per new record, without newline.
    pub lines: Vec<String>,
    /// Records dropped as duplicates.
    pub duplicates: usize,
}

/// Why a payload's lines stopped.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The payload (or one of its records) is not what this hub can read;
    /// `written` lines came before.
    #[error("{topic}: {source}")]
    Wire {
        /// The topic it came on.
        topic: String,
        /// Lines written before the bad record.
        written: usize,
        /// The decoder's error.
        source: WireError,
    },
    /// The envelope names another gateway than its topic's: nothing was written.
    #[error("{topic}: dropped: {source}")]
    GatewayMismatch {
        /// The topic it came on.
        topic: String,
        /// What was claimed and where.
        source: Box<GatewayMismatch>,
    },
    /// The topic is under the organization reserved for enrollment: a claim certificate
    /// published it, no gateway; nothing was written.
    #[error("{topic}: dropped: {}", NotAGatewayTopic::ReservedOrg)]
    ReservedOrg {
        /// The topic it came on.
        topic: String,
    },
    /// The topic is not a records topic under the prefix, so it names no gateway to check the
    /// envelope's claim against: nothing was written.
    #[error("{topic}: dropped: not a records topic under the prefix, so the sender is unknown")]
    NotARecordsTopic {
        /// The topic it came on.
        topic: String,
    },
    /// A record could not be written as JSON.
    #[error("{topic}: a record could not be written as JSON: {source}")]
    Json {
        /// The topic it came on.
        topic: String,
        /// The encoder's error.
        source: serde_json::Error,
    },
    /// The output failed.
    #[error("writing a record: {0}")]
    Output(#[from] io::Error),
}

/// What a line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The record with its delivery facts, and the raw HL7 when `raw`.
    Record {
        /// Include the raw HL7 when the gateway forwarded it.
        raw: bool,
    },
    /// The record as a FHIR R4 transaction bundle.
    Fhir,
}

/// What was written for one payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// Lines written.
    pub lines: usize,
    /// Records dropped as duplicates.
    pub duplicates: usize,
}

#[derive(Serialize)]
struct Line<'a> {
    gateway: &'a str,
    source: &'a str,
    message_type: &'a str,
    id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence: Option<u64>,
    received_at: String,
    received_at_ms: i64,
    mapping_version: &'a MappingVersion,
    record: &'a Record,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_hl7: Option<String>,
}

/// Decodes a payload from `topic` and renders its new records.
pub fn lines(
    prefix: &str,
    topic: &str,
    payload: &[u8],
    dedupe: &mut Dedupe,
    format: Format,
) -> Result<Lines, LineError> {
    let mut out = Vec::new();
    let written = write_lines(prefix, topic, payload, dedupe, format, &mut out)?;
    Ok(Lines {
        lines: String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_owned)
            .collect(),
        duplicates: written.duplicates,
    })
}

/// Decodes a payload from `topic` record by record and writes a line for
/// each new one to `out` (not flushed).
pub fn write_lines(
    prefix: &str,
    topic: &str,
    payload: &[u8],
    dedupe: &mut Dedupe,
    format: Format,
    out: &mut impl Write,
) -> Result<Written, LineError> {
    let wire = |written, source| LineError::Wire {
        topic: topic.to_owned(),
        written,
        source,
    };
    let reader = EnvelopeReader::new(payload).map_err(|e| wire(0, e))?;
    let (gateway, source) = (reader.gateway.clone(), reader.source.clone());
    let (key, message_type) = match topics::gateway_topic(prefix, topic) {
        Ok(ParsedTopic {
            key,
            kind: TopicKind::Records(kind),
        }) => (key, kind),
        Err(NotAGatewayTopic::ReservedOrg) => {
            return Err(LineError::ReservedOrg {
                topic: topic.to_owned(),
            });
        }
        _ => {
            return Err(LineError::NotARecordsTopic {
                topic: topic.to_owned(),
            });
        }
    };
    claim::check_envelope(&key, &gateway).map_err(|source| LineError::GatewayMismatch {
        topic: topic.to_owned(),
        source: Box::new(source),
    })?;
    let mut done = Written::default();
    for entry in reader {
        let entry = entry.map_err(|e| wire(done.lines, e))?;
        if !dedupe.first_time(entry.id) {
            done.duplicates += 1;
            continue;
        }
        let json_error = |source| LineError::Json {
            topic: topic.to_owned(),
            source,
        };
        let include_raw = match format {
            Format::Record { raw } => raw,
            Format::Fhir => {
                let origin = fhir::Origin {
                    record_id: entry.id,
                    received_at_ms: entry.received_at_ms,
                    gateway: &gateway,
                    source: &source,
                    mapping_version: &entry.mapping_version,
                };
                let bundle = fhir::bundle(&entry.record, &origin);
                let mut json = serde_json::to_vec(&fhir::Json(&bundle)).map_err(json_error)?;
                json.push(b'\n');
                out.write_all(&json)?;
                done.lines += 1;
                continue;
            }
        };
        let line = Line {
            gateway: &gateway,
            source: &source,
            message_type: &message_type,
            id: entry.id,
            sequence: entry.sequence,
            received_at: rfc3339(entry.received_at_ms),
            received_at_ms: entry.received_at_ms,
            mapping_version: &entry.mapping_version,
            record: &entry.record,
            raw_hl7: entry
                .raw
                .as_ref()
                .filter(|_| include_raw)
                .map(|raw| String::from_utf8_lossy(raw).into_owned()),
        };
        let mut json = serde_json::to_vec(&line).map_err(json_error)?;
        json.push(b'\n');
        out.write_all(&json)?;
        done.lines += 1;
    }
    Ok(done)
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| String::new(), |t| t.to_string())
}

#[cfg(test)]
mod tests;
