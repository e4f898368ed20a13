//! PID to [`Patient`]: identifiers first, then name, birth date and sex.
//!
//! Identifiers come from PID-3, then PID-2 and PID-4 (used by versions
//! before 2.5); an identifier repeated with the same value, authority and
//! type is kept once. Only the first PID of a message is read.

use crate::hl7::Message;
use crate::normalize::context::Work;
use crate::normalize::datatypes::{component, field_time, identifier, person_name};
use crate::normalize::fields::Fields;
use crate::record::{Identifier, Patient};

/// The patient of the first PID segment, if there is one.
pub(crate) fn patient(work: &mut Work<'_>, msg: &Message<'_>) -> Option<Patient> {
    let pid = Fields::new(msg, msg.first_segment("PID")?);
    Some(Patient {
        identifiers: identifiers(&pid, &[3, 2, 4]),
        name: person_name(pid.parts(pid.field(5).and_then(|f| f.repetition(1)))),
        birth_date: field_time(work, &pid, 7),
        sex: component(pid.field(8), 1),
        ..Patient::default()
    })
}

/// Every CX repetition of the given fields, duplicates dropped.
pub(crate) fn identifiers(segment: &Fields<'_>, fields: &[usize]) -> Vec<Identifier> {
    let mut out: Vec<Identifier> = Vec::new();
    for &n in fields {
        let Some(field) = segment.field(n) else {
            continue;
        };
        for rep in field.repetitions() {
            let Some(id) = identifier(segment.parts(Some(rep))) else {
                continue;
            };
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::normalize::context::Context;
    use crate::normalize::mapping::MappingTable;
    use crate::record::Precision;

    fn read(text: &str) -> Option<Patient> {
        let m = Message::parse(text.as_bytes()).unwrap();
        let tz = TimeZone::UTC;
        let mapping = MappingTable::empty();
        let mut work = Work::new(
            Context {
                time_zone: &tz,
                mapping: &mapping,
            },
            Vec::new(),
        );
        patient(&mut work, &m)
    }

    #[test]
    fn identifiers_name_birth_date_and_sex_are_read() {
        let p = read(
            "MSH|^~\\&|A\rPID|1|OLD1|123^^^HOSP^MR~123^^^HOSP^MR~999^^^SSA^SS|ALT^^^X|DOE^JANE||19901215|F",
        )
        .unwrap();
        let values: Vec<_> = p.identifiers.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(values, ["123", "999", "OLD1", "ALT"]);
        assert_eq!(p.name.unwrap().family.as_deref(), Some("DOE"));
        assert_eq!(p.birth_date.unwrap().precision, Precision::Day);
        assert_eq!(p.sex.as_deref(), Some("F"));
    }

    #[test]
    fn a_message_without_pid_has_no_patient() {
        assert!(read("MSH|^~\\&|A\rOBX|1").is_none());
    }
}
