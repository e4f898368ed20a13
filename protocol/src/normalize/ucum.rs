//! Unit spellings that lab and device systems send, translated to UCUM.
//!
//! [`to_ucum`] looks a unit string up in a built-in table of about 200
//! spellings (`mg/dl`, `MG/DL`, `x10E3/uL`, `K/uL`, `µmol/L`, `mmHg`, `bpm`,
//! `°C`, ...) plus the IEEE 11073 MDC unit codes device monitors send
//! (`266016^MDC_DIM_MMHG^MDC`, `MDC_DIM_PERCENT`). It allocates nothing.
//!
//! How a unit string is matched:
//! 1. The string is folded into a key: all whitespace removed (`g/24 h` is
//!    `g/24h`), the micro sign U+00B5 and Greek mu U+03BC read as `u`,
//!    superscript `²`/`³` as `2`/`3`, `×` as `x`. Keys longer than 48 bytes
//!    match nothing.
//! 2. The key is looked up ASCII case-insensitively. Most entries accept any
//!    capitalization (`MG/DL`, `mg/dl`); entries whose meaning depends on case
//!    match only their one spelling: `M/uL` (millions) but not `m/uL`; `s`,
//!    `g`, `m`, `h`, `d`, `a`, `U`, `mm`, `ms` but not `S` (siemens), `G`
//!    (gauss), `H` (henry), `mM` (millimolar), `mS` (millisiemens) and so on;
//!    entries whose SI prefix changes meaning with case need that first
//!    letter as in UCUM: `mU/L` and `mu/l` but not `MU/L` (mega-units),
//!    `mIU/mL` but not `MIU/mL` (million IU), `g/L` but not `G/L` (giga per
//!    litre). A case collision is left unmapped rather than guessed.
//! 3. Failing that, an MDC reference id (`MDC_DIM_...`) is looked up, and a
//!    string with `^` is read as a CWE (identifier, text, coding system, then
//!    the alternate triple) and looked up with [`coded_unit_to_ucum`].
//!
//! What is mapped (the rule for adding entries):
//! - A valid UCUM code for a common unit maps to itself, annotations
//!   included (`{beats}/min`, `%{saturation}`, `{ratio}` stay as they are).
//!   The one rewrite of valid UCUM is the liter: UCUM allows both `l` and
//!   `L`, and the table always returns `L` (`mg/dl` gives `mg/dL`), so equal
//!   units compare equal as strings.
//! - A non-UCUM spelling is mapped only when clinical senders use it for one
//!   unit only: `mEq/L` → `meq/L`, `IU/L` → `[IU]/L`, `K/uL` → `10*3/uL`,
//!   `cells/uL` → `/uL`, `bpm` and `breaths/min` → `/min`, `mg/24h` →
//!   `mg/(24.h)`. Spellings with two plausible readings (`rpm`, `G/L`, `cc`,
//!   `mg%`) are left out: an unmapped unit is flagged downstream, a wrongly
//!   mapped one is not.
//! - Two deliberate exceptions to "valid UCUM maps to itself": `F` and `C`
//!   are farad and coulomb in UCUM but mean °F and °C in every clinical feed,
//!   so they map to `[degF]` and `Cel`.
//!
//! [`UcumMatch::Exact`] means the input, trimmed, is byte-for-byte the
//! returned code; anything else (case, spacing, spelling, MDC) is
//! [`UcumMatch::Translated`].

pub mod grammar;
mod mdc;
pub(crate) mod safety;
mod table;

use crate::normalize::coding_system::CodingSystem;

use table::{Case, TABLE};

/// The longest folded key the table is searched with.
const MAX_KEY_BYTES: usize = 48;

/// Whether the input already was the UCUM code or had to be translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UcumMatch {
    /// The trimmed input is exactly the returned UCUM code.
    Exact,
    /// The input was another spelling of the unit (case, spacing, a lab
    /// spelling or an MDC code).
    Translated,
}

/// A unit resolved to UCUM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UcumUnit {
    /// The UCUM code (case-sensitive form, e.g. `mg/dL`, `mm[Hg]`, `10*3/uL`).
    pub code: &'static str,
    /// How the input matched.
    pub matched: UcumMatch,
}

impl UcumUnit {
    /// True when the input already was this UCUM code.
    pub fn is_exact(&self) -> bool {
        self.matched == UcumMatch::Exact
    }
}

