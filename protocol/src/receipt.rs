//! Custody receipts: the hub's word to a gateway that records are in its
//! database.
//!
//! A gateway forwards records at QoS 1; the broker's PUBACK only says the
//! *broker* has them. The hub's ingest publishes a [`Receipt`] after its
//! database transaction commits, so a gateway in receipt mode can keep each
//! record until the hub itself holds it.
//!
//! # The contract
//!
//! - **Topic**: `{prefix}/{org}/{site}/{gateway}/receipts`
//!   ([`crate::topic::GatewayTopics::receipts`]), QoS 1, not retained. Only
//!   the hub's ingest may publish there (broker ACL); a gateway may
//!   subscribe to its own receipts topic only.
//! - **Meaning**: every id in [`Receipt::ids`] is a record id the hub has
//!   *committed*: the row is in the hub's database now, whether this
//!   delivery inserted it or an earlier one did (a republished record is
//!   receipted again). A receipt says nothing about ids it does not name;
//!   a record the hub refused (undecodable, from the wrong gateway, an
//!   unknown schema: kept in the hub's dead letters) is never receipted,
//!   so a gateway keeps it.
//! - **Repeats**: a receipt may arrive more than once, and an id may appear
//!   in several receipts (broker redelivery, two hub processes ingesting a
//!   republished record). Applying a receipt must be idempotent; an id the
//!   gateway no longer holds is ignored.
//! - **Loss**: a receipt can be lost (hub crash between commit and
//!   publish, broker restart). The gateway then republishes the record
//!   under the same id after its receipt timeout; the hub drops the
//!   duplicate row and receipts it again.
//! - **Whose receipts count**: a gateway applies a receipt only when it
//!   arrived on its *own* receipts topic *and* [`Receipt::gateway`] is its
//!   own `org/site/id`. Anything else is ignored (and worth a log line):
//!   another gateway's receipt must never delete this gateway's rows.
//! - **Order**: receipts carry no order; ids within one receipt are
//!   sorted and unique.
//!
//! # Encoding and compatibility
//!
//! Postcard: [`RECEIPT_SCHEMA_VERSION`] first, then the gateway, then the
//! ids as one byte string of 16 bytes per id (UUIDs in their big-endian
//! byte form). [`Receipt::decode`] refuses another schema version by name,
//! refuses an id list whose length is not a multiple of 16, and ignores
//! bytes after the fields it knows: a later minor addition (per-source
//! sequence ranges once the envelope carries sequence numbers) is appended
//! after `ids`, and a hub keeps naming every record in `ids` as long as
//! gateways that read version 1 exist. A receipt that names records *only*
//! by ranges needs a new schema version, which version-1 readers refuse.
//!
//! Decoding is bounded by the input: the gateway and the id bytes are
//! length-prefixed and checked against the bytes present before anything
//! is allocated, so a payload cannot claim more memory than its own size.
//! The golden file `protocol/tests/golden/receipt_v1.bin` pins the bytes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The receipt schema version this crate writes and reads.
pub const RECEIPT_SCHEMA_VERSION: u16 = 1;

/// Bytes per record id on the wire.
const ID_BYTES: usize = 16;

/// Most ids one receipt should carry when written by the hub (64 KiB of
/// ids); larger sets are split over several receipts. Readers accept any
/// count that fits the payload.
pub const MAX_IDS_PER_RECEIPT: usize = 4096;

/// The hub's statement that it committed these records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Always [`RECEIPT_SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u16,
    /// The gateway the records came from, `org/site/id` (as in the
    /// envelope's `gateway`).
    pub gateway: String,
    /// The committed record ids, sorted and unique.
    pub ids: RecordIds,
}

/// A sorted, duplicate-free list of record ids, encoded as one byte
/// string of 16 bytes per id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordIds(Vec<Uuid>);

/// Why a receipt payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The receipt was written with a schema this decoder does not know.
    #[error(
        "receipt uses schema version {found}, this decoder reads version {supported}; upgrade the gateway"
    )]
    UnknownSchema {
        /// The version in the payload.
        found: u16,
        /// The version this crate reads.
        supported: u16,
    },
    /// The bytes are not a valid receipt.
    #[error("payload is not a valid hl7edge receipt: {0}")]
    Malformed(#[from] postcard::Error),
}

impl Receipt {
    /// A receipt of the current schema for `gateway` (`org/site/id`).
    pub fn new(gateway: impl Into<String>, ids: impl IntoIterator<Item = Uuid>) -> Receipt {
        Receipt {
            schema_version: RECEIPT_SCHEMA_VERSION,
            gateway: gateway.into(),
            ids: ids.into_iter().collect(),
        }
    }

