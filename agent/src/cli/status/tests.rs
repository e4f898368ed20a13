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
