//! Numbers: SN structured numerics, comparator-prefixed values and OBX-7
//! reference ranges, all as exact [`Decimal`]s.
//!
//! Reference ranges are read as `low-high` (`70-99`, `-5-5`, `3.5 - 5.0`,
//! and `4.50&5.90`, which some senders write with the sub-component
//! separator), `<x`/`<=x` (upper bound only) and `>x`/`>=x` (lower bound
//! only). A strict comparator (`<`, `>`) keeps the range text as well, so the
//! strictness is not lost. Anything else (`negative`, `70_105`) is kept as
//! text only: bounds are never guessed.

use crate::hl7::element::trim;
use crate::normalize::datatypes::string;
use crate::normalize::fields::Parts;
use crate::record::{Decimal, ReferenceRange, StructuredNumeric};

/// Comparators of the SN data type, longest first for prefix matching.
const COMPARATORS: [&str; 6] = [">=", "<=", "<>", ">", "<", "="];

/// Separators of the SN data type.
const SEPARATORS: [&str; 5] = ["-", "+", "/", ".", ":"];

/// An SN repetition (`comparator^num1^separator^num2`), without its unit.
/// `None` when any part present is not what SN allows.
pub(crate) fn structured_numeric(parts: Parts<'_>) -> Option<StructuredNumeric> {
    let comparator = string(parts.part(1));
    let low = string(parts.part(2));
    let separator = string(parts.part(3));
    let high = string(parts.part(4));
    if comparator
        .as_deref()
        .is_some_and(|c| !COMPARATORS.contains(&c))
        || separator
            .as_deref()
            .is_some_and(|s| !SEPARATORS.contains(&s))
        || (low.is_none() && high.is_none())
    {
        return None;
    }
    Some(StructuredNumeric {
        comparator,
        low: parse_optional(low.as_deref())?,
        separator,
        high: parse_optional(high.as_deref())?,
        unit: None,
    })
}

/// A number written with a comparator in front (`<5`, `>=10`), as senders
/// often put in an NM field.
pub(crate) fn comparator_number(text: &str) -> Option<StructuredNumeric> {
    let (comparator, rest) = comparator_prefix(trim(text))?;
    Some(StructuredNumeric {
        comparator: Some(comparator.into()),
        low: Some(decimal(rest)?),
        separator: None,
        high: None,
        unit: None,
    })
}

/// OBX-7 (see the module doc for what is read).
pub(crate) fn reference_range(text: &str) -> ReferenceRange {
    let text = trim(text);
    let mut range = ReferenceRange {
        low: None,
        high: None,
        text: None,
    };
    if let Some((comparator, rest)) = comparator_prefix(text)
        && let Some(bound) = decimal(rest)
    {
        match comparator {
            "<" | "<=" => range.high = Some(bound),
            ">" | ">=" => range.low = Some(bound),
            _ => {}
        }
        if matches!(comparator, "<" | ">" | "=" | "<>") {
            range.text = Some(text.into());
        }
    } else if let Some((low, high)) = split_range(text) {
        range.low = Some(low);
        range.high = Some(high);
    } else {
        range.text = Some(text.into());
    }
    range
}

/// Most digits [`decimal`] reads itself: 18 always fit an `i64`.
const FAST_DIGITS: u8 = 18;

/// [`Decimal::parse`], reading the plain form (`-12.50`: optional sign,
/// digits, at most one point) in one pass; anything else (spaces, too many
/// digits, junk) is left to [`Decimal::parse`], so the result is always
/// exactly what it gives.
pub(crate) fn decimal(text: &str) -> Option<Decimal> {
    let bytes = text.as_bytes();
    let (negative, body) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, bytes),
    };
    let (mut mantissa, mut digits, mut scale) = (0i64, 0u8, None::<u8>);
    for &b in body {
        match b {
            b'0'..=b'9' if digits < FAST_DIGITS => {
                mantissa = mantissa * 10 + i64::from(b - b'0');
                digits += 1;
                if let Some(s) = scale.as_mut() {
                    *s += 1;
                }
            }
            b'.' if scale.is_none() => scale = Some(0),
            _ => return Decimal::parse(text),
        }
    }
    if digits == 0 {
        return Decimal::parse(text);
    }
    Some(Decimal {
        mantissa: if negative { -mantissa } else { mantissa },
        scale: scale.unwrap_or(0),
    })
}

