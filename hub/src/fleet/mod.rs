//! The fleet model: what the hub knows about every gateway, built only from
//! the messages it is given (no MQTT, no clock: time is passed in).
//!
//! Invariants:
//! - A gateway is known by its topic levels (`org/site/gateway`); the
//!   retained status and the heartbeat of the same levels update the same
//!   entry. An empty retained status (the retained message was cleared)
//!   removes the gateway; an empty retained heartbeat forgets its heartbeat.
//! - Gateways publish their heartbeat retained, so a hub that starts later
//!   knows every gateway's backlog and counters from its first second.
//! - "Last seen" is the last message *from the gateway*: a heartbeat (when
//!   it arrived live, or its own `sent_at_ms` when retained) or a status it
//!   published itself. The offline status the broker publishes as the
//!   gateway's last will is the broker's message, not the gateway's; a
//!   retained status says nothing about when it was published.
//! - A gateway the broker still calls online, whose heartbeats stopped for
//!   more than one and a half of its intervals, is *late*, with the number of
//!   heartbeats it missed: that shows before the broker's keep-alive runs
//!   out and it publishes the last will.
//! - A listener is failing while messages were quarantined (answered AE)
//!   within the error window, counted from the increases of its counter
//!   ([`track`]): a hub's first sight of an agent that started long ago is
//!   a baseline, and a restarted agent's counters start over, so neither a
//!   new hub nor a clean restart reads as a failure.
//! - A heartbeat is applied only when the gateway it names is its topic's
//!   ([`crate::claim`]); otherwise it is refused and counted.
//! - Memory is bounded: at most `max_gateways` gateways and, per gateway,
//!   `max_sources` listeners are tracked. A message from a gateway beyond
//!   the cap, or the listeners of a heartbeat beyond it, are not tracked,
//!   and counted ([`Refusals`]); the caller logs them.

mod alert;
pub mod command;
mod row;
pub mod table;
mod track;

use std::collections::BTreeMap;
use std::time::Duration;

use hl7edge_protocol::telemetry::{Heartbeat, Status, TelemetryError};

use crate::claim::{self, GatewayMismatch};
use crate::topics::{self, GatewayKey, TopicKind};

pub use alert::Alert;

/// Every kind of alert, as the `kind` field and the metrics' `kind` label name them.
pub fn alert_kinds() -> &'static [&'static str] {
    &alert::KINDS
}
pub use command::apply_logged;
pub use row::{ListenerRow, Liveness, Row};

use track::{Rises, Since};

/// Thresholds that turn facts into alerts.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The topic prefix (`hl7edge/v1`).
    pub prefix: String,
    /// The heartbeat interval assumed when a gateway has not said its own.
    pub default_interval: Duration,
    /// Alert when the oldest unsent record is older than this.
    pub backlog_alert: Duration,
    /// Alert when the oldest record awaiting the hub's custody receipt (receipt mode) has
    /// waited longer than this.
    pub receipt_alert: Duration,
    /// Alert when the client certificate expires within this many days.
    pub cert_warn_days: i64,
    /// A listener that quarantined messages within this window is failing;
    /// control-id reuse within it is an alert too.
    pub error_window: Duration,
    /// Alert when the buffer is estimated to be full within this many hours.
    pub full_warn_hours: f64,
    /// Most gateways tracked; messages from more are counted, not tracked.
    pub max_gateways: usize,
    /// Most interfaces tracked per gateway; a heartbeat's further ones are counted, not kept.
    pub max_sources: usize,
}

/// Default of [`FleetConfig::max_gateways`].
pub const DEFAULT_MAX_GATEWAYS: usize = 10_000;
/// Default of [`FleetConfig::max_sources`].
pub const DEFAULT_MAX_SOURCES: usize = 64;

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            prefix: hl7edge_protocol::topic::DEFAULT_PREFIX.to_owned(),
            default_interval: Duration::from_secs(60),
            backlog_alert: Duration::from_secs(15 * 60),
            receipt_alert: Duration::from_secs(15 * 60),
            cert_warn_days: 30,
            error_window: Duration::from_secs(3600),
            full_warn_hours: 24.0,
            max_gateways: DEFAULT_MAX_GATEWAYS,
            max_sources: DEFAULT_MAX_SOURCES,
        }
    }
}

