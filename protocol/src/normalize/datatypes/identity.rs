//! People, organizations and their identifiers: CX to [`Identifier`], EI to
//! [`EntityId`], XPN to [`PersonName`], XCN to [`Practitioner`], XAD to
//! [`Address`], XTN to [`Telecom`], XON to [`Organization`].
//!
//! An identifier without its value (CX.1, EI.1) is no identifier and is
//! dropped; a name, practitioner, address or organization with every part
//! empty is absent. An assigning authority (HD) gives two things: what a
//! person reads (the namespace id, else the universal id) and the universal
//! id itself (an OID) whenever it was sent.

use crate::hl7::Element;
use crate::normalize::datatypes::string;
use crate::normalize::fields::Parts;
use crate::record::{
    Address, CompactString, EntityId, Identifier, Organization, PersonName, Practitioner, Telecom,
};

/// An HD in `element` (a component whose sub-components are its parts):
/// the namespace id else the universal id, and the universal id.
fn authority(element: Option<Element<'_>>) -> (Option<CompactString>, Option<CompactString>) {
    let Some(hd) = element else {
        return (None, None);
    };
    let namespace = string(hd.subcomponent(1));
    let universal = string(hd.subcomponent(2));
    (namespace.or_else(|| universal.clone()), universal)
}

/// A CX repetition: value, assigning authority (CX.4), identifier type
/// (CX.5) and assigning facility (CX.6).
pub(crate) fn identifier(parts: Parts<'_>) -> Option<Identifier> {
    let value = string(parts.part(1))?;
    let (authority, authority_id) = authority(parts.part(4));
    Some(Identifier {
        value,
        authority,
        kind: string(parts.part(5)),
        authority_id,
        facility: self::authority(parts.part(6)).0,
    })
}

/// An EI value held in `parts` (a field's components, or a component's
/// sub-components): id, namespace id else universal id, universal id.
pub(crate) fn entity_id(parts: Parts<'_>) -> Option<EntityId> {
    let id = string(parts.part(1))?;
    let namespace = string(parts.part(2));
    let universal = string(parts.part(3));
    Some(EntityId {
        id,
        authority: namespace.or_else(|| universal.clone()),
        authority_id: universal,
    })
}

/// An XPN repetition: family name (XPN.1.1), given name, further names,
/// suffix, prefix, degree (XPN.6, else the professional suffix XPN.14) and
/// name type.
pub(crate) fn person_name(parts: Parts<'_>) -> Option<PersonName> {
    name_from(parts, 1, [4, 5, 6, 14, 7])
}

/// An XCN repetition: id number (XCN.1), name (XCN.2-7, XCN.21), assigning
/// authority (XCN.9) and identifier type (XCN.13).
pub(crate) fn practitioner(parts: Parts<'_>) -> Option<Practitioner> {
    let id = string(parts.part(1));
    let name = name_from(parts, 2, [5, 6, 7, 21, 10]);
    let (authority, authority_id) = authority(parts.part(9));
    (id.is_some() || name.is_some()).then_some(Practitioner {
        id,
        name,
        authority,
        authority_id,
        kind: string(parts.part(13)),
    })
}

/// A name starting at component `first` (family, given, middle), then the
/// components `[suffix, prefix, degree, professional suffix, type]`.
fn name_from(parts: Parts<'_>, first: usize, more: [usize; 5]) -> Option<PersonName> {
    let family = parts.part(first).and_then(|c| string(c.subcomponent(1)));
    let given = string(parts.part(first + 1));
    let middle = string(parts.part(first + 2));
    let [suffix, prefix, degree, professional, kind] = more.map(|n| string(parts.part(n)));
    let degree = match (degree, professional) {
        (Some(d), Some(p)) if d != p => Some(format!("{d}, {p}").into()),
        (d, p) => d.or(p),
    };
    let name = PersonName {
        family,
        given,
        middle,
        prefix,
        suffix,
        degree,
        kind,
    };
    let named = name.family.is_some() || name.given.is_some() || name.middle.is_some();
    (named || name.prefix.is_some() || name.suffix.is_some()).then_some(name)
}

/// An XAD repetition.
pub(crate) fn address(parts: Parts<'_>) -> Option<Address> {
    let address = Address {
        street: street(parts.part(1)),
        other: string(parts.part(2)),
        city: string(parts.part(3)),
        state: string(parts.part(4)),
        postal_code: string(parts.part(5)),
        country: string(parts.part(6)),
        kind: string(parts.part(7)),
        county: string(parts.part(9)),
    };
    (address != Address::default()).then_some(address)
}

