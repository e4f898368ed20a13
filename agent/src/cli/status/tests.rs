use std::process::ExitCode;

use super::*;
use crate::cli::testing::{Fixture, PHI, close, oru, without_control_id};

fn status(fixture: &Fixture, json: bool) -> String {
    let args = StatusArgs {
        config: fixture.config.clone(),
        json,
    };
    let mut out = Vec::new();
    let code = run(&args, &mut out).expect("status runs");
    assert_eq!(code, ExitCode::SUCCESS);
    String::from_utf8(out).expect("utf-8")
}

fn assert_no_phi(text: &str) {
    for phi in PHI {
        assert!(!text.contains(phi), "{phi:?} printed:\n{text}");
    }
}

#[test]
fn json_counts_queue_interfaces_and_quarantine_without_phi() {
    let fixture = Fixture::new();
    fixture.receive(&oru("C1"));
    fixture.receive(&oru("C2"));
    let rejected = fixture.receive(&without_control_id()).expect("quarantined");
    let text = status(&fixture, true);
    assert_no_phi(&text);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["format"], 1);
    assert_eq!(v["queue"]["depth"], 2);
    assert!(v["queue"]["oldest_unsent_age_seconds"].as_u64().is_some());
    let lab = &v["interfaces"][0];
    assert_eq!(lab["name"], "lab");
    assert_eq!(lab["configured"], true);
    assert_eq!((&lab["received"], &lab["stored"]), (&3.into(), &2.into()));
    assert_eq!(
        (&lab["quarantined"], &lab["forwarded"]),
        (&1.into(), &0.into())
    );
    assert_eq!(v["quarantine"]["open"], 1);
    assert_eq!(v["quarantine"]["latest"][0]["id"], rejected);
    assert_eq!(v["quarantine"]["latest"][0]["error_code"], 101);
    assert_eq!(v["attention"], serde_json::json!(["quarantine_not_empty"]));
}

#[test]
fn readable_status_says_what_to_do_about_quarantine() {
    let fixture = Fixture::new();
    fixture.receive(&oru("C1"));
    fixture.receive(&without_control_id());
    let text = status(&fixture, false);
    assert_no_phi(&text);
    assert!(text.contains("waiting to be sent  1 message\n"), "{text}");
    assert!(
        text.contains("Quarantine: 1 rejected message kept"),
        "{text}"
    );
    assert!(text.contains("hl7edge quarantine list"), "{text}");
    assert!(text.contains("MSH-10"), "the error's location:\n{text}");
}

#[test]
fn a_queue_waiting_too_long_is_flagged_with_advice() {
    let fixture = Fixture::new();
    fixture.receive(&oru("C1"));
    let opened = Opened::load(&fixture.config).expect("opens");
    let later = now_ms() + 20 * 60 * 1000;
    let report = collect(&opened, later).expect("report");
    assert_eq!(report.attention, ["queue_old"]);
    let mut out = Vec::new();
    render(&report, later, &mut out).expect("rendered");
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.contains("hl7edge doctor"), "{text}");
    assert!(text.contains("oldest waiting for  20m"), "{text}");
}

#[test]
fn a_fresh_store_needs_no_attention_and_lists_configured_interfaces() {
    let fixture = Fixture::new();
    let text = status(&fixture, false);
    assert!(text.contains("Nothing needs attention."), "{text}");
    assert!(text.contains("none, everything was sent"), "{text}");
    let lab_row = text
        .lines()
        .find(|l| l.trim_start().starts_with("lab "))
        .expect("a row for the configured interface");
    assert!(lab_row.ends_with("never"), "{lab_row}");
}

#[test]
fn a_missing_database_is_named_and_not_created() {
    let fixture = Fixture::without_database();
    let args = StatusArgs {
        config: fixture.config.clone(),
        json: true,
    };
    let err = run(&args, &mut Vec::new()).expect_err("no database");
    let db = fixture.dir.path().join("queue.db");
    assert!(matches!(&err, CliError::DatabaseMissing { path } if *path == db));
    assert!(err.to_string().contains(&db.display().to_string()));
    assert!(!db.exists());
}

#[test]
fn status_reads_while_the_agent_writes() {
    let fixture = Fixture::new();
    fixture.receive(&oru("C1"));
    let running = fixture.open();
    let text = status(&fixture, true);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["queue"]["depth"], 1);
    close(running);
}

#[test]
fn a_parked_record_is_an_alarm_with_the_ways_out_and_is_not_counted_as_waiting() {
    let fixture = Fixture::new();
    fixture.receive(&oru("C1"));
    let seq = fixture.park(&oru("BIG1"));
    let text = status(&fixture, false);
    assert_no_phi(&text);
    assert!(
        text.contains("Parked: 1 record too big for the hub"),
        "{text}"
    );
    assert!(text.contains("BIG1"), "{text}");
    assert!(text.contains("hl7edge parked list"), "{text}");
    assert!(text.contains("waiting to be sent  1 message"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&status(&fixture, true)).expect("json");
    assert_eq!(v["queue"]["depth"], 1);
    assert_eq!(v["parked"]["count"], 1);
    assert_eq!(v["parked"]["max_payload"], 128_000);
    assert_eq!(v["parked"]["oldest"][0]["id"], seq);
    assert!(
        v["attention"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c == "records_parked")),
        "{v}"
    );
}

