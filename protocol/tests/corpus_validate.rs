//! Runs validation over the HL7 corpus (`tests/corpus/`).
//!
//! Every message outside `malformed/` must be acceptable (no Error issue;
//! warnings are fine, `content-invalid/` files are expected to have some),
//! and every file in a `malformed/` folder must either fail to parse or
//! carry an Error issue. Prints a summary of issues by code and severity
//! (every issue with `HL7EDGE_CORPUS_VERBOSE=1`).

mod common;

use std::collections::BTreeMap;
use std::fs;

use hl7edge_protocol::hl7::ack::AckHeader;
use hl7edge_protocol::hl7::validate::Validation;
use hl7edge_protocol::hl7::{Message, Severity};

#[test]
fn corpus_messages_validate_as_their_folder_says() {
    let dir = common::corpus_dir();
    let files = common::corpus_files();

    let mut failures = Vec::new();
    let mut by_code: BTreeMap<(u16, &str), usize> = BTreeMap::new();
    let mut malformed = 0;
    // HL7EDGE_CORPUS_VERBOSE=1 prints every issue, file by file.
    let verbose = std::env::var_os("HL7EDGE_CORPUS_VERBOSE").is_some();
    for path in &files {
        let bytes = fs::read(path).unwrap();
        let name = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .display()
            .to_string();
        let validation = Message::parse(&bytes).ok().map(|m| Validation::of(&m));
        if common::is_malformed(path) {
            malformed += 1;
            if validation.as_ref().is_some_and(Validation::is_acceptable) {
                failures.push(format!("{name}: malformed but accepted"));
            }
            continue;
        }
        let Some(validation) = validation else {
            failures.push(format!("{name}: does not parse"));
            continue;
        };
        for issue in &validation.issues {
            if verbose {
                println!("{name}: {issue}");
            }
            let severity = match issue.severity {
                Severity::Error => {
                    failures.push(format!("{name}: {issue}"));
                    "E"
                }
                Severity::Warning => "W",
                Severity::Information => "I",
            };
            *by_code.entry((issue.code.code(), severity)).or_default() += 1;
        }
    }
    println!(
        "corpus: {} files ({} malformed), issues by code and severity:",
        files.len(),
        malformed
    );
    for ((code, severity), count) in &by_code {
        println!("  {code} {severity}: {count}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn scraped_headers_agree_with_parsed_headers_on_the_corpus() {
    for path in common::corpus_files() {
        let bytes = fs::read(&path).unwrap();
        if let Ok(msg) = Message::parse(&bytes) {
            assert_eq!(
                AckHeader::scrape(&bytes),
                AckHeader::from_message(&msg),
                "{}",
                path.display()
            );
        }
    }
}
