//! Coded elements (CWE, CE, CNE) to [`Coded`], with the standard code found.
//!
//! Where the standard code comes from, in order:
//! 1. the original coding (components 1-3) is in a standard system and
//!    valid there: [`Standard::Original`];
//! 2. the alternate coding (components 4-6) is: [`Standard::Alternate`];
//! 3. the interface's mapping table maps the original code (by system and
//!    code, then for any system), or else the alternate one; or it declares
//!    the coding's local system name to be a standard system (`system`
//!    rows) and the code is valid there: [`Standard::Mapped`];
//! 4. otherwise [`Standard::Unmapped`], and the code is noted for counting.
//!
//! Standard systems are every system [`CodingSystem::is_standard`] names,
//! however the sender spelled it (table 0396 names, OIDs, HL7 table names,
//! FHIR URIs): LOINC, SNOMED CT, ICD-10(-CM/-PCS), ICD-9-CM, RxNorm, MDC,
//! CVX, MVX, UCUM, NDC, CPT, HCPCS, CDC race and ethnicity, NCI Thesaurus
//! and the HL7 tables. When component 3 (or 6) is empty, the OID of
//! component 14 (or 17, HL7 v2.7+) names the system. Nothing is inferred
//! from display text.
//!
//! A code sent as LOINC must be a valid LOINC identifier (form and check
//! digit, [`crate::normalize::loinc`]) of a kind the field allows: an
//! observation identifier ([`Accept::OBSERVATION`]: OBX-3, OBR-4) takes
//! LOINC terms only, never Part (`LP`), answer (`LA`), answer list or group
//! codes; an answer ([`Accept::ANSWER`]: a coded OBX-5) takes terms and
//! answers. A code that fails is not claimed standard: it gets a Warning
//! (103) at its component, and is mapped or left unmapped like a local code.
//!
//! The display is component 2, or CWE-9 (original text) when component 2 is
//! empty, so a value sent as text only (`^Positive` or
//! `^^^^^^^^Positive`) is a code-less, unmapped coding with that text. An
//! original text beside a display is kept as the coded element's `text`.

use crate::hl7::ErrorCode;
use crate::normalize::coding_system::CodingSystem;
use crate::normalize::context::{At, Work};
use crate::normalize::datatypes::{string, text};
use crate::normalize::fields::{Fields, Parts};
use crate::normalize::loinc::{self, LoincKind, LoincProblem};
use crate::record::{Coded, Coding, CompactString, Standard};

/// What kind of code a field holds, which decides the LOINC identifiers
/// it accepts as standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// Any valid code of a standard system.
    General,
    /// What was observed or ordered (OBX-3, OBR-4): LOINC terms only.
    Observation,
    /// An observation's coded value (OBX-5): LOINC terms and answers.
    Answer,
}

impl Accept {
    /// Any valid code of a standard system.
    pub(crate) const GENERAL: Accept = Accept::General;
    /// An observation or service identifier.
    pub(crate) const OBSERVATION: Accept = Accept::Observation;
    /// A coded answer.
    pub(crate) const ANSWER: Accept = Accept::Answer;
}

/// Why a code in a standard system is not taken as its standard code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Invalid {
    /// Not a well-formed LOINC identifier, or a wrong check digit.
    Loinc(LoincProblem),
    /// A valid LOINC identifier of a kind the field does not take.
    Kind(LoincKind, Accept),
}

impl Invalid {
    /// The warning text (no message values; short: it travels in the
    /// record, and the code stays unmapped there).
    fn message(self) -> &'static str {
        match self {
            Invalid::Loinc(LoincProblem::Malformed) => "code sent as LOINC is not a LOINC code",
            Invalid::Loinc(LoincProblem::CheckDigit) => "LOINC code with a wrong check digit",
            Invalid::Kind(LoincKind::Part, Accept::Answer) => {
                "LOINC Part code (LP) is not an answer"
            }
            Invalid::Kind(LoincKind::Part, _) => "LOINC Part code (LP) is not an observation code",
            Invalid::Kind(LoincKind::Answer, _) => "LOINC answer (LA) is not an observation code",
            Invalid::Kind(_, Accept::Answer) => "LOINC list or group code is not an answer",
            Invalid::Kind(_, _) => "LOINC list or group code is not an observation code",
        }
    }
}

/// Checks `code` as a code of the standard `system` in a field that
/// accepts `accept`.
fn validate(system: &CodingSystem, code: &str, accept: Accept) -> Result<(), Invalid> {
    if *system != CodingSystem::Loinc {
        return Ok(());
    }
    let kind = loinc::check(code).map_err(Invalid::Loinc)?;
    let allowed = match accept {
        Accept::General => true,
        Accept::Observation => kind == LoincKind::Term,
        Accept::Answer => matches!(kind, LoincKind::Term | LoincKind::Answer),
    };
    if allowed {
        Ok(())
    } else {
        Err(Invalid::Kind(kind, accept))
    }
}

