//! Runs the full message path many times on one message file (or on every
//! `.hl7` file of a folder but `malformed/`), for profilers (`valgrind --tool=callgrind`):
//! parse, validate, normalize, encode.

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
