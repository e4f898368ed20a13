use std::process::ExitCode;

use hl7edge_protocol::wire::StoredRecord;

use super::*;
use crate::cli::testing::{Fixture, PHI, close, mapping, oru, without_control_id};
use crate::store::{StoreReader, now_ms};

fn quarantine(fixture: &Fixture, action: Action) -> (Result<ExitCode, CliError>, String) {
    let args = QuarantineArgs {
        config: fixture.config.clone(),
        action,
    };
    let mut out = Vec::new();
    let result = run(&args, &mut out);
    (result, String::from_utf8(out).expect("utf-8"))
}

fn reader(fixture: &Fixture) -> StoreReader {
    StoreReader::open(&fixture.loaded.storage.path).expect("reader")
}

#[test]
fn list_shows_id_interface_control_id_and_error_but_no_phi() {
    let fixture = Fixture::new();
    let id = fixture.quarantine(&oru("Q7"), now_ms());
    let action = Action::List {
        limit: 100,
        json: false,
    };
    let (result, text) = quarantine(&fixture, action);
    assert_eq!(result.expect("lists"), ExitCode::SUCCESS);
    let row = text
        .lines()
        .find(|l| l.starts_with("  ") && l.split_whitespace().next() == Some(&id.to_string()))
        .expect("a row for the entry");
    assert!(row.contains(" lab ") && row.contains(" Q7 "), "{row}");
    assert!(row.contains("OBX(1)-3"), "{row}");
    for phi in PHI {
        assert!(!text.contains(phi), "{phi:?} listed:\n{text}");
    }
}

#[test]
fn list_json_has_one_object_per_open_entry() {
    let fixture = Fixture::new();
    let rejected = fixture.receive(&without_control_id()).expect("quarantined");
    let action = Action::List {
        limit: 100,
        json: true,
    };
    let (result, text) = quarantine(&fixture, action);
    result.expect("lists");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["id"], rejected);
    assert_eq!(v[0]["interface"], "lab");
    assert_eq!(v[0]["control_id"], "");
    assert!(v[0]["error"].as_str().is_some_and(|e| e.contains("MSH-10")));
}

#[test]
fn show_prints_every_problem_and_the_message_one_segment_per_line() {
    let fixture = Fixture::new();
    let id = fixture.receive(&without_control_id()).expect("quarantined");
    let (result, text) = quarantine(&fixture, Action::Show { id });
    result.expect("shows");
    assert!(text.contains("Problems found"), "{text}");
    assert!(text.contains("MSH-10"), "{text}");
    assert!(
        text.lines()
            .any(|l| l == "  PID|1||123^^^HOSP^MR||DOE^JANE||19800101|F"),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("  MSA|AE")), "{text}");
    assert!(!text.contains('\r') && !text.contains('\x0b'), "{text:?}");
    // No configuration gives a message its control id: no replay is offered, the sender is.
    assert!(!text.contains("quarantine replay"), "{text}");
    assert!(
        text.contains("it is refused for what it holds (above). Ask its sender to send it again"),
        "{text}"
    );
    assert!(
        text.contains(&format!("hl7edge quarantine drop {id}")),
        "{text}"
    );
}

#[test]
fn show_offers_a_replay_for_a_message_that_passes_the_checks_now() {
    let fixture = Fixture::new();
    let id = fixture.quarantine(&oru("Q7"), now_ms());
    let (result, text) = quarantine(&fixture, Action::Show { id });
    result.expect("shows");
    assert!(
        text.contains(&format!("hl7edge quarantine replay {id}")),
        "{text}"
    );
}

#[test]
fn replay_of_a_still_broken_message_changes_nothing() {
    let fixture = Fixture::new();
    let id = fixture.receive(&without_control_id()).expect("quarantined");
    let (result, text) = quarantine(&fixture, Action::Replay { id });
    assert_eq!(result.expect("runs"), ExitCode::FAILURE);
    assert!(
        text.contains("still rejected") && text.contains("MSH-10"),
        "{text}"
    );
    let r = reader(&fixture);
    assert_eq!(r.stats().expect("stats").quarantine_count, 1);
    assert!(r.pending(0, 10).expect("pending").is_empty());
    let audit = r.audit_recent(10).expect("audit");
    assert!(
        audit.iter().all(|a| !a.kind.starts_with("quarantine.re")),
        "{audit:?}"
    );
}

