//! One gateway as the fleet view shows it: the facts of its latest status
//! and heartbeat, derived figures, and its alerts.

use serde::Serialize;

use hl7edge_protocol::telemetry::{Counters, Heartbeat, SourceStats, ratio};

use super::alert::{self, Alert};
use super::{FleetConfig, Gateway};
use crate::topics::GatewayKey;

/// Online or not, as far as the hub can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    /// The retained status says online (or, without a status, a heartbeat
    /// arrived recently).
    Online,
    /// The retained status says offline (last will or clean shutdown).
    Offline,
    /// No status, and no recent heartbeat.
    Unknown,
}

/// One row of the fleet table (also the `--json` form).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The gateway's topic levels.
    #[serde(flatten)]
    pub key: GatewayKey,
    /// Online, offline or unknown.
    pub state: Liveness,
    /// Why it went offline, when it said.
    pub offline_reason: Option<String>,
    /// Agent version (heartbeat, else status).
    pub version: Option<String>,
    /// When the agent started, Unix ms (from the status).
    pub started_at_ms: Option<i64>,
    /// When the hub last heard from it live, Unix ms.
    pub last_seen_ms: Option<i64>,
    /// When its last heartbeat counts as seen, Unix ms.
    pub last_heartbeat_ms: Option<i64>,
    /// The heartbeat interval it declared (or the default), seconds.
    pub interval_s: u64,
    /// Seconds since the agent started, at the last heartbeat.
    pub uptime_s: Option<u64>,
    /// Records waiting for the hub.
    pub queue_depth: Option<u64>,
    /// Age of the oldest unsent record, ms (`None`: empty or unknown).
    pub oldest_unsent_ms: Option<u64>,
    /// Records set aside on the gateway as too big for the hub
    /// (`hub.max_payload`): kept there, not sent.
    pub parked: Option<u64>,
    /// Free disk bytes.
    pub disk_free_bytes: Option<u64>,
    /// Database size (db + WAL), bytes.
    pub db_bytes: Option<u64>,
    /// At the size limit or the disk is full.
    pub storage_alarm: bool,
    /// Estimated hours until the buffer is full.
    pub hours_until_full: Option<f64>,
    /// Client certificate days to expiry.
    pub cert_days_left: Option<i64>,
    /// Gateway clock offset, ms.
    pub clock_offset_ms: Option<i64>,
    /// Broker reconnects since start.
    pub broker_reconnects: Option<u64>,
    /// Message counters since start.
    pub counters: Option<Counters>,
    /// Share of codes left unmapped over all interfaces.
    pub unmapped_ratio: Option<f64>,
    /// Names of the interfaces with recent errors.
    pub failing_sources: Vec<String>,
    /// Per-interface detail.
    pub sources: Vec<SourceRow>,
    /// What needs attention, most serious first.
    pub alerts: Vec<Alert>,
}

/// One interface of a gateway: its heartbeat counters as sent, and what
/// the hub concludes from them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceRow {
    /// The interface's counters from the last heartbeat (serialized flat,
    /// one field per counter).
    #[serde(flatten)]
    pub stats: SourceStats,
    /// `codes_unmapped / (codes_mapped + codes_unmapped)`.
    pub unmapped_ratio: Option<f64>,
    /// Quarantined or rejected counts rose within the error window.
    pub failing: bool,
    /// The control-id reuse count rose within the error window.
    pub reusing: bool,
}

impl Gateway {
    pub(super) fn row(&self, key: &GatewayKey, config: &FleetConfig, now_ms: i64) -> Row {
        let hb = self.heartbeat.as_ref();
        let interval_s = hb
            .map(|h| u64::from(h.interval_s))
            .filter(|s| *s > 0)
            .unwrap_or(config.default_interval.as_secs().max(1));
        let stale_ms = ms(interval_s * 1000 * u64::from(config.stale_intervals.max(1)));
        let silent_since = self.heartbeat_at_ms.unwrap_or(self.first_seen_ms);
        let fresh = now_ms.saturating_sub(silent_since) <= stale_ms;
        let state = match &self.status {
            Some(s) if s.online => Liveness::Online,
            Some(_) => Liveness::Offline,
            None if self.heartbeat.is_some() && fresh => Liveness::Online,
            None => Liveness::Unknown,
        };
        let window_ms = ms(u64::try_from(config.error_window.as_millis()).unwrap_or(u64::MAX));
        let sources = hb.map_or_else(Vec::new, |h| self.source_rows(h, now_ms, window_ms));
        let mut row = Row {
            key: key.clone(),
            state,
            offline_reason: self
                .status
                .as_ref()
                .filter(|s| !s.online)
                .and_then(|s| s.reason.clone()),
            version: hb
                .map(|h| h.version.clone())
                .or_else(|| self.status.as_ref().map(|s| s.version.clone())),
            started_at_ms: self.status.as_ref().map(|s| s.started_at_ms),
            last_seen_ms: max_opt(self.status_at_ms, self.heartbeat_at_ms),
            last_heartbeat_ms: self.heartbeat_at_ms,
            interval_s,
            uptime_s: hb.map(|h| h.uptime_s),
            queue_depth: hb.map(|h| h.queue.depth),
            oldest_unsent_ms: hb.and_then(|h| h.queue.oldest_unsent_age_ms),
            parked: hb.map(|h| h.queue.parked),
            disk_free_bytes: hb.map(|h| h.storage.disk_free_bytes),
            db_bytes: hb.map(|h| h.storage.db_bytes),
            storage_alarm: hb.is_some_and(|h| h.storage.alarm),
            hours_until_full: hb.and_then(|h| h.hours_until_full),
            cert_days_left: hb.and_then(|h| h.cert_days_left),
            clock_offset_ms: hb.and_then(|h| h.clock_offset_ms),
            broker_reconnects: hb.map(|h| h.broker_reconnects),
            counters: hb.map(|h| h.counters),
            unmapped_ratio: ratio(
                sources.iter().map(|s| s.stats.codes_unmapped).sum(),
                sources.iter().map(|s| s.stats.codes_mapped).sum(),
            ),
            failing_sources: sources
                .iter()
                .filter(|s| s.failing)
                .map(|s| s.stats.name.clone())
                .collect(),
            sources,
            alerts: Vec::new(),
        };
        let silent_ms =
            (state == Liveness::Online && !fresh).then(|| now_ms.saturating_sub(silent_since));
        row.alerts = alert::alerts(&row, hb, config, silent_ms);
        row
    }

    fn source_rows(&self, hb: &Heartbeat, now_ms: i64, window_ms: i64) -> Vec<SourceRow> {
        hb.sources
            .iter()
            .map(|s| {
                let track = self.errors.get(&s.name);
                let recent =
                    |at: Option<i64>| at.is_some_and(|at| now_ms.saturating_sub(at) <= window_ms);
                let failing = recent(track.and_then(|t| t.last_rise_ms));
                let reusing = recent(track.and_then(|t| t.last_reuse_ms));
                SourceRow {
                    stats: s.clone(),
                    unmapped_ratio: s.unmapped_ratio(),
                    failing,
                    reusing,
                }
            })
            .collect()
    }
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}
