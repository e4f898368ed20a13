//! The encoding side of the compact record form: varints, per-record
//! string tables and packed values.
//!
//! Invariant: every write has exactly one matching read in
//! [`super::reader::Reader`], in the same order; the string tables of both
//! sides grow identically (a literal is appended to its pool's table the
//! first time it is written, and later copies are written as its index).

use std::collections::HashMap;

use super::{Pool, dictionary, units_of, zigzag};
use crate::record::{Decimal, Timestamp};

/// Builds the bytes of one compact record.
pub(super) struct Writer<'a> {
    /// The bytes written so far.
    pub(super) out: Vec<u8>,
    /// Per pool: string -> index (dictionary entries first, then literals).
    tables: [HashMap<&'a str, u64>; Pool::COUNT],
}

impl<'a> Writer<'a> {
    /// An empty writer whose tables hold the frozen dictionaries.
    pub(super) fn new() -> Self {
        let tables = Pool::ALL.map(|pool| {
            dictionary(pool)
                .iter()
                .zip(0u64..)
                .map(|(s, i)| (*s, i))
                .collect()
        });
        Writer {
            out: Vec::with_capacity(512),
            tables,
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

    /// A string (or its absence): `0` for none, `2·index+1` for a string
    /// already in the pool's table, `2·(len+1)` then the UTF-8 bytes for a
    /// new one (which joins the table).
    pub(super) fn str(&mut self, pool: Pool, s: Option<&'a str>) {
        let Some(s) = s else {
            self.byte(0);
            return;
        };
        let table = &mut self.tables[pool as usize];
        if let Some(&index) = table.get(s) {
            self.varint(u128::from(index) * 2 + 1);
            return;
        }
        let next = table.len() as u64;
        table.insert(s, next);
        self.varint((s.len() as u128 + 1) * 2);
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

    /// A timestamp, packed (see [`super`] for the layout), relative to
    /// `base` when that is shorter.
    pub(super) fn timestamp(&mut self, t: &Timestamp, base: Option<&Timestamp>) {
        let unit = units_of(t.precision);
        let local = local_ms(t);
        let pick = |origin: i128| -> (u8, u128) {
            let v = local - origin;
            if v % unit == 0 {
                (0, zigzag(v / unit))
            } else {
                (super::TS_MILLIS, zigzag(v))
            }
        };
        let (mut tag, mut value) = pick(0);
        if let Some(b) = base {
            let (rel_tag, rel_value) = pick(local_ms(b));
            if rel_value < value {
                (tag, value) = (rel_tag | super::TS_RELATIVE, rel_value);
            }
        }
        tag |= super::TS_PRESENT | t.precision as u8;
        if t.zone_assumed {
            tag |= super::TS_ZONE_ASSUMED;
        }
        if t.offset_minutes != 0 {
            tag |= super::TS_OFFSET;
        }
        self.byte(tag);
        self.varint(value);
        if t.offset_minutes != 0 {
            self.varint(zigzag(i128::from(t.offset_minutes)));
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

/// The sender's wall-clock time in ms (UTC time plus the offset).
pub(super) fn local_ms(t: &Timestamp) -> i128 {
    i128::from(t.utc_ms) + i128::from(t.offset_minutes) * 60_000
}
