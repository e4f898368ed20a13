//! Unit safety: a result checked against the unit its mapping row expects.
//!
//! A `code` row of the interface's mapping table may name the UCUM unit
//! results for that code must be in (`target_unit`). When a quantity
//! (NM, or SN) arrives for such a code in another unit:
//! - a commensurable unit (`mg/dL` where `g/L` is expected) is converted:
//!   the quantity keeps its value and unit as sent and gains
//!   [`Converted`] beside them. The factor between the units is taken as a
//!   short decimal when it is one (10, 0.001, 0.45359237), and the value is
//!   then multiplied exactly (`5.4` mg/dL is `0.054` g/L, digit for
//!   digit); a factor with no short decimal form, or a unit with an offset
//!   (`[degF]` to `Cel`), is computed in floating point and rounded to two
//!   more decimals than were sent, and marked not exact. An SN value is
//!   checked but not converted.
//! - an incommensurable unit (`mg/dL` sent for a code expected in
//!   `mmol/L`: a mass concentration is not a substance concentration) is
//!   never converted: the record gets a Warning (102) at the unit and the
//!   mismatch is counted ([`crate::normalize::Normalized::unit_mismatches`]).
//!
//! A unit that is not known as UCUM is already flagged as unmapped; it is
//! not checked again here. Nothing here panics; work is bounded by
//! [`super::grammar::MAX_UNIT_BYTES`].

use crate::hl7::ErrorCode;
use crate::normalize::context::{At, Work};
use crate::normalize::ucum::grammar::{self, Relation};
use crate::record::{Coded, Converted, Decimal, Quantity, Unit, Value};

/// Most decimals a conversion factor is looked for with.
const MAX_FACTOR_SCALE: u8 = 12;
/// Most decimals a converted value keeps (as [`Decimal`] allows).
const MAX_SCALE: u8 = 18;

/// Checks `value` (of the observation coded `code`, its unit at `at`)
/// against the unit the mapping table expects, converting or flagging.
pub(crate) fn check_expected_unit(
    work: &mut Work<'_>,
    code: &Coded,
    value: &mut Value,
    at: At<'_>,
) {
    let Some(expected) = work.ctx.mapping.expected_unit(code) else {
        return;
    };
    let sent = match &*value {
        Value::Quantity(q) => ucum_of(q.unit.as_ref()),
        Value::Structured(sn) => ucum_of(sn.unit.as_ref()),
        _ => None,
    };
    let Some(sent) = sent.map(str::to_owned) else {
        return;
    };
    match grammar::relation(&sent, expected) {
        Ok(Relation::Same) | Err(_) => {}
        Ok(Relation::Incommensurable) => {
            work.unit_mismatches = work.unit_mismatches.saturating_add(1);
            work.warn(
                ErrorCode::DataType,
                at,
                "the unit is not commensurable with the unit the mapping table expects for this code; the value is not converted",
            );
        }
        Ok(relation) => {
            if let Value::Quantity(q) = value {
                q.converted = convert(q, &sent, expected, relation);
            }
        }
    }
}

/// The UCUM code of a unit, when known.
fn ucum_of(unit: Option<&Unit>) -> Option<&str> {
    unit?.ucum.as_deref()
}

/// `q`'s value in `to`.
fn convert(q: &Quantity, from: &str, to: &str, relation: Relation) -> Option<Converted> {
    let exact = match relation {
        Relation::Factor(factor) => short_decimal(factor).and_then(|f| multiply(q.value, f)),
        _ => None,
    };
    if let Some(value) = exact {
        return Some(Converted {
            value,
            unit: to.into(),
            exact: true,
        });
    }
    let rounded = grammar::convert_f64(q.value.to_f64(), from, to)?;
    Some(Converted {
        value: round(
            rounded,
            q.value.scale.saturating_add(2).min(MAX_SCALE),
            q.value.scale,
        )?,
        unit: to.into(),
        exact: false,
    })
}

/// `factor` as a decimal of at most [`MAX_FACTOR_SCALE`] decimals, when it
/// is one (to a relative 1e-14: UCUM's definitions survive the crate's
/// floating point to about 1e-15).
fn short_decimal(factor: f64) -> Option<Decimal> {
    if !factor.is_finite() || factor <= 0.0 {
        return None;
    }
    (0..=MAX_FACTOR_SCALE).find_map(|scale| {
        let scaled = factor * 10f64.powi(i32::from(scale));
        if scaled > 9.0e15 {
            return None;
        }
        let mantissa = scaled.round();
        let close = (mantissa - scaled).abs() <= 1e-14 * scaled.max(1.0);
        // `mantissa` is a whole number below 2^53 here: the cast is exact.
        (close && mantissa >= 1.0).then_some(Decimal {
            mantissa: mantissa as i64,
            scale,
        })
    })
}

