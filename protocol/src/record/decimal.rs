//! Exact decimals for observation values and reference ranges.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most digits after the point a [`Decimal`] keeps.
const MAX_SCALE: u8 = 18;

/// An exact decimal: `mantissa × 10^-scale` (`5.40` = 540, scale 2).
///
/// Kept exact (not f64) so `5.40` stays `5.40` and the hub sees the
/// precision the analyzer reported. Compact on the wire: two varints; in
/// JSON a string such as `"5.40"` (a JSON number would lose the zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    /// The digits as an integer.
    pub mantissa: i64,
    /// Digits after the decimal point.
    pub scale: u8,
}

impl Decimal {
    /// Parses an HL7 NM value: optional sign, digits, optional point and
    /// digits (`+5`, `-0.25`, `.5`, `5.`). Surrounding spaces are allowed.
    /// Returns `None` for anything else, or more digits than fit.
    pub fn parse(text: &str) -> Option<Decimal> {
        let t = text.trim();
        let (negative, digits) = match t.as_bytes().first()? {
            b'-' => (true, t.get(1..)?),
            b'+' => (false, t.get(1..)?),
            _ => (false, t),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let scale = u8::try_from(frac.len()).ok().filter(|&s| s <= MAX_SCALE)?;
        let mut mantissa: i64 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mantissa = mantissa.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
        }
        Some(Decimal {
            mantissa: if negative { -mantissa } else { mantissa },
            scale,
        })
    }

    /// The value as a float (for tools that want one; may round).
    pub fn to_f64(self) -> f64 {
        self.mantissa as f64 / 10f64.powi(i32::from(self.scale))
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            (self.mantissa, self.scale).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            Decimal::parse(&text)
                .ok_or_else(|| D::Error::custom("expected a decimal number such as \"5.40\""))
        } else {
            let (mantissa, scale) = <(i64, u8)>::deserialize(d)?;
            Ok(Decimal { mantissa, scale })
        }
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let scale = usize::from(self.scale);
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_is_kept_exactly() {
        let d = Decimal::parse("5.40").unwrap();
        assert_eq!((d.mantissa, d.scale), (540, 2));
        assert_eq!(d.to_string(), "5.40");
    }

    #[test]
    fn signs_and_bare_points_parse() {
        assert_eq!(Decimal::parse("-0.25").unwrap().to_string(), "-0.25");
        assert_eq!(Decimal::parse("+7").unwrap().to_string(), "7");
        assert_eq!(Decimal::parse(".5").unwrap().to_string(), "0.5");
        assert_eq!(Decimal::parse(" 12 ").unwrap().to_string(), "12");
        assert_eq!(Decimal::parse("0.005").unwrap().to_string(), "0.005");
    }

    #[test]
    fn non_numbers_are_refused() {
        for bad in [
            "",
            "-",
            ".",
            "1.2.3",
            "1e5",
            "abc",
            ">5",
            "99999999999999999999",
        ] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_shows_the_exact_text_and_the_wire_two_varints() {
        let d = Decimal::parse("5.40").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"5.40\"");
        assert_eq!(serde_json::from_str::<Decimal>("\"5.40\"").unwrap(), d);
        let wire = postcard::to_allocvec(&d).unwrap();
        assert_eq!(wire, [0xb8, 0x08, 0x02]);
        assert_eq!(postcard::from_bytes::<Decimal>(&wire).unwrap(), d);
    }

    #[test]
    fn float_conversion_is_close() {
        assert!((Decimal::parse("98.6").unwrap().to_f64() - 98.6).abs() < 1e-9);
    }
}
