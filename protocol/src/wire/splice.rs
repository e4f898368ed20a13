//! Envelopes assembled from records as the store keeps them, without
//! decoding them.
//!
//! The forwarder holds each record as [`StoredRecord::encode`] wrote it.
//! Decoding every record only to encode it again into an [`Envelope`] was
//! most of the CPU a backlog drain costs. An [`EnvelopeWriter`] copies the
//! stored bytes into place instead.
//!
//! Invariant: [`EnvelopeWriter::finish`] returns exactly the bytes
//! [`Envelope::encode`] returns for the same entries. An entry's encoding
//! is its id, its sequence number, its receive time, the stored record
//! after its schema version (the mapping version, then the record: the
//! same fields in the same order as [`Entry`]), then the optional raw
//! bytes. Stored records of another schema version (an older build's) are
//! refused, never copied: the caller normalizes them again.
//!
//! [`Envelope`]: super::Envelope
//! [`Envelope::encode`]: super::Envelope::encode
//! [`Entry`]: super::Entry

use uuid::Uuid;

use super::{SCHEMA_VERSION, StoredRecord, WireError};

/// Builds one envelope payload from stored records.
#[derive(Debug)]
pub struct EnvelopeWriter {
    head: Vec<u8>,
    entries: Vec<u8>,
    count: usize,
}

impl EnvelopeWriter {
    /// An empty envelope of the current schema version for records that
    /// `gateway` received on interface `source`.
    pub fn new(gateway: &str, source: &str) -> Result<Self, WireError> {
        let head = postcard::to_extend(&SCHEMA_VERSION, Vec::with_capacity(64))?;
        let head = postcard::to_extend(gateway, head)?;
        let head = postcard::to_extend(source, head)?;
        Ok(EnvelopeWriter {
            head,
            entries: Vec::new(),
            count: 0,
        })
    }

    /// Appends one record, number `sequence` of its source: `stored` is
    /// what [`StoredRecord::encode`] returned for it. A stored record of
    /// another schema version is refused with [`WireError::UnknownSchema`]
    /// and nothing is appended.
    pub fn push(
        &mut self,
        id: Uuid,
        sequence: u64,
        received_at_ms: i64,
        stored: &[u8],
        raw: Option<&[u8]>,
    ) -> Result<(), WireError> {
        let body = StoredRecord::body(stored)?;
        // Everything that can fail comes before the first byte is added.
        let head = postcard::to_allocvec(&(id, Some(sequence), received_at_ms))?;
        let tail = postcard::to_allocvec(&raw)?;
        self.entries.reserve(head.len() + body.len() + tail.len());
        self.entries.extend_from_slice(&head);
        self.entries.extend_from_slice(body);
        self.entries.extend_from_slice(&tail);
        self.count += 1;
        Ok(())
    }

    /// Records appended so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no record was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The payload: the header, the number of records, the records.
    pub fn finish(self) -> Result<Vec<u8>, WireError> {
        let mut out = self.head;
        out.reserve(self.entries.len() + 10);
        let mut out = postcard::to_extend(&self.count, out)?;
        out.extend_from_slice(&self.entries);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Entry, Envelope};
    use super::*;
    use crate::hl7::Message;
    use crate::hl7::validate::Validation;
    use crate::normalize::mapping::MappingTable;
    use crate::normalize::{Context, normalize};

    fn stored(raw: &str) -> StoredRecord {
        let msg = Message::parse(raw.as_bytes()).expect("parses");
        let mapping = MappingTable::empty();
        let ctx = Context {
            time_zone: &jiff::tz::TimeZone::UTC,
            mapping: &mapping,
        };
        let out = normalize(&msg, Validation::of(&msg).issues, &ctx);
        StoredRecord {
            mapping_version: mapping.version().clone(),
            record: out.record,
        }
    }

    const ORU: &str = "MSH|^~\\&|LAB|MAIN|EHR|CLINIC|20261122101500+0100||ORU^R01|C1|P|2.5.1\r\
        PID|1||4711^^^CLINIC^MR||DOE^JANE\r\
        OBR|1|O1|F1|24323-8^Panel^LN\r\
        OBX|1|NM|2345-7^Glucose^LN||112|mg/dL^mg/dL^UCUM|70-99|H|||F\r\
        OBX|2|ST|NOTE^Note^99LAB||hemolyzed||||||F\r";
    const ADT: &str = "MSH|^~\\&|ADT|MAIN|EHR|CLINIC|20261122101500||ADT^A01|C2|P|2.3\r\
        EVN|A01|20261122101500\r\
        PID|1||99^^^CLINIC^MR||ROE^RICHARD||19700101|M\r\
        PV1|1|I|WARD^12^1\r";

    #[test]
    fn spliced_envelope_is_byte_identical_to_the_encoded_one() {
        let records = [
            (stored(ORU), 1_763_800_000_000_i64, None),
            (stored(ADT), -5, Some(ADT.as_bytes().to_vec())),
            (stored(ORU), i64::MAX, Some(Vec::new())),
        ];
        let mut writer = EnvelopeWriter::new("org/site/gw-1", "lab").expect("writer");
        let mut entries = Vec::new();
        for (i, (record, at, raw)) in records.into_iter().enumerate() {
            let id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + i as u128);
            let bytes = record.encode().expect("stored encodes");
            let sequence = 7 + i as u64 * 1000;
            writer
                .push(id, sequence, at, &bytes, raw.as_deref())
                .expect("push");
            entries.push(record.into_entry(id, sequence, at, raw));
        }
        assert_eq!(writer.len(), 3);
        let spliced = writer.finish().expect("finish");
        let expected = Envelope::new("org/site/gw-1", "lab", entries.clone())
            .encode()
            .expect("encodes");
        assert_eq!(spliced, expected);
        let decoded = Envelope::decode(&spliced).expect("decodes");
        assert_eq!(decoded.entries, entries);
    }

    #[test]
    fn an_empty_envelope_matches_too() {
        let writer = EnvelopeWriter::new("g", "s").expect("writer");
        assert!(writer.is_empty());
        let expected: Vec<Entry> = Vec::new();
        assert_eq!(
            writer.finish().expect("finish"),
            Envelope::new("g", "s", expected).encode().expect("encodes")
        );
    }

    #[test]
    fn a_stored_record_of_another_schema_is_refused_and_not_appended() {
        let good = stored(ORU).encode().expect("encodes");
        let mut old = postcard::to_allocvec(&(SCHEMA_VERSION - 1)).expect("version");
        old.extend_from_slice(good.get(1..).unwrap_or_default());
        let mut writer = EnvelopeWriter::new("g", "lab").expect("writer");
        let err = writer
            .push(Uuid::nil(), 1, 0, &old, None)
            .expect_err("old schema");
        assert!(matches!(
            err,
            WireError::UnknownSchema { found, .. } if found == SCHEMA_VERSION - 1
        ));
        assert!(writer.push(Uuid::nil(), 1, 0, &[], None).is_err(), "empty");
        assert!(writer.is_empty());
        writer
            .push(Uuid::nil(), 1, 0, &good, None)
            .expect("good one");
        let decoded = Envelope::decode(&writer.finish().expect("finish")).expect("decodes");
        assert_eq!(decoded.entries.len(), 1);
    }
}
