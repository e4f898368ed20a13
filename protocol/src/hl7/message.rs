//! The structural HL7 v2 parser: a zero-copy index over one message.
//!
//! `Message::parse` does the least work that makes every later access cheap:
//! it strips a UTF-8 BOM, reads the delimiters from MSH, chooses the text
//! decoding from MSH-18, and records where each segment starts and ends
//! (segments end at CR or CRLF, and at LF too when MSH ends with a bare LF;
//! blank lines are skipped), and where
//! each field of the segments validation and normalization read ends (the
//! field index `hl7::fields` reads, built once for both). Other fields,
//! repetitions, components and sub-components are split on access by
//! scanning the few bytes of that segment (eight at a time, see
//! `hl7::scan`), and text is unescaped and transcoded only when asked
//! for, borrowing from the input whenever the bytes need no change: for a
//! UTF-8 message the text of an element is a slice of the message's text,
//! checked once here, and unescaping is skipped outright when no escape
//! character follows MSH-2.

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::hl7::charset::{self, DeclaredCharset, Encoding};
use crate::hl7::delimiters::Delimiters;
use crate::hl7::element::{Ctx, Element, Level};
use crate::hl7::error::{ParseError, PathError};
use crate::hl7::message_type::MessageKind;
pub use crate::hl7::message_type::MessageType;
use crate::hl7::path::Path;
use crate::hl7::{fields, scan};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A parsed HL7 v2 message borrowing from its input bytes.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    raw: &'a [u8],
    ctx: Ctx<'a>,
    declared: DeclaredCharset,
    charset_mismatch: Option<usize>,
    segments: Vec<Span>,
    /// The field index, built on first use ([`Message::field_ends`]): a
    /// plain parse does not pay for it, validation and normalization share
    /// it.
    field_index: OnceLock<FieldIndex<'a>>,
}

/// Byte range of one segment, without its terminator.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

/// What validation and normalization both read, found once, on first use:
/// every indexed segment's field ends, one segment after the other (the
/// end of each piece, segment id then every field, relative to the
/// segment's start), where the first segment of each indexed id is, and
/// MSH-9.
#[derive(Debug, Clone, Default)]
struct FieldIndex<'a> {
    ends: Vec<u32>,
    /// Index-aligned with [`Message::segments`]: `ends[from..to]` is that
    /// segment's index (empty for a segment that is not indexed).
    ranges: Vec<(u32, u32)>,
    /// Per indexed segment id (in `hl7::fields` order), the position of
    /// the first segment with that id.
    first: [Option<usize>; fields::INDEXED_IDS],
    /// MSH-9, read through the index.
    kind: MessageKind<'a>,
}

