//! The fleet in the Prometheus text exposition format (version 0.0.4).
//!
//! One family per metric: `# HELP`, `# TYPE`, then one sample per gateway
//! (labels `org`, `site`, `gateway`), per kind of alert (plus `kind`),
//! per listener (plus `listener`) or per push report (plus `listener` and
//! `change`: the latest push of each listener and the latest replay).
//! Every family is one row of `METRICS` (name, help, type, accessor),
//! rendered in table order by one loop.
//! Values that are unknown are left out rather than written as 0, so a
//! dashboard shows a gap, not a false reading. Counters come from the
//! agents and restart at zero when an agent restarts, which Prometheus'
//! `rate()` handles. Every family is documented in the README ("The hub:
//! fleet view and metrics").

pub mod http;

use std::fmt::Write;

pub mod conventions;

use crate::fleet::{ListenerRow, Liveness, Refusals, Row};
use Value::{Alerts, Gateway, Hub, Info, Listener, Push};
use hl7edge_protocol::telemetry::PushReport;

/// Facts about this hub process itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// True while connected to the broker.
    pub connected: bool,
    /// Messages on the status/telemetry topics that could not be decoded.
    pub invalid_messages: u64,
    /// What the fleet refused (a heartbeat naming another gateway) or did not track (beyond
    /// its caps).
    pub refusals: Refusals,
    /// Gateways tracked now.
    pub tracked_gateways: usize,
}

/// Prometheus metric types used here.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

/// The label set and value of one sample.
type Sample = (String, f64);

/// Where a family's samples come from; an accessor returning `None` leaves that sample out.
#[derive(Clone, Copy)]
enum Value {
    /// One sample without labels, about this hub.
    Hub(fn(&HubStats) -> Option<f64>),
    /// One sample per gateway that knows its agent version (labelled with it), value 1.
    Info,
    /// One sample per gateway.
    Gateway(fn(&Row) -> Option<f64>),
    /// One sample per kind of alert of each gateway (label `kind`): how many are open.
    Alerts,
    /// One sample per listener of each gateway (label `listener`).
    Listener(fn(&ListenerRow) -> Option<f64>),
    /// Samples per push report of each gateway (labels `listener`, `change`, then the extra
    /// labels the accessor gives with each value).
    Push(fn(&PushReport) -> Vec<Sample>),
}

/// One metric family: name, help text, type and accessor.
struct Metric {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    value: Value,
}

const fn gauge(name: &'static str, help: &'static str, value: Value) -> Metric {
    Metric {
        name,
        help,
        kind: Kind::Gauge,
        value,
    }
}

const fn counter(name: &'static str, help: &'static str, value: Value) -> Metric {
    Metric {
        name,
        help,
        kind: Kind::Counter,
        value,
    }
}

