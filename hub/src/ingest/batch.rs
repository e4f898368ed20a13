//! A batch: the messages waiting for one database commit, with what to do
//! after it (acknowledge each message, send receipts). Pure.
//!
//! Invariants:
//! - messages keep their arrival order, so acknowledgements go to the
//!   broker in the order the messages came (MQTT 3.1.1 §4.6 asks a client
//!   to acknowledge QoS 1 messages in order);
//! - a batch is full at `max_records` records or `max_bytes` payload bytes
//!   (a single message larger than either still makes a batch of its own).

use std::collections::BTreeMap;
use std::time::Instant;

use rumqttc::{AsyncClient, QoS};
use uuid::Uuid;

use crate::ingest::classify::Item;
use crate::topics::GatewayKey;

/// How to acknowledge one message after the commit.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The client of the connection the message arrived on.
    pub client: AsyncClient,
    /// Its QoS.
    pub qos: QoS,
    /// Its packet id.
    pub pkid: u16,
}

/// One message of a batch.
#[derive(Debug)]
pub struct Pending {
    /// What it is.
    pub item: Item,
    /// `None` for QoS 0 (nothing to acknowledge).
    pub ack: Option<Ack>,
}

/// Limits of one batch.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Records per batch.
    pub max_records: usize,
    /// Payload bytes per batch.
    pub max_bytes: usize,
}

/// The messages of one commit.
#[derive(Debug)]
pub struct Batch {
    /// In arrival order.
    pub pending: Vec<Pending>,
    records: usize,
    bytes: usize,
    started: Option<Instant>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch {
            pending: Vec::new(),
            records: 0,
            bytes: 0,
            started: None,
        }
    }

    /// Adds a message of `bytes` payload bytes that arrived `now`.
    pub fn push(&mut self, pending: Pending, bytes: usize, now: Instant) {
        if let Item::Records { envelope, .. } = &pending.item {
            self.records += envelope.entries.len();
        }
        self.bytes += bytes;
        self.started.get_or_insert(now);
        self.pending.push(pending);
    }

    /// True when no more messages should be added.
    pub fn is_full(&self, limits: Limits) -> bool {
        self.records >= limits.max_records || self.bytes >= limits.max_bytes
    }

    /// True when there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Records in the batch (before dedupe).
    pub fn records(&self) -> usize {
        self.records
    }

    /// When the first message arrived.
    pub fn started(&self) -> Option<Instant> {
        self.started
    }

    /// After the commit: the committed record ids per gateway (every entry
    /// of every envelope still to be inserted as records; items the database
    /// refused have become dead letters and are not named).
    pub fn receipts(&self) -> BTreeMap<&GatewayKey, Vec<Uuid>> {
        let mut by_gateway: BTreeMap<&GatewayKey, Vec<Uuid>> = BTreeMap::new();
        for p in &self.pending {
            if let Item::Records {
                gateway, envelope, ..
            } = &p.item
            {
                by_gateway
                    .entry(gateway)
                    .or_default()
                    .extend(envelope.entries.iter().map(|e| e.id));
            }
        }
        by_gateway.retain(|_, ids| !ids.is_empty());
        by_gateway
    }

    /// The gateway receive times of the records, Unix milliseconds.
    pub fn received_at_ms(&self) -> impl Iterator<Item = i64> + '_ {
        self.pending.iter().flat_map(|p| match &p.item {
            Item::Records { envelope, .. } => envelope
                .entries
                .iter()
                .map(|e| e.received_at_ms)
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
    }
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use hl7edge_protocol::wire::Envelope;

    use super::*;
    use crate::ingest::classify::{DeadLetter, DeadReason, Origin};

    fn records(gateway: &str, ids: &[u128]) -> Pending {
        let [org, site, gw] = gateway.split('/').collect::<Vec<_>>()[..] else {
            unreachable!("org/site/id")
        };
        let mut envelope = Envelope::new(gateway, "lab", Vec::new());
        let record = hl7edge_protocol::wire::StoredRecord {
            mapping_version: hl7edge_protocol::normalize::mapping::MappingTable::empty()
                .version()
                .clone(),
            record: hl7edge_protocol::record::Record {
                header: hl7edge_protocol::record::Header {
                    message_code: "ACK".into(),
                    trigger_event: "".into(),
                    control_id: "1".into(),
                    version: "2.5".into(),
                    sending_application: "".into(),
                    sending_facility: "".into(),
                    message_time: None,
                    processing: hl7edge_protocol::record::Processing::Production,
                    ..Default::default()
                },
                patient: None,
                encounter: None,
                body: hl7edge_protocol::record::Body::Generic(
                    hl7edge_protocol::record::GenericMessage {
                        delimiters: "|^~\\&".into(),
                        segments: Vec::new(),
                    },
                ),
                issues: Vec::new(),
                not_carried: Vec::new(),
            },
        };
        envelope.entries = ids
            .iter()
            .map(|id| {
                record
                    .clone()
                    .into_entry(Uuid::from_u128(*id), *id as u64, 0, None)
            })
            .collect();
        Pending {
            item: Item::Records {
                gateway: GatewayKey {
                    org: org.into(),
                    site: site.into(),
                    gateway: gw.into(),
                },
                envelope,
                origin: Origin {
                    topic: String::new(),
                    payload: Bytes::new(),
                },
            },
            ack: None,
        }
    }

    fn dead() -> Pending {
        Pending {
            item: Item::Dead(DeadLetter {
                topic: "t".into(),
                reason: DeadReason::Undecodable,
                detail: String::new(),
                payload: Bytes::from_static(b"x"),
            }),
            ack: None,
        }
    }

    #[test]
    fn receipts_group_the_committed_ids_by_gateway_and_skip_dead_letters() {
        let mut batch = Batch::new();
        let now = Instant::now();
        batch.push(records("o/s/a", &[1, 2]), 10, now);
        batch.push(dead(), 10, now);
        batch.push(records("o/s/b", &[3]), 10, now);
        batch.push(records("o/s/a", &[4]), 10, now);
        let receipts = batch.receipts();
        let by_name: Vec<(String, Vec<u128>)> = receipts
            .iter()
            .map(|(k, ids)| (k.to_string(), ids.iter().map(|u| u.as_u128()).collect()))
            .collect();
        assert_eq!(
            by_name,
            [
                ("o/s/a".to_string(), vec![1, 2, 4]),
                ("o/s/b".to_string(), vec![3])
            ]
        );
        assert_eq!(batch.records(), 4);
    }

    #[test]
    fn a_batch_is_full_at_its_record_or_byte_limit() {
        let limits = Limits {
            max_records: 3,
            max_bytes: 100,
        };
        let now = Instant::now();
        let mut batch = Batch::new();
        batch.push(records("o/s/a", &[1, 2]), 10, now);
        assert!(!batch.is_full(limits));
        batch.push(records("o/s/a", &[3]), 10, now);
        assert!(batch.is_full(limits), "three records");
        let mut big = Batch::new();
        big.push(dead(), 100, now);
        assert!(big.is_full(limits), "one message at the byte limit");
        assert_eq!(big.started(), Some(now));
    }
}
