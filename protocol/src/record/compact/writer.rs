//! The encoding side of the compact record form: varints, per-record
//! string tables and packed values.
//!
//! Invariant: every write has exactly one matching read in
//! [`super::reader::Reader`], in the same order; the string tables of both
//! sides grow identically (a literal is appended to its pool's table the
//! first time it is written, and later copies are written as its index).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use foldhash::fast::RandomState;

use super::dictionary::dictionary_index;
use super::{Pool, dictionary, units_of, zigzag};
use crate::record::{Decimal, Timestamp};

/// Per pool, the room its table gets on first use: few codes or units go
/// beyond the dictionaries; the text pool's room is counted per record
/// ([`Writer::new`]).
const FIRST_CAPACITY: [usize; Pool::COUNT] = [4, 8, 8, 0];

/// Texts (codes, displays, identifiers) a record adds besides its results'.
const TEXTS_PER_RECORD: usize = 16;

/// Texts a result adds: its code, the code's display, about one more.
const TEXTS_PER_RESULT: usize = 3;

/// Builds the bytes of one compact record.
pub(super) struct Writer<'a> {
    /// The bytes written so far.
    pub(super) out: Vec<u8>,
    /// Per pool: the strings written so far, in table order (indexes are
    /// counted after the pool's dictionary).
    tables: [StringTable<'a>; Pool::COUNT],
    /// Per pool, the room its table gets on first use.
    first_capacity: [usize; Pool::COUNT],
}

/// The strings one pool has written so far, each with its index (counted
/// after the pool's dictionary). Hashed with foldhash, seeded per process,
/// so a sender cannot pick strings that collide.
#[derive(Default)]
struct StringTable<'a> {
    /// String -> its index (the strings are numbered in the order they
    /// joined the table).
    map: HashMap<&'a str, u64, RandomState>,
}

impl<'a> StringTable<'a> {
    /// The index of `s`, or `None` after adding it as the next entry.
    fn find_or_add(&mut self, s: &'a str, first_capacity: usize) -> Option<u64> {
        if self.map.capacity() == 0 {
            // Sized once, on first use: growing rehashes every entry.
            self.map.reserve(first_capacity);
        }
        let next = self.map.len() as u64;
        match self.map.entry(s) {
            Entry::Occupied(e) => Some(*e.get()),
            Entry::Vacant(e) => {
                e.insert(next);
                None
            }
        }
    }
}

impl<'a> Writer<'a> {
    /// An empty writer (its tables start after the frozen dictionaries)
    /// for a record with `results` observation results.
    pub(super) fn new(results: usize) -> Self {
        let mut first_capacity = FIRST_CAPACITY;
        first_capacity[Pool::Text as usize] =
            TEXTS_PER_RECORD.saturating_add(results.saturating_mul(TEXTS_PER_RESULT));
        Writer {
            out: Vec::with_capacity(512),
            tables: Default::default(),
            first_capacity,
        }
    }

    /// One raw byte.
    pub(super) fn byte(&mut self, b: u8) {
        self.out.push(b);
    }

    /// An unsigned LEB128 varint.
    pub(super) fn varint(&mut self, mut v: u128) {
        while v >= 0x80 {
            // Truncation is the point: the low seven bits with the
            // continuation bit set.
            self.out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// A count or index.
    pub(super) fn len(&mut self, n: usize) {
        self.varint(n as u128);
    }

    /// A string (or its absence): `0` for none, else a reference to the
    /// pool's table, a number form (text pool only) or a new literal (which
    /// joins the table); see [`super`] for the layout.
    pub(super) fn str(&mut self, pool: Pool, s: Option<&'a str>) {
        let Some(s) = s else {
            self.byte(0);
            return;
        };
        let (form_bits, forms) = if pool == Pool::Text { (2, 4) } else { (1, 2) };
        let dict = dictionary(pool);
        if !dict.is_empty()
            && let Some(i) = dictionary_index(pool, s)
        {
            self.varint(i as u128 * forms + 1);
            return;
        }
        if let Some(index) =
            self.tables[pool as usize].find_or_add(s, self.first_capacity[pool as usize])
        {
            let index = u128::from(index) + dict.len() as u128;
            self.varint(index * forms + 1);
            return;
        }
        if pool == Pool::Text
            && let Some(n) = super::number_form(s)
        {
            self.varint(n << form_bits | 3);
            return;
        }
        self.varint((s.len() as u128 + 1) << form_bits);
        self.out.extend_from_slice(s.as_bytes());
    }

    /// A decimal as one varint: zigzag mantissa, then the scale in the low
    /// three bits (`7` there means a scale byte follows).
    pub(super) fn decimal(&mut self, d: Decimal) {
        let small = d.scale.min(7);
        self.varint(zigzag(i128::from(d.mantissa)) << 3 | u128::from(small));
        if small == 7 {
            self.byte(d.scale);
        }
    }

    /// A timestamp, packed (see [`super`] for the layout): in the unit and
    /// from the origin (zero or `base`) that give the smallest number.
    pub(super) fn timestamp(&mut self, t: &Timestamp, base: Option<&Timestamp>) {
        let local = local_ms(t);
        let origins = [Some(0), base.map(local_ms)];
        let mut best: Option<(u8, u128)> = None;
        for (relative, origin) in origins.iter().enumerate() {
            let Some(origin) = origin else { continue };
            for (code, unit) in (0u8..).zip(super::TS_UNITS) {
                let unit = unit.unwrap_or_else(|| units_of(t.precision));
                let Some(quotient) = div_exact(local - origin, unit) else {
                    continue;
                };
                let value = zigzag(quotient);
                if best.is_none_or(|(_, b)| value < b) {
                    let mut tag = if relative == 1 { super::TS_RELATIVE } else { 0 };
                    if code & 1 != 0 {
                        tag |= super::TS_UNIT_LOW;
                    }
                    if code & 2 != 0 {
                        tag |= super::TS_UNIT_HIGH;
                    }
                    best = Some((tag, value));
                }
            }
        }
        // Milliseconds from zero always divide, so there is a best.
        let (mut tag, value) = best.unwrap_or((super::TS_UNIT_LOW, zigzag(local)));
        tag |= t.precision as u8 + 1;
        if t.zone_assumed {
            tag |= super::TS_ZONE_ASSUMED;
        }
        if t.offset_minutes != 0 {
            tag |= super::TS_OFFSET;
        }
        self.byte(tag);
        self.varint(value);
        if t.offset_minutes != 0 {
            let m = i128::from(t.offset_minutes);
            self.varint(if m % 15 == 0 {
                zigzag(m / 15) << 1
            } else {
                zigzag(m) << 1 | 1
            });
        }
    }

    /// An optional timestamp: one zero byte when absent.
    pub(super) fn opt_timestamp(&mut self, t: Option<&Timestamp>, base: Option<&Timestamp>) {
        match t {
            Some(t) => self.timestamp(t, base),
            None => self.byte(0),
        }
    }
}

/// `v / unit` when it divides exactly; in 64-bit arithmetic when it fits
/// (128-bit division is several times slower).
fn div_exact(v: i128, unit: i128) -> Option<i128> {
    match (i64::try_from(v), i64::try_from(unit)) {
        (Ok(v), Ok(unit)) => (v % unit == 0).then(|| i128::from(v / unit)),
        _ => (v % unit == 0).then(|| v / unit),
    }
}

/// The sender's wall-clock time in ms (UTC time plus the offset).
pub(super) fn local_ms(t: &Timestamp) -> i128 {
    i128::from(t.utc_ms) + i128::from(t.offset_minutes) * 60_000
}
