//! CSV text → mapping rows, with errors that name the line and column.
//!
//! Line numbers are 1-based lines of the original text (comments and blank
//! lines count), as an editor shows them; columns are 1-based, as a
//! spreadsheet counts them.
//!
//! Every target is checked before the table is accepted, so a table can
//! only map to codes somebody can use: a `target_system` must be a standard
//! coding system ([`CodingSystem::is_standard`]: a table 0396 name, an HL7
//! table, an OID or a FHIR URI), a LOINC `target_code` must be well formed
//! with a right check digit, and every UCUM unit (`unit` targets,
//! `target_unit`) must be valid UCUM.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use csv::{ReaderBuilder, StringRecord};

use super::Target;
use super::error::{MAX_VERSION_LEN, MappingError, OPTIONAL_COLUMNS, REQUIRED_COLUMNS};
use crate::normalize::coding_system::CodingSystem;
use crate::normalize::loinc;
use crate::normalize::ucum::grammar;

/// The columns a row can have, in [`REQUIRED_COLUMNS`] then
/// [`OPTIONAL_COLUMNS`] order.
const KIND: usize = 0;
/// `local_system`.
const LOCAL_SYSTEM: usize = 1;
/// `local_code`.
const LOCAL_CODE: usize = 2;
/// `target_system`.
const TARGET_SYSTEM: usize = 3;
/// `target_code`.
const TARGET_CODE: usize = 4;
/// `target_display` (optional).
const TARGET_DISPLAY: usize = 5;
/// `target_unit` (optional).
const TARGET_UNIT: usize = 6;
/// All columns.
const ALL: usize = 7;

/// The name of column `index`.
fn column_name(index: usize) -> &'static str {
    REQUIRED_COLUMNS
        .iter()
        .chain(OPTIONAL_COLUMNS.iter())
        .nth(index)
        .copied()
        .unwrap_or("?")
}

/// Mappings as parsed, before the table computes its version.
pub(super) struct Parsed {
    /// local system → local code → target.
    pub(super) codes: BTreeMap<String, BTreeMap<String, Target>>,
    /// local unit → UCUM.
    pub(super) units: BTreeMap<String, String>,
    /// local system name → the standard system it is.
    pub(super) systems: BTreeMap<String, CodingSystem>,
    /// The `# version:` label, if declared.
    pub(super) declared_version: Option<String>,
}

/// Where each column is in the file, as the header row says.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// 0-based position of each column; `None` for an optional column the
    /// header does not have.
    positions: [Option<usize>; ALL],
    /// The header's number of columns.
    width: usize,
}

/// One data row, trimmed, with its line and where its columns are.
struct Row<'r> {
    line: u64,
    fields: [&'r str; ALL],
    layout: Layout,
}

impl Row<'_> {
    /// The 1-based column number of column `index` (where it would be,
    /// past the last, if the header has no such column).
    fn position(&self, index: usize) -> usize {
        self.layout.positions[index].unwrap_or(self.layout.width) + 1
    }
}

/// Parses the whole text (format in the parent module doc).
pub(super) fn parse(text: &str) -> Result<Parsed, MappingError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let declared_version = declared_version(text)?;
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut builder = Builder::default();
    let mut layout = None;
    for result in reader.records() {
        let record = result.map_err(csv_error)?;
        let line = record
            .position()
            .map_or(0, |position| record_line(text, position));
        if is_blank(&record) {
            continue;
        }
        match layout {
            Some(layout) => builder.add(row(&record, line, layout)?)?,
            None => layout = Some(header(&record, line)?),
        }
    }
    if layout.is_none() {
        return Err(MappingError::MissingHeader);
    }
    Ok(Parsed {
        codes: builder
            .codes
            .into_iter()
            .map(|(s, m)| (s, strip_lines(m)))
            .collect(),
        units: strip_lines(builder.units),
        systems: strip_lines(builder.systems),
        declared_version,
    })
}
/// The 1-based line where a record starts. The reader reports where it
/// began reading, which is before the blank and comment lines it skipped, so
/// skip those the same way (`\r` is ignored; `\n` ends a line).
fn record_line(text: &str, position: &csv::Position) -> u64 {
    let mut line = position.line();
    let start = usize::try_from(position.byte()).unwrap_or(usize::MAX);
    let mut rest = text.get(start..).unwrap_or("");
    loop {
        let skipped = if rest.starts_with('#') {
            rest.find('\n').map(|end| end + 1)
        } else if rest.starts_with(['\r', '\n']) {
            Some(1)
        } else {
            None
        };
        let Some(skipped) = skipped else {
            return line;
        };
        if rest.get(..skipped).is_some_and(|s| s.ends_with('\n')) {
            line += 1;
        }
        rest = rest.get(skipped..).unwrap_or("");
    }
}