impl<'a> Message<'a> {
    /// Parses `input` as one HL7 v2 message.
    ///
    /// Fails only when the bytes cannot be read as HL7 at all: empty input,
    /// no MSH first, or unusable delimiters. Everything else (odd segments,
    /// missing fields, bad values) is for validation to judge.
    pub fn parse(input: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let raw = input.strip_prefix(BOM).unwrap_or(input);
        let start = raw
            .iter()
            .position(|&b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
            .ok_or(ParseError::Empty)?;
        if u32::try_from(raw.len()).is_err() {
            return Err(ParseError::TooLarge);
        }
        let body = raw.get(start..).unwrap_or_default();
        if !body.starts_with(b"MSH") {
            return Err(ParseError::NoMsh {
                found: body.iter().take(8).map(|&b| char::from(b)).collect(),
            });
        }
        let delims = Delimiters::from_msh(body)?;
        let segments = split_segments(raw, start);
        let mut msg = Message {
            raw,
            ctx: Ctx {
                delims,
                encoding: Encoding::Utf8,
                text: "",
                unescaped: has_no_escapes(body, &delims),
            },
            declared: DeclaredCharset::Absent,
            charset_mismatch: None,
            segments,
            field_index: OnceLock::new(),
        };
        let msh18 = msg
            .msh_field(18)
            .and_then(|f| f.repetition(1))
            .map(|r| r.raw())
            .unwrap_or_default();
        msg.declared = DeclaredCharset::from_msh18(msh18);
        let utf8 = std::str::from_utf8(raw).map_err(|e| e.valid_up_to());
        let choice = charset::choose_with(&msg.declared, raw, utf8);
        msg.ctx.encoding = choice.encoding;
        if let (Encoding::Utf8, Ok(text)) = (choice.encoding, utf8) {
            msg.ctx.text = text;
        }
        msg.charset_mismatch = choice.mismatch_at;
        Ok(msg)
    }

    /// The message bytes (without a leading BOM).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The delimiters declared in MSH-1/MSH-2.
    pub fn delimiters(&self) -> &Delimiters {
        &self.ctx.delims
    }

    /// How text in this message is decoded.
    pub fn encoding(&self) -> Encoding {
        self.ctx.encoding
    }

    /// What MSH-18 declared.
    pub fn declared_charset(&self) -> &DeclaredCharset {
        &self.declared
    }

    /// Byte offset of the first byte that contradicts MSH-18, if any.
    pub fn charset_mismatch(&self) -> Option<usize> {
        self.charset_mismatch
    }

    /// Number of segments (blank lines not counted).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The segment at `index` (0-based position in the message).
    pub fn segment_at(&self, index: usize) -> Option<Segment<'a>> {
        let span = self.segments.get(index)?;
        let bytes = self.raw.get(span.start as usize..span.end as usize)?;
        Some(Segment {
            bytes,
            ctx: self.ctx,
            index,
        })
    }

    /// The field index of `segment` (the end of each piece, relative to the
    /// segment's start), built for the whole message on the first call; an
    /// empty slice when `segment` is not one of this message's segments or
    /// is not indexed.
    pub(crate) fn field_ends(&self, segment: &Segment<'_>) -> &[u32] {
        self.ends_in(self.index(), segment)
    }