/// Translates a unit string (OBX-6 as text, or a whole `^`-separated CWE
/// value) to UCUM; `None` when the unit is not in the built-in table.
pub fn to_ucum(unit: &str) -> Option<UcumUnit> {
    if let Some(found) = lookup_plain(unit) {
        return Some(found);
    }
    if unit.contains('^') {
        let mut parts = unit.split('^');
        let mut next = || parts.next().unwrap_or("");
        let (id, text, system) = (next(), next(), next());
        let (alt_id, alt_text, alt_system) = (next(), next(), next());
        return coded_unit_to_ucum(id, text, system)
            .or_else(|| coded_unit_to_ucum(alt_id, alt_text, alt_system));
    }
    None
}

/// Translates a coded unit given as its CWE components (identifier, text,
/// name of coding system). With coding system `MDC` the identifier is read as
/// a numeric MDC code (`266016`) and the text (or identifier) as a reference
/// id (`MDC_DIM_MMHG`); when both are known but name different units the
/// result is `None`, since the sender contradicts itself. Otherwise (and for
/// any other system) the identifier, then the text, are looked up as unit
/// strings.
pub fn coded_unit_to_ucum(identifier: &str, text: &str, coding_system: &str) -> Option<UcumUnit> {
    if coding_system
        .trim()
        .eq_ignore_ascii_case(&CodingSystem::Mdc.hl7_code())
    {
        let by_code = mdc::by_code(identifier);
        let by_reference = mdc::by_reference_id(text).or_else(|| mdc::by_reference_id(identifier));
        match (by_code, by_reference) {
            (Some(a), Some(b)) if a != b => return None,
            (Some(code), _) | (None, Some(code)) => return Some(translated(code)),
            (None, None) => {}
        }
    }
    lookup_plain(identifier).or_else(|| lookup_plain(text))
}

/// UCUM for an IEEE 11073 MDC unit given as its context-free numeric code
/// (`266016`) or reference id (`MDC_DIM_MMHG`); `None` when not a known
/// vital-sign unit.
pub fn mdc_unit_to_ucum(code_or_reference_id: &str) -> Option<&'static str> {
    mdc::by_code(code_or_reference_id).or_else(|| mdc::by_reference_id(code_or_reference_id))
}

/// Table lookup of one unit string (no CWE splitting).
fn lookup_plain(unit: &str) -> Option<UcumUnit> {
    let key = Key::fold(unit)?;
    if let Some(code) = lookup_key(&key) {
        let matched = if unit.trim() == code {
            UcumMatch::Exact
        } else {
            UcumMatch::Translated
        };
        return Some(UcumUnit { code, matched });
    }
    if key.lower().starts_with(b"mdc_dim_") {
        return mdc::by_reference_id(unit).map(translated);
    }
    None
}

/// Binary search of the folded key, then the entry's case rule.
fn lookup_key(key: &Key) -> Option<&'static str> {
    let index = TABLE
        .binary_search_by(|entry| entry.key.as_bytes().cmp(key.lower()))
        .ok()?;
    let entry = TABLE.get(index)?;
    match entry.case {
        Case::Any => Some(entry.ucum),
        Case::Only(spelling) if spelling.as_bytes() == key.original() => Some(entry.ucum),
        Case::Only(_) => None,
        Case::Prefix if entry.ucum.as_bytes().first() == key.original().first() => Some(entry.ucum),
        Case::Prefix => None,
    }
}

/// A translated match of `code`.
fn translated(code: &'static str) -> UcumUnit {
    UcumUnit {
        code,
        matched: UcumMatch::Translated,
    }
}

/// A unit string folded for lookup, kept in two stack buffers: as written
/// (for case-sensitive entries) and ASCII-lowercased.
struct Key {
    original: [u8; MAX_KEY_BYTES],
    lower: [u8; MAX_KEY_BYTES],
    len: usize,
}

impl Key {
    /// Folds `unit` (see the module doc); `None` when empty or too long.
    fn fold(unit: &str) -> Option<Key> {
        let mut key = Key {
            original: [0; MAX_KEY_BYTES],
            lower: [0; MAX_KEY_BYTES],
            len: 0,
        };
        for c in unit.chars().filter(|c| !c.is_whitespace()) {
            let c = match c {
                '\u{b5}' | '\u{3bc}' => 'u',
                '\u{b2}' => '2',
                '\u{b3}' => '3',
                '\u{d7}' => 'x',
                other => other,
            };
            key.push(c)?;
        }
        (key.len > 0).then_some(key)
    }

