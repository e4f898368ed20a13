//! Fleet model tests, and payload builders shared with other modules' tests.

use hl7edge_protocol::telemetry::*;

use super::*;

const GW: &str = "hl7edge/v1/acme/clinic-12/gw-0001";
const MIN: i64 = 60_000;

/// An encoded status.
pub(crate) fn status(online: bool) -> Vec<u8> {
    Status {
        online,
        version: "0.1.0".into(),
        started_at_ms: 1_000,
        reason: (!online).then(|| "connection lost".to_string()),
    }
    .encode()
    .unwrap()
}

/// An encoded heartbeat of `acme/clinic-12/gw-0001`, changed by `edit`.
pub(crate) fn heartbeat(edit: impl FnOnce(&mut Heartbeat)) -> Vec<u8> {
    let mut hb = Heartbeat {
        schema_version: HEARTBEAT_SCHEMA_VERSION,
        gateway: GatewayId {
            org: "acme".into(),
            site: "clinic-12".into(),
            id: "gw-0001".into(),
        },
        version: "0.2.0".into(),
        sent_at_ms: 0,
        uptime_s: 100,
        interval_s: 60,
        queue: QueueStats {
            depth: 7,
            oldest_unsent_age_ms: Some(4_000),
            parked: 0,
        },
        storage: StorageStats::default(),
        counters: Counters::default(),
        broker_reconnects: 1,
        cert_days_left: Some(200),
        hours_until_full: None,
        clock_offset_ms: None,
        sources: vec![SourceStats {
            name: "lab".into(),
            codes_mapped: 90,
            codes_unmapped: 10,
            ..SourceStats::default()
        }],
        custody: Custody::default(),
    };
    edit(&mut hb);
    hb.encode().unwrap()
}

fn fleet() -> Fleet {
    Fleet::new(FleetConfig::default())
}

fn one(f: &Fleet, now: i64) -> Row {
    let rows = f.rows(now);
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.into_iter().next().unwrap()
}

fn status_at(f: &mut Fleet, online: bool, retained: bool, now: i64) {
    f.apply(&format!("{GW}/status"), &status(online), retained, now)
        .unwrap();
}

fn beat(f: &mut Fleet, now: i64, edit: impl FnOnce(&mut Heartbeat)) {
    f.apply(&format!("{GW}/telemetry"), &heartbeat(edit), false, now)
        .unwrap();
}

fn set_errors(quarantined: u64, rejected: u64, uptime_s: u64) -> impl FnOnce(&mut Heartbeat) {
    move |hb| {
        hb.uptime_s = uptime_s;
        if let Some(s) = hb.sources.first_mut() {
            s.quarantined = quarantined;
            s.rejected = rejected;
        }
    }
}

#[test]
fn a_retained_online_status_shows_online_but_not_when_last_seen() {
    let mut f = fleet();
    status_at(&mut f, true, true, 5_000);
    let row = one(&f, 5_000);
    assert_eq!(row.state, Liveness::Online);
    assert_eq!(row.last_seen_ms, None);
    assert_eq!(row.version.as_deref(), Some("0.1.0"));
    assert_eq!(row.key.to_string(), "acme/clinic-12/gw-0001");
    assert!(row.alerts.is_empty(), "{:?}", row.alerts);
}

#[test]
fn the_last_will_marks_the_gateway_offline_with_its_reason() {
    let mut f = fleet();
    status_at(&mut f, true, false, 1_000);
    status_at(&mut f, false, false, 2_000);
    let row = one(&f, 3_000);
    assert_eq!(row.state, Liveness::Offline);
    assert_eq!(row.last_seen_ms, Some(2_000));
    assert_eq!(
        row.alerts,
        vec![Alert::Offline {
            reason: Some("connection lost".into())
        }]
    );
}

#[test]
fn a_cleared_retained_status_forgets_the_gateway() {
    let mut f = fleet();
    status_at(&mut f, true, true, 1_000);
    let applied = f.apply(&format!("{GW}/status"), &[], true, 2_000).unwrap();
    assert!(matches!(applied, Applied::Removed(_)));
    assert!(f.is_empty());
}

#[test]
fn a_heartbeat_fills_in_backlog_version_and_certificate() {
    let mut f = fleet();
    status_at(&mut f, true, true, 0);
    beat(&mut f, 10_000, |_| {});
    let row = one(&f, 11_000);
    assert_eq!(row.version.as_deref(), Some("0.2.0"));
    assert_eq!(row.queue_depth, Some(7));
    assert_eq!(row.oldest_unsent_ms, Some(4_000));
    assert_eq!(row.cert_days_left, Some(200));
    assert_eq!(row.last_seen_ms, Some(10_000));
    assert_eq!(row.unmapped_ratio, Some(0.1));
    assert!(row.alerts.is_empty(), "{:?}", row.alerts);
}