fn parse_optional(text: Option<&str>) -> Option<Option<Decimal>> {
    match text {
        None => Some(None),
        Some(t) => decimal(t).map(Some),
    }
}

fn comparator_prefix(text: &str) -> Option<(&'static str, &str)> {
    // Every comparator starts with one of these.
    if !matches!(text.as_bytes().first(), Some(b'<' | b'>' | b'=')) {
        return None;
    }
    COMPARATORS
        .iter()
        .find_map(|c| text.strip_prefix(c).map(|rest| (*c, rest)))
}

/// `low-high` or `low&high`; the first character may be a sign.
fn split_range(text: &str) -> Option<(Decimal, Decimal)> {
    let at = text
        .bytes()
        .enumerate()
        .skip(1)
        .find(|(_, b)| matches!(b, b'-' | b'&'))?
        .0;
    let low = decimal(text.get(..at)?)?;
    let high = decimal(text.get(at + 1..)?)?;
    Some((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::Message;
    use crate::normalize::fields::Fields;

    fn dec(text: &str) -> Option<Decimal> {
        Decimal::parse(text)
    }

    fn sn(value: &str) -> Option<StructuredNumeric> {
        let text = format!("MSH|^~\\&|A\rOBX|1|SN|X||{value}");
        let m = Message::parse(text.as_bytes()).unwrap();
        let fields = Fields::new(&m, m.segment("OBX").unwrap());
        structured_numeric(fields.parts(fields.field(5).and_then(|f| f.repetition(1))))
    }

    #[test]
    fn structured_numerics_read_comparator_numbers_and_separator() {
        let v = sn(">^100").unwrap();
        assert_eq!(v.comparator.as_deref(), Some(">"));
        assert_eq!(v.low, dec("100"));
        let v = sn("^1^:^128").unwrap();
        assert_eq!(
            (v.low, v.separator.as_deref(), v.high),
            (dec("1"), Some(":"), dec("128"))
        );
        let v = sn("^182").unwrap();
        assert_eq!((v.comparator, v.low), (None, dec("182")));
    }

    #[test]
    fn malformed_structured_numerics_are_refused() {
        for bad in ["~^5", "^abc", "^1^x^2", "^", ">"] {
            assert!(sn(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_comparator_in_front_of_a_number_is_understood() {
        let v = comparator_number("<0.5").unwrap();
        assert_eq!((v.comparator.as_deref(), v.low), (Some("<"), dec("0.5")));
        assert!(comparator_number("5").is_none());
        assert!(comparator_number("<x").is_none());
    }

    #[test]
    fn numeric_ranges_give_both_bounds() {
        for (text, low, high) in [
            ("70-99", "70", "99"),
            ("4.5 - 11.0", "4.5", "11.0"),
            ("-5-5", "-5", "5"),
            ("-10--5", "-10", "-5"),
            ("4.50&5.90", "4.50", "5.90"),
        ] {
            let r = reference_range(text);
            assert_eq!(
                (r.low, r.high, r.text),
                (dec(low), dec(high), None),
                "{text}"
            );
        }
    }

    #[test]
    fn one_sided_ranges_give_one_bound_and_keep_strictness() {
        let r = reference_range("<5");
        assert_eq!(
            (r.low, r.high, r.text.as_deref()),
            (None, dec("5"), Some("<5"))
        );
        let r = reference_range(">=10");
        assert_eq!((r.low, r.high, r.text), (dec("10"), None, None));
    }

    #[test]
    fn the_plain_number_reader_agrees_with_decimal_parse() {
        for text in [
            "0",
            "-0",
            "+7",
            "5.40",
            ".5",
            "5.",
            "-.25",
            "",
            "-",
            "+",
            ".",
            "1.2.3",
            "--1",
            "+-1",
            " 12 ",
            "1e5",
            "123456789012345678",
            "1234567890123456789",
            "0.000000000000000001",
            "0.0000000000000000001",
            "99999999999999999999",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
        ] {
            assert_eq!(decimal(text), Decimal::parse(text), "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_plain_number_reader_agrees_on_any_text(text in "[-+ .0-9a]{0,24}") {
            proptest::prop_assert_eq!(decimal(&text), Decimal::parse(&text));
        }
    }

    #[test]
    fn other_ranges_are_kept_as_text() {
        for text in ["negative", "70_105", "<1:40", "1e-5"] {
            let r = reference_range(text);
            assert_eq!((r.low, r.high, r.text.as_deref()), (None, None, Some(text)));
        }
    }
}
