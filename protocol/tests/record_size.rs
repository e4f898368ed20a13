//! How big the encoded record is next to the HL7 it came from, over the
//! ORU^R01 samples (corpus and `tests/data`): postcard(Record) / raw bytes.
//!
//! The target is a median of at most 35 %. Wire schema 2 met it (about
//! 33 %), but its record left out much of the message: comments,
//! specimens, performers, orderers, demographics, the encounter, every
//! value repetition. Schema 3 carries them (`fidelity.rs`: 99 % of the
//! listed fields' occurrences), and on these samples that is most of what
//! the message says: the corpus ORUs are short hand-written messages whose
//! leaf values are about 70 % of their bytes, and carrying them costs
//! about half again. The target is **missed**: median about 47 %,
//! byte-weighted about 40 % (a general-purpose compressor on top, deflate,
//! would give about 40 % median; a static text model about 42 %; neither
//! meets it either). `record_size_is_pinned` holds today's figures so a
//! change that makes records bigger is not an accident, and prints the
//! table; the README gives the figures and the trade-off.

mod common;

use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, normalize};
use hl7edge_protocol::record::Record;

/// The target: median encoded size over raw size (missed, see the module
/// doc).
const TARGET_MEDIAN: f64 = 0.35;
/// What the compact form reaches today, median, with a little room.
const PINNED_MEDIAN: f64 = 0.48;
/// What the compact form reaches today byte-weighted, with a little room.
const PINNED_WEIGHTED: f64 = 0.41;

struct Ratios {
    median: f64,
    weighted: f64,
}

fn measure() -> Ratios {
    let tz = jiff::tz::TimeZone::UTC;
    let mapping = MappingTable::empty();
    let ctx = Context {
        time_zone: &tz,
        mapping: &mapping,
    };
    let (mut ratios, mut raw_total, mut encoded_total) = (Vec::new(), 0, 0);
    for path in common::sample_files() {
        let raw = std::fs::read(&path).unwrap();
        let Ok(msg) = Message::parse(&raw) else {
            continue;
        };
        let kind = msg.message_type();
        if (kind.code.as_str(), kind.event.as_str()) != ("ORU", "R01") {
            continue;
        }
        let record = normalize(&msg, Vec::new(), &ctx).record;
        let encoded = postcard::to_allocvec(&record).unwrap();
        let ratio = encoded.len() as f64 / raw.len() as f64;
        println!(
            "{:>6} -> {:>5} bytes {:>5.1} %  {}",
            raw.len(),
            encoded.len(),
            ratio * 100.0,
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        ratios.push(ratio);
        raw_total += raw.len();
        encoded_total += encoded.len();
    }
    assert!(!ratios.is_empty(), "no ORU^R01 samples found");
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let weighted = encoded_total as f64 / raw_total as f64;
    println!(
        "median over {} ORU^R01: {:.1} %, byte-weighted {:.1} %",
        ratios.len(),
        median * 100.0,
        weighted * 100.0
    );
    Ratios { median, weighted }
}

#[test]
fn record_size_is_pinned() {
    let r = measure();
    println!(
        "target: median at most {:.0} %; {}",
        TARGET_MEDIAN * 100.0,
        if r.median <= TARGET_MEDIAN {
            "met"
        } else {
            "MISSED"
        }
    );
    assert!(r.median <= PINNED_MEDIAN, "median ratio {:.3}", r.median);
    assert!(
        r.weighted <= PINNED_WEIGHTED,
        "byte-weighted ratio {:.3}",
        r.weighted
    );
}

#[test]
fn every_sample_record_survives_the_compact_form_unchanged() {
    let tz = jiff::tz::TimeZone::UTC;
    let mapping = MappingTable::empty();
    let ctx = Context {
        time_zone: &tz,
        mapping: &mapping,
    };
    let mut checked = 0;
    for path in common::sample_files() {
        let raw = std::fs::read(&path).unwrap();
        let Ok(msg) = Message::parse(&raw) else {
            continue;
        };
        let record = normalize(&msg, Vec::new(), &ctx).record;
        let encoded = postcard::to_allocvec(&record).unwrap();
        let decoded: Record = postcard::from_bytes(&encoded).unwrap();
        assert_eq!(decoded, record, "{}", path.display());
        checked += 1;
    }
    assert!(checked > 0, "no samples parsed");
}