/// XAD.1 (SAD): the street address, else the dwelling number and street
/// name.
fn street(sad: Option<Element<'_>>) -> Option<CompactString> {
    let sad = sad?;
    if let Some(street) = string(sad.subcomponent(1)) {
        return Some(street);
    }
    let name = string(sad.subcomponent(2));
    let number = string(sad.subcomponent(3));
    match (number, name) {
        (Some(n), Some(s)) => Some(format!("{n} {s}").into()),
        (n, s) => n.or(s),
    }
}

/// An XTN repetition.
pub(crate) fn telecom(parts: Parts<'_>) -> Option<Telecom> {
    let sent = string(parts.part(1));
    let value = string(parts.part(4))
        .or_else(|| phone_number(parts))
        .or_else(|| sent.clone())
        .or_else(|| string(parts.part(12)))?;
    Some(Telecom {
        text: sent.filter(|s| *s != value),
        value,
        use_code: string(parts.part(2)),
        equipment: string(parts.part(3)),
    })
}

/// XTN.5-8 written out: `+country (area) local xextension`.
fn phone_number(parts: Parts<'_>) -> Option<CompactString> {
    let local = string(parts.part(7))?;
    let mut out = String::new();
    if let Some(country) = string(parts.part(5)) {
        out.push('+');
        out.push_str(&country);
        out.push(' ');
    }
    if let Some(area) = string(parts.part(6)) {
        out.push('(');
        out.push_str(&area);
        out.push_str(") ");
    }
    out.push_str(&local);
    if let Some(extension) = string(parts.part(8)) {
        out.push_str(" x");
        out.push_str(&extension);
    }
    Some(out.into())
}

