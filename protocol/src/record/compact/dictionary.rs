//! The frozen string dictionaries each record's string tables start with.
//!
//! Invariant: these lists are part of wire schema 2. An entry's position is
//! its index on the wire, so entries are never reordered, changed or
//! removed; appending one is a new schema version (an old decoder would not
//! know the index). Each list has fewer than 64 entries, so every entry is
//! referenced with one byte.

use std::collections::HashMap;
use std::sync::OnceLock;

use foldhash::fast::FixedState;

use super::Pool;

/// Message codes, trigger events and HL7 versions (MSH-9, MSH-12).
const HEADER: &[&str] = &[
    "ORU", "R01", "ADT", "A01", "A02", "A03", "A04", "A08", "A31", "A40", "ORM", "O01", "OML",
    "O21", "VXU", "V04", "ACK", "SIU", "MDM", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7",
    "2.7.1", "2.8",
];

/// Short codes from HL7 tables: flags (0078), statuses (0123, 0085),
/// sex (0001), identifier types (0203), SN comparators and separators,
/// coding-system names, segment names (issue locations).
const CODE: &[&str] = &[
    "N", "H", "L", "A", "HH", "LL", "AA", "F", "P", "C", "I", "R", "S", "X", "M", "U", "O", "E",
    "MR", "PI", "PT", "SS", "AN", "VN", "PN", "DL", "NI", "<", ">", "<=", ">=", "=", "<>", "-",
    "+", "/", ":", "99LAB", "LOCAL", "CP", "RE", "NA", "PA", "NW", "CA", "CM", "SC", "IP", "MSH",
    "PID", "PV1", "ORC", "OBR", "OBX", "NTE", "SPM", "EVN",
];

/// UCUM codes common in lab and device results.
const UNIT: &[&str] = &[
    "%",
    "mg/dL",
    "g/dL",
    "mmol/L",
    "10*3/uL",
    "10*6/uL",
    "fL",
    "pg",
    "U/L",
    "mL/min/{1.73_m2}",
    "/min",
    "mm[Hg]",
    "Cel",
    "[degF]",
    "kg",
    "cm",
    "g/L",
    "umol/L",
    "ng/mL",
    "meq/L",
    "[IU]/L",
    "s",
    "{ratio}",
    "mg/L",
    "ug/dL",
    "pmol/L",
    "ng/dL",
    "m[IU]/L",
    "u[IU]/mL",
    "%{saturation}",
    "{beats}/min",
    "{breaths}/min",
    "mL",
    "L",
    "g",
    "m",
    "kg/m2",
    "10*9/L",
    "10*12/L",
    "/uL",
    "mg/(24.h)",
    "nmol/L",
    "pg/mL",
    "ug/L",
    "ng/L",
    "mmol/mol",
    "mosm/kg",
    "[pH]",
    "mm/h",
    "U/mL",
    "kPa",
    "mg/g",
    "h",
    "d",
    "min",
    "[lb_av]",
    "[in_i]",
    "/[HPF]",
    "/[LPF]",
];

/// The dictionary of one pool.
/// The position of `s` in `pool`'s dictionary: a map built once, since
/// every string a record writes is looked up here first (a scan over the
/// list compared it with dozens of entries of the same length).
pub(super) fn dictionary_index(pool: Pool, s: &str) -> Option<usize> {
    static INDEX: OnceLock<[HashMap<&'static str, usize, FixedState>; Pool::COUNT]> =
        OnceLock::new();
    let index = INDEX.get_or_init(|| {
        Pool::ALL.map(|pool| {
            dictionary(pool)
                .iter()
                .enumerate()
                .map(|(i, s)| (*s, i))
                .collect()
        })
    });
    index[pool as usize].get(s).copied()
}

pub(super) fn dictionary(pool: Pool) -> &'static [&'static str] {
    match pool {
        Pool::Header => HEADER,
        Pool::Code => CODE,
        Pool::Unit => UNIT,
        Pool::Text => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dictionary_entry_is_unique_and_one_byte_to_reference() {
        for pool in Pool::ALL {
            let list = dictionary(pool);
            assert!(list.len() < 64, "{pool:?} has {} entries", list.len());
            let unique: std::collections::HashSet<_> = list.iter().collect();
            assert_eq!(unique.len(), list.len(), "{pool:?} has a duplicate");
        }
    }
}