/// Every family, in the order it is rendered. Names follow Prometheus' conventions (checked by
/// `conventions`): base units (`_seconds`, `_bytes`, `_timestamp_seconds` for points in time),
/// `_total` on counters and only on counters, one scope per counter (every gateway counter
/// counts since its agent started; Prometheus' `rate()` handles the restarts), and one name for
/// an interface: `listener`, as in the configuration.
const METRICS: &[Metric] = &[
    gauge(
        "hl7edge_hub_broker_connected",
        "1 while this hub is connected to the broker.",
        Hub(|h| Some(flag(h.connected))),
    ),
    counter(
        "hl7edge_hub_invalid_messages_total",
        "Status or telemetry messages this hub could not decode.",
        Hub(|h| Some(h.invalid_messages as f64)),
    ),
    counter(
        "hl7edge_hub_gateway_mismatch_total",
        "Heartbeats dropped because they name another gateway than the topic they came on.",
        Hub(|h| Some(h.refusals.gateway_mismatch as f64)),
    ),
    gauge(
        "hl7edge_hub_tracked_gateways",
        "Gateways this hub tracks (at most --max-gateways).",
        Hub(|h| Some(h.tracked_gateways as f64)),
    ),
    counter(
        "hl7edge_hub_untracked_gateways_total",
        "Status and telemetry messages of gateways beyond --max-gateways, not tracked.",
        Hub(|h| Some(h.refusals.untracked_gateways as f64)),
    ),
    counter(
        "hl7edge_hub_untracked_listeners_total",
        "Listeners in heartbeats beyond --max-sources per gateway, not tracked.",
        Hub(|h| Some(h.refusals.untracked_sources as f64)),
    ),
    gauge(
        "hl7edge_gateway_info",
        "Agent version of the gateway (value always 1).",
        Info,
    ),
    gauge(
        "hl7edge_gateway_online",
        "1 while the gateway's retained status says online (also while it is late).",
        Gateway(|r| Some(flag(matches!(r.state, Liveness::Online | Liveness::Late)))),
    ),
    gauge(
        "hl7edge_gateway_missed_heartbeats",
        "Heartbeats an online gateway has missed (0 on time; from 1 the gateway is shown late).",
        Gateway(|r| r.missed_heartbeats.map(|v| v as f64)),
    ),
    gauge(
        "hl7edge_last_seen_timestamp_seconds",
        "When the hub last had a message from the gateway itself: a heartbeat or a status it published, not its last will (Unix seconds).",
        Gateway(|r| r.last_seen_ms.map(secs)),
    ),
    gauge(
        "hl7edge_last_heartbeat_timestamp_seconds",
        "When the gateway's last heartbeat was seen (Unix seconds; a retained one by its own send time).",
        Gateway(|r| r.last_heartbeat_ms.map(secs)),
    ),
    gauge(
        "hl7edge_uptime_seconds",
        "Agent uptime at its last heartbeat.",
        Gateway(|r| r.uptime_s.map(|v| v as f64)),
    ),
    gauge(
        "hl7edge_queue_depth",
        "Records waiting on the gateway for the hub.",
        Gateway(|r| r.queue_depth.map(|v| v as f64)),
    ),
    gauge(
        "hl7edge_records_parked",
        "Records set aside on the gateway as too big for its hub.max_payload (kept, not sent).",
        Gateway(|r| r.parked.map(|v| v as f64)),
    ),
    gauge(
        "hl7edge_oldest_unsent_seconds",
        "Age of the oldest unsent record (0 when the queue is empty).",
        Gateway(|r| {
            r.queue_depth
                .map(|_| r.oldest_unsent_ms.map_or(0.0, |m| m as f64 / 1000.0))
        }),
    ),
    gauge(
        "hl7edge_awaiting_receipt",
        "Records the broker acknowledged that the gateway holds until the hub's custody receipt (receipt mode; 0 in puback mode).",
        Gateway(|r| r.awaiting_receipt.map(|v| v as f64)),
    ),
    gauge(
        "hl7edge_oldest_awaiting_receipt_seconds",
        "How long the oldest record awaiting the hub's custody receipt has waited since its PUBACK (0 when none waits).",
        Gateway(|r| {
            r.awaiting_receipt.map(|_| {
                r.oldest_awaiting_receipt_ms
                    .map_or(0.0, |m| m as f64 / 1000.0)
            })
        }),
    ),
    gauge(
        "hl7edge_disk_free_bytes",
        "Free bytes on the gateway's database filesystem.",
        Gateway(|r| r.disk_free_bytes.map(|v| v as f64)),
    ),
    gauge(
        "hl7edge_database_bytes",
        "Gateway database size (db + WAL).",
        Gateway(|r| r.db_bytes.map(|v| v as f64)),
    ),
    gauge(
        "hl7edge_storage_alarm",
        "1 while the gateway store is at its limit or the disk is full.",
        Gateway(|r| r.counters.map(|_| flag(r.storage_alarm))),
    ),
    gauge(
        "hl7edge_buffer_full_timestamp_seconds",
        "When the gateway's queue will reach storage.max_bytes at its current growth (Unix seconds); absent while the queue is not growing.",
        Gateway(|r| r.buffer_full_at_ms.map(secs)),
    ),
    gauge(
        "hl7edge_cert_expiry_timestamp_seconds",
        "When the gateway's client certificate expires (Unix seconds).",
        Gateway(|r| r.cert_expires_ms.map(secs)),
    ),
    gauge(
        "hl7edge_clock_offset_seconds",
        "Gateway clock minus reference clock.",
        Gateway(|r| r.clock_offset_ms.map(secs)),
    ),
    gauge(
        "hl7edge_alerts",
        "Open alerts of the gateway, by kind (every kind is listed, 0 when none is open).",
        Alerts,
    ),
    counter(
        "hl7edge_broker_reconnects_total",
        "Broker reconnects of the gateway since its agent started.",
        Gateway(|r| r.broker_reconnects.map(|v| v as f64)),
    ),
    counter(
        "hl7edge_forwarded_total",
        "Records of the gateway acknowledged by the broker since its agent started.",
        Gateway(|r| r.counters.map(|c| c.forwarded as f64)),
    ),
    counter(
        "hl7edge_listener_messages_received_total",
        "Messages received on the listener since the agent started.",
        Listener(|s| Some(s.stats.received as f64)),
    ),
    counter(
        "hl7edge_listener_messages_acknowledged_total",
        "Messages stored and acknowledged positively since the agent started.",
        Listener(|s| Some(s.stats.acknowledged as f64)),
    ),
    counter(
        "hl7edge_listener_rejected_total",
        "Messages answered AR (not stored; the sender resends) since the agent started.",
        Listener(|s| Some(s.stats.rejected as f64)),
    ),
    counter(
        "hl7edge_listener_quarantined_total",
        "Messages answered AE and quarantined since the agent started.",
        Listener(|s| Some(s.stats.quarantined as f64)),
    ),
    counter(
        "hl7edge_listener_resends_total",
        "Resends answered with the stored ACK since the agent started.",
        Listener(|s| Some(s.stats.resends as f64)),
    ),
    counter(
        "hl7edge_listener_control_id_reused_total",
        "Control ids reused with different content (stored as new) since the agent started.",
        Listener(|s| Some(s.stats.control_id_reused as f64)),
    ),
    counter(
        "hl7edge_listener_acks_received_total",
        "Incoming acknowledgments (MSH-9.1 ACK) kept and, by rule, not answered since the agent started.",
        Listener(|s| Some(s.stats.acks_received as f64)),
    ),
    counter(
        "hl7edge_listener_no_ack_requested_total",
        "Messages whose MSH-15/MSH-16 asked for no acknowledgement (answered anyway unless the listener's ack_mode is as_requested) since the agent started.",
        Listener(|s| Some(s.stats.no_ack_requested as f64)),
    ),
    counter(
        "hl7edge_listener_oversize_frames_total",
        "Frames over the listener's max_frame, answered AE, since the agent started.",
        Listener(|s| Some(s.stats.oversize_frames as f64)),
    ),
    counter(
        "hl7edge_listener_garbage_bytes_total",
        "Bytes outside MLLP frames, skipped, since the agent started.",
        Listener(|s| Some(s.stats.garbage_bytes as f64)),
    ),
    counter(
        "hl7edge_listener_refused_connections_total",
        "Connections refused by the allowlist or the connection cap since the agent started.",
        Listener(|s| Some(s.stats.refused_connections as f64)),
    ),
    counter(
        "hl7edge_listener_tls_failures_total",
        "MLLP-over-TLS handshakes that failed since the agent started.",
        Listener(|s| Some(s.stats.tls_failures as f64)),
    ),
    counter(
        "hl7edge_listener_codes_mapped_total",
        "Coded elements with a standard code (sent in a standard system or mapped by the listener's table) since the agent started.",
        Listener(|s| Some(s.stats.codes_mapped as f64)),
    ),
    counter(
        "hl7edge_listener_codes_unmapped_total",
        "Coded elements without a standard code since the agent started.",
        Listener(|s| Some(s.stats.codes_unmapped as f64)),
    ),
    gauge(
        "hl7edge_listener_unmapped_ratio",
        "Share of coded elements without a standard code since the agent started (0 to 1).",
        Listener(|s| s.unmapped_ratio),
    ),
    gauge(
        "hl7edge_listener_quarantined_recently",
        "Messages quarantined within the hub's error window (--error-window); above 0 the listener is failing.",
        Listener(|s| Some(s.quarantined_recently as f64)),
    ),
    gauge(
        "hl7edge_listener_drift_alerts",
        "Open drift alerts of the listener.",
        Listener(|s| Some(s.stats.drift.len() as f64)),
    ),
    gauge(
        "hl7edge_listener_silent_seconds",
        "Seconds without a message while the feed is silent against its learned hourly rhythm (0 when not silent or the gateway is not online; absent until the gateway has learned the rhythm).",
        Listener(|s| s.stats.rhythm.map(|_| s.silent_s.unwrap_or(0) as f64)),
    ),
    gauge(
        "hl7edge_listener_disabled",
        "1 while the listener is switched off by a signed push (it refuses connections on purpose: no failure, no silence alert), else 0.",
        Listener(|s| Some(if s.disabled { 1.0 } else { 0.0 })),
    ),
    gauge(
        "hl7edge_listener_last_message_timestamp_seconds",
        "When the listener last received a message (Unix seconds).",
        Listener(|s| s.stats.last_message_ms.map(secs)),
    ),
    gauge(
        "hl7edge_push_outcome",
        "1 for the outcome of the latest signed push of each listener and of the latest replay (label outcome: applied, rejected, restored, rolled_back, failed, ...; reason: why, empty when applied).",
        Push(|p| {
            let labels = format!(
                "outcome=\"{}\",reason=\"{}\"",
                escape(&p.outcome),
                escape(p.reason.as_deref().unwrap_or_default())
            );
            vec![(labels, 1.0)]
        }),
    ),
    gauge(
        "hl7edge_push_sequence",
        "The sequence of the latest signed push of each listener and of the latest replay, whatever its outcome (absent when the push could not be read).",
        Push(|p| {
            p.sequence
                .map(|s| (String::new(), s as f64))
                .into_iter()
                .collect()
        }),
    ),
    gauge(
        "hl7edge_push_replay_messages",
        "What the latest replay push did: quarantined messages replayed into records (result replayed) and those still quarantined (result still_quarantined).",
        Push(|p| {
            p.replay
                .map(|r| {
                    vec![
                        ("result=\"replayed\"".to_owned(), r.replayed as f64),
                        (
                            "result=\"still_quarantined\"".to_owned(),
                            r.still_quarantined as f64,
                        ),
                    ]
                })
                .unwrap_or_default()
        }),
    ),
];

