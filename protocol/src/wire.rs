//! The wire format: what travels in every MQTT payload.
//!
//! A payload is one postcard-encoded [`Envelope`]. Its first field is the
//! schema version, so a decoder reads that first and refuses a version it
//! does not know with a clear error instead of misreading the bytes.
//!
//! Compatibility rules:
//! - [`SCHEMA_VERSION`] changes only when an old decoder cannot read the
//!   new form. Fields are added at the end of structs (postcard is
//!   positional: an added field is a new schema version for decoders that
//!   read to the end, so additions are batched into version bumps).
//! - The previous schema stays readable: [`Envelope::decode`] and
//!   [`StoredRecord::decode`] read schema 2 into the current model (see
//!   `record::compact::v2`); nothing schema 2 could say is refused. Older
//!   versions are refused by name.
//! - The golden files in `protocol/tests/golden/` pin the encoding byte for
//!   byte; a change to them is a change to the wire.
//! - The raw HL7 travels only when the interface is configured for it
//!   (PHI minimization).

mod splice;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use splice::{EnvelopeWriter, entry_len, envelope_len};

use crate::normalize::mapping::MappingVersion;
use crate::record::Record;

/// The schema version this crate writes.
///
/// 1: records in postcard's derived form (refused as unknown). 2: records
/// in the compact form of `record::compact` (string tables, packed
/// timestamps); still read. 3: the record carries comments, specimens,
/// performers, orderers, parent links, every value repetition, demographics,
/// the encounter for every type and what it does not carry; every entry has
/// its per-source sequence number.
pub const SCHEMA_VERSION: u16 = 3;

/// The previous schema, still read (see [`SCHEMA_VERSION`]).
pub const PREVIOUS_SCHEMA_VERSION: u16 = 2;

/// Bytes reserved up front when encoding a stored record (a lab result
/// with a few dozen observations fits without growing).
const STORED_RECORD_CAPACITY: usize = 1024;

/// One MQTT payload: one or more records from one interface of one gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Always [`SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u16,
    /// The gateway that received the messages (`org/site/id`).
    pub gateway: String,
    /// The interface (listener name) the messages came in on.
    pub source: String,
    /// The records, in the order the gateway acknowledged them.
    pub entries: Vec<Entry>,
}

/// One record with its delivery facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Stable, time-ordered id (UUIDv7) assigned when the message was
    /// committed; the hub drops duplicates by it.
    pub id: Uuid,
    /// The record's number among the records of its source (interface):
    /// assigned at commit, 1, 2, 3, ... without gaps, never reused, kept
    /// across restarts. A consumer sees a gap as a record it has not (yet)
    /// received and restores the order by it. `None` only in entries read
    /// from schema 2, which had no sequence.
    pub sequence: Option<u64>,
    /// When the gateway received the message (ms since the Unix epoch, UTC).
    pub received_at_ms: i64,
    /// The mapping table the record was normalized with.
    pub mapping_version: MappingVersion,
    /// The normalized record.
    pub record: Record,
    /// The raw HL7 bytes, only when the interface is configured to send them.
    pub raw: Option<Vec<u8>>,
}

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The payload was written with a schema this decoder does not know.
    #[error(
        "payload uses wire schema version {found}, this decoder reads version {supported}; upgrade the reader"
    )]
    UnknownSchema {
        /// The version in the payload.
        found: u16,
        /// The version this crate reads.
        supported: u16,
    },
    /// The bytes are not a valid envelope (or a value could not be encoded).
    #[error("payload is not a valid hl7edge envelope: {0}")]
    Malformed(#[from] postcard::Error),
    /// A record is over a limit of `crate::record::limits` (never written).
    #[error(transparent)]
    Limit(#[from] crate::record::limits::LimitError),
    /// A record in the payload did not decode (or is over a limit).
    #[error("a record in the payload is invalid: {0}")]
    Record(#[from] crate::record::CompactError),
}

impl Envelope {
    /// An envelope of the current schema version.
    pub fn new(gateway: impl Into<String>, source: impl Into<String>, entries: Vec<Entry>) -> Self {
        Envelope {
            schema_version: SCHEMA_VERSION,
            gateway: gateway.into(),
            source: source.into(),
            entries,
        }
    }

    /// Encodes the envelope with postcard.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        Ok(postcard::to_allocvec(self)?)
    }

    /// Decodes a payload, checking the schema version first. A schema 2
    /// payload is read into the current model (its entries have no
    /// sequence, and the envelope says [`SCHEMA_VERSION`]: encoding it again
    /// writes the current schema). Holds every entry in memory at once; a
    /// consumer of untrusted payloads reads them one entry at a time with
    /// [`EnvelopeReader`] instead.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, WireError> {
        let reader = EnvelopeReader::new(bytes)?;
        let (gateway, source) = (reader.gateway.clone(), reader.source.clone());
        let mut entries =
            Vec::with_capacity(crate::record::limits::capacity::<Entry>(reader.remaining()));
        for entry in reader {
            entries.push(entry?);
        }
        Ok(Envelope {
            schema_version: SCHEMA_VERSION,
            gateway,
            source,
            entries,
        })
    }
}