    /// Appends one character; `None` when the buffer is full.
    fn push(&mut self, c: char) -> Option<()> {
        let mut utf8 = [0; 4];
        let encoded = c.encode_utf8(&mut utf8).as_bytes();
        let end = self.len.checked_add(encoded.len())?;
        self.original
            .get_mut(self.len..end)?
            .copy_from_slice(encoded);
        let lower = self.lower.get_mut(self.len..end)?;
        lower.copy_from_slice(encoded);
        lower.make_ascii_lowercase();
        self.len = end;
        Some(())
    }

    /// The folded key as written.
    fn original(&self) -> &[u8] {
        self.original.get(..self.len).unwrap_or_default()
    }

    /// The folded key, ASCII-lowercased.
    fn lower(&self) -> &[u8] {
        self.lower.get(..self.len).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(unit: &str) -> Option<&'static str> {
        to_ucum(unit).map(|u| u.code)
    }

    #[test]
    fn lab_spellings_map_to_ucum() {
        let cases = [
            ("mg/dL", "mg/dL"),
            ("mg/dl", "mg/dL"),
            ("MG/DL", "mg/dL"),
            ("mmol/L", "mmol/L"),
            ("mmol/l", "mmol/L"),
            ("MMOL/L", "mmol/L"),
            ("mEq/L", "meq/L"),
            ("meq/l", "meq/L"),
            ("MEQ/L", "meq/L"),
            ("g/dL", "g/dL"),
            ("g/L", "g/L"),
            ("fL", "fL"),
            ("fl", "fL"),
            ("FL", "fL"),
            ("pg", "pg"),
            ("U/L", "U/L"),
            ("u/l", "U/L"),
            ("IU/L", "[IU]/L"),
            ("mIU/mL", "m[IU]/mL"),
            ("miu/ml", "m[IU]/mL"),
            ("uIU/mL", "u[IU]/mL"),
            ("µIU/mL", "u[IU]/mL"),
            ("ng/mL", "ng/mL"),
            ("ug/dL", "ug/dL"),
            ("mcg/dL", "ug/dL"),
            ("umol/L", "umol/L"),
            ("umol/l", "umol/L"),
            ("mL/min/1.73m2", "mL/min/{1.73_m2}"),
            ("mL/min/1.73 m2", "mL/min/{1.73_m2}"),
            ("mL/min/1.73m²", "mL/min/{1.73_m2}"),
            ("mOsm/kg", "mosm/kg"),
            ("mg/24h", "mg/(24.h)"),
            ("g/24 h", "g/(24.h)"),
            ("/hpf", "/[HPF]"),
            ("/HPF", "/[HPF]"),
            ("/lpf", "/[LPF]"),
            ("cells/uL", "/uL"),
            ("copies/mL", "{copies}/mL"),
            ("mm/h", "mm/h"),
            ("mm/hr", "mm/h"),
            ("ratio", "{ratio}"),
            ("{ratio}", "{ratio}"),
            ("%", "%"),
            ("IU", "[IU]"),
            ("U", "U"),
            ("umol.l-1", "umol/L"),
        ];
        for (unit, expected) in cases {
            assert_eq!(code(unit), Some(expected), "{unit}");
        }
    }

    #[test]
    fn micro_sign_and_greek_mu_both_read_as_micro() {
        assert_eq!(code("\u{b5}g/L"), Some("ug/L"));
        assert_eq!(code("\u{3bc}g/L"), Some("ug/L"));
        assert_eq!(code("\u{b5}mol/L"), Some("umol/L"));
        assert_eq!(code("\u{3bc}mol/l"), Some("umol/L"));
    }

    #[test]
    fn cell_count_spellings_map_to_powers_of_ten() {
        for unit in [
            "10^3/uL", "10*3/uL", "x10E3/uL", "K/uL", "K/mm3", "k/ul", "10^3/µL", "thou/mm3",
        ] {
            assert_eq!(code(unit), Some("10*3/uL"), "{unit}");
        }
        for unit in ["10^9/L", "x10E9/L", "10*9/L", "×10^9/L", "giga.l-1"] {
            assert_eq!(code(unit), Some("10*9/L"), "{unit}");
        }
        for unit in ["10^12/L", "x10E12/L", "tera.l-1"] {
            assert_eq!(code(unit), Some("10*12/L"), "{unit}");
        }
        for unit in ["M/uL", "10^6/uL", "x10E6/uL", "mill/mm3"] {
            assert_eq!(code(unit), Some("10*6/uL"), "{unit}");
        }
    }