    /// The field index, built on the first call.
    fn index(&self) -> &FieldIndex<'a> {
        self.field_index.get_or_init(|| {
            let mut index = index_fields(self.raw, &self.segments, self.ctx.delims.field);
            let msh = self.msh();
            let msh9 = fields::field_of(msh, msh.is_header(), self.ends_in(&index, &msh), 9);
            index.kind = MessageKind::of(self.ctx, msh9);
            index
        })
    }

    /// `segment`'s part of `index`, if `segment` is this message's.
    fn ends_in<'i>(&self, index: &'i FieldIndex<'_>, segment: &Segment<'_>) -> &'i [u32] {
        let Some(span) = self.segments.get(segment.index) else {
            return &[];
        };
        let ours = self.raw.get(span.start as usize..span.end as usize);
        if ours.map(<[u8]>::as_ptr) != Some(segment.bytes.as_ptr())
            || ours.map(<[u8]>::len) != Some(segment.bytes.len())
        {
            return &[];
        }
        let Some(&(from, to)) = index.ranges.get(segment.index) else {
            return &[];
        };
        index
            .ends
            .get(from as usize..to as usize)
            .unwrap_or_default()
    }

    /// MSH-`n`: through the field index once validation or normalization
    /// built it, else by scanning MSH (header reads alone never build it).
    fn msh_field(&self, n: usize) -> Option<Element<'a>> {
        let msh = self.msh();
        let ends = self
            .field_index
            .get()
            .map_or(&[][..], |index| self.ends_in(index, &msh));
        fields::field_of(msh, msh.is_header(), ends, n)
    }

    /// All segments in order.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'a>> + '_ {
        let (raw, ctx) = (self.raw, self.ctx);
        self.segments
            .iter()
            .enumerate()
            .filter_map(move |(index, span)| {
                Some(Segment {
                    bytes: raw.get(span.start as usize..span.end as usize)?,
                    ctx,
                    index,
                })
            })
    }

    /// All segments with this id (e.g. every `OBX`), in order.
    pub fn segments_named<'s>(&'s self, id: &'s str) -> impl Iterator<Item = Segment<'a>> + 's {
        self.segments()
            .filter(move |s| s.id_bytes() == id.as_bytes())
    }

    /// The first segment with this id.
    pub fn segment(&self, id: &str) -> Option<Segment<'a>> {
        self.segments_named(id).next()
    }

    /// The first segment with this id, as [`Message::segment`] finds it;
    /// for the ids the field index covers (PID, PV1, OBR, ...) taken from
    /// the index (built on the first call) instead of a search.
    pub(crate) fn first_segment(&self, id: &str) -> Option<Segment<'a>> {
        match fields::indexed_position(id) {
            Some(position) => {
                let index = self.index().first.get(position).copied().flatten()?;
                self.segment_at(index)
            }
            None => self.segment(id),
        }
    }

    /// The MSH segment (always the first segment of a parsed message).
    pub fn msh(&self) -> Segment<'a> {
        self.segment_at(0).unwrap_or(Segment {
            bytes: b"MSH",
            ctx: self.ctx,
            index: 0,
        })
    }

    /// Looks up an element by HL7 path, e.g. `PID-3[2].4.1` or `OBX[3]-5`.
    pub fn get(&self, path: &str) -> Result<Option<Element<'a>>, PathError> {
        let path: Path = path.parse()?;
        Ok(self.query(&path))
    }

    /// Looks up an element by a parsed path.
    pub fn query(&self, path: &Path) -> Option<Element<'a>> {
        let segment = self
            .segments_named(&path.segment)
            .nth(path.segment_repetition.saturating_sub(1))?;
        path.select(segment)
    }

    /// Text of the element at `path`, or `None` when absent, empty or null.
    ///
    /// Panics never; an invalid path yields `None`.
    pub fn text(&self, path: &str) -> Option<Cow<'a, str>> {
        self.get(path).ok().flatten().and_then(|e| e.value())
    }

    /// MSH-10, the message control id.
    pub fn control_id(&self) -> Option<Cow<'a, str>> {
        self.msh_field(10).and_then(|f| f.value())
    }

    /// MSH-9 as message code, trigger event and message structure.
    pub fn message_type(&self) -> MessageType {
        // Not through the field index: header reads alone never build it.
        MessageKind::of(self.ctx, self.msh_field(9)).into_owned()
    }

    /// MSH-9 borrowed from the message (see [`MessageKind`]), read once
    /// with the field index.
    pub(crate) fn message_kind(&self) -> &MessageKind<'a> {
        &self.index().kind
    }

    /// MSH-12.1, the HL7 version id, e.g. `2.5.1`.
    pub fn version(&self) -> Option<Cow<'a, str>> {
        self.msh_field(12)
            .and_then(|f| f.component(1))
            .and_then(|c| c.value())
    }
}

/// True when no escape character occurs after MSH-2 (which holds it) in
/// `body`, the message from `MSH` on: one vectorized search per message
/// spares every element its own.
fn has_no_escapes(body: &[u8], delims: &Delimiters) -> bool {
    let Some(esc) = delims.escape else {
        return true;
    };
    let after_msh1 = body.get(4..).unwrap_or_default();
    let msh2_len = memchr::memchr(delims.field, after_msh1).unwrap_or(after_msh1.len());
    let rest = after_msh1.get(msh2_len..).unwrap_or_default();
    memchr::memchr(esc, rest).is_none()
}

/// Finds segment boundaries. CR ends a segment, as the standard says, and
/// an LF right after it belongs to that end (CRLF). An LF anywhere else
/// ends a segment only when MSH itself ends with a bare LF (a message saved
/// with Unix line ends); in a CR-terminated message it is content (a line
/// break inside a text field). Blank lines are skipped.
fn split_segments(raw: &[u8], start: usize) -> Vec<Span> {
    let body = raw.get(start..).unwrap_or_default();
    let lf_ends = memchr::memchr2(b'\r', b'\n', body).and_then(|i| body.get(i)) == Some(&b'\n');
    let mut spans = Vec::with_capacity(raw.len() / 64 + 1);
    let mut seg_start = start;
    let mut end_at = |end: usize| {
        let end = start + end;
        push_span(&mut spans, raw, seg_start, end);
        seg_start = end + 1;
    };
    if lf_ends {
        memchr::memchr2_iter(b'\r', b'\n', body).for_each(&mut end_at);
    } else {
        memchr::memchr_iter(b'\r', body).for_each(&mut end_at);
    }
    push_span(&mut spans, raw, seg_start, raw.len());
    spans
}

