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
///
/// The payload is written into one buffer: the head, room for the count,
/// then the entries; [`EnvelopeWriter::finish`] writes the count into that
/// room and closes the gap in place. With [`EnvelopeWriter::with_capacity`]
/// the buffer is allocated once, so a payload costs one allocation and one
/// copy of each record, whatever its size.
#[derive(Debug)]
pub struct EnvelopeWriter {
    /// `head`, [`COUNT_ROOM`] bytes, then the entries.
    buf: Vec<u8>,
    head_len: usize,
    count: usize,
}

/// Room for the entry count: the longest varint of a `u64`.
const COUNT_ROOM: usize = 10;

impl EnvelopeWriter {
    /// An empty envelope of the current schema version for records that
    /// `gateway` received on interface `source`.
    pub fn new(gateway: &str, source: &str) -> Result<Self, WireError> {
        Self::with_capacity(gateway, source, 0)
    }

    /// Like [`EnvelopeWriter::new`], with room for `entries` bytes of
    /// entries (see [`entry_len`]) allocated up front.
    pub fn with_capacity(gateway: &str, source: &str, entries: usize) -> Result<Self, WireError> {
        let capacity = envelope_len(gateway, source, 0, entries).saturating_add(COUNT_ROOM);
        let buf = postcard::to_extend(&SCHEMA_VERSION, Vec::with_capacity(capacity))?;
        let buf = postcard::to_extend(gateway, buf)?;
        let mut buf = postcard::to_extend(source, buf)?;
        let head_len = buf.len();
        buf.resize(head_len + COUNT_ROOM, 0);
        Ok(EnvelopeWriter {
            buf,
            head_len,
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
        let mut head = [0_u8; 48];
        let head = postcard::to_slice(&(id, Some(sequence), received_at_ms), &mut head)?;
        let raw_len = raw.map(<[u8]>::len);
        self.buf
            .reserve(entry_len(sequence, received_at_ms, stored.len(), raw_len));
        self.buf.extend_from_slice(head);
        self.buf.extend_from_slice(body);
        match raw {
            None => self.buf.push(0),
            Some(raw) => {
                self.buf.push(1);
                push_varint(&mut self.buf, raw.len() as u64);
                self.buf.extend_from_slice(raw);
            }
        }
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
        let mut buf = self.buf;
        let mut count = [0_u8; COUNT_ROOM];
        let count = postcard::to_slice(&self.count, &mut count)?;
        // head | gap | count | entries: move the head up to the count.
        let gap = COUNT_ROOM - count.len();
        let count_at = self.head_len + gap;
        if let Some(room) = buf.get_mut(count_at..self.head_len + COUNT_ROOM) {
            room.copy_from_slice(count);
        }
        buf.copy_within(..self.head_len, gap);
        buf.drain(..gap);
        Ok(buf)
    }
}

/// Appends `n` as postcard's varint.
fn push_varint(buf: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// The bytes [`EnvelopeWriter::push`] appends for one entry, computed
/// from lengths alone (no copy): the record id (always 17 bytes), the
/// sequence number, the receive time, the stored record after its schema
/// version, and the optional raw bytes. `stored_len` is the length of what
/// [`StoredRecord::encode`] returned; `raw_len` is `None` when the raw
/// message does not travel.
pub fn entry_len(
    sequence: u64,
    received_at_ms: i64,
    stored_len: usize,
    raw_len: Option<usize>,
) -> usize {
    /// A UUID is written as a byte string: its length (16), then 16 bytes.
    const ID_LEN: usize = 17;
    let body = stored_len.saturating_sub(varint_len(u64::from(SCHEMA_VERSION)));
    let raw = raw_len.map_or(1, |len| 1 + varint_len(len as u64) + len);
    ID_LEN
        .saturating_add(1 + varint_len(sequence))
        .saturating_add(varint_len(zigzag(received_at_ms)))
        .saturating_add(body)
        .saturating_add(raw)
}

/// The length of the payload an [`EnvelopeWriter`] for `gateway` and
/// `source` finishes with `count` entries of `entries` bytes in total (see
/// [`entry_len`]); computed, not written.
pub fn envelope_len(gateway: &str, source: &str, count: usize, entries: usize) -> usize {
    let text = |s: &str| varint_len(s.len() as u64) + s.len();
    varint_len(u64::from(SCHEMA_VERSION))
        + text(gateway)
        + text(source)
        + varint_len(count as u64)
        + entries
}

/// Bytes postcard's varint takes for `n`.
fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

/// Postcard's zigzag form of a signed number.
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
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
    fn payload_lengths_are_known_before_anything_is_appended() {
        let records = [
            (stored(ORU), 1_763_800_000_000_i64, None),
            (stored(ADT), -5, Some(ADT.as_bytes().to_vec())),
            (stored(ORU), i64::MAX, Some(vec![b'x'; 300])),
            (stored(ADT), 0, Some(Vec::new())),
            (stored(ORU), i64::MIN, None),
        ];
        let encoded: Vec<_> = records
            .iter()
            .map(|(record, at, raw)| (record.encode().expect("encodes"), *at, raw.as_deref()))
            .collect();
        for n in 1..=encoded.len() {
            // Sequence numbers of one, two and ten varint bytes.
            let sequence = |i: usize| [1, 300, u64::MAX][i % 3];
            let entries: usize = encoded
                .iter()
                .take(n)
                .enumerate()
                .map(|(i, (bytes, at, raw))| {
                    entry_len(sequence(i), *at, bytes.len(), raw.map(<[u8]>::len))
                })
                .sum();
            let predicted = envelope_len("org/site/gw-1", "lab", n, entries);
            for capacity in [0, entries] {
                let mut writer = EnvelopeWriter::with_capacity("org/site/gw-1", "lab", capacity)
                    .expect("writer");
                for (i, (bytes, at, raw)) in encoded.iter().take(n).enumerate() {
                    let id = Uuid::from_u128(u128::MAX - i as u128);
                    writer
                        .push(id, sequence(i), *at, bytes, *raw)
                        .expect("push");
                }
                let payload = writer.finish().expect("finish");
                assert_eq!(payload.len(), predicted, "{n} entries");
                assert!(payload.capacity() <= predicted + 10 || capacity == 0);
            }
        }
    }

    #[test]
    fn varint_lengths_match_postcard() {
        for n in [
            0_u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let encoded = postcard::to_allocvec(&n).expect("encodes");
            assert_eq!(varint_len(n), encoded.len(), "{n}");
        }
        for n in [0_i64, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            let encoded = postcard::to_allocvec(&n).expect("encodes");
            assert_eq!(varint_len(zigzag(n)), encoded.len(), "{n}");
        }
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
