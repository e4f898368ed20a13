//! ERR-2 (ERL) and ERR-1 (ELD) number a segment by its occurrence among the
//! segments of its type: the second OBX is `OBX^2`, however many segments
//! come before it (HL7 v2.5 ERL-2 "identifies the segment occurrence within
//! the message"; the 5th OBX is 5 regardless of the OBRs between them).
//!
//! An [`Issue`]'s location keeps the segment's position in the message
//! (MSH = 1), which is what people, the quarantine and the record read; the
//! ACK builder's callers renumber a copy with [`by_occurrence`] before
//! writing ERR segments. Locations that name no segment, or whose segment id
//! does not match the segment at that position (a fragment line), are left
//! as they are.
//!
//! Linear in the message: one pass over the segments with a hash map of
//! the ids seen (a message may hold tens of thousands of distinct ids; a
//! list searched per segment made this quadratic).

use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::hl7::issue::Issue;
use crate::hl7::message::Message;

/// `issues` with each segment sequence changed from the segment's position
/// in `msg` to its occurrence among the segments with the same id. One
/// pass over the segments (up to the last one an issue names), only when
/// some issue names a segment.
pub fn by_occurrence(msg: &Message<'_>, mut issues: Vec<Issue>) -> Vec<Issue> {
    let Some(last) = issues.iter().map(|i| i.location.segment_sequence).max() else {
        return issues;
    };
    if last == 0 {
        return issues;
    }
    // Seeded per process: a sender cannot choose ids that collide.
    let mut seen: HashMap<&[u8], u32, RandomState> = HashMap::default();
    let occurrences: Vec<u32> = msg
        .segments()
        .take(last as usize)
        .map(|seg| {
            let count = seen.entry(seg.id_bytes()).or_insert(0);
            *count += 1;
            *count
        })
        .collect();
    for issue in &mut issues {
        let l = &mut issue.location;
        let Some(index) = (l.segment_sequence as usize).checked_sub(1) else {
            continue;
        };
        let same_segment = msg
            .segment_at(index)
            .is_some_and(|seg| seg.id_bytes() == l.segment.as_bytes());
        if let (true, Some(&n)) = (same_segment, occurrences.get(index)) {
            l.segment_sequence = n;
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::issue::{ErrorCode, Location};

    #[test]
    fn the_second_obx_is_numbered_two_whatever_comes_before_it() {
        let raw = b"MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5.1\rPID|1\rOBR|1\rOBX|1\rOBR|2\rOBX|1\r";
        let msg = Message::parse(raw).unwrap();
        let at = |seg: &str, sequence: usize| {
            Issue::warning(
                ErrorCode::DataType,
                Location::segment(seg, sequence).field(5),
                "x",
            )
        };
        let issues = vec![
            at("OBX", 6),
            at("OBX", 4),
            at("OBR", 5),
            at("MSH", 1),
            at("PID", 0),
            at("", 3),
            at("PID", 3),
        ];
        let renumbered: Vec<u32> = by_occurrence(&msg, issues)
            .iter()
            .map(|i| i.location.segment_sequence)
            .collect();
        assert_eq!(
            renumbered,
            [2, 1, 2, 1, 0, 3, 3],
            "OBX 6 is the second OBX, OBR 5 the second OBR; a location that \
             does not name the segment at that position is kept"
        );
    }
}
