//! Record fidelity: for each field of a published list of clinically
//! meaningful fields, the share of its occurrences in the corpus whose
//! value reaches the record.
//!
//! An occurrence (one field of one segment that holds a value) is
//! **carried** when every listed component of every repetition that holds
//! a value changes the record when that value is changed (its first letter
//! or digit replaced by the next one; a comparator or separator by
//! another), or is a string the record holds elsewhere too (an order number
//! sent in ORC and in OBR): then the record holds it, wherever it put it.
//! An occurrence that is not carried must be **named** in the record's
//! "not carried" warnings (its segment and field, or the whole segment), or
//! **warned** about (a located warning at that field: a date that is no
//! date, an identifier without its id); anything else is **silent**, a
//! value lost without a word.
//!
//! Targets: nothing silent; at least 99 % carried. Run with
//! `cargo test -p hl7edge-protocol --test fidelity -- --nocapture` to print
//! the table (it is in the README); a silent value is printed with its
//! file, and `SHOW_NAMED=1` prints every named one too.
//!
//! The corpus is every message of `tests/corpus` and `tests/data` of a type
//! with a normalizer (ORU, OUL, ORM, OML, VXU, ADT) that the gateway
//! accepts.

mod common;

use std::collections::BTreeMap;

use hl7edge_protocol::hl7::validate::Validation;
use hl7edge_protocol::hl7::{Element, Message};
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, normalize};
use hl7edge_protocol::record::Record;

/// Components of a coded element (CWE/CE): code, text, system, and the
/// alternate code, text, system.
const CWE: &[usize] = &[1, 2, 3, 4, 5, 6];
/// XCN: id, family, given, middle, suffix, prefix, degree, assigning
/// authority, identifier type.
const XCN: &[usize] = &[1, 2, 3, 4, 5, 6, 7, 9, 13];
/// XON: name, assigning authority, identifier type, identifier.
const XON: &[usize] = &[1, 6, 7, 10];
/// XAD: street, other, city, state, postal code, country, type, county.
const XAD: &[usize] = &[1, 2, 3, 4, 5, 6, 7, 9];
/// XTN: number, use, equipment, e-mail, country, area, local, extension.
const XTN: &[usize] = &[1, 2, 3, 4, 5, 6, 7, 8];
/// XPN: family, given, middle, suffix, prefix, degree, type.
const XPN: &[usize] = &[1, 2, 3, 4, 5, 6, 7];
/// CX: value, assigning authority, type, assigning facility.
const CX: &[usize] = &[1, 4, 5, 6];
/// EI: id, namespace, universal id.
const EI: &[usize] = &[1, 2, 3];
/// A value in its first component (ST, ID, IS, NM, TS, DTM, FT).
const ONE: &[usize] = &[1];
/// Every component (OBX-5, whatever its type).
const ALL: &[usize] = &[];

