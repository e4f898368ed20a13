//! Coding systems named in HL7 v2 coded fields (CWE/CE component 3,
//! "name of coding system", HL7 table 0396).
//!
//! Invariants:
//! - [`CodingSystem::from_hl7`] never fails: a name it does not know becomes
//!   [`CodingSystem::Other`] with the trimmed original text, so nothing a
//!   sender wrote is lost.
//! - Every standard variant has exactly one canonical HL7 code
//!   ([`CodingSystem::hl7_code`]); `from_hl7(x.hl7_code()) == x` for all of
//!   them.
//! - The serde form is part of the wire format (postcard encodes the variant
//!   index): new variants are appended at the end, never inserted.

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::hl7::element::trim;

/// A terminology a code belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CodingSystem {
    /// LOINC (`LN`).
    Loinc,
    /// SNOMED CT (`SCT`; also sent as `SNM`, `SNOMED`, `SNOMED-CT`).
    SnomedCt,
    /// ICD-10-CM, the US clinical modification (`I10C`; `I10` is read as
    /// ICD-10-CM too, which is what senders mean by it in practice).
    Icd10Cm,
    /// ICD-10, the WHO edition (only when spelled out: `ICD10`, `ICD-10`).
    Icd10,
    /// ICD-9-CM (`I9C`; `I9` is read as ICD-9-CM too, which is what US senders mean by it).
    Icd9Cm,
    /// RxNorm (`RXNORM`).
    RxNorm,
    /// ISO/IEEE 11073-10101 medical device nomenclature (`MDC`).
    Mdc,
    /// CDC vaccine codes (`CVX`).
    Cvx,
    /// Unified Code for Units of Measure (`UCUM`).
    Ucum,
    /// National Drug Code (`NDC`).
    Ndc,
    /// CPT-4 (`C4`).
    Cpt,
    /// A local system: `L`, `LOCAL` or the HL7 `99zzz` pattern; holds the name as sent.
    Local(CompactString),
    /// Any other named system; holds the name as sent (trimmed).
    Other(CompactString),
}

/// Spellings of the standard systems, matched ASCII case-insensitively.
const SPELLINGS: &[(&str, CodingSystem)] = &[
    ("LN", CodingSystem::Loinc),
    ("LOINC", CodingSystem::Loinc),
    ("SCT", CodingSystem::SnomedCt),
    ("SNM", CodingSystem::SnomedCt),
    ("SNM3", CodingSystem::SnomedCt),
    ("SNOMED", CodingSystem::SnomedCt),
    ("SNOMED-CT", CodingSystem::SnomedCt),
    ("SNOMEDCT", CodingSystem::SnomedCt),
    ("I10C", CodingSystem::Icd10Cm),
    ("ICD10CM", CodingSystem::Icd10Cm),
    ("ICD-10-CM", CodingSystem::Icd10Cm),
    ("I10", CodingSystem::Icd10Cm),
    ("ICD10", CodingSystem::Icd10),
    ("ICD-10", CodingSystem::Icd10),
    ("I9C", CodingSystem::Icd9Cm),
    ("I9", CodingSystem::Icd9Cm),
    ("ICD9CM", CodingSystem::Icd9Cm),
    ("ICD-9-CM", CodingSystem::Icd9Cm),
    ("RXNORM", CodingSystem::RxNorm),
    ("MDC", CodingSystem::Mdc),
    ("CVX", CodingSystem::Cvx),
    ("UCUM", CodingSystem::Ucum),
    ("NDC", CodingSystem::Ndc),
    ("C4", CodingSystem::Cpt),
    ("CPT", CodingSystem::Cpt),
    ("CPT4", CodingSystem::Cpt),
    ("CPT-4", CodingSystem::Cpt),
];

