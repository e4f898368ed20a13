//! The built-in table of unit spellings, keyed by folded spelling.
//!
//! Invariants, checked at compile time by [`check_table`]:
//! - keys are strictly ascending by bytes (binary search relies on it), so
//!   no folded spelling appears twice;
//! - keys hold no ASCII uppercase letters and no whitespace (they are
//!   compared against input folded by `super::Key`);
//! - a case-sensitive entry's spelling folds to its key;
//! - a prefix-sensitive entry's UCUM code starts with an ASCII letter.
//!
//! Each entry is case-insensitive ([`any`]: every capitalization of the key
//! means the same unit), case-sensitive ([`only`]: just the one spelling,
//! because another capitalization is a different unit, e.g. `M/uL`
//! (millions) versus `m`, `s` (second) versus `S` (siemens), `mm` versus
//! `mM` (millimolar)), or prefix-sensitive ([`prefix`]: the first letter,
//! an SI prefix, must be written as in the UCUM code and the rest may be in
//! any case, because the other case of the prefix is a unit senders do use:
//! `MU/L` (mega-units), `MIU/mL` (million IU), `G/L` (giga per litre)).
//!
//! An entry is `any` only when no other capitalization of it is a unit a
//! clinical sender would mean: `MG/DL`, `MMOL/L`, `ML`, `KPA` stay
//! case-insensitive (megagrams per decilitre or megalitres are never meant).

/// How an entry matches the capitalization of the input.
#[derive(Debug, Clone, Copy)]
pub(super) enum Case {
    /// Any capitalization of the key matches.
    Any,
    /// Only this exact spelling (after whitespace and micro-sign folding) matches.
    Only(&'static str),
    /// The first character must be as in the UCUM code; the rest may be in
    /// any capitalization.
    Prefix,
}

/// One spelling and the UCUM code it stands for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    /// The folded spelling (ASCII lowercase, no whitespace, micro sign as `u`).
    pub(super) key: &'static str,
    /// The UCUM code (case-sensitive form).
    pub(super) ucum: &'static str,
    /// Whether capitalization matters.
    pub(super) case: Case,
}

/// A case-insensitive entry; `key` must already be folded.
const fn any(key: &'static str, ucum: &'static str) -> Entry {
    Entry {
        key,
        ucum,
        case: Case::Any,
    }
}

/// A case-sensitive entry for exactly `spelling`, whose folded form is `key`.
const fn only(key: &'static str, spelling: &'static str, ucum: &'static str) -> Entry {
    Entry {
        key,
        ucum,
        case: Case::Only(spelling),
    }
}

/// A prefix-sensitive entry; `key` must already be folded.
const fn prefix(key: &'static str, ucum: &'static str) -> Entry {
    Entry {
        key,
        ucum,
        case: Case::Prefix,
    }
}