/// The published list: segment, field, the components that must reach the
/// record, what it is.
const FIELDS: &[(&str, usize, &[usize], &str)] = &[
    ("MSH", 3, &[1, 2], "sending application"),
    ("MSH", 4, &[1, 2], "sending facility"),
    ("MSH", 7, ONE, "message time"),
    ("MSH", 10, ONE, "control id"),
    ("SFT", 1, &[1], "software vendor"),
    ("SFT", 2, ONE, "software version"),
    ("SFT", 3, ONE, "software product"),
    ("SFT", 4, ONE, "software binary id"),
    ("PID", 3, CX, "patient identifiers"),
    ("PID", 5, XPN, "patient name"),
    ("PID", 7, ONE, "birth date"),
    ("PID", 8, ONE, "sex"),
    ("PID", 10, CWE, "race"),
    ("PID", 11, XAD, "address"),
    ("PID", 22, CWE, "ethnicity"),
    ("PID", 29, ONE, "death date"),
    ("PID", 30, ONE, "death indicator"),
    ("NK1", 2, XPN, "next of kin name"),
    ("NK1", 3, CWE, "next of kin relationship"),
    ("NK1", 4, XAD, "next of kin address"),
    ("NK1", 5, XTN, "next of kin phone"),
    ("PV1", 2, ONE, "patient class"),
    ("PV1", 3, &[1, 2, 3, 4], "location"),
    ("PV1", 7, XCN, "attending doctor"),
    ("PV1", 19, CX, "visit number"),
    ("PV1", 44, ONE, "admit time"),
    ("PV1", 45, ONE, "discharge time"),
    ("ORC", 1, ONE, "order control"),
    ("ORC", 5, ONE, "order status"),
    ("ORC", 12, XCN, "ordering provider"),
    ("ORC", 21, XON, "ordering facility"),
    ("ORC", 22, XAD, "ordering facility address"),
    ("ORC", 23, XTN, "ordering facility phone"),
    ("OBR", 2, EI, "placer order number"),
    ("OBR", 3, EI, "filler order number"),
    ("OBR", 4, CWE, "service"),
    ("OBR", 7, ONE, "observation time"),
    ("OBR", 16, XCN, "ordering provider"),
    ("OBR", 22, ONE, "report time"),
    ("OBR", 25, ONE, "result status"),
    ("OBR", 26, &[1, 2, 3], "parent result"),
    ("OBR", 29, &[1, 2], "parent order"),
    ("TQ1", 7, ONE, "start"),
    ("TQ1", 8, ONE, "end"),
    ("TQ1", 9, CWE, "priority"),
    ("OBX", 3, CWE, "observation code"),
    ("OBX", 4, ONE, "sub-id"),
    ("OBX", 5, ALL, "value, every repetition"),
    ("OBX", 6, ONE, "unit"),
    ("OBX", 7, ONE, "reference range"),
    ("OBX", 8, ONE, "abnormal flags"),
    ("OBX", 11, ONE, "result status"),
    ("OBX", 14, ONE, "observation time"),
    ("OBX", 17, CWE, "method"),
    ("OBX", 18, &[1, 2, 3, 4], "equipment"),
    ("OBX", 23, XON, "performing organization"),
    ("OBX", 24, XAD, "performing organization address"),
    ("OBX", 25, XCN, "performing organization director"),
    ("NTE", 2, ONE, "comment source"),
    ("NTE", 3, ONE, "comment"),
    ("NTE", 4, CWE, "comment type"),
    ("SPM", 2, &[1, 2], "specimen id"),
    ("SPM", 4, CWE, "specimen type"),
    ("SPM", 8, CWE, "source site"),
    ("SPM", 11, CWE, "specimen role (QC)"),
    ("SPM", 17, &[1, 2], "collection time"),
    ("SPM", 18, ONE, "received time"),
    ("SPM", 21, CWE, "reject reason"),
    ("SPM", 24, CWE, "condition"),
    ("RXA", 5, CWE, "vaccine"),
    ("RXA", 21, ONE, "action"),
    ("MRG", 1, CX, "prior identifiers"),
    ("MRG", 3, CX, "prior account"),
    ("MRG", 5, CX, "prior visit"),
];

/// Counts for one listed field.
#[derive(Default, Clone, Copy)]
struct Tally {
    occurrences: usize,
    carried: usize,
    named: usize,
    warned: usize,
}

fn context_normalize(raw: &[u8]) -> Option<Record> {
    let msg = Message::parse(raw).ok()?;
    let validation = Validation::of(&msg);
    if !validation.is_acceptable() {
        return None;
    }
    let tz = jiff::tz::TimeZone::UTC;
    let mapping = MappingTable::empty();
    let ctx = Context {
        time_zone: &tz,
        mapping: &mapping,
    };
    Some(normalize(&msg, validation.issues, &ctx).record)
}

/// The record without its warnings: what a value change must show in.
fn content(mut r: Record) -> Record {
    r.issues.clear();
    r.not_carried.clear();
    r
}

/// `raw` with the value at `range` changed (see the module doc).
fn changed(raw: &[u8], range: std::ops::Range<usize>) -> Vec<u8> {
    let mut out = raw.to_vec();
    let value = &mut out[range];
    let at = value
        .iter()
        .position(u8::is_ascii_alphanumeric)
        .unwrap_or(0);
    let b = value[at];
    value[at] = match b {
        b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y' => b + 1,
        b'9' => b'0',
        b'z' => b'a',
        b'Z' => b'A',
        b'<' => b'>',
        b'>' => b'<',
        b'-' => b'+',
        b':' => b'/',
        _ => b'X',
    };
    out
}

/// True when `value` (at least three characters, so no one-letter code
/// counts) is a string of the record: a value the record holds in another
/// place too (an order number in ORC and OBR), so changing one copy shows
/// nowhere.
fn elsewhere(json: &serde_json::Value, value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    if text.trim().len() < 3 {
        return false;
    }
    match json {
        serde_json::Value::String(s) => s == text.trim(),
        serde_json::Value::Array(items) => items.iter().any(|v| elsewhere(v, value)),
        serde_json::Value::Object(map) => map.values().any(|v| elsewhere(v, value)),
        _ => false,
    }
}

