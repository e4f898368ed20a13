//! NTE comments to [`Note`]s.
//!
//! The text is NTE-3, its repetitions (the lines of a formatted comment)
//! joined by a newline, escapes decoded; NTE-2 the source, NTE-4 the
//! comment type (HL7 table 0364), NTE-5 and NTE-6 (v2.6+) who wrote it and
//! when. Where a note belongs is decided by the message walkers (the
//! patient, order, result or specimen it follows).

use crate::normalize::context::Work;
use crate::normalize::datatypes::{Accept, coded, component, field_time, first, practitioner};
use crate::normalize::fields::Fields;
use crate::record::{CompactString, Note};

/// One NTE; `None` when it holds nothing.
pub(crate) fn note(work: &mut Work<'_>, nte: &Fields<'_>) -> Option<Note> {
    let note = Note {
        text: text(nte),
        source: component(nte.field(2), 1),
        kind: coded(work, nte.parts(nte.field(4)), Accept::GENERAL, nte.at(4)).map(Box::new),
        author: first(nte, 5, practitioner).map(Box::new),
        written_at: field_time(work, nte, 6),
    };
    (note != Note::default()).then_some(note)
}

/// NTE-3: every repetition, trimmed at the end, joined by newlines; blank
/// lines inside are kept, blank lines at the end are not.
fn text(nte: &Fields<'_>) -> CompactString {
    let Some(field) = nte.field(3) else {
        return CompactString::default();
    };
    let mut out = String::new();
    for (i, rep) in field.repetitions().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = rep.value().unwrap_or_default();
        out.push_str(line.trim_end());
    }
    let kept = out.trim_end().len();
    out.truncate(kept);
    if out == "\"\"" {
        out.clear();
    }
    out.into()
}

#[cfg(test)]
mod tests {

    use super::*;

    use crate::normalize::context::work_for;

    fn read(segment: &str) -> Option<Note> {
        let text = format!("MSH|^~\\&|A\r{segment}");
        work_for(&text, |work, m| {
            note(work, &Fields::new(m, m.segment("NTE").unwrap()))
        })
        .0
    }

    #[test]
    fn a_comment_keeps_its_lines_source_type_author_and_time() {
        let n = read(
            "NTE|1|L|Hemolyzed \\T\\ lipemic~~potassium falsely high~|RE^Remark^HL70364|MLEE^ATTEND^AARON|202010101600+0215",
        )
        .unwrap();
        assert_eq!(n.text, "Hemolyzed & lipemic\n\npotassium falsely high");
        assert_eq!(n.source.as_deref(), Some("L"));
        assert_eq!(n.kind.unwrap().original.code, "RE");
        assert_eq!(n.author.unwrap().id.as_deref(), Some("MLEE"));
        assert_eq!(n.written_at.unwrap().offset_minutes, 135);
    }

    #[test]
    fn an_empty_comment_is_no_note() {
        assert!(read("NTE|1||").is_none());
        assert!(read("NTE|1").is_none());
    }
}
