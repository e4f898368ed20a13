//! The fleet model: what the hub knows about every gateway, built only from
//! the messages it is given (no MQTT, no clock: time is passed in).
//!
//! Invariants:
//! - A gateway is known by its topic levels (`org/site/gateway`); the
//!   retained status and the heartbeat of the same levels update the same
//!   entry. An empty retained status (the retained message was cleared)
//!   removes the gateway.
//! - Times are the hub's receipt times, except for retained messages: a
//!   retained status says nothing about when the gateway was last seen, and
//!   a retained heartbeat counts from its own `sent_at_ms`.
//! - An interface counts as failing while its quarantined or rejected
//!   counter rose within the error window; counters that went down (the
//!   agent restarted) start over from zero.

mod alert;
pub mod command;
mod row;
pub mod table;

use std::collections::BTreeMap;
use std::time::Duration;

use hl7edge_protocol::telemetry::{Heartbeat, Status, TelemetryError};

use crate::topics::{self, GatewayKey, TopicKind};

pub use alert::Alert;
pub use row::{Liveness, Row, SourceRow};

/// Thresholds that turn facts into alerts.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The topic prefix (`hl7edge/v1`).
    pub prefix: String,
    /// The heartbeat interval assumed when a gateway has not said its own.
    pub default_interval: Duration,
    /// A heartbeat is stale after this many intervals without one.
    pub stale_intervals: u32,
    /// Alert when the oldest unsent record is older than this.
    pub backlog_alert: Duration,
    /// Alert when the oldest record awaiting the hub's custody receipt (receipt mode) has
    /// waited longer than this.
    pub receipt_alert: Duration,
    /// Alert when the client certificate expires within this many days.
    pub cert_warn_days: i64,
    /// An interface whose error counters rose within this window is failing.
    pub error_window: Duration,
    /// Alert when the buffer is estimated to be full within this many hours.
    pub full_warn_hours: f64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            prefix: hl7edge_protocol::topic::DEFAULT_PREFIX.to_owned(),
            default_interval: Duration::from_secs(60),
            stale_intervals: 3,
            backlog_alert: Duration::from_secs(15 * 60),
            receipt_alert: Duration::from_secs(15 * 60),
            cert_warn_days: 30,
            error_window: Duration::from_secs(3600),
            full_warn_hours: 24.0,
        }
    }
}

/// Every gateway seen so far.
#[derive(Debug, Clone)]
pub struct Fleet {
    config: FleetConfig,
    gateways: BTreeMap<GatewayKey, Gateway>,
}

/// What one message changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The status of this gateway was set.
    Status(GatewayKey),
    /// A heartbeat of this gateway was recorded.
    Heartbeat(GatewayKey),
    /// The gateway's retained status was cleared: it is forgotten.
    Removed(GatewayKey),
    /// The message is not one the fleet tracks (records).
    Ignored,
}

/// Why a message could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The topic is not `{prefix}/{org}/{site}/{gateway}/{kind}`.
    #[error("topic {topic:?} is not an hl7edge gateway topic under the configured prefix")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// The status payload could not be decoded.
    #[error("status of {key}: not a valid status payload: {source}")]
    Status {
        /// The gateway.
        key: GatewayKey,
        /// The decoder's error.
        source: postcard::Error,
    },
    /// The heartbeat payload could not be decoded.
    #[error("heartbeat of {key}: {source}")]
    Heartbeat {
        /// The gateway.
        key: GatewayKey,
        /// The decoder's error.
        source: TelemetryError,
    },
}

/// What the hub knows about one gateway.
#[derive(Debug, Clone)]
struct Gateway {
    /// When this hub first heard of the gateway.
    first_seen_ms: i64,
    status: Option<Status>,
    /// Receipt time of a live (not retained) status.
    status_at_ms: Option<i64>,
    heartbeat: Option<Heartbeat>,
    /// When the last heartbeat counts as seen.
    heartbeat_at_ms: Option<i64>,
    /// Error counters per interface, to see them rise.
    errors: BTreeMap<String, ErrorTrack>,
}

