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
//!
//! Analyzers often send a power-of-ten unit with its `^` unescaped
//! (`x10^9/L`, `10^3/uL`), which splits it into components. When component
//! 1 is a power-of-ten base (`10`, `x10`, `X10`, `*10`, `×10`), component 2
//! is digits followed by `/` and a unit, and components 3 to 6 are empty,
//! the two are joined back into one unit and a data type warning says the
//! unit was sent unescaped (once per message for the same bytes, as the
//! unit itself is read once). A genuine CWE (`mg/dL^milligrams per
//! deciliter^UCUM`) never has such a component 1.

use crate::hl7::ErrorCode;
use crate::normalize::coding_system::CodingSystem;
use crate::normalize::context::{At, Work};
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
        let known = known.clone();
        if let Some(u) = &known {
            work.coded.count(u.ucum.is_some());
        }
        return known;
    }
    let unit = resolve_unit(work, fields.parts(Some(field)), fields.at(n));
    work.units.put(raw, unit.clone());
    unit
}

/// Reads the unit held in `parts` (a CWE inside another value, such as
/// the units of a CQ quantity), sent at `at`.
pub(crate) fn unit_in(work: &mut Work<'_>, parts: Parts<'_>, at: At<'_>) -> Option<Unit> {
    parts.element()?;
    resolve_unit(work, parts, at)
}

/// Resolves a unit not seen before in this message, sent at `at`.
fn resolve_unit(work: &mut Work<'_>, parts: Parts<'_>, at: At<'_>) -> Option<Unit> {
    if let Some(joined) = unescaped_power(&parts) {
        work.warn(
            ErrorCode::DataType,
            at,
            "unit sent with an unescaped component separator (power of ten); read as one unit",
        );
        let ucum = resolve(work.ctx.mapping, &joined, [Some(&joined), None, None]);
        return Some(finish(work, &joined, ucum));
    }
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
    Some(finish(work, sent, ucum))
}

/// The unit sent as `sent` with its UCUM code, if any (reported when none).
fn finish(work: &mut Work<'_>, sent: &str, ucum: Option<CompactString>) -> Unit {
    work.coded.count(ucum.is_some());
    if ucum.is_none() {
        work.unmapped(&CodingSystem::Ucum, sent);
    }
    let original = match &ucum {
        Some(code) if code == sent => None,
        _ => Some(sent.into()),
    };
    Unit { ucum, original }
}

/// A power-of-ten unit split by an unescaped `^` (`x10` and `9/L`), joined
/// back (`x10^9/L`); `None` for anything else (see the module doc).
fn unescaped_power(parts: &Parts<'_>) -> Option<String> {
    let base = text(parts.part(1))?;
    if !matches!(base.as_ref(), "10" | "x10" | "X10" | "*10" | "\u{d7}10") {
        return None;
    }
    let exponent = text(parts.part(2))?;
    let digits = exponent.bytes().take_while(u8::is_ascii_digit).count();
    let per_unit = exponent.get(digits..)?.strip_prefix('/')?;
    let rest_empty = (3..=6).all(|n| text(parts.part(n)).is_none());
    (digits > 0 && !per_unit.is_empty() && rest_empty).then(|| format!("{base}^{exponent}"))
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
        let (unit, _, unmapped) = read_all(obx6, mapping);
        (unit, unmapped)
    }

    fn read_all(
        obx6: &str,
        mapping: &MappingTable,
    ) -> (
        Option<Unit>,
        Vec<crate::hl7::Issue>,
        Vec<(CodingSystem, String)>,
    ) {
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
        (unit, work.issues, work.unmapped)
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
    fn a_power_of_ten_unit_with_an_unescaped_caret_is_joined_back_with_a_warning() {
        for (obx6, ucum) in [
            ("x10^9/L", "10*9/L"),
            ("10^3/uL", "10*3/uL"),
            ("X10^12/L", "10*12/L"),
        ] {
            let (u, issues, unmapped) = read_all(obx6, &MappingTable::empty());
            let u = u.unwrap();
            assert_eq!(u.ucum.as_deref(), Some(ucum), "{obx6}");
            assert_eq!(u.original.as_deref(), Some(obx6));
            assert!(unmapped.is_empty(), "{obx6}");
            assert_eq!(issues.len(), 1, "{obx6}");
            assert_eq!(issues[0].location.to_string(), "OBX(segment 2)-6");
        }
        let (u, issues, unmapped) = read_all("*10^6/mL", &MappingTable::empty());
        assert_eq!(u.unwrap().original.as_deref(), Some("*10^6/mL"));
        assert_eq!(unmapped, [(CodingSystem::Ucum, "*10^6/mL".into())]);
        assert_eq!(issues.len(), 1);
    }

    #[test]
    fn a_genuine_coded_unit_is_not_taken_for_an_unescaped_one() {
        for obx6 in [
            "mg/dL^milligrams per deciliter^UCUM",
            "10^3/uL^^UCUM",
            "10^cells^L",
            "10^^",
        ] {
            let (_, issues, _) = read_all(obx6, &MappingTable::empty());
            assert!(issues.is_empty(), "{obx6}");
        }
        let (u, _, _) = read_all(
            "mg/dL^milligrams per deciliter^UCUM",
            &MappingTable::empty(),
        );
        assert_eq!(u.unwrap().ucum.as_deref(), Some("mg/dL"));
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
