//! LOINC identifiers: their forms and their mod-10 check digit.
//!
//! LOINC numbers (`2345-7`) end in a check digit computed with the mod-10
//! (Luhn) algorithm of the LOINC Users' Guide (appendix C). Part (`LP…`),
//! answer (`LA…`), answer list (`LL…`) and group (`LG…`) identifiers carry
//! one computed with the same algorithm over the characters' ASCII values
//! minus 48, the variant the Users' Guide names for identifiers with
//! letters; for plain digits the two agree. Fourteen deprecated LOINC
//! numbers were published with a wrong check digit; they are accepted as
//! the known exceptions they are.
//!
//! Invariants: [`check`] never panics, reads each byte once, and accepts
//! only ASCII codes of the forms above with a correct check digit (or one
//! of the listed exceptions).

/// What kind of LOINC identifier a well-formed code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoincKind {
    /// A LOINC term (`2345-7`): an observation, panel or document code.
    Term,
    /// A LOINC answer (`LA6576-8`).
    Answer,
    /// A LOINC part (`LP14635-4`): a building block of terms, not itself
    /// an observation.
    Part,
    /// A LOINC answer list (`LL360-9`).
    AnswerList,
    /// A LOINC group (`LG10990-6`).
    Group,
}

/// Why a code sent as LOINC is not a usable LOINC identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoincProblem {
    /// Not of the form `digits-digit` (or `LA`/`LP`/`LL`/`LG` then that).
    Malformed,
    /// The check digit does not match the rest of the code.
    CheckDigit,
}

/// Most digits before the check digit (LOINC numbers have up to 6 today).
const MAX_DIGITS: usize = 9;

/// Deprecated LOINC numbers published with a wrong check digit (LOINC
/// Users' Guide, appendix C).
const KNOWN_BAD_CHECK_DIGITS: [&str; 14] = [
    "11491-6", "11501-6", "5895-7", "5896-5", "5897-3", "5928-1", "6028-3", "6415-5", "6580-7",
    "6645-7", "6646-5", "6647-3", "6648-1", "6649-9",
];

/// Checks a LOINC identifier (trimmed by the caller): its kind when it is
/// well formed and its check digit is right.
pub fn check(code: &str) -> Result<LoincKind, LoincProblem> {
    let bytes = code.as_bytes();
    let (kind, number) = match bytes {
        [a, b, rest @ ..] if a.eq_ignore_ascii_case(&b'L') && b.is_ascii_alphabetic() => {
            let kind = match b.to_ascii_uppercase() {
                b'A' => LoincKind::Answer,
                b'P' => LoincKind::Part,
                b'L' => LoincKind::AnswerList,
                b'G' => LoincKind::Group,
                _ => return Err(LoincProblem::Malformed),
            };
            (kind, rest)
        }
        _ => (LoincKind::Term, bytes),
    };
    let [digits @ .., b'-', check] = number else {
        return Err(LoincProblem::Malformed);
    };
    let well_formed = (1..=MAX_DIGITS).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && check.is_ascii_digit();
    if !well_formed {
        return Err(LoincProblem::Malformed);
    }
    let payload = bytes.get(..bytes.len() - 2).unwrap_or_default();
    if check_digit(payload) == check - b'0' || KNOWN_BAD_CHECK_DIGITS.contains(&code) {
        Ok(kind)
    } else {
        Err(LoincProblem::CheckDigit)
    }
}

/// The mod-10 check digit of `payload` (everything before `-`): from the
/// right, every other character starting with the last is doubled (digits
/// of the product summed); letters count as their upper-case ASCII value
/// minus 48.
pub fn check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &b)| {
            let value = u32::from(b.to_ascii_uppercase().saturating_sub(b'0'));
            if i % 2 == 0 {
                2 * value - (value / 5) * 9
            } else {
                value
            }
        })
        .sum();
    // The remainder is below 10, so the conversion cannot fail.
    u8::try_from((10 - sum % 10) % 10).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loinc_numbers_with_a_right_check_digit_pass() {
        for code in [
            "2345-7", "718-7", "2823-3", "6298-4", "2339-0", "8867-4", "94500-6", "1-8",
        ] {
            assert_eq!(check(code), Ok(LoincKind::Term), "{code}");
        }
    }

    #[test]
    fn the_users_guide_example_gives_its_check_digit() {
        assert_eq!(check_digit(b"12345"), 5);
    }

    #[test]
    fn a_wrong_check_digit_is_caught() {
        for code in ["2345-8", "718-1", "2823-4", "94500-7"] {
            assert_eq!(check(code), Err(LoincProblem::CheckDigit), "{code}");
        }
    }

    #[test]
    fn answers_parts_lists_and_groups_are_told_apart_and_checked() {
        assert_eq!(check("LA33-6"), Ok(LoincKind::Answer), "Yes");
        assert_eq!(check("LA32-8"), Ok(LoincKind::Answer), "No");
        assert_eq!(check("LA6576-8"), Ok(LoincKind::Answer), "Positive");
        assert_eq!(check("LA6577-6"), Ok(LoincKind::Answer), "Negative");
        assert_eq!(check("LP14635-4"), Ok(LoincKind::Part), "Hemoglobin");
        assert_eq!(check("LA33-7"), Err(LoincProblem::CheckDigit));
        assert_eq!(check("LP14635-5"), Err(LoincProblem::CheckDigit));
    }

    #[test]
    fn the_published_exceptions_are_accepted() {
        for code in KNOWN_BAD_CHECK_DIGITS {
            assert_eq!(check(code), Ok(LoincKind::Term), "{code}");
        }
    }

    #[test]
    fn codes_not_shaped_like_loinc_are_malformed() {
        for code in [
            "",
            "-",
            "2345",
            "2345-",
            "-7",
            "2345-77",
            "23a5-7",
            "GLU",
            "LX33-6",
            "L-1",
            "LA-1",
            "1234567890-1",
            "2345_7",
            " 2345-7",
        ] {
            assert_eq!(check(code), Err(LoincProblem::Malformed), "{code:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_checked_without_panic(code in "\\PC{0,20}") {
            let _ = check(&code);
        }

        #[test]
        fn every_number_with_its_computed_digit_passes(n in 1u32..10_000_000) {
            let payload = n.to_string();
            let code = format!("{payload}-{}", check_digit(payload.as_bytes()));
            proptest::prop_assert_eq!(check(&code), Ok(LoincKind::Term));
            let wrong = format!("{payload}-{}", (check_digit(payload.as_bytes()) + 1) % 10);
            proptest::prop_assume!(!KNOWN_BAD_CHECK_DIGITS.contains(&wrong.as_str()));
            proptest::prop_assert!(check(&wrong).is_err());
        }
    }
}