/// The error counters of one interface at the last heartbeat.
#[derive(Debug, Clone, Copy, Default)]
struct ErrorTrack {
    quarantined: u64,
    rejected: u64,
    last_rise_ms: Option<i64>,
    /// Lifetime control-id reuse count (kept in the gateway's store, so it
    /// does not restart from zero with the agent).
    reused: u64,
    last_reuse_ms: Option<i64>,
}

impl Fleet {
    /// An empty fleet.
    pub fn new(config: FleetConfig) -> Fleet {
        Fleet {
            config,
            gateways: BTreeMap::new(),
        }
    }

    /// The thresholds in use.
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// Number of gateways known.
    pub fn len(&self) -> usize {
        self.gateways.len()
    }

    /// True before any gateway was seen.
    pub fn is_empty(&self) -> bool {
        self.gateways.is_empty()
    }

    /// Applies one MQTT message received at `now_ms` (Unix ms).
    pub fn apply(
        &mut self,
        topic: &str,
        payload: &[u8],
        retained: bool,
        now_ms: i64,
    ) -> Result<Applied, ApplyError> {
        let parsed =
            topics::parse(&self.config.prefix, topic).ok_or_else(|| ApplyError::UnknownTopic {
                topic: topic.to_owned(),
            })?;
        let key = parsed.key;
        match parsed.kind {
            TopicKind::Records(_) => Ok(Applied::Ignored),
            TopicKind::Status if payload.is_empty() => {
                self.gateways.remove(&key);
                Ok(Applied::Removed(key))
            }
            TopicKind::Status => {
                let status = Status::decode(payload).map_err(|source| ApplyError::Status {
                    key: key.clone(),
                    source,
                })?;
                let gw = self.entry(&key, now_ms);
                gw.status = Some(status);
                if !retained {
                    gw.status_at_ms = Some(now_ms);
                }
                Ok(Applied::Status(key))
            }
            TopicKind::Telemetry if payload.is_empty() => Ok(Applied::Ignored),
            TopicKind::Telemetry => {
                let hb = Heartbeat::decode(payload).map_err(|source| ApplyError::Heartbeat {
                    key: key.clone(),
                    source,
                })?;
                let seen = if retained { hb.sent_at_ms } else { now_ms };
                self.entry(&key, now_ms).record_heartbeat(hb, seen);
                Ok(Applied::Heartbeat(key))
            }
        }
    }

    /// One row per gateway, sorted by `org/site/gateway`, as of `now_ms`.
    pub fn rows(&self, now_ms: i64) -> Vec<Row> {
        self.gateways
            .iter()
            .map(|(key, gw)| gw.row(key, &self.config, now_ms))
            .collect()
    }

    fn entry(&mut self, key: &GatewayKey, now_ms: i64) -> &mut Gateway {
        self.gateways.entry(key.clone()).or_insert_with(|| Gateway {
            first_seen_ms: now_ms,
            status: None,
            status_at_ms: None,
            heartbeat: None,
            heartbeat_at_ms: None,
            errors: BTreeMap::new(),
        })
    }
}

impl Gateway {
    fn record_heartbeat(&mut self, hb: Heartbeat, seen_ms: i64) {
        let restarted = self
            .heartbeat
            .as_ref()
            .is_some_and(|prev| hb.uptime_s < prev.uptime_s);
        for source in &hb.sources {
            let track = self.errors.entry(source.name.clone()).or_default();
            let (q0, r0) = if restarted {
                (0, 0)
            } else {
                (track.quarantined, track.rejected)
            };
            if source.quarantined > q0 || source.rejected > r0 {
                track.last_rise_ms = Some(seen_ms);
            }
            track.quarantined = source.quarantined;
            track.rejected = source.rejected;
            if source.control_id_reused > track.reused {
                track.last_reuse_ms = Some(seen_ms);
            }
            track.reused = source.control_id_reused;
        }
        self.heartbeat = Some(hb);
        self.heartbeat_at_ms = Some(seen_ms);
    }
}

#[cfg(test)]
pub(crate) mod tests;