/// Finds the `# version:` directive among the comment lines before the header.
fn declared_version(text: &str) -> Result<Option<String>, MappingError> {
    let mut declared = None;
    for (index, raw) in text.lines().enumerate() {
        let line = u64::try_from(index).unwrap_or(u64::MAX).saturating_add(1);
        if raw.trim().is_empty() {
            continue;
        }
        let Some(comment) = raw.strip_prefix('#') else {
            break;
        };
        let comment = comment.trim_start();
        let Some(label) = comment
            .get(..8)
            .filter(|prefix| prefix.eq_ignore_ascii_case("version:"))
            .and_then(|_| comment.get(8..))
        else {
            continue;
        };
        let label = label.trim();
        if declared.is_some() || !valid_label(label) {
            let found = label.to_owned();
            return Err(MappingError::Version { line, found });
        }
        declared = Some(label.to_owned());
    }
    Ok(declared)
}

/// A version label: 1 to 64 printable ASCII characters, no spaces.
fn valid_label(label: &str) -> bool {
    (1..=MAX_VERSION_LEN).contains(&label.len()) && label.bytes().all(|b| b.is_ascii_graphic())
}

/// True when every field is whitespace (a line of spaces, or `,,,`).
fn is_blank(record: &StringRecord) -> bool {
    record.iter().all(|field| field.trim().is_empty())
}

/// Reads the header row: the required columns in order, then any of the
/// optional ones, each at most once.
fn header(record: &StringRecord, line: u64) -> Result<Layout, MappingError> {
    let mut positions = [None; ALL];
    for (index, expected) in REQUIRED_COLUMNS.iter().enumerate() {
        let found = record.get(index).unwrap_or("").trim();
        if found != *expected {
            let (column, found) = (index + 1, found.to_owned());
            return Err(MappingError::Header {
                line,
                column,
                expected,
                found,
            });
        }
        positions[index] = Some(index);
    }
    let mut width = REQUIRED_COLUMNS.len();
    for (index, found) in record.iter().enumerate().skip(width) {
        let found = found.trim();
        if found.is_empty() {
            continue;
        }
        let optional = OPTIONAL_COLUMNS
            .iter()
            .position(|name| *name == found)
            .map(|i| i + REQUIRED_COLUMNS.len())
            .filter(|&column| positions[column].is_none() && index == width);
        let Some(column) = optional else {
            return Err(MappingError::Header {
                line,
                column: index + 1,
                expected: "`target_display`, `target_unit` (each once) or end of row",
                found: found.to_owned(),
            });
        };
        positions[column] = Some(index);
        width = index + 1;
    }
    Ok(Layout { positions, width })
}

/// The first non-empty column at or past `from`, as (1-based column, content).
fn first_extra(record: &StringRecord, from: usize) -> Option<(usize, String)> {
    record
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, field)| !field.trim().is_empty())
        .map(|(index, field)| (index + 1, field.trim().to_owned()))
}

/// Splits a data record into its trimmed columns; optional columns the
/// header or the row lacks are empty.
fn row(record: &StringRecord, line: u64, layout: Layout) -> Result<Row<'_>, MappingError> {
    if let Some(column) = REQUIRED_COLUMNS.get(record.len()) {
        return Err(MappingError::MissingColumn { line, column });
    }
    if let Some((column, found)) = first_extra(record, layout.width) {
        let width = layout.width;
        return Err(MappingError::ExtraColumn {
            line,
            width,
            column,
            found,
        });
    }
    let mut fields = [""; ALL];
    for (slot, position) in fields.iter_mut().zip(layout.positions) {
        if let Some(position) = position {
            *slot = record.get(position).unwrap_or("").trim();
        }
    }
    Ok(Row {
        line,
        fields,
        layout,
    })
}

