//! What one MQTT message is to the ingest: records to insert, a heartbeat
//! to keep, or a dead letter with the reason. Pure: bytes and topic in, a
//! decision out; nothing here can fail or panic on any input.
//!
//! Invariants:
//! - a payload is trusted only after it decodes *and* names the gateway of
//!   the topic it arrived on ([`crate::claim`], the rule every hub consumer
//!   applies): the broker's ACL ties topics to device certificates, the
//!   payload's own claim is only a claim;
//! - every refusal keeps the payload, the topic and a reason from a fixed
//!   vocabulary ([`DeadReason`]) plus a detail without patient data (decoder
//!   messages name positions and versions, never values).

use bytes::Bytes;

use hl7edge_protocol::telemetry::{Heartbeat, TelemetryError};
use hl7edge_protocol::wire::{Envelope, WireError};

use crate::claim;
use crate::ingest::rows::timestamp;
use crate::topics::{self, GatewayKey, NotAGatewayTopic, TopicKind};

/// One message, decided.
#[derive(Debug)]
pub enum Item {
    /// Records from `gateway` (the envelope names the same gateway).
    Records {
        /// The gateway, from the topic.
        gateway: GatewayKey,
        /// The decoded envelope.
        envelope: Envelope,
        /// The topic and payload as received (kept should the database refuse it).
        origin: Origin,
    },
    /// A heartbeat from `gateway`.
    Heartbeat {
        /// The gateway, from the topic.
        gateway: GatewayKey,
        /// The decoded heartbeat.
        heartbeat: Box<Heartbeat>,
        /// The topic and payload as received.
        origin: Origin,
    },
    /// Kept aside, not trusted.
    Dead(DeadLetter),
}

/// Where a message came from, as received.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
}

/// A message the ingest refused, as it is kept in `dead_letters`.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The topic it arrived on.
    pub topic: String,
    /// Why, from a fixed vocabulary (also the metrics label).
    pub reason: DeadReason,
    /// What exactly (no patient data).
    pub detail: String,
    /// The payload as received.
    pub payload: Bytes,
}

/// Why a message was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// The payload is not a valid envelope or heartbeat.
    Undecodable,
    /// A schema version this hub does not read (upgrade the hub).
    UnknownSchema,
    /// The payload names another gateway than its topic.
    GatewayMismatch,
    /// A topic the ingest does not take records or heartbeats from.
    UnexpectedTopic,
    /// A topic under the organization reserved for enrollment (`enroll`): a claim
    /// certificate published it, no gateway.
    ReservedOrg,
    /// A value the database cannot hold (a time out of range).
    OutOfRange,
    /// The database refused the rows (a data error, named by its SQLSTATE).
    DatabaseRefused,
}

impl Item {
    /// The dead letter this item becomes when the database refuses it. Its
    /// text columns hold no NUL (the one character PostgreSQL text refuses;
    /// the payload keeps every byte), so storing it cannot be refused again.
    pub fn refused(&self, detail: &str) -> DeadLetter {
        let (topic, payload) = match self {
            Item::Records { origin, .. } | Item::Heartbeat { origin, .. } => {
                (origin.topic.as_str(), origin.payload.clone())
            }
            Item::Dead(d) => (d.topic.as_str(), d.payload.clone()),
        };
        let text = |s: &str| s.replace('\0', "\u{fffd}");
        DeadLetter {
            topic: text(topic),
            reason: DeadReason::DatabaseRefused,
            detail: text(detail),
            payload,
        }
    }
}

impl DeadReason {
    /// Every reason, for metrics that show zeros too.
    pub const ALL: [DeadReason; 7] = [
        DeadReason::Undecodable,
        DeadReason::UnknownSchema,
        DeadReason::GatewayMismatch,
        DeadReason::UnexpectedTopic,
        DeadReason::ReservedOrg,
        DeadReason::OutOfRange,
        DeadReason::DatabaseRefused,
    ];

    /// The stored and exported name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::Undecodable => "undecodable",
            DeadReason::UnknownSchema => "unknown_schema",
            DeadReason::GatewayMismatch => "gateway_mismatch",
            DeadReason::UnexpectedTopic => "unexpected_topic",
            DeadReason::ReservedOrg => "reserved_org",
            DeadReason::OutOfRange => "out_of_range",
            DeadReason::DatabaseRefused => "database_refused",
        }
    }
}

/// Decides what the message on `topic` (under `prefix`) is.
pub fn classify(prefix: &str, topic: &str, payload: &Bytes) -> Item {
    let dead = |reason, detail: String| {
        Item::Dead(DeadLetter {
            topic: topic.to_owned(),
            reason,
            detail,
            payload: payload.clone(),
        })
    };
    let parsed = match topics::gateway_topic(prefix, topic) {
        Ok(parsed) => parsed,
        Err(e @ NotAGatewayTopic::ReservedOrg) => {
            return dead(DeadReason::ReservedOrg, e.to_string());
        }
        Err(NotAGatewayTopic::Layout) => {
            return dead(
                DeadReason::UnexpectedTopic,
                format!("not a records or telemetry topic under {prefix}"),
            );
        }
    };
    let origin = || Origin {
        topic: topic.to_owned(),
        payload: payload.clone(),
    };
    match parsed.kind {
        TopicKind::Records(_) => records(parsed.key, payload, dead, origin),
        TopicKind::Telemetry => heartbeat(parsed.key, payload, dead, origin),
        TopicKind::Status => dead(
            DeadReason::UnexpectedTopic,
            "a status topic; the ingest reads records and telemetry".into(),
        ),
    }
}

fn records(
    gateway: GatewayKey,
    payload: &[u8],
    dead: impl Fn(DeadReason, String) -> Item,
    origin: impl Fn() -> Origin,
) -> Item {
    let envelope = match Envelope::decode(payload) {
        Ok(envelope) => envelope,
        Err(e @ WireError::UnknownSchema { .. }) => {
            return dead(DeadReason::UnknownSchema, e.to_string());
        }
        Err(e) => return dead(DeadReason::Undecodable, e.to_string()),
    };
    if let Err(mismatch) = claim::check_envelope(&gateway, &envelope.gateway) {
        return dead(DeadReason::GatewayMismatch, mismatch.to_string());
    }
    if let Some(n) = envelope
        .entries
        .iter()
        .position(|e| timestamp(e.received_at_ms).is_none())
    {
        return dead(
            DeadReason::OutOfRange,
            format!("entry {n}: received_at_ms is outside the times a database can hold"),
        );
    }
    Item::Records {
        gateway,
        envelope,
        origin: origin(),
    }
}

fn heartbeat(
    gateway: GatewayKey,
    payload: &[u8],
    dead: impl Fn(DeadReason, String) -> Item,
    origin: impl Fn() -> Origin,
) -> Item {
    let heartbeat = match Heartbeat::decode(payload) {
        Ok(hb) => hb,
        Err(e @ TelemetryError::UnknownSchema { .. }) => {
            return dead(DeadReason::UnknownSchema, e.to_string());
        }
        Err(e) => return dead(DeadReason::Undecodable, e.to_string()),
    };
    if let Err(mismatch) = claim::check_heartbeat(&gateway, &heartbeat.gateway) {
        return dead(DeadReason::GatewayMismatch, mismatch.to_string());
    }
    if timestamp(heartbeat.sent_at_ms).is_none() {
        return dead(
            DeadReason::OutOfRange,
            "sent_at_ms is outside the times a database can hold".into(),
        );
    }
    Item::Heartbeat {
        gateway,
        heartbeat: Box::new(heartbeat),
        origin: origin(),
    }
}

#[cfg(test)]
mod tests;
