//! Helpers shared by the corpus tests: where the sample messages are.
//!
//! The corpus of public sample messages is part of the repository:
//! `tests/corpus/` (origins and licences in its `SOURCES.md`, one row per
//! file in `manifest.jsonl`). `HL7EDGE_CORPUS` points the tests at another
//! folder of the same layout instead (a site's own captures, say). A corpus
//! folder that is missing or holds fewer than [`MIN_CORPUS_FILES`] messages
//! fails the test: a corpus test never passes without its corpus. The
//! device messages under `tests/data/pcd01` are always added.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Fewer `.hl7` files than this under the corpus folder means it is not
/// the corpus (the repository's holds 201).
pub const MIN_CORPUS_FILES: usize = 100;

/// The corpus folder: `HL7EDGE_CORPUS`, else the repository's
/// `tests/corpus/`. Panics when it is not a folder.
pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("HL7EDGE_CORPUS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"),
        PathBuf::from,
    );
    assert!(
        dir.is_dir(),
        "HL7 corpus not found at {} (the repository's copy is protocol/tests/corpus; \
         HL7EDGE_CORPUS may point elsewhere)",
        dir.display()
    );
    dir
}

/// Every `.hl7` file of the corpus, sorted. Panics when there are fewer
/// than [`MIN_CORPUS_FILES`].
pub fn corpus_files() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let mut files = Vec::new();
    collect(&dir, &mut files);
    files.sort();
    assert!(
        files.len() >= MIN_CORPUS_FILES,
        "only {} .hl7 files under {}: not the corpus",
        files.len(),
        dir.display()
    );
    files
}

/// Every `.hl7` file of the corpus and of `tests/data`, sorted.
pub fn sample_files() -> Vec<PathBuf> {
    let mut files = corpus_files();
    collect(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"),
        &mut files,
    );
    files.sort();
    files
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "hl7") {
            out.push(path);
        }
    }
}

/// True for files the corpus marks as structurally broken.
pub fn is_malformed(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "malformed")
}

/// Whether the gateway refuses `raw` for carrying more than one patient: a
/// second PID in a message whose results, orders or doses the record would
/// file under the first patient.
pub fn refuses_second_patient(raw: &[u8]) -> bool {
    let Ok(msg) = hl7edge_protocol::hl7::Message::parse(raw) else {
        return false;
    };
    let clinical = matches!(
        msg.message_type().code.as_str(),
        "ORU" | "OUL" | "ORM" | "OML" | "VXU"
    );
    clinical && msg.segments_named("PID").count() > 1
}

/// The record the gateway makes of the message in `path` (site zone
/// America/New_York, no mapping table), or `None` when it does not parse.
pub fn record_of(path: &Path) -> Option<hl7edge_protocol::record::Record> {
    use hl7edge_protocol::hl7::Message;
    use hl7edge_protocol::hl7::validate::validate;
    use hl7edge_protocol::normalize::mapping::MappingTable;
    use hl7edge_protocol::normalize::{Context, normalize};
    let raw = std::fs::read(path).unwrap();
    let msg = Message::parse(&raw).ok()?;
    let tz = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let mapping = MappingTable::empty();
    let ctx = Context {
        time_zone: &tz,
        mapping: &mapping,
    };
    let issues = validate(&msg);
    Some(normalize(&msg, issues, &ctx).record)
}
