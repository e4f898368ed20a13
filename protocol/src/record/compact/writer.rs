//! The encoding side of the compact record form: varints, per-record
//! string tables and packed values.
//!
//! Invariant: every write has exactly one matching read in
//! [`super::reader::Reader`], in the same order; the string tables of both
//! sides grow identically (a literal is appended to its pool's table the
//! first time it is written, and later copies are written as its index).
//! The writer counts the text it writes (copies the reader makes
//! included) and the items of every list, as the reader counts them at
//! most: a record over `crate::record::limits` is never written
//! ([`Writer::over_limits`]).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use foldhash::fast::RandomState;

use super::dictionary::dictionary_index;
use super::{Pool, dictionary, units_of, zigzag};
use crate::record::limits::{self, LimitError};
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
    /// The message time, once the header is written: the base of times
    /// outside result groups.
    pub(super) base: Option<Timestamp>,
    /// Bytes of text written (or copied by the reader) so far.
    text: usize,
    /// Items of every list written so far.
    items: usize,
    /// What the last producer, observers, performing organization and
    /// director written in full cost (see [`Writer::add_cost`]).
    pub(super) same_costs: [Cost; 4],
}

/// What a part cost when written: bytes of text and list items (see
/// [`Writer::cost`]).
pub(super) type Cost = (usize, usize);

/// How many strings a small table keeps in its list.
const FEW: usize = 16;

/// The strings one pool has written so far, each with its index (counted
/// after the pool's dictionary, in the order they joined the table).
///
/// A table expected to stay small (first capacity at most [`FEW`]: codes,
/// units and header values, mostly in the dictionaries, and the texts of a
/// record without results) keeps its first [`FEW`] strings in a list and
/// finds them by comparing: a short scan costs less than hashing, and no
/// map is allocated. Past that, and from the start in a record with
/// results, every string is in a map hashed with foldhash, seeded per
/// process, so a sender cannot pick strings that collide.
#[derive(Default)]
struct StringTable<'a> {
    /// The first strings, in table order, while the map is not in use.
    few: [&'a str; FEW],
    /// How many of `few` are in use.
    few_len: usize,
    /// String -> its index, once in use (then it holds every string).
    map: HashMap<&'a str, u64, RandomState>,
}

