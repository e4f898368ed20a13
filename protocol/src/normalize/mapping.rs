//! Per-interface mapping tables: local codes to standard codes (LOINC, ...)
//! and local unit spellings to UCUM, read from CSV text.
//!
//! The agent reads the file named by a listener's `mapping` setting and hands
//! the text to [`MappingTable::parse`]; this module does no IO.
//!
//! # File format
//!
//! UTF-8 CSV (RFC 4180 quoting; a leading byte-order mark is ignored; `\n` or
//! `\r\n` line ends). The first row that is not blank or a comment is the
//! header: the five required columns in this order, then optionally
//! `target_display` and/or `target_unit` (each at most once, either order):
//!
//! ```text
//! kind,local_system,local_code,target_system,target_code[,target_display][,target_unit]
//! ```
//!
//! Every following row is one mapping; surrounding whitespace of each field
//! is ignored. A row may stop after `target_code` (missing optional columns
//! are empty); columns past the header's last must be empty (spreadsheet
//! exports pad rows with commas).
//!
//! | kind     | local_system | local_code | target_system | target_code | target_display | target_unit |
//! |----------|--------------|------------|---------------|-------------|----------------|-------------|
//! | `code`   | system as sent in the CWE (e.g. `99LAB`, `L`); empty = any system | required | required: a standard system (`LN`, `SCT`, an OID, ...) | required; LOINC is checked (form, check digit) | optional | optional: the UCUM unit results for this code must be in |
//! | `unit`   | empty | the unit as sent (e.g. `mg/dl`) | `UCUM` | required: valid UCUM | ignored | empty |
//! | `system` | required: a local system name as sent | empty | required: the standard system it is | empty | empty | empty |
//!
//! ```text
//! # version: 2026-03-lab-v4
//! kind,local_system,local_code,target_system,target_code,target_display,target_unit
//! code,99LAB,GLU,LN,2345-7,Glucose [Mass/volume] in Serum or Plasma,mg/dL
//! code,,K,LN,2823-3,"Potassium [Moles/volume] in Serum or Plasma",mmol/L
//! unit,,mg/dl,UCUM,mg/dL,,
//! system,99LABX,,LN,,,
//! ```
//!
//! - Lines starting with `#` (in the first column) are comments.
//! - A comment `# version: <label>` before the header declares the table's
//!   version label (1 to 64 printable ASCII characters, no spaces; at most
//!   one). The label is for people; the content hash identifies the table.
//! - Targets are checked when the table is loaded (see `parse`): an
//!   unknown system (`LNC`), a LOINC code with a wrong check digit or a unit
//!   that is not UCUM (`gramz`) is an error naming its line and column.
//! - Code lookups compare system and code exactly (case-sensitive) after
//!   trimming. A row with a system wins over a row with an empty system for
//!   the same code. A `system` row makes codes sent in that local system
//!   count as codes of the standard system (checked like any other), when
//!   no `code` row maps them.
//! - Unit lookups compare the unit exactly after trimming; a unit not in the
//!   table falls back to the built-in UCUM table ([`crate::normalize::ucum`]).
//! - The same key twice is allowed when both rows say the same thing, and is
//!   an error when they differ.
//!
//! Invariants of a parsed [`MappingTable`]: every code key and target is
//! non-empty, and its [`MappingVersion`] hash is a function of the mappings
//! alone (not of row order, comments, whitespace or quoting).

mod error;
mod parse;
mod unmapped;
mod version;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hl7::element::trim;
use crate::normalize::coding_system::CodingSystem;
use crate::normalize::ucum::{self, UcumMatch};
use crate::record::Coded;

pub use error::MappingError;
pub use unmapped::{DEFAULT_MAX_DISTINCT, UnmappedCode, UnmappedCounter, UnmappedSnapshot};
pub use version::MappingVersion;

/// The standard code a local code maps to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    /// The target terminology (from the `target_system` column).
    pub system: CodingSystem,
    /// The target code, e.g. a LOINC code `2345-7`.
    pub code: String,
    /// The display text, when the table gives one.
    pub display: Option<String>,
    /// The UCUM unit results for this code are expected in (the
    /// `target_unit` column), when the table gives one.
    pub unit: Option<String>,
}

