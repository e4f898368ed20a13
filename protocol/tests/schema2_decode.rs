//! Schema 2 payloads still decode, and say everything they said.
//!
//! `golden/schema2_records.bin` holds 80 envelopes (ORU, OUL, ORM, OML,
//! VXU, one ADT of each event, two generic types) that the previous
//! release's code (commit bfa25d7, wire schema 2) wrote from the corpus, and
//! `golden/schema2_records.jsonl` the JSON view that code gave of each (see
//! `golden/README.md` for how they were made). Each payload must decode with
//! this build, and its JSON view must hold every value of the old one, in
//! the same place except where schema 3 moved it: an ADT event's encounter
//! is the record's, a series' numbers are its `values`. Fields schema 3
//! added may be there too.

use std::path::PathBuf;

use hl7edge_protocol::wire::{Envelope, SCHEMA_VERSION};
use serde_json::Value;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// The payloads of the fixture: a little-endian u32 length, then the bytes.
fn payloads() -> Vec<Vec<u8>> {
    let bytes = std::fs::read(golden("schema2_records.bin")).unwrap();
    let mut rest = bytes.as_slice();
    let mut out = Vec::new();
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        out.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    assert!(rest.is_empty());
    out
}

/// The v2 JSON with schema 3's moves applied (and the version it is read
/// as).
fn moved(mut v2: Value) -> Value {
    v2["schema_version"] = SCHEMA_VERSION.into();
    for entry in v2["entries"].as_array_mut().unwrap() {
        let record = &mut entry["record"];
        if let Some(event) = record["body"].get_mut("Patient") {
            let encounter = event.as_object_mut().unwrap().remove("encounter");
            if let Some(encounter) = encounter.filter(|e| !e.is_null()) {
                record["encounter"] = encounter;
            }
        }
        series_to_values(record);
    }
    v2
}

fn series_to_values(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(series) = map.get_mut("Series")
                && series.is_array()
            {
                *series = serde_json::json!({ "values": series.take() });
            }
            map.values_mut().for_each(series_to_values);
        }
        Value::Array(items) => items.iter_mut().for_each(series_to_values),
        _ => {}
    }
}

/// Every value of `old` is in `new` at the same path (`new` may hold more).
fn contains(new: &Value, old: &Value, path: &str) -> Result<(), String> {
    match (new, old) {
        (Value::Object(n), Value::Object(o)) => o.iter().try_for_each(|(key, value)| {
            let inner = format!("{path}.{key}");
            match n.get(key) {
                Some(found) => contains(found, value, &inner),
                None if value.is_null() => Ok(()),
                None => Err(format!("{inner} is missing")),
            }
        }),
        (Value::Array(n), Value::Array(o)) if n.len() == o.len() => n
            .iter()
            .zip(o)
            .enumerate()
            .try_for_each(|(i, (n, o))| contains(n, o, &format!("{path}[{i}]"))),
        _ if new == old => Ok(()),
        _ => Err(format!("{path}: {new} is not {old}")),
    }
}

#[test]
fn every_schema_2_payload_decodes_with_every_value_it_held() {
    let payloads = payloads();
    let views: Vec<Value> = std::fs::read_to_string(golden("schema2_records.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(payloads.len(), 80);
    assert_eq!(views.len(), payloads.len());
    for (bytes, view) in payloads.iter().zip(&views) {
        let file = view["file"].as_str().unwrap();
        assert_eq!(bytes[0], 2, "{file}: a schema 2 payload");
        let envelope = Envelope::decode(bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(envelope.schema_version, SCHEMA_VERSION);
        assert!(envelope.entries.iter().all(|e| e.sequence.is_none()));
        let new = serde_json::to_value(&envelope).unwrap();
        let old = moved(view["envelope"].clone());
        if let Err(difference) = contains(&new, &old, "envelope") {
            panic!("{file}: {difference}");
        }
    }
}

#[test]
fn a_schema_2_payload_with_a_byte_changed_is_an_error_or_a_record_never_a_panic() {
    for bytes in payloads().iter().take(20) {
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 0x55;
            let _ = Envelope::decode(&changed);
        }
    }
}