#[test]
fn quarantine_entries_near_their_retention_are_flagged_before_they_are_erased() {
    let fixture = Fixture::new();
    let id = fixture.receive(&without_control_id()).expect("quarantined");
    let opened = Opened::load(&fixture.config).expect("opens");
    // The example configuration keeps entries 30 days and warns 7 days before.
    let in_25_days = now_ms() + 25 * 86_400_000;
    let report = collect(&opened, in_25_days).expect("report");
    assert_eq!(
        report.attention,
        ["quarantine_not_empty", "quarantine_expiring"]
    );
    assert_eq!(report.at_rest.quarantine.expiring, 1);
    assert_eq!(report.at_rest.quarantine.held_entries, 1);
    let mut out = Vec::new();
    render(&report, in_25_days, &mut out).expect("rendered");
    let text = String::from_utf8(out).expect("utf-8");
    assert_no_phi(&text);
    assert!(
        text.contains("1 rejected message(s) in quarantine will be erased within 7days"),
        "{text}"
    );
    assert!(text.contains("the next is erased"), "{text}");
    assert!(text.contains("hl7edge quarantine replay ID"), "{text}");
    let now = collect(&opened, now_ms()).expect("report");
    assert_eq!(now.attention, ["quarantine_not_empty"], "not yet: {id}");
}

#[test]
fn a_set_aside_database_is_listed_with_its_size_and_age_and_the_purge_command() {
    let fixture = Fixture::new();
    let db = &fixture.loaded.storage.path;
    let set_aside_at = now_ms() / 1000 - 3 * 86_400;
    let aside = crate::store::sibling(db, &format!(".corrupt-{set_aside_at}"));
    std::fs::write(&aside, vec![0u8; 8192]).expect("written");
    let text = status(&fixture, false);
    assert!(
        text.contains("1 damaged database(s), 8.0 KiB in all"),
        "{text}"
    );
    assert!(text.contains(&aside.display().to_string()), "{text}");
    assert!(text.contains("(3days ago)"), "{text}");
    assert!(text.contains("hl7edge storage purge-set-aside"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&status(&fixture, true)).expect("json");
    assert_eq!(v["at_rest"]["set_aside_bytes"], 8192);
    assert_eq!(
        v["at_rest"]["set_aside"][0]["age_seconds"]
            .as_u64()
            .map(|s| s / 86_400),
        Some(3)
    );
    assert_eq!(v["attention"], serde_json::json!(["set_aside_present"]));
}

/// Records `row` as the running agent would.
fn record_link(fixture: &Fixture, row: crate::store::HubLinkRow) {
    let store = fixture.open();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime
        .block_on(store.handle.record_hub_link(row))
        .expect("recorded");
    close(store);
}

#[test]
fn an_untrusted_hub_certificate_is_named_with_its_fix_and_never_called_a_wait_for_the_hub() {
    let fixture = Fixture::new();
    fixture.receive(&oru("C1"));
    let now = now_ms();
    record_link(
        &fixture,
        crate::store::HubLinkRow {
            state: "disconnected".into(),
            since_ms: now - 60_000,
            custody: "puback".into(),
            cause: Some("hub_certificate_untrusted".into()),
            error: Some("TLS: I/O: invalid peer certificate: BadSignature".into()),
            error_at_ms: Some(now - 1_000),
            failures: 12,
            updated_at_ms: now - 1_000,
            ..crate::store::HubLinkRow::default()
        },
    );
    let opened = Opened::load(&fixture.config).expect("opens");
    let later = now + 20 * 60 * 1000;
    let report = collect(&opened, later).expect("report");
    assert_eq!(report.attention, ["hub_refused", "queue_old"]);
    assert_eq!(report.hub.cause, Some("hub_certificate_untrusted"));
    assert_eq!(report.hub.heals_by_waiting, Some(false));
    let mut out = Vec::new();
    render(&report, later, &mut out).expect("rendered");
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.contains("not issued by the CA in hub.ca"), "{text}");
    assert!(text.contains("BadSignature"), "{text}");
    assert!(
        text.contains("put it at /etc/hl7edge/hub-ca.pem"),
        "the fix names the file:\n{text}"
    );
    assert!(text.contains("Waiting will not help"), "{text}");
    assert!(
        !text.contains("sent once the hub is reachable"),
        "a refusal is never a wait:\n{text}"
    );
    let json = status(&fixture, true);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["hub"]["state"], "disconnected");
    assert_eq!(v["hub"]["heals_by_waiting"], false);
}