/// Splits every segment that validation and normalization read field by
/// field into fields, once for both (see [`crate::hl7::fields`]); other
/// segments (NTE, Z-segments, ...) are left unsplit.
fn index_fields(raw: &[u8], spans: &[Span], sep: u8) -> FieldIndex<'static> {
    let mut ends: Vec<u32> = Vec::with_capacity(raw.len() / 8 + spans.len());
    let mut ranges = Vec::with_capacity(spans.len());
    let mut first = [None; fields::INDEXED_IDS];
    for span in spans {
        let bytes = raw
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default();
        let Some((id, limit)) = fields::indexed_id(bytes, sep) else {
            ranges.push((0, 0));
            continue;
        };
        if let Some(slot) = first.get_mut(id) {
            slot.get_or_insert(ranges.len());
        }
        let Some(limit) = limit else {
            ranges.push((0, 0));
            continue;
        };
        let from = ends.len();
        // Positions fit: segment lengths were checked against u32::MAX.
        let complete = match limit {
            None => scan::each(bytes, sep, |i| {
                ends.push(i as u32);
                true
            }),
            // The end of field `n` is the separator after it: the index
            // stops there, short of the segment's end (how readers tell
            // it is not complete).
            Some(n) => {
                let mut wanted = n + 1;
                scan::each(bytes, sep, |i| {
                    ends.push(i as u32);
                    wanted -= 1;
                    wanted > 0
                })
            }
        };
        if complete {
            ends.push(bytes.len() as u32);
        }
        ranges.push(match (u32::try_from(from), u32::try_from(ends.len())) {
            (Ok(from), Ok(to)) => (from, to),
            _ => (0, 0),
        });
    }
    FieldIndex {
        ends,
        ranges,
        first,
        kind: MessageKind::default(),
    }
}

/// Records the segment `raw[start..end]`, without the LFs around it (those
/// of a CRLF, of blank lines, of a final line end), unless it is blank.
fn push_span(spans: &mut Vec<Span>, raw: &[u8], mut start: usize, mut end: usize) {
    while start < end && raw.get(start) == Some(&b'\n') {
        start += 1;
    }
    while end > start && raw.get(end - 1) == Some(&b'\n') {
        end -= 1;
    }
    if end <= start {
        return;
    }
    let bytes = raw.get(start..end).unwrap_or_default();
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return;
    }
    // Lengths were checked against u32::MAX in `parse`.
    spans.push(Span {
        start: start as u32,
        end: end as u32,
    });
}

/// One segment of a message.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    bytes: &'a [u8],
    ctx: Ctx<'a>,
    index: usize,
}