/// Renders every metric for these rows.
pub fn render(rows: &[Row], hub: HubStats) -> String {
    let mut out = String::new();
    for m in METRICS {
        family(&mut out, m, samples(m.value, rows, hub));
    }
    out
}

fn samples(value: Value, rows: &[Row], hub: HubStats) -> Vec<Sample> {
    match value {
        Hub(value) => value(&hub)
            .map(|v| (String::new(), v))
            .into_iter()
            .collect(),
        Info => info_samples(rows),
        Gateway(value) => gateway_samples(rows, value),
        Alerts => alert_samples(rows),
        Listener(value) => listener_samples(rows, value),
        Push(value) => push_samples(rows, value),
    }
}

fn push_samples(rows: &[Row], value: fn(&PushReport) -> Vec<Sample>) -> Vec<Sample> {
    let mut out = Vec::new();
    for r in rows {
        for p in &r.pushes {
            let change = if p.change.is_empty() {
                "mapping"
            } else {
                &p.change
            };
            let labels = format!(
                "{},listener=\"{}\",change=\"{}\"",
                gateway_labels(r),
                escape(&p.listener),
                escape(change)
            );
            for (extra, v) in value(p) {
                let labels = if extra.is_empty() {
                    labels.clone()
                } else {
                    format!("{labels},{extra}")
                };
                out.push((labels, v));
            }
        }
    }
    out
}

