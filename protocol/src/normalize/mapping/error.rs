//! Errors from parsing a mapping table; each names the line (1-based, as an
//! editor counts, comments and blank lines included) and, where one is at
//! fault, the column and what was expected there.

use thiserror::Error;

/// The header row's columns, in this order; every row has them.
pub(super) const REQUIRED_COLUMNS: [&str; 5] = [
    "kind",
    "local_system",
    "local_code",
    "target_system",
    "target_code",
];

/// Columns the header may add after the required ones, each at most once,
/// in any order.
pub(super) const OPTIONAL_COLUMNS: [&str; 2] = ["target_display", "target_unit"];

/// The longest declared version label.
pub(super) const MAX_VERSION_LEN: usize = 64;

/// Why a mapping table could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MappingError {
    /// The text has no header row (it is empty or only comments).
    #[error(
        "no header row: expected `{}` (optionally followed by `{}`)",
        REQUIRED_COLUMNS.join(","),
        OPTIONAL_COLUMNS.join("`, `")
    )]
    MissingHeader,
    /// A header column is not the expected name.
    #[error("line {line}, column {column}: expected header `{expected}`, found `{found}`")]
    Header {
        /// Line of the header row.
        line: u64,
        /// 1-based column number.
        column: usize,
        /// The name that belongs there (`end of row` past the last column).
        expected: &'static str,
        /// What the file has there (empty when the column is missing).
        found: String,
    },
    /// A row has fewer than the five required columns.
    #[error("line {line}: missing column `{column}`")]
    MissingColumn {
        /// Line of the row.
        line: u64,
        /// The first missing column.
        column: &'static str,
    },
    /// A row has a non-empty column past the header's last.
    #[error(
        "line {line}, column {column}: expected at most {width} columns (as many as the header), found `{found}`"
    )]
    ExtraColumn {
        /// Line of the row.
        line: u64,
        /// The header's number of columns.
        width: usize,
        /// 1-based column number of the first non-empty extra column.
        column: usize,
        /// Its content.
        found: String,
    },
    /// The `kind` column is not `code`, `unit` or `system`.
    #[error("line {line}, column 1 (`kind`): expected `code`, `unit` or `system`, found `{found}`")]
    UnknownKind {
        /// Line of the row.
        line: u64,
        /// What the file has.
        found: String,
    },
    /// A required column is empty.
    #[error("line {line}, column {position} (`{column}`): expected a value, found nothing")]
    EmptyField {
        /// Line of the row.
        line: u64,
        /// 1-based column number.
        position: usize,
        /// The empty column.
        column: &'static str,
    },
    /// A column has a value its row kind does not allow, or a target that
    /// nobody could use (an unknown system, a LOINC code with a wrong check
    /// digit, a unit that is not UCUM).
    #[error("line {line}, column {position} (`{column}`): expected {expected}, found `{found}`")]
    InvalidField {
        /// Line of the row.
        line: u64,
        /// 1-based column number.
        position: usize,
        /// The column.
        column: &'static str,
        /// What is allowed there.
        expected: &'static str,
        /// What the file has.
        found: String,
    },
    /// The same key is mapped twice to different targets.
    #[error("line {line}: {kind} `{key}` is already mapped differently on line {first_line}")]
    Conflict {
        /// Line of the second row.
        line: u64,
        /// Line of the first row.
        first_line: u64,
        /// `code` or `unit`.
        kind: &'static str,
        /// The key, `system|code` for codes or the unit.
        key: String,
    },
    /// The version directive is malformed or repeated.
    #[error(
        "line {line}: expected `# version: <label>` with 1-{MAX_VERSION_LEN} printable ASCII characters and no spaces, once, found `{found}`"
    )]
    Version {
        /// Line of the directive.
        line: u64,
        /// The label as written.
        found: String,
    },
    /// The CSV reader failed (not expected for in-memory text; kept so no
    /// reader error is ever swallowed).
    #[error("line {line}: malformed CSV: {message}")]
    Csv {
        /// Line where the reader stopped.
        line: u64,
        /// The reader's description.
        message: String,
    },
}
