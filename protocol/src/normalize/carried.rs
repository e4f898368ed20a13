//! What the record carries, and the "not carried" warnings for the rest.
//!
//! [`CARRIED`] lists, per segment id, the fields a normalizer reads into the
//! record. A segment is read into the record only where it stands in the
//! message structure (a normalizer calls `Work::consume` for it): an NTE
//! after PID, ORC, OBR, OBX or SPM, an SPM in a result group, ... After the
//! body is read, [`not_carried`] walks the message once and counts, for
//! every segment that holds a value, what the record has no place for:
//!
//! - a segment no normalizer read (a PD1, a PRT, a Z-segment, an NTE with
//!   nothing to attach to) as field 0;
//! - a field with a value outside the segment's [`CARRIED`] list, by number.
//!
//! A value is anything but delimiters, spaces and the null `""`.
//!
//! Invariants: the list is the normalizers' (a field in it is read, a field
//! read is in it: `protocol/tests/fidelity.rs` checks every listed field of
//! the corpus against the record); counts are per (segment id, field), in
//! message order of first occurrence; only segment ids and field numbers
//! are named, never values (a line whose id is not a valid segment id is
//! named `?`).

use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::hl7::{Message, Segment};
use crate::record::{CompactString, NotCarried};

/// The fields (1-based) a normalizer reads, as a bit set.
const fn fields(list: &[u8]) -> u64 {
    let mut mask = 0u64;
    let mut i = 0;
    while i < list.len() {
        mask |= 1 << list[i];
        i += 1;
    }
    mask
}

/// Per segment id, the fields the record carries (fields 1 that are set
/// ids, MSH-1/2 delimiters, MSH-15/16 acknowledgment rules and MSH-18 the
/// character set are applied, not carried, and count as carried).
pub(crate) const CARRIED: &[(&[u8; 3], u64)] = &[
    (
        b"MSH",
        fields(&[1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 15, 16, 18, 21]),
    ),
    (b"SFT", fields(&[1, 2, 3, 4, 6])),
    (
        b"PID",
        fields(&[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 22, 23, 29, 30, 40,
        ]),
    ),
    (b"NK1", fields(&[1, 2, 3, 4, 5, 6, 7, 13])),
    (
        b"PV1",
        fields(&[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 17, 18, 19, 20, 36, 37, 39, 44, 45, 50,
        ]),
    ),
    (
        b"ORC",
        fields(&[1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 14, 21, 22, 23, 24]),
    ),
    (
        b"OBR",
        fields(&[
            1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 13, 14, 15, 16, 17, 22, 24, 25, 26, 27, 28, 29, 31, 32,
        ]),
    ),
    (b"TQ1", fields(&[1, 2, 7, 8, 9, 10, 11, 14])),
    (
        b"OBX",
        fields(&[
            1, 2, 3, 4, 5, 6, 7, 8, 11, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25,
        ]),
    ),
    (b"NTE", fields(&[1, 2, 3, 4, 5, 6])),
    (
        b"SPM",
        fields(&[1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 17, 18, 21, 24, 27, 30]),
    ),
    (b"EVN", fields(&[1, 2, 4, 6])),
    (b"MRG", fields(&[1, 2, 3, 4, 5, 6, 7])),
    (
        b"RXA",
        fields(&[1, 2, 3, 4, 5, 6, 7, 9, 10, 15, 16, 17, 18, 19, 20, 21]),
    ),
    (b"RXR", fields(&[1, 2])),
    (b"RXO", fields(&[1])),
];

/// The fields of segment id `id` the record carries (none for an id not
/// listed).
pub(crate) fn carried(id: &[u8]) -> u64 {
    CARRIED
        .iter()
        .find(|(known, _)| known.as_slice() == id)
        .map_or(0, |(_, mask)| *mask)
}

/// The "not carried" warnings of `msg`, whose segments at the indexes set
/// in `consumed` were read into the record (MSH always is).
pub(crate) fn not_carried(msg: &Message<'_>, consumed: &[bool]) -> Vec<NotCarried> {
    let mut out = Counts::default();
    let d = msg.delimiters();
    let blank = |raw: &[u8]| {
        raw == b"\"\""
            || raw.iter().all(|&b| {
                b == b' ' || b == d.component || b == d.repetition || Some(b) == d.subcomponent
            })
    };
    for segment in msg.segments() {
        let index = segment.index();
        let read = index == 0 || consumed.get(index).copied().unwrap_or(false);
        let mask = if read { carried(segment.id_bytes()) } else { 0 };
        if read && let Some(fields) = indexed_fields(msg, &segment) {
            // Split when the message was parsed: only the fields the
            // record has no place for are looked at.
            for (n, raw) in fields {
                if (n >= 64 || mask & (1 << n) == 0) && !blank(raw) {
                    out.bump(&segment, u16::try_from(n).unwrap_or(u16::MAX));
                }
            }
            continue;
        }
        let mut whole = false;
        each_field(&segment, d.field, |n, raw| {
            if blank(raw) {
                return;
            }
            if !read {
                whole = true;
            } else if n >= 64 || mask & (1 << n) == 0 {
                out.bump(&segment, u16::try_from(n).unwrap_or(u16::MAX));
            }
        });
        if whole {
            out.bump(&segment, 0);
        }
    }
    out.list
}