/// Accumulates rows, remembering each key's first line for conflict errors.
#[derive(Default)]
struct Builder {
    codes: BTreeMap<String, BTreeMap<String, (Target, u64)>>,
    units: BTreeMap<String, (String, u64)>,
    systems: BTreeMap<String, (CodingSystem, u64)>,
}

impl Builder {
    /// Adds one row of any kind.
    fn add(&mut self, row: Row<'_>) -> Result<(), MappingError> {
        match row.fields[KIND] {
            "code" => self.add_code(&row),
            "unit" => self.add_unit(&row),
            "system" => self.add_system(&row),
            other => Err(MappingError::UnknownKind {
                line: row.line,
                found: other.to_owned(),
            }),
        }
    }

    /// Adds a `code` row.
    fn add_code(&mut self, row: &Row<'_>) -> Result<(), MappingError> {
        let [_, system, code, _, target_code, display, unit] = row.fields;
        for column in [LOCAL_CODE, TARGET_SYSTEM, TARGET_CODE] {
            required(row, column)?;
        }
        let target_system = standard_system(row)?;
        check_target_code(row, &target_system)?;
        if !unit.is_empty() {
            check_ucum(row, TARGET_UNIT)?;
        }
        let target = Target {
            system: target_system,
            code: target_code.to_owned(),
            display: (!display.is_empty()).then(|| display.to_owned()),
            unit: (!unit.is_empty()).then(|| unit.to_owned()),
        };
        let slot = self
            .codes
            .entry(system.to_owned())
            .or_default()
            .entry(code.to_owned());
        insert(slot, target, row.line, "code", || {
            format!("{system}|{code}")
        })
    }

    /// Adds a `unit` row.
    fn add_unit(&mut self, row: &Row<'_>) -> Result<(), MappingError> {
        let [_, _, unit, target_system, target_code, _, _] = row.fields;
        must_be_empty(row, LOCAL_SYSTEM, "an empty value for unit rows")?;
        required(row, LOCAL_CODE)?;
        if !target_system.eq_ignore_ascii_case("UCUM") {
            return Err(invalid(row, TARGET_SYSTEM, "`UCUM` for unit rows"));
        }
        required(row, TARGET_CODE)?;
        check_ucum(row, TARGET_CODE)?;
        must_be_empty(row, TARGET_UNIT, "an empty value for unit rows")?;
        let slot = self.units.entry(unit.to_owned());
        insert(slot, target_code.to_owned(), row.line, "unit", || {
            unit.to_owned()
        })
    }

    /// Adds a `system` row: a local system name that is a standard system.
    fn add_system(&mut self, row: &Row<'_>) -> Result<(), MappingError> {
        let [_, name, _, _, _, _, _] = row.fields;
        required(row, LOCAL_SYSTEM)?;
        required(row, TARGET_SYSTEM)?;
        let expected = "an empty value for system rows";
        for column in [LOCAL_CODE, TARGET_CODE, TARGET_DISPLAY, TARGET_UNIT] {
            must_be_empty(row, column, expected)?;
        }
        let system = standard_system(row)?;
        let slot = self.systems.entry(name.to_owned());
        insert(slot, system, row.line, "system", || name.to_owned())
    }
}

/// The row's `target_system`, which must be a standard system.
fn standard_system(row: &Row<'_>) -> Result<CodingSystem, MappingError> {
    let system = CodingSystem::from_hl7(row.fields[TARGET_SYSTEM]);
    if system.is_standard() {
        Ok(system)
    } else {
        Err(invalid(
            row,
            TARGET_SYSTEM,
            "a standard coding system: an HL7 table 0396 name (LN, SCT, I10C, RXNORM, CVX, UCUM, ...), an HL7 table (HL70136), an OID or a FHIR system URI",
        ))
    }
}

