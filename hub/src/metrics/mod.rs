//! The fleet in the Prometheus text exposition format (version 0.0.4).
//!
//! One family per metric: `# HELP`, `# TYPE`, then one sample per gateway
//! (labels `org`, `site`, `gateway`) or per interface (plus `source`).
//! Values that are unknown are left out rather than written as 0, so a
//! dashboard shows a gap, not a false reading. Counters come from the
//! agents and restart at zero when an agent restarts, which Prometheus'
//! `rate()` handles.

pub mod http;

use std::fmt::Write;

use crate::fleet::{Liveness, Row, SourceRow};

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

/// A metric with one sample per gateway.
struct PerGateway {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    value: fn(&Row) -> Option<f64>,
}

/// A metric with one sample per interface.
struct PerSource {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    value: fn(&SourceRow) -> Option<f64>,
}

const fn gauge(
    name: &'static str,
    help: &'static str,
    value: fn(&Row) -> Option<f64>,
) -> PerGateway {
    PerGateway {
        name,
        help,
        kind: Kind::Gauge,
        value,
    }
}

const fn counter(
    name: &'static str,
    help: &'static str,
    value: fn(&Row) -> Option<f64>,
) -> PerGateway {
    PerGateway {
        name,
        help,
        kind: Kind::Counter,
        value,
    }
}

const GATEWAY_METRICS: &[PerGateway] = &[
    gauge(
        "hl7edge_gateway_online",
        "1 if the gateway's retained status says online.",
        |r| Some(flag(r.state == Liveness::Online)),
    ),
    gauge(
        "hl7edge_last_seen_timestamp_seconds",
        "When the hub last heard from the gateway (Unix seconds).",
        |r| r.last_seen_ms.map(secs),
    ),
    gauge(
        "hl7edge_uptime_seconds",
        "Agent uptime at its last heartbeat.",
        |r| r.uptime_s.map(|v| v as f64),
    ),
    gauge(
        "hl7edge_queue_depth",
        "Records waiting on the gateway for the hub.",
        |r| r.queue_depth.map(|v| v as f64),
    ),
    gauge(
        "hl7edge_oldest_unsent_seconds",
        "Age of the oldest unsent record (0 when the queue is empty).",
        |r| {
            r.queue_depth
                .map(|_| r.oldest_unsent_ms.map_or(0.0, |m| m as f64 / 1000.0))
        },
    ),
    gauge(
        "hl7edge_disk_free_bytes",
        "Free bytes on the gateway's database filesystem.",
        |r| r.disk_free_bytes.map(|v| v as f64),
    ),
    gauge(
        "hl7edge_database_bytes",
        "Gateway database size (db + WAL).",
        |r| r.db_bytes.map(|v| v as f64),
    ),
    gauge(
        "hl7edge_storage_alarm",
        "1 while the gateway store is at its limit or the disk is full.",
        |r| r.counters.map(|_| flag(r.storage_alarm)),
    ),
    gauge(
        "hl7edge_buffer_full_hours",
        "Estimated hours until the gateway buffer is full.",
        |r| r.hours_until_full.filter(|h| h.is_finite()),
    ),
    gauge(
        "hl7edge_cert_days_left",
        "Days until the gateway's client certificate expires.",
        |r| r.cert_days_left.map(|v| v as f64),
    ),
    gauge(
        "hl7edge_clock_offset_seconds",
        "Gateway clock minus reference clock.",
        |r| r.clock_offset_ms.map(secs),
    ),
    gauge(
        "hl7edge_alerts",
        "Number of open alerts for the gateway.",
        |r| Some(r.alerts.len() as f64),
    ),
    counter(
        "hl7edge_broker_reconnects_total",
        "Broker reconnects of the gateway since its start.",
        |r| r.broker_reconnects.map(|v| v as f64),
    ),
    counter(
        "hl7edge_duplicates_total",
        "Resends answered with the stored ACK since start.",
        |r| r.counters.map(|c| c.duplicates as f64),
    ),
    counter(
        "hl7edge_forwarded_total",
        "Records acknowledged by the broker since start.",
        |r| r.counters.map(|c| c.forwarded as f64),
    ),
];

