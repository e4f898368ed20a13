//! Segments and composite values split once, for readers that visit many of
//! their parts.
//!
//! `Segment::field(n)` and `Element::component(n)` find their piece by
//! scanning from the start on every call, which is right for a single
//! lookup. Validation and normalization read a dozen fields of every OBX
//! and up to six components of every coded value, so every segment is
//! split into fields once, when the message is parsed (both of them read
//! that index here), and each composite once here, in one pass over its
//! bytes; they get the same [`Element`]s the parser gives, in constant time.
//!
//! Invariant: `Fields::field(n)` and `Parts::part(n)` return exactly what
//! `Segment::field(n)` and `Element::component(n)` return (MSH-1, MSH-2,
//! segments without an index, fields past the index and parts past the
//! split limit are delegated to them).

use crate::hl7::element::Ctx;
use crate::hl7::scan;
use crate::hl7::{Element, Level, Message, Segment};

/// The segments whose fields are indexed: those validation and
/// normalization read field by field. Any other segment's fields are found
/// by scanning, on each call. Segments with long tails nobody here reads
/// are indexed only up to the highest field read (`Some(n)`); fields past
/// it are found by scanning too. The others are indexed whole (`None`).
const INDEXED: [(&[u8; 3], Option<usize>); 16] = [
    (b"MSH", None),
    (b"PID", None),
    (b"PV1", None),
    (b"EVN", None),
    (b"MRG", None),
    (b"ORC", None),
    (b"OBR", None),
    (b"OBX", None),
    (b"RXA", None),
    (b"RXR", None),
    (b"RXO", Some(4)),
    (b"TQ1", None),
    (b"SPM", None),
    (b"NTE", None),
    (b"NK1", Some(13)),
    (b"SFT", None),
];

/// How many segment ids are indexed.
pub(crate) const INDEXED_IDS: usize = INDEXED.len();

/// The position in the indexed ids of the segment `bytes` (field
/// separator `sep`) when its id (`Segment::id_bytes`) is one of them, and
/// how far to index it: `None` for a segment without fields (its id and
/// nothing else), `Some(None)` for every field, `Some(Some(n))` up to
/// field `n`.
pub(crate) fn indexed_id(bytes: &[u8], sep: u8) -> Option<(usize, Option<Option<usize>>)> {
    let (id, limit) = match bytes {
        [a, b, c] => ([*a, *b, *c], None),
        [a, b, c, d, ..] if *d == sep => ([*a, *b, *c], Some(())),
        _ => return None,
    };
    let position = INDEXED.iter().position(|(known, _)| **known == id)?;
    let (_, fields) = INDEXED.get(position)?;
    Some((position, limit.map(|()| *fields)))
}

/// The position of `id` in the indexed ids, if it is one.
pub(crate) fn indexed_position(id: &str) -> Option<usize> {
    INDEXED
        .iter()
        .position(|(known, _)| known.as_slice() == id.as_bytes())
}

/// Components split in one pass (CWE has 6 that are read; XCN, CX fewer).
const MAX_PARTS: usize = 9;

/// One segment with the byte ranges of its fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    segment: Segment<'a>,
    ctx: Ctx<'a>,
    /// MSH, BHS or FHS, whose first fields the parser numbers specially.
    is_header: bool,
    /// `ends[i]` is the end of piece `i` (piece 0 is the segment id), as
    /// [`Message::parse`] indexed it; empty when there is no index (every
    /// field is then looked up by the parser).
    ends: &'a [u32],
}

impl<'a> Fields<'a> {
    /// The fields of `segment`, one of `msg`'s segments (split once, when
    /// the message was parsed).
    pub(crate) fn new(msg: &'a Message<'_>, segment: Segment<'a>) -> Self {
        Fields {
            segment,
            ctx: segment.ctx(),
            is_header: segment.is_header(),
            ends: msg.field_ends(&segment),
        }
    }

