//! Envelopes and stored records of wire schema 2, read into the current
//! model. Frozen: these are schema 2's layouts (an entry without a
//! sequence number; the record in schema 2's compact form).

use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use super::{Entry, Envelope, SCHEMA_VERSION, StoredRecord};
use crate::normalize::mapping::MappingVersion;
use crate::record::Record;

/// Schema 2's envelope.
#[derive(Deserialize)]
pub(super) struct EnvelopeV2 {
    _schema_version: u16,
    gateway: String,
    source: String,
    entries: Vec<EntryV2>,
}

/// Schema 2's entry: no sequence number.
#[derive(Deserialize)]
struct EntryV2 {
    id: Uuid,
    received_at_ms: i64,
    mapping_version: MappingVersion,
    record: RecordV2,
    raw: Option<Vec<u8>>,
}

/// Schema 2's stored record (after its version).
#[derive(Deserialize)]
pub(super) struct StoredRecordV2 {
    mapping_version: MappingVersion,
    record: RecordV2,
}

/// A record in schema 2's compact form: a byte string.
struct RecordV2(Record);

impl<'de> Deserialize<'de> for RecordV2 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = RecordV2;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a schema 2 compact hl7edge record")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<RecordV2, E> {
                crate::record::decode_compact_v2(v)
                    .map(RecordV2)
                    .map_err(E::custom)
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

impl From<EnvelopeV2> for Envelope {
    fn from(e: EnvelopeV2) -> Self {
        Envelope {
            schema_version: SCHEMA_VERSION,
            gateway: e.gateway,
            source: e.source,
            entries: e
                .entries
                .into_iter()
                .map(|entry| Entry {
                    id: entry.id,
                    sequence: None,
                    received_at_ms: entry.received_at_ms,
                    mapping_version: entry.mapping_version,
                    record: entry.record.0,
                    raw: entry.raw,
                })
                .collect(),
        }
    }
}

impl From<StoredRecordV2> for StoredRecord {
    fn from(s: StoredRecordV2) -> Self {
        StoredRecord {
            mapping_version: s.mapping_version,
            record: s.record.0,
        }
    }
}
