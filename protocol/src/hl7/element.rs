//! Fields, repetitions, components and sub-components of a segment.
//!
//! An [`Element`] is a borrowed slice of the message plus the level it sits
//! at; asking it for a lower level splits the slice on the matching
//! delimiter. Asking a field for a component reads its first repetition, and
//! asking a component for its sub-component 1 when it has none gives the
//! component itself, so normalizers can read `PID-3.1` without caring how
//! deep a sender nested its data.

use std::borrow::Cow;

use crate::hl7::charset::{self, Encoding};
use crate::hl7::delimiters::Delimiters;
use crate::hl7::escape;
use crate::hl7::message::split_nth;
use crate::hl7::scan;

/// What an element needs to split and decode itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) delims: Delimiters,
    pub(crate) encoding: Encoding,
    /// The whole message as text when it is read as UTF-8 (else empty):
    /// every element is a slice of it, so an element's text is found by
    /// position instead of being validated again.
    pub(crate) text: &'a str,
    /// True when no escape character follows MSH-2 anywhere in the
    /// message, so no element needs unescaping.
    pub(crate) unescaped: bool,
}

impl<'a> Ctx<'a> {
    /// `raw` as text, when it lies within [`Ctx::text`]: a constant-time
    /// slice, not a UTF-8 check. Elements split on ASCII delimiters always
    /// start and end on character boundaries of a valid UTF-8 message.
    pub(crate) fn borrowed_text(&self, raw: &[u8]) -> Option<&'a str> {
        let offset = (raw.as_ptr() as usize).checked_sub(self.text.as_ptr() as usize)?;
        self.text.get(offset..offset.checked_add(raw.len())?)
    }
}

/// Where an element sits in the HL7 hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A whole field, all repetitions.
    Field,
    /// One repetition of a field.
    Repetition,
    /// One component.
    Component,
    /// One sub-component.
    Subcomponent,
    /// Text that is never split or unescaped (MSH-1, MSH-2).
    Literal,
}

/// A borrowed piece of a message at some level.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    raw: &'a [u8],
    ctx: Ctx<'a>,
    level: Level,
}

impl<'a> Element<'a> {
    pub(crate) fn new(raw: &'a [u8], ctx: Ctx<'a>, level: Level) -> Self {
        Element { raw, ctx, level }
    }

    /// The undecoded bytes, escapes and inner delimiters included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The level of this element.
    pub fn level(&self) -> Level {
        self.level
    }

    /// True when nothing was sent here.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// True for HL7's explicit null `""` ("delete this value").
    pub fn is_null(&self) -> bool {
        self.raw == b"\"\""
    }

