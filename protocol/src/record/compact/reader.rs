//! The decoding side of the compact record form. Every read is checked:
//! malformed or truncated bytes give a [`CompactError`], never a panic; no
//! count read from the input is more than the input could hold or than the
//! record limits allow (`crate::record::limits`), and memory is reserved
//! up front only for `limits::PREALLOC_BYTES` per list. The reader counts
//! the results, listed values and text bytes it produces, so a record that
//! repeats strings by reference cannot decode into more than the limits.

use std::borrow::Cow;

use super::{CompactError, Pool, dictionary, precision_from, units_of, unzigzag};
use crate::record::limits::{self, LimitError};
use crate::record::{CompactString, Decimal, Timestamp};

/// Reads the bytes of one compact record.
pub(super) struct Reader<'b> {
    /// What is left to read.
    rest: &'b [u8],
    /// Per pool: the strings read so far (indexed after the dictionary),
    /// borrowed from the input where they were literals.
    tables: [Vec<Cow<'b, str>>; Pool::COUNT],
    /// The message time, once the header is read: the base of times
    /// outside result groups.
    pub(super) base: Option<Timestamp>,
    /// Results read so far.
    results: usize,
    /// Flags, equipment ids and series numbers read so far.
    values: usize,
    /// Items of the other lists read so far (see [`Self::len`]).
    parts: usize,
    /// Bytes of the strings produced so far.
    text: usize,
    /// What the last producer, observers, performing organization and
    /// director read in full cost (see [`Reader::add_cost`]).
    pub(super) same_costs: [(usize, usize); 4],
}

impl<'b> Reader<'b> {
    /// A reader over `bytes` (its tables start after the dictionaries).
    pub(super) fn new(bytes: &'b [u8]) -> Self {
        Reader {
            rest: bytes,
            tables: Default::default(),
            base: None,
            results: 0,
            values: 0,
            parts: 0,
            text: 0,
            same_costs: [(0, 0); 4],
        }
    }