impl<'a> StringTable<'a> {
    /// The index of `s`, or `None` after adding it as the next entry.
    fn find_or_add(&mut self, s: &'a str, first_capacity: usize) -> Option<u64> {
        if self.map.is_empty() && first_capacity <= FEW {
            let few = self.few.get(..self.few_len).unwrap_or_default();
            if let Some(i) = few.iter().position(|f| *f == s) {
                return Some(i as u64);
            }
            if let Some(slot) = self.few.get_mut(self.few_len) {
                *slot = s;
                self.few_len += 1;
                return None;
            }
            // The list is full: every string moves to the map, sized once
            // (growing rehashes every entry).
            self.map.reserve(2 * FEW);
            for (i, f) in self.few.iter().enumerate() {
                self.map.insert(*f, i as u64);
            }
        } else if self.map.capacity() == 0 {
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
        Writer::after(Vec::with_capacity(512), results)
    }

    /// A writer that appends to `out` (see [`Writer::new`]).
    pub(super) fn after(out: Vec<u8>, results: usize) -> Self {
        let mut first_capacity = FIRST_CAPACITY;
        first_capacity[Pool::Text as usize] =
            TEXTS_PER_RECORD.saturating_add(results.saturating_mul(TEXTS_PER_RESULT));
        Writer {
            out,
            tables: Default::default(),
            first_capacity,
            base: None,
            text: 0,
            items: 0,
            same_costs: [(0, 0); 4],
        }
    }

    /// The text and list items written so far: the difference over a part
    /// is what the part costs a reader.
    pub(super) fn cost(&self) -> Cost {
        (self.text, self.items)
    }

    /// Counts `cost` again: a part the reader copies instead of reading
    /// (it counts the copy as it counted the part).
    pub(super) fn add_cost(&mut self, cost: Cost) {
        self.text = self.text.saturating_add(cost.0);
        self.items = self.items.saturating_add(cost.1);
    }

    /// Counts a string the reader copies instead of reading.
    pub(super) fn count_text(&mut self, s: Option<&str>) {
        self.text = self.text.saturating_add(s.map_or(0, str::len));
    }

    /// An error when what was written is more text or list items than a
    /// reader accepts.
    pub(super) fn over_limits(&self) -> Result<(), LimitError> {
        limits::within(self.text, limits::MAX_TEXT_BYTES, "bytes of text")?;
        limits::within(self.items, limits::MAX_PARTS, "list items")
    }

    /// One raw byte.
    pub(super) fn byte(&mut self, b: u8) {
        self.out.push(b);
    }

    /// An unsigned LEB128 varint.
    #[inline]
    pub(super) fn varint(&mut self, v: u128) {
        match u64::try_from(v) {
            Ok(v) => self.varint64(v),
            Err(_) => self.varint_wide(v),
        }
    }

    /// [`Writer::varint`] of a number that fits 64 bits (nearly all do):
    /// the same bytes, without 128-bit shifts.
    #[inline]
    fn varint64(&mut self, mut v: u64) {
        while v >= 0x80 {
            // Truncation is the point: the low seven bits with the
            // continuation bit set.
            self.out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// [`Writer::varint`] of a number wider than 64 bits.
    fn varint_wide(&mut self, mut v: u128) {
        while v >= 0x80 {
            self.out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// The number of items of a list with a limit of its own (orders,
    /// results, listed values, issues, generic segments): the reader checks
    /// those against `crate::record::limits`, and so does `limits::check`.
    pub(super) fn count(&mut self, n: usize) {
        self.varint(n as u128);
    }

    /// The number of items of any other list (counted, see
    /// [`Writer::over_limits`]).
    pub(super) fn len(&mut self, n: usize) {
        self.items = self.items.saturating_add(n);
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
        self.text = self.text.saturating_add(s.len());
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
        let (mut tag, value) = match narrow(t, base) {
            Some((local, relative)) => best_form(local, relative, units_of(t.precision)),
            None => best_form_wide(t, base),
        };
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
            let m = i64::from(t.offset_minutes);
            self.varint64(if m % 15 == 0 {
                zigzag64(m / 15) << 1
            } else {
                zigzag64(m) << 1 | 1
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

/// The timestamp's wall-clock time in ms and its distance from `base`'s,
/// when both fit 64 bits (any time within the years ±292 million does).
fn narrow(t: &Timestamp, base: Option<&Timestamp>) -> Option<(i64, Option<i64>)> {
    let local = i64::try_from(local_ms(t)).ok()?;
    let origin = match base {
        Some(b) => Some(local.checked_sub(i64::try_from(local_ms(b)).ok()?)?),
        None => None,
    };
    Some((local, origin))
}

/// The tag's unit and origin bits and the value for the smallest number
/// among the forms (from zero, then from the base; each unit in
/// [`super::TS_UNITS`] order; the first smallest wins): `local` from zero
/// and `relative` (from the base), in ms; `own` is the precision's unit.
fn best_form(local: i64, relative: Option<i64>, own: i128) -> (u8, u128) {
    // Every precision's unit is a whole number of ms below a day's.
    let own = i64::try_from(own).unwrap_or(1);
    let mut best: Option<(u8, u64)> = None;
    for (origin_bit, distance) in [(0, Some(local)), (super::TS_RELATIVE, relative)] {
        let Some(distance) = distance else { continue };
        for (code, unit) in (0u8..).zip(UNITS64) {
            let unit = if unit == 0 { own } else { unit };
            if distance % unit != 0 {
                continue;
            }
            let value = zigzag64(distance / unit);
            if best.is_none_or(|(_, b)| value < b) {
                best = Some((origin_bit | unit_bits(code), value));
            }
        }
    }
    // Milliseconds from zero always divide, so there is a best.
    let (tag, value) = best.unwrap_or((super::TS_UNIT_LOW, zigzag64(local)));
    (tag, u128::from(value))
}

/// [`super::TS_UNITS`] in 64 bits; `0` stands for the precision's own unit.
const UNITS64: [i64; 4] = [0, 1, 60_000, 3_600_000];

/// [`best_form`] in 128-bit arithmetic, for times too far out for 64 bits.
fn best_form_wide(t: &Timestamp, base: Option<&Timestamp>) -> (u8, u128) {
    let local = local_ms(t);
    let origins = [Some(0), base.map(local_ms)];
    let mut best: Option<(u8, u128)> = None;
    for (origin_bit, origin) in [0, super::TS_RELATIVE].into_iter().zip(origins) {
        let Some(origin) = origin else { continue };
        for (code, unit) in (0u8..).zip(super::TS_UNITS) {
            let unit = unit.unwrap_or_else(|| units_of(t.precision));
            let distance = local - origin;
            if distance % unit != 0 {
                continue;
            }
            let value = zigzag(distance / unit);
            if best.is_none_or(|(_, b)| value < b) {
                best = Some((origin_bit | unit_bits(code), value));
            }
        }
    }
    best.unwrap_or((super::TS_UNIT_LOW, zigzag(local)))
}

/// [`zigzag`] in 64 bits: the same number for any `i64`.
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The tag bits of unit code `code`.
fn unit_bits(code: u8) -> u8 {
    let mut tag = 0;
    if code & 1 != 0 {
        tag |= super::TS_UNIT_LOW;
    }
    if code & 2 != 0 {
        tag |= super::TS_UNIT_HIGH;
    }
    tag
}

/// The sender's wall-clock time in ms (UTC time plus the offset).
pub(super) fn local_ms(t: &Timestamp) -> i128 {
    i128::from(t.utc_ms) + i128::from(t.offset_minutes) * 60_000
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::record::Precision;

    const PRECISIONS: [Precision; 7] = [
        Precision::Year,
        Precision::Month,
        Precision::Day,
        Precision::Hour,
        Precision::Minute,
        Precision::Second,
        Precision::Fraction,
    ];

    fn at(utc_ms: i64, offset_minutes: i16, precision: usize) -> Timestamp {
        Timestamp {
            utc_ms,
            precision: PRECISIONS[precision % PRECISIONS.len()],
            offset_minutes,
            zone_assumed: false,
        }
    }

    #[test]
    fn a_table_numbers_strings_in_order_in_its_list_and_in_its_map() {
        let words: Vec<String> = (0..3 * FEW).map(|i| format!("w{i}")).collect();
        for first_capacity in [4, FEW, FEW + 1, 64] {
            let mut table = StringTable::default();
            for (i, w) in words.iter().enumerate() {
                assert_eq!(table.find_or_add(w, first_capacity), None, "{w} is new");
                for (j, seen) in words.iter().take(i + 1).enumerate() {
                    let index = table.find_or_add(seen, first_capacity);
                    assert_eq!(index, Some(j as u64), "{seen} after {w}");
                }
            }
        }
    }

    #[test]
    fn times_beyond_64_bits_take_the_wide_path_and_agree_with_it() {
        let far = at(i64::MAX, 60, 6);
        let near = at(1_000, 0, 2);
        assert!(narrow(&far, None).is_none());
        assert!(narrow(&near, Some(&at(i64::MIN, 0, 6))).is_none());
        assert!(narrow(&near, Some(&near)).is_some());
    }

    proptest! {
        #[test]
        fn the_64_bit_form_is_the_128_bit_form(
            utc in prop_oneof![any::<i64>(), -10_000_000_000_000i64..10_000_000_000_000],
            offset in -1440i16..1440,
            precision in 0usize..7,
            base_utc in prop_oneof![any::<i64>(), -10_000_000_000_000i64..10_000_000_000_000],
            base_offset in -1440i16..1440,
            steps in 0i64..100,
            has_base in any::<bool>(),
        ) {
            let t = at(utc - utc.rem_euclid(60_000) * (steps % 2), offset, precision);
            let b = at(base_utc, base_offset, precision);
            let base = has_base.then_some(&b);
            if let Some((local, relative)) = narrow(&t, base) {
                prop_assert_eq!(
                    best_form(local, relative, units_of(t.precision)),
                    best_form_wide(&t, base)
                );
            }
            let near = at(t.utc_ms.saturating_add(steps * 3_600_000), offset, precision);
            if let Some((local, relative)) = narrow(&near, Some(&t)) {
                prop_assert_eq!(
                    best_form(local, relative, units_of(near.precision)),
                    best_form_wide(&near, Some(&t))
                );
            }
        }
    }
}