const SOURCE_METRICS: &[PerSource] = &[
    PerSource {
        name: "hl7edge_messages_received_total",
        help: "Messages received on the interface since start.",
        kind: Kind::Counter,
        value: |s| Some(s.received as f64),
    },
    PerSource {
        name: "hl7edge_messages_acknowledged_total",
        help: "Messages acknowledged positively since start.",
        kind: Kind::Counter,
        value: |s| Some(s.acknowledged as f64),
    },
    PerSource {
        name: "hl7edge_rejected_total",
        help: "Messages answered AR (not stored) since start.",
        kind: Kind::Counter,
        value: |s| Some(s.rejected as f64),
    },
    PerSource {
        name: "hl7edge_quarantined_total",
        help: "Messages answered AE and quarantined since start.",
        kind: Kind::Counter,
        value: |s| Some(s.quarantined as f64),
    },
    PerSource {
        name: "hl7edge_codes_mapped_total",
        help: "Codes mapped to a standard since start.",
        kind: Kind::Counter,
        value: |s| Some(s.codes_mapped as f64),
    },
    PerSource {
        name: "hl7edge_codes_unmapped_total",
        help: "Codes left unmapped since start.",
        kind: Kind::Counter,
        value: |s| Some(s.codes_unmapped as f64),
    },
    PerSource {
        name: "hl7edge_unmapped_ratio",
        help: "Share of codes left unmapped since start (0 to 1).",
        kind: Kind::Gauge,
        value: |s| s.unmapped_ratio,
    },
    PerSource {
        name: "hl7edge_drift_alerts",
        help: "Open drift alerts of the interface.",
        kind: Kind::Gauge,
        value: |s| Some(s.drift.len() as f64),
    },
    PerSource {
        name: "hl7edge_source_resends_total",
        help: "Resends answered with the stored ACK over the gateway store's lifetime.",
        kind: Kind::Counter,
        value: |s| Some(s.resends as f64),
    },
    PerSource {
        name: "hl7edge_source_control_id_reused_total",
        help: "Control ids reused with different content (stored as new) over the gateway store's lifetime.",
        kind: Kind::Counter,
        value: |s| Some(s.control_id_reused as f64),
    },
    PerSource {
        name: "hl7edge_source_last_message_timestamp_seconds",
        help: "When the interface last received a message (Unix seconds).",
        kind: Kind::Gauge,
        value: |s| s.last_message_ms.map(secs),
    },
];

/// Renders every metric for these rows.
pub fn render(rows: &[Row], hub: HubStats) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "hl7edge_hub_broker_connected",
        "1 while this hub is connected to the broker.",
        Kind::Gauge,
        vec![(String::new(), flag(hub.connected))],
    );
    family(
        &mut out,
        "hl7edge_hub_invalid_messages_total",
        "Status or telemetry messages this hub could not decode.",
        Kind::Counter,
        vec![(String::new(), hub.invalid_messages as f64)],
    );
    family(
        &mut out,
        "hl7edge_gateway_info",
        "Agent version of the gateway (value always 1).",
        Kind::Gauge,
        info_samples(rows),
    );
    for m in GATEWAY_METRICS {
        family(
            &mut out,
            m.name,
            m.help,
            m.kind,
            gateway_samples(rows, m.value),
        );
    }
    for m in SOURCE_METRICS {
        family(
            &mut out,
            m.name,
            m.help,
            m.kind,
            source_samples(rows, m.value),
        );
    }
    out
}

fn family(out: &mut String, name: &str, help: &str, kind: Kind, samples: Vec<Sample>) {
    if samples.is_empty() {
        return;
    }
    let kind = match kind {
        Kind::Gauge => "gauge",
        Kind::Counter => "counter",
    };
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
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
                    let labels = format!("{},source=\"{}\"", gateway_labels(r), escape(&s.name));
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