/// An XON repetition: name, identifier (XON.10, else XON.3), assigning
/// authority (XON.6) and identifier type (XON.7).
pub(crate) fn organization(parts: Parts<'_>) -> Option<Organization> {
    let (authority, authority_id) = authority(parts.part(6));
    let org = Organization {
        name: parts.part(1).and_then(|n| string(n.subcomponent(1))),
        id: string(parts.part(10)).or_else(|| string(parts.part(3))),
        authority,
        authority_id,
        kind: string(parts.part(7)),
        address: None,
        phones: Vec::new(),
    };
    (org != Organization::default()).then_some(org)
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
    fn an_identifier_keeps_value_authority_its_oid_type_and_facility() {
        let text = "MSH|^~\\&|A\rPID|1||123^^^HOSP&1.2.3&ISO^MR^LAB&9.8&ISO~456^^^&2.16.840.1.113883.4.1&ISO^SS";
        let first = read(text, 1, identifier).unwrap();
        assert_eq!(first.value, "123");
        assert_eq!(first.authority.as_deref(), Some("HOSP"));
        assert_eq!(first.authority_id.as_deref(), Some("1.2.3"));
        assert_eq!(first.kind.as_deref(), Some("MR"));
        assert_eq!(first.facility.as_deref(), Some("LAB"));
        let second = read(text, 2, identifier).unwrap();
        assert_eq!(second.authority.as_deref(), Some("2.16.840.1.113883.4.1"));
        assert_eq!(second.authority_id, second.authority);
    }

    #[test]
    fn an_identifier_without_a_value_is_dropped() {
        assert!(read("MSH|^~\\&|A\rPID|1||^^^HOSP^MR", 1, identifier).is_none());
    }

    #[test]
    fn a_name_reads_every_part_and_the_degree_or_professional_suffix() {
        let n = read(
            "MSH|^~\\&|A\rPID|1||DOE&VAN^JANE^Q^JR^DR^PHD^L^^^^^^^MD",
            1,
            person_name,
        )
        .unwrap();
        assert_eq!(n.family.as_deref(), Some("DOE"));
        assert_eq!(n.given.as_deref(), Some("JANE"));
        assert_eq!(n.middle.as_deref(), Some("Q"));
        assert_eq!(n.suffix.as_deref(), Some("JR"));
        assert_eq!(n.prefix.as_deref(), Some("DR"));
        assert_eq!(n.degree.as_deref(), Some("PHD, MD"));
        assert_eq!(n.kind.as_deref(), Some("L"));
        assert!(read("MSH|^~\\&|A\rPID|1||^^^^^^L", 1, person_name).is_none());
    }

    #[test]
    fn a_practitioner_keeps_its_id_name_authority_and_type() {
        let p = read(
            "MSH|^~\\&|A\rPV1|1||9941339108^Smith^Adam^^Jr^Dr^MD^^NPIID&2.16.840.1.113883.4.6&ISO^L^^^NPI",
            1,
            practitioner,
        )
        .unwrap();
        assert_eq!(p.id.as_deref(), Some("9941339108"));
        let name = p.name.unwrap();
        assert_eq!(name.given.as_deref(), Some("Adam"));
        assert_eq!(name.prefix.as_deref(), Some("Dr"));
        assert_eq!(name.suffix.as_deref(), Some("Jr"));
        assert_eq!(name.degree.as_deref(), Some("MD"));
        assert_eq!(p.authority.as_deref(), Some("NPIID"));
        assert_eq!(p.authority_id.as_deref(), Some("2.16.840.1.113883.4.6"));
        assert_eq!(p.kind.as_deref(), Some("NPI"));
        let q = read("MSH|^~\\&|A\rPV1|1||^COLLECT^JOHN", 1, practitioner).unwrap();
        assert_eq!(q.id, None);
        assert!(read("MSH|^~\\&|A\rPV1|1||^^", 1, practitioner).is_none());
    }

    #[test]
    fn an_address_reads_its_parts_and_a_street_given_by_name_and_number() {
        let a = read(
            "MSH|^~\\&|A\rPID|1||721 SPRING ST^Apt 2^GRINNELL^IA^50112^USA^H^^19157~&Warden Av&8200^^Unionville",
            1,
            address,
        )
        .unwrap();
        assert_eq!(a.street.as_deref(), Some("721 SPRING ST"));
        assert_eq!(a.other.as_deref(), Some("Apt 2"));
        assert_eq!(
            (
                a.city.as_deref(),
                a.state.as_deref(),
                a.postal_code.as_deref()
            ),
            (Some("GRINNELL"), Some("IA"), Some("50112"))
        );
        assert_eq!(
            (a.country.as_deref(), a.kind.as_deref()),
            (Some("USA"), Some("H"))
        );
        assert_eq!(a.county.as_deref(), Some("19157"));
        let b = read(
            "MSH|^~\\&|A\rPID|1||721 SPRING ST~&Warden Av&8200^^Unionville",
            2,
            address,
        )
        .unwrap();
        assert_eq!(b.street.as_deref(), Some("8200 Warden Av"));
    }

    #[test]
    fn a_phone_number_is_the_number_sent_or_built_from_its_parts() {
        let t = read(
            "MSH|^~\\&|A\rPID|1||(206)3345232^PRN^PH~^WPN^PH^^1^810^4502369^12~^NET^Internet^a@b.org",
            1,
            telecom,
        )
        .unwrap();
        assert_eq!(t.value, "(206)3345232");
        assert_eq!(t.text, None);
        assert_eq!(t.use_code.as_deref(), Some("PRN"));
        let built = read(
            "MSH|^~\\&|A\rPID|1||x~^WPN^PH^^1^810^4502369^12",
            2,
            telecom,
        )
        .unwrap();
        assert_eq!(built.value, "+1 (810) 4502369 x12");
        let mail = read("MSH|^~\\&|A\rPID|1||x~y~^NET^Internet^a@b.org", 3, telecom).unwrap();
        assert_eq!(mail.value, "a@b.org");
        let both = read(
            "MSH|^~\\&|A\rPID|1||(130) 724-0433^PRN^PH^^^431^2780404",
            1,
            telecom,
        )
        .unwrap();
        assert_eq!(both.value, "(431) 2780404");
        assert_eq!(both.text.as_deref(), Some("(130) 724-0433"));
    }

    #[test]
    fn an_organization_keeps_its_clia_number_and_authority() {
        let o = read(
            "MSH|^~\\&|A\rOBX|1||State Hygienic Laboratory^L^^^^IA Public Health Lab&2.16.840.1.114222.4.1.10411&ISO^FI^^^16D0648109",
            1,
            organization,
        )
        .unwrap();
        assert_eq!(o.name.as_deref(), Some("State Hygienic Laboratory"));
        assert_eq!(o.id.as_deref(), Some("16D0648109"));
        assert_eq!(o.authority.as_deref(), Some("IA Public Health Lab"));
        assert_eq!(
            o.authority_id.as_deref(),
            Some("2.16.840.1.114222.4.1.10411")
        );
        assert_eq!(o.kind.as_deref(), Some("FI"));
    }

    #[test]
    fn an_entity_id_keeps_its_namespace_and_universal_id() {
        let e = read(
            "MSH|^~\\&|A\rOBR|1||986^IA PHIMS^2.16.840.1.114222^ISO",
            1,
            entity_id,
        )
        .unwrap();
        assert_eq!(e.id, "986");
        assert_eq!(e.authority.as_deref(), Some("IA PHIMS"));
        assert_eq!(e.authority_id.as_deref(), Some("2.16.840.1.114222"));
    }
}
