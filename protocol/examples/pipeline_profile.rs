//! Runs the full message path many times on one message file (or on every
//! `.hl7` file of a folder but `malformed/`), for profilers (`valgrind --tool=callgrind`):
//! parse, validate, normalize, encode. With `parse` as third argument, only
//! what the benchmark's parse rows run: parse and read MSH-9, MSH-10, PID-3.1
//! and OBX-3.1 and OBX-5 of every OBX.

use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::hl7::validate::Validation;
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, normalize};
use hl7edge_protocol::wire::StoredRecord;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: pipeline_profile FILE|FOLDER [ROUNDS]");
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let messages = read_messages(std::path::Path::new(&path));
    if std::env::args().nth(3).as_deref() == Some("parse") {
        let total: usize = std::iter::repeat_n(&messages, rounds)
            .flatten()
            .map(|m| touch(m))
            .sum();
        println!("{total}");
        return;
    }
    let mapping = MappingTable::empty();
    let tz = jiff::tz::TimeZone::UTC;
    let mut total = 0;
    for raw in std::iter::repeat_n(&messages, rounds).flatten() {
        let Ok(msg) = Message::parse(raw) else {
            continue;
        };
        let v = Validation::of(&msg);
        let ctx = Context {
            time_zone: &tz,
            mapping: &mapping,
        };
        let out = normalize(&msg, v.issues, &ctx);
        let stored = StoredRecord {
            mapping_version: mapping.version().clone(),
            record: out.record,
        };
        total += stored.encode().map_or(0, |b| b.len());
    }
    println!("{total}");
}

/// Parses `m` and reads the fields the parse benchmark reads.
fn touch(m: &[u8]) -> usize {
    let Ok(msg) = Message::parse(m) else { return 0 };
    let msh = msg.msh();
    let mut n = 0;
    if let Some(f) = msh.field(9) {
        n += f.component(1).map_or(0, |c| c.raw().len());
        n += f.component(2).map_or(0, |c| c.raw().len());
    }
    n += msh.field(10).map_or(0, |f| f.raw().len());
    let mut pid_done = false;
    for seg in msg.segments() {
        match seg.id_bytes() {
            b"PID" if !pid_done => {
                pid_done = true;
                n += seg
                    .field(3)
                    .and_then(|f| f.component(1))
                    .map_or(0, |c| c.raw().len());
            }
            b"OBX" => {
                n += seg
                    .field(3)
                    .and_then(|f| f.component(1))
                    .map_or(0, |c| c.raw().len());
                n += seg.field(5).map_or(0, |f| f.raw().len());
            }
            _ => {}
        }
    }
    n
}

/// The file, or every `.hl7` file under the folder (sorted).
fn read_messages(path: &std::path::Path) -> Vec<Vec<u8>> {
    if !path.is_dir() {
        return vec![std::fs::read(path).expect("readable file")];
    }
    let mut files = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable folder").flatten() {
            let p = entry.path();
            if p.is_dir() {
                // Same set as the parse benchmark: malformed samples left out.
                if p.file_name().is_some_and(|n| n != "malformed") {
                    dirs.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "hl7") {
                files.push(p);
            }
        }
    }
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}
