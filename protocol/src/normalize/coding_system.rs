//! Coding systems named in HL7 v2 coded fields (CWE/CE component 3,
//! "name of coding system", HL7 table 0396), as senders really write them:
//! table 0396 names and their common variants (`LN`, `LOINC`, `SCT`,
//! `SNOMED-CT`, `I10`, `RXNORM`, ...), HL7 v2 table names (`HL70136`,
//! `HL7136`), ISO OIDs (`2.16.840.1.113883.6.1`, also with `urn:oid:`;
//! `2.16.840.1.113883.12.NNN` is HL7 table NNN) and FHIR system URIs
//! (`http://loinc.org`).
//!
//! Invariants:
//! - [`CodingSystem::from_hl7`] never fails: a name it does not know becomes
//!   [`CodingSystem::Other`] with the trimmed original text, so nothing a
//!   sender wrote is lost.
//! - Every standard variant has exactly one canonical HL7 code
//!   ([`CodingSystem::hl7_code`]); `from_hl7(x.hl7_code()) == x` for all of
//!   them, and so does `from_hl7` of each variant's OID ([`CodingSystem::oid`]).
//! - HL7 table 0292 is CVX and table 0227 is MVX, however written: the same
//!   terminology is always the same variant.
//! - The serde form is part of the wire format (postcard encodes the variant
//!   index): new variants are appended at the end, never inserted.

use std::borrow::Cow;
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
    /// ICD-10, the WHO edition (when spelled out, `ICD10`, `ICD-10`, or by
    /// its OID).
    Icd10,
    /// ICD-9-CM (`I9C`; `I9` is read as ICD-9-CM too, which is what US senders mean by it).
    Icd9Cm,
    /// RxNorm (`RXNORM`).
    RxNorm,
    /// ISO/IEEE 11073-10101 medical device nomenclature (`MDC`).
    Mdc,
    /// CDC vaccine codes (`CVX`, HL7 table 0292).
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
    /// CDC vaccine manufacturer codes (`MVX`, HL7 table 0227).
    Mvx,
    /// An HL7 v2 table (`HL70136` yes/no, `HL70078` abnormal flags), by
    /// number; never 292 or 227 (those are [`CodingSystem::Cvx`] and
    /// [`CodingSystem::Mvx`]) and never 0.
    Hl7Table(u16),
    /// CDC Race and Ethnicity (`CDCREC`).
    CdcRec,
    /// NCI Thesaurus (`NCIT`; FDA routes of administration).
    Ncit,
    /// HCPCS (`HCPCS`).
    Hcpcs,
    /// ICD-10-PCS procedures (`I10P`).
    Icd10Pcs,
}

/// Table 0396 names and common variants of the standard systems, matched
/// ASCII case-insensitively. `LNC` (a misspelling, and UMLS's name) is
/// deliberately absent.
const SPELLINGS: &[(&str, CodingSystem)] = &[
    ("LN", CodingSystem::Loinc),
    ("LOINC", CodingSystem::Loinc),
    ("SCT", CodingSystem::SnomedCt),
    ("SNM", CodingSystem::SnomedCt),
    ("SNM3", CodingSystem::SnomedCt),
    ("SNOMED", CodingSystem::SnomedCt),
    ("SNOMED-CT", CodingSystem::SnomedCt),
    ("SNOMEDCT", CodingSystem::SnomedCt),
    ("SNOMED CT", CodingSystem::SnomedCt),
    ("SNOMED_CT", CodingSystem::SnomedCt),
    ("I10C", CodingSystem::Icd10Cm),
    ("ICD10CM", CodingSystem::Icd10Cm),
    ("ICD-10-CM", CodingSystem::Icd10Cm),
    ("I10", CodingSystem::Icd10Cm),
    ("ICD10", CodingSystem::Icd10),
    ("ICD-10", CodingSystem::Icd10),
    ("I10P", CodingSystem::Icd10Pcs),
    ("ICD10PCS", CodingSystem::Icd10Pcs),
    ("ICD-10-PCS", CodingSystem::Icd10Pcs),
    ("I9C", CodingSystem::Icd9Cm),
    ("I9", CodingSystem::Icd9Cm),
    ("I9CDX", CodingSystem::Icd9Cm),
    ("ICD9", CodingSystem::Icd9Cm),
    ("ICD9CM", CodingSystem::Icd9Cm),
    ("ICD-9-CM", CodingSystem::Icd9Cm),
    ("RXNORM", CodingSystem::RxNorm),
    ("RXN", CodingSystem::RxNorm),
    ("MDC", CodingSystem::Mdc),
    ("CVX", CodingSystem::Cvx),
    ("MVX", CodingSystem::Mvx),
    ("UCUM", CodingSystem::Ucum),
    ("NDC", CodingSystem::Ndc),
    ("C4", CodingSystem::Cpt),
    ("CPT", CodingSystem::Cpt),
    ("CPT4", CodingSystem::Cpt),
    ("CPT-4", CodingSystem::Cpt),
    ("CDCREC", CodingSystem::CdcRec),
    ("NCIT", CodingSystem::Ncit),
    ("HCPCS", CodingSystem::Hcpcs),
];