    #[test]
    fn vital_sign_spellings_map_to_ucum() {
        let cases = [
            ("mm[Hg]", "mm[Hg]"),
            ("mmHg", "mm[Hg]"),
            ("mm Hg", "mm[Hg]"),
            ("MMHG", "mm[Hg]"),
            ("bpm", "/min"),
            ("BPM", "/min"),
            ("/min", "/min"),
            ("beats/min", "/min"),
            ("breaths/min", "/min"),
            ("{beats}/min", "{beats}/min"),
            ("Cel", "Cel"),
            ("degC", "Cel"),
            ("°C", "Cel"),
            ("° C", "Cel"),
            ("C", "Cel"),
            ("[degF]", "[degF]"),
            ("F", "[degF]"),
            ("°F", "[degF]"),
            ("kg", "kg"),
            ("KG", "kg"),
            ("g", "g"),
            ("lb", "[lb_av]"),
            ("lbs", "[lb_av]"),
            ("cm", "cm"),
            ("m", "m"),
            ("in", "[in_i]"),
            ("kg/m2", "kg/m2"),
            ("L/min", "L/min"),
            ("l/min", "L/min"),
            ("mm2", "mm2"),
            ("cmH2O", "cm[H2O]"),
        ];
        for (unit, expected) in cases {
            assert_eq!(code(unit), Some(expected), "{unit}");
        }
    }

    #[test]
    fn time_spellings_map_to_ucum() {
        let cases = [
            ("s", "s"),
            ("sec", "s"),
            ("SEC", "s"),
            ("min", "min"),
            ("h", "h"),
            ("hr", "h"),
            ("HRS", "h"),
            ("d", "d"),
            ("days", "d"),
            ("wk", "wk"),
            ("mo", "mo"),
            ("yr", "a"),
            ("years", "a"),
            ("mL", "mL"),
            ("L", "L"),
            ("l", "L"),
        ];
        for (unit, expected) in cases {
            assert_eq!(code(unit), Some(expected), "{unit}");
        }
    }

    #[test]
    fn case_sensitive_units_do_not_fold() {
        assert_eq!(code("S"), None, "siemens is not seconds");
        assert_eq!(code("G"), None, "gauss is not grams");
        assert_eq!(code("H"), None, "henry is not hours");
        assert_eq!(code("m/uL"), None, "only M/uL means millions");
        assert_eq!(code("c"), None);
        assert_eq!(code("f"), None);
        assert_eq!(code("u"), None);
    }

    #[test]
    fn a_capital_letter_that_changes_the_unit_is_not_folded_away() {
        for unit in [
            "mM", "Mm", "MM", "mS", "Ms", "MS", "MU/L", "MIU/mL", "MIU/ML", "G/L",
        ] {
            assert_eq!(code(unit), None, "{unit}");
        }
        let kept = [
            ("mm", "mm"),
            ("ms", "ms"),
            ("mU/L", "mU/L"),
            ("mu/l", "mU/L"),
            ("mIU/mL", "m[IU]/mL"),
            ("mIU/ML", "m[IU]/mL"),
            ("g/L", "g/L"),
            ("g/l", "g/L"),
            ("MG/DL", "mg/dL"),
            ("MMOL/L", "mmol/L"),
            ("ML", "mL"),
            ("MMHG", "mm[Hg]"),
            ("MM/HR", "mm/h"),
        ];
        for (unit, expected) in kept {
            assert_eq!(code(unit), Some(expected), "{unit}");
        }
    }

    #[test]
    fn exact_ucum_is_reported_as_exact() {
        for unit in [
            "mg/dL",
            "10*3/uL",
            "mm[Hg]",
            "Cel",
            "/min",
            "{beats}/min",
            " mg/dL ",
        ] {
            let found = to_ucum(unit).unwrap();
            assert_eq!(found.matched, UcumMatch::Exact, "{unit}");
            assert!(found.is_exact());
        }
    }