impl<'a> Segment<'a> {
    /// The segment's bytes without its terminator.
    pub fn raw(&self) -> &'a [u8] {
        self.bytes
    }

    /// 0-based position of this segment in the message.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The segment id bytes (everything before the first field separator).
    pub fn id_bytes(&self) -> &'a [u8] {
        // Nearly every segment id is three bytes: check that first.
        if self.bytes.get(3) == Some(&self.ctx.delims.field) {
            return self.bytes.get(..3).unwrap_or_default();
        }
        let end = memchr::memchr(self.ctx.delims.field, self.bytes).unwrap_or(self.bytes.len());
        self.bytes.get(..end).unwrap_or_default()
    }

    /// The segment id as text (`PID`), lossily decoded if it is not ASCII.
    pub fn id(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.id_bytes())
    }

    /// True when the id is three characters, an uppercase letter followed by
    /// uppercase letters or digits, as HL7 requires.
    pub fn has_valid_id(&self) -> bool {
        // Three bytes then the field separator (or nothing): what
        // `id_bytes` gives when it is three bytes long.
        let sep = self.ctx.delims.field;
        let id = match self.bytes {
            [a, b, c] => [*a, *b, *c],
            [a, b, c, d, ..] if *d == sep => [*a, *b, *c],
            _ => return false,
        };
        let upper_or_digit = |x: u8| x.is_ascii_uppercase() || x.is_ascii_digit();
        id[0].is_ascii_uppercase()
            && upper_or_digit(id[1])
            && upper_or_digit(id[2])
            && !id.contains(&sep)
    }

    /// The whole segment as text, escapes kept: a slice of the message
    /// when it was read as UTF-8 (no second check), else decoded from the
    /// message's character set.
    pub(crate) fn text(&self) -> Cow<'a, str> {
        match self.ctx.borrowed_text(self.bytes) {
            Some(text) => Cow::Borrowed(text),
            None => charset::decode(self.bytes, self.ctx.encoding),
        }
    }

    /// How this segment's elements split and decode.
    pub(crate) fn ctx(&self) -> Ctx<'a> {
        self.ctx
    }

    /// True for MSH, BHS and FHS, whose first field is the separator itself.
    pub(crate) fn is_header(&self) -> bool {
        matches!(self.bytes.get(..3), Some(b"MSH" | b"BHS" | b"FHS"))
            && self.bytes.get(3) == Some(&self.ctx.delims.field)
    }

    /// Field `n` (1-based); `None` past the last field.
    ///
    /// For MSH (and BHS/FHS), MSH-1 is the field separator and MSH-2 the
    /// encoding characters, both returned as literal text.
    pub fn field(&self, n: usize) -> Option<Element<'a>> {
        if n == 0 {
            return None;
        }
        let sep = self.ctx.delims.field;
        if self.is_header() {
            return match n {
                1 => self.literal(self.bytes.get(3..4)?),
                2 => self.literal(split_nth(self.bytes, sep, 1)?),
                _ => self.element(split_nth(self.bytes, sep, n - 1)?),
            };
        }
        self.element(split_nth(self.bytes, sep, n)?)
    }

    /// Number of fields present (trailing empty fields included).
    pub fn field_count(&self) -> usize {
        let seps = memchr::memchr_iter(self.ctx.delims.field, self.bytes).count();
        if self.is_header() { seps + 1 } else { seps }
    }

    /// All fields, 1-based number first.
    pub fn fields(&self) -> impl Iterator<Item = (usize, Element<'a>)> + '_ {
        (1..=self.field_count()).filter_map(|n| self.field(n).map(|f| (n, f)))
    }

    fn element(&self, raw: &'a [u8]) -> Option<Element<'a>> {
        Some(Element::new(raw, self.ctx, Level::Field))
    }

    fn literal(&self, raw: &'a [u8]) -> Option<Element<'a>> {
        Some(Element::new(raw, self.ctx, Level::Literal))
    }
}

/// The `n`th (0-based) piece of `bytes` split on `sep`.
pub(crate) fn split_nth(bytes: &[u8], sep: u8, n: usize) -> Option<&[u8]> {
    let (mut seen, mut start, mut end) = (0, (n == 0).then_some(0), bytes.len());
    scan::each(bytes, sep, |i| {
        seen += 1;
        if seen == n {
            start = Some(i + 1);
        } else if seen > n {
            end = i;
            return false;
        }
        true
    });
    bytes.get(start?..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_index_is_built_on_first_use_and_agrees_with_scanning() {
        let raw = b"MSH|^~\\&|LAB|MAIN|EHR|CLINIC|20240101||ORU^R01|C1|P|2.5.1\rPID|1||42^^^MRN\rOBX|1|NM|GLU||5.4|mmol/L\r";
        let msg = Message::parse(raw).unwrap();
        assert_eq!(msg.control_id().as_deref(), Some("C1"));
        assert!(
            msg.field_index.get().is_none(),
            "header reads do not build it"
        );
        let obx = msg.segments_named("OBX").next().unwrap();
        let ends = msg.field_ends(&obx).to_vec();
        assert!(msg.field_index.get().is_some());
        assert_eq!(ends.len(), 7, "OBX id and six fields");
        for n in 1..=6 {
            let indexed = crate::hl7::fields::field_of(obx, false, &ends, n).map(|e| e.raw());
            assert_eq!(indexed, obx.field(n).map(|e| e.raw()), "OBX-{n}");
        }
        assert_eq!(
            msg.control_id().as_deref(),
            Some("C1"),
            "and through the index"
        );
    }

    const ORU: &[u8] =
        b"MSH|^~\\&|LAB|HOSP|HUB|ORG|20240102030405||ORU^R01^ORU_R01|CTRL1|P|2.5.1\r\
PID|1||123^^^HOSP^MR~456^^^SSA^SS||DOE^JANE\r\
OBR|1|||GLU^Glucose^L\r\
OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|70-99|N|||F\r\
OBX|2|ST|X^Note^L||a\\F\\b|||||F\r";

    #[test]
    fn header_fields_are_numbered_as_in_the_standard() {
        let m = Message::parse(ORU).unwrap();
        let msh = m.msh();
        assert_eq!(msh.field(1).unwrap().raw(), b"|");
        assert_eq!(msh.field(2).unwrap().raw(), b"^~\\&");
        assert_eq!(msh.field(3).unwrap().text(), "LAB");
        assert_eq!(m.control_id().unwrap(), "CTRL1");
        assert_eq!(m.version().unwrap(), "2.5.1");
        assert_eq!(m.message_type().to_string(), "ORU^R01");
        assert_eq!(m.message_type().structure, "ORU_R01");
    }

    #[test]
    fn paths_reach_repetitions_components_and_segment_repeats() {
        let m = Message::parse(ORU).unwrap();
        assert_eq!(m.text("PID-3[2].1").unwrap(), "456");
        assert_eq!(m.text("PID-3[2].4").unwrap(), "SSA");
        assert_eq!(m.text("PID-3.1").unwrap(), "123");
        assert_eq!(m.text("OBX[2]-5").unwrap(), "a|b");
        assert_eq!(m.text("OBX-3.3").unwrap(), "LN");
        assert!(m.text("OBX[3]-5").is_none());
        assert!(m.get("PID-").is_err());
    }

    #[test]
    fn every_line_ending_separates_segments() {
        for eol in ["\r", "\n", "\r\n"] {
            let text = format!("MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5{eol}PID|1{eol}{eol}PV1|1{eol}");
            let m = Message::parse(text.as_bytes()).unwrap();
            let ids: Vec<_> = m.segments().map(|s| s.id().into_owned()).collect();
            assert_eq!(ids, ["MSH", "PID", "PV1"], "eol {eol:?}");
        }
    }

    #[test]
    fn a_line_feed_inside_a_field_of_a_cr_terminated_message_is_content() {
        let raw = b"MSH|^~\\&|LAB|HOSP|GW|CLINIC|20240102123045||ORU^R01|LF1|P|2.5.1\r\
PID|1||1^^^H^MR||A^B\rOBR|1||F|X^Y^L\r\
OBX|1|TX|11529-5^Path report^LN||FINAL DIAGNOSIS:\nBenign tissue.\nNo malignancy.||||||F\r";
        let m = Message::parse(raw).unwrap();
        let ids: Vec<_> = m.segments().map(|s| s.id().into_owned()).collect();
        assert_eq!(ids, ["MSH", "PID", "OBR", "OBX"]);
        assert_eq!(
            m.text("OBX-5").unwrap(),
            "FINAL DIAGNOSIS:\nBenign tissue.\nNo malignancy."
        );
        assert_eq!(m.text("OBX-11").unwrap(), "F");
    }

    #[test]
    fn crlf_pairs_blank_lines_and_a_final_line_feed_still_end_cr_segments() {
        let raw = b"MSH|^~\\&|A|||||||1|P|2.5\rPID|1\r\nOBX|1|TX|||a\nb\r\n\n\r\nNTE|1\n";
        let m = Message::parse(raw).unwrap();
        let ids: Vec<_> = m.segments().map(|s| s.id().into_owned()).collect();
        assert_eq!(ids, ["MSH", "PID", "OBX", "NTE"]);
        assert_eq!(m.text("OBX-5").unwrap(), "a\nb");
        assert_eq!(m.segment("NTE").unwrap().raw(), b"NTE|1");
    }

    #[test]
    fn a_message_whose_msh_ends_with_a_bare_line_feed_splits_on_line_feeds() {
        let m = Message::parse(b"MSH|^~\\&|A|||||||1|P|2.5\nPID|1\r\nOBX|1\n").unwrap();
        let ids: Vec<_> = m.segments().map(|s| s.id().into_owned()).collect();
        assert_eq!(ids, ["MSH", "PID", "OBX"]);
    }

    #[test]
    fn leading_bom_and_blank_lines_are_skipped() {
        let m = Message::parse(b"\xEF\xBB\xBF\r\nMSH|^~\\&|A\rPID|1").unwrap();
        assert_eq!(m.segment_count(), 2);
        assert_eq!(m.msh().field(3).unwrap().text(), "A");
    }

    #[test]
    fn input_without_msh_is_rejected() {
        assert_eq!(Message::parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(Message::parse(b"\r\n  ").unwrap_err(), ParseError::Empty);
        assert!(matches!(
            Message::parse(b"PID|1||123").unwrap_err(),
            ParseError::NoMsh { .. }
        ));
        assert!(matches!(
            Message::parse(b"junkMSH|^~\\&|").unwrap_err(),
            ParseError::NoMsh { .. }
        ));
    }

    #[test]
    fn explicit_null_is_distinct_from_empty() {
        let m = Message::parse(b"MSH|^~\\&|A\rPID|1|\"\"||x").unwrap();
        let pid = m.segment("PID").unwrap();
        assert!(pid.field(2).unwrap().is_null());
        assert!(!pid.field(2).unwrap().is_empty());
        assert!(pid.field(3).unwrap().is_empty());
        assert!(!pid.field(3).unwrap().is_null());
        assert!(pid.field(9).is_none());
    }

    #[test]
    fn custom_delimiters_split_the_message() {
        let m = Message::parse(
            b"MSH#!@%*#SND#FAC#RCV#FAC#2026##ADT!A01#M7#P#2.5\rPID#1##12345!!!MRN##DOE!JOHN",
        )
        .unwrap();
        assert_eq!(m.message_type().to_string(), "ADT^A01");
        assert_eq!(m.text("PID-3.4").unwrap(), "MRN");
        assert_eq!(m.text("PID-5.2").unwrap(), "JOHN");
    }

    #[test]
    fn z_segments_and_odd_ids_are_kept() {
        let m = Message::parse(b"MSH|^~\\&|A\rZPI|1|custom\rPIDX|1").unwrap();
        assert_eq!(m.text("ZPI-2").unwrap(), "custom");
        let odd = m.segment_at(2).unwrap();
        assert_eq!(odd.id(), "PIDX");
        assert!(!odd.has_valid_id());
        assert!(m.segment("ZPI").unwrap().has_valid_id());
    }

    #[test]
    fn latin1_message_is_decoded_without_loss() {
        let m = Message::parse(b"MSH|^~\\&|A|||||||||||||||8859/1\rPID|1||||M\xfcller").unwrap();
        assert_eq!(m.encoding(), Encoding::Latin1);
        assert_eq!(m.text("PID-5").unwrap(), "Müller");
    }

    #[test]
    fn a_segment_is_text_borrowed_from_a_utf8_message_and_decoded_from_latin1() {
        let utf8 = Message::parse("MSH|^~\\&|A\rPID|1||Zoë\\T\\".as_bytes()).unwrap();
        let pid = utf8.segment("PID").unwrap().text();
        assert!(matches!(pid, Cow::Borrowed("PID|1||Zoë\\T\\")));
        let latin1 = Message::parse(b"MSH|^~\\&|A|||||||||||||||8859/1\rPID|1||Zo\xeb").unwrap();
        let pid = latin1.segment("PID").unwrap().text();
        assert_eq!(pid, "PID|1||Zoë");
    }

    #[test]
    fn a_valid_id_is_what_id_bytes_gives_when_it_is_three_uppercase_letters_or_digits() {
        let text =
            b"MSH|^~\\&|A\rPID|1\rPIDX|2\rPI|3\rPID\rZ1\rpid|4\r1AB|5\rA2C|6\rAB|C|7\rOBX\xc3|8";
        let m = Message::parse(text).unwrap();
        let long_way = |s: &Segment<'_>| {
            matches!(s.id_bytes(), [a, b, c]
                if a.is_ascii_uppercase()
                    && (b.is_ascii_uppercase() || b.is_ascii_digit())
                    && (c.is_ascii_uppercase() || c.is_ascii_digit()))
        };
        let valid: Vec<bool> = m.segments().map(|s| s.has_valid_id()).collect();
        let expected: Vec<bool> = m.segments().map(|s| long_way(&s)).collect();
        assert_eq!(valid, expected);
        assert_eq!(
            valid.iter().filter(|v| **v).count(),
            4,
            "MSH, PID, PID, A2C"
        );
        let custom = Message::parse(b"MSH#^~\\&#A\rPID#1\rPI#D#2").unwrap();
        let ids: Vec<bool> = custom.segments().map(|s| s.has_valid_id()).collect();
        assert_eq!(ids, [true, true, false]);
        assert_eq!(
            m.segments().map(|s| s.index()).collect::<Vec<_>>(),
            (0..m.segment_count()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_first_segment_of_an_id_is_the_one_a_search_finds() {
        let m = Message::parse(
            b"MSH|^~\\&|A\rPV1\rZPV|x\rPIDX|1\rEVN|A08\rPID|1\rPV1|1|I\rPID|2\rOBX|1",
        )
        .unwrap();
        for id in [
            "MSH", "PID", "PV1", "EVN", "OBX", "OBR", "ZPV", "PIDX", "PI", "",
        ] {
            assert_eq!(
                m.first_segment(id).map(|s| s.index()),
                m.segment(id).map(|s| s.index()),
                "{id:?}"
            );
        }
        assert_eq!(
            m.first_segment("PV1").map(|s| s.index()),
            Some(1),
            "a bare PV1"
        );
    }

    #[test]
    fn declared_utf8_with_invalid_bytes_is_reported() {
        let m = Message::parse(b"MSH|^~\\&|A|||||||||||||||UNICODE UTF-8\rPID|1||||\xfc").unwrap();
        assert!(m.charset_mismatch().is_some());
    }

    #[test]
    fn field_counts_include_trailing_empty_fields() {
        let m = Message::parse(b"MSH|^~\\&|A\rEVN|A01|2026|||").unwrap();
        let evn = m.segment("EVN").unwrap();
        assert_eq!(evn.field_count(), 5);
        assert_eq!(m.msh().field_count(), 3);
        assert_eq!(evn.fields().count(), 5);
    }

    #[test]
    fn escapes_are_looked_for_only_after_msh2() {
        let d = Delimiters::from_msh(b"MSH|^~\\&|A").unwrap();
        assert!(has_no_escapes(b"MSH|^~\\&|A\rPID|1", &d));
        assert!(!has_no_escapes(b"MSH|^~\\&|A\rPID|1|a\\T\\b", &d));
        assert!(!has_no_escapes(b"MSH|^~\\&|\\", &d));
        let m = Message::parse(b"MSH|^~\\&|A\rPID|1|a\\T\\b").unwrap();
        assert_eq!(m.text("PID-2").unwrap(), "a&b");
    }
}