/// The HL7 OID root (`2.16.840.1.113883.`).
const HL7_ROOT: &str = "2.16.840.1.113883.";

/// OIDs of the standard systems, after [`HL7_ROOT`] (the NCI Thesaurus is
/// registered under it too). HL7 tables (`12.NNN`) are read by number.
const OIDS: &[(&str, CodingSystem)] = &[
    ("6.1", CodingSystem::Loinc),
    ("6.96", CodingSystem::SnomedCt),
    ("6.90", CodingSystem::Icd10Cm),
    ("6.3", CodingSystem::Icd10),
    ("6.4", CodingSystem::Icd10Pcs),
    ("6.2", CodingSystem::Icd9Cm),
    ("6.103", CodingSystem::Icd9Cm),
    ("6.104", CodingSystem::Icd9Cm),
    ("6.88", CodingSystem::RxNorm),
    ("6.24", CodingSystem::Mdc),
    ("6.8", CodingSystem::Ucum),
    ("6.69", CodingSystem::Ndc),
    ("6.12", CodingSystem::Cpt),
    ("6.238", CodingSystem::CdcRec),
    ("6.285", CodingSystem::Hcpcs),
    ("6.14", CodingSystem::Hcpcs),
    ("3.26.1.1", CodingSystem::Ncit),
];

/// FHIR system URIs of the standard systems (HL7 tables are
/// `http://terminology.hl7.org/CodeSystem/v2-NNNN`), matched
/// ASCII case-insensitively, a trailing `/` ignored.
const URIS: &[(&str, CodingSystem)] = &[
    ("http://loinc.org", CodingSystem::Loinc),
    ("http://snomed.info/sct", CodingSystem::SnomedCt),
    ("http://hl7.org/fhir/sid/icd-10-cm", CodingSystem::Icd10Cm),
    ("http://hl7.org/fhir/sid/icd-10", CodingSystem::Icd10),
    (
        "http://www.cms.gov/Medicare/Coding/ICD10",
        CodingSystem::Icd10Pcs,
    ),
    ("http://hl7.org/fhir/sid/icd-9-cm", CodingSystem::Icd9Cm),
    (
        "http://www.nlm.nih.gov/research/umls/rxnorm",
        CodingSystem::RxNorm,
    ),
    ("urn:iso:std:iso:11073:10101", CodingSystem::Mdc),
    ("http://hl7.org/fhir/sid/cvx", CodingSystem::Cvx),
    ("http://hl7.org/fhir/sid/mvx", CodingSystem::Mvx),
    ("http://unitsofmeasure.org", CodingSystem::Ucum),
    ("http://hl7.org/fhir/sid/ndc", CodingSystem::Ndc),
    ("http://www.ama-assn.org/go/cpt", CodingSystem::Cpt),
    ("urn:oid:2.16.840.1.113883.6.238", CodingSystem::CdcRec),
    (
        "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
        CodingSystem::Ncit,
    ),
    (
        "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        CodingSystem::Hcpcs,
    ),
];

/// Where FHIR puts the HL7 v2 tables: this, then the 4-digit number.
const V2_TABLE_URI: &str = "http://terminology.hl7.org/CodeSystem/v2-";

/// The largest table number read (HL7 v2 tables have four digits).
const MAX_TABLE: u16 = 9999;

