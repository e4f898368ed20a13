//! One MQTT record payload into NDJSON lines, one per new record.
//!
//! A line: `{"gateway", "source", "message_type", "id", "sequence",
//! "received_at", "received_at_ms", "mapping_version", "record"}` (plus
//! `"raw_hl7"` when asked for and forwarded). `sequence` is the record's
//! number among its source's records (absent for schema 2 payloads).
//! Records already seen (same id) are dropped.

use serde::Serialize;
use uuid::Uuid;

use hl7edge_protocol::normalize::mapping::MappingVersion;
use hl7edge_protocol::record::Record;
use hl7edge_protocol::wire::{Envelope, WireError};

use super::dedupe::Dedupe;
use crate::topics::{self, TopicKind};

/// The lines of one payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lines {
    /// One JSON document per new record, without newline.
    pub lines: Vec<String>,
    /// Records dropped as duplicates.
    pub duplicates: usize,
}

/// Why a payload produced no lines.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The payload is not an envelope this hub can read.
    #[error("{topic}: {source}")]
    Wire {
        /// The topic it came on.
        topic: String,
        /// The decoder's error.
        source: WireError,
    },
    /// A record could not be written as JSON.
    #[error("{topic}: a record could not be written as JSON: {source}")]
    Json {
        /// The topic it came on.
        topic: String,
        /// The encoder's error.
        source: serde_json::Error,
    },
}

#[derive(Serialize)]
struct Line<'a> {
    gateway: &'a str,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_type: Option<&'a str>,
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
    include_raw: bool,
) -> Result<Lines, LineError> {
    let envelope = Envelope::decode(payload).map_err(|source| LineError::Wire {
        topic: topic.to_owned(),
        source,
    })?;
    let message_type = match topics::parse(prefix, topic) {
        Some(parsed) => match parsed.kind {
            TopicKind::Records(kind) => Some(kind),
            _ => None,
        },
        None => None,
    };
    let mut out = Lines::default();
    for entry in &envelope.entries {
        if !dedupe.first_time(entry.id) {
            out.duplicates += 1;
            continue;
        }
        let line = Line {
            gateway: &envelope.gateway,
            source: &envelope.source,
            message_type: message_type.as_deref(),
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
        let json = serde_json::to_string(&line).map_err(|source| LineError::Json {
            topic: topic.to_owned(),
            source,
        })?;
        out.lines.push(json);
    }
    Ok(out)
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| String::new(), |t| t.to_string())
}

#[cfg(test)]
mod tests;
