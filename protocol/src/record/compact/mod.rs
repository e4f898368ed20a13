//! The compact binary form of a [`Record`] (wire schema 3; schema 2 is
//! still read, see `v2`).
//!
//! postcard's derived form spends a tag byte on every absent field, writes
//! every string in full however often it repeats, and a timestamp as nine
//! bytes. This form keeps exactly the same information in fewer bytes:
//!
//! - **String tables.** Strings go to one of four pools ([`Pool`]); each
//!   pool's table starts with a frozen dictionary ([`dictionary`]) and
//!   grows by every new string written. A string is one varint: `0` absent,
//!   `2·i+1` entry `i` of the table, `2·(len+1)` a new string whose UTF-8
//!   bytes follow. In the text pool the forms take two bits (`4·i+1`,
//!   `4·(len+1)`) and a fourth form, `4·n+3`, is a new numeric string:
//!   `n = 2·digits` for plain digits (`15545`), `n = 2·(10·digits+d)+1` for
//!   digits, a dash and a check digit (LOINC `2345-7`), never with a
//!   leading zero. A unit, flag or system name repeated over twenty
//!   results costs one byte after its first use (or always, when it is in
//!   the dictionary); a LOINC code three or four bytes.
//! - **Timestamps.** One tag byte (bits 0-2 precision plus one, bit 3
//!   zone assumed, bit 4 offset follows, bit 6 relative to the base time,
//!   bits 5 and 7 the unit: the precision's own, milliseconds, minutes or
//!   hours, whichever is shortest), a zigzag varint of the sender's
//!   wall-clock time in that unit, and, when not zero, the offset (zigzag,
//!   shifted left by one; low bit clear: in quarter hours, set: minutes).
//!   A zero byte is an absent timestamp. The base is the message time (for
//!   everything but results) or the previous result's time in the order,
//!   else the order's observation time (for results); a result taken at
//!   that same time costs no bytes at all (a bit in its header).
//! - **Decimals.** One varint: zigzag mantissa shifted left by three, scale
//!   in the low three bits (`7`: a scale byte follows).
//! - **Presence bits.** Every part with optional fields starts with a
//!   varint whose bits announce the fields that follow, in declaration
//!   order (`parts::compact_struct!`); an absent field costs nothing but
//!   its bit. A set bit this decoder does not know is refused, so a later
//!   schema's field is never skipped silently.
//! - **Repeats.** A result's performing organization, director, producer
//!   and observers, when equal to the previous result's in the same group,
//!   are a bit each.
//! - Coding systems and value kinds are small numbers packed into tags.
//!
//! Invariants: [`decode`] reads exactly what [`encode`] wrote and gives
//! back an equal record; it rejects malformed bytes with a
//! [`CompactError`], never panics, and reserves memory only in proportion
//! to the input. The JSON (human-readable) form of a record is not
//! affected.

mod bodies;
mod coded;
mod dictionary;
mod form;
mod issues;
mod oru;
mod parts;
mod reader;
mod v2;
mod values;
mod writer;

use dictionary::dictionary;
use reader::Reader;
use writer::Writer;

use super::{Body, Precision, Record};

/// Timestamp tag bits: the precision's enum index plus one (so a present
/// timestamp's tag is never zero).
const TS_PRECISION: u8 = 0x07;
/// Timestamp tag bit: the site's zone was assumed.
const TS_ZONE_ASSUMED: u8 = 0x08;
/// Timestamp tag bit: an offset follows the value.
const TS_OFFSET: u8 = 0x10;
/// Timestamp tag bit: the low bit of the value's unit code.
const TS_UNIT_LOW: u8 = 0x20;
/// Timestamp tag bit: the value is relative to the base time.
const TS_RELATIVE: u8 = 0x40;
/// Timestamp tag bit: the high bit of the value's unit code.
const TS_UNIT_HIGH: u8 = 0x80;

/// The units a timestamp's value can be counted in, by unit code: `None`
/// is the precision's own unit ([`units_of`]), the others are
/// milliseconds, minutes and hours.
const TS_UNITS: [Option<i128>; 4] = [None, Some(1), Some(60_000), Some(3_600_000)];

/// The string tables of a record: strings of one kind share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pool {
    /// Message codes, trigger events, HL7 versions.
    Header = 0,
    /// Short table codes: flags, statuses, sex, identifier types, SN
    /// comparators and separators, coding-system names.
    Code = 1,
    /// Units (UCUM and as sent).
    Unit = 2,
    /// Everything else: ids, codes, display texts, values.
    Text = 3,
}

impl Pool {
    /// How many pools there are.
    const COUNT: usize = 4;
    /// Every pool, in index order.
    const ALL: [Pool; Pool::COUNT] = [Pool::Header, Pool::Code, Pool::Unit, Pool::Text];
}

