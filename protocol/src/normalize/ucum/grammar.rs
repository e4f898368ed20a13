//! UCUM itself: whether a string is a valid UCUM unit (the specification's
//! grammar: prefixes, atoms, `{annotations}`, exponents, `.` and `/`,
//! `10*3`, brackets, parentheses, in the case-sensitive form), and how two
//! valid units relate (commensurable or not, and the factor between them).
//!
//! The grammar, atom table (UCUM's `ucum-essence.xml`) and dimensional
//! analysis are the `ucum-units` crate's, which passes the UCUM functional
//! tests (`vendor/UcumFunctionalTests.xml`, validation and conversion
//! sections). This module bounds its input and turns its answers into the
//! few facts the gateway needs.
//!
//! Invariants: nothing here panics or allocates beyond the crate's parse
//! of at most [`MAX_UNIT_BYTES`] bytes; a longer string is never a unit, so
//! every call costs at most a bounded, linear amount of work (the crate's
//! evaluation recurses along the expression, which the bound keeps short).

use ucum::{Analysis, UcumError};

/// The longest string read as a UCUM unit (the longest units in UCUM's
/// tables and in lab use are under 40 bytes).
pub const MAX_UNIT_BYTES: usize = 96;

/// Why a string is not a valid UCUM unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UcumInvalid {
    /// The string is empty.
    Empty,
    /// Longer than [`MAX_UNIT_BYTES`].
    TooLong,
    /// Not UCUM's grammar (at this byte offset).
    Syntax(usize),
    /// Well formed, but an atom (with its prefix) is not a UCUM unit.
    UnknownUnit,
}

impl UcumInvalid {
    /// What was wrong, for people (no unit text).
    pub fn describe(self) -> &'static str {
        match self {
            UcumInvalid::Empty => "an empty unit",
            UcumInvalid::TooLong => "longer than any UCUM unit",
            UcumInvalid::Syntax(_) => "not UCUM syntax",
            UcumInvalid::UnknownUnit => "a unit UCUM does not define",
        }
    }
}

/// Checks that `code` is a valid UCUM unit (case-sensitive form).
pub fn validate(code: &str) -> Result<(), UcumInvalid> {
    analyze(code).map(|_| ())
}

/// True when `code` is a valid UCUM unit.
pub fn is_valid(code: &str) -> bool {
    validate(code).is_ok()
}

/// How a value in one unit relates to the same value in another.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Relation {
    /// Both are the same unit (the same string).
    Same,
    /// Commensurable and proportional: multiply by this factor.
    Factor(f64),
    /// Commensurable through an offset or a special function
    /// (`[degF]` to `Cel`); use [`convert_f64`].
    Special,
    /// Different dimensions, or an arbitrary unit (`[IU]`) on either side.
    Incommensurable,
}

/// How `from` relates to `to`; `Err` when either is not valid UCUM.
pub fn relation(from: &str, to: &str) -> Result<Relation, UcumInvalid> {
    if from == to {
        validate(from)?;
        return Ok(Relation::Same);
    }
    let (a, b) = (analyze(from)?, analyze(to)?);
    if is_arbitrary(from, &a) || is_arbitrary(to, &b) {
        return Ok(arbitrary_relation(from, to));
    }
    if a.dimension != b.dimension {
        return Ok(Relation::Incommensurable);
    }
    if a.is_special || b.is_special || a.offset != 0.0 || b.offset != 0.0 {
        return Ok(match ucum::convert(1.0, from, to) {
            Ok(_) => Relation::Special,
            Err(_) => Relation::Incommensurable,
        });
    }
    Ok(Relation::Factor(a.factor / b.factor))
}

/// `value` in `from` converted to `to` with the crate's floating point
/// arithmetic (for special units); `None` when they do not convert.
pub fn convert_f64(value: f64, from: &str, to: &str) -> Option<f64> {
    ucum::convert(value, from, to)
        .ok()
        .filter(|v| v.is_finite())
}