/// `a × b` exactly, with the decimals of both (`140 × 0.001` is `0.140`:
/// the digits sent stay significant); `None` when it does not fit a
/// [`Decimal`].
fn multiply(a: Decimal, b: Decimal) -> Option<Decimal> {
    let mantissa = i128::from(a.mantissa).checked_mul(i128::from(b.mantissa))?;
    let scale = a.scale.checked_add(b.scale)?;
    (scale <= MAX_SCALE)
        .then(|| i64::try_from(mantissa).ok())
        .flatten()
        .map(|mantissa| Decimal { mantissa, scale })
}

/// `value` rounded to `scale` decimals, trailing zeros dropped down to
/// `keep` decimals.
fn round(value: f64, scale: u8, keep: u8) -> Option<Decimal> {
    let scaled = (value * 10f64.powi(i32::from(scale))).round();
    if !scaled.is_finite() || scaled.abs() > 9.0e15 {
        return None;
    }
    // Whole and within ±2^53: the cast is exact.
    let mut d = Decimal {
        mantissa: scaled as i64,
        scale,
    };
    while d.scale > keep && d.mantissa % 10 == 0 {
        d.mantissa /= 10;
        d.scale -= 1;
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        Decimal::parse(text).unwrap()
    }

    fn quantity(value: &str, unit: &str) -> Quantity {
        Quantity {
            value: dec(value),
            unit: Some(Unit {
                ucum: Some(unit.into()),
                original: None,
            }),
            converted: None,
        }
    }

    fn converted(value: &str, from: &str, to: &str) -> Option<Converted> {
        let relation = grammar::relation(from, to).unwrap();
        convert(&quantity(value, from), from, to, relation)
    }

    #[test]
    fn decimal_factors_convert_exactly() {
        let cases = [
            ("5.4", "mg/dL", "g/L", "0.054"),
            ("5.4", "mg/dL", "mg/L", "54.0"),
            ("140", "umol/L", "mmol/L", "0.140"),
            ("150", "[lb_av]", "kg", "68.03885550"),
            ("7.2", "mmol/L", "umol/L", "7200.0"),
            ("2", "m[IU]/mL", "[IU]/L", "2"),
            ("1.5", "10*3/uL", "10*9/L", "1.5"),
        ];
        for (value, from, to, expected) in cases {
            let c = converted(value, from, to).unwrap_or_else(|| panic!("{from} -> {to}"));
            assert_eq!(c.value.to_string(), expected, "{value} {from} -> {to}");
            assert!(c.exact, "{from} -> {to}");
            assert_eq!(c.unit, to);
        }
    }

    #[test]
    fn offsets_are_computed_and_marked_rounded() {
        let c = converted("98.6", "[degF]", "Cel").unwrap();
        assert_eq!(c.value.to_string(), "37.0");
        assert!(!c.exact);
    }

    #[test]
    fn mass_and_substance_concentrations_are_incommensurable() {
        assert_eq!(
            grammar::relation("mg/dL", "mmol/L"),
            Ok(Relation::Incommensurable)
        );
        assert_eq!(
            grammar::relation("[IU]/L", "g/L"),
            Ok(Relation::Incommensurable)
        );
        assert_eq!(
            grammar::relation("[IU]/L", "[arb'U]/L"),
            Ok(Relation::Incommensurable)
        );
        assert_eq!(grammar::relation("mg/dL", "mg/dL"), Ok(Relation::Same));
    }

    #[test]
    fn short_decimal_factors_are_found_and_others_are_not() {
        assert_eq!(short_decimal(10.0), Some(dec("10")));
        assert_eq!(short_decimal(0.001), Some(dec("0.001")));
        assert_eq!(short_decimal(0.45359237), Some(dec("0.45359237")));
        assert_eq!(short_decimal(1.0 / 3.0), None);
        assert_eq!(short_decimal(f64::NAN), None);
        assert_eq!(short_decimal(-1.0), None);
    }

    #[test]
    fn products_that_do_not_fit_are_refused() {
        assert_eq!(multiply(dec("9223372036854775807"), dec("10")), None);
        assert_eq!(multiply(dec("0.000000000000000001"), dec("0.001")), None);
    }
}