/// Where `element` lies in `raw`.
fn span(raw: &[u8], element: &Element<'_>) -> std::ops::Range<usize> {
    let start = element.raw().as_ptr() as usize - raw.as_ptr() as usize;
    start..start + element.raw().len()
}

/// True when a value is there (not blank, not `""`).
fn holds_value(e: &Element<'_>) -> bool {
    !e.is_null() && e.raw().iter().any(u8::is_ascii_alphanumeric)
}

/// The spans of the listed components of every repetition of `field`
/// that hold a value.
fn values(raw: &[u8], field: &Element<'_>, components: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    for rep in field.repetitions() {
        let listed: Vec<usize> = if components.is_empty() {
            (1..=rep.component_count()).collect()
        } else {
            components.to_vec()
        };
        for n in listed {
            if let Some(c) = rep.component(n).filter(holds_value) {
                out.push(span(raw, &c));
            }
        }
    }
    out
}

fn measure() -> BTreeMap<(String, usize), Tally> {
    let mut tallies: BTreeMap<(String, usize), Tally> = BTreeMap::new();
    let mut messages = 0;
    for path in common::sample_files() {
        let raw = std::fs::read(&path).unwrap();
        let Ok(msg) = Message::parse(&raw) else {
            continue;
        };
        let code = msg.message_type().code;
        if !matches!(code.as_str(), "ORU" | "OUL" | "ORM" | "OML" | "VXU" | "ADT") {
            continue;
        }
        let Some(record) = context_normalize(&raw) else {
            continue;
        };
        messages += 1;
        let base = content(record.clone());
        let json = serde_json::to_value(&base).unwrap();
        for segment in msg.segments() {
            let id = segment.id();
            for &(seg, n, components, _) in FIELDS {
                if seg != id {
                    continue;
                }
                let Some(field) = segment.field(n).filter(holds_value) else {
                    continue;
                };
                let tally = tallies.entry((seg.to_owned(), n)).or_default();
                tally.occurrences += 1;
                let carried = values(&raw, &field, components).into_iter().all(|range| {
                    context_normalize(&changed(&raw, range.clone())).map(content)
                        != Some(base.clone())
                        || elsewhere(&json, &raw[range])
                });
                let warned = record.issues.iter().any(|i| {
                    i.location.segment == seg
                        && i.location.segment_sequence as usize == segment.index() + 1
                        && usize::from(i.location.field) == n
                });
                if carried {
                    tally.carried += 1;
                } else if warned {
                    tally.warned += 1;
                } else if record
                    .not_carried
                    .iter()
                    .any(|c| c.segment == seg && (usize::from(c.field) == n || c.field == 0))
                {
                    tally.named += 1;
                    if std::env::var_os("SHOW_NAMED").is_some() {
                        println!(
                            "named: {seg}-{n} in {}: {}",
                            path.display(),
                            String::from_utf8_lossy(field.raw())
                        );
                    }
                } else {
                    println!(
                        "silent: {seg}-{n} in {}: {}",
                        path.display(),
                        String::from_utf8_lossy(field.raw())
                    );
                }
            }
        }
    }
    assert!(messages > 50, "only {messages} messages");
    tallies
}

#[test]
fn every_listed_field_is_carried_or_named_and_99_percent_are_carried() {
    let tallies = measure();
    println!("| field | what | occurrences | carried | named not carried | warned | silent |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let (mut all, mut carried, mut named, mut warned, mut silent) = (0, 0, 0, 0, 0);
    for &(seg, n, _, what) in FIELDS {
        let t = tallies
            .get(&(seg.to_owned(), n))
            .copied()
            .unwrap_or_default();
        let lost = t.occurrences - t.carried - t.named - t.warned;
        println!(
            "| {seg}-{n} | {what} | {} | {} | {} | {} | {lost} |",
            t.occurrences, t.carried, t.named, t.warned
        );
        all += t.occurrences;
        carried += t.carried;
        named += t.named;
        warned += t.warned;
        silent += lost;
    }
    let share = carried as f64 / all as f64;
    println!(
        "| all | | {all} | {carried} ({:.1} %) | {named} | {warned} | {silent} |",
        share * 100.0
    );
    assert_eq!(silent, 0, "values lost without a \"not carried\" warning");
    assert!(share >= 0.99, "carried {:.2} %", share * 100.0);
}