    /// The text with escapes resolved and the message's charset decoded.
    pub fn text(&self) -> Cow<'a, str> {
        if let Some(text) = self.plain_text() {
            return Cow::Borrowed(text);
        }
        match self.level {
            Level::Literal => charset::decode(self.raw, self.ctx.encoding),
            _ => escape::unescape(self.raw, &self.ctx.delims, self.ctx.encoding),
        }
    }

    /// The text when it is the element's bytes as they are (a UTF-8
    /// message, nothing to unescape): a slice of the message, no copy.
    pub(crate) fn plain_text(&self) -> Option<&'a str> {
        let text = self.ctx.borrowed_text(self.raw)?;
        let escaped = match (self.level, self.ctx.delims.escape) {
            (Level::Literal, _) | (_, None) => false,
            _ if self.ctx.unescaped => false,
            (_, Some(esc)) => contains(self.raw, esc),
        };
        (!escaped).then_some(text)
    }

    /// The text, or `None` when empty or an explicit null.
    pub fn value(&self) -> Option<Cow<'a, str>> {
        if self.is_empty() || self.is_null() {
            None
        } else {
            Some(self.text())
        }
    }

    /// Repetition `n` (1-based) of a field; a lower level has only itself.
    pub fn repetition(&self, n: usize) -> Option<Element<'a>> {
        match self.level {
            Level::Field if n == 1 => {
                Some(self.first(self.ctx.delims.repetition, Level::Repetition))
            }
            Level::Field => self.split(self.ctx.delims.repetition, n, Level::Repetition),
            _ => self.only(n),
        }
    }

    /// All repetitions of a field (one for a field without repetitions;
    /// none for an empty field).
    pub fn repetitions(&self) -> impl Iterator<Item = Element<'a>> + '_ {
        // A lower level is its only repetition.
        let (sep, level) = match self.level {
            Level::Field => (Some(self.ctx.delims.repetition), Level::Repetition),
            other => (None, other),
        };
        Repetitions {
            rest: (!self.raw.is_empty()).then_some(self.raw),
            sep,
            ctx: self.ctx,
            level,
        }
    }

    /// Component `n` (1-based). A field reads its first repetition.
    pub fn component(&self, n: usize) -> Option<Element<'a>> {
        match self.level {
            // The first component of the first repetition ends at the
            // first component or repetition separator: one pass.
            Level::Field if n == 1 => {
                let d = &self.ctx.delims;
                let end = position2(self.raw, d.component, d.repetition).unwrap_or(self.raw.len());
                Some(Element::new(
                    self.raw.get(..end)?,
                    self.ctx,
                    Level::Component,
                ))
            }
            Level::Field => self.repetition(1)?.component(n),
            Level::Repetition if n == 1 => {
                Some(self.first(self.ctx.delims.component, Level::Component))
            }
            Level::Repetition => self.split(self.ctx.delims.component, n, Level::Component),
            Level::Component | Level::Subcomponent | Level::Literal => self.only(n),
        }
    }

    /// Number of components in this element (of its first repetition).
    pub fn component_count(&self) -> usize {
        match self.level {
            Level::Field => self.repetition(1).map_or(0, |r| r.component_count()),
            Level::Repetition => {
                memchr::memchr_iter(self.ctx.delims.component, self.raw).count() + 1
            }
            _ => 1,
        }
    }

    /// All components of a repetition, in one pass: exactly what
    /// `component(1..=component_count())` gives (a field reads its first
    /// repetition; a lower level is its only component). Reading them by
    /// number instead splits from the start each time, quadratic in the
    /// number of components.
    pub fn components(&self) -> impl Iterator<Item = Element<'a>> + '_ {
        let (raw, sep, level) = match self.level {
            Level::Field => {
                let d = &self.ctx.delims;
                let end = position(self.raw, d.repetition).unwrap_or(self.raw.len());
                let first = self.raw.get(..end).unwrap_or(self.raw);
                (first, Some(d.component), Level::Component)
            }
            Level::Repetition => (self.raw, Some(self.ctx.delims.component), Level::Component),
            other => (self.raw, None, other),
        };
        Repetitions {
            rest: Some(raw),
            sep,
            ctx: self.ctx,
            level,
        }
    }

    /// Sub-component `n` (1-based). Higher levels read their first component.
    pub fn subcomponent(&self, n: usize) -> Option<Element<'a>> {
        match (self.level, self.ctx.delims.subcomponent) {
            (Level::Field | Level::Repetition, _) => self.component(1)?.subcomponent(n),
            (Level::Component, Some(sep)) => self.split(sep, n, Level::Subcomponent),
            _ => self.only(n),
        }
    }

    fn split(&self, sep: u8, n: usize, level: Level) -> Option<Element<'a>> {
        let index = n.checked_sub(1)?;
        let raw = split_nth(self.raw, sep, index)?;
        Some(Element::new(raw, self.ctx, level))
    }

    /// The first piece before `sep` (all of it without one): what
    /// `split(sep, 1, level)` gives, found with one short search.
    fn first(&self, sep: u8, level: Level) -> Element<'a> {
        let end = position(self.raw, sep).unwrap_or(self.raw.len());
        let raw = self.raw.get(..end).unwrap_or(self.raw);
        Element::new(raw, self.ctx, level)
    }

    fn only(&self, n: usize) -> Option<Element<'a>> {
        (n == 1).then_some(*self)
    }
}

/// The pieces of an element between separators, in one pass: what
/// `<[u8]>::split` gives, without testing every byte through a closure.
struct Repetitions<'a> {
    /// What is left to split; `None` when done.
    rest: Option<&'a [u8]>,
    /// The separator; `None` gives the whole element as one piece.
    sep: Option<u8>,
    ctx: Ctx<'a>,
    level: Level,
}

impl<'a> Iterator for Repetitions<'a> {
    type Item = Element<'a>;

    fn next(&mut self) -> Option<Element<'a>> {
        let raw = self.rest?;
        let at = self.sep.and_then(|sep| position(raw, sep));
        let piece = match at {
            Some(i) => {
                self.rest = raw.get(i + 1..);
                raw.get(..i)?
            }
            None => {
                self.rest = None;
                raw
            }
        };
        Some(Element::new(piece, self.ctx, self.level))
    }
}

/// The first position of `byte` in `raw`.
fn position(raw: &[u8], byte: u8) -> Option<usize> {
    scan::first_of(raw, byte, byte)
}

/// The first position of `a` or `b` in `raw`.
fn position2(raw: &[u8], a: u8, b: u8) -> Option<usize> {
    scan::first_of(raw, a, b)
}

/// True when `byte` occurs in `raw`; a plain loop for the short pieces most
/// elements are, where setting up a vectorized search costs more.
fn contains(raw: &[u8], byte: u8) -> bool {
    if raw.len() < 32 {
        raw.contains(&byte)
    } else {
        memchr::memchr(byte, raw).is_some()
    }
}

