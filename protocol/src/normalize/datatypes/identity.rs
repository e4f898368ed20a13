//! Identifiers and names: CX to [`Identifier`], XPN to [`PersonName`], XCN
//! to [`Practitioner`].
//!
//! An identifier without its value (CX.1) is no identifier and is dropped;
//! a name or practitioner with every part empty is absent.

use crate::hl7::Element;
use crate::normalize::datatypes::string;
use crate::record::{Identifier, PersonName, Practitioner};

/// A CX repetition: value, assigning authority (CX.4 namespace id, or its
/// universal id when there is no namespace) and identifier type (CX.5).
pub(crate) fn identifier(element: Option<Element<'_>>) -> Option<Identifier> {
    let element = element?;
    let value = string(element.component(1))?;
    let authority = element
        .component(4)
        .and_then(|hd| string(hd.subcomponent(1)).or_else(|| string(hd.subcomponent(2))));
    Some(Identifier {
        value,
        authority,
        kind: string(element.component(5)),
    })
}

/// An XPN repetition: family name (XPN.1.1), given name, further names.
pub(crate) fn person_name(element: Option<Element<'_>>) -> Option<PersonName> {
    let element = element?;
    name_from(element, 1)
}

/// An XCN repetition: id number (XCN.1) and name (XCN.2-4).
pub(crate) fn practitioner(element: Option<Element<'_>>) -> Option<Practitioner> {
    let element = element?;
    let id = string(element.component(1));
    let name = name_from(element, 2);
    (id.is_some() || name.is_some()).then_some(Practitioner { id, name })
}

/// Family, given and middle names starting at component `first`.
fn name_from(element: Element<'_>, first: usize) -> Option<PersonName> {
    let family = element
        .component(first)
        .and_then(|c| string(c.subcomponent(1)));
    let given = string(element.component(first + 1));
    let middle = string(element.component(first + 2));
    (family.is_some() || given.is_some() || middle.is_some()).then_some(PersonName {
        family,
        given,
        middle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::Message;

    fn field(text: &str) -> Element<'_> {
        let m = Message::parse(text.as_bytes()).unwrap();
        let seg = m.segment_at(1).unwrap();
        seg.field(3).unwrap()
    }

    #[test]
    fn an_identifier_keeps_value_authority_and_type() {
        let text =
            "MSH|^~\\&|A\rPID|1||123^^^HOSP&1.2.3&ISO^MR~456^^^&2.16.840.1.113883.4.1&ISO^SS";
        let f = field(text);
        let first = identifier(f.repetition(1)).unwrap();
        assert_eq!(first.value, "123");
        assert_eq!(first.authority.as_deref(), Some("HOSP"));
        assert_eq!(first.kind.as_deref(), Some("MR"));
        let second = identifier(f.repetition(2)).unwrap();
        assert_eq!(second.authority.as_deref(), Some("2.16.840.1.113883.4.1"));
    }

    #[test]
    fn an_identifier_without_a_value_is_dropped() {
        assert!(identifier(field("MSH|^~\\&|A\rPID|1||^^^HOSP^MR").repetition(1)).is_none());
    }

    #[test]
    fn a_name_reads_the_family_surname_and_given_names() {
        let n = person_name(Some(field("MSH|^~\\&|A\rPID|1||DOE&VAN^JANE^Q^^^^L"))).unwrap();
        assert_eq!(n.family.as_deref(), Some("DOE"));
        assert_eq!(n.given.as_deref(), Some("JANE"));
        assert_eq!(n.middle.as_deref(), Some("Q"));
        assert!(person_name(Some(field("MSH|^~\\&|A\rPID|1||^^^^^^L"))).is_none());
    }

    #[test]
    fn a_practitioner_has_an_id_or_a_name() {
        let p = practitioner(Some(field("MSH|^~\\&|A\rPV1|1||2905^Langa^Albert^J^IV"))).unwrap();
        assert_eq!(p.id.as_deref(), Some("2905"));
        assert_eq!(p.name.unwrap().given.as_deref(), Some("Albert"));
        let q = practitioner(Some(field("MSH|^~\\&|A\rPV1|1||^COLLECT^JOHN"))).unwrap();
        assert_eq!(q.id, None);
        assert!(practitioner(Some(field("MSH|^~\\&|A\rPV1|1||^^"))).is_none());
    }
}