/// Why compact record bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// The bytes end in the middle of a value.
    #[error("record bytes end too early")]
    Truncated,
    /// A number does not fit where it goes.
    #[error("a number in the record is out of range")]
    Overflow,
    /// A string reference points past the string table.
    #[error("string reference {0} is not in the record's string table")]
    BadStringIndex(usize),
    /// A string is not valid UTF-8.
    #[error("a string in the record is not UTF-8")]
    NotUtf8,
    /// A tag names no known variant.
    #[error("unknown {what} tag {tag}")]
    BadTag {
        /// What the tag selects.
        what: &'static str,
        /// The tag found.
        tag: u64,
    },
    /// Something required is absent.
    #[error("the record lacks a required {0}")]
    Missing(&'static str),
    /// A part written in postcard's form did not decode.
    #[error("a postcard part of the record is invalid: {0}")]
    Postcard(#[from] postcard::Error),
    /// Bytes are left after the record.
    #[error("{0} bytes after the end of the record")]
    Trailing(usize),
    /// The record claims more than a record may hold.
    #[error(transparent)]
    Limit(#[from] crate::record::limits::LimitError),
}

/// Encodes a record in the compact form; a record over the limits of
/// `crate::record::limits` that the writer counts (text, list items) is
/// refused, since no reader would accept it.
pub fn encode(record: &Record) -> Result<Vec<u8>, CompactError> {
    let mut w = Writer::new(results(record));
    parts::write_record(&mut w, record)?;
    w.over_limits()?;
    Ok(w.out)
}

/// Appends the record to `out` as postcard writes it inside another value
/// (what its `Serialize` gives a binary serializer): the length of the
/// compact form as a varint, then the form. Written in place, without a
/// buffer of its own; `out` is left as it was on an error.
pub(crate) fn append_postcard(record: &Record, out: &mut Vec<u8>) -> Result<(), CompactError> {
    let start = out.len();
    let mut w = Writer::after(std::mem::take(out), results(record));
    let written = parts::write_record(&mut w, record)
        .map_err(CompactError::from)
        .and_then(|()| Ok(w.over_limits()?));
    *out = w.out;
    if let Err(e) = written {
        out.truncate(start);
        return Err(e);
    }
    let mut len = [0u8; 10];
    let mut used = 0;
    let mut n = out.len() - start;
    for slot in &mut len {
        used += 1;
        // Truncation is the point: the low seven bits.
        *slot = n as u8 & 0x7f;
        n >>= 7;
        if n == 0 {
            break;
        }
        *slot |= 0x80;
    }
    out.splice(start..start, len.iter().take(used).copied());
    Ok(())
}

/// How many observation results the record holds (its text table is sized
/// by it).
fn results(record: &Record) -> usize {
    match &record.body {
        Body::Observations(r) => r.orders.iter().map(|g| g.observations.len()).sum(),
        Body::Orders(o) => o.orders.iter().map(|o| o.observations.len()).sum(),
        Body::Immunizations(i) => i.immunizations.iter().map(|i| i.observations.len()).sum(),
        Body::Patient(p) => p.observations.len(),
        Body::Generic(g) => g.segments.len(),
    }
}

/// Decodes what [`encode`] wrote; all of `bytes` must be used.
pub fn decode(bytes: &[u8]) -> Result<Record, CompactError> {
    let mut r = Reader::new(bytes);
    let record = parts::read_record(&mut r)?;
    match r.rest().len() {
        0 => Ok(record),
        n => Err(CompactError::Trailing(n)),
    }
}

/// Decodes a record in the compact form of wire schema 2 into the current
/// model (see `v2`); all of `bytes` must be used.
pub fn decode_v2(bytes: &[u8]) -> Result<Record, CompactError> {
    let mut r = Reader::new(bytes);
    let record = v2::read_record(&mut r)?;
    match r.rest().len() {
        0 => Ok(record),
        n => Err(CompactError::Trailing(n)),
    }
}

/// The number form of a numeric string (see the module doc), if it has one.
fn number_form(s: &str) -> Option<u128> {
    let bytes = s.as_bytes();
    // Most strings are words: they fail on the first byte.
    if !matches!(bytes.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let (digits, check) = match bytes.iter().position(|&b| b == b'-') {
        Some(i) => (bytes.get(..i)?, Some(bytes.get(i + 1..)?)),
        None => (bytes, None),
    };
    // At most 18 digits (so the value fits 64 bits), the first not zero
    // (checked above).
    if digits.len() > 18 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    let n = u128::from(n);
    match check {
        None => Some(n << 1),
        Some([c]) if c.is_ascii_digit() => Some((n * 10 + u128::from(c - b'0')) << 1 | 1),
        Some(_) => None,
    }
}

/// The string a number form stands for.
fn number_text(n: u128) -> Result<String, CompactError> {
    let value = n >> 1;
    let text = if n & 1 == 0 {
        value.to_string()
    } else {
        format!("{}-{}", value / 10, value % 10)
    };
    // Only forms an encoder writes: no leading zero, at most 18 digits.
    if text.starts_with('0') || text.len() > 20 {
        return Err(CompactError::BadTag {
            what: "numeric string",
            tag: u64::try_from(n).unwrap_or(u64::MAX),
        });
    }
    Ok(text)
}

/// Milliseconds per unit of a precision (days for year, month and day).
fn units_of(p: Precision) -> i128 {
    match p {
        Precision::Year | Precision::Month | Precision::Day => 86_400_000,
        Precision::Hour => 3_600_000,
        Precision::Minute => 60_000,
        Precision::Second => 1_000,
        Precision::Fraction => 1,
    }
}

/// The precision with enum index `i`.
fn precision_from(i: u8) -> Result<Precision, CompactError> {
    Ok(match i {
        0 => Precision::Year,
        1 => Precision::Month,
        2 => Precision::Day,
        3 => Precision::Hour,
        4 => Precision::Minute,
        5 => Precision::Second,
        6 => Precision::Fraction,
        _ => {
            return Err(CompactError::BadTag {
                what: "precision",
                tag: u64::from(i),
            });
        }
    })
}

/// Zigzag: small magnitudes of either sign become small unsigned numbers.
fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

/// The inverse of [`zigzag`].
fn unzigzag(v: u128) -> i128 {
    ((v >> 1) as i128) ^ -((v & 1) as i128)
}

#[cfg(test)]
mod tests;
