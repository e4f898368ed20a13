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
                s.rhythm = Some(hl7edge_protocol::telemetry::Rhythm {
                    quiet_s: 2_700,
                    usual_gap_s: Some(120),
                    silent: true,
                });
            }
            hb.pushes = vec![
                hl7edge_protocol::telemetry::PushReport {
                    listener: "lab".into(),
                    sequence: Some(20),
                    outcome: "rejected".into(),
                    reason: Some("bad_signature".into()),
                    at_ms: 1_000,
                    mapping_version: "lab-v2+0123456789abcdef".into(),
                    change: "mapping".into(),
                    config_hash: String::new(),
                    disabled: false,
                    replay: None,
                },
                hl7edge_protocol::telemetry::PushReport {
                    listener: String::new(),
                    sequence: Some(100),
                    outcome: "applied".into(),
                    reason: None,
                    at_ms: 1_500,
                    mapping_version: String::new(),
                    change: "replay".into(),
                    config_hash: String::new(),
                    disabled: false,
                    replay: Some(hl7edge_protocol::telemetry::ReplayCounts {
                        replayed: 3,
                        still_quarantined: 1,
                    }),
                },
            ];
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
        sample(&text, "hl7edge_listener_messages_received_total"),
        [format!(
            "hl7edge_listener_messages_received_total{{{LABELS},listener=\"lab\"}} 12"
        )]
    );
    assert_eq!(
        sample(&text, "hl7edge_listener_quarantined_total"),
        [format!(
            "hl7edge_listener_quarantined_total{{{LABELS},listener=\"lab\"}} 2"
        )]
    );
    assert_eq!(
        sample(&text, "hl7edge_listener_resends_total"),
        [format!(
            "hl7edge_listener_resends_total{{{LABELS},listener=\"lab\"}} 4"
        )]
    );
    assert_eq!(
        sample(&text, "hl7edge_listener_control_id_reused_total"),
        [format!(
            "hl7edge_listener_control_id_reused_total{{{LABELS},listener=\"lab\"}} 3"
        )]
    );
    assert_eq!(
        sample(&text, "hl7edge_listener_acks_received_total"),
        [format!(
            "hl7edge_listener_acks_received_total{{{LABELS},listener=\"lab\"}} 5"
        )]
    );
    for (name, value) in [
        ("hl7edge_listener_oversize_frames_total", 6),
        ("hl7edge_listener_garbage_bytes_total", 7),
        ("hl7edge_listener_refused_connections_total", 8),
        ("hl7edge_listener_tls_failures_total", 9),
        ("hl7edge_listener_no_ack_requested_total", 10),
    ] {
        assert_eq!(
            sample(&text, name),
            [format!("{name}{{{LABELS},listener=\"lab\"}} {value}")]
        );
    }
    assert_eq!(
        sample(&text, "hl7edge_listener_drift_alerts"),
        [format!(
            "hl7edge_listener_drift_alerts{{{LABELS},listener=\"lab\"}} 1"
        )]
    );
    assert_eq!(
        sample(&text, "hl7edge_listener_unmapped_ratio"),
        [format!(
            "hl7edge_listener_unmapped_ratio{{{LABELS},listener=\"lab\"}} 0.1"
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
        "hl7edge_cert_expiry_timestamp_seconds",
        "hl7edge_last_seen_timestamp_seconds",
        "hl7edge_listener_messages_received_total",
    ] {
        assert!(!text.contains(absent), "{absent} should be absent:\n{text}");
    }
}

#[test]
fn hub_facts_are_reported_without_labels() {
    let hub = HubStats {
        connected: true,
        invalid_messages: 3,
        refusals: crate::fleet::Refusals {
            gateway_mismatch: 2,
            untracked_gateways: 5,
            untracked_sources: 7,
        },
        tracked_gateways: 2,
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
    for line in [
        "\nhl7edge_hub_gateway_mismatch_total 2\n",
        "\nhl7edge_hub_tracked_gateways 2\n",
        "\nhl7edge_hub_untracked_gateways_total 5\n",
        "\nhl7edge_hub_untracked_listeners_total 7\n",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
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
        refusals: crate::fleet::Refusals {
            gateway_mismatch: 2,
            untracked_gateways: 5,
            untracked_sources: 7,
        },
        tracked_gateways: 2,
    };
    let text = render(&f.rows(2_000), hub);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/metrics/exposition.prom");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    assert_eq!(
        text,
        std::fs::read_to_string(&path).unwrap(),
        "the exposition changed (UPDATE_GOLDEN=1 cargo test -p hl7edge-hub --lib metrics regenerates it)"
    );
}

#[test]
fn alerts_are_counted_by_kind_with_every_kind_listed() {
    let mut f = fleet_with_heartbeat();
    f.apply(
        "hl7edge/v1/acme/clinic-12/gw-0001/telemetry",
        &heartbeat(|hb| {
            hb.uptime_s = 200;
            hb.sent_at_ms = 3_000;
            hb.queue.parked = 2;
            if let Some(s) = hb.sources.first_mut() {
                s.drift = vec!["new segment ZDS".into(), "new segment ZPI".into()];
            }
        }),
        false,
        3_000,
    )
    .unwrap();
    let text = render(&f.rows(3_000), HubStats::default());
    let series = sample(&text, "hl7edge_alerts");
    assert_eq!(series.len(), crate::fleet::alert_kinds().len(), "{text}");
    assert!(
        series.contains(&format!("hl7edge_alerts{{{LABELS},kind=\"drift\"}} 2")),
        "{series:#?}"
    );
    assert!(
        series.contains(&format!(
            "hl7edge_alerts{{{LABELS},kind=\"records_parked\"}} 1"
        )),
        "{series:#?}"
    );
    assert!(
        series.contains(&format!("hl7edge_alerts{{{LABELS},kind=\"offline\"}} 0")),
        "{series:#?}"
    );
}

#[test]
fn a_silent_feed_is_a_listener_gauge_of_its_quiet_seconds_and_an_alert() {
    let text = render(&fleet_with_heartbeat().rows(2_000), HubStats::default());
    assert_eq!(
        sample(&text, "hl7edge_listener_silent_seconds"),
        [format!(
            "hl7edge_listener_silent_seconds{{{LABELS},listener=\"lab\"}} 2700"
        )]
    );
    assert!(
        sample(&text, "hl7edge_alerts").contains(&format!(
            "hl7edge_alerts{{{LABELS},kind=\"feed_silent\"}} 1"
        )),
        "{text}"
    );
}

/// Every gateway fact and every alert kind set, so every family of the exposition appears.
fn fleet_with_everything() -> Vec<crate::fleet::Row> {
    let mut f = Fleet::new(FleetConfig::default());
    f.apply(&format!("{GW}/status"), &status(true), true, 0)
        .unwrap();
    f.apply(
        &format!("{GW}/telemetry"),
        &heartbeat(|hb| {
            hb.uptime_s = 60;
            hb.hours_until_full = Some(2.0);
            hb.clock_offset_ms = Some(-250);
            hb.cert_not_after_ms = Some(86_400_000);
            hb.storage.alarm = true;
            hb.storage.recovery = Some("moved".into());
            hb.queue.parked = 1;
            hb.queue.oldest_unsent_age_ms = Some(3_600_000);
            if let Some(s) = hb.sources.first_mut() {
                s.quarantined = 1;
                s.control_id_reused = 1;
                s.last_message_ms = Some(1_000);
                s.drift = vec!["new segment ZDS".into()];
            }
        }),
        false,
        1_000,
    )
    .unwrap();
    // A heartbeat on this gateway's topic claiming another gateway: refused, shown as an alert.
    f.apply(
        &format!("{GW}/telemetry"),
        &heartbeat(|hb| hb.gateway.id = "elsewhere".into()),
        false,
        1_000,
    )
    .unwrap_err();
    f.apply(
        "hl7edge/v1/acme/clinic-13/gw-0002/status",
        &status(false),
        true,
        0,
    )
    .unwrap();
    f.rows(1_000 + 10 * 60_000)
}

#[test]
fn serve_ingest_and_tail_expositions_keep_prometheus_naming_conventions() {
    let rows = fleet_with_everything();
    let kinds: std::collections::BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.alerts.iter().map(|a| a.kind()))
        .collect();
    assert!(kinds.len() >= 10, "most alert kinds are raised: {kinds:?}");
    let serve = render(
        &rows,
        HubStats {
            connected: true,
            invalid_messages: 1,
            tracked_gateways: rows.len(),
            ..HubStats::default()
        },
    );
    let mut ingest = crate::ingest::metrics::IngestStats::default();
    ingest.batch_records.observe(3.0);
    ingest.lag_seconds = Some(0.5);
    ingest.last_commit_seconds = Some(1.0);
    let tail = crate::tail::Counters::default().render();
    for (what, text) in [
        ("serve", serve),
        ("ingest", ingest.render()),
        ("tail", tail),
    ] {
        let found = conventions::violations(&text);
        assert!(found.is_empty(), "{what}:\n{}\n\n{text}", found.join("\n"));
    }
}