#[test]
fn a_heartbeat_is_stale_after_three_of_its_own_intervals() {
    let mut f = fleet();
    status_at(&mut f, true, true, 0);
    beat(&mut f, 0, |hb| hb.interval_s = 10);
    assert!(one(&f, 30_000).alerts.is_empty());
    let row = one(&f, 31_000);
    assert_eq!(
        row.alerts,
        vec![Alert::StaleHeartbeat {
            silent_s: 31,
            interval_s: 10
        }]
    );
    assert_eq!(
        row.alerts[0].to_string(),
        "no heartbeat for 31s (expected every 10s)"
    );
}

#[test]
fn an_online_gateway_that_never_sent_a_heartbeat_goes_stale_from_first_sight() {
    let mut f = fleet();
    status_at(&mut f, true, true, 0);
    assert!(one(&f, 3 * MIN).alerts.is_empty());
    assert!(matches!(
        one(&f, 3 * MIN + 1_000).alerts.as_slice(),
        [Alert::StaleHeartbeat { .. }]
    ));
}

#[test]
fn an_offline_gateway_is_not_also_reported_stale() {
    let mut f = fleet();
    status_at(&mut f, false, true, 0);
    let row = one(&f, 60 * MIN);
    assert!(matches!(row.alerts.as_slice(), [Alert::Offline { .. }]));
}

#[test]
fn a_retained_heartbeat_counts_from_when_it_was_sent() {
    let mut f = fleet();
    let payload = heartbeat(|hb| hb.sent_at_ms = 1_000);
    f.apply(&format!("{GW}/telemetry"), &payload, true, 50 * MIN)
        .unwrap();
    let row = one(&f, 50 * MIN);
    assert_eq!(row.last_heartbeat_ms, Some(1_000));
    assert_eq!(row.state, Liveness::Unknown);
}

#[test]
fn an_old_backlog_and_an_expiring_certificate_raise_alerts() {
    let mut f = fleet();
    status_at(&mut f, true, true, 0);
    beat(&mut f, 0, |hb| {
        hb.queue.oldest_unsent_age_ms = Some(16 * 60_000);
        hb.cert_days_left = Some(12);
    });
    let alerts = one(&f, 0).alerts;
    assert_eq!(
        alerts,
        vec![
            Alert::CertExpiring { days_left: 12 },
            Alert::BacklogAge {
                oldest_s: 960,
                limit_s: 900
            }
        ]
    );
    assert_eq!(
        alerts[1].to_string(),
        "backlog: oldest unsent record is 16m old (alert above 15m)"
    );
    assert_eq!(
        alerts[0].to_string(),
        "client certificate expires in 12 days"
    );
}

#[test]
fn storage_alarm_recovery_and_a_filling_buffer_are_reported() {
    let mut f = fleet();
    status_at(&mut f, true, true, 0);
    beat(&mut f, 0, |hb| {
        hb.storage.alarm = true;
        hb.storage.recovery = Some("queue.db moved to queue.db.corrupt-1".into());
        hb.hours_until_full = Some(5.0);
    });
    let alerts = one(&f, 0).alerts;
    assert!(alerts.contains(&Alert::StorageAlarm), "{alerts:?}");
    assert!(
        alerts.contains(&Alert::BufferFilling { hours: 5.0 }),
        "{alerts:?}"
    );
    assert!(
        alerts
            .iter()
            .any(|a| matches!(a, Alert::StoreRecovered { detail } if detail.contains("corrupt"))),
        "{alerts:?}"
    );
}

#[test]
fn an_interface_fails_while_its_error_counters_rise_within_the_window() {
    let mut f = fleet();
    status_at(&mut f, true, true, 0);
    beat(&mut f, 0, set_errors(0, 0, 100));
    assert!(one(&f, 0).failing_sources.is_empty());
    beat(&mut f, MIN, set_errors(2, 0, 160));
    let row = one(&f, MIN);
    assert_eq!(row.failing_sources, ["lab"]);
    assert!(row.alerts.contains(&Alert::InterfaceErrors {
        source: "lab".into(),
        quarantined: 2,
        rejected: 0
    }));
    beat(&mut f, 2 * MIN, set_errors(2, 0, 220));
    assert_eq!(
        one(&f, 2 * MIN).failing_sources,
        ["lab"],
        "still in the window"
    );
    beat(&mut f, 62 * MIN, set_errors(2, 0, 3_820));
    assert!(
        one(&f, 62 * MIN).failing_sources.is_empty(),
        "window passed"
    );
}