/// `str::trim`, without its Unicode scan for the usual value that starts
/// and ends with a visible ASCII character (which is not whitespace).
pub(crate) fn trim(value: &str) -> &str {
    match value.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => value,
        [only] if only.is_ascii_graphic() => value,
        _ => value.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::Level;
    use crate::hl7::Message;
    use crate::hl7::message::split_nth;

    #[test]
    fn components_are_what_reading_each_component_by_number_gives() {
        let m = Message::parse(b"MSH|^~\\&|A\rOBX|1|NA|c||1^^2^3^~x^y|||^|").unwrap();
        let obx = m.segment("OBX").unwrap();
        for n in 1..=9 {
            let Some(field) = obx.field(n) else { continue };
            let mut elements = vec![field];
            elements.extend(field.repetitions());
            elements.extend(field.repetitions().flat_map(|r| r.component(1)));
            for e in elements {
                let by_number: Vec<&[u8]> = (1..=e.component_count().max(1))
                    .filter_map(|i| e.component(i))
                    .map(|c| c.raw())
                    .collect();
                let in_one_pass: Vec<&[u8]> = e.components().map(|c| c.raw()).collect();
                assert_eq!(in_one_pass, by_number, "OBX-{n} at {:?}", e.level());
            }
        }
    }

    #[test]
    fn a_field_splits_into_repetitions_components_and_subcomponents() {
        let m = Message::parse(b"MSH|^~\\&|A\rPID|1||a1^^^AUTH&1.2.3&ISO^MR~b2^^^X").unwrap();
        let f = m.segment("PID").unwrap().field(3).unwrap();
        assert_eq!(f.repetitions().count(), 2);
        assert_eq!(f.component(1).unwrap().text(), "a1");
        assert_eq!(
            f.component(4).unwrap().subcomponent(2).unwrap().text(),
            "1.2.3"
        );
        assert_eq!(
            f.component(4).unwrap().subcomponent(1).unwrap().text(),
            "AUTH"
        );
        assert_eq!(f.repetition(2).unwrap().component(4).unwrap().text(), "X");
        assert_eq!(f.component_count(), 5);
        assert!(f.component(6).is_none());
        assert!(f.repetition(0).is_none());
    }

    #[test]
    fn lower_levels_answer_for_themselves_at_index_one() {
        let m = Message::parse(b"MSH|^~\\&|A\rOBX|1|NM|code").unwrap();
        let c = m
            .segment("OBX")
            .unwrap()
            .field(3)
            .unwrap()
            .component(1)
            .unwrap();
        assert_eq!(c.subcomponent(1).unwrap().text(), "code");
        assert!(c.subcomponent(2).is_none());
        assert_eq!(c.component(1).unwrap().text(), "code");
    }

    #[test]
    fn repetitions_are_the_pieces_between_separators() {
        let m = Message::parse(b"MSH|^~\\&|A\rOBX|1|a~~b~|c|~|x^y~z").unwrap();
        let obx = m.segment("OBX").unwrap();
        let raws = |n: usize| -> Vec<&[u8]> {
            obx.field(n)
                .unwrap()
                .repetitions()
                .map(|r| r.raw())
                .collect()
        };
        assert_eq!(raws(2), [&b"a"[..], b"", b"b", b""]);
        assert_eq!(raws(3), [&b"c"[..]]);
        assert_eq!(raws(4), [&b""[..], b""]);
        assert_eq!(raws(5), [&b"x^y"[..], b"z"]);
        let component = obx.field(5).unwrap().component(1).unwrap();
        assert_eq!(component.repetitions().count(), 1);
    }

    #[test]
    fn the_first_component_of_a_field_is_that_of_its_first_repetition() {
        let m = Message::parse(b"MSH|^~\\&|A\rOBX|1|a^b~c|d~e^f|g|~x|^y||h&i^j").unwrap();
        let obx = m.segment("OBX").unwrap();
        for n in 1..=8 {
            let field = obx.field(n).unwrap();
            let ours = field.component(1).map(|c| (c.raw(), c.level()));
            let long_way = field
                .repetition(1)
                .and_then(|r| r.component(1))
                .map(|c| (c.raw(), c.level()));
            assert_eq!(ours, long_way, "OBX-{n}");
        }
        for n in 1..=8 {
            let field = obx.field(n).unwrap();
            let first = field.repetition(1).unwrap();
            assert_eq!(
                (first.raw(), first.level()),
                (split_nth(field.raw(), b'~', 0).unwrap(), Level::Repetition)
            );
            let component = first.component(1).unwrap();
            assert_eq!(component.raw(), split_nth(first.raw(), b'^', 0).unwrap());
        }
        let first = obx.field(2).unwrap().component(1).unwrap();
        assert_eq!(first.raw(), b"a");
    }

    #[test]
    fn empty_fields_have_no_repetitions() {
        let m = Message::parse(b"MSH|^~\\&|A\rPID|1||").unwrap();
        let f = m.segment("PID").unwrap().field(3).unwrap();
        assert_eq!(f.repetitions().count(), 0);
        assert!(f.value().is_none());
    }

    #[test]
    fn utf8_text_is_borrowed_unless_it_has_escapes() {
        use std::borrow::Cow;
        let m = Message::parse("MSH|^~\\&|A\rPID|1||Müller^Zoë|a\\S\\b".as_bytes()).unwrap();
        let pid = m.segment("PID").unwrap();
        let name = pid.field(3).unwrap();
        assert!(matches!(
            name.component(2).unwrap().text(),
            Cow::Borrowed("Zoë")
        ));
        assert!(matches!(name.text(), Cow::Borrowed("Müller^Zoë")));
        let escaped = pid.field(4).unwrap().text();
        assert!(matches!(escaped, Cow::Owned(ref s) if s == "a^b"));
    }
}
