//! Helpers shared by the corpus tests: where the sample messages are.
//!
//! The corpus of public sample messages lives outside the repository; its
//! folder is `HL7EDGE_CORPUS` if set, else `../../shared/corpus/hl7` from
//! this crate. The device messages under `tests/data/pcd01` are always
//! added.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The corpus folder, or `None` (with a loud note) when it is missing.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HL7EDGE_CORPUS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/hl7"),
        PathBuf::from,
    );
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: HL7 corpus not found at {} (set HL7EDGE_CORPUS)",
            dir.display()
        );
        None
    }
}

/// Every `.hl7` file of the corpus (when present) and of `tests/data`,
/// sorted.
pub fn sample_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(dir) = corpus_dir() {
        collect(&dir, &mut files);
    }
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
        "ORU" | "ORM" | "OML" | "VXU"
    );
    clinical && msg.segments_named("PID").count() > 1
}
