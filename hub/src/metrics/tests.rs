use super::*;
use crate::fleet::tests::{heartbeat, status};
use crate::fleet::{Fleet, FleetConfig};

const GW: &str = "hl7edge/v1/acme/clinic-12/gw-0001";
const LABELS: &str = r#"org="acme",site="clinic-12",gateway="gw-0001""#;

fn fleet_with_heartbeat() -> Fleet {
    let mut f = Fleet::new(FleetConfig::default());
    f.apply(&format!("{GW}/status"), &status(true), true, 0)
        .unwrap();
    f.apply(
        &format!("{GW}/telemetry"),
        &heartbeat(|hb| {
            if let Some(s) = hb.sources.first_mut() {
                s.received = 12;
                s.quarantined = 2;
                s.resends = 4;
                s.control_id_reused = 3;
                s.acks_received = 5;
                s.oversize_frames = 6;
                s.garbage_bytes = 7;
                s.refused_connections = 8;
                s.tls_failures = 9;
                s.no_ack_requested = 10;
                s.drift = vec!["new segment ZDS".into()];
            }
        }),
        false,
        1_500,
    )
    .unwrap();
    f
}

fn sample(text: &str, name: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .map(str::to_owned)
        .collect()
}

#[test]
fn gateway_metrics_carry_org_site_and_gateway_labels() {
    let text = render(&fleet_with_heartbeat().rows(2_000), HubStats::default());
    assert_eq!(
        sample(&text, "hl7edge_gateway_online"),
        [format!("hl7edge_gateway_online{{{LABELS}}} 1")]
    );
    assert_eq!(
        sample(&text, "hl7edge_queue_depth"),
        [format!("hl7edge_queue_depth{{{LABELS}}} 7")]
    );
    assert_eq!(
        sample(&text, "hl7edge_oldest_unsent_seconds"),
        [format!("hl7edge_oldest_unsent_seconds{{{LABELS}}} 4")]
    );
    assert_eq!(
        sample(&text, "hl7edge_last_seen_timestamp_seconds"),
        [format!(
            "hl7edge_last_seen_timestamp_seconds{{{LABELS}}} 1.5"
        )]
    );
    assert_eq!(
        sample(&text, "hl7edge_gateway_info"),
        [format!(
            "hl7edge_gateway_info{{{LABELS},version=\"0.2.0\"}} 1"
        )]
    );
}

#[test]
fn interface_metrics_add_a_source_label() {
    let text = render(&fleet_with_heartbeat().rows(2_000), HubStats::default());
    assert_eq!(
        sample(&text, "hl7edge_messages_received_total"),
        [format!(
            "hl7edge_messages_received_total{{{LABELS},source=\"lab\"}} 12"
        )]
    );
    assert_eq!(
        sample(&text, "hl7edge_quarantined_total"),
        [format!(
            "hl7edge_quarantined_total{{{LABELS},source=\"lab\"}} 2"
        )]
    );
    assert_eq!(
        sample(&text, "hl7edge_source_resends_total"),
        [format!(
            "hl7edge_source_resends_total{{{LABELS},source=\"lab\"}} 4"
        )]
    );
    assert_eq!(
        sample(&text, "hl7edge_source_control_id_reused_total"),
        [format!(
            "hl7edge_source_control_id_reused_total{{{LABELS},source=\"lab\"}} 3"
        )]
    );
    assert_eq!(
        sample(&text, "hl7edge_acks_received_total"),
        [format!(
            "hl7edge_acks_received_total{{{LABELS},source=\"lab\"}} 5"
        )]
    );
    for (name, value) in [
        ("hl7edge_oversize_frames_total", 6),
        ("hl7edge_garbage_bytes_total", 7),
        ("hl7edge_refused_connections_total", 8),
        ("hl7edge_tls_failures_total", 9),
        ("hl7edge_no_ack_requested_total", 10),
    ] {
        assert_eq!(
            sample(&text, name),
            [format!("{name}{{{LABELS},source=\"lab\"}} {value}")]
        );
    }
    assert_eq!(
        sample(&text, "hl7edge_drift_alerts"),
        [format!("hl7edge_drift_alerts{{{LABELS},source=\"lab\"}} 1")]
    );
    assert_eq!(
        sample(&text, "hl7edge_unmapped_ratio"),
        [format!(
            "hl7edge_unmapped_ratio{{{LABELS},source=\"lab\"}} 0.1"
        )]
    );
}

#[test]
fn every_family_has_one_help_and_one_type_line_before_its_samples() {
    let text = render(&fleet_with_heartbeat().rows(2_000), HubStats::default());
    let mut declared = std::collections::HashSet::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_owned();
            assert!(declared.insert(name.clone()), "{name} declared twice");
            current = name;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(name, current);
            assert!(kind == "gauge" || kind == "counter", "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
        } else {
            assert!(
                line.starts_with(current.as_str()),
                "{line} outside {current}"
            );
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
    assert!(declared.len() > 20, "{declared:?}");
}

#[test]
fn unknown_values_are_left_out_not_reported_as_zero() {
    let mut f = Fleet::new(FleetConfig::default());
    f.apply(&format!("{GW}/status"), &status(false), true, 0)
        .unwrap();
    let text = render(&f.rows(0), HubStats::default());
    assert_eq!(
        sample(&text, "hl7edge_gateway_online"),
        [format!("hl7edge_gateway_online{{{LABELS}}} 0")]
    );
    for absent in [
        "hl7edge_queue_depth",
        "hl7edge_cert_days_left",
        "hl7edge_last_seen_timestamp_seconds",
        "hl7edge_messages_received_total",
    ] {
        assert!(!text.contains(absent), "{absent} should be absent:\n{text}");
    }
}

#[test]
fn hub_facts_are_reported_without_labels() {
    let hub = HubStats {
        connected: true,
        invalid_messages: 3,
    };
    let text = render(&[], hub);
    assert!(
        text.contains("\nhl7edge_hub_broker_connected 1\n"),
        "{text}"
    );
    assert!(
        text.contains("\nhl7edge_hub_invalid_messages_total 3\n"),
        "{text}"
    );
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
}

#[test]
fn special_numbers_use_prometheus_spelling() {
    assert_eq!(number(f64::INFINITY), "+Inf");
    assert_eq!(number(f64::NAN), "NaN");
    assert_eq!(number(0.25), "0.25");
    assert_eq!(number(3.0), "3");
}

/// The whole exposition for two gateways (one with a heartbeat, one offline without) and the
/// hub's own facts, byte for byte: families, order, help texts, types, labels and numbers are
/// what Prometheus scrapes and the dashboards query.
#[test]
fn the_whole_exposition_is_pinned_byte_for_byte() {
    let mut f = fleet_with_heartbeat();
    f.apply(
        "hl7edge/v1/acme/clinic-13/gw-0002/status",
        &status(false),
        true,
        0,
    )
    .unwrap();
    let hub = HubStats {
        connected: true,
        invalid_messages: 3,
    };
    let text = render(&f.rows(2_000), hub);
    assert_eq!(text, include_str!("exposition.prom"));
}