impl CodingSystem {
    /// Identifies a coding system from its HL7 v2 name (table 0396 and the
    /// common variants senders use). Surrounding whitespace is ignored and
    /// standard names match case-insensitively; `L`, `LOCAL` and `99` followed
    /// by exactly three ASCII alphanumerics are local; anything else is
    /// [`CodingSystem::Other`].
    pub fn from_hl7(name_of_coding_system: &str) -> CodingSystem {
        // The names nearly every message uses, as they are usually spelled.
        match name_of_coding_system {
            "LN" => return CodingSystem::Loinc,
            "UCUM" => return CodingSystem::Ucum,
            "MDC" => return CodingSystem::Mdc,
            "SCT" => return CodingSystem::SnomedCt,
            "" => return CodingSystem::Other(CompactString::const_new("")),
            _ => {}
        }
        let name = trim(name_of_coding_system);
        if let Some((_, system)) = SPELLINGS
            .iter()
            .find(|(spelling, _)| spelling.eq_ignore_ascii_case(name))
        {
            return system.clone();
        }
        if name.eq_ignore_ascii_case("L") || name.eq_ignore_ascii_case("LOCAL") || is_99zzz(name) {
            return CodingSystem::Local(name.into());
        }
        CodingSystem::Other(name.into())
    }

    /// The canonical HL7 v2 name: `LN`, `SCT`, `I10C`, `ICD10`, `I9C`, `RXNORM`,
    /// `MDC`, `CVX`, `UCUM`, `NDC`, `C4`, or the held name for local and other
    /// systems.
    pub fn hl7_code(&self) -> &str {
        match self {
            CodingSystem::Loinc => "LN",
            CodingSystem::SnomedCt => "SCT",
            CodingSystem::Icd10Cm => "I10C",
            CodingSystem::Icd10 => "ICD10",
            CodingSystem::Icd9Cm => "I9C",
            CodingSystem::RxNorm => "RXNORM",
            CodingSystem::Mdc => "MDC",
            CodingSystem::Cvx => "CVX",
            CodingSystem::Ucum => "UCUM",
            CodingSystem::Ndc => "NDC",
            CodingSystem::Cpt => "C4",
            CodingSystem::Local(name) | CodingSystem::Other(name) => name,
        }
    }

    /// The FHIR/HL7 system URI, for standard systems only.
    pub fn uri(&self) -> Option<&'static str> {
        match self {
            CodingSystem::Loinc => Some("http://loinc.org"),
            CodingSystem::SnomedCt => Some("http://snomed.info/sct"),
            CodingSystem::Icd10Cm => Some("http://hl7.org/fhir/sid/icd-10-cm"),
            CodingSystem::Icd10 => Some("http://hl7.org/fhir/sid/icd-10"),
            CodingSystem::Icd9Cm => Some("http://hl7.org/fhir/sid/icd-9-cm"),
            CodingSystem::RxNorm => Some("http://www.nlm.nih.gov/research/umls/rxnorm"),
            CodingSystem::Mdc => Some("urn:iso:std:iso:11073:10101"),
            CodingSystem::Cvx => Some("http://hl7.org/fhir/sid/cvx"),
            CodingSystem::Ucum => Some("http://unitsofmeasure.org"),
            CodingSystem::Ndc => Some("http://hl7.org/fhir/sid/ndc"),
            CodingSystem::Cpt => Some("http://www.ama-assn.org/go/cpt"),
            CodingSystem::Local(_) | CodingSystem::Other(_) => None,
        }
    }

    /// True for the standard terminologies (everything but `Local` and `Other`).
    pub fn is_standard(&self) -> bool {
        !matches!(self, CodingSystem::Local(_) | CodingSystem::Other(_))
    }
}

impl fmt::Display for CodingSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hl7_code())
    }
}