/// A CWE/CE/CNE value: the components of a field or repetition, or the
/// sub-components of a component (as in OBR-15.1, the specimen source of
/// older versions). `at` is where it stands, for warnings.
pub(crate) fn coded(
    work: &mut Work<'_>,
    parts: Parts<'_>,
    accept: Accept,
    at: At<'_>,
) -> Option<Coded> {
    parts.element()?;
    build(work, parts, accept, at)
}

/// A coded observation value (OBX-5 of type CWE, CE, CNE): read like [`coded`], but an
/// unmapped code is only counted ([`Work::unmapped_answers`]), never noted by name. An answer
/// (`ZZSECRET^Patient said something private^L`) is patient data; telemetry names codes that
/// identify *what* was measured or ordered, never what the answer was.
pub(crate) fn coded_answer(work: &mut Work<'_>, parts: Parts<'_>, at: At<'_>) -> Option<Coded> {
    coded_private(work, parts, Accept::ANSWER, at)
}

/// A coded value about the patient rather than about what was measured or
/// ordered (race, ethnicity, religion, marital status, a contact's
/// relationship, a reason for study, a body site, a refusal reason, ...):
/// read like [`coded`], but an unmapped code is only counted, as an
/// answer is ([`coded_answer`]), never noted by name.
pub(crate) fn coded_private(
    work: &mut Work<'_>,
    parts: Parts<'_>,
    accept: Accept,
    at: At<'_>,
) -> Option<Coded> {
    let before = work.unmapped.len();
    let value = coded(work, parts, accept, at);
    let noted = work.unmapped.len().saturating_sub(before);
    work.unmapped.truncate(before);
    work.unmapped_answers = work.unmapped_answers.saturating_add(noted);
    value
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
    let coded = coded(
        work,
        fields.parts(Some(field)),
        Accept::GENERAL,
        fields.at(n),
    );
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

/// The system named by component `name`, or by the OID in component `oid`
/// when `name` is empty.
fn system_of(parts: &Parts<'_>, name: usize, oid: usize) -> CodingSystem {
    let named = text(parts.part(name)).or_else(|| text(parts.part(oid)));
    CodingSystem::from_hl7(named.as_deref().unwrap_or_default())
}

fn build(work: &mut Work<'_>, parts: Parts<'_>, accept: Accept, at: At<'_>) -> Option<Coded> {
    let part = |n| string(parts.part(n));
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
        system: system_of(&parts, 6, 17),
    });
    if code.is_none() && display.is_none() && alternate.is_none() {
        return None;
    }
    let original = Coding {
        code: code.unwrap_or_default(),
        display,
        system: system_of(&parts, 3, 14),
    };
    let standard = standard(work, &original, alternate.as_ref(), accept, at);
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
    at: At<'_>,
) -> Standard {
    let mut invalid = None;
    for (coding, component, place) in [(Some(original), 1, Standard::Original)]
        .into_iter()
        .chain([(alternate, 4, Standard::Alternate)])
    {
        let Some(coding) = coding.filter(|c| !c.code.is_empty() && c.system.is_standard()) else {
            continue;
        };
        match validate(&coding.system, &coding.code, accept) {
            Ok(()) => return place,
            Err(why) => invalid = invalid.or(Some((why, component))),
        }
    }
    let sent = || {
        std::iter::once(original)
            .chain(alternate)
            .filter(|c| !c.code.is_empty())
    };
    let mapping = work.ctx.mapping;
    if let Some(target) = sent().find_map(|c| mapping.map_code(&c.system.hl7_code(), &c.code)) {
        return Standard::Mapped(Coding {
            code: target.code.as_str().into(),
            display: target.display.as_deref().map(CompactString::from),
            system: target.system.clone(),
        });
    }
    for coding in sent().filter(|c| !c.system.is_standard()) {
        let Some(system) = mapping.standard_system(&coding.system.hl7_code()) else {
            continue;
        };
        match validate(system, &coding.code, accept) {
            Ok(()) => {
                return Standard::Mapped(Coding {
                    code: coding.code.clone(),
                    display: coding.display.clone(),
                    system: system.clone(),
                });
            }
            Err(why) => {
                let component = if std::ptr::eq(coding, original) { 1 } else { 4 };
                invalid = invalid.or(Some((why, component)));
            }
        }
    }
    if let Some((why, component)) = invalid {
        work.warn(
            ErrorCode::TableValueNotFound,
            at.component(component),
            why.message(),
        );
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
    use crate::hl7::{Issue, Message};
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
            coded(work, fields.parts(fields.field(3)), accept, fields.at(3))
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
            coded(
                work,
                fields.parts(fields.field(17)),
                Accept::GENERAL,
                fields.at(17),
            )
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
    fn vaccine_manufacturers_and_hl7_tables_are_standard_everywhere() {
        for field in [
            "PMC^sanofi^MVX",
            "Y^Yes^HL70136",
            "H^High^HL70078",
            "N^No^2.16.840.1.113883.12.136",
        ] {
            let (c, unmapped) = read(field, &MappingTable::empty());
            assert_eq!(c.unwrap().standard, Standard::Original, "{field}");
            assert!(unmapped.is_empty(), "{field}");
        }
    }

    #[test]
    fn a_system_sent_as_an_oid_is_the_system_it_names() {
        let (c, unmapped) = read(
            "2345-7^Glucose^2.16.840.1.113883.6.1",
            &MappingTable::empty(),
        );
        let c = c.unwrap();
        assert_eq!(c.original.system, CodingSystem::Loinc);
        assert_eq!(c.standard, Standard::Original);
        assert!(unmapped.is_empty());
        let (c, _) = read(
            "G44.1^Headache^^^^^^^^^^^^2.16.840.1.113883.6.3",
            &MappingTable::empty(),
        );
        let c = c.unwrap();
        assert_eq!(c.original.system, CodingSystem::Icd10, "CWE-14 names it");
        assert_eq!(c.standard, Standard::Original);
    }

    /// Reads `field` as OBX-3 with `accept`; gives the coded value, the
    /// unmapped codes and the issues raised.
    fn read_with_issues(
        field: &str,
        accept: Accept,
    ) -> (Coded, Vec<(CodingSystem, String)>, Vec<Issue>) {
        let text = format!("MSH|^~\\&|A\rOBX|1|CWE|{field}");
        let ((c, issues), unmapped) = with_work(&text, &MappingTable::empty(), |work, m| {
            let fields = Fields::new(m, m.segment("OBX").unwrap());
            let c = coded(work, fields.parts(fields.field(3)), accept, fields.at(3));
            (c.unwrap(), work.issues.clone())
        });
        (c, unmapped, issues)
    }

    #[test]
    fn a_loinc_code_with_a_wrong_check_digit_is_flagged_not_claimed_standard() {
        let (c, unmapped, issues) = read_with_issues("2345-8^Glucose^LN", Accept::OBSERVATION);
        assert_eq!(c.standard, Standard::Unmapped);
        assert_eq!(unmapped, [(CodingSystem::Loinc, "2345-8".into())]);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].code, ErrorCode::TableValueNotFound);
        assert_eq!(issues[0].location.to_string(), "OBX(segment 2)-3.1");
        assert!(
            issues[0].message.contains("check digit"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn a_bad_loinc_code_is_not_rescued_by_a_local_alternate_but_a_good_alternate_is_used() {
        let (c, unmapped, issues) =
            read_with_issues("2345-8^Glucose^LN^GLU^Glucose^L", Accept::OBSERVATION);
        assert_eq!(c.standard, Standard::Unmapped);
        assert!(!unmapped.is_empty() && issues.len() == 1);
        let (c, unmapped, issues) =
            read_with_issues("GLU^Glucose^L^2345-7^Glucose^LN", Accept::OBSERVATION);
        assert_eq!(c.standard, Standard::Alternate);
        assert!(unmapped.is_empty() && issues.is_empty());
    }

    #[test]
    fn loinc_part_and_answer_codes_are_not_observation_codes() {
        for field in ["LP14635-4^Hemoglobin^LN", "LA6576-8^Positive^LN"] {
            let (c, _, issues) = read_with_issues(field, Accept::OBSERVATION);
            assert_eq!(c.standard, Standard::Unmapped, "{field}");
            assert_eq!(issues.len(), 1, "{field}");
            assert!(
                issues[0].message.contains("is not an observation"),
                "{field}"
            );
        }
    }

    #[test]
    fn loinc_answer_codes_are_valid_answers_and_part_codes_are_not() {
        let (c, _, issues) = read_with_issues("LA6576-8^Positive^LN", Accept::ANSWER);
        assert_eq!(c.standard, Standard::Original);
        assert!(issues.is_empty());
        let (c, _, issues) = read_with_issues("LP14635-4^Hemoglobin^LN", Accept::ANSWER);
        assert_eq!(c.standard, Standard::Unmapped);
        assert_eq!(issues.len(), 1);
    }

    #[test]
    fn a_local_system_declared_standard_by_the_table_is_mapped_after_its_check() {
        let table = MappingTable::parse(
            "kind,local_system,local_code,target_system,target_code\n\
             system,99LABX,,LN,\n",
        )
        .unwrap();
        let (c, unmapped) = read("2345-7^Glucose^99LABX", &table);
        let c = c.unwrap();
        let Standard::Mapped(mapped) = &c.standard else {
            panic!("{:?}", c.standard);
        };
        assert_eq!(
            (mapped.code.as_str(), &mapped.system),
            ("2345-7", &CodingSystem::Loinc)
        );
        assert_eq!(mapped.display.as_deref(), Some("Glucose"));
        assert!(unmapped.is_empty());
        let (c, unmapped) = read("2345-8^Glucose^99LABX", &table);
        assert_eq!(c.unwrap().standard, Standard::Unmapped);
        assert_eq!(unmapped.len(), 1);
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
