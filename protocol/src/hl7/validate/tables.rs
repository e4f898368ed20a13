//! The HL7 coded tables validation checks values against.
//!
//! Codes are compared exactly (after trimming spaces) except where a table
//! says otherwise; a value outside its table is a 103 warning, never an
//! error: the record keeps the value and flags it.
//!
//! Invariant: the tables [`contains`] reads are sorted (byte order, no
//! duplicates), so a lookup is a binary search.

/// Table 0103, processing id (MSH-11.1).
pub(super) const PROCESSING_ID: &[&str] = &["D", "P", "T"];

/// Table 0207, processing mode (MSH-11.2).
pub(super) const PROCESSING_MODE: &[&str] = &["A", "I", "R", "T"];

/// Table 0085, observation result status (OBX-11).
pub(super) const RESULT_STATUS: &[&str] =
    &["C", "D", "F", "I", "N", "O", "P", "R", "S", "U", "W", "X"];

/// Table 0078, interpretation codes / abnormal flags (OBX-8), v2.1 to v2.9.
pub(super) const ABNORMAL_FLAGS: &[&str] = &[
    "<", ">", "A", "AA", "AC", "B", "CAR", "D", "DET", "E", "EX", "EXP", "H", "H>", "HH", "HU",
    "HX", "I", "IE", "IND", "L", "L<", "LL", "LU", "LX", "MS", "N", "NCL", "ND", "NEG", "NR", "NS",
    "OBX", "POS", "QCF", "R", "RR", "S", "SYN-R", "SYN-S", "TOX", "U", "VS", "W",
];

/// Table 0125, value type (OBX-2), all versions.
pub(super) const VALUE_TYPES: &[&str] = &[
    "AD", "AUI", "CCD", "CD", "CE", "CF", "CK", "CN", "CNE", "CP", "CQ", "CSU", "CWE", "CX", "DIN",
    "DLN", "DR", "DT", "DTM", "ED", "EI", "FC", "FN", "FT", "GTS", "HD", "ID", "IS", "MA", "MO",
    "NA", "NM", "NR", "PL", "PN", "RP", "SN", "ST", "TM", "TN", "TS", "TX", "XAD", "XCN", "XON",
    "XPN", "XTN",
];

/// Table 0001, administrative sex (PID-8), compared case-insensitively;
/// the spelled-out forms some senders use are accepted as well.
const SEX: &[&str] = &[
    "F", "M", "O", "U", "A", "N", "X", "C", "FEMALE", "MALE", "OTHER", "UNKNOWN", "UNK",
];

/// True when `value` is an administrative sex code (table 0001).
pub(super) fn is_sex(value: &str) -> bool {
    let value = trim(value);
    SEX.iter().any(|code| code.eq_ignore_ascii_case(value))
}

/// True when `value` (trimmed) is one of `table`'s codes (a sorted table).
pub(super) fn contains(table: &[&str], value: &str) -> bool {
    let value = trim(value).as_bytes();
    table
        .binary_search_by(|code| byte_order(code.as_bytes(), value))
        .is_ok()
}

pub(super) use crate::hl7::element::trim;

/// The byte order of `str` (lexicographic, shorter first on a tie), for
/// codes of a few bytes: compared in place instead of through `memcmp`.
fn byte_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.len().cmp(&b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table [`contains`] searches.
    const SEARCHED: [&[&str]; 5] = [
        PROCESSING_ID,
        PROCESSING_MODE,
        RESULT_STATUS,
        ABNORMAL_FLAGS,
        VALUE_TYPES,
    ];

    #[test]
    fn the_quick_trim_and_byte_order_agree_with_the_standard_ones() {
        for text in [
            "", " ", "F", " F", "F ", "\u{a0}F", "F\u{a0}", "CWE", "\tN\r", "é",
        ] {
            assert_eq!(trim(text), text.trim(), "{text:?}");
        }
        let codes = ["", "A", "AA", "AB", "B", "a", "Ä", "H>"];
        for a in codes {
            for b in codes {
                assert_eq!(byte_order(a.as_bytes(), b.as_bytes()), a.cmp(b), "{a} {b}");
            }
        }
    }

    #[test]
    fn tables_are_sorted_for_binary_search() {
        for table in SEARCHED {
            assert!(table.windows(2).all(|w| w[0] < w[1]), "{table:?}");
        }
    }

    #[test]
    fn every_listed_code_is_found_and_others_are_not() {
        for table in SEARCHED {
            assert!(
                table
                    .iter()
                    .all(|code| contains(table, &format!(" {code} ")))
            );
            assert!(!contains(table, "ZZZ"));
        }
    }
}