/// The crate's analysis of a bounded, non-empty string. A bare number
/// other than `1` is valid UCUM (a factor) but never a unit a sender means
/// (it is an MDC unit code, `266016`), so it is refused.
fn analyze(code: &str) -> Result<Analysis, UcumInvalid> {
    if code.is_empty() {
        return Err(UcumInvalid::Empty);
    }
    if code != "1" && code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UcumInvalid::UnknownUnit);
    }
    if code.len() > MAX_UNIT_BYTES {
        return Err(UcumInvalid::TooLong);
    }
    ucum::analyze(code).map_err(|err| match err {
        UcumError::Parse { pos, .. } => UcumInvalid::Syntax(pos),
        _ => UcumInvalid::UnknownUnit,
    })
}

/// Two units built on arbitrary units: UCUM gives arbitrary units no
/// dimension, but the same arbitrary unit with other prefixes or per other
/// volumes converts (`m[IU]/mL` is `[IU]/L`). When both sides use exactly
/// one arbitrary unit, the same one, it is read as a base of its own (the
/// candela, which no clinical unit beside it uses) and the rest compared as
/// usual; anything else is incommensurable.
fn arbitrary_relation(from: &str, to: &str) -> Relation {
    const STAND_IN: &str = "cd";
    let (Some(atom), Some(other)) = (sole_arbitrary_atom(from), sole_arbitrary_atom(to)) else {
        return Relation::Incommensurable;
    };
    if atom != other || from.contains(STAND_IN) || to.contains(STAND_IN) {
        return Relation::Incommensurable;
    }
    let (from, to) = (from.replace(atom, STAND_IN), to.replace(atom, STAND_IN));
    match (analyze(&from), analyze(&to)) {
        (Ok(a), Ok(b)) if a.dimension == b.dimension && !a.is_special && !b.is_special => {
            Relation::Factor(a.factor / b.factor)
        }
        _ => Relation::Incommensurable,
    }
}

/// The one bracketed atom of `code` that is an arbitrary unit, when there
/// is exactly one kind of them.
fn sole_arbitrary_atom(code: &str) -> Option<&str> {
    let mut found: Option<&str> = None;
    let mut rest = code;
    while let Some(open) = rest.find('[') {
        let after = rest.get(open..)?;
        let close = after.find(']')?;
        let atom = after.get(..=close)?;
        rest = after.get(close + 1..)?;
        let arbitrary = analyze(atom).is_ok_and(|a| is_arbitrary(atom, &a));
        match (arbitrary, found) {
            (false, _) => {}
            (true, None) => found = Some(atom),
            (true, Some(seen)) if seen == atom => {}
            (true, Some(_)) => return None,
        }
    }
    found
}

