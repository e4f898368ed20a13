//! One gateway as the fleet view shows it: the facts of its latest status
//! and heartbeat, derived figures, and its alerts.

use serde::Serialize;

use hl7edge_protocol::telemetry::{Counters, Heartbeat, SourceStats, ratio};

use super::alert::{self, Alert};
use super::{FleetConfig, Gateway, window_ms};
use crate::topics::GatewayKey;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Online or not, as far as the hub can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    /// The retained status says online and heartbeats arrive (or, without a
    /// status, a heartbeat arrived recently).
    Online,
    /// The retained status says online, but at least one heartbeat is
    /// missing: the gateway (or its link) may be stuck, and the broker has
    /// not declared it offline yet.
    Late,
    /// The retained status says offline (last will or clean shutdown).
    Offline,
    /// No status, and no recent heartbeat.
    Unknown,
}

impl Liveness {
    /// The word the table shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Online => "online",
            Liveness::Late => "late",
            Liveness::Offline => "offline",
            Liveness::Unknown => "unknown",
        }
    }
}

/// One row of the fleet table (also the `--json` form).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The gateway's topic levels.
    #[serde(flatten)]
    pub key: GatewayKey,
    /// Online, late, offline or unknown.
    pub state: Liveness,
    /// Heartbeats missed since the last one (online or late gateways).
    pub missed_heartbeats: Option<u64>,
    /// Why it went offline, when it said.
    pub offline_reason: Option<String>,
    /// Agent version (heartbeat, else status).
    pub version: Option<String>,
    /// When the agent started, Unix ms (from the status).
    pub started_at_ms: Option<i64>,
    /// When the hub last had a message from the gateway itself (a heartbeat
    /// or a status it published; not the last will the broker publishes for
    /// it), Unix ms.
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
    /// `puback` or `receipt`: when the gateway lets go of a record.
    pub custody: Option<String>,
    /// Records the broker acknowledged that the gateway holds until the hub's custody receipt
    /// (receipt mode).
    pub awaiting_receipt: Option<u64>,
    /// How long the oldest of them has waited since its PUBACK, ms (`None`: none, or unknown).
    pub oldest_awaiting_receipt_ms: Option<u64>,
    /// The gateway's last hub connection failure's cause (`not_listening`, `receipts_refused`,
    /// ...), as its last heartbeat said.
    pub hub_error_cause: Option<String>,
    /// Free disk bytes.
    pub disk_free_bytes: Option<u64>,
    /// Database size (db + WAL), bytes.
    pub db_bytes: Option<u64>,
    /// At the size limit or the disk is full.
    pub storage_alarm: bool,
    /// Estimated hours until the buffer is full (at its last heartbeat).
    pub hours_until_full: Option<f64>,
    /// When the buffer is estimated to be full, Unix ms.
    pub buffer_full_at_ms: Option<i64>,
    /// Client certificate days to expiry, from now.
    pub cert_days_left: Option<i64>,
    /// When the client certificate expires, Unix ms.
    pub cert_expires_ms: Option<i64>,
    /// Gateway clock offset, ms.
    pub clock_offset_ms: Option<i64>,
    /// Broker reconnects since start.
    pub broker_reconnects: Option<u64>,
    /// Message counters since start.
    pub counters: Option<Counters>,
    /// Share of coded elements without a standard code, over all listeners.
    pub unmapped_ratio: Option<f64>,
    /// Names of the listeners that quarantined messages within the error window.
    pub failing_listeners: Vec<String>,
    /// The error window the `*_recently` counts cover, seconds.
    pub error_window_s: u64,
    /// Per-listener detail.
    pub listeners: Vec<ListenerRow>,
    /// The outcome of the latest signed push per listener, as the last heartbeat said.
    pub pushes: Vec<hl7edge_protocol::telemetry::PushReport>,
    /// What needs attention, most serious first.
    pub alerts: Vec<Alert>,
}

/// One listener of a gateway: its heartbeat counters as sent, and what
/// the hub concludes from them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListenerRow {
    /// The listener's counters from the last heartbeat (serialized flat,
    /// one field per counter).
    #[serde(flatten)]
    pub stats: SourceStats,
    /// `codes_unmapped / (codes_mapped + codes_unmapped)`.
    pub unmapped_ratio: Option<f64>,
    /// Messages quarantined (AE) within the error window: the listener is failing.
    pub quarantined_recently: u64,
    /// Messages refused (AR) within the error window (the sender keeps and resends them).
    pub rejected_recently: u64,
    /// Control ids reused with other content within the error window.
    pub reused_recently: u64,
    /// Messages were quarantined within the error window.
    pub failing: bool,
    /// Seconds without a message while the gateway judges the feed silent against its learned
    /// hourly rhythm; `None` otherwise, and while the gateway is not online (an offline or late
    /// gateway's feeds are not also "silent"), and while the listener is switched off by a
    /// push (silent on purpose).
    pub silent_s: Option<u64>,
    /// Switched off by a push: refuses connections on purpose (not a failure).
    pub disabled: bool,
}