/// Every spelling the built-in table knows, sorted by key.
pub(super) const TABLE: &[Entry] = &[
    any("%", "%"),
    any("%{saturation}", "%{saturation}"),
    any("/[hpf]", "/[HPF]"),
    any("/[lpf]", "/[LPF]"),
    any("/hpf", "/[HPF]"),
    any("/lpf", "/[LPF]"),
    any("/min", "/min"),
    any("/ml", "/mL"),
    any("/mm3", "/mm3"),
    any("/ul", "/uL"),
    any("10*12/l", "10*12/L"),
    any("10*3/ul", "10*3/uL"),
    any("10*6/l", "10*6/L"),
    any("10*6/ul", "10*6/uL"),
    any("10*9/l", "10*9/L"),
    any("10^12/l", "10*12/L"),
    any("10^3/mm3", "10*3/uL"),
    any("10^3/ul", "10*3/uL"),
    any("10^6/l", "10*6/L"),
    any("10^6/mm3", "10*6/uL"),
    any("10^6/ul", "10*6/uL"),
    any("10^9/l", "10*9/L"),
    any("10e12/l", "10*12/L"),
    any("10e3/ul", "10*3/uL"),
    any("10e6/ul", "10*6/uL"),
    any("10e9/l", "10*9/L"),
    any("[degf]", "[degF]"),
    any("[ft_i]", "[ft_i]"),
    any("[in_i]", "[in_i]"),
    any("[iu]", "[IU]"),
    any("[iu]/l", "[IU]/L"),
    any("[iu]/ml", "[IU]/mL"),
    any("[lb_av]", "[lb_av]"),
    any("[oz_av]", "[oz_av]"),
    any("[ph]", "[pH]"),
    only("a", "a", "a"),
    any("beats/min", "/min"),
    any("bpm", "/min"),
    any("br/min", "/min"),
    any("breaths/min", "/min"),
    only("c", "C", "Cel"),
    any("cel", "Cel"),
    any("cells/mm3", "/uL"),
    any("cells/ul", "/uL"),
    any("cm", "cm"),
    any("cm2", "cm2"),
    any("cm[h2o]", "cm[H2O]"),
    any("cmh2o", "cm[H2O]"),
    any("copies/ml", "{copies}/mL"),
    only("d", "d", "d"),
    any("day", "d"),
    any("days", "d"),
    any("degc", "Cel"),
    any("degf", "[degF]"),
    any("dl", "dL"),
    only("f", "F", "[degF]"),
    any("fl", "fL"),
    any("ft", "[ft_i]"),
    only("g", "g", "g"),
    any("g.l-1", "g/L"),
    any("g/(24.h)", "g/(24.h)"),
    any("g/24h", "g/(24.h)"),
    any("g/24hr", "g/(24.h)"),
    any("g/dl", "g/dL"),
    prefix("g/l", "g/L"),
    any("g/ml", "g/mL"),
    any("giga.l-1", "10*9/L"),
    any("gm", "g"),
    only("h", "h", "h"),
    any("hour", "h"),
    any("hours", "h"),
    any("hr", "h"),
    any("hrs", "h"),
    any("in", "[in_i]"),
    any("inch", "[in_i]"),
    any("inches", "[in_i]"),
    any("iu", "[IU]"),
    any("iu/l", "[IU]/L"),
    any("iu/ml", "[IU]/mL"),
    any("k/mm3", "10*3/uL"),
    any("k/ul", "10*3/uL"),
    any("kg", "kg"),
    any("kg/m2", "kg/m2"),
    any("kg/m^2", "kg/m2"),
    any("kpa", "kPa"),
    any("ku/l", "kU/L"),
    any("l", "L"),
    any("l/min", "L/min"),
    any("lb", "[lb_av]"),
    any("lbs", "[lb_av]"),
    only("m", "m", "m"),
    only("m/mm3", "M/mm3", "10*6/uL"),
    only("m/ul", "M/uL", "10*6/uL"),
    any("m2", "m2"),
    prefix("m[iu]/l", "m[IU]/L"),
    prefix("m[iu]/ml", "m[IU]/mL"),
    any("m^2", "m2"),
    any("mcg", "ug"),
    any("mcg/dl", "ug/dL"),
    any("mcg/l", "ug/L"),
    any("mcg/ml", "ug/mL"),
    any("meq/l", "meq/L"),
    any("mg", "mg"),
    any("mg/(24.h)", "mg/(24.h)"),
    any("mg/24h", "mg/(24.h)"),
    any("mg/24hr", "mg/(24.h)"),
    any("mg/dl", "mg/dL"),
    any("mg/g", "mg/g"),
    any("mg/l", "mg/L"),
    any("mg/ml", "mg/mL"),
    any("mg/mmol", "mg/mmol"),
    any("mill/mm3", "10*6/uL"),
    any("mill/ul", "10*6/uL"),
    any("min", "min"),
    any("mins", "min"),
    prefix("miu/l", "m[IU]/L"),
    prefix("miu/ml", "m[IU]/mL"),
    any("ml", "mL"),
    any("ml/h", "mL/h"),
    any("ml/hr", "mL/h"),
    any("ml/min", "mL/min"),
    any("ml/min/1.73m2", "mL/min/{1.73_m2}"),
    any("ml/min/1.73m^2", "mL/min/{1.73_m2}"),
    any("ml/min/{1.73_m2}", "mL/min/{1.73_m2}"),
    only("mm", "mm", "mm"),
    any("mm/h", "mm/h"),
    any("mm/hr", "mm/h"),
    any("mm2", "mm2"),
    any("mm[hg]", "mm[Hg]"),
    any("mmhg", "mm[Hg]"),
    any("mmol.l-1", "mmol/L"),
    any("mmol/(24.h)", "mmol/(24.h)"),
    any("mmol/24h", "mmol/(24.h)"),
    any("mmol/l", "mmol/L"),
    any("mmol/mol", "mmol/mol"),
    any("mo", "mo"),
    any("mol/l", "mol/L"),
    any("month", "mo"),
    any("months", "mo"),
    any("mosm/kg", "mosm/kg"),
    any("mosm/l", "mosm/L"),
    only("ms", "ms", "ms"),
    any("msec", "ms"),
    prefix("mu/l", "mU/L"),
    any("mv", "mV"),
    any("ng", "ng"),
    any("ng/dl", "ng/dL"),
    any("ng/l", "ng/L"),
    any("ng/ml", "ng/mL"),
    any("nmol/l", "nmol/L"),
    any("oz", "[oz_av]"),
    any("percent", "%"),
    any("pg", "pg"),
    any("pg/ml", "pg/mL"),
    any("pg/{cell}", "pg/{cell}"),
    any("ph", "[pH]"),
    any("pmol/l", "pmol/L"),
    any("ratio", "{ratio}"),
    only("s", "s", "s"),
    any("sec", "s"),
    any("secs", "s"),
    any("tera.l-1", "10*12/L"),
    any("thou/mm3", "10*3/uL"),
    any("thou/ul", "10*3/uL"),
    only("u", "U", "U"),
    any("u/l", "U/L"),
    any("u/ml", "U/mL"),
    any("u[iu]/ml", "u[IU]/mL"),
    any("ug", "ug"),
    any("ug/dl", "ug/dL"),
    any("ug/kg/min", "ug/kg/min"),
    any("ug/l", "ug/L"),
    any("ug/ml", "ug/mL"),
    any("uiu/ml", "u[IU]/mL"),
    any("ul", "uL"),
    any("umol.l-1", "umol/L"),
    any("umol/l", "umol/L"),
    any("week", "wk"),
    any("weeks", "wk"),
    any("wk", "wk"),
    any("x10*12/l", "10*12/L"),
    any("x10*3/ul", "10*3/uL"),
    any("x10*6/ul", "10*6/uL"),
    any("x10*9/l", "10*9/L"),
    any("x10^12/l", "10*12/L"),
    any("x10^3/ul", "10*3/uL"),
    any("x10^6/ul", "10*6/uL"),
    any("x10^9/l", "10*9/L"),
    any("x10e12/l", "10*12/L"),
    any("x10e3/mm3", "10*3/uL"),
    any("x10e3/ul", "10*3/uL"),
    any("x10e6/mm3", "10*6/uL"),
    any("x10e6/ul", "10*6/uL"),
    any("x10e9/l", "10*9/L"),
    any("year", "a"),
    any("years", "a"),
    any("yr", "a"),
    any("yrs", "a"),
    any("{beats}/min", "{beats}/min"),
    any("{beat}/min", "{beat}/min"),
    any("{breaths}/min", "{breaths}/min"),
    any("{cells}/ul", "{cells}/uL"),
    any("{copies}/ml", "{copies}/mL"),
    any("{ratio}", "{ratio}"),
    any("°c", "Cel"),
    any("°f", "[degF]"),
    any("ºc", "Cel"),
    any("ºf", "[degF]"),
];

