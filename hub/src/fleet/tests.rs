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
        cert_not_after_ms: None,
        hub: Default::default(),
        pushes: Vec::new(),
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
    assert_eq!(
        row.last_seen_ms,
        Some(1_000),
        "the last will is the broker's message, not the gateway's"
    );
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
fn a_gateway_whose_heartbeats_stop_is_late_with_the_heartbeats_it_missed() {
    let mut f = fleet();
    status_at(&mut f, true, true, 0);
    beat(&mut f, 0, |hb| hb.interval_s = 10);
    let on_time = one(&f, 14_999);
    assert_eq!(on_time.state, Liveness::Online);
    assert_eq!(on_time.missed_heartbeats, Some(0));
    assert!(on_time.alerts.is_empty());
    // A frozen box: the broker still has it online (its keep-alive has not run out).
    let row = one(&f, 48_000);
    assert_eq!(row.state, Liveness::Late);
    assert_eq!(row.missed_heartbeats, Some(4));
    assert_eq!(
        row.alerts,
        vec![Alert::Late {
            missed: 4,
            silent_s: 48,
            interval_s: 10
        }]
    );
    assert_eq!(
        row.alerts[0].to_string(),
        "late: no heartbeat for 48s (4 missed, one expected every 10s); the broker still has it online"
    );
    beat(&mut f, 49_000, |hb| {
        hb.interval_s = 10;
        hb.sent_at_ms = 49_000;
    });
    assert_eq!(one(&f, 49_000).state, Liveness::Online, "on time again");
}

#[test]
fn an_online_gateway_that_never_sent_a_heartbeat_is_late_from_first_sight() {
    let mut f = fleet();
    status_at(&mut f, true, true, 0);
    assert!(one(&f, 89_000).alerts.is_empty());
    assert!(matches!(
        one(&f, 91_000).alerts.as_slice(),
        [Alert::Late { missed: 1, .. }]
    ));
}

#[test]
fn an_offline_gateway_is_not_also_reported_late() {
    let mut f = fleet();
    status_at(&mut f, false, true, 0);
    let row = one(&f, 60 * MIN);
    assert!(matches!(row.alerts.as_slice(), [Alert::Offline { .. }]));
    assert_eq!(row.missed_heartbeats, None);
}

#[test]
fn a_hub_started_later_knows_backlog_and_counters_from_the_retained_heartbeat() {
    let mut f = fleet();
    // What a new subscription gets at once: the retained last will and the retained heartbeat
    // the gateway sent before it went away.
    let payload = heartbeat(|hb| {
        hb.sent_at_ms = 10 * MIN;
        hb.queue.depth = 61;
        hb.counters.acknowledged = 61;
    });
    f.apply(&format!("{GW}/status"), &status(false), true, 30 * MIN)
        .unwrap();
    f.apply(&format!("{GW}/telemetry"), &payload, true, 30 * MIN)
        .unwrap();
    let row = one(&f, 30 * MIN);
    assert_eq!(row.state, Liveness::Offline);
    assert_eq!(row.queue_depth, Some(61));
    assert_eq!(row.counters.map(|c| c.acknowledged), Some(61));
    assert_eq!(
        row.last_seen_ms,
        Some(10 * MIN),
        "last seen is its last heartbeat, not when the hub started"
    );
    // The same retained heartbeat delivered again is not news.
    f.apply(&format!("{GW}/telemetry"), &payload, true, 31 * MIN)
        .unwrap();
    assert_eq!(one(&f, 31 * MIN).last_heartbeat_ms, Some(10 * MIN));
}

#[test]
fn a_clean_shutdown_published_by_the_gateway_counts_as_seen() {
    let mut f = fleet();
    status_at(&mut f, true, false, 1_000);
    let shutdown = Status {
        online: false,
        version: "0.1.0".into(),
        started_at_ms: 1_000,
        reason: Some(SHUTDOWN_REASON.into()),
    }
    .encode()
    .unwrap();
    f.apply(&format!("{GW}/status"), &shutdown, false, 5_000)
        .unwrap();
    assert_eq!(one(&f, 6_000).last_seen_ms, Some(5_000));
}

