//! Coded elements (CWE, CE, CNE) to [`Coded`], with the standard code found.
//!
//! Where the standard code comes from, in order:
//! 1. the original coding (components 1-3) is in a standard system:
//!    [`Standard::Original`];
//! 2. the alternate coding (components 4-6) is: [`Standard::Alternate`];
//! 3. the interface's mapping table knows the original code (by system and
//!    code, then for any system), or else the alternate one:
//!    [`Standard::Mapped`];
//! 4. otherwise [`Standard::Unmapped`], and the code is noted for counting.
//!
//! Standard systems are LOINC, SNOMED CT, ICD-10 and ICD-10-CM, RxNorm, MDC,
//! CVX, UCUM, NDC and CPT. A field may accept more ([`Accept`]: MVX for a
//! vaccine manufacturer, an HL7 table for a route). Everything else (`L`,
//! `LOCAL`, `99zzz`, ICD-9-CM, any other name) goes through the mapping
//! table. Nothing is inferred from display text.
//!
//! The display is component 2, or CWE-9 (original text) when component 2 is
//! empty, so a value sent as text only (`^Positive` or
//! `^^^^^^^^Positive`) is a code-less, unmapped coding with that text. An
//! original text beside a display is kept as the coded element's `text`.

use crate::normalize::coding_system::CodingSystem;
use crate::normalize::context::Work;
use crate::normalize::datatypes::{string, text};
use crate::normalize::fields::{Fields, Parts};
use crate::record::{Coded, Coding, CompactString, Standard};

/// Coding systems a particular field accepts as standard, besides the
/// general list (names as sent, compared case-insensitively).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accept(pub(crate) &'static [&'static str]);

impl Accept {
    /// Only the general standard systems.
    pub(crate) const GENERAL: Accept = Accept(&[]);

    fn allows(self, system: &CodingSystem) -> bool {
        match system {
            CodingSystem::Loinc
            | CodingSystem::SnomedCt
            | CodingSystem::Icd10Cm
            | CodingSystem::Icd10
            | CodingSystem::RxNorm
            | CodingSystem::Mdc
            | CodingSystem::Cvx
            | CodingSystem::Ucum
            | CodingSystem::Ndc
            | CodingSystem::Cpt => true,
            CodingSystem::Icd9Cm | CodingSystem::Local(_) => false,
            CodingSystem::Other(name) => self.0.iter().any(|a| a.eq_ignore_ascii_case(name)),
        }
    }
}

/// A CWE/CE/CNE value: the components of a field or repetition, or the
/// sub-components of a component (as in OBR-15.1, the specimen source of
/// older versions).
pub(crate) fn coded(work: &mut Work<'_>, parts: Parts<'_>, accept: Accept) -> Option<Coded> {
    parts.element()?;
    build(work, parts, accept)
}

/// Field `n` of `fields` read by [`coded`] with only the general standard
/// systems, for a field whose value usually repeats on every segment of a
/// message (OBX-17, one analyzer's method): the same bytes are resolved
/// once per message, and later ones are copies of the first result (its
/// unmapped code was already noted).
pub(crate) fn repeated_coded(work: &mut Work<'_>, fields: &Fields<'_>, n: usize) -> Option<Coded> {
    let field = fields.field(n)?;
    let raw = field.raw();
    if let Some(known) = work.codes.get(raw) {
        return known.clone();
    }
    let coded = coded(work, fields.parts(Some(field)), Accept::GENERAL);
    work.codes.put(raw, coded.clone());
    coded
}

/// The placeholder for a required code that was not sent: an empty code in
/// an unnamed system, unmapped (the caller warns).
pub(crate) fn missing_code() -> Coded {
    Coded {
        original: Coding {
            code: CompactString::const_new(""),
            display: None,
            system: CodingSystem::Other(CompactString::const_new("")),
        },
        alternate: None,
        standard: Standard::Unmapped,
        text: None,
    }
}

