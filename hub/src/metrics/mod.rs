//! The fleet in the Prometheus text exposition format (version 0.0.4).
//!
//! One family per metric: `# HELP`, `# TYPE`, then one sample per gateway
//! (labels `org`, `site`, `gateway`) or per interface (plus `source`).
//! Every family is one row of `METRICS` (name, help, type, accessor),
//! rendered in table order by one loop.
//! Values that are unknown are left out rather than written as 0, so a
//! dashboard shows a gap, not a false reading. Counters come from the
//! agents and restart at zero when an agent restarts, which Prometheus'
//! `rate()` handles.

pub mod http;

use std::fmt::Write;

use crate::fleet::{Liveness, Row, SourceRow};
use Value::{Gateway, Hub, Info, Source};

/// Facts about this hub process itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// True while connected to the broker.
    pub connected: bool,
    /// Messages on the status/telemetry topics that could not be decoded.
    pub invalid_messages: u64,
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
    /// One sample per interface of each gateway.
    Source(fn(&SourceRow) -> Option<f64>),
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

/// Every family, in the order it is rendered.
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
    gauge(
        "hl7edge_gateway_info",
        "Agent version of the gateway (value always 1).",
        Info,
    ),
    gauge(
        "hl7edge_gateway_online",
        "1 if the gateway's retained status says online.",
        Gateway(|r| Some(flag(r.state == Liveness::Online))),
    ),
    gauge(
        "hl7edge_last_seen_timestamp_seconds",
        "When the hub last heard from the gateway (Unix seconds).",
        Gateway(|r| r.last_seen_ms.map(secs)),
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
        "hl7edge_buffer_full_hours",
        "Estimated hours until the gateway buffer is full.",
        Gateway(|r| r.hours_until_full.filter(|h| h.is_finite())),
    ),
    gauge(
        "hl7edge_cert_days_left",
        "Days until the gateway's client certificate expires.",
        Gateway(|r| r.cert_days_left.map(|v| v as f64)),
    ),
    gauge(
        "hl7edge_clock_offset_seconds",
        "Gateway clock minus reference clock.",
        Gateway(|r| r.clock_offset_ms.map(secs)),
    ),
    gauge(
        "hl7edge_alerts",
        "Number of open alerts for the gateway.",
        Gateway(|r| Some(r.alerts.len() as f64)),
    ),
    counter(
        "hl7edge_broker_reconnects_total",
        "Broker reconnects of the gateway since its start.",
        Gateway(|r| r.broker_reconnects.map(|v| v as f64)),
    ),
    counter(
        "hl7edge_duplicates_total",
        "Resends answered with the stored ACK since start.",
        Gateway(|r| r.counters.map(|c| c.duplicates as f64)),
    ),
    counter(
        "hl7edge_forwarded_total",
        "Records acknowledged by the broker since start.",
        Gateway(|r| r.counters.map(|c| c.forwarded as f64)),
    ),
    counter(
        "hl7edge_messages_received_total",
        "Messages received on the interface since start.",
        Source(|s| Some(s.stats.received as f64)),
    ),
    counter(
        "hl7edge_messages_acknowledged_total",
        "Messages acknowledged positively since start.",
        Source(|s| Some(s.stats.acknowledged as f64)),
    ),
    counter(
        "hl7edge_rejected_total",
        "Messages answered AR (not stored) since start.",
        Source(|s| Some(s.stats.rejected as f64)),
    ),
    counter(
        "hl7edge_quarantined_total",
        "Messages answered AE and quarantined since start.",
        Source(|s| Some(s.stats.quarantined as f64)),
    ),
    counter(
        "hl7edge_acks_received_total",
        "Incoming acknowledgments (MSH-9.1 ACK) kept and, by rule, not answered since start.",
        Source(|s| Some(s.stats.acks_received as f64)),
    ),
    counter(
        "hl7edge_no_ack_requested_total",
        "Messages whose MSH-15/MSH-16 asked for no acknowledgement (answered anyway unless the interface's ack_mode is as_requested), over the gateway store's lifetime.",
        Source(|s| Some(s.stats.no_ack_requested as f64)),
    ),
    counter(
        "hl7edge_oversize_frames_total",
        "Frames over the listener's max_frame, answered AE, since start.",
        Source(|s| Some(s.stats.oversize_frames as f64)),
    ),
    counter(
        "hl7edge_garbage_bytes_total",
        "Bytes outside MLLP frames, skipped, since start.",
        Source(|s| Some(s.stats.garbage_bytes as f64)),
    ),
    counter(
        "hl7edge_refused_connections_total",
        "Connections refused by the allowlist or the connection cap since start.",
        Source(|s| Some(s.stats.refused_connections as f64)),
    ),
    counter(
        "hl7edge_tls_failures_total",
        "MLLP-over-TLS handshakes that failed since start.",
        Source(|s| Some(s.stats.tls_failures as f64)),
    ),
    counter(
        "hl7edge_codes_mapped_total",
        "Codes mapped to a standard since start.",
        Source(|s| Some(s.stats.codes_mapped as f64)),
    ),
    counter(
        "hl7edge_codes_unmapped_total",
        "Codes left unmapped since start.",
        Source(|s| Some(s.stats.codes_unmapped as f64)),
    ),
    gauge(
        "hl7edge_unmapped_ratio",
        "Share of codes left unmapped since start (0 to 1).",
        Source(|s| s.unmapped_ratio),
    ),
    gauge(
        "hl7edge_drift_alerts",
        "Open drift alerts of the interface.",
        Source(|s| Some(s.stats.drift.len() as f64)),
    ),
    counter(
        "hl7edge_source_resends_total",
        "Resends answered with the stored ACK over the gateway store's lifetime.",
        Source(|s| Some(s.stats.resends as f64)),
    ),
    counter(
        "hl7edge_source_control_id_reused_total",
        "Control ids reused with different content (stored as new) over the gateway store's lifetime.",
        Source(|s| Some(s.stats.control_id_reused as f64)),
    ),
    gauge(
        "hl7edge_source_last_message_timestamp_seconds",
        "When the interface last received a message (Unix seconds).",
        Source(|s| s.stats.last_message_ms.map(secs)),
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
        Source(value) => source_samples(rows, value),
    }
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

fn source_samples(rows: &[Row], value: fn(&SourceRow) -> Option<f64>) -> Vec<Sample> {
    rows.iter()
        .flat_map(|r| {
            r.sources.iter().filter_map(move |s| {
                value(s).map(|v| {
                    let labels =
                        format!("{},source=\"{}\"", gateway_labels(r), escape(&s.stats.name));
                    (labels, v)
                })
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