#[test]
fn replay_codes_with_the_pushed_mapping_the_agent_runs_not_the_configured_file() {
    let mut fixture = Fixture::new();
    let id = fixture.quarantine(&oru("Q7"), now_ms());
    fixture.push_mapping(&mapping("lab-pushed"));
    let (result, text) = quarantine(&fixture, Action::Replay { id });
    assert_eq!(result.expect("replays"), ExitCode::SUCCESS, "{text}");
    let pending = reader(&fixture).pending(0, 10).expect("pending");
    let stored = StoredRecord::decode(&pending[0].record).expect("a record");
    assert_eq!(
        stored.mapping_version.declared.as_deref(),
        Some("lab-pushed")
    );
}

#[test]
fn replay_queues_the_message_with_the_current_mapping_and_audits() {
    let fixture = Fixture::new();
    let received_at = now_ms() - 60_000;
    let id = fixture.quarantine(&oru("Q7"), received_at);
    let map = fixture.dir.path().join("lab.csv");
    std::fs::write(&map, mapping("lab-v2")).expect("mapping fixed");
    let (result, text) = quarantine(&fixture, Action::Replay { id });
    assert_eq!(result.expect("replays"), ExitCode::SUCCESS, "{text}");
    assert!(text.contains("queued for the hub"), "{text}");
    let r = reader(&fixture);
    let pending = r.pending(0, 10).expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].received_at_ms, received_at);
    let stored = StoredRecord::decode(&pending[0].record).expect("a record");
    assert_eq!(stored.mapping_version.declared.as_deref(), Some("lab-v2"));
    let entry = r.quarantine_get(id).expect("read").expect("entry");
    assert!(entry.summary.replayed_at_ms.is_some());
    let audit = r.audit_recent(1).expect("audit");
    assert_eq!(audit[0].kind, "quarantine.replayed");
    assert!(audit[0].detail.contains(&format!("entry {id}")));
    let (again, _) = quarantine(&fixture, Action::Replay { id });
    assert!(matches!(
        again,
        Err(CliError::AlreadyResolved {
            how: "replayed",
            ..
        })
    ));
}

#[test]
fn replay_while_the_agent_runs_reaches_its_queue() {
    let fixture = Fixture::new();
    let id = fixture.quarantine(&oru("Q7"), now_ms());
    let running = fixture.open();
    let (result, text) = quarantine(&fixture, Action::Replay { id });
    assert_eq!(result.expect("replays"), ExitCode::SUCCESS, "{text}");
    let agent_reader = running.handle.open_reader().expect("reader");
    assert_eq!(agent_reader.pending(0, 10).expect("pending").len(), 1);
    close(running);
}

#[test]
fn an_unknown_id_is_reported_with_the_way_to_find_one() {
    let fixture = Fixture::new();
    let (result, _) = quarantine(&fixture, Action::Show { id: 42 });
    let err = result.expect_err("no entry 42");
    assert!(matches!(err, CliError::NoSuchEntry { id: 42 }));
    assert!(err.to_string().contains("hl7edge quarantine list"));
}

#[test]
fn drop_without_a_terminal_needs_yes_and_keeps_the_entry() {
    let fixture = Fixture::new();
    let id = fixture.quarantine(&oru("Q7"), now_ms());
    let (result, _) = quarantine(&fixture, Action::Drop { id, yes: false });
    assert!(matches!(result, Err(CliError::NeedsConfirmation { .. })));
    assert_eq!(reader(&fixture).stats().expect("stats").quarantine_count, 1);
    let (result, text) = quarantine(&fixture, Action::Drop { id, yes: true });
    assert_eq!(result.expect("drops"), ExitCode::SUCCESS, "{text}");
    let r = reader(&fixture);
    let entry = r.quarantine_get(id).expect("read").expect("entry");
    assert!(entry.summary.dropped_at_ms.is_some() && entry.raw.is_empty());
    assert_eq!(
        r.audit_recent(1).expect("audit")[0].kind,
        "quarantine.dropped"
    );
}

#[test]
fn drop_on_a_terminal_asks_and_only_yes_drops() {
    let fixture = Fixture::new();
    let id = fixture.quarantine(&oru("Q7"), now_ms());
    let mut out = Vec::new();
    let no = Confirm::new(false, true, &b"n\n"[..]);
    let code = drop_entry::run(&fixture.config, id, no, &mut out).expect("asks");
    assert_eq!(code, ExitCode::FAILURE);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("Type yes") && text.contains("Not dropped"),
        "{text}"
    );
    assert_eq!(reader(&fixture).stats().expect("stats").quarantine_count, 1);
    let yes = Confirm::new(false, true, &b"yes\n"[..]);
    let code = drop_entry::run(&fixture.config, id, yes, &mut Vec::new()).expect("drops");
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(reader(&fixture).stats().expect("stats").quarantine_count, 0);
}
