//! Runs the full message path many times on one message file, for
//! profilers (`valgrind --tool=callgrind`): parse, validate, normalize,
//! encode.

use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::hl7::validate::Validation;
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, normalize};
use hl7edge_protocol::wire::StoredRecord;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: pipeline_profile FILE [ROUNDS]");
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let raw = std::fs::read(path).expect("readable file");
    let mapping = MappingTable::empty();
    let tz = jiff::tz::TimeZone::UTC;
    let mut total = 0;
    for _ in 0..rounds {
        let msg = Message::parse(&raw).expect("parses");
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