    /// Receipts for `gateway` naming `ids`, at most
    /// [`MAX_IDS_PER_RECEIPT`] ids each (none when `ids` is empty).
    pub fn split(gateway: &str, ids: impl IntoIterator<Item = Uuid>) -> Vec<Receipt> {
        let all: RecordIds = ids.into_iter().collect();
        all.0
            .chunks(MAX_IDS_PER_RECEIPT)
            .map(|chunk| Receipt::new(gateway, chunk.iter().copied()))
            .collect()
    }

    /// Encodes the receipt with postcard.
    pub fn encode(&self) -> Result<Vec<u8>, ReceiptError> {
        Ok(postcard::to_allocvec(self)?)
    }

    /// Decodes a payload, checking the schema version first.
    pub fn decode(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        let (version, _) = postcard::take_from_bytes::<u16>(bytes)?;
        if version != RECEIPT_SCHEMA_VERSION {
            return Err(ReceiptError::UnknownSchema {
                found: version,
                supported: RECEIPT_SCHEMA_VERSION,
            });
        }
        Ok(postcard::from_bytes(bytes)?)
    }
}

impl RecordIds {
    /// The ids, sorted.
    pub fn as_slice(&self) -> &[Uuid] {
        &self.0
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `id` is named.
    pub fn contains(&self, id: &Uuid) -> bool {
        self.0.binary_search(id).is_ok()
    }
}

impl FromIterator<Uuid> for RecordIds {
    fn from_iter<I: IntoIterator<Item = Uuid>>(iter: I) -> Self {
        let mut ids: Vec<Uuid> = iter.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        RecordIds(ids)
    }
}

impl Serialize for RecordIds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(self.0.len() * ID_BYTES);
        for id in &self.0 {
            bytes.extend_from_slice(id.as_bytes());
        }
        serializer.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for RecordIds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RecordIds;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string of 16-byte record ids")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<RecordIds, E> {
                if !bytes.len().is_multiple_of(ID_BYTES) {
                    return Err(E::invalid_length(bytes.len(), &self));
                }
                Ok(bytes
                    .chunks_exact(ID_BYTES)
                    .filter_map(|c| Uuid::from_slice(c).ok())
                    .collect())
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn ids_are_sorted_and_unique_and_round_trip() {
        let r = Receipt::new("o/s/g", [id(3), id(1), id(3), id(2)]);
        assert_eq!(r.ids.as_slice(), [id(1), id(2), id(3)]);
        let bytes = r.encode().unwrap();
        assert_eq!(Receipt::decode(&bytes).unwrap(), r);
        assert!(r.ids.contains(&id(2)) && !r.ids.contains(&id(4)));
    }

    #[test]
    fn each_id_costs_sixteen_bytes() {
        let one = Receipt::new("o/s/g", [id(1)]).encode().unwrap().len();
        let hundred = Receipt::new("o/s/g", (0..100).map(id))
            .encode()
            .unwrap()
            .len();
        // 99 more ids, plus one more byte of length prefix.
        assert_eq!(hundred - one, 99 * 16 + 1);
    }

    #[test]
    fn large_sets_are_split_into_bounded_receipts() {
        let receipts = Receipt::split("o/s/g", (0..(MAX_IDS_PER_RECEIPT as u128 * 2 + 1)).map(id));
        let sizes: Vec<usize> = receipts.iter().map(|r| r.ids.len()).collect();
        assert_eq!(sizes, [MAX_IDS_PER_RECEIPT, MAX_IDS_PER_RECEIPT, 1]);
        assert!(Receipt::split("o/s/g", []).is_empty());
    }

    #[test]
    fn an_id_list_that_is_not_whole_ids_is_refused() {
        let mut bytes = Receipt::new("g", [id(1)]).encode().unwrap();
        // version 1, "g" (len 1), ids (len 16): shorten the id string to 15 bytes.
        assert_eq!(&bytes[..4], [1, 1, b'g', 16]);
        bytes[3] = 15;
        bytes.pop();
        assert!(matches!(
            Receipt::decode(&bytes),
            Err(ReceiptError::Malformed(_))
        ));
    }

    #[test]
    fn bytes_after_the_known_fields_are_ignored_for_later_additions() {
        let r = Receipt::new("o/s/g", [id(7)]);
        let mut bytes = r.encode().unwrap();
        bytes.extend_from_slice(&[1, 5, b'l', b'a', b'b', 0, 0]);
        assert_eq!(Receipt::decode(&bytes).unwrap(), r);
    }

    #[test]
    fn a_length_that_claims_more_than_the_payload_is_refused_without_allocating() {
        // version 1, gateway "g", then an id string claiming 2^35 bytes.
        let bytes = [1u8, 1, b'g', 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert!(Receipt::decode(&bytes).is_err());
    }
}