impl Gateway {
    pub(super) fn row(&self, key: &GatewayKey, config: &FleetConfig, now_ms: i64) -> Row {
        let hb = self.heartbeat.as_ref();
        let interval_s = hb
            .map(|h| u64::from(h.interval_s))
            .filter(|s| *s > 0)
            .unwrap_or(config.default_interval.as_secs().max(1));
        let silent_since = self
            .heartbeat_at_ms
            .or(self.status_at_ms)
            .unwrap_or(self.first_seen_ms);
        let silent_ms = now_ms.saturating_sub(silent_since);
        let missed = missed_heartbeats(silent_ms, interval_s);
        let state = match &self.status {
            Some(s) if s.online && missed > 0 => Liveness::Late,
            Some(s) if s.online => Liveness::Online,
            Some(_) => Liveness::Offline,
            None if hb.is_some() && missed == 0 => Liveness::Online,
            None => Liveness::Unknown,
        };
        let live = state == Liveness::Online;
        let listeners = hb.map_or_else(Vec::new, |h| self.listener_rows(h, config, now_ms, live));
        let cert_expires_ms = hb.and_then(|h| {
            h.cert_not_after_ms.or_else(|| {
                h.cert_days_left
                    .map(|d| h.sent_at_ms.saturating_add(d.saturating_mul(DAY_MS)))
            })
        });
        let mut row = Row {
            key: key.clone(),
            state,
            missed_heartbeats: matches!(state, Liveness::Online | Liveness::Late).then_some(missed),
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
            custody: hb.map(|h| h.hub.custody.clone()).filter(|c| !c.is_empty()),
            awaiting_receipt: hb.map(|h| h.hub.awaiting_receipt),
            oldest_awaiting_receipt_ms: hb.and_then(|h| h.hub.oldest_awaiting_receipt_age_ms),
            hub_error_cause: hb.and_then(|h| h.hub.last_error_cause.clone()),
            pushes: hb.map(|h| h.pushes.clone()).unwrap_or_default(),
            disk_free_bytes: hb.map(|h| h.storage.disk_free_bytes),
            db_bytes: hb.map(|h| h.storage.db_bytes),
            storage_alarm: hb.is_some_and(|h| h.storage.alarm),
            hours_until_full: hb
                .and_then(|h| h.hours_until_full)
                .filter(|h| h.is_finite()),
            buffer_full_at_ms: hb.and_then(buffer_full_at_ms),
            cert_days_left: match (hb.and_then(|h| h.cert_not_after_ms), cert_expires_ms) {
                (Some(at), _) => Some(at.saturating_sub(now_ms).div_euclid(DAY_MS)),
                (None, _) => hb.and_then(|h| h.cert_days_left),
            },
            cert_expires_ms,
            clock_offset_ms: hb.and_then(|h| h.clock_offset_ms),
            broker_reconnects: hb.map(|h| h.broker_reconnects),
            counters: hb.map(|h| h.counters),
            unmapped_ratio: ratio(
                listeners.iter().map(|s| s.stats.codes_unmapped).sum(),
                listeners.iter().map(|s| s.stats.codes_mapped).sum(),
            ),
            failing_listeners: listeners
                .iter()
                .filter(|s| s.failing)
                .map(|s| s.stats.name.clone())
                .collect(),
            error_window_s: config.error_window.as_secs(),
            listeners,
            alerts: Vec::new(),
        };
        row.alerts = alert::alerts(&row, hb, config, silent_ms);
        if let Some((reported, _)) = self
            .claimed_other
            .as_ref()
            .filter(|(_, at)| now_ms.saturating_sub(*at) <= window_ms(config))
        {
            row.alerts.push(Alert::IdentityMismatch {
                reported: reported.clone(),
            });
        }
        row
    }

    fn listener_rows(
        &self,
        hb: &Heartbeat,
        config: &FleetConfig,
        now_ms: i64,
        live: bool,
    ) -> Vec<ListenerRow> {
        let window = window_ms(config);
        hb.sources
            .iter()
            .map(|s| {
                let track = self.listeners.get(&s.name);
                let recently = |pick: fn(&super::ListenerTrack) -> &super::Rises| {
                    track.map_or(0, |t| pick(t).within(now_ms, window))
                };
                let quarantined = recently(|t| &t.quarantined);
                let disabled = hb.pushes.iter().any(|p| p.listener == s.name && p.disabled);
                ListenerRow {
                    stats: s.clone(),
                    unmapped_ratio: s.unmapped_ratio(),
                    quarantined_recently: quarantined,
                    rejected_recently: recently(|t| &t.rejected),
                    reused_recently: recently(|t| &t.reused),
                    failing: quarantined > 0,
                    silent_s: s
                        .rhythm
                        .filter(|r| live && r.silent && !disabled)
                        .map(|r| r.quiet_s),
                    disabled,
                }
            })
            .collect()
    }
}

/// Heartbeats missed after `silent_ms` without one, at one per `interval_s`: none until half
/// an interval past the expected one (a heartbeat a little late is not missing), then one more
/// per interval.
pub fn missed_heartbeats(silent_ms: i64, interval_s: u64) -> u64 {
    let interval_ms = i64::try_from(interval_s.saturating_mul(1000))
        .unwrap_or(i64::MAX)
        .max(1);
    let late_by = silent_ms.saturating_sub(interval_ms / 2);
    u64::try_from(late_by / interval_ms).unwrap_or(0)
}

/// When the buffer will be full at the growth rate of the heartbeat, Unix ms.
fn buffer_full_at_ms(h: &Heartbeat) -> Option<i64> {
    let hours = h.hours_until_full.filter(|h| h.is_finite() && *h >= 0.0)?;
    // At most about 285,000 years ahead: within i64 milliseconds.
    let ms = (hours * 3_600_000.0).min(9e15) as i64;
    Some(h.sent_at_ms.saturating_add(ms))
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}