/// The HL7 local-table pattern `99zzz`: `99` then three ASCII alphanumerics.
fn is_99zzz(name: &str) -> bool {
    name.len() == 5
        && name.starts_with("99")
        && name.bytes().skip(2).all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_0396_spellings_are_recognized() {
        let cases = [
            ("LN", CodingSystem::Loinc),
            ("LOINC", CodingSystem::Loinc),
            ("SCT", CodingSystem::SnomedCt),
            ("SNM", CodingSystem::SnomedCt),
            ("SNOMED", CodingSystem::SnomedCt),
            ("SNOMED-CT", CodingSystem::SnomedCt),
            ("I10", CodingSystem::Icd10Cm),
            ("ICD10", CodingSystem::Icd10),
            ("I10C", CodingSystem::Icd10Cm),
            ("ICD-10-CM", CodingSystem::Icd10Cm),
            ("I9C", CodingSystem::Icd9Cm),
            ("I9", CodingSystem::Icd9Cm),
            ("RXNORM", CodingSystem::RxNorm),
            ("RxNorm", CodingSystem::RxNorm),
            ("MDC", CodingSystem::Mdc),
            ("CVX", CodingSystem::Cvx),
            ("UCUM", CodingSystem::Ucum),
            ("NDC", CodingSystem::Ndc),
            ("C4", CodingSystem::Cpt),
            ("CPT", CodingSystem::Cpt),
        ];
        for (name, expected) in cases {
            assert_eq!(CodingSystem::from_hl7(name), expected, "{name}");
        }
    }

    #[test]
    fn names_are_trimmed_and_case_insensitive() {
        assert_eq!(CodingSystem::from_hl7("  ln "), CodingSystem::Loinc);
        assert_eq!(CodingSystem::from_hl7("snomed-ct"), CodingSystem::SnomedCt);
    }

    #[test]
    fn local_systems_keep_their_name() {
        assert_eq!(CodingSystem::from_hl7("L"), CodingSystem::Local("L".into()));
        assert_eq!(
            CodingSystem::from_hl7("LOCAL"),
            CodingSystem::Local("LOCAL".into())
        );
        assert_eq!(
            CodingSystem::from_hl7("99LAB"),
            CodingSystem::Local("99LAB".into())
        );
        assert_eq!(
            CodingSystem::from_hl7("99A1z"),
            CodingSystem::Local("99A1z".into())
        );
    }

    #[test]
    fn near_miss_local_patterns_are_other() {
        assert_eq!(
            CodingSystem::from_hl7("99LABS"),
            CodingSystem::Other("99LABS".into())
        );
        assert_eq!(
            CodingSystem::from_hl7("99L-B"),
            CodingSystem::Other("99L-B".into())
        );
        assert_eq!(
            CodingSystem::from_hl7("ISO+"),
            CodingSystem::Other("ISO+".into())
        );
        assert_eq!(
            CodingSystem::from_hl7(""),
            CodingSystem::Other(CompactString::const_new(""))
        );
    }

    #[test]
    fn canonical_code_round_trips_for_standard_systems() {
        for (_, system) in SPELLINGS {
            assert_eq!(&CodingSystem::from_hl7(system.hl7_code()), system);
            assert!(system.is_standard());
            assert!(system.uri().is_some(), "{system}");
        }
    }

    #[test]
    fn uris_follow_fhir_conventions() {
        assert_eq!(CodingSystem::Loinc.uri(), Some("http://loinc.org"));
        assert_eq!(CodingSystem::SnomedCt.uri(), Some("http://snomed.info/sct"));
        assert_eq!(CodingSystem::Mdc.uri(), Some("urn:iso:std:iso:11073:10101"));
        assert_eq!(CodingSystem::Local("99LAB".into()).uri(), None);
    }

    #[test]
    fn serde_is_compact_in_postcard_and_readable_in_json() {
        let loinc = postcard::to_allocvec(&CodingSystem::Loinc).unwrap();
        assert_eq!(loinc, [0]);
        let local = CodingSystem::Local("99LAB".into());
        let bytes = postcard::to_allocvec(&local).unwrap();
        assert_eq!(postcard::from_bytes::<CodingSystem>(&bytes).unwrap(), local);
        assert_eq!(
            serde_json::to_string(&CodingSystem::Ucum).unwrap(),
            "\"Ucum\""
        );
        let json = serde_json::to_string(&local).unwrap();
        assert_eq!(serde_json::from_str::<CodingSystem>(&json).unwrap(), local);
    }
}
