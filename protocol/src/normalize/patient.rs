//! PID (and NK1) to [`Patient`]: identifiers first, then names, birth
//! date, sex, demographics public health needs, and next of kin.
//!
//! Identifiers come from PID-3, then PID-2 and PID-4 (used by versions
//! before 2.5), PID-19 (social security number, typed `SS`) and PID-20
//! (driver's license, typed `DL`, the issuing state as authority); an
//! identifier repeated with the same value, authority and type is kept
//! once. PID-5's first repetition is the name, the others and PID-9's are
//! `other_names`. Only the first PID of a message is read (see
//! `normalize` for what a second patient means); NK1 segments of the
//! first patient group become its contacts, NTE after PID or NK1 its notes
//! (the message walkers attach those).
//!
//! At most [`MAX_IDENTIFIERS`] identifiers are read per list (validation
//! refuses a message with more repetitions, so this only bounds a run on
//! an unvalidated message); repeats are found through a hash set, so
//! reading stays linear in the message.

use std::collections::HashSet;

use foldhash::fast::RandomState;

use crate::hl7::limits::MAX_IDENTIFIERS;
use crate::hl7::{ErrorCode, Message, Segment};
use crate::normalize::context::Work;
use crate::normalize::datatypes::{
    Accept, address, coded_private, component, each, each_coded, field_time, first, identifier,
    organization, person_name, string, telecom,
};
use crate::normalize::fields::Fields;
use crate::normalize::notes::note;
use crate::record::{Contact, Identifier, Patient};

/// The patient of the first PID segment, if there is one (the segment is
/// marked as read).
pub(crate) fn patient(work: &mut Work<'_>, msg: &Message<'_>) -> Option<Patient> {
    let segment = msg.first_segment("PID")?;
    Some(patient_at(work, msg, segment))
}

/// The patient of the PID `segment` and its group (NK1, NTE).
pub(crate) fn patient_at(work: &mut Work<'_>, msg: &Message<'_>, segment: Segment<'_>) -> Patient {
    let mut patient = demographics(work, msg, segment);
    patient_group(work, msg, &segment, &mut patient);
    patient
}

/// What the PID says.
fn demographics(work: &mut Work<'_>, msg: &Message<'_>, segment: Segment<'_>) -> Patient {
    work.consume(&segment);
    let pid = Fields::new(msg, segment);
    let mut identifiers = IdentifierList::default();
    identifiers.add(work, &pid, &[3, 2, 4]);
    if let Some(value) = string(pid.field(19)) {
        identifiers.push(Identifier {
            value,
            kind: Some("SS".into()),
            ..Identifier::default()
        });
    }
    if let Some(license) = pid.field(20)
        && let Some(value) = string(license.component(1))
    {
        identifiers.push(Identifier {
            value,
            authority: string(license.component(2)),
            kind: Some("DL".into()),
            ..Identifier::default()
        });
    }
    let identifiers = identifiers.into_vec();
    let mut names = each(&pid, 5, person_name).into_iter();
    let name = names.next();
    let mut other_names: Vec<_> = names.collect();
    other_names.extend(each(&pid, 9, person_name));
    let mut phones = each(&pid, 13, telecom);
    phones.extend(each(&pid, 14, telecom));
    phones.extend(each(&pid, 40, telecom));
    Patient {
        identifiers,
        name,
        birth_date: field_time(work, &pid, 7),
        sex: component(pid.field(8), 1),
        other_names,
        mothers_maiden_name: first(&pid, 6, person_name).map(Box::new),
        races: each_coded(work, &pid, 10, Accept::GENERAL),
        addresses: each(&pid, 11, address),
        phones,
        language: coded_private(work, pid.parts(pid.field(15)), Accept::GENERAL, pid.at(15))
            .map(Box::new),
        marital_status: coded_private(work, pid.parts(pid.field(16)), Accept::GENERAL, pid.at(16))
            .map(Box::new),
        religion: coded_private(work, pid.parts(pid.field(17)), Accept::GENERAL, pid.at(17))
            .map(Box::new),
        account: first(&pid, 18, identifier).map(Box::new),
        ethnicities: each_coded(work, &pid, 22, Accept::GENERAL),
        birth_place: string(pid.field(23)),
        deceased_at: field_time(work, &pid, 29),
        deceased: component(pid.field(30), 1),
        contacts: Vec::new(),
        notes: Vec::new(),
    }
}

/// The NK1 and NTE segments of the patient group that `segment` (the
/// patient's PID) opens, read into `patient` (and marked as read): NK1 are
/// its contacts; NTE right after PID, PD1, NK1 (or another such NTE) are
/// comments on the patient. The group ends at the next PID or at the first
/// segment of an order, result, dose or document.
pub(crate) fn patient_group(
    work: &mut Work<'_>,
    msg: &Message<'_>,
    pid: &Segment<'_>,
    patient: &mut Patient,
) {
    let mut about_patient = true;
    for segment in msg.segments().skip(pid.index() + 1) {
        match segment.id_bytes() {
            b"NK1" => {
                work.consume(&segment);
                let nk1 = Fields::new(msg, segment);
                patient.contacts.push(contact(work, &nk1));
                about_patient = true;
            }
            b"NTE" if about_patient => {
                work.consume(&segment);
                if let Some(n) = note(work, &Fields::new(msg, segment)) {
                    patient.notes.push(n);
                }
            }
            b"PD1" => about_patient = true,
            b"PID" | b"ORC" | b"OBR" | b"OBX" | b"RXA" | b"SPM" | b"TXA" | b"SCH" | b"FT1" => {
                return;
            }
            _ => about_patient = false,
        }
    }
}

