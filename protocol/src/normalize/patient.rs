//! PID to [`Patient`]: identifiers first, then name, birth date and sex.
//!
//! Identifiers come from PID-3, then PID-2 and PID-4 (used by versions
//! before 2.5); an identifier repeated with the same value, authority and
//! type is kept once. Only the first PID of a message is read.
//!
//! At most [`MAX_IDENTIFIERS`] identifiers are read per list (validation
//! refuses a message with more repetitions, so this only bounds a run on
//! an unvalidated message); repeats are found through a hash set, so
//! reading stays linear in the message.

use std::collections::HashSet;

use foldhash::fast::RandomState;

use crate::hl7::Message;
use crate::hl7::limits::MAX_IDENTIFIERS;
use crate::normalize::context::Work;
use crate::normalize::datatypes::{component, field_time, identifier, person_name};
use crate::normalize::fields::Fields;
use crate::record::{CompactString, Identifier, Patient};

/// The patient of the first PID segment, if there is one.
pub(crate) fn patient(work: &mut Work<'_>, msg: &Message<'_>) -> Option<Patient> {
    let pid = Fields::new(msg, msg.first_segment("PID")?);
    Some(Patient {
        identifiers: {
            let mut ids = IdentifierList::default();
            ids.add(&pid, &[3, 2, 4]);
            ids.into_vec()
        },
        name: person_name(pid.parts(pid.field(5).and_then(|f| f.repetition(1)))),
        birth_date: field_time(work, &pid, 7),
        sex: component(pid.field(8), 1),
    })
}

/// Identifiers in order of first appearance, each once, at most
/// [`MAX_IDENTIFIERS`].
#[derive(Default)]
pub(crate) struct IdentifierList {
    list: Vec<Identifier>,
    /// Value, authority and type of each identifier in `list`, once the
    /// list is longer than [`FEW_IDENTIFIERS`] (a short list is searched:
    /// cheaper than hashing, and still a bounded cost per repetition).
    seen: Option<HashSet<IdKey, RandomState>>,
}

/// Identifiers searched in the list rather than through the set.
const FEW_IDENTIFIERS: usize = 8;

/// What makes two identifiers the same.
type IdKey = (CompactString, Option<CompactString>, Option<CompactString>);

impl IdentifierList {
    /// Adds every CX repetition of the given fields that is not there yet,
    /// while the list has room.
    pub(crate) fn add(&mut self, segment: &Fields<'_>, fields: &[usize]) {
        for &n in fields {
            let Some(field) = segment.field(n) else {
                continue;
            };
            for rep in field.repetitions() {
                if self.list.len() >= MAX_IDENTIFIERS {
                    return;
                }
                let Some(id) = identifier(segment.parts(Some(rep))) else {
                    continue;
                };
                if self.is_new(&id) {
                    self.list.push(id);
                }
            }
        }
    }

    /// True when `id` is not in the list yet (and notes it in the set,
    /// once there is one).
    fn is_new(&mut self, id: &Identifier) -> bool {
        let key = || (id.value.clone(), id.authority.clone(), id.kind.clone());
        if let Some(seen) = &mut self.seen {
            return seen.insert(key());
        }
        if self.list.contains(id) {
            return false;
        }
        if self.list.len() >= FEW_IDENTIFIERS {
            let mut seen: HashSet<IdKey, RandomState> = self
                .list
                .iter()
                .map(|i| (i.value.clone(), i.authority.clone(), i.kind.clone()))
                .collect();
            seen.insert(key());
            self.seen = Some(seen);
        }
        true
    }

    /// The identifiers.
    pub(crate) fn into_vec(self) -> Vec<Identifier> {
        self.list
    }
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