#[test]
fn a_hub_that_is_down_is_a_wait_and_says_so() {
    let fixture = Fixture::new();
    let now = now_ms();
    record_link(
        &fixture,
        crate::store::HubLinkRow {
            state: "connecting".into(),
            since_ms: now - 120_000,
            custody: "puback".into(),
            cause: Some("not_listening".into()),
            error: Some("I/O: Connection refused (os error 111)".into()),
            error_at_ms: Some(now - 2_000),
            failures: 5,
            connected_at_ms: Some(now - 600_000),
            updated_at_ms: now - 2_000,
            ..crate::store::HubLinkRow::default()
        },
    );
    let opened = Opened::load(&fixture.config).expect("opens");
    let report = collect(&opened, now).expect("report");
    assert_eq!(report.attention, ["hub_unreachable"]);
    let mut out = Vec::new();
    render(&report, now, &mut out).expect("rendered");
    let text = String::from_utf8(out).expect("utf-8");
    assert!(
        text.contains("nothing listens at the hub's address"),
        "{text}"
    );
    assert!(text.contains("hl7edge doctor"), "{text}");
    assert!(text.contains("sent once the hub is reachable"), "{text}");
}

#[test]
fn records_waiting_for_their_receipt_past_the_timeout_need_attention() {
    let mut fixture = Fixture::new();
    let text = std::fs::read_to_string(&fixture.config)
        .expect("config")
        .replace("custody = \"puback\"", "custody = \"receipt\"");
    std::fs::write(&fixture.config, text).expect("config written");
    fixture.loaded = crate::config::Config::load(&fixture.config).expect("loads");
    fixture.receive(&oru("C1"));
    fixture.receive(&oru("C2"));
    let store = fixture.open();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let reader = store.handle.open_reader().expect("reader");
    let seqs: Vec<i64> = reader
        .pending(0, 10)
        .expect("pending")
        .iter()
        .map(|r| r.seq)
        .collect();
    let puback_at = now_ms() - 10 * 60 * 1000;
    runtime
        .block_on(store.handle.forwarded(seqs[..1].to_vec(), puback_at))
        .expect("marked at broker");
    close(store);
    let json = status(&fixture, true);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(
        v["queue"]["depth"], 1,
        "only the record not yet at the broker"
    );
    assert_eq!(v["hub"]["custody"], "receipt");
    assert_eq!(v["hub"]["awaiting_receipt"], 1);
    assert!(v["hub"]["oldest_awaiting_receipt_age_seconds"].as_u64() >= Some(600));
    assert_eq!(v["attention"], serde_json::json!(["receipts_overdue"]));
    let text = status(&fixture, false);
    assert!(
        text.contains("awaiting receipt  1 record(s), the oldest for 10m"),
        "{text}"
    );
    assert!(
        text.contains("published again under the same record ids"),
        "{text}"
    );
}

#[test]
fn status_shows_the_pushed_mapping_and_the_last_push_outcomes_with_the_agent_stopped() {
    let mut fixture = Fixture::new();
    fixture.push_mapping(&crate::cli::testing::mapping("lab-v2"));
    let store = fixture.open();
    let lines = [
        (
            "push.applied",
            "listener lab: mapping a -> b (sequence 10, scope acme-health/clinic-12, push sha256:ab)",
        ),
        (
            "push.rejected",
            "listener lab: sequence 20 rejected (bad_signature): the signature does not verify (push sha256:cd)",
        ),
        (
            "push.applied",
            "replay sequence 100 (listener lab, error code 103; scope acme-health/clinic-12): 3 replayed, 0 still quarantined (push sha256:ef)",
        ),
    ];
    crate::cli::testing::runtime().block_on(async {
        for (kind, detail) in lines {
            store.handle.audit(kind, detail, now_ms()).await.unwrap();
        }
    });
    close(store);

    let text = status(&fixture, false);
    assert!(text.contains("Pushes (organization key ed25519:"), "{text}");
    let lab = text
        .lines()
        .find(|l| l.trim_start().starts_with("lab ") && l.contains("mapping lab-v2+"))
        .unwrap_or_else(|| panic!("a line for lab: {text}"));
    assert!(lab.contains("(pushed, sequence 10)"), "{lab}");
    assert!(
        lab.contains("last push: rejected (bad_signature), sequence 20"),
        "{lab}"
    );
    assert!(
        text.contains("last replay push: applied, sequence 100,")
            && text.contains(": 3 replayed, 0 still quarantined"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&status(&fixture, true)).unwrap();
    let lab = &v["pushes"]["listeners"][0];
    assert_eq!(lab["mapping_from"], "pushed");
    assert_eq!(lab["last"]["reason"], "bad_signature");
    assert_eq!(v["pushes"]["replay"]["sequence"], 100);
}

#[test]
fn status_says_pushes_are_off_without_a_pinned_key() {
    let fixture = Fixture::new();
    let text = status(&fixture, false);
    assert!(
        text.contains("Pushes: off (hub.push_key is not set)"),
        "{text}"
    );
}