const _: () = check_table(TABLE);

/// Panics (at compile time) if the table breaks an invariant in the module doc.
const fn check_table(table: &[Entry]) {
    let mut i = 0;
    while i < table.len() {
        let entry = &table[i];
        assert!(is_folded(entry.key), "table key not folded");
        match entry.case {
            Case::Only(spelling) => assert!(
                folds_to(spelling, entry.key),
                "spelling does not fold to key"
            ),
            Case::Prefix => assert!(
                !entry.ucum.is_empty() && entry.ucum.as_bytes()[0].is_ascii_alphabetic(),
                "prefix entry without a leading letter"
            ),
            Case::Any => {}
        }
        if i > 0 {
            assert!(less(table[i - 1].key, entry.key), "table not sorted");
        }
        i += 1;
    }
}

/// True when `key` has no ASCII uppercase and no ASCII whitespace.
const fn is_folded(key: &str) -> bool {
    let bytes = key.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_uppercase() || bytes[i].is_ascii_whitespace() {
            return false;
        }
        i += 1;
    }
    true
}

/// True when `spelling` lowercased (ASCII) equals `key`.
const fn folds_to(spelling: &str, key: &str) -> bool {
    let (a, b) = (spelling.as_bytes(), key.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i].to_ascii_lowercase() != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Byte-wise `a < b`.
const fn less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}