/// What the fleet refused to believe or to track, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Heartbeats that named another gateway than their topic's (dropped).
    pub gateway_mismatch: u64,
    /// Messages from gateways beyond `max_gateways` (not tracked).
    pub untracked_gateways: u64,
    /// Interfaces of heartbeats beyond `max_sources` (not kept).
    pub untracked_sources: u64,
}

/// Every gateway seen so far.
#[derive(Debug, Clone)]
pub struct Fleet {
    config: FleetConfig,
    gateways: BTreeMap<GatewayKey, Gateway>,
    refusals: Refusals,
}

/// What one message changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The status of this gateway was set.
    Status(GatewayKey),
    /// A heartbeat of this gateway was recorded.
    Heartbeat(GatewayKey),
    /// A heartbeat of this gateway was recorded without its interfaces beyond
    /// `max_sources` (this many were left out).
    HeartbeatCapped(GatewayKey, usize),
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
    /// The heartbeat names another gateway than its topic's: dropped.
    #[error("dropped: {0}")]
    GatewayMismatch(#[from] GatewayMismatch),
    /// A new gateway beyond `max_gateways`: not tracked.
    #[error("gateway {key} not tracked: the fleet already tracks {max} gateways (--max-gateways)")]
    Untracked {
        /// The gateway.
        key: GatewayKey,
        /// The cap.
        max: usize,
    },
}

impl ApplyError {
    /// True for a payload that could not be read (as opposed to one refused by the fleet's
    /// rules: a claim that does not match its topic, a gateway beyond the cap).
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            Self::UnknownTopic { .. } | Self::Status { .. } | Self::Heartbeat { .. }
        )
    }
}

/// What the hub knows about one gateway.
#[derive(Debug, Clone)]
struct Gateway {
    /// When this hub first heard of the gateway.
    first_seen_ms: i64,
    status: Option<Status>,
    /// Receipt time of the last status the gateway published itself, live
    /// (not retained, not its last will).
    status_at_ms: Option<i64>,
    heartbeat: Option<Heartbeat>,
    /// When the last heartbeat counts as seen.
    heartbeat_at_ms: Option<i64>,
    /// Counters per listener, to see them rise.
    listeners: BTreeMap<String, ListenerTrack>,
    /// The other identity the last dropped heartbeat on this gateway's topic claimed, and when
    /// (an alert for the error window).
    claimed_other: Option<(String, i64)>,
}

/// The counters of one listener whose recent increases make alerts.
#[derive(Debug, Clone, Default)]
struct ListenerTrack {
    quarantined: Rises,
    rejected: Rises,
    reused: Rises,
}

impl Fleet {
    /// An empty fleet.
    pub fn new(config: FleetConfig) -> Fleet {
        Fleet {
            config,
            gateways: BTreeMap::new(),
            refusals: Refusals::default(),
        }
    }