    /// The segment.
    pub(crate) fn segment(&self) -> Segment<'a> {
        self.segment
    }

    /// Field `n` (1-based), as `Segment::field(n)` gives it.
    pub(crate) fn field(&self, n: usize) -> Option<Element<'a>> {
        field_of(self.segment, self.is_header, self.ends, n)
    }

    /// True when `element` holds more than one repetition or component.
    pub(crate) fn is_composite(&self, element: Element<'a>) -> bool {
        let d = &self.ctx.delims;
        element
            .raw()
            .iter()
            .any(|&b| b == d.component || b == d.repetition)
    }

    /// The components of `element` (a field's first repetition), split once.
    pub(crate) fn parts(&self, element: Option<Element<'a>>) -> Parts<'a> {
        Parts::split(self.ctx, element)
    }
}

/// Field `n` of `segment` (its field index `ends`, empty for none, and
/// whether it is a header segment given), as `Segment::field(n)` gives it.
pub(crate) fn field_of<'a>(
    segment: Segment<'a>,
    is_header: bool,
    ends: &[u32],
    n: usize,
) -> Option<Element<'a>> {
    // In MSH, MSH-1 is the separator itself: MSH-n is piece n - 1.
    let piece = match (is_header, n) {
        (_, 0) => return None,
        (true, 1 | 2) => return segment.field(n),
        (true, n) => n - 1,
        (false, n) => n,
    };
    let Some(&end) = ends.get(piece) else {
        return match ends {
            // A complete index ends with the segment's end: there is no
            // such field.
            [.., last] if *last as usize == segment.raw().len() => None,
            // No index, or one that stops short of this field.
            _ => segment.field(n),
        };
    };
    let start = *ends.get(piece - 1)? as usize + 1;
    let raw = segment.raw().get(start..end as usize)?;
    Some(Element::new(raw, segment.ctx(), Level::Field))
}

/// The components of one field repetition (or of one component, whose
/// parts are then its sub-components).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    element: Option<Element<'a>>,
    ctx: Ctx<'a>,
    /// The level the parts are at.
    level: Level,
    /// Byte ranges `(start, end)` of the first parts within `raw`.
    ranges: [(u32, u32); MAX_PARTS],
    count: usize,
    raw: &'a [u8],
}

impl<'a> Parts<'a> {
    /// Splits a field (its first repetition), a repetition or a component.
    ///
    /// Kept out of line: inlined into [`Fields::parts`], it made that too
    /// large to inline into its many callers (measured: about 0.4 % more
    /// instructions per ORU^R01).
    #[inline(never)]
    fn split(ctx: Ctx<'a>, element: Option<Element<'a>>) -> Self {
        let element = element.and_then(|e| match e.level() {
            Level::Field => e.repetition(1),
            _ => Some(e),
        });
        let (sep, level) = match element.map(|e| e.level()) {
            Some(Level::Repetition) => (Some(ctx.delims.component), Level::Component),
            Some(Level::Component) => (ctx.delims.subcomponent, Level::Subcomponent),
            _ => (None, Level::Subcomponent),
        };
        let raw = element.map(|e| e.raw()).unwrap_or_default();
        let mut parts = Parts {
            element,
            ctx,
            level,
            ranges: [(0, 0); MAX_PARTS],
            count: 0,
            raw,
        };
        let Some(sep) = sep else {
            parts.level = element.map_or(level, |e| e.level());
            parts.ranges[0] = (0, u32::try_from(raw.len()).unwrap_or(u32::MAX));
            parts.count = usize::from(element.is_some());
            return parts;
        };
        let mut start = 0;
        let complete = scan::each(raw, sep, |i| {
            let room = parts.push(start, i);
            start = i + 1;
            room
        });
        if complete {
            parts.push(start, raw.len());
        }
        parts
    }

    fn push(&mut self, start: usize, end: usize) -> bool {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        match self.ranges.get_mut(self.count) {
            Some(slot) => {
                *slot = (clamp(start), clamp(end));
                self.count += 1;
                true
            }
            None => false,
        }
    }

