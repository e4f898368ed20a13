//! Coding without any site mapping, over the corpus ORUs: every code sent
//! in a standard coding system, in any spelling (table 0396 name, OID, HL7
//! table, FHIR URI), is standard in the record, unless it is flagged as
//! invalid there (a LOINC code with a wrong check digit, a LOINC Part code
//! as an observation): no standard code is reported `Unmapped` silently.
//! Prints the table of what was found, by field and system.

mod common;

use std::collections::BTreeMap;

use hl7edge_protocol::hl7::{ErrorCode, Message};
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, normalize};
use hl7edge_protocol::record::{Body, Coded, Record, Standard, Value};

/// What became of the standard-system codes of one field and system.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
struct Tally {
    standard: usize,
    flagged: usize,
    unmapped: usize,
}

/// Normalizes `raw` with no mapping; `None` when it is not an ORU.
fn oru_record(raw: &[u8]) -> Option<Record> {
    let msg = Message::parse(raw).ok()?;
    if msg.message_type().code != "ORU" {
        return None;
    }
    let tz = jiff::tz::TimeZone::UTC;
    let mapping = MappingTable::empty();
    let ctx = Context {
        time_zone: &tz,
        mapping: &mapping,
    };
    Some(normalize(&msg, Vec::new(), &ctx).record)
}

/// Every coded element of an observation report, with the field it is.
fn coded_elements(record: &Record) -> Vec<(&'static str, &Coded)> {
    let Body::Observations(report) = &record.body else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for order in &report.orders {
        out.extend(order.service.as_deref().map(|c| ("OBR-4", c)));
        for obs in &order.observations {
            out.push(("OBX-3", &obs.code));
            if let Value::Coded(c) = &obs.value {
                out.push(("OBX-5", c));
            }
            out.extend(obs.method.as_deref().map(|c| ("OBX-17", c)));
        }
    }
    out
}

/// One record's standard-system codes by field and system, each counted
/// standard or unmapped; unmapped ones are then counted flagged as far as
/// the record's invalid-code warnings go.
fn tally(record: &Record) -> (BTreeMap<(&'static str, String), Tally>, usize) {
    let mut table: BTreeMap<(&'static str, String), Tally> = BTreeMap::new();
    for (field, coded) in coded_elements(record) {
        let sent = std::iter::once(&coded.original)
            .chain(coded.alternate.as_ref())
            .find(|c| !c.code.is_empty() && c.system.is_standard());
        let Some(sent) = sent else {
            continue;
        };
        let entry = table
            .entry((field, sent.system.hl7_code().into_owned()))
            .or_default();
        if coded.standard == Standard::Unmapped {
            println!("not standard: {field} {} {}", sent.system, sent.code);
            entry.unmapped += 1;
        } else {
            entry.standard += 1;
        }
    }
    let mut flags = record
        .issues
        .iter()
        .filter(|i| i.code == ErrorCode::TableValueNotFound && i.message.contains("LOINC"))
        .count();
    for t in table.values_mut() {
        let flagged = t.unmapped.min(flags);
        (t.flagged, t.unmapped, flags) = (flagged, t.unmapped - flagged, flags - flagged);
    }
    (table, flags)
}

/// Runs the corpus ORUs through `rewrite`; gives the table and the files
/// with a standard code unmapped and not flagged.
fn run(rewrite: impl Fn(&str) -> String) -> (BTreeMap<(&'static str, String), Tally>, Vec<String>) {
    let mut table: BTreeMap<(&'static str, String), Tally> = BTreeMap::new();
    let mut silent = Vec::new();
    for path in common::corpus_files() {
        let raw = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&raw);
        let Some(record) = oru_record(rewrite(&text).as_bytes()) else {
            continue;
        };
        let (one, _) = tally(&record);
        for (key, t) in one {
            if t.unmapped > 0 {
                silent.push(format!("{}: {} {}", path.display(), key.0, key.1));
            }
            let total = table.entry(key).or_default();
            total.standard += t.standard;
            total.flagged += t.flagged;
            total.unmapped += t.unmapped;
        }
    }
    (table, silent)
}

fn print(table: &BTreeMap<(&'static str, String), Tally>) {
    println!(
        "{:<7} {:<10} {:>8} {:>8} {:>9}",
        "field", "system", "standard", "flagged", "unmapped"
    );
    for ((field, system), t) in table {
        println!(
            "{field:<7} {system:<10} {:>8} {:>8} {:>9}",
            t.standard, t.flagged, t.unmapped
        );
    }
}

#[test]
fn every_code_sent_in_a_standard_system_is_standard_or_flagged_in_the_record() {
    let (table, silent) = run(str::to_owned);
    print(&table);
    let standard: usize = table.values().map(|t| t.standard).sum();
    assert!(
        standard >= 50,
        "the corpus ORUs carry LOINC and HL7 table codes: {standard}"
    );
    assert!(
        silent.is_empty(),
        "standard codes reported Unmapped: {silent:#?}"
    );
}

#[test]
fn the_same_codes_are_standard_whatever_spelling_names_their_system() {
    let (baseline, _) = run(str::to_owned);
    let count = |t: &BTreeMap<(&'static str, String), Tally>| -> usize {
        t.values().map(|t| t.standard).sum()
    };
    for (name, spelling) in [
        ("OID", "2.16.840.1.113883.6.1"),
        ("urn:oid", "urn:oid:2.16.840.1.113883.6.1"),
        ("LOINC", "LOINC"),
        ("FHIR URI", "http://loinc.org"),
    ] {
        let (table, silent) = run(|text| {
            text.replace("^LN\r", &format!("^{spelling}\r"))
                .replace("^LN|", &format!("^{spelling}|"))
                .replace("^LN^", &format!("^{spelling}^"))
        });
        assert!(silent.is_empty(), "{name}: {silent:#?}");
        assert_eq!(count(&table), count(&baseline), "LOINC written as {name}");
    }
    let (table, silent) = run(|text| {
        text.replace("^HL70078", "^2.16.840.1.113883.12.78")
            .replace("^HL70136", "^2.16.840.1.113883.12.136")
    });
    assert!(silent.is_empty(), "{silent:#?}");
    assert_eq!(
        count(&table),
        count(&baseline),
        "HL7 tables written as OIDs"
    );
}