#[test]
fn counters_that_restart_from_zero_are_not_errors_but_new_ones_are() {
    let mut f = fleet();
    beat(&mut f, 0, set_errors(5, 1, 100));
    assert_eq!(one(&f, 0).failing_sources, ["lab"], "first sight counts");
    beat(&mut f, 120 * MIN, set_errors(0, 0, 10));
    assert!(one(&f, 120 * MIN).failing_sources.is_empty());
    beat(&mut f, 130 * MIN, set_errors(0, 0, 5));
    beat(&mut f, 131 * MIN, set_errors(1, 0, 60));
    assert_eq!(one(&f, 131 * MIN).failing_sources, ["lab"]);
}

#[test]
fn drift_alerts_are_listed_per_interface() {
    let mut f = fleet();
    beat(&mut f, 0, |hb| {
        if let Some(s) = hb.sources.first_mut() {
            s.drift = vec!["new segment ZXY seen".into()];
        }
    });
    let alerts = one(&f, 0).alerts;
    assert_eq!(
        alerts.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["interface lab drift: new segment ZXY seen"]
    );
}

fn set_reused(reused: u64, uptime_s: u64) -> impl FnOnce(&mut Heartbeat) {
    move |hb| {
        hb.uptime_s = uptime_s;
        if let Some(s) = hb.sources.first_mut() {
            s.control_id_reused = reused;
        }
    }
}

#[test]
fn control_id_reuse_is_an_alert_while_it_rises_within_the_window() {
    let mut f = fleet();
    beat(&mut f, 0, set_reused(0, 100));
    assert!(one(&f, 0).alerts.is_empty());
    beat(&mut f, MIN, set_reused(2, 160));
    let row = one(&f, MIN);
    assert_eq!(row.sources[0].stats.control_id_reused, 2);
    assert_eq!(
        row.alerts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "interface lab: control ids reused with different content (2 in total, stored as new messages)"
        ]
    );
    // A restart does not reset the store's lifetime count: no new alert.
    beat(&mut f, 62 * MIN, set_reused(2, 10));
    assert!(one(&f, 62 * MIN).alerts.is_empty());
}

#[test]
fn a_heartbeat_naming_another_gateway_is_flagged() {
    let mut f = fleet();
    beat(&mut f, 0, |hb| hb.gateway.id = "gw-0002".into());
    assert_eq!(
        one(&f, 0).alerts,
        vec![Alert::IdentityMismatch {
            reported: "acme/clinic-12/gw-0002".into()
        }]
    );
}

#[test]
fn foreign_topics_and_bad_payloads_are_errors_that_name_the_gateway() {
    let mut f = fleet();
    assert!(matches!(
        f.apply("elsewhere/a/b/c/status", &status(true), false, 0),
        Err(ApplyError::UnknownTopic { .. })
    ));
    let err = f
        .apply(&format!("{GW}/telemetry"), &[1, 0xff], false, 0)
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("heartbeat of acme/clinic-12/gw-0001"),
        "{err}"
    );
    let newer = heartbeat(|hb| hb.schema_version = 7);
    let err = f
        .apply(&format!("{GW}/telemetry"), &newer, false, 0)
        .unwrap_err();
    assert!(err.to_string().contains("upgrade the reader"), "{err}");
    assert!(f.is_empty());
}

#[test]
fn record_topics_are_ignored_by_the_fleet() {
    let mut f = fleet();
    let applied = f
        .apply(&format!("{GW}/records/ORU_R01"), b"whatever", false, 0)
        .unwrap();
    assert_eq!(applied, Applied::Ignored);
    assert!(f.is_empty());
}

#[test]
fn rows_are_sorted_by_org_site_and_gateway() {
    let mut f = fleet();
    for topic in ["b/s/g", "a/z/g", "a/s/h", "a/s/g"] {
        f.apply(
            &format!("hl7edge/v1/{topic}/status"),
            &status(true),
            true,
            0,
        )
        .unwrap();
    }
    let keys: Vec<String> = f.rows(0).iter().map(|r| r.key.to_string()).collect();
    assert_eq!(keys, ["a/s/g", "a/s/h", "a/z/g", "b/s/g"]);
}

#[test]
fn records_parked_on_a_gateway_are_an_alert() {
    let mut f = fleet();
    status_at(&mut f, true, true, 0);
    beat(&mut f, 0, |hb| hb.queue.parked = 2);
    let row = one(&f, 0);
    assert_eq!(row.parked, Some(2));
    assert!(
        row.alerts.contains(&Alert::RecordsParked { count: 2 }),
        "{:?}",
        row.alerts
    );
    let shown = Alert::RecordsParked { count: 2 }.to_string();
    assert!(shown.contains("hl7edge parked list"), "{shown}");
    beat(&mut f, 0, |hb| hb.queue.parked = 0);
    assert!(
        !one(&f, 0)
            .alerts
            .iter()
            .any(|a| matches!(a, Alert::RecordsParked { .. }))
    );
}