/// True for an arbitrary unit (`[IU]`, `[arb'U]`): commensurable with
/// nothing but itself, which `relation` already answered.
fn is_arbitrary(code: &str, analysis: &Analysis) -> bool {
    analysis.is_special && ucum::convert(1.0, code, code).is_err()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn valid_ucum_of_every_kind_passes() {
        for unit in [
            "mg/dL",
            "10*3/uL",
            "10*-3",
            "mL/min/{1.73_m2}",
            "{beats}/min",
            "%{saturation}",
            "m[IU]/mL",
            "[lb_av]",
            "mm[Hg]",
            "kg.m/s2",
            "kg/(m.s)",
            "/[HPF]",
            "ng/(24.h)",
            "mg%",
            "1",
            "m+2",
            "4.[pi].10*-7.N/A2",
        ] {
            assert_eq!(validate(unit), Ok(()), "{unit}");
        }
    }

    #[test]
    fn what_is_not_ucum_is_refused_with_its_reason() {
        assert_eq!(validate(""), Err(UcumInvalid::Empty));
        assert_eq!(validate("gramz"), Err(UcumInvalid::UnknownUnit));
        assert_eq!(
            validate("MG/DL"),
            Err(UcumInvalid::UnknownUnit),
            "case matters"
        );
        assert_eq!(
            validate("266016"),
            Err(UcumInvalid::UnknownUnit),
            "a bare number"
        );
        assert!(matches!(validate("mg/"), Err(UcumInvalid::Syntax(_))));
        assert!(matches!(validate("(mg"), Err(UcumInvalid::Syntax(_))));
        assert!(matches!(validate("{a}{b}"), Err(UcumInvalid::Syntax(_))));
        let long = "m.".repeat(MAX_UNIT_BYTES) + "m";
        assert_eq!(validate(&long), Err(UcumInvalid::TooLong));
    }

    #[test]
    fn relations_follow_the_dimensions() {
        assert_eq!(relation("g/L", "g/L"), Ok(Relation::Same));
        assert!(
            matches!(relation("mg/dL", "g/L"), Ok(Relation::Factor(f)) if (f - 0.01).abs() < 1e-15)
        );
        assert_eq!(relation("[degF]", "Cel"), Ok(Relation::Special));
        assert_eq!(relation("mg/dL", "mmol/L"), Ok(Relation::Incommensurable));
        assert_eq!(relation("s", "m"), Ok(Relation::Incommensurable));
        assert_eq!(relation("gramz", "g"), Err(UcumInvalid::UnknownUnit));
    }

    /// A valid UCUM term built from the grammar: prefixed atoms with
    /// exponents and annotations, joined by `.` and `/`, some in brackets.
    fn valid_unit() -> impl Strategy<Value = String> {
        let atom = prop::sample::select(vec![
            "g", "m", "s", "L", "mol", "[IU]", "[lb_av]", "Cel", "K", "Pa", "[in_i]", "h", "min",
            "eq", "U", "%", "10*", "[HPF]", "osm", "kat",
        ]);
        let prefix = prop::sample::select(vec!["", "", "m", "u", "n", "k", "d", "c"]);
        let exponent = prop::sample::select(vec!["", "", "2", "3", "-1", "+2"]);
        let annotation = prop::sample::select(vec!["", "", "{cells}", "{Hb}"]);
        let simple = (prefix, atom, exponent, annotation).prop_map(|(p, a, e, n)| {
            // Prefixes go on metric atoms only, and `%`, `10*`, `[..]` take none.
            let p = if a.starts_with('[') || matches!(a, "%" | "10*" | "h" | "min") {
                ""
            } else {
                p
            };
            format!("{p}{a}{e}{n}")
        });
        let op = prop::sample::select(vec![".", "/"]);
        (
            simple.clone(),
            prop::collection::vec((op, simple, any::<bool>()), 0..4),
        )
            .prop_map(|(first, rest)| {
                let mut unit = first;
                for (op, term, grouped) in rest {
                    unit.push_str(op);
                    if grouped {
                        unit.push_str(&format!("({term})"));
                    } else {
                        unit.push_str(&term);
                    }
                }
                unit
            })
    }

    proptest! {
        #[test]
        fn any_text_is_checked_without_panic_and_bounded(text in "\\PC{0,200}") {
            let checked = validate(&text);
            if text.len() > MAX_UNIT_BYTES {
                prop_assert_eq!(checked, Err(UcumInvalid::TooLong));
            }
            let _ = relation(&text, "mg/dL");
        }

        #[test]
        fn unit_shaped_text_is_checked_without_panic(text in "[mg/dL.()\\[\\]{}*0-9+-]{0,120}") {
            let _ = validate(&text);
            let _ = relation(&text, &text);
        }

        #[test]
        fn generated_valid_units_pass_and_their_canonical_form_means_the_same(unit in valid_unit()) {
            prop_assert_eq!(validate(&unit), Ok(()), "{}", unit);
            let canonical = ucum::canonical(&unit).unwrap();
            prop_assert_eq!(validate(&canonical), Ok(()), "{} -> {}", unit, canonical);
            let (a, b) = (ucum::analyze(&unit).unwrap(), ucum::analyze(&canonical).unwrap());
            prop_assert_eq!(a.dimension, b.dimension);
            prop_assert!((a.factor - b.factor).abs() <= 1e-9 * a.factor.abs(), "{} -> {}", unit, canonical);
        }
    }
}