fn build(work: &mut Work<'_>, parts: Parts<'_>, accept: Accept) -> Option<Coded> {
    let part = |n| string(parts.part(n));
    let system = |n| CodingSystem::from_hl7(text(parts.part(n)).as_deref().unwrap_or_default());
    let code = part(1);
    let original_text = part(9);
    let display = part(2);
    let (display, text) = match display {
        Some(d) => {
            let text = original_text.filter(|t| *t != d);
            (Some(d), text)
        }
        None => (original_text, None),
    };
    let alternate = part(4).map(|code| Coding {
        code,
        display: part(5),
        system: system(6),
    });
    if code.is_none() && display.is_none() && alternate.is_none() {
        return None;
    }
    let original = Coding {
        code: code.unwrap_or_default(),
        display,
        system: system(3),
    };
    let standard = standard(work, &original, alternate.as_ref(), accept);
    Some(Coded {
        original,
        alternate,
        standard,
        text,
    })
}

fn standard(
    work: &mut Work<'_>,
    original: &Coding,
    alternate: Option<&Coding>,
    accept: Accept,
) -> Standard {
    if !original.code.is_empty() && accept.allows(&original.system) {
        return Standard::Original;
    }
    if alternate.is_some_and(|a| accept.allows(&a.system)) {
        return Standard::Alternate;
    }
    let mapped = std::iter::once(original)
        .chain(alternate)
        .filter(|c| !c.code.is_empty())
        .find_map(|c| work.ctx.mapping.map_code(c.system.hl7_code(), &c.code));
    if let Some(target) = mapped {
        return Standard::Mapped(Coding {
            code: target.code.as_str().into(),
            display: target.display.as_deref().map(CompactString::from),
            system: target.system.clone(),
        });
    }
    if !original.code.is_empty() {
        work.unmapped(&original.system, &original.code);
    }
    Standard::Unmapped
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::hl7::Message;
    use crate::normalize::context::Context;
    use crate::normalize::mapping::MappingTable;

    const MAP: &str = "kind,local_system,local_code,target_system,target_code,target_display\n\
        code,99LAB,GLU,LN,2345-7,Glucose\n\
        code,,K,LN,2823-3,\n";

    fn read(field: &str, mapping: &MappingTable) -> (Option<Coded>, Vec<(CodingSystem, String)>) {
        read_accepting(field, mapping, Accept::GENERAL)
    }

    fn read_accepting(
        field: &str,
        mapping: &MappingTable,
        accept: Accept,
    ) -> (Option<Coded>, Vec<(CodingSystem, String)>) {
        let text = format!("MSH|^~\\&|A\rOBX|1|CWE|{field}");
        with_work(&text, mapping, |work, m| {
            let fields = Fields::new(m, m.segment("OBX").unwrap());
            coded(work, fields.parts(fields.field(3)), accept)
        })
    }

    /// Runs `read` on the parsed `text` with a fresh run; gives its result
    /// and the unmapped codes noted.
    fn with_work<R>(
        text: &str,
        mapping: &MappingTable,
        read: impl FnOnce(&mut Work<'_>, &Message<'_>) -> R,
    ) -> (R, Vec<(CodingSystem, String)>) {
        let m = Message::parse(text.as_bytes()).unwrap();
        let tz = TimeZone::UTC;
        let mut work = Work::new(
            Context {
                time_zone: &tz,
                mapping,
            },
            Vec::new(),
        );
        let out = read(&mut work, &m);
        (out, work.unmapped)
    }

    #[test]
    fn a_repeated_method_is_read_the_same_and_counted_once() {
        let obx = "OBX|1|NM|X||1||||||||||||M1^Method^L";
        let text = format!("MSH|^~\\&|A\r{obx}\r{obx}");
        let mapping = MappingTable::empty();
        let (read, unmapped) = with_work(&text, &mapping, |work, m| {
            m.segments()
                .filter(|s| s.id() == "OBX")
                .map(|s| repeated_coded(work, &Fields::new(m, s), 17))
                .collect::<Vec<_>>()
        });
        let (once, _) = with_work(&text, &mapping, |work, m| {
            let fields = Fields::new(m, m.segment("OBX").unwrap());
            coded(work, fields.parts(fields.field(17)), Accept::GENERAL)
        });
        assert_eq!(once.as_ref().unwrap().original.code, "M1");
        assert_eq!(read, [once.clone(), once]);
        assert_eq!(unmapped, [(CodingSystem::Local("L".into()), "M1".into())]);
    }

    #[test]
    fn a_loinc_code_is_its_own_standard() {
        let (c, unmapped) = read("2345-7^Glucose^LN", &MappingTable::empty());
        let c = c.unwrap();
        assert_eq!(c.standard, Standard::Original);
        assert_eq!(c.original.display.as_deref(), Some("Glucose"));
        assert_eq!(c.original.system, CodingSystem::Loinc);
        assert!(unmapped.is_empty());
    }

    #[test]
    fn a_loinc_alternate_beside_a_local_code_is_the_standard() {
        let (c, unmapped) = read(
            "470^HEMOGLOBINA^LAB_COD ^718-7^Hemoglobin^LN",
            &MappingTable::empty(),
        );
        let c = c.unwrap();
        assert_eq!(c.standard, Standard::Alternate);
        assert_eq!(c.original.system, CodingSystem::Other("LAB_COD".into()));
        assert_eq!(c.standard_coding().unwrap().code, "718-7");
        assert!(unmapped.is_empty());
    }

    #[test]
    fn a_local_code_is_mapped_by_system_then_by_any_system() {
        let table = MappingTable::parse(MAP).unwrap();
        let (c, _) = read("GLU^Glucose^99LAB", &table);
        let mapped = c.unwrap().standard_coding().cloned().unwrap();
        assert_eq!(
            (mapped.code.as_str(), mapped.system),
            ("2345-7", CodingSystem::Loinc)
        );
        let (c, _) = read("K^Potassium^L", &table);
        assert_eq!(c.unwrap().standard_coding().unwrap().code, "2823-3");
    }

    #[test]
    fn an_unknown_local_code_is_unmapped_and_reported() {
        let (c, unmapped) = read("GLU^Glucose^L", &MappingTable::empty());
        assert_eq!(c.unwrap().standard, Standard::Unmapped);
        assert_eq!(unmapped, [(CodingSystem::Local("L".into()), "GLU".into())]);
    }

    #[test]
    fn icd10_sent_as_i10_is_icd10_cm() {
        let (c, _) = read("E11.9^Type 2 diabetes^I10", &MappingTable::empty());
        let c = c.unwrap();
        assert_eq!(c.original.system, CodingSystem::Icd10Cm);
        assert_eq!(c.standard, Standard::Original);
    }

    #[test]
    fn a_field_specific_system_is_accepted_only_where_allowed() {
        let (c, _) = read("PMC^sanofi^MVX", &MappingTable::empty());
        assert_eq!(c.unwrap().standard, Standard::Unmapped);
        let (c, _) = read_accepting("PMC^sanofi^MVX", &MappingTable::empty(), Accept(&["MVX"]));
        assert_eq!(c.unwrap().standard, Standard::Original);
    }

    #[test]
    fn text_only_values_are_kept_but_not_counted() {
        let (c, unmapped) = read("^Hemolyzed", &MappingTable::empty());
        let c = c.unwrap();
        assert_eq!(c.original.code, "");
        assert_eq!(c.original.display.as_deref(), Some("Hemolyzed"));
        assert_eq!(c.standard, Standard::Unmapped);
        assert!(unmapped.is_empty());
        assert!(read("", &MappingTable::empty()).0.is_none());
    }

    #[test]
    fn original_text_alone_is_the_display_not_raw_delimiters() {
        let (c, unmapped) = read("^^^^^^^^Positive for influenza A", &MappingTable::empty());
        let c = c.unwrap();
        assert_eq!(c.original.code, "");
        assert_eq!(
            c.original.display.as_deref(),
            Some("Positive for influenza A")
        );
        assert_eq!(c.standard, Standard::Unmapped);
        assert!(unmapped.is_empty());
        let (c, _) = read("POS^Positive^L^^^^^^as typed", &MappingTable::empty());
        assert_eq!(c.unwrap().original.display.as_deref(), Some("Positive"));
    }
}
