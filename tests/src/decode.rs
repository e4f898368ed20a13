//! Decodes what the stand-in hub received into what the checker compares: record envelopes on
//! `.../records/...` into [`Delivered`] (record id, source, control id), and the retained
//! `.../status` payloads into [`Status`], the `.../telemetry` heartbeats into [`Heartbeat`].
//!
//! Invariants:
//! - deliveries keep the arrival order of the messages and, within a batch envelope, the entry
//!   order, so [`crate::checker::check`] can judge order per source;
//! - a payload on a records topic that does not decode is reported, never skipped silently.

use hl7edge_protocol::telemetry::{Heartbeat, Status};
use hl7edge_protocol::wire::Envelope;

use crate::checker::Delivered;
use crate::mqtt::Received;

/// Everything decoded from the received messages.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Records in arrival order (batch entries in envelope order).
    pub delivered: Vec<Delivered>,
    /// Status payloads in arrival order, with their retain flag.
    pub statuses: Vec<(Status, bool)>,
    /// Heartbeats in arrival order.
    pub heartbeats: Vec<Heartbeat>,
    /// Topics of payloads that could not be decoded.
    pub undecodable: Vec<String>,
}

/// Decodes every received message.
pub fn decode(received: &[Received]) -> Decoded {
    let mut decoded = Decoded::default();
    for message in received {
        if message.topic.contains("/records/") {
            match Envelope::decode(&message.payload) {
                Ok(envelope) => decoded.delivered.extend(deliveries(&envelope)),
                Err(_) => decoded.undecodable.push(message.topic.clone()),
            }
        } else if message.topic.ends_with("/status") {
            match Status::decode(&message.payload) {
                Ok(status) => decoded.statuses.push((status, message.retain)),
                Err(_) => decoded.undecodable.push(message.topic.clone()),
            }
        } else if message.topic.ends_with("/telemetry") {
            match Heartbeat::decode(&message.payload) {
                Ok(heartbeat) => decoded.heartbeats.push(heartbeat),
                Err(_) => decoded.undecodable.push(message.topic.clone()),
            }
        }
    }
    decoded
}

/// The records of one envelope, in entry order.
pub fn deliveries(envelope: &Envelope) -> impl Iterator<Item = Delivered> + '_ {
    envelope.entries.iter().map(|entry| Delivered {
        record_id: entry.id.to_string(),
        source: envelope.source.clone(),
        control_id: entry.record.header.control_id.to_string(),
    })
}

/// How many record deliveries (batch entries counted one by one) are in `received`.
pub fn count_records(received: &[Received]) -> usize {
    decode(received).delivered.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undecodable_record_payload_is_reported_by_topic() {
        let received = [Received {
            topic: "hl7edge/v1/a/b/c/records/ORU".into(),
            payload: vec![0xff, 0xff, 0xff],
            retain: false,
            dup: false,
            response_topic: None,
            correlation_data: None,
            user_properties: Vec::new(),
            received_at: std::time::SystemTime::now(),
        }];
        let decoded = decode(&received);
        assert!(decoded.delivered.is_empty());
        assert_eq!(decoded.undecodable, ["hl7edge/v1/a/b/c/records/ORU"]);
    }
}
