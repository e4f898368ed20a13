//! `hl7edge inspect`'s readable report, pinned by golden files for one lab result (ORU^R01) and
//! one admission (ADT^A01) of the public corpus: header, patient, the observation table with
//! ISO 8601 times, what has no standard code, problems located as ERR-2 locates them, and the
//! ACK. Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test -p hl7edge --test
//! inspect_report` and read the diff.
//!
//! Also: `inspect --json | head` ends quietly (a closed pipe is not an error).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hl7edge::inspect::report_text;
use hl7edge_protocol::normalize::mapping::MappingTable;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../protocol/tests/corpus/microsoft-fhir-converter")
        .join(name)
}

/// The report of `file` at a fixed ACK time, times without offset read in UTC.
fn report(file: &str) -> String {
    let bytes = std::fs::read(corpus(file)).unwrap();
    let ack_time = "2026-01-01T00:00:00Z".parse().unwrap();
    report_text(
        &format!("corpus/{file}"),
        &bytes,
        &MappingTable::empty(),
        &jiff::tz::TimeZone::UTC,
        ack_time,
    )
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs (UPDATE_GOLDEN=1 regenerates it); the report now reads:\n{actual}",
        path.display()
    );
}

#[test]
fn the_report_of_a_lab_result_reads_as_its_golden_file() {
    let text = report("ORU-R01-01.hl7");
    // What the report promises, besides the exact text.
    assert!(text.contains("  #  code "), "an observation table: {text}");
    assert!(
        text.contains("2002-02-15T07:30+02:15 (OBR-7)"),
        "a result without OBX-14 says its time is the order's: {text}"
    );
    assert!(
        text.contains("Not mapped: no standard code"),
        "the unmapped codes are listed: {text}"
    );
    assert!(
        text.contains("warning   101  OBX^2^3 "),
        "problems are located as ERR-2 locates them: {text}"
    );
    golden("inspect-oru-r01.txt", &text);
}

#[test]
fn the_report_of_an_admission_reads_as_its_golden_file() {
    let text = report("ADT-A01-01.hl7");
    assert!(
        text.contains("Patient (PID, as the record holds it)"),
        "{text}"
    );
    assert!(text.contains("Visit (PV1)"), "{text}");
    golden("inspect-adt-a01.txt", &text);
}

#[test]
fn json_into_a_pipe_closed_early_ends_without_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let one = std::fs::read(corpus("ADT-A01-01.hl7")).unwrap();
    let mut many = Vec::new();
    for _ in 0..2_000 {
        many.extend_from_slice(&one);
        many.push(b'\n');
    }
    let file = dir.path().join("many.hl7");
    std::fs::write(&file, many).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hl7edge"))
        .args(["inspect", "--json"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: the pipe closes while inspect still writes.
    let out = child.wait_with_output().unwrap();
    assert!(first.starts_with('{'), "{first}");
    assert!(
        out.stderr.is_empty(),
        "nothing on stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{:?}", out.status);
}
