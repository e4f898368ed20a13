//! The compact form of a record's issues: code and severity in postcard's
//! form (one byte each), the location's segment and the message through
//! the string tables (a warning repeated on every OBX costs its text once),
//! the location's numbers as varints: segment sequence, then the field
//! shifted left by one with the low bit set when repetition, component and
//! sub-component follow (they are all zero otherwise).

use super::reader::Reader;
use super::writer::Writer;
use super::{CompactError, Pool};
use crate::hl7::{ErrorCode, Issue, Location, Severity};
use crate::record::limits;

/// The number of issues, then each one.
pub(super) fn write_issues<'a>(
    w: &mut Writer<'a>,
    issues: &'a [Issue],
) -> Result<(), postcard::Error> {
    w.count(issues.len());
    for i in issues {
        crate::postcard_append::append(&(i.code, i.severity), &mut w.out)?;
        let l = &i.location;
        w.str(Pool::Code, Some(&l.segment));
        w.varint(u128::from(l.segment_sequence));
        let deeper = [l.repetition, l.component, l.subcomponent];
        let more = deeper.iter().any(|&n| n != 0);
        w.varint(u128::from(l.field) << 1 | u128::from(more));
        if more {
            for n in deeper {
                w.varint(u128::from(n));
            }
        }
        w.str(Pool::Text, Some(&i.message));
    }
    Ok(())
}

/// What [`write_issues`] wrote.
pub(super) fn read_issues(r: &mut Reader<'_>) -> Result<Vec<Issue>, CompactError> {
    let n = r.count(limits::MAX_ISSUES, "issues")?;
    let mut issues = Vec::with_capacity(limits::capacity::<Issue>(n));
    for _ in 0..n {
        let (pair, rest) = postcard::take_from_bytes::<(ErrorCode, Severity)>(r.rest())?;
        r.set_rest(rest);
        let segment = r.req_str(Pool::Code)?.into_string();
        let segment_sequence = u32::try_from(r.varint()?).map_err(|_| CompactError::Overflow)?;
        let field = r.varint()?;
        let small = |v: u128| u16::try_from(v).map_err(|_| CompactError::Overflow);
        let mut location = Location {
            segment,
            segment_sequence,
            field: small(field >> 1)?,
            ..Location::default()
        };
        if field & 1 != 0 {
            location.repetition = small(r.varint()?)?;
            location.component = small(r.varint()?)?;
            location.subcomponent = small(r.varint()?)?;
        }
        issues.push(Issue {
            code: pair.0,
            severity: pair.1,
            location,
            message: r.req_str(Pool::Text)?.into_string(),
        });
    }
    Ok(issues)
}
