use std::process::ExitCode;

use super::*;
use crate::cli::testing::{Fixture, PHI, oru};
use crate::store::StoreReader;

fn parked(fixture: &Fixture, action: Action) -> (Result<ExitCode, CliError>, String) {
    let args = ParkedArgs {
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

/// Whether the audit trail has a line of `kind`.
fn audited(fixture: &Fixture, kind: &str) -> bool {
    let lines = reader(fixture).audit_recent(100).expect("audit");
    lines.iter().any(|l| l.kind == kind)
}

/// The fixture's configuration with `hub.max_payload` set to `value`.
fn with_max_payload(fixture: &mut Fixture, value: &str) {
    let text = std::fs::read_to_string(&fixture.config).expect("config");
    let text = text.replace(
        "max_payload = \"128 KB\"",
        &format!("max_payload = \"{value}\""),
    );
    std::fs::write(&fixture.config, text).expect("config written");
    fixture.loaded = Config::load(&fixture.config).expect("config loads");
}

#[test]
fn list_shows_the_record_the_size_it_needs_and_the_ways_out_but_no_phi() {
    let fixture = Fixture::new();
    let seq = fixture.park(&oru("P1"));
    let (result, text) = parked(
        &fixture,
        Action::List {
            limit: 100,
            json: false,
        },
    );
    assert_eq!(result.expect("lists"), ExitCode::SUCCESS);
    assert!(
        text.starts_with("Parked: 1 record too big for the hub"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&seq.to_string()))
        .expect("a row for the record");
    assert!(
        row.contains(" lab ") && row.contains(" P1 ") && row.contains("ORU^R01"),
        "{row}"
    );
    assert!(text.contains("hl7edge parked replay ID") && text.contains("hl7edge parked drop ID"));
    for phi in PHI {
        assert!(!text.contains(phi), "{phi:?} listed:\n{text}");
    }
    let (_, json) = parked(
        &fixture,
        Action::List {
            limit: 100,
            json: true,
        },
    );
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v[0]["id"], seq);
    assert_eq!(v[0]["control_id"], "P1");
    assert_eq!(v[0]["max_payload"], 128_000);
    assert!(
        v[0]["needs_bytes"]
            .as_u64()
            .is_some_and(|n| n > 100 && n < 128_000)
    );
}

#[test]
fn replay_queues_a_record_that_now_fits_with_an_audit_line() {
    let fixture = Fixture::new();
    let seq = fixture.park(&oru("P2"));
    let (result, text) = parked(&fixture, Action::Replay { id: seq });
    assert_eq!(result.expect("replays"), ExitCode::SUCCESS, "{text}");
    assert!(text.contains("queued again"), "{text}");
    let stats = reader(&fixture).stats().expect("stats");
    assert_eq!((stats.parked, stats.queue_depth), (0, 1));
    assert!(audited(&fixture, "parked.replayed"));
}

#[test]
fn replay_of_a_record_larger_than_max_payload_is_refused_with_the_size_needed() {
    let fixture = Fixture::new();
    let mut big = oru("P3");
    big.extend_from_slice(b"OBX|2|TX|NOTE^Note^99LAB||");
    big.extend(std::iter::repeat_n(b'x', 100_000));
    big.extend_from_slice(b"||||||F\r");
    // Parked by an agent whose limit was lowered after it was queued.
    let seq = fixture.park(&big);
    let mut fixture = fixture;
    with_max_payload(&mut fixture, "64 KiB");
    let (result, text) = parked(&fixture, Action::Replay { id: seq });
    assert_eq!(result.expect("answers"), ExitCode::FAILURE);
    assert!(text.contains("still does not fit"), "{text}");
    assert!(text.contains("Nothing was changed"), "{text}");
    assert_eq!(reader(&fixture).stats().expect("stats").parked, 1);
}

#[test]
fn drop_needs_yes_without_a_terminal_then_erases_the_record_with_an_audit_line() {
    let fixture = Fixture::new();
    let seq = fixture.park(&oru("P4"));
    let (result, _) = parked(
        &fixture,
        Action::Drop {
            id: seq,
            yes: false,
        },
    );
    assert!(matches!(
        result,
        Err(CliError::NeedsConfirmation {
            what: "parked record",
            ..
        })
    ));
    assert_eq!(reader(&fixture).stats().expect("stats").parked, 1);
    let (result, text) = parked(&fixture, Action::Drop { id: seq, yes: true });
    assert_eq!(result.expect("drops"), ExitCode::SUCCESS);
    assert!(text.contains("erased"), "{text}");
    let stats = reader(&fixture).stats().expect("stats");
    assert_eq!((stats.parked, stats.queue_depth), (0, 0));
    assert!(audited(&fixture, "parked.dropped"));
    let (again, _) = parked(&fixture, Action::Drop { id: seq, yes: true });
    assert!(matches!(again, Err(CliError::NoSuchParked { .. })));
}

#[test]
fn a_record_that_is_not_parked_cannot_be_replayed_or_dropped() {
    let fixture = Fixture::new();
    assert!(fixture.receive(&oru("Q1")).is_none());
    let (result, _) = parked(&fixture, Action::Replay { id: 1 });
    assert!(matches!(result, Err(CliError::NoSuchParked { seq: 1 })));
    assert_eq!(reader(&fixture).stats().expect("stats").queue_depth, 1);
}
