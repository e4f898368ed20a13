//! Identifiers and names: CX to [`Identifier`], XPN to [`PersonName`], XCN
//! to [`Practitioner`].
//!
//! An identifier without its value (CX.1) is no identifier and is dropped;
//! a name or practitioner with every part empty is absent.

use crate::normalize::datatypes::string;
use crate::normalize::fields::Parts;
use crate::record::{Identifier, PersonName, Practitioner};

/// A CX repetition: value, assigning authority (CX.4 namespace id, or its
/// universal id when there is no namespace) and identifier type (CX.5).
pub(crate) fn identifier(parts: Parts<'_>) -> Option<Identifier> {
    let value = string(parts.part(1))?;
    let authority = parts
        .part(4)
        .and_then(|hd| string(hd.subcomponent(1)).or_else(|| string(hd.subcomponent(2))));
    Some(Identifier {
        value,
        authority,
        kind: string(parts.part(5)),
        ..Identifier::default()
    })
}

/// An XPN repetition: family name (XPN.1.1), given name, further names.
pub(crate) fn person_name(parts: Parts<'_>) -> Option<PersonName> {
    name_from(parts, 1)
}

/// An XCN repetition: id number (XCN.1) and name (XCN.2-4).
pub(crate) fn practitioner(parts: Parts<'_>) -> Option<Practitioner> {
    let id = string(parts.part(1));
    let name = name_from(parts, 2);
    (id.is_some() || name.is_some()).then_some(Practitioner {
        id,
        name,
        ..Practitioner::default()
    })
}

/// Family, given and middle names starting at component `first`.
fn name_from(parts: Parts<'_>, first: usize) -> Option<PersonName> {
    let family = parts.part(first).and_then(|c| string(c.subcomponent(1)));
    let given = string(parts.part(first + 1));
    let middle = string(parts.part(first + 2));
    (family.is_some() || given.is_some() || middle.is_some()).then_some(PersonName {
        family,
        given,
        middle,
        ..PersonName::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::Message;
    use crate::normalize::fields::Fields;

    /// Reads field 3, repetition `rep`, of the second segment with `read`.
    fn read<T>(text: &str, rep: usize, read: impl Fn(Parts<'_>) -> T) -> T {
        let m = Message::parse(text.as_bytes()).unwrap();
        let fields = Fields::new(&m, m.segment_at(1).unwrap());
        let field = fields.field(3).and_then(|f| f.repetition(rep));
        read(fields.parts(field))
    }

    #[test]
    fn an_identifier_keeps_value_authority_and_type() {
        let text =
            "MSH|^~\\&|A\rPID|1||123^^^HOSP&1.2.3&ISO^MR~456^^^&2.16.840.1.113883.4.1&ISO^SS";
        let first = read(text, 1, identifier).unwrap();
        assert_eq!(first.value, "123");
        assert_eq!(first.authority.as_deref(), Some("HOSP"));
        assert_eq!(first.kind.as_deref(), Some("MR"));
        let second = read(text, 2, identifier).unwrap();
        assert_eq!(second.authority.as_deref(), Some("2.16.840.1.113883.4.1"));
    }

    #[test]
    fn an_identifier_without_a_value_is_dropped() {
        assert!(read("MSH|^~\\&|A\rPID|1||^^^HOSP^MR", 1, identifier).is_none());
    }

    #[test]
    fn a_name_reads_the_family_surname_and_given_names() {
        let n = read("MSH|^~\\&|A\rPID|1||DOE&VAN^JANE^Q^^^^L", 1, person_name).unwrap();
        assert_eq!(n.family.as_deref(), Some("DOE"));
        assert_eq!(n.given.as_deref(), Some("JANE"));
        assert_eq!(n.middle.as_deref(), Some("Q"));
        assert!(read("MSH|^~\\&|A\rPID|1||^^^^^^L", 1, person_name).is_none());
    }

    #[test]
    fn a_practitioner_has_an_id_or_a_name() {
        let p = read(
            "MSH|^~\\&|A\rPV1|1||2905^Langa^Albert^J^IV",
            1,
            practitioner,
        )
        .unwrap();
        assert_eq!(p.id.as_deref(), Some("2905"));
        assert_eq!(p.name.unwrap().given.as_deref(), Some("Albert"));
        let q = read("MSH|^~\\&|A\rPV1|1||^COLLECT^JOHN", 1, practitioner).unwrap();
        assert_eq!(q.id, None);
        assert!(read("MSH|^~\\&|A\rPV1|1||^^", 1, practitioner).is_none());
    }
}