    /// The bytes not read yet.
    pub(super) fn rest(&self) -> &'b [u8] {
        self.rest
    }

    /// Continues after bytes consumed by another decoder.
    pub(super) fn set_rest(&mut self, rest: &'b [u8]) {
        self.rest = rest;
    }

    /// One raw byte.
    pub(super) fn byte(&mut self) -> Result<u8, CompactError> {
        let (&b, rest) = self.rest.split_first().ok_or(CompactError::Truncated)?;
        self.rest = rest;
        Ok(b)
    }

    /// An unsigned LEB128 varint of at most 128 bits.
    pub(super) fn varint(&mut self) -> Result<u128, CompactError> {
        let mut value: u128 = 0;
        for shift in (0..128).step_by(7) {
            let b = self.byte()?;
            value |= u128::from(b & 0x7f)
                .checked_shl(shift)
                .ok_or(CompactError::Overflow)?;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CompactError::Overflow)
    }

    /// A varint of presence bits of which only the low `known` may be set
    /// (a set bit past them is a field this schema does not know).
    pub(super) fn presence(&mut self, known: u32, what: &'static str) -> Result<u64, CompactError> {
        let v = self.varint()?;
        if v >> known != 0 {
            return Err(CompactError::BadTag {
                what,
                tag: u64::try_from(v).unwrap_or(u64::MAX),
            });
        }
        u64::try_from(v).map_err(|_| CompactError::Overflow)
    }

    /// A count of items of a list without a limit of its own (names,
    /// addresses, people, comments, specimens, codes, ...), each at least
    /// one byte long: never more than the bytes left, and counted with the
    /// other such lists against [`limits::MAX_PARTS`].
    pub(super) fn len(&mut self) -> Result<usize, CompactError> {
        let n = self.count(limits::MAX_PARTS, "list items")?;
        self.parts = self.parts.saturating_add(n);
        limits::within(self.parts, limits::MAX_PARTS, "list items")?;
        Ok(n)
    }

    /// A count of items within `limit`, each at least one byte long: never
    /// more than the bytes left.
    pub(super) fn count(
        &mut self,
        limit: usize,
        what: &'static str,
    ) -> Result<usize, CompactError> {
        let n = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        limits::within(n, limit, what)?;
        if n > self.rest.len() {
            return Err(CompactError::Truncated);
        }
        Ok(n)
    }

    /// The text bytes and list items produced so far: the difference over
    /// a part is what copying that part costs.
    pub(super) fn cost(&self) -> (usize, usize) {
        (self.text, self.parts)
    }

    /// Counts `cost` again, for a part copied instead of read, against
    /// the limits.
    pub(super) fn add_cost(&mut self, cost: (usize, usize)) -> Result<(), CompactError> {
        self.parts = self.parts.saturating_add(cost.1);
        limits::within(self.parts, limits::MAX_PARTS, "list items")?;
        self.text = self.text.saturating_add(cost.0);
        Ok(limits::within(
            self.text,
            limits::MAX_TEXT_BYTES,
            "bytes of text",
        )?)
    }

    /// Counts `n` more results against [`limits::MAX_OBSERVATIONS`].
    pub(super) fn add_results(&mut self, n: usize) -> Result<(), CompactError> {
        self.results = self.results.saturating_add(n);
        Ok(limits::within(
            self.results,
            limits::MAX_OBSERVATIONS,
            "results",
        )?)
    }

    /// Counts `n` more listed values against [`limits::MAX_VALUES`].
    pub(super) fn add_values(&mut self, n: usize) -> Result<(), CompactError> {
        self.values = self.values.saturating_add(n);
        Ok(limits::within(
            self.values,
            limits::MAX_VALUES,
            "flags, equipment ids and series numbers",
        )?)
    }

    /// Counts a produced string (one copied rather than read) against
    /// [`limits::MAX_TEXT_BYTES`].
    pub(super) fn add_text(&mut self, s: Option<&str>) -> Result<(), CompactError> {
        self.text = self.text.saturating_add(s.map_or(0, str::len));
        if self.text > limits::MAX_TEXT_BYTES {
            return Err(LimitError {
                what: "bytes of text",
                limit: limits::MAX_TEXT_BYTES,
            }
            .into());
        }
        Ok(())
    }

    /// What [`super::writer::Writer::str`] wrote.
    pub(super) fn str(&mut self, pool: Pool) -> Result<Option<CompactString>, CompactError> {
        let s = self.str_uncounted(pool)?;
        self.add_text(s.as_deref())?;
        Ok(s)
    }

    fn str_uncounted(&mut self, pool: Pool) -> Result<Option<CompactString>, CompactError> {
        let v = self.varint()?;
        if v == 0 {
            return Ok(None);
        }
        let (form_bits, forms) = if pool == Pool::Text { (2, 4) } else { (1, 2) };
        let table = &mut self.tables[pool as usize];
        if v % forms == 1 {
            let index = usize::try_from(v / forms).map_err(|_| CompactError::Overflow)?;
            let dict = dictionary(pool);
            let found = match index.checked_sub(dict.len()) {
                None => dict.get(index).map(|s| CompactString::from(*s)),
                Some(i) => table.get(i).map(|s| CompactString::from(s.as_ref())),
            };
            return found.map(Some).ok_or(CompactError::BadStringIndex(index));
        }
        if v % forms == 3 {
            let s = super::number_text(v >> form_bits)?;
            let out = CompactString::from(s.as_str());
            table.push(Cow::Owned(s));
            return Ok(Some(out));
        }
        // A new string: `forms·(len+1)`. Anything else left (in the text
        // pool, `4·n+2`) is no form at all.
        if v % forms != 0 {
            return Err(CompactError::BadTag {
                what: "string",
                tag: u64::try_from(v).unwrap_or(u64::MAX),
            });
        }
        let len = usize::try_from((v >> form_bits) - 1).map_err(|_| CompactError::Overflow)?;
        if len > self.rest.len() {
            return Err(CompactError::Truncated);
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        let s = std::str::from_utf8(bytes).map_err(|_| CompactError::NotUtf8)?;
        table.push(Cow::Borrowed(s));
        Ok(Some(CompactString::from(s)))
    }

    /// A string that must be there.
    pub(super) fn req_str(&mut self, pool: Pool) -> Result<CompactString, CompactError> {
        self.str(pool)?.ok_or(CompactError::Missing("string"))
    }

    /// What [`super::writer::Writer::decimal`] wrote.
    pub(super) fn decimal(&mut self) -> Result<Decimal, CompactError> {
        let v = self.varint()?;
        let small = (v & 7) as u8;
        let scale = if small == 7 { self.byte()? } else { small };
        let mantissa = i64::try_from(unzigzag(v >> 3)).map_err(|_| CompactError::Overflow)?;
        Ok(Decimal { mantissa, scale })
    }

    /// An optional timestamp (a zero byte is none).
    pub(super) fn opt_timestamp(
        &mut self,
        base: Option<&Timestamp>,
    ) -> Result<Option<Timestamp>, CompactError> {
        let tag = self.byte()?;
        if tag == 0 {
            return Ok(None);
        }
        self.timestamp_after(tag, base).map(Some)
    }

    /// A timestamp that must be there.
    pub(super) fn timestamp(
        &mut self,
        base: Option<&Timestamp>,
    ) -> Result<Timestamp, CompactError> {
        self.opt_timestamp(base)?
            .ok_or(CompactError::Missing("timestamp"))
    }

    fn timestamp_after(
        &mut self,
        tag: u8,
        base: Option<&Timestamp>,
    ) -> Result<Timestamp, CompactError> {
        let index = (tag & super::TS_PRECISION)
            .checked_sub(1)
            .ok_or(CompactError::BadTag {
                what: "timestamp",
                tag: u64::from(tag),
            })?;
        let precision = precision_from(index)?;
        let value = unzigzag(self.varint()?);
        let offset_minutes = if tag & super::TS_OFFSET != 0 {
            let v = self.varint()?;
            let m = unzigzag(v >> 1);
            let m = if v & 1 == 0 {
                m.checked_mul(15)
            } else {
                Some(m)
            };
            m.and_then(|m| i16::try_from(m).ok())
                .ok_or(CompactError::Overflow)?
        } else {
            0
        };
        let code = usize::from(tag & super::TS_UNIT_LOW != 0)
            | usize::from(tag & super::TS_UNIT_HIGH != 0) << 1;
        let unit = super::TS_UNITS
            .get(code)
            .copied()
            .flatten()
            .unwrap_or_else(|| units_of(precision));
        let origin = if tag & super::TS_RELATIVE != 0 {
            let base = base.ok_or(CompactError::Missing("base time"))?;
            super::writer::local_ms(base)
        } else {
            0
        };
        let local = value
            .checked_mul(unit)
            .and_then(|v| v.checked_add(origin))
            .ok_or(CompactError::Overflow)?;
        let utc = local
            .checked_sub(i128::from(offset_minutes) * 60_000)
            .ok_or(CompactError::Overflow)?;
        Ok(Timestamp {
            utc_ms: i64::try_from(utc).map_err(|_| CompactError::Overflow)?,
            precision,
            offset_minutes,
            zone_assumed: tag & super::TS_ZONE_ASSUMED != 0,
        })
    }
}