impl CodingSystem {
    /// Identifies a coding system from its HL7 v2 name: a table 0396 name
    /// or common variant, an HL7 table name (`HL7` and 1 to 4 digits), an
    /// OID (optionally `urn:oid:`) or a FHIR system URI. Surrounding
    /// whitespace is ignored and names match ASCII case-insensitively; `L`,
    /// `LOCAL` and `99` followed by exactly three ASCII alphanumerics are
    /// local; anything else is [`CodingSystem::Other`].
    pub fn from_hl7(name_of_coding_system: &str) -> CodingSystem {
        // The names nearly every message uses, as they are usually spelled.
        match name_of_coding_system {
            "LN" => return CodingSystem::Loinc,
            "UCUM" => return CodingSystem::Ucum,
            "MDC" => return CodingSystem::Mdc,
            "SCT" => return CodingSystem::SnomedCt,
            "L" => return CodingSystem::Local(CompactString::const_new("L")),
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
        if let Some(system) = table_name(name)
            .or_else(|| from_oid(name))
            .or_else(|| from_uri(name))
        {
            return system;
        }
        if name.eq_ignore_ascii_case("L") || name.eq_ignore_ascii_case("LOCAL") || is_99zzz(name) {
            return CodingSystem::Local(name.into());
        }
        CodingSystem::Other(name.into())
    }

    /// The HL7 table with this number as a system: CVX for 292, MVX for
    /// 227, `None` for 0 or more than four digits.
    pub fn hl7_table(number: u16) -> Option<CodingSystem> {
        match number {
            0 => None,
            292 => Some(CodingSystem::Cvx),
            227 => Some(CodingSystem::Mvx),
            n if n <= MAX_TABLE => Some(CodingSystem::Hl7Table(n)),
            _ => None,
        }
    }

    /// The canonical HL7 v2 name: `LN`, `SCT`, `I10C`, `ICD10`, `I9C`,
    /// `RXNORM`, `MDC`, `CVX`, `UCUM`, `NDC`, `C4`, `MVX`, `HL7nnnn`,
    /// `CDCREC`, `NCIT`, `HCPCS`, `I10P`, or the held name for local and
    /// other systems.
    pub fn hl7_code(&self) -> Cow<'_, str> {
        Cow::Borrowed(match self {
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
            CodingSystem::Mvx => "MVX",
            CodingSystem::CdcRec => "CDCREC",
            CodingSystem::Ncit => "NCIT",
            CodingSystem::Hcpcs => "HCPCS",
            CodingSystem::Icd10Pcs => "I10P",
            CodingSystem::Hl7Table(n) => return Cow::Owned(format!("HL7{n:04}")),
            CodingSystem::Local(name) | CodingSystem::Other(name) => name,
        })
    }

    /// The ISO OID, for standard systems only.
    pub fn oid(&self) -> Option<Cow<'static, str>> {
        let tail = match self {
            CodingSystem::Cvx => "12.292",
            CodingSystem::Mvx => "12.227",
            CodingSystem::Hl7Table(n) => return Some(Cow::Owned(format!("{HL7_ROOT}12.{n}"))),
            CodingSystem::Local(_) | CodingSystem::Other(_) => return None,
            standard => OIDS.iter().find(|(_, s)| s == standard)?.0,
        };
        Some(Cow::Owned(format!("{HL7_ROOT}{tail}")))
    }

    /// The FHIR/HL7 system URI, for standard systems only.
    pub fn uri(&self) -> Option<Cow<'static, str>> {
        match self {
            CodingSystem::Hl7Table(n) => Some(Cow::Owned(format!("{V2_TABLE_URI}{n:04}"))),
            CodingSystem::Local(_) | CodingSystem::Other(_) => None,
            standard => URIS
                .iter()
                .find(|(_, s)| s == standard)
                .map(|(uri, _)| Cow::Borrowed(*uri)),
        }
    }

    /// True for the standard terminologies (everything but `Local` and `Other`).
    pub fn is_standard(&self) -> bool {
        !matches!(self, CodingSystem::Local(_) | CodingSystem::Other(_))
    }
}

impl fmt::Display for CodingSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hl7_code())
    }
}

/// `HL7` followed by 1 to 4 digits (`HL70136`, `HL7136`, `hl70078`).
fn table_name(name: &str) -> Option<CodingSystem> {
    let digits = name
        .get(..3)
        .filter(|prefix| prefix.eq_ignore_ascii_case("HL7"))
        .and_then(|_| name.get(3..))?;
    CodingSystem::hl7_table(table_number(digits)?)
}

/// 1 to 4 ASCII digits as a number.
fn table_number(digits: &str) -> Option<u16> {
    let valid = (1..=4).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| digits.parse().ok()).flatten()
}

/// An OID of a standard system, with or without `urn:oid:`.
fn from_oid(name: &str) -> Option<CodingSystem> {
    let oid = strip_prefix_ignore_case(name, "urn:oid:").unwrap_or(name);
    let tail = oid.strip_prefix(HL7_ROOT)?;
    if let Some(table) = tail.strip_prefix("12.") {
        return CodingSystem::hl7_table(table_number(table)?);
    }
    OIDS.iter()
        .find(|(known, _)| *known == tail)
        .map(|(_, system)| system.clone())
}

