//! Queued rows as the envelope planner sees them, and the envelope payload
//! built from a planned group, without IO.
//!
//! Invariants:
//! - The sizes given to the planner ([`Outgoing::entry_len`],
//!   [`Outgoing::envelope_len`]) are byte-exact with what
//!   [`EnvelopeWriter`] writes, so a planned envelope is never larger than
//!   the planner allowed (tested).
//! - The stored records are copied into the envelope as they are, not
//!   decoded and encoded again (rows an older build queued were made
//!   current when they were read: `upgrade`). A row whose stored record
//!   still has another schema version (a newer build's, or one that could
//!   not be made current) is left out *and left in the store*: it is never deleted, it keeps counting in the queue depth
//!   that `status` and telemetry report, and a build that reads it sends
//!   it. An error is logged each time it is left out.

use hl7edge_protocol::wire::{self, EnvelopeWriter};
use tracing::error;

use crate::forwarder::split::Planned;
use crate::store::PendingRecord;

/// A queued row on its way out: the row and whether its raw HL7 travels.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// The row.
    pub row: PendingRecord,
    /// The raw HL7 goes with the record (the interface's `include_raw`).
    pub with_raw: bool,
    /// `org/site/id`, written into the envelope.
    pub gateway: &'a str,
}

impl Planned for Outgoing<'_> {
    fn same_topic(&self, other: &Self) -> bool {
        self.row.source == other.row.source && self.row.message_type == other.row.message_type
    }

    fn entry_len(&self) -> usize {
        let raw = self.with_raw.then_some(self.row.raw.len());
        wire::entry_len(
            self.row.source_seq,
            self.row.received_at_ms,
            self.row.record_len,
            raw,
        )
    }

    fn envelope_len(&self, count: usize, entries: usize) -> usize {
        wire::envelope_len(self.gateway, &self.row.source, count, entries)
    }
}

/// An envelope built from a planned group.
#[derive(Debug, Default)]
pub struct Built {
    /// The rows it carries, in order.
    pub seqs: Vec<i64>,
    /// Rows left out (and left in the store): unreadable by this build.
    pub left_out: Vec<i64>,
    /// The payload; empty when no row could be added.
    pub payload: Vec<u8>,
}

/// The payload for `group` (rows of one source and message type).
pub fn build(gateway: &str, group: Vec<Outgoing<'_>>) -> Built {
    let mut built = Built::default();
    let Some(first) = group.first() else {
        return built;
    };
    let entries = group.iter().map(Planned::entry_len).sum();
    let mut writer = match EnvelopeWriter::with_capacity(gateway, &first.row.source, entries) {
        Ok(writer) => writer,
        Err(e) => {
            error!(cause = %e, "records could not be encoded; kept in the queue, not sent");
            built.left_out = group.iter().map(|o| o.row.seq).collect();
            return built;
        }
    };
    built.seqs.reserve(group.len());
    for out in group {
        let row = out.row;
        let raw = out.with_raw.then_some(row.raw.as_slice());
        match writer.push(row.id, row.source_seq, row.received_at_ms, &row.record, raw) {
            Ok(()) => built.seqs.push(row.seq),
            Err(e) => {
                error!(seq = row.seq, cause = %e, "stored record cannot be sent by this build; kept in the queue, not sent");
                built.left_out.push(row.seq);
            }
        }
    }
    if built.seqs.is_empty() {
        return built;
    }
    match writer.finish() {
        Ok(payload) => built.payload = payload,
        Err(e) => {
            error!(cause = %e, "records could not be encoded; kept in the queue, not sent");
            built.left_out.append(&mut built.seqs);
        }
    }
    built
}

#[cfg(test)]
mod tests {
    use hl7edge_protocol::hl7::Message;
    use hl7edge_protocol::normalize::mapping::MappingTable;
    use hl7edge_protocol::normalize::{Context, normalize};
    use hl7edge_protocol::wire::{Envelope, StoredRecord};
    use uuid::Uuid;

    use super::*;
    use crate::forwarder::split::{Bounds, Step, plan};

    fn row(seq: i64, obx: usize, raw: bool) -> Outgoing<'static> {
        let mut text = format!(
            "MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^R01|C{seq}|P|2.5.1\rPID|1||{seq}^^^H^MR\rOBR|1\r"
        );
        for n in 1..=obx {
            text.push_str(&format!(
                "OBX|{n}|ST|N{n}^Note {n}^L||text number {n} of {seq}||||||F\r"
            ));
        }
        let msg = Message::parse(text.as_bytes()).expect("parses");
        let mapping = MappingTable::empty();
        let ctx = Context {
            time_zone: &jiff::tz::TimeZone::UTC,
            mapping: &mapping,
        };
        let record = StoredRecord {
            mapping_version: mapping.version().clone(),
            record: normalize(&msg, Vec::new(), &ctx).record,
        }
        .encode()
        .expect("encodes");
        Outgoing {
            row: PendingRecord {
                seq,
                id: Uuid::from_u128(seq as u128),
                source: "lab".into(),
                // Sequence numbers of every varint length.
                source_seq: (seq as u64).wrapping_mul(0x0123_4567_89ab_cdef) >> (seq % 64),
                message_type: "ORU^R01".into(),
                received_at_ms: 1_700_000_000_000 + seq,
                record_len: record.len(),
                record,
                raw: if raw { text.into_bytes() } else { Vec::new() },
            },
            with_raw: raw,
            gateway: "acme/clinic-12/gw-1",
        }
    }

    #[test]
    fn planned_envelopes_are_exactly_as_long_as_planned_and_within_the_limit() {
        let rows: Vec<_> = (1..=40)
            .map(|seq| row(seq, usize::try_from(seq % 9).unwrap_or(0) * 5, seq % 3 == 0))
            .collect();
        let bounds = Bounds {
            max_records: 64,
            max_payload: 4_000,
        };
        let mut published = 0;
        for step in plan(rows, bounds) {
            let Step::Publish(group) = step else {
                panic!("every row fits 4,000 bytes");
            };
            let planned: usize = group.iter().map(Planned::entry_len).sum();
            let planned = group[0].envelope_len(group.len(), planned);
            let count = group.len();
            let built = build("acme/clinic-12/gw-1", group);
            assert_eq!(built.payload.len(), planned);
            assert!(built.payload.len() <= 4_000);
            let envelope = Envelope::decode(&built.payload).expect("decodes");
            assert_eq!(envelope.entries.len(), count);
            published += count;
        }
        assert_eq!(published, 40);
    }

    #[test]
    fn a_record_of_another_schema_is_left_out_and_the_rest_is_sent() {
        let good = row(1, 2, false);
        let mut old = row(2, 2, false);
        old.row.record[0] = 1; // schema version 1
        let built = build("g", vec![good, old]);
        assert_eq!((built.seqs, built.left_out), (vec![1], vec![2]));
        assert!(!built.payload.is_empty());
    }
}