/// Every field `(n, raw)` of `segment` from the field index the parser
/// built, when it has one that covers the whole segment (as
/// [`each_field`] gives them).
fn indexed_fields<'a>(
    msg: &'a Message<'_>,
    segment: &Segment<'a>,
) -> Option<impl Iterator<Item = (usize, &'a [u8])>> {
    let ends = msg.field_ends(segment);
    let raw = segment.raw();
    let complete = matches!(ends, [.., last] if *last as usize == raw.len());
    if !complete {
        return None;
    }
    // In MSH the first piece after the id is MSH-2.
    let shift = usize::from(segment.is_header());
    Some(ends.windows(2).enumerate().map(move |(i, pair)| {
        let (start, end) = (pair[0] as usize + 1, pair[1] as usize);
        (i + 1 + shift, raw.get(start..end).unwrap_or_default())
    }))
}

/// Calls `f(n, raw)` for every field `n` of `segment` (MSH-1 and MSH-2
/// excluded: they are the delimiters).
fn each_field(segment: &Segment<'_>, sep: u8, mut f: impl FnMut(usize, &[u8])) {
    let raw = segment.raw();
    // In MSH the first piece after the id is MSH-2.
    let first = if segment.is_header() { 2 } else { 1 };
    let mut start: Option<usize> = None;
    let mut n = first - 1;
    crate::hl7::scan::each(raw, sep, |i| {
        if let Some(s) = start {
            f(n, raw.get(s..i).unwrap_or_default());
        }
        start = Some(i + 1);
        n += 1;
        true
    });
    if let Some(s) = start {
        f(n, raw.get(s..).unwrap_or_default());
    }
}

/// Up to how many entries are searched in the list rather than through
/// the index.
const FEW: usize = 16;

/// The "not carried" entries counted so far, in order of first
/// occurrence; past [`FEW`] found through a hash index, so a message of
/// many distinct segments is counted in linear time.
#[derive(Default)]
struct Counts {
    list: Vec<NotCarried>,
    index: Option<HashMap<(CompactString, u16), usize, RandomState>>,
}

impl Counts {
    /// Counts one more occurrence of (segment id, `field`).
    fn bump(&mut self, segment: &Segment<'_>, field: u16) {
        let id = segment.id_bytes();
        let name = if segment.has_valid_id() {
            std::str::from_utf8(id).unwrap_or("?")
        } else {
            "?"
        };
        let found = match &self.index {
            Some(index) => index.get(&(CompactString::from(name), field)).copied(),
            None => self
                .list
                .iter()
                .position(|n| n.field == field && n.segment == name),
        };
        if let Some(n) = found.and_then(|i| self.list.get_mut(i)) {
            n.count = n.count.saturating_add(1);
            return;
        }
        self.list.push(NotCarried {
            segment: CompactString::from(name),
            field,
            count: 1,
        });
        let last = self.list.len() - 1;
        if let Some(index) = &mut self.index {
            index.insert((CompactString::from(name), field), last);
        } else if self.list.len() > FEW {
            self.index = Some(
                self.list
                    .iter()
                    .enumerate()
                    .map(|(i, n)| ((n.segment.clone(), n.field), i))
                    .collect(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str, consumed: &[bool]) -> Vec<(String, u16, u32)> {
        let m = Message::parse(text.as_bytes()).unwrap();
        not_carried(&m, consumed)
            .into_iter()
            .map(|n| (n.segment.into_string(), n.field, n.count))
            .collect()
    }

    /// A segment `id` whose fields are `values` (field number, text).
    fn segment(id: &str, values: &[(usize, &str)]) -> String {
        let last = values.iter().map(|(n, _)| *n).max().unwrap_or(0);
        let mut fields = vec![""; last + 1];
        for (n, v) in values {
            fields[*n] = v;
        }
        fields[0] = id;
        fields.join("|")
    }

    #[test]
    fn unread_segments_and_unread_fields_with_values_are_named_and_counted() {
        let text = [
            "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5.1|||||||||||||x".to_owned(),
            segment("PID", &[(1, "1"), (3, "7^^^H^MR")]),
            segment("ZPI", &[(1, "a")]),
            segment("OBX", &[(1, "1"), (3, "X"), (5, "1"), (11, "F"), (30, "y")]),
            segment(
                "OBX",
                &[(1, "2"), (3, "X"), (9, "^~&"), (10, "\"\""), (30, "z")],
            ),
            "PD1|||".to_owned(),
            segment("NTE", &[(1, "1"), (3, "free")]),
        ]
        .join("\r");
        let consumed = [true, true, false, true, true, false, false];
        assert_eq!(
            names(&text, &consumed),
            [
                ("MSH".into(), 25, 1),
                ("ZPI".into(), 0, 1),
                ("OBX".into(), 30, 2),
                ("NTE".into(), 0, 1),
            ]
        );
    }

    #[test]
    fn every_field_of_a_read_segment_in_the_list_is_carried() {
        let text = "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5.1|||AL|NE||UNICODE UTF-8\r\
                    OBX|1|NM|X|1|5|mg|1-2|H|||F|||20240101|L|D|M|E|20240101|S|I||O|A|D";
        assert!(names(text, &[true, true]).is_empty());
    }

    #[test]
    fn a_line_that_is_no_segment_is_named_without_its_text() {
        let text = "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5.1\rSmith was here|x";
        assert_eq!(names(text, &[true, false]), [("?".into(), 0, 1)]);
    }
}