fn family(out: &mut String, m: &Metric, samples: Vec<Sample>) {
    if samples.is_empty() {
        return;
    }
    let name = m.name;
    let kind = match m.kind {
        Kind::Gauge => "gauge",
        Kind::Counter => "counter",
    };
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", m.help);
    for (labels, value) in samples {
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}{braces} {}", number(value));
    }
}

fn gateway_samples(rows: &[Row], value: fn(&Row) -> Option<f64>) -> Vec<Sample> {
    rows.iter()
        .filter_map(|r| value(r).map(|v| (gateway_labels(r), v)))
        .collect()
}

fn listener_samples(rows: &[Row], value: fn(&ListenerRow) -> Option<f64>) -> Vec<Sample> {
    rows.iter()
        .flat_map(|r| {
            r.listeners.iter().filter_map(move |l| {
                value(l).map(|v| {
                    let labels = format!(
                        "{},listener=\"{}\"",
                        gateway_labels(r),
                        escape(&l.stats.name)
                    );
                    (labels, v)
                })
            })
        })
        .collect()
}

fn alert_samples(rows: &[Row]) -> Vec<Sample> {
    rows.iter()
        .flat_map(|r| {
            crate::fleet::alert_kinds().iter().map(move |kind| {
                let open = r.alerts.iter().filter(|a| a.kind() == *kind).count();
                (
                    format!("{},kind=\"{kind}\"", gateway_labels(r)),
                    open as f64,
                )
            })
        })
        .collect()
}

fn info_samples(rows: &[Row]) -> Vec<Sample> {
    rows.iter()
        .filter_map(|r| {
            r.version.as_ref().map(|v| {
                (
                    format!("{},version=\"{}\"", gateway_labels(r), escape(v)),
                    1.0,
                )
            })
        })
        .collect()
}

fn gateway_labels(r: &Row) -> String {
    format!(
        "org=\"{}\",site=\"{}\",gateway=\"{}\"",
        escape(&r.key.org),
        escape(&r.key.site),
        escape(&r.key.gateway)
    )
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests;