/// An envelope read one entry at a time: its header when made, then each
/// entry when asked for, so memory holds one decoded record at a time
/// (each within `crate::record::limits`), however many a payload claims.
/// After an entry fails to decode, the reader ends. Schema 2 payloads are
/// read too (entries without a sequence number).
#[derive(Debug)]
pub struct EnvelopeReader<'a> {
    /// The gateway that received the messages (`org/site/id`).
    pub gateway: String,
    /// The interface the messages came in on.
    pub source: String,
    /// The payload's schema version ([`SCHEMA_VERSION`] or
    /// [`PREVIOUS_SCHEMA_VERSION`]).
    pub schema_version: u16,
    remaining: usize,
    rest: &'a [u8],
}

impl<'a> EnvelopeReader<'a> {
    /// Reads the header of a payload, checking the schema version first.
    pub fn new(bytes: &'a [u8]) -> Result<Self, WireError> {
        let (version, rest) = postcard::take_from_bytes::<u16>(bytes)?;
        if version != SCHEMA_VERSION && version != PREVIOUS_SCHEMA_VERSION {
            return Err(WireError::UnknownSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        let (gateway, rest) = postcard::take_from_bytes::<String>(rest)?;
        let (source, rest) = postcard::take_from_bytes::<String>(rest)?;
        let (remaining, rest) = postcard::take_from_bytes::<usize>(rest)?;
        Ok(EnvelopeReader {
            gateway,
            source,
            schema_version: version,
            remaining,
            rest,
        })
    }

    /// How many entries the payload still claims to hold (a claim: each
    /// is checked when read).
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}

impl Iterator for EnvelopeReader<'_> {
    type Item = Result<Entry, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        match take_entry(self.rest, self.schema_version) {
            Ok((entry, rest)) => {
                self.remaining -= 1;
                self.rest = rest;
                Some(Ok(entry))
            }
            Err(e) => {
                self.remaining = 0;
                Some(Err(e))
            }
        }
    }
}

/// One [`Entry`] of a payload of schema `version` as its derived form reads
/// it, field by field, so that a record that does not decode says why
/// (postcard keeps no message of an error raised inside a value). Schema 2
/// entries have no sequence number and their record is in schema 2's
/// compact form.
fn take_entry(bytes: &[u8], version: u16) -> Result<(Entry, &[u8]), WireError> {
    let (id, rest) = postcard::take_from_bytes::<Uuid>(bytes)?;
    let (sequence, rest) = if version == PREVIOUS_SCHEMA_VERSION {
        (None, rest)
    } else {
        postcard::take_from_bytes::<Option<u64>>(rest)?
    };
    let (received_at_ms, rest) = postcard::take_from_bytes::<i64>(rest)?;
    let (mapping_version, rest) = postcard::take_from_bytes::<MappingVersion>(rest)?;
    let (record, rest) = postcard::take_from_bytes::<&[u8]>(rest)?;
    let record = if version == PREVIOUS_SCHEMA_VERSION {
        crate::record::decode_compact_v2(record)?
    } else {
        crate::record::decode_compact(record)?
    };
    let (raw, rest) = postcard::take_from_bytes::<Option<Vec<u8>>>(rest)?;
    let entry = Entry {
        id,
        sequence,
        received_at_ms,
        mapping_version,
        record,
        raw,
    };
    Ok((entry, rest))
}

/// What the store keeps per row: the record and the mapping table version
/// it was normalized with. The forwarder adds the id and receive time to
/// make an [`Entry`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// The mapping table the record was normalized with.
    pub mapping_version: MappingVersion,
    /// The normalized record.
    pub record: Record,
}