    /// Part `n` (1-based), as `Element::component(n)` (or `subcomponent(n)`
    /// for a component) gives it.
    pub(crate) fn part(&self, n: usize) -> Option<Element<'a>> {
        let element = self.element?;
        if n == 0 || n > MAX_PARTS {
            return match self.level {
                Level::Component => element.component(n),
                _ => element.subcomponent(n),
            };
        }
        let (start, end) = *self.ranges.get(n - 1).filter(|_| n <= self.count)?;
        let raw = self.raw.get(start as usize..end as usize)?;
        Some(Element::new(raw, self.ctx, self.level))
    }

    /// The element these parts were split from.
    pub(crate) fn element(&self) -> Option<Element<'a>> {
        self.element
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::Message;

    const TEXT: &[u8] =
        b"MSH|^~\\&|A|B|C|D||x^y\rOBX|1|CWE|c1^d1^L^c2^d2^LN|x&y^z||\"\"|a~b^c|\rZZZ|";

    #[test]
    fn fields_match_what_the_parser_gives() {
        let m = Message::parse(TEXT).unwrap();
        for segment in m.segments() {
            let fields = Fields::new(&m, segment);
            for n in 0..12 {
                let (ours, theirs) = (fields.field(n), segment.field(n));
                assert_eq!(
                    ours.map(|e| (e.raw(), e.level())),
                    theirs.map(|e| (e.raw(), e.level())),
                    "{}-{n}",
                    segment.id()
                );
            }
        }
    }

    #[test]
    fn parts_match_components_and_subcomponents() {
        let m = Message::parse(TEXT).unwrap();
        let obx = m.segment("OBX").unwrap();
        let fields = Fields::new(&m, obx);
        for f in 1..10 {
            let field = fields.field(f);
            let parts = fields.parts(field);
            for n in 0..10 {
                assert_eq!(
                    parts.part(n).map(|e| (e.raw(), e.level())),
                    field
                        .and_then(|e| e.component(n))
                        .map(|e| (e.raw(), e.level())),
                    "OBX-{f}.{n}"
                );
            }
            let first = field.and_then(|e| e.component(1));
            let subs = fields.parts(first);
            for n in 0..4 {
                assert_eq!(
                    subs.part(n).map(|e| e.raw()),
                    first.and_then(|e| e.subcomponent(n)).map(|e| e.raw()),
                    "OBX-{f}.1.{n}"
                );
            }
        }
    }

    #[test]
    fn a_segment_of_another_message_is_split_by_scanning_not_by_this_index() {
        let ours = Message::parse(b"MSH|^~\\&|A\rOBX|1|NM|x").unwrap();
        let theirs = Message::parse(b"MSH|^~\\&|A\rOBX|2|ST|y|z").unwrap();
        let obx = theirs.segment("OBX").unwrap();
        let fields = Fields::new(&ours, obx);
        for n in 1..6 {
            assert_eq!(
                fields.field(n).map(|e| e.raw()),
                obx.field(n).map(|e| e.raw()),
                "OBX-{n}"
            );
        }
    }

    #[test]
    fn fields_past_a_segments_index_are_found_by_scanning() {
        let pid = |fields: usize| {
            let mut text = b"MSH|^~\\&|A\rPID".to_vec();
            for n in 1..=fields {
                text.extend_from_slice(format!("|p{n}").as_bytes());
            }
            text
        };
        // Fewer, exactly as many, one more and many more fields than PID's
        // index holds, with and without a trailing separator.
        for count in [3, 8, 9, 10, 30] {
            for trailing in [false, true] {
                let mut text = pid(count);
                if trailing {
                    text.push(b'|');
                }
                let m = Message::parse(&text).unwrap();
                let segment = m.segment("PID").unwrap();
                let fields = Fields::new(&m, segment);
                for n in 0..=count + 3 {
                    assert_eq!(
                        fields.field(n).map(|e| e.raw()),
                        segment.field(n).map(|e| e.raw()),
                        "PID-{n} of {count} (trailing {trailing})"
                    );
                }
            }
        }
    }

    #[test]
    fn fields_past_the_split_limit_are_still_found() {
        let mut text = b"MSH|^~\\&|A\rPV1".to_vec();
        for n in 1..=60 {
            text.extend_from_slice(format!("|f{n}").as_bytes());
        }
        let m = Message::parse(&text).unwrap();
        let pv1 = m.segment("PV1").unwrap();
        let fields = Fields::new(&m, pv1);
        for n in [1, 44, 47, 48, 49, 60] {
            assert_eq!(fields.field(n).unwrap().text(), format!("f{n}"));
        }
        assert!(fields.field(61).is_none());
    }
}
