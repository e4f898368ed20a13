//! Units (OBX-6, RXA-7: CWE or plain text) to [`Unit`] with UCUM.
//!
//! Resolution order: a unit sent with coding system `UCUM` is taken as
//! UCUM; otherwise the interface's mapping table (its unit rows, then the
//! built-in spellings table), then the coded forms the built-in table knows
//! (IEEE 11073 MDC unit codes such as `266016^MDC_DIM_MMHG^MDC`), for the
//! original and then the alternate coding. `Unit::original` holds the unit
//! as sent (component 1, or component 2 when 1 is empty) only when it
//! differs from the UCUM code. A unit with no UCUM translation is reported
//! as unmapped under [`CodingSystem::Ucum`].

use crate::normalize::coding_system::CodingSystem;
use crate::normalize::context::Work;
use crate::normalize::datatypes::text;
use crate::normalize::fields::{Fields, Parts};
use crate::normalize::mapping::MappingTable;
use crate::normalize::ucum;
use crate::record::{CompactString, Unit};

/// Reads the unit in field `n` of `fields`; `None` when none was sent.
///
/// A unit already read in this message (the same bytes) is not split or
/// looked up again.
pub(crate) fn unit(work: &mut Work<'_>, fields: &Fields<'_>, n: usize) -> Option<Unit> {
    let field = fields.field(n)?;
    let raw = field.raw();
    if let Some(known) = work.units.get(raw) {
        return known.clone();
    }
    let unit = resolve_unit(work, fields.parts(Some(field)));
    work.units.put(raw, unit.clone());
    unit
}

/// Resolves a unit not seen before in this message.
fn resolve_unit(work: &mut Work<'_>, parts: Parts<'_>) -> Option<Unit> {
    let part = |n| text(parts.part(n));
    let (id, sent_text, system) = (part(1), part(2), part(3));
    let original = [id.as_deref(), sent_text.as_deref(), system.as_deref()];
    let sent = original[0].or(original[1])?;
    let ucum = resolve(work.ctx.mapping, sent, original).or_else(|| {
        let (alt_id, alt_text, alt_system) = (part(4), part(5), part(6));
        resolve_coded([
            alt_id.as_deref(),
            alt_text.as_deref(),
            alt_system.as_deref(),
        ])
    });
    if ucum.is_none() {
        work.unmapped(&CodingSystem::Ucum, sent);
    }
    let original = match &ucum {
        Some(code) if code == sent => None,
        _ => Some(sent.into()),
    };
    Some(Unit { ucum, original })
}

/// The UCUM code of the original coding.
fn resolve(mapping: &MappingTable, sent: &str, cwe: [Option<&str>; 3]) -> Option<CompactString> {
    let system = cwe[2].unwrap_or_default();
    if CodingSystem::from_hl7(system) == CodingSystem::Ucum {
        return Some(sent.into());
    }
    mapping
        .map_unit(sent)
        .map(|m| m.ucum.into())
        .or_else(|| resolve_coded(cwe))
}

/// The UCUM code of a coded unit, from the built-in tables.
fn resolve_coded(cwe: [Option<&str>; 3]) -> Option<CompactString> {
    let [id, text, system] = cwe.map(Option::unwrap_or_default);
    if id.is_empty() && text.is_empty() {
        return None;
    }
    ucum::coded_unit_to_ucum(id, text, system).map(|u| u.code.into())
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::hl7::Message;
    use crate::normalize::context::Context;

    fn read(obx6: &str, mapping: &MappingTable) -> (Option<Unit>, Vec<(CodingSystem, String)>) {
        let text = format!("MSH|^~\\&|A\rOBX|1|NM|X||1|{obx6}");
        let m = Message::parse(text.as_bytes()).unwrap();
        let tz = TimeZone::UTC;
        let mut work = Work::new(
            Context {
                time_zone: &tz,
                mapping,
            },
            Vec::new(),
        );
        let fields = Fields::new(&m, m.segment("OBX").unwrap());
        let unit = unit(&mut work, &fields, 6);
        (unit, work.unmapped)
    }

    #[test]
    fn a_ucum_unit_is_kept_once() {
        let (u, _) = read("mg/dL", &MappingTable::empty());
        assert_eq!(
            u.unwrap(),
            Unit {
                ucum: Some("mg/dL".into()),
                original: None
            }
        );
    }

    #[test]
    fn a_lab_spelling_is_translated_and_the_original_kept() {
        let (u, _) = read("mg/dl", &MappingTable::empty());
        let u = u.unwrap();
        assert_eq!(u.ucum.as_deref(), Some("mg/dL"));
        assert_eq!(u.original.as_deref(), Some("mg/dl"));
    }

    #[test]
    fn an_mdc_unit_code_becomes_ucum() {
        let (u, unmapped) = read("266016^MDC_DIM_MMHG^MDC", &MappingTable::empty());
        let u = u.unwrap();
        assert_eq!(u.ucum.as_deref(), Some("mm[Hg]"));
        assert_eq!(u.original.as_deref(), Some("266016"));
        assert!(unmapped.is_empty());
    }

    #[test]
    fn the_mapping_table_wins_over_the_built_in_table() {
        let table = MappingTable::parse(
            "kind,local_system,local_code,target_system,target_code,target_display\n\
             unit,,tera.l-1,UCUM,10*12/uL,\n",
        )
        .unwrap();
        let (u, _) = read("tera.l-1", &table);
        assert_eq!(u.unwrap().ucum.as_deref(), Some("10*12/uL"));
    }

    #[test]
    fn an_unknown_unit_is_kept_and_reported() {
        let (u, unmapped) = read("bottles", &MappingTable::empty());
        assert_eq!(
            u.unwrap(),
            Unit {
                ucum: None,
                original: Some("bottles".into())
            }
        );
        assert_eq!(unmapped, [(CodingSystem::Ucum, "bottles".into())]);
        assert!(read("", &MappingTable::empty()).0.is_none());
    }
}