/// Where a unit's UCUM code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitSource {
    /// A `unit` row of the interface's mapping table.
    Table,
    /// The built-in UCUM table, with how the input matched it.
    Builtin(UcumMatch),
    /// Neither table knows it, but it is valid UCUM as sent.
    Grammar,
}

/// A unit resolved to UCUM by [`MappingTable::map_unit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnitMapping<'a> {
    /// The UCUM code.
    pub ucum: &'a str,
    /// Which table supplied it.
    pub source: UnitSource,
}

/// One interface's mappings, with their version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingTable {
    /// local system (`""` = any system) → local code → target.
    codes: BTreeMap<String, BTreeMap<String, Target>>,
    /// local unit → UCUM code.
    units: BTreeMap<String, String>,
    /// local system name → the standard system it is.
    systems: BTreeMap<String, CodingSystem>,
    /// Declared label and content hash.
    version: MappingVersion,
}

impl MappingTable {
    /// Parses a mapping table from CSV text (format in the module doc).
    pub fn parse(text: &str) -> Result<MappingTable, MappingError> {
        let parsed = parse::parse(text)?;
        Ok(MappingTable::from_parts(
            parsed.codes,
            parsed.units,
            parsed.systems,
            parsed.declared_version,
        ))
    }

    /// A table with no mappings: codes stay unmapped and units go to the
    /// built-in UCUM table.
    pub fn empty() -> MappingTable {
        MappingTable::from_parts(BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), None)
    }

    /// Builds the table and computes its version.
    fn from_parts(
        codes: BTreeMap<String, BTreeMap<String, Target>>,
        units: BTreeMap<String, String>,
        systems: BTreeMap<String, CodingSystem>,
        declared: Option<String>,
    ) -> MappingTable {
        let version = MappingVersion::of(&codes, &units, &systems, declared);
        MappingTable {
            codes,
            units,
            systems,
            version,
        }
    }

    /// The table's version (declared label and content hash).
    pub fn version(&self) -> &MappingVersion {
        &self.version
    }

    /// The target for a local code: the row for this exact system first, then
    /// a row with an empty (any) system. Both arguments are trimmed.
    pub fn map_code(&self, system: &str, code: &str) -> Option<&Target> {
        let (system, code) = (trim(system), trim(code));
        let in_system = |s: &str| self.codes.get(s).and_then(|codes| codes.get(code));
        in_system(system).or_else(|| in_system(""))
    }

    /// The standard system a local system name is declared to be (a
    /// `system` row), compared exactly after trimming.
    pub fn standard_system(&self, local_system: &str) -> Option<&CodingSystem> {
        self.systems.get(trim(local_system))
    }

    /// The UCUM unit the table expects results of `coded` in: the
    /// `target_unit` of the row that maps its original code, else of the
    /// row that maps its alternate code (rows keyed by a standard system
    /// apply to standard codes sent as they are).
    pub fn expected_unit(&self, coded: &Coded) -> Option<&str> {
        std::iter::once(&coded.original)
            .chain(coded.alternate.as_ref())
            .filter(|c| !c.code.is_empty())
            .find_map(|c| self.map_code(&c.system.hl7_code(), &c.code))
            .and_then(|target| target.unit.as_deref())
    }

    /// The UCUM code for a unit: the table's `unit` rows first (exact,
    /// trimmed), then the built-in table ([`ucum::to_ucum`]), then the unit
    /// itself when it is valid UCUM as sent ([`ucum::grammar`]), so every
    /// valid UCUM unit passes, table or not.
    pub fn map_unit<'s>(&'s self, unit: &'s str) -> Option<UnitMapping<'s>> {
        let trimmed = trim(unit);
        if let Some(ucum) = self.units.get(trimmed) {
            return Some(UnitMapping {
                ucum,
                source: UnitSource::Table,
            });
        }
        if let Some(found) = ucum::to_ucum(unit) {
            return Some(UnitMapping {
                ucum: found.code,
                source: UnitSource::Builtin(found.matched),
            });
        }
        ucum::grammar::is_valid(trimmed).then_some(UnitMapping {
            ucum: trimmed,
            source: UnitSource::Grammar,
        })
    }

    /// Number of `code` rows (after merging identical duplicates).
    pub fn code_count(&self) -> usize {
        self.codes.values().map(BTreeMap::len).sum()
    }

    /// Number of `unit` rows (after merging identical duplicates).
    pub fn unit_count(&self) -> usize {
        self.units.len()
    }

    /// Number of `system` rows (after merging identical duplicates).
    pub fn system_count(&self) -> usize {
        self.systems.len()
    }
}

