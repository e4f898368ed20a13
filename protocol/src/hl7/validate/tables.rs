//! The HL7 coded tables validation checks values against.
//!
//! Codes are compared exactly (after trimming spaces) except where a table
//! says otherwise; a value outside its table is a 103 warning, never an
//! error: the record keeps the value and flags it.

/// Table 0103, processing id (MSH-11.1).
pub(super) const PROCESSING_ID: &[&str] = &["P", "D", "T"];

/// Table 0207, processing mode (MSH-11.2).
pub(super) const PROCESSING_MODE: &[&str] = &["A", "I", "R", "T"];

/// Table 0085, observation result status (OBX-11).
pub(super) const RESULT_STATUS: &[&str] =
    &["C", "D", "F", "I", "N", "O", "P", "R", "S", "U", "W", "X"];

/// Table 0078, interpretation codes / abnormal flags (OBX-8), v2.1 to v2.9.
pub(super) const ABNORMAL_FLAGS: &[&str] = &[
    "L", "H", "LL", "HH", "<", ">", "N", "A", "AA", "S", "R", "I", "MS", "VS", "U", "D", "B", "W",
    "NEG", "POS", "IND", "DET", "ND", "AC", "QCF", "TOX", "SYN-R", "SYN-S", "RR", "NR", "HU", "LU",
    "HX", "LX", "H>", "L<", "CAR", "EX", "EXP", "IE", "NCL", "NS", "E", "OBX",
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
    let value = value.trim();
    SEX.iter().any(|code| code.eq_ignore_ascii_case(value))
}

/// True when `value` (trimmed) is one of `table`'s codes.
pub(super) fn contains(table: &[&str], value: &str) -> bool {
    table.contains(&value.trim())
}
