//! Record values in PostgreSQL's binary format, written straight into the
//! buffer of a binary `COPY` (no string built per value): exact decimals as
//! `numeric`, flag lists as `text[]`.
//!
//! Invariants:
//! - a [`Numeric`] is the decimal's exact value with its scale as the
//!   display scale, so `5.40` reads back as `5.40` and `0.00` as `0.00`
//!   (`rust_decimal`'s encoder, the crate one would reach for, writes zero
//!   with scale 0 and allocates per value);
//! - each type accepts only the column type it encodes, checked by
//!   tokio-postgres before anything is written.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use postgres_protocol::types::{ArrayDimension, array_to_sql, text_to_sql};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use hl7edge_protocol::record::{CompactString, Decimal};

/// Base of PostgreSQL's `numeric` digits.
const NBASE: u128 = 10_000;
/// `numeric` sign word of a negative value.
const NUMERIC_NEG: u16 = 0x4000;

/// A [`Decimal`] as a `numeric` column value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numeric(pub Decimal);

impl ToSql for Numeric {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        encode_numeric(self.0, out);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

/// `numeric`'s binary form: digit count, weight of the first digit (in
/// base-10000 places before the point, minus one), sign, display scale,
/// then the base-10000 digits, most significant first, without leading or
/// trailing zero digits.
fn encode_numeric(d: Decimal, out: &mut BytesMut) {
    let scale = u32::from(d.scale);
    // Pad the fraction to whole base-10000 digits (at most 3 more decimal
    // digits: u64 times 1000 fits u128).
    let pad = (4 - scale % 4) % 4;
    let mut rest = u128::from(d.mantissa.unsigned_abs()) * 10u128.pow(pad);
    let fraction_digits = (scale + pad) / 4;
    // Least significant first; an i64 with 18 fraction digits needs at most 9.
    let mut digits = [0u16; 10];
    let mut count = 0;
    while rest > 0 {
        digits[count] = (rest % NBASE) as u16;
        rest /= NBASE;
        count += 1;
    }
    let weight = count as i32 - fraction_digits as i32 - 1;
    // Trailing zero digits (least significant) carry nothing; the display
    // scale keeps the written zeros.
    let low = digits[..count].iter().take_while(|&&g| g == 0).count();
    let kept = &digits[low..count];
    let sign = if d.mantissa < 0 { NUMERIC_NEG } else { 0 };
    out.reserve(8 + 2 * kept.len());
    out.put_u16(kept.len() as u16);
    out.put_i16(if kept.is_empty() { 0 } else { weight as i16 });
    out.put_u16(if kept.is_empty() { 0 } else { sign });
    out.put_u16(d.scale.into());
    for g in kept.iter().rev() {
        out.put_u16(*g);
    }
}

/// A list of record strings as a one-dimensional `text[]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextArray<'a>(pub &'a [CompactString]);

impl ToSql for TextArray<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let dimension = ArrayDimension {
            len: i32::try_from(self.0.len())?,
            lower_bound: 1,
        };
        array_to_sql(
            Some(dimension),
            Type::TEXT.oid(),
            self.0.iter(),
            |s, w| {
                text_to_sql(s, w);
                Ok(postgres_protocol::IsNull::No)
            },
            out,
        )?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TEXT_ARRAY
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(text: &str) -> Vec<u16> {
        let mut out = BytesMut::new();
        encode_numeric(Decimal::parse(text).unwrap(), &mut out);
        out.chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn decimals_become_base_10000_digits_with_weight_sign_and_display_scale() {
        // [ndigits, weight, sign, dscale, digits...]
        assert_eq!(numeric("5.40"), [2, 0, 0, 2, 5, 4000]);
        assert_eq!(numeric("88"), [1, 0, 0, 0, 88]);
        assert_eq!(numeric("12345.6789"), [3, 1, 0, 4, 1, 2345, 6789]);
        assert_eq!(numeric("-0.005"), [1, 0xffff, NUMERIC_NEG, 3, 50]);
        assert_eq!(numeric("100000000"), [1, 2, 0, 0, 1]);
        assert_eq!(numeric("0.00"), [0, 0, 0, 2]);
        assert_eq!(numeric("-0"), [0, 0, 0, 0]);
    }

    #[test]
    fn the_widest_decimals_fit() {
        let max = Decimal {
            mantissa: i64::MAX,
            scale: 18,
        };
        let mut out = BytesMut::new();
        encode_numeric(max, &mut out);
        // 9.223372036854775807: 1 digit before the point, 18 after (5 base-10000 digits).
        let words: Vec<u16> = out
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(words, [6, 0, 0, 18, 9, 2233, 7203, 6854, 7758, 700]);
        let min = Decimal {
            mantissa: i64::MIN,
            scale: 0,
        };
        let mut out = BytesMut::new();
        encode_numeric(min, &mut out);
        assert_eq!(out.len(), 8 + 2 * 5, "9223372036854775808: five digits");
    }

    #[test]
    fn only_the_matching_column_types_are_accepted() {
        assert!(<Numeric as ToSql>::accepts(&Type::NUMERIC));
        assert!(!<Numeric as ToSql>::accepts(&Type::TEXT));
        assert!(<TextArray as ToSql>::accepts(&Type::TEXT_ARRAY));
        assert!(!<TextArray as ToSql>::accepts(&Type::TEXT));
    }
}