impl Default for MappingTable {
    fn default() -> Self {
        MappingTable::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = "\
# Lab interface, main analyzer
# version: 2026-03-lab-v4
kind,local_system,local_code,target_system,target_code,target_display
code,99LAB,GLU,LN,2345-7,Glucose [Mass/volume] in Serum or Plasma
code,,K,LN,2823-3,\"Potassium [Moles/volume] in Serum or Plasma\"
code,99LAB,K,LN,6298-4,Potassium [Moles/volume] in Blood
code,99DX,E11.9,I10C,E11.9,
unit,,mg/dl,UCUM,mg/dL,
unit,,mmol/L,UCUM,mmol/L,
unit,,K/cumm,UCUM,10*3/uL,
";

    fn lab() -> MappingTable {
        MappingTable::parse(LAB).unwrap()
    }

    #[test]
    fn code_rows_map_local_codes_to_targets() {
        let table = lab();
        let glu = table.map_code("99LAB", "GLU").unwrap();
        assert_eq!(glu.system, CodingSystem::Loinc);
        assert_eq!(glu.code, "2345-7");
        assert_eq!(
            glu.display.as_deref(),
            Some("Glucose [Mass/volume] in Serum or Plasma")
        );
        let dx = table.map_code("99DX", "E11.9").unwrap();
        assert_eq!(dx.system, CodingSystem::Icd10Cm);
        assert_eq!(dx.display, None);
        assert_eq!(table.code_count(), 4);
        assert_eq!(table.unit_count(), 3);
    }

    #[test]
    fn system_specific_row_wins_over_any_system_row() {
        assert_eq!(lab().map_code("99LAB", "K").unwrap().code, "6298-4");
    }

    #[test]
    fn empty_local_system_is_a_fallback_for_any_system() {
        let table = lab();
        assert_eq!(table.map_code("99OTHER", "K").unwrap().code, "2823-3");
        assert_eq!(table.map_code("", "K").unwrap().code, "2823-3");
        assert_eq!(table.map_code("99OTHER", "GLU"), None);
    }

    #[test]
    fn code_lookups_are_exact_after_trimming() {
        let table = lab();
        assert!(table.map_code(" 99LAB ", " GLU ").is_some());
        assert_eq!(table.map_code("99LAB", "glu"), None);
        assert_eq!(table.map_code("99lab", "GLU"), None);
    }

    #[test]
    fn unit_rows_override_the_builtin_table() {
        let table = lab();
        let mapped = table.map_unit("mg/dl").unwrap();
        assert_eq!(mapped.ucum, "mg/dL");
        assert_eq!(mapped.source, UnitSource::Table);
        assert_eq!(table.map_unit("K/cumm").unwrap().ucum, "10*3/uL");
        assert_eq!(ucum::to_ucum("K/cumm"), None);
    }

    #[test]
    fn unit_rows_can_change_a_builtin_translation() {
        let text = "kind,local_system,local_code,target_system,target_code,target_display\n\
                    unit,,C,UCUM,[degF],\n";
        let table = MappingTable::parse(text).unwrap();
        assert_eq!(table.map_unit("C").unwrap().ucum, "[degF]");
        assert_eq!(MappingTable::empty().map_unit("C").unwrap().ucum, "Cel");
    }

    #[test]
    fn units_missing_from_the_table_fall_back_to_builtin() {
        let table = lab();
        let builtin = table.map_unit("MG/DL").unwrap();
        assert_eq!(builtin.ucum, "mg/dL");
        assert_eq!(builtin.source, UnitSource::Builtin(UcumMatch::Translated));
        let exact = table.map_unit("g/dL").unwrap();
        assert_eq!(exact.source, UnitSource::Builtin(UcumMatch::Exact));
        assert_eq!(table.map_unit("furlongs"), None);
        assert_eq!(table.map_unit("gramz"), None);
    }

    #[test]
    fn any_valid_ucum_unit_passes_as_itself() {
        let table = MappingTable::empty();
        for unit in [
            "ng/(24.h)",
            "[in_i]2",
            "mmol/mol{Hb}",
            "10*6/mm3",
            "kg.m/s2",
            "/[HPF]",
            "cm[H2O]/(L/s)",
        ] {
            let mapped = table.map_unit(unit).unwrap_or_else(|| panic!("{unit}"));
            assert_eq!(mapped.ucum, unit);
        }
        assert_eq!(
            table.map_unit(" mosm/kg{H2O} ").unwrap().ucum,
            "mosm/kg{H2O}"
        );
        for not_ucum in ["gramz", "mg/", "m//s", "mg dL", "{unclosed"] {
            assert_eq!(table.map_unit(not_ucum), None, "{not_ucum}");
        }
    }

    #[test]
    fn empty_table_maps_no_codes_and_builtin_units() {
        let table = MappingTable::empty();
        assert_eq!(table.map_code("99LAB", "GLU"), None);
        assert_eq!(table.map_unit("mmHg").unwrap().ucum, "mm[Hg]");
        assert_eq!(table.version().declared, None);
        assert_eq!(table, MappingTable::default());
    }

    #[test]
    fn declared_version_is_kept_and_displayed_with_the_hash() {
        let version = lab().version().clone();
        assert_eq!(version.declared.as_deref(), Some("2026-03-lab-v4"));
        let shown = version.to_string();
        assert!(shown.starts_with("2026-03-lab-v4+"), "{shown}");
        assert_eq!(shown.len(), "2026-03-lab-v4+".len() + 16);
    }

    #[test]
    fn a_table_without_the_optional_columns_loads() {
        let text = "kind,local_system,local_code,target_system,target_code\n\
                    code,99LAB,GLU,LN,2345-7\nunit,,mg/dl,UCUM,mg/dL\nsystem,99LABX,,LN,\n";
        let table = MappingTable::parse(text).unwrap();
        let glu = table.map_code("99LAB", "GLU").unwrap();
        assert_eq!((glu.display.as_deref(), glu.unit.as_deref()), (None, None));
        assert_eq!(table.map_unit("mg/dl").unwrap().ucum, "mg/dL");
        assert_eq!(table.standard_system("99LABX"), Some(&CodingSystem::Loinc));
        assert_eq!(table.system_count(), 1);
    }

    #[test]
    fn the_expected_unit_column_may_come_before_the_display() {
        let text = "kind,local_system,local_code,target_system,target_code,target_unit,target_display\n\
                    code,99LAB,GLU,LN,2345-7,mg/dL,Glucose\ncode,99LAB,NA,LN,2951-2\n";
        let table = MappingTable::parse(text).unwrap();
        let glu = table.map_code("99LAB", "GLU").unwrap();
        assert_eq!(
            (glu.display.as_deref(), glu.unit.as_deref()),
            (Some("Glucose"), Some("mg/dL"))
        );
        assert_eq!(table.map_code("99LAB", "NA").unwrap().unit, None);
    }

    #[test]
    fn header_only_table_parses_to_an_empty_table_with_the_same_hash() {
        let text = "kind,local_system,local_code,target_system,target_code,target_display\n";
        let table = MappingTable::parse(text).unwrap();
        assert_eq!(table.code_count(), 0);
        assert_eq!(table.version(), MappingTable::empty().version());
    }
}