/// Checks a target code where its system has rules the gateway knows.
fn check_target_code(row: &Row<'_>, system: &CodingSystem) -> Result<(), MappingError> {
    match system {
        CodingSystem::Loinc => match loinc::check(row.fields[TARGET_CODE]) {
            Ok(_) => Ok(()),
            Err(loinc::LoincProblem::Malformed) => Err(invalid(
                row,
                TARGET_CODE,
                "a LOINC code such as 2345-7 (digits, `-`, a check digit; or LA/LP followed by that)",
            )),
            Err(loinc::LoincProblem::CheckDigit) => Err(invalid(
                row,
                TARGET_CODE,
                "a LOINC code whose last digit is its mod-10 check digit (mistyped?)",
            )),
        },
        CodingSystem::Ucum => check_ucum(row, TARGET_CODE),
        _ => Ok(()),
    }
}

/// Checks that column `index` holds a valid UCUM unit.
fn check_ucum(row: &Row<'_>, index: usize) -> Result<(), MappingError> {
    match grammar::validate(row.fields[index]) {
        Ok(()) => Ok(()),
        Err(grammar::UcumInvalid::UnknownUnit) => Err(invalid(
            row,
            index,
            "a valid UCUM unit (case matters: mg/dL, mmol/L, 10*3/uL, [IU]/L); this one uses a unit UCUM does not define",
        )),
        Err(_) => Err(invalid(
            row,
            index,
            "a valid UCUM unit (case matters: mg/dL, mmol/L, 10*3/uL, [IU]/L)",
        )),
    }
}

/// Errors unless column `index` of the row is empty.
fn must_be_empty(row: &Row<'_>, index: usize, expected: &'static str) -> Result<(), MappingError> {
    match row.fields[index] {
        "" => Ok(()),
        _ => Err(invalid(row, index, expected)),
    }
}

/// Stores `value` under a new key, accepts an identical repeat, rejects a
/// different one.
fn insert<V: PartialEq>(
    slot: Entry<'_, String, (V, u64)>,
    value: V,
    line: u64,
    kind: &'static str,
    key: impl FnOnce() -> String,
) -> Result<(), MappingError> {
    match slot {
        Entry::Vacant(vacant) => {
            vacant.insert((value, line));
            Ok(())
        }
        Entry::Occupied(occupied) if occupied.get().0 == value => Ok(()),
        Entry::Occupied(occupied) => Err(MappingError::Conflict {
            line,
            first_line: occupied.get().1,
            kind,
            key: key(),
        }),
    }
}

/// Errors unless column `index` of the row is non-empty.
fn required(row: &Row<'_>, index: usize) -> Result<(), MappingError> {
    match row.fields[index] {
        "" => Err(MappingError::EmptyField {
            line: row.line,
            position: row.position(index),
            column: column_name(index),
        }),
        _ => Ok(()),
    }
}

/// An [`MappingError::InvalidField`] for column `index` of the row.
fn invalid(row: &Row<'_>, index: usize, expected: &'static str) -> MappingError {
    MappingError::InvalidField {
        line: row.line,
        position: row.position(index),
        column: column_name(index),
        expected,
        found: row.fields[index].to_owned(),
    }
}

/// Drops the line numbers kept for conflict reporting.
fn strip_lines<V>(map: BTreeMap<String, (V, u64)>) -> BTreeMap<String, V> {
    map.into_iter()
        .map(|(key, (value, _))| (key, value))
        .collect()
}