impl StoredRecord {
    /// Encodes for the store: the schema version, then the record.
    ///
    /// The version prefix matters on an upgrade: rows queued by an older
    /// build are recognised as such by [`StoredRecord::decode`] instead of
    /// being misread as the new layout (postcard is positional, so a changed
    /// struct can decode "successfully" into wrong values).
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        // A record a decoder would refuse is never written.
        crate::record::limits::check(&self.record)?;
        // Sized for a typical record up front instead of growing by doubling.
        let mut buf = Vec::with_capacity(STORED_RECORD_CAPACITY);
        crate::postcard_append::append(&SCHEMA_VERSION, &mut buf)?;
        // `self` field by field, as its derived `Serialize` writes it, with
        // the record's compact form written in place.
        crate::postcard_append::append(&self.mapping_version, &mut buf)?;
        crate::record::append_postcard(&self.record, &mut buf).map_err(|e| match e {
            crate::record::CompactError::Limit(limit) => WireError::Limit(limit),
            other => WireError::Record(other),
        })?;
        Ok(buf)
    }

    /// Decodes what [`StoredRecord::encode`] wrote, or what a schema 2
    /// build stored (read into the current model), refusing other schema
    /// versions with [`WireError::UnknownSchema`].
    pub fn decode(bytes: &[u8]) -> Result<StoredRecord, WireError> {
        match Self::version(bytes)? {
            PREVIOUS_SCHEMA_VERSION => {
                let (_, rest) = postcard::take_from_bytes::<u16>(bytes)?;
                let (mapping_version, rest) = postcard::take_from_bytes::<MappingVersion>(rest)?;
                let (record, _) = postcard::take_from_bytes::<&[u8]>(rest)?;
                Ok(StoredRecord {
                    mapping_version,
                    record: crate::record::decode_compact_v2(record)?,
                })
            }
            _ => Ok(postcard::from_bytes(Self::body(bytes)?)?),
        }
    }

    /// The schema version stored records start with.
    pub fn version(bytes: &[u8]) -> Result<u16, WireError> {
        Ok(postcard::take_from_bytes::<u16>(bytes)?.0)
    }

    /// The encoded fields after the schema version, once the version is
    /// checked to be this crate's.
    pub(crate) fn body(bytes: &[u8]) -> Result<&[u8], WireError> {
        let (version, rest) = postcard::take_from_bytes::<u16>(bytes)?;
        if version != SCHEMA_VERSION {
            return Err(WireError::UnknownSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(rest)
    }

    /// The wire entry for this record, number `sequence` of its source.
    pub fn into_entry(
        self,
        id: Uuid,
        sequence: u64,
        received_at_ms: i64,
        raw: Option<Vec<u8>>,
    ) -> Entry {
        Entry {
            id,
            sequence: Some(sequence),
            received_at_ms,
            mapping_version: self.mapping_version,
            record: self.record,
            raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::Message;
    use crate::normalize::mapping::MappingTable;
    use crate::normalize::{Context, normalize};

    fn stored(text: &str) -> StoredRecord {
        let msg = Message::parse(text.as_bytes()).unwrap();
        let mapping = MappingTable::empty();
        let tz = jiff::tz::TimeZone::UTC;
        let ctx = Context {
            time_zone: &tz,
            mapping: &mapping,
        };
        StoredRecord {
            mapping_version: mapping.version().clone(),
            record: normalize(&msg, Vec::new(), &ctx).record,
        }
    }

    #[test]
    fn a_stored_record_is_its_version_then_its_derived_postcard_form() {
        let mut oru = String::from("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5\rOBR|1\r");
        for n in 0..40 {
            oru.push_str(&format!(
                "OBX|{n}|NM|{n}^Test {n}^L||{n}.5|mg|1-{n}|N|||F\r"
            ));
        }
        for text in [
            "MSH|^~\\&|A|B|C|D|20240101||ACK|1|P|2.5",
            "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||7^^^H^MR||DOE^JO",
            oru.as_str(),
        ] {
            let stored = stored(text);
            let mut expected = postcard::to_allocvec(&SCHEMA_VERSION).unwrap();
            expected.extend(postcard::to_allocvec(&stored).unwrap());
            let encoded = stored.encode().unwrap();
            assert_eq!(encoded, expected);
            assert_eq!(StoredRecord::decode(&encoded).unwrap(), stored);
        }
    }
}