    #[test]
    fn other_spellings_are_reported_as_translated() {
        for unit in [
            "mg/dl",
            "MG/DL",
            "mmHg",
            "mm [Hg]",
            "K/uL",
            "µg/L",
            "F",
            "MDC_DIM_PERCENT",
        ] {
            assert_eq!(
                to_ucum(unit).unwrap().matched,
                UcumMatch::Translated,
                "{unit}"
            );
        }
    }

    #[test]
    fn every_table_target_maps_to_itself_exactly() {
        for entry in TABLE {
            let found = to_ucum(entry.ucum).unwrap();
            assert_eq!(found.code, entry.ucum);
            assert_eq!(found.matched, UcumMatch::Exact, "{}", entry.ucum);
        }
        assert!(TABLE.len() >= 150);
    }

    #[test]
    fn mdc_codes_in_obx6_map_to_ucum() {
        let cases = [
            ("262688^MDC_DIM_PERCENT^MDC", "%"),
            ("264864^MDC_DIM_BEAT_PER_MIN^MDC", "/min"),
            ("266016^MDC_DIM_MMHG^MDC", "mm[Hg]"),
            ("268192^MDC_DIM_DEGC^MDC", "Cel"),
            ("264928^MDC_DIM_RESP_PER_MIN^MDC", "/min"),
            ("263875^MDC_DIM_KILO_G^MDC", "kg"),
            ("263441^MDC_DIM_CENTI_M^MDC", "cm"),
            ("265216^MDC_DIM_X_L_PER_MIN^MDC", "L/min"),
            ("^MDC_DIM_MMHG^MDC", "mm[Hg]"),
            ("MDC_DIM_PERCENT", "%"),
            ("MDC_DIM_X_L_PER_MIN", "L/min"),
        ];
        for (unit, expected) in cases {
            let found = to_ucum(unit).unwrap();
            assert_eq!(found.code, expected, "{unit}");
            assert_eq!(found.matched, UcumMatch::Translated);
        }
    }

    #[test]
    fn contradicting_mdc_code_and_reference_id_map_to_nothing() {
        assert_eq!(code("266016^MDC_DIM_PERCENT^MDC"), None);
        assert_eq!(code("264864^MDC_DIM_BEAT_PER_MIN^MDC"), Some("/min"));
        assert_eq!(code("999999^MDC_DIM_PERCENT^MDC"), Some("%"));
    }

    #[test]
    fn cwe_units_use_identifier_then_text_then_alternate() {
        assert_eq!(code("mg/dL^mg/dL^UCUM"), Some("mg/dL"));
        assert_eq!(code("beats/min^^ISO"), Some("/min"));
        assert_eq!(code("%^percent^UCUM"), Some("%"));
        assert_eq!(code("MGDL^mg/dl^L"), Some("mg/dL"));
        assert_eq!(code("X1^unknown^L^mmHg^^UCUM"), Some("mm[Hg]"));
        assert_eq!(code("X1^unknown^L"), None);
    }

    #[test]
    fn coded_units_take_separate_components() {
        let found = coded_unit_to_ucum("266016", "MDC_DIM_MMHG", "MDC").unwrap();
        assert_eq!(found.code, "mm[Hg]");
        assert_eq!(coded_unit_to_ucum("", "", "MDC"), None);
        let spelled = coded_unit_to_ucum("999999", "mmHg", "MDC").unwrap();
        assert_eq!(spelled.code, "mm[Hg]");
        let exact = coded_unit_to_ucum("10*3/uL", "thousand per microliter", "UCUM").unwrap();
        assert_eq!(
            exact,
            UcumUnit {
                code: "10*3/uL",
                matched: UcumMatch::Exact
            }
        );
    }

    #[test]
    fn mdc_lookup_takes_codes_and_reference_ids() {
        assert_eq!(mdc_unit_to_ucum("266016"), Some("mm[Hg]"));
        assert_eq!(mdc_unit_to_ucum("MDC_DIM_DEGC"), Some("Cel"));
        assert_eq!(mdc_unit_to_ucum("mmHg"), None);
    }

    #[test]
    fn unknown_empty_and_oversized_units_are_none() {
        assert_eq!(code(""), None);
        assert_eq!(code("   "), None);
        assert_eq!(code("furlongs/fortnight"), None);
        assert_eq!(code("rpm"), None);
        assert_eq!(code(&"m".repeat(MAX_KEY_BYTES + 1)), None);
        assert_eq!(code("^^^^^^^"), None);
    }
}