/// Converts a CSV reader error, keeping its line.
fn csv_error(err: csv::Error) -> MappingError {
    MappingError::Csv {
        line: err.position().map_or(0, csv::Position::line),
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "kind,local_system,local_code,target_system,target_code,target_display\n";

    fn parse_err(text: &str) -> MappingError {
        match parse(text) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(err) => err,
        }
    }

    fn with_header(rows: &str) -> String {
        format!("{HEADER}{rows}")
    }

    #[test]
    fn text_without_a_header_is_rejected() {
        assert_eq!(parse_err(""), MappingError::MissingHeader);
        assert_eq!(
            parse_err("# only a comment\n\n"),
            MappingError::MissingHeader
        );
    }

    #[test]
    fn wrong_header_names_line_column_and_expected_name() {
        let text = "# comment\n\nkind,local_system,code,target_system,target_code,target_display\n";
        let err = parse_err(text);
        assert_eq!(
            err,
            MappingError::Header {
                line: 3,
                column: 3,
                expected: "local_code",
                found: "code".into(),
            }
        );
        assert!(
            err.to_string()
                .starts_with("line 3, column 3: expected header `local_code`")
        );
    }

    #[test]
    fn short_or_long_headers_are_rejected() {
        let short = parse_err("kind,local_system,local_code,target_system\n");
        assert!(matches!(
            short,
            MappingError::Header {
                column: 5,
                expected: "target_code",
                ..
            }
        ));
        let long = parse_err(&format!("{}{}", HEADER.trim_end(), ",notes\n"));
        assert!(matches!(
            long,
            MappingError::Header {
                column: 7,
                expected: "`target_display`, `target_unit` (each once) or end of row",
                ..
            }
        ));
    }

    #[test]
    fn unknown_kind_names_its_line() {
        let err = parse_err(&with_header(
            "code,99LAB,GLU,LN,2345-7,\n# note\nloinc,99LAB,K,LN,2823-3,\n",
        ));
        assert_eq!(
            err,
            MappingError::UnknownKind {
                line: 4,
                found: "loinc".into()
            }
        );
    }

    #[test]
    fn missing_column_names_the_first_missing_one() {
        let err = parse_err(&with_header("code,99LAB,GLU,LN\n"));
        assert_eq!(
            err,
            MappingError::MissingColumn {
                line: 2,
                column: "target_code"
            }
        );
        assert_eq!(err.to_string(), "line 2: missing column `target_code`");
    }

    #[test]
    fn empty_trailing_columns_are_allowed_but_filled_ones_are_not() {
        assert!(parse(&with_header("code,99LAB,GLU,LN,2345-7,Glucose,,\n")).is_ok());
        let err = parse_err(&with_header("code,99LAB,GLU,LN,2345-7,Glucose,,oops\n"));
        assert_eq!(
            err,
            MappingError::ExtraColumn {
                line: 2,
                width: 6,
                column: 8,
                found: "oops".into()
            }
        );
    }

    #[test]
    fn required_fields_must_not_be_empty() {
        let cases = [
            ("code,99LAB, ,LN,2345-7,\n", 3, "local_code"),
            ("code,99LAB,GLU,,2345-7,\n", 4, "target_system"),
            ("code,99LAB,GLU,LN,,\n", 5, "target_code"),
            ("unit,,,UCUM,mg/dL,\n", 3, "local_code"),
            ("unit,,mg/dl,UCUM,,\n", 5, "target_code"),
            ("system,,,LN,,\n", 2, "local_system"),
            ("system,99LABX,,,,\n", 4, "target_system"),
        ];
        for (rows, position, column) in cases {
            assert_eq!(
                parse_err(&with_header(rows)),
                MappingError::EmptyField {
                    line: 2,
                    position,
                    column
                },
                "{rows}"
            );
        }
    }

    #[test]
    fn unit_rows_need_ucum_targets_and_no_system() {
        let err = parse_err(&with_header("unit,99LAB,mg/dl,UCUM,mg/dL,\n"));
        assert!(matches!(
            err,
            MappingError::InvalidField {
                line: 2,
                column: "local_system",
                ..
            }
        ));
        let err = parse_err(&with_header("unit,,mg/dl,LN,mg/dL,\n"));
        assert_eq!(
            err,
            MappingError::InvalidField {
                line: 2,
                position: 4,
                column: "target_system",
                expected: "`UCUM` for unit rows",
                found: "LN".into(),
            }
        );
        assert!(parse(&with_header("unit,,mg/dl,ucum,mg/dL,\n")).is_ok());
    }

    #[test]
    fn identical_duplicates_merge_and_different_ones_conflict() {
        let same = "code,99LAB,GLU,LN,2345-7,Glucose\ncode,99LAB,GLU,LOINC,2345-7,Glucose\n";
        let parsed = parse(&with_header(same)).unwrap();
        assert_eq!(parsed.codes.get("99LAB").map(BTreeMap::len), Some(1));
        let different = "code,99LAB,GLU,LN,2345-7,\n\ncode,99LAB,GLU,LN,2339-0,\n";
        assert_eq!(
            parse_err(&with_header(different)),
            MappingError::Conflict {
                line: 4,
                first_line: 2,
                kind: "code",
                key: "99LAB|GLU".into()
            }
        );
        let units = "unit,,mg/dl,UCUM,mg/dL,\nunit,,mg/dl,UCUM,g/dL,\n";
        assert_eq!(
            parse_err(&with_header(units)),
            MappingError::Conflict {
                line: 3,
                first_line: 2,
                kind: "unit",
                key: "mg/dl".into()
            }
        );
    }

    #[test]
    fn same_code_in_another_system_is_not_a_duplicate() {
        let rows = "code,99LAB,K,LN,6298-4,\ncode,,K,LN,2823-3,\n";
        let parsed = parse(&with_header(rows)).unwrap();
        assert_eq!(parsed.codes.len(), 2);
    }

    #[test]
    fn line_numbers_count_comments_blank_lines_and_quoted_newlines() {
        let rows = "code,99LAB,A,LN,1-8,\"two\nlines\"\n# comment\n\ncode,99LAB,B,LN,,\n";
        assert_eq!(
            parse_err(&with_header(rows)),
            MappingError::EmptyField {
                line: 6,
                position: 5,
                column: "target_code"
            }
        );
    }

    #[test]
    fn quoted_fields_keep_commas() {
        let parsed = parse(&with_header(
            "code,99LAB,GLU,LN,2345-7,\"Glucose, fasting\"\n",
        ))
        .unwrap();
        let target = parsed
            .codes
            .get("99LAB")
            .and_then(|codes| codes.get("GLU"))
            .unwrap();
        assert_eq!(target.display.as_deref(), Some("Glucose, fasting"));
    }

    #[test]
    fn crlf_line_ends_and_a_byte_order_mark_are_accepted() {
        let text = "\u{feff}# version: v1\r\n\r\nkind,local_system,local_code,target_system,target_code,target_display\r\n\
                    code,99LAB,GLU,LN,2345-7,Glucose\r\nunit,,mg/dl,UCUM,mg/dL,\r\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.declared_version.as_deref(), Some("v1"));
        assert_eq!(parsed.units.get("mg/dl").map(String::as_str), Some("mg/dL"));
        let target = parsed
            .codes
            .get("99LAB")
            .and_then(|codes| codes.get("GLU"))
            .unwrap();
        assert_eq!(target.display.as_deref(), Some("Glucose"));
    }

    #[test]
    fn version_directive_is_read_before_the_header_only() {
        let parsed = parse(&format!("#version:  2026-03-lab-v4 \n{HEADER}")).unwrap();
        assert_eq!(parsed.declared_version.as_deref(), Some("2026-03-lab-v4"));
        let after = parse(&with_header("# version: late\n")).unwrap();
        assert_eq!(after.declared_version, None);
        assert_eq!(parse(HEADER).unwrap().declared_version, None);
    }

    #[test]
    fn bad_or_repeated_version_directives_are_rejected() {
        let twice = format!("# version: a\n# version: b\n{HEADER}");
        assert_eq!(
            parse_err(&twice),
            MappingError::Version {
                line: 2,
                found: "b".into()
            }
        );
        let empty = format!("# version:\n{HEADER}");
        assert_eq!(
            parse_err(&empty),
            MappingError::Version {
                line: 1,
                found: String::new()
            }
        );
        let spaced = format!("\n# version: March 2026\n{HEADER}");
        assert_eq!(
            parse_err(&spaced),
            MappingError::Version {
                line: 2,
                found: "March 2026".into()
            }
        );
        let long = format!("# version: {}\n{HEADER}", "v".repeat(MAX_VERSION_LEN + 1));
        assert!(matches!(
            parse_err(&long),
            MappingError::Version { line: 1, .. }
        ));
    }

    #[test]
    fn targets_nobody_can_use_are_refused_with_line_and_column() {
        let cases = [
            ("code,99LAB,GLU,LNC,2345-7,\n", 4, "target_system", "LNC"),
            (
                "code,99LAB,GLU,99XYZ,2345-7,\n",
                4,
                "target_system",
                "99XYZ",
            ),
            ("code,99LAB,GLU,LN,2345-8,\n", 5, "target_code", "2345-8"),
            ("code,99LAB,GLU,LN,GLUCOSE,\n", 5, "target_code", "GLUCOSE"),
            ("unit,,gr,UCUM,gramz,\n", 5, "target_code", "gramz"),
            ("unit,,mg/dl,UCUM,mg/,\n", 5, "target_code", "mg/"),
            ("system,99LABX,,LNC,,\n", 4, "target_system", "LNC"),
            ("system,99LABX,GLU,LN,,\n", 3, "local_code", "GLU"),
        ];
        for (rows, position, column, found) in cases {
            let err = parse_err(&with_header(rows));
            let MappingError::InvalidField {
                line,
                position: p,
                column: c,
                found: f,
                ..
            } = &err
            else {
                panic!("{rows}: {err:?}");
            };
            assert_eq!(
                (*line, *p, *c, f.as_str()),
                (2, position, column, found),
                "{rows}"
            );
            let shown = err.to_string();
            assert!(
                shown.starts_with(&format!("line 2, column {position} (`{column}`)")),
                "{shown}"
            );
        }
    }

    #[test]
    fn the_expected_unit_must_be_ucum_and_is_named_by_its_column() {
        let header =
            "kind,local_system,local_code,target_system,target_code,target_display,target_unit\n";
        let ok = parse(&format!("{header}code,99LAB,GLU,LN,2345-7,Glucose,mg/dL\n")).unwrap();
        let glu = ok.codes.get("99LAB").and_then(|c| c.get("GLU")).unwrap();
        assert_eq!(glu.unit.as_deref(), Some("mg/dL"));
        let err = parse_err(&format!(
            "{header}code,99LAB,GLU,LN,2345-7,Glucose,mg/dl/\n"
        ));
        assert!(
            matches!(
                err,
                MappingError::InvalidField {
                    position: 7,
                    column: "target_unit",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn targets_in_any_spelling_of_a_standard_system_are_accepted() {
        let rows = "code,99LAB,GLU,2.16.840.1.113883.6.1,2345-7,\n\
                    code,99LAB,YES,HL70136,Y,\n\
                    code,99LAB,POS,LN,LA6576-8,\n\
                    system,99LABX,,LOINC,,\n";
        let parsed = parse(&with_header(rows)).unwrap();
        assert_eq!(parsed.systems.get("99LABX"), Some(&CodingSystem::Loinc));
        let glu = parsed
            .codes
            .get("99LAB")
            .and_then(|c| c.get("GLU"))
            .unwrap();
        assert_eq!(glu.system, CodingSystem::Loinc);
    }

    #[test]
    fn optional_header_columns_are_optional_once_and_in_place() {
        let five =
            "kind,local_system,local_code,target_system,target_code\ncode,99LAB,GLU,LN,2345-7\n";
        assert!(parse(five).is_ok());
        let twice =
            "kind,local_system,local_code,target_system,target_code,target_unit,target_unit\n";
        assert!(matches!(
            parse_err(twice),
            MappingError::Header { column: 7, .. }
        ));
        let unknown = "kind,local_system,local_code,target_system,target_code,notes\n";
        assert!(matches!(
            parse_err(unknown),
            MappingError::Header { column: 6, .. }
        ));
        let rows = "code,99LAB,GLU,LN,2345-7,Glucose,mg/dL\n";
        let err = parse_err(&format!("{five}{rows}"));
        assert!(
            matches!(
                err,
                MappingError::ExtraColumn {
                    width: 5,
                    column: 6,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn whitespace_only_rows_are_skipped() {
        let parsed = parse(&with_header("   \n,,,,,\ncode,99LAB,GLU,LN,2345-7,\n")).unwrap();
        assert_eq!(parsed.codes.len(), 1);
    }
}
