//! Counts the records that reached the hub subscriber: every payload on a non-telemetry topic is
//! decoded as a wire [`Envelope`] and each entry's record id is remembered, so duplicates
//! (allowed by at-least-once delivery) are counted apart and nothing missing goes unnoticed.

use std::collections::HashSet;

use hl7edge_protocol::wire::Envelope;

use crate::mqtt::{Received, Subscriber};

/// Running totals over the subscriber's messages; call [`RecordCount::update`] to take in the
/// messages that arrived since the last call.
#[derive(Debug, Default)]
pub struct RecordCount {
    seen_messages: usize,
    ids: HashSet<u128>,
    duplicates: u64,
    undecodable: u64,
}

impl RecordCount {
    /// A count with nothing seen.
    pub fn new() -> RecordCount {
        RecordCount::default()
    }

    /// Decodes the messages received since the last call.
    pub fn update(&mut self, subscriber: &Subscriber) {
        let start = self.seen_messages;
        subscriber.with_messages(|messages| {
            for message in messages.get(start..).unwrap_or_default() {
                self.take(message);
            }
            self.seen_messages = messages.len().max(start);
        });
    }

    fn take(&mut self, message: &Received) {
        if message.topic.ends_with("/telemetry") {
            return;
        }
        match Envelope::decode(&message.payload) {
            Ok(envelope) => {
                for entry in envelope.entries {
                    if !self.ids.insert(entry.id.as_u128()) {
                        self.duplicates += 1;
                    }
                }
            }
            Err(_) => self.undecodable += 1,
        }
    }

    /// Records in the subscriber's messages `range` (by arrival index), without remembering
    /// them: for rates over a window whose message indexes were noted cheaply while it ran.
    pub fn records_in(subscriber: &Subscriber, range: std::ops::Range<usize>) -> u64 {
        subscriber.with_messages(|messages| {
            messages
                .get(range)
                .unwrap_or_default()
                .iter()
                .filter(|m| !m.topic.ends_with("/telemetry"))
                .filter_map(|m| Envelope::decode(&m.payload).ok())
                .map(|e| u64::try_from(e.entries.len()).unwrap_or_default())
                .sum()
        })
    }

    /// Distinct records received.
    pub fn records(&self) -> u64 {
        u64::try_from(self.ids.len()).unwrap_or(u64::MAX)
    }

    /// Records received more than once.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Payloads on record topics that did not decode as an envelope.
    pub fn undecodable(&self) -> u64 {
        self.undecodable
    }
}