#[test]
fn records_awaiting_the_hubs_receipt_and_the_oldest_ones_age_are_gauges() {
    let mut f = Fleet::new(FleetConfig::default());
    f.apply(
        &format!("{GW}/telemetry"),
        &heartbeat(|hb| {
            hb.hub.custody = "receipt".into();
            hb.hub.awaiting_receipt = 40;
            hb.hub.oldest_awaiting_receipt_age_ms = Some(1_200_000);
        }),
        false,
        1_500,
    )
    .unwrap();
    let rows = f.rows(2_000);
    let text = render(&rows, HubStats::default());
    assert_eq!(
        sample(&text, "hl7edge_awaiting_receipt"),
        [format!("hl7edge_awaiting_receipt{{{LABELS}}} 40")]
    );
    assert_eq!(
        sample(&text, "hl7edge_oldest_awaiting_receipt_seconds"),
        [format!(
            "hl7edge_oldest_awaiting_receipt_seconds{{{LABELS}}} 1200"
        )]
    );
    let alert = rows[0]
        .alerts
        .iter()
        .find(|a| matches!(a, crate::fleet::Alert::ReceiptsOverdue { .. }))
        .expect("20 minutes is past the 15-minute receipt alert");
    assert!(
        alert
            .to_string()
            .contains("40 record(s) wait for this hub's receipt"),
        "{alert}"
    );
}