#[test]
fn an_empty_retained_heartbeat_forgets_the_heartbeat() {
    let mut f = fleet();
    beat(&mut f, 0, |_| {});
    let applied = f
        .apply(&format!("{GW}/telemetry"), &[], true, 1_000)
        .unwrap();
    assert!(matches!(applied, Applied::Removed(_)), "{applied:?}");
    assert!(f.is_empty());
}

#[test]
fn the_certificate_expiry_comes_from_its_end_date() {
    let mut f = fleet();
    beat(&mut f, 0, |hb| {
        hb.cert_days_left = Some(45);
        hb.cert_not_after_ms = Some(20 * 86_400_000 + 5);
    });
    let row = one(&f, 0);
    assert_eq!(row.cert_expires_ms, Some(20 * 86_400_000 + 5));
    assert_eq!(row.cert_days_left, Some(20));
    assert!(row.alerts.contains(&Alert::CertExpiring { days_left: 20 }));
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
fn a_listener_fails_while_it_quarantined_messages_within_the_window() {
    let mut f = fleet();
    status_at(&mut f, true, true, 0);
    beat(&mut f, 0, set_errors(0, 0, 100));
    assert!(one(&f, 0).failing_listeners.is_empty());
    beat(&mut f, MIN, set_errors(2, 0, 160));
    let row = one(&f, MIN);
    assert_eq!(row.failing_listeners, ["lab"]);
    assert!(row.alerts.contains(&Alert::ListenerFailing {
        listener: "lab".into(),
        quarantined: 2,
        window_s: 3_600
    }));
    assert_eq!(
        Alert::ListenerFailing {
            listener: "lab".into(),
            quarantined: 2,
            window_s: 3_600
        }
        .to_string(),
        "listener lab: 2 messages quarantined (answered AE) in the last 1h (on the box: hl7edge quarantine list)"
    );
    beat(&mut f, 2 * MIN, set_errors(2, 0, 220));
    assert_eq!(
        one(&f, 2 * MIN).failing_listeners,
        ["lab"],
        "still in the window"
    );
    beat(&mut f, 62 * MIN, set_errors(2, 0, 3_820));
    assert!(
        one(&f, 62 * MIN).failing_listeners.is_empty(),
        "window passed"
    );
}

#[test]
fn refusals_alone_do_not_make_a_listener_fail() {
    let mut f = fleet();
    beat(&mut f, 0, set_errors(0, 0, 100));
    beat(&mut f, MIN, set_errors(0, 3, 160));
    let row = one(&f, MIN);
    assert!(row.failing_listeners.is_empty(), "{:?}", row.alerts);
    assert_eq!(row.listeners[0].rejected_recently, 3);
}

#[test]
fn a_restarted_clean_agent_is_not_failing_and_a_new_hub_sees_no_old_errors() {
    let mut f = fleet();
    beat(&mut f, 0, set_errors(0, 0, 100));
    beat(&mut f, MIN, set_errors(0, 0, 5));
    assert!(one(&f, MIN).alerts.is_empty(), "a clean restart");
    // A new hub's first sight of an agent that started two hours ago, errors and all.
    let mut later = fleet();
    beat(&mut later, 0, set_errors(5, 1, 7_200));
    assert!(later.rows(0)[0].failing_listeners.is_empty());
    // An agent that started within the window: its errors happened within the window.
    let mut fresh = fleet();
    beat(&mut fresh, 0, set_errors(5, 1, 100));
    assert_eq!(fresh.rows(0)[0].failing_listeners, ["lab"]);
}

#[test]
fn errors_before_a_restart_stay_counted_in_the_window_and_new_ones_add() {
    let mut f = fleet();
    beat(&mut f, 0, set_errors(0, 0, 100));
    beat(&mut f, MIN, set_errors(3, 0, 160));
    beat(&mut f, 2 * MIN, set_errors(0, 0, 10));
    beat(&mut f, 3 * MIN, set_errors(1, 0, 70));
    let row = one(&f, 3 * MIN);
    assert_eq!(row.listeners[0].quarantined_recently, 4);
    assert_eq!(row.failing_listeners, ["lab"]);
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
        ["listener lab drift: new segment ZXY seen"]
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
    assert_eq!(row.listeners[0].stats.control_id_reused, 2);
    assert_eq!(
        row.alerts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "listener lab: 2 control ids reused with different content in the last 1h (stored as new messages)"
        ]
    );
    // A restart with no new reuse: nothing new.
    beat(&mut f, 62 * MIN, set_reused(0, 10));
    assert!(one(&f, 62 * MIN).alerts.is_empty());
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

#[test]
fn a_heartbeat_naming_another_gateway_than_its_topic_is_dropped_and_counted() {
    let mut f = fleet();
    let spoofed = heartbeat(|hb| hb.gateway.site = "clinic-13".into());
    let err = f
        .apply(&format!("{GW}/telemetry"), &spoofed, false, 0)
        .unwrap_err();
    assert!(matches!(err, ApplyError::GatewayMismatch(_)), "{err}");
    assert!(!err.is_invalid(), "refused by rule, not unreadable");
    assert!(
        err.to_string()
            .contains("names gateway \"acme/clinic-13/gw-0001\" but arrived on the topic of acme/clinic-12/gw-0001"),
        "{err}"
    );
    assert_eq!(f.refusals().gateway_mismatch, 1);
    let row = one(&f, 0);
    assert_eq!(row.queue_depth, None, "nothing of it is applied");
    assert_eq!(
        row.alerts,
        vec![Alert::IdentityMismatch {
            reported: "\"acme/clinic-13/gw-0001\"".into()
        }],
        "the topic's gateway sent it: its row says so"
    );
    beat(&mut f, MIN, |_| {});
    assert_eq!(
        one(&f, MIN).queue_depth,
        Some(7),
        "its own heartbeat applies"
    );
    assert!(
        !one(&f, 2 * 3600 * 1000)
            .alerts
            .iter()
            .any(|a| matches!(a, Alert::IdentityMismatch { .. })),
        "the alert lasts the error window"
    );
}

#[test]
fn gateways_beyond_the_cap_are_counted_not_tracked_until_one_leaves() {
    let mut f = Fleet::new(FleetConfig {
        max_gateways: 2,
        ..FleetConfig::default()
    });
    let topic = |g: &str| format!("hl7edge/v1/acme/clinic-12/{g}/status");
    f.apply(&topic("a"), &status(true), false, 0).unwrap();
    f.apply(&topic("b"), &status(true), false, 0).unwrap();
    let err = f.apply(&topic("c"), &status(true), false, 0).unwrap_err();
    assert!(matches!(err, ApplyError::Untracked { max: 2, .. }), "{err}");
    assert!(err.to_string().contains("--max-gateways"), "{err}");
    assert_eq!(f.len(), 2);
    assert_eq!(f.refusals().untracked_gateways, 1);
    f.apply(&topic("a"), &status(false), false, 1).unwrap();
    assert_eq!(f.len(), 2, "a tracked gateway is still updated");
    f.apply(&topic("a"), b"", true, 2).unwrap();
    f.apply(&topic("c"), &status(true), false, 3).unwrap();
    let keys: Vec<String> = f.rows(3).iter().map(|r| r.key.gateway.clone()).collect();
    assert_eq!(keys, ["b", "c"], "a cleared gateway frees its place");
}

#[test]
fn interfaces_beyond_the_cap_are_counted_not_tracked() {
    let mut f = Fleet::new(FleetConfig {
        max_sources: 2,
        ..FleetConfig::default()
    });
    let named = |names: &[&str]| {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        heartbeat(move |hb| {
            hb.sources = names
                .into_iter()
                .map(|name| SourceStats {
                    name,
                    quarantined: 1,
                    ..SourceStats::default()
                })
                .collect();
        })
    };
    let applied = f
        .apply(
            &format!("{GW}/telemetry"),
            &named(&["a", "b", "c", "d"]),
            false,
            0,
        )
        .unwrap();
    assert!(
        matches!(applied, Applied::HeartbeatCapped(_, 2)),
        "{applied:?}"
    );
    let names: Vec<String> = one(&f, 0)
        .listeners
        .iter()
        .map(|s| s.stats.name.clone())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(f.refusals().untracked_sources, 2);
    // Names that change with every heartbeat do not pile up in the error tracks.
    for n in 0..100 {
        let a = format!("x{n}");
        let b = format!("y{n}");
        f.apply(&format!("{GW}/telemetry"), &named(&[&a, &b]), false, n)
            .unwrap();
    }
    let gw = f.gateways.values().next().unwrap();
    assert_eq!(gw.listeners.len(), 2);
}

#[test]
fn quarantined_messages_about_to_expire_and_set_aside_databases_are_alerts() {
    let mut f = fleet();
    beat(&mut f, 0, |hb| {
        hb.custody.quarantine.expiring = 2;
        hb.custody.set_aside.files = 1;
        hb.custody.set_aside.bytes = 3 << 20;
    });
    let alerts = one(&f, 0).alerts;
    assert!(
        alerts.contains(&Alert::QuarantineExpiring { count: 2 }),
        "{alerts:?}"
    );
    let aside = Alert::DatabasesSetAside {
        files: 1,
        bytes: 3 << 20,
    };
    assert!(alerts.contains(&aside), "{alerts:?}");
    assert!(
        aside
            .to_string()
            .contains("hl7edge storage purge-set-aside"),
        "{aside}"
    );
    beat(&mut f, 0, |_| {});
    assert!(!one(&f, 0).alerts.iter().any(|a| matches!(
        a,
        Alert::QuarantineExpiring { .. } | Alert::DatabasesSetAside { .. }
    )));
}

fn set_rhythm(silent: bool) -> impl FnOnce(&mut Heartbeat) {
    move |hb| {
        hb.sources[0].rhythm = Some(Rhythm {
            quiet_s: 2_700,
            usual_gap_s: Some(120),
            silent,
        });
    }
}

#[test]
fn a_silent_feed_of_an_online_gateway_is_an_alert_naming_listener_quiet_time_and_usual_gap() {
    let mut f = fleet();
    status_at(&mut f, true, false, 0);
    beat(&mut f, 0, set_rhythm(true));
    let row = one(&f, 1_000);
    let alert = Alert::FeedSilent {
        listener: "lab".into(),
        silent_s: 2_700,
        usual_gap_s: Some(120),
    };
    assert_eq!(row.alerts, vec![alert.clone()]);
    assert_eq!(alert.kind(), "feed_silent");
    assert_eq!(
        alert.to_string(),
        "listener lab: no message for 45m, usually one every 2m at this hour: the sender or its \
         interface may have stopped (the gateway itself is online)"
    );
    // The next heartbeat after messages resumed clears it.
    beat(&mut f, 60_000, set_rhythm(false));
    assert!(one(&f, 61_000).alerts.is_empty());
}

#[test]
fn a_listener_switched_off_by_a_push_is_silent_on_purpose_and_raises_no_alert() {
    let mut f = fleet();
    status_at(&mut f, true, false, 0);
    beat(&mut f, 0, |hb| {
        set_rhythm(true)(hb);
        hb.pushes.push(hl7edge_protocol::telemetry::PushReport {
            listener: "lab".into(),
            outcome: "applied".into(),
            change: "switch".into(),
            disabled: true,
            ..Default::default()
        });
    });
    let row = one(&f, 1_000);
    assert!(row.alerts.is_empty(), "{:?}", row.alerts);
    assert!(row.listeners[0].disabled);
    assert_eq!(row.listeners[0].silent_s, None);
    let text = super::table::render(std::slice::from_ref(&row), "connected", 1_000);
    assert!(
        text.contains("SWITCHED OFF BY A PUSH (refusing connections on purpose)\n  ")
            && text.contains(": lab\n"),
        "{text}"
    );
}

#[test]
fn an_offline_or_late_gateways_feeds_are_not_also_silent() {
    let mut f = fleet();
    status_at(&mut f, true, false, 0);
    beat(&mut f, 0, set_rhythm(true));
    let late = one(&f, 10 * MIN);
    assert_eq!(late.state, Liveness::Late);
    assert!(
        late.alerts.iter().all(|a| a.kind() != "feed_silent"),
        "{:?}",
        late.alerts
    );
    status_at(&mut f, false, false, 10 * MIN);
    let offline = one(&f, 10 * MIN);
    assert_eq!(offline.alerts.len(), 1, "{:?}", offline.alerts);
    assert_eq!(offline.alerts[0].kind(), "offline");
    assert_eq!(offline.listeners[0].silent_s, None);
}