/// A FHIR system URI of a standard system.
fn from_uri(name: &str) -> Option<CodingSystem> {
    let uri = name.strip_suffix('/').unwrap_or(name);
    if let Some(number) = strip_prefix_ignore_case(uri, V2_TABLE_URI) {
        return CodingSystem::hl7_table(table_number(number)?);
    }
    URIS.iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(uri))
        .map(|(_, system)| system.clone())
}

/// `text` without `prefix`, compared ASCII case-insensitively.
fn strip_prefix_ignore_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    text.get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .and_then(|_| text.get(prefix.len()..))
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
            ("SNOMED CT", CodingSystem::SnomedCt),
            ("I10", CodingSystem::Icd10Cm),
            ("ICD10", CodingSystem::Icd10),
            ("I10C", CodingSystem::Icd10Cm),
            ("ICD10CM", CodingSystem::Icd10Cm),
            ("ICD-10-CM", CodingSystem::Icd10Cm),
            ("I10P", CodingSystem::Icd10Pcs),
            ("I9C", CodingSystem::Icd9Cm),
            ("I9", CodingSystem::Icd9Cm),
            ("RXNORM", CodingSystem::RxNorm),
            ("RxNorm", CodingSystem::RxNorm),
            ("RXN", CodingSystem::RxNorm),
            ("MDC", CodingSystem::Mdc),
            ("CVX", CodingSystem::Cvx),
            ("MVX", CodingSystem::Mvx),
            ("UCUM", CodingSystem::Ucum),
            ("NDC", CodingSystem::Ndc),
            ("C4", CodingSystem::Cpt),
            ("CPT", CodingSystem::Cpt),
            ("CDCREC", CodingSystem::CdcRec),
            ("NCIT", CodingSystem::Ncit),
            ("HCPCS", CodingSystem::Hcpcs),
        ];
        for (name, expected) in cases {
            assert_eq!(CodingSystem::from_hl7(name), expected, "{name}");
        }
    }

    #[test]
    fn hl7_oids_name_the_systems_they_are_registered_for() {
        let cases = [
            ("2.16.840.1.113883.6.1", CodingSystem::Loinc),
            ("2.16.840.1.113883.6.96", CodingSystem::SnomedCt),
            ("2.16.840.1.113883.6.3", CodingSystem::Icd10),
            ("2.16.840.1.113883.6.90", CodingSystem::Icd10Cm),
            ("2.16.840.1.113883.6.103", CodingSystem::Icd9Cm),
            ("2.16.840.1.113883.6.2", CodingSystem::Icd9Cm),
            ("2.16.840.1.113883.6.88", CodingSystem::RxNorm),
            ("2.16.840.1.113883.12.292", CodingSystem::Cvx),
            ("2.16.840.1.113883.12.227", CodingSystem::Mvx),
            ("2.16.840.1.113883.6.69", CodingSystem::Ndc),
            ("2.16.840.1.113883.6.8", CodingSystem::Ucum),
            ("2.16.840.1.113883.6.12", CodingSystem::Cpt),
            ("2.16.840.1.113883.6.24", CodingSystem::Mdc),
            ("2.16.840.1.113883.6.238", CodingSystem::CdcRec),
            ("2.16.840.1.113883.12.136", CodingSystem::Hl7Table(136)),
            ("2.16.840.1.113883.12.78", CodingSystem::Hl7Table(78)),
            ("urn:oid:2.16.840.1.113883.6.1", CodingSystem::Loinc),
            ("URN:OID:2.16.840.1.113883.6.96", CodingSystem::SnomedCt),
            (" 2.16.840.1.113883.6.1 ", CodingSystem::Loinc),
        ];
        for (name, expected) in cases {
            assert_eq!(CodingSystem::from_hl7(name), expected, "{name}");
        }
    }

    #[test]
    fn other_oids_and_near_misses_stay_other() {
        for name in [
            "2.16.840.1.113883.6.1.1",
            "2.16.840.1.113883.6",
            "2.16.840.1.113883.3.72.5.24",
            "2.16.840.1.113883.12.0",
            "2.16.840.1.113883.12.12345",
            "2.16.840.1.113883.12.",
            "1.3.6.1.4.1.44750.1.2.2",
            "urn:oid:",
        ] {
            assert_eq!(
                CodingSystem::from_hl7(name),
                CodingSystem::Other(name.into()),
                "{name}"
            );
        }
    }

    #[test]
    fn hl7_table_names_are_hl7_tables() {
        let cases = [
            ("HL70136", CodingSystem::Hl7Table(136)),
            ("HL70078", CodingSystem::Hl7Table(78)),
            ("hl70078", CodingSystem::Hl7Table(78)),
            ("HL7127", CodingSystem::Hl7Table(127)),
            ("Hl7128", CodingSystem::Hl7Table(128)),
            ("HL70292", CodingSystem::Cvx),
            ("HL70227", CodingSystem::Mvx),
            ("HL70396", CodingSystem::Hl7Table(396)),
        ];
        for (name, expected) in cases {
            assert_eq!(CodingSystem::from_hl7(name), expected, "{name}");
        }
        for name in [
            "HL7nnnn", "HL7", "HL70", "HL7000", "HL704512", "HL7-0136", "HL&0078",
        ] {
            assert_eq!(
                CodingSystem::from_hl7(name),
                CodingSystem::Other(name.into()),
                "{name}"
            );
        }
    }

    #[test]
    fn fhir_system_uris_are_recognized() {
        let cases = [
            ("http://loinc.org", CodingSystem::Loinc),
            ("http://loinc.org/", CodingSystem::Loinc),
            ("http://snomed.info/sct", CodingSystem::SnomedCt),
            ("http://unitsofmeasure.org", CodingSystem::Ucum),
            (
                "http://terminology.hl7.org/CodeSystem/v2-0136",
                CodingSystem::Hl7Table(136),
            ),
            (
                "http://terminology.hl7.org/CodeSystem/v2-0292",
                CodingSystem::Cvx,
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(CodingSystem::from_hl7(name), expected, "{name}");
        }
    }

    #[test]
    fn a_misspelt_system_is_not_a_standard_one() {
        for name in ["LNC", "LOINCS", "SNOMEDX", "UCUMS", "ICD-11"] {
            assert!(!CodingSystem::from_hl7(name).is_standard(), "{name}");
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

    /// Every standard system, once.
    fn standard_systems() -> Vec<CodingSystem> {
        let mut all: Vec<CodingSystem> = SPELLINGS.iter().map(|(_, s)| s.clone()).collect();
        all.extend([CodingSystem::Hl7Table(136), CodingSystem::Hl7Table(1)]);
        all.sort();
        all.dedup();
        all
    }

    #[test]
    fn canonical_code_oid_and_uri_round_trip_for_standard_systems() {
        for system in standard_systems() {
            assert_eq!(CodingSystem::from_hl7(&system.hl7_code()), system);
            assert!(system.is_standard());
            let oid = system
                .oid()
                .unwrap_or_else(|| panic!("{system} has no OID"));
            assert_eq!(CodingSystem::from_hl7(&oid), system, "{oid}");
            let uri = system
                .uri()
                .unwrap_or_else(|| panic!("{system} has no URI"));
            assert_eq!(CodingSystem::from_hl7(&uri), system, "{uri}");
        }
        assert_eq!(CodingSystem::Hl7Table(78).hl7_code(), "HL70078");
    }

    #[test]
    fn uris_follow_fhir_conventions() {
        assert_eq!(
            CodingSystem::Loinc.uri().as_deref(),
            Some("http://loinc.org")
        );
        assert_eq!(
            CodingSystem::SnomedCt.uri().as_deref(),
            Some("http://snomed.info/sct")
        );
        assert_eq!(
            CodingSystem::Mdc.uri().as_deref(),
            Some("urn:iso:std:iso:11073:10101")
        );
        assert_eq!(
            CodingSystem::Hl7Table(136).uri().as_deref(),
            Some("http://terminology.hl7.org/CodeSystem/v2-0136")
        );
        assert_eq!(CodingSystem::Local("99LAB".into()).uri(), None);
    }

    #[test]
    fn serde_is_compact_in_postcard_and_readable_in_json() {
        let loinc = postcard::to_allocvec(&CodingSystem::Loinc).unwrap();
        assert_eq!(loinc, [0]);
        for system in [
            CodingSystem::Local("99LAB".into()),
            CodingSystem::Hl7Table(136),
            CodingSystem::Mvx,
        ] {
            let bytes = postcard::to_allocvec(&system).unwrap();
            assert_eq!(
                postcard::from_bytes::<CodingSystem>(&bytes).unwrap(),
                system
            );
            let json = serde_json::to_string(&system).unwrap();
            assert_eq!(serde_json::from_str::<CodingSystem>(&json).unwrap(), system);
        }
        assert_eq!(
            serde_json::to_string(&CodingSystem::Ucum).unwrap(),
            "\"Ucum\""
        );
    }

    proptest::proptest! {
        #[test]
        fn any_name_is_read_without_panic_and_kept_when_unknown(name in "\\PC{0,40}") {
            let system = CodingSystem::from_hl7(&name);
            if !system.is_standard() {
                proptest::prop_assert_eq!(system.hl7_code(), trim(&name));
            }
        }
    }
}
