//! CSV text → mapping rows, with errors that name the line and column.
//!
//! Line numbers are 1-based lines of the original text (comments and blank
//! lines count), as an editor shows them.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use csv::{ReaderBuilder, StringRecord};

use super::Target;
use super::error::{COLUMNS, MAX_VERSION_LEN, MappingError};
use crate::normalize::coding_system::CodingSystem;

/// Index of `local_system` in [`COLUMNS`] and in a row's fields.
const LOCAL_SYSTEM: usize = 1;
/// Index of `local_code`.
const LOCAL_CODE: usize = 2;
/// Index of `target_system`.
const TARGET_SYSTEM: usize = 3;
/// Index of `target_code`.
const TARGET_CODE: usize = 4;

/// Mappings as parsed, before the table computes its version.
pub(super) struct Parsed {
    /// local system → local code → target.
    pub(super) codes: BTreeMap<String, BTreeMap<String, Target>>,
    /// local unit → UCUM.
    pub(super) units: BTreeMap<String, String>,
    /// The `# version:` label, if declared.
    pub(super) declared_version: Option<String>,
}

/// One data row, trimmed, with its line.
struct Row<'r> {
    line: u64,
    fields: [&'r str; 6],
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
    let mut header_seen = false;
    for result in reader.records() {
        let record = result.map_err(csv_error)?;
        let line = record
            .position()
            .map_or(0, |position| record_line(text, position));
        if is_blank(&record) {
            continue;
        }
        if header_seen {
            builder.add(row(&record, line)?)?;
        } else {
            check_header(&record, line)?;
            header_seen = true;
        }
    }
    if !header_seen {
        return Err(MappingError::MissingHeader);
    }
    Ok(Parsed {
        codes: builder
            .codes
            .into_iter()
            .map(|(s, m)| (s, strip_lines(m)))
            .collect(),
        units: strip_lines(builder.units),
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

/// Checks the header row against [`COLUMNS`].
fn check_header(record: &StringRecord, line: u64) -> Result<(), MappingError> {
    for (index, expected) in COLUMNS.iter().enumerate() {
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
    }
    match first_extra(record) {
        Some((column, found)) => Err(MappingError::Header {
            line,
            column,
            expected: "end of row",
            found,
        }),
        None => Ok(()),
    }
}

/// The first non-empty column past the sixth, as (1-based column, content).
fn first_extra(record: &StringRecord) -> Option<(usize, String)> {
    record
        .iter()
        .enumerate()
        .skip(COLUMNS.len())
        .find(|(_, field)| !field.trim().is_empty())
        .map(|(index, field)| (index + 1, field.trim().to_owned()))
}

/// Splits a data record into six trimmed fields.
fn row(record: &StringRecord, line: u64) -> Result<Row<'_>, MappingError> {
    if let Some(column) = COLUMNS.get(record.len()) {
        return Err(MappingError::MissingColumn { line, column });
    }
    if let Some((column, found)) = first_extra(record) {
        return Err(MappingError::ExtraColumn {
            line,
            column,
            found,
        });
    }
    let field = |index: usize| record.get(index).unwrap_or("").trim();
    let fields = [field(0), field(1), field(2), field(3), field(4), field(5)];
    Ok(Row { line, fields })
}

/// Accumulates rows, remembering each key's first line for conflict errors.
#[derive(Default)]
struct Builder {
    codes: BTreeMap<String, BTreeMap<String, (Target, u64)>>,
    units: BTreeMap<String, (String, u64)>,
}

impl Builder {
    /// Adds one row of either kind.
    fn add(&mut self, row: Row<'_>) -> Result<(), MappingError> {
        match row.fields[0] {
            "code" => self.add_code(&row),
            "unit" => self.add_unit(&row),
            other => Err(MappingError::UnknownKind {
                line: row.line,
                found: other.to_owned(),
            }),
        }
    }

    /// Adds a `code` row.
    fn add_code(&mut self, row: &Row<'_>) -> Result<(), MappingError> {
        let [_, system, code, target_system, target_code, display] = row.fields;
        for column in [LOCAL_CODE, TARGET_SYSTEM, TARGET_CODE] {
            required(row, column)?;
        }
        let target = Target {
            system: CodingSystem::from_hl7(target_system),
            code: target_code.to_owned(),
            display: (!display.is_empty()).then(|| display.to_owned()),
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
        let [_, system, unit, target_system, target_code, _] = row.fields;
        if !system.is_empty() {
            return Err(invalid(
                row,
                LOCAL_SYSTEM,
                "an empty value for unit rows",
                system,
            ));
        }
        required(row, LOCAL_CODE)?;
        if !target_system.eq_ignore_ascii_case("UCUM") {
            return Err(invalid(
                row,
                TARGET_SYSTEM,
                "`UCUM` for unit rows",
                target_system,
            ));
        }
        required(row, TARGET_CODE)?;
        let slot = self.units.entry(unit.to_owned());
        insert(slot, target_code.to_owned(), row.line, "unit", || {
            unit.to_owned()
        })
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
    match (row.fields.get(index), COLUMNS.get(index)) {
        (Some(&""), Some(column)) => Err(MappingError::EmptyField {
            line: row.line,
            column,
        }),
        _ => Ok(()),
    }
}

/// An [`MappingError::InvalidField`] for column `index` of the row.
fn invalid(row: &Row<'_>, index: usize, expected: &'static str, found: &str) -> MappingError {
    MappingError::InvalidField {
        line: row.line,
        column: COLUMNS.get(index).copied().unwrap_or("?"),
        expected,
        found: found.to_owned(),
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
        let short = parse_err("kind,local_system,local_code,target_system,target_code\n");
        assert!(matches!(
            short,
            MappingError::Header {
                column: 6,
                expected: "target_display",
                ..
            }
        ));
        let long = parse_err(&format!("{}{}", HEADER.trim_end(), ",notes\n"));
        assert!(matches!(
            long,
            MappingError::Header {
                column: 7,
                expected: "end of row",
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
                column: 8,
                found: "oops".into()
            }
        );
    }

    #[test]
    fn required_fields_must_not_be_empty() {
        let cases = [
            ("code,99LAB, ,LN,2345-7,\n", "local_code"),
            ("code,99LAB,GLU,,2345-7,\n", "target_system"),
            ("code,99LAB,GLU,LN,,\n", "target_code"),
            ("unit,,,UCUM,mg/dL,\n", "local_code"),
            ("unit,,mg/dl,UCUM,,\n", "target_code"),
        ];
        for (rows, column) in cases {
            assert_eq!(
                parse_err(&with_header(rows)),
                MappingError::EmptyField { line: 2, column },
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
        let rows = "code,99LAB,A,LN,1-1,\"two\nlines\"\n# comment\n\ncode,99LAB,B,LN,,\n";
        assert_eq!(
            parse_err(&with_header(rows)),
            MappingError::EmptyField {
                line: 6,
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
    fn whitespace_only_rows_are_skipped() {
        let parsed = parse(&with_header("   \n,,,,,\ncode,99LAB,GLU,LN,2345-7,\n")).unwrap();
        assert_eq!(parsed.codes.len(), 1);
    }
}