/// One NK1.
pub(crate) fn contact(work: &mut Work<'_>, nk1: &Fields<'_>) -> Contact {
    let mut phones = each(nk1, 5, telecom);
    phones.extend(each(nk1, 6, telecom));
    Contact {
        name: first(nk1, 2, person_name),
        relationship: coded_private(work, nk1.parts(nk1.field(3)), Accept::GENERAL, nk1.at(3)),
        addresses: each(nk1, 4, address),
        phones,
        role: coded_private(work, nk1.parts(nk1.field(7)), Accept::GENERAL, nk1.at(7)),
        organization: first(nk1, 13, organization).and_then(|o| o.name),
    }
}

/// Identifiers in order of first appearance, each once, at most
/// [`MAX_IDENTIFIERS`].
#[derive(Default)]
pub(crate) struct IdentifierList {
    list: Vec<Identifier>,
    /// The identifiers in `list`, once it is longer than
    /// [`FEW_IDENTIFIERS`] (a short list is searched: cheaper than hashing,
    /// and still a bounded cost per repetition).
    seen: Option<HashSet<Identifier, RandomState>>,
}

/// Identifiers searched in the list rather than through the set.
const FEW_IDENTIFIERS: usize = 8;

impl IdentifierList {
    /// Adds every CX repetition of the given fields that is not there yet,
    /// while the list has room. A repetition that holds something but no
    /// id number (CX.1) is no identifier: it is warned about at its place.
    pub(crate) fn add(&mut self, work: &mut Work<'_>, segment: &Fields<'_>, fields: &[usize]) {
        for &n in fields {
            let Some(field) = segment.field(n) else {
                continue;
            };
            for (i, rep) in field.repetitions().enumerate() {
                if self.list.len() >= MAX_IDENTIFIERS {
                    return;
                }
                match identifier(segment.parts(Some(rep))) {
                    Some(id) => self.push(id),
                    None if rep.raw().iter().any(u8::is_ascii_alphanumeric) => work.warn(
                        ErrorCode::RequiredFieldMissing,
                        segment.at(n).repetition(i + 1),
                        "an identifier without its id number (CX.1) is not carried",
                    ),
                    None => {}
                }
            }
        }
    }

    /// Adds `id` unless it is there already or the list is full.
    pub(crate) fn push(&mut self, id: Identifier) {
        if self.list.len() < MAX_IDENTIFIERS && self.is_new(&id) {
            self.list.push(id);
        }
    }

    /// True when `id` is not in the list yet (and notes it in the set,
    /// once there is one).
    fn is_new(&mut self, id: &Identifier) -> bool {
        if let Some(seen) = &mut self.seen {
            return seen.insert(id.clone());
        }
        if self.list.contains(id) {
            return false;
        }
        if self.list.len() >= FEW_IDENTIFIERS {
            let mut seen: HashSet<Identifier, RandomState> = self.list.iter().cloned().collect();
            seen.insert(id.clone());
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

    use super::*;
    use crate::normalize::context::work_for;

    use crate::record::Precision;

    fn read(text: &str) -> Option<Patient> {
        work_for(text, patient).0
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
    fn demographics_public_health_needs_are_read() {
        let p = read(
            "MSH|^~\\&|A\rPID|1||14^^^IA&2.16.840.1&ISO^PI||Finn^Huck^^^^^L~Finn^H^^^^^A|JONES|19630815|M|Huck|2106-3^White^CDCREC~1002-5^American Indian^CDCREC|721 SPRING ST^^GRINNELL^IA^50112^USA^H||(641)555-0101^PRN^PH|^WPN^PH^^1^641^5550102|eng^English^ISO639|M^Married^HL70002|BAP^Baptist^HL70006|AC555^^^H^AN|555-44-4444|67-A4335^OH^20030520||H^Hispanic or Latino^HL70189|Des Moines||||||20240101|Y||||||||||^NET^Internet^h@f.org",
        )
        .unwrap();
        assert_eq!(p.identifiers[0].authority_id.as_deref(), Some("2.16.840.1"));
        let kinds: Vec<_> = p.identifiers.iter().map(|i| i.kind.as_deref()).collect();
        assert_eq!(kinds, [Some("PI"), Some("SS"), Some("DL")]);
        assert_eq!(p.identifiers[2].authority.as_deref(), Some("OH"));
        assert_eq!(p.other_names.len(), 2, "PID-5 repetition and PID-9");
        assert_eq!(
            p.mothers_maiden_name.unwrap().family.as_deref(),
            Some("JONES")
        );
        assert_eq!(p.races.len(), 2);
        assert_eq!(p.races[0].original.code, "2106-3");
        assert_eq!(p.addresses[0].city.as_deref(), Some("GRINNELL"));
        let phones: Vec<_> = p.phones.iter().map(|t| t.value.as_str()).collect();
        assert_eq!(phones, ["(641)555-0101", "+1 (641) 5550102", "h@f.org"]);
        assert_eq!(p.language.unwrap().original.code, "eng");
        assert_eq!(p.marital_status.unwrap().original.code, "M");
        assert_eq!(p.religion.unwrap().original.code, "BAP");
        assert_eq!(p.account.unwrap().value, "AC555");
        assert_eq!(p.ethnicities[0].original.code, "H");
        assert_eq!(p.birth_place.as_deref(), Some("Des Moines"));
        assert!(p.deceased_at.is_some());
        assert_eq!(p.deceased.as_deref(), Some("Y"));
    }

    #[test]
    fn a_message_without_pid_has_no_patient() {
        assert!(read("MSH|^~\\&|A\rOBX|1").is_none());
    }
}