    /// What was refused or not tracked since the fleet started.
    pub fn refusals(&self) -> Refusals {
        self.refusals
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
                let gw = self.entry(&key, now_ms)?;
                if !retained && !status.is_last_will() {
                    gw.status_at_ms = Some(now_ms);
                }
                gw.status = Some(status);
                Ok(Applied::Status(key))
            }
            TopicKind::Telemetry if payload.is_empty() => {
                if let Some(gw) = self.gateways.get_mut(&key) {
                    gw.heartbeat = None;
                    gw.heartbeat_at_ms = None;
                    gw.listeners.clear();
                    if gw.status.is_none() {
                        self.gateways.remove(&key);
                        return Ok(Applied::Removed(key));
                    }
                }
                Ok(Applied::Ignored)
            }
            TopicKind::Telemetry => {
                let hb = Heartbeat::decode(payload).map_err(|source| ApplyError::Heartbeat {
                    key: key.clone(),
                    source,
                })?;
                if let Err(mismatch) = claim::check_heartbeat(&key, &hb.gateway) {
                    self.refusals.gateway_mismatch += 1;
                    // The topic's gateway is who sent it (the broker's ACL says so): its row
                    // shows the claim as an alert; nothing of the heartbeat is applied.
                    if let Ok(gw) = self.entry(&key, now_ms) {
                        gw.claimed_other = Some((mismatch.named_shown(), now_ms));
                    }
                    return Err(mismatch.into());
                }
                // A retained heartbeat was sent at its own time (by the gateway's clock, never
                // later than now).
                let seen = if retained {
                    hb.sent_at_ms.min(now_ms)
                } else {
                    now_ms
                };
                let window = window_ms(&self.config);
                let max_sources = self.config.max_sources;
                let left_out =
                    self.entry(&key, now_ms)?
                        .record_heartbeat(hb, seen, window, max_sources);
                if left_out == 0 {
                    return Ok(Applied::Heartbeat(key));
                }
                self.refusals.untracked_sources += left_out as u64;
                Ok(Applied::HeartbeatCapped(key, left_out))
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

    /// The gateway's entry, created when the cap allows; a new gateway beyond it is counted.
    fn entry(&mut self, key: &GatewayKey, now_ms: i64) -> Result<&mut Gateway, ApplyError> {
        let max = self.config.max_gateways;
        if !self.gateways.contains_key(key) && self.gateways.len() >= max {
            self.refusals.untracked_gateways += 1;
            return Err(ApplyError::Untracked {
                key: key.clone(),
                max,
            });
        }
        Ok(self.gateways.entry(key.clone()).or_insert_with(|| Gateway {
            first_seen_ms: now_ms,
            status: None,
            status_at_ms: None,
            heartbeat: None,
            heartbeat_at_ms: None,
            listeners: BTreeMap::new(),
            claimed_other: None,
        }))
    }
}

/// The error window in milliseconds.
fn window_ms(config: &FleetConfig) -> i64 {
    i64::try_from(config.error_window.as_millis()).unwrap_or(i64::MAX)
}

/// True for the 1st, 2nd, 4th, 8th, ... refusal of a kind: the ones worth a log line, so a
/// flood of them costs a logarithmic number of lines.
pub fn worth_logging(count: u64) -> bool {
    count.is_power_of_two()
}

impl Gateway {
    /// Records `hb`, keeping at most `max_sources` of its listeners (and tracking the counters
    /// of those only); returns how many it left out.
    fn record_heartbeat(
        &mut self,
        mut hb: Heartbeat,
        seen_ms: i64,
        window_ms: i64,
        max_sources: usize,
    ) -> usize {
        let left_out = hb.sources.len().saturating_sub(max_sources);
        hb.sources.truncate(max_sources);
        let previous = self.heartbeat.as_ref();
        // The same heartbeat again (a retained one, delivered once more on a new subscription,
        // or a QoS 1 redelivery) is not news.
        if previous.is_some_and(|p| *p == hb) {
            return left_out;
        }
        self.listeners
            .retain(|name, _| hb.sources.iter().any(|s| &s.name == name));
        let recent_start = i64::try_from(hb.uptime_s.saturating_mul(1000))
            .is_ok_and(|uptime_ms| uptime_ms <= window_ms);
        let restarted = previous.is_some_and(|p| hb.uptime_s < p.uptime_s);
        for listener in &hb.sources {
            let known = self.listeners.contains_key(&listener.name);
            let since = match (known, restarted) {
                (false, _) => Since::FirstSight { recent_start },
                (true, true) => Since::Restart,
                (true, false) => Since::SameRun,
            };
            let track = self.listeners.entry(listener.name.clone()).or_default();
            track
                .quarantined
                .observe(listener.quarantined, since, seen_ms, window_ms);
            track
                .rejected
                .observe(listener.rejected, since, seen_ms, window_ms);
            track
                .reused
                .observe(listener.control_id_reused, since, seen_ms, window_ms);
        }
        self.heartbeat = Some(hb);
        self.heartbeat_at_ms = Some(seen_ms);
        left_out
    }
}

#[cfg(test)]
pub(crate) mod tests;
