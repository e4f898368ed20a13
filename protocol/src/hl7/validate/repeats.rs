//! The cap on repeated identifiers ([`MAX_IDENTIFIERS`]): the repetitions
//! of PID-2, PID-3 and PID-4 of one PID together, and of MRG-1 and MRG-4 of
//! every MRG of the message together. The first repetition over the cap is
//! an error (207): a record carries at most that many identifiers per list,
//! and dropping some could misidentify the patient.

use crate::hl7::fields::Fields;
use crate::hl7::issue::{ErrorCode, Issue};
use crate::hl7::limits::{Issues, MAX_IDENTIFIERS};
use crate::hl7::validate::segment_location;

/// Identifier repetitions counted so far in one message.
#[derive(Debug, Default)]
pub(super) struct IdentifierCounts {
    /// MRG-1 and MRG-4 repetitions of the MRG segments seen.
    merged: usize,
}

impl IdentifierCounts {
    /// Counts the identifier repetitions of `seg` (a PID or MRG).
    pub(super) fn check(&mut self, seg: &Fields<'_>, out: &mut Issues) {
        match seg.segment().id_bytes() {
            b"PID" => count(seg, &[3, 2, 4], &mut 0, out),
            b"MRG" => count(seg, &[1, 4], &mut self.merged, out),
            _ => {}
        }
    }
}

/// Adds the repetitions of `fields` to `n`; the first one over the cap is
/// reported (once: a count already over it is left alone).
fn count(seg: &Fields<'_>, fields: &[usize], n: &mut usize, out: &mut Issues) {
    if *n > MAX_IDENTIFIERS {
        return;
    }
    for &f in fields {
        let Some(field) = seg.field(f) else { continue };
        for (r, _) in field.repetitions().enumerate() {
            *n += 1;
            if *n > MAX_IDENTIFIERS {
                let id = seg.segment().id();
                out.push(Issue::error(
                    ErrorCode::InternalError,
                    segment_location(&seg.segment()).field(f).repetition(r + 1),
                    format!(
                        "more than {MAX_IDENTIFIERS} identifiers in {id}; this gateway accepts at most {MAX_IDENTIFIERS}"
                    ),
                ));
                return;
            }
        }
    }
}
