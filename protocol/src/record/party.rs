//! People, organizations and their identifiers: the patient (PID, NK1),
//! clinicians (XCN), organizations (XON), addresses (XAD), phone numbers
//! and e-mail addresses (XTN), identifiers (CX, EI).
//!
//! An assigning authority is kept two ways: `authority` is what a person
//! reads (the HD namespace id, else its universal id) and `authority_id` is
//! the universal id (an OID, a UUID, a CLIA number) whenever it was sent,
//! which is what a FHIR `Identifier.system` is built from.

use serde::{Deserialize, Serialize};

use super::{Coded, CompactString, Note, Timestamp};

/// The patient (PID, and NK1 next of kin), identifiers first.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Patient {
    /// PID-3 identifiers (and PID-2/PID-4 in old versions; PID-19 as type
    /// `SS`, PID-20 as type `DL` with the issuing state as authority).
    pub identifiers: Vec<Identifier>,
    /// PID-5, first repetition.
    pub name: Option<PersonName>,
    /// PID-7.
    pub birth_date: Option<Timestamp>,
    /// PID-8 (table 0001 code as sent, e.g. `F`).
    pub sex: Option<CompactString>,
    /// PID-5 repetitions after the first, then PID-9 aliases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_names: Vec<PersonName>,
    /// PID-6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mothers_maiden_name: Option<Box<PersonName>>,
    /// PID-10 (CDC race codes, HL7 table 0005).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub races: Vec<Coded>,
    /// PID-11.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Address>,
    /// PID-13 (home), PID-14 (business) and PID-40 (v2.7+).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<Telecom>,
    /// PID-15 primary language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Box<Coded>>,
    /// PID-16 marital status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marital_status: Option<Box<Coded>>,
    /// PID-17 religion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub religion: Option<Box<Coded>>,
    /// PID-18 patient account number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Box<Identifier>>,
    /// PID-22 (CDC ethnicity codes, HL7 table 0189).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ethnicities: Vec<Coded>,
    /// PID-23 birth place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_place: Option<CompactString>,
    /// PID-29 date and time of death.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deceased_at: Option<Timestamp>,
    /// PID-30 death indicator as sent (table 0136: `Y`, `N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deceased: Option<CompactString>,
    /// NK1: next of kin and other contacts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    /// NTE after PID: comments about the patient.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
}

/// One NK1: a next of kin or other contact person.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Contact {
    /// NK1-2, first repetition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<PersonName>,
    /// NK1-3 relationship (table 0063).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<Coded>,
    /// NK1-4.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Address>,
    /// NK1-5 (home) and NK1-6 (business).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<Telecom>,
    /// NK1-7 contact role (table 0131).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Coded>,
    /// NK1-13 organization name (XON.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<CompactString>,
}

/// A CX identifier: value, assigning authority and type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Identifier {
    /// CX.1.
    pub value: CompactString,
    /// CX.4 namespace id (or universal id when no namespace).
    pub authority: Option<CompactString>,
    /// CX.5 identifier type code (table 0203: MR, SS, PI, ...).
    pub kind: Option<CompactString>,
    /// CX.4.2: the assigning authority's universal id (an OID), whenever
    /// sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_id: Option<CompactString>,
    /// CX.6 assigning facility: namespace id, else universal id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility: Option<CompactString>,
}

/// An EI entity identifier (order numbers, specimen ids, instance ids).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EntityId {
    /// EI.1.
    pub id: CompactString,
    /// EI.2 namespace id, else EI.3 universal id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<CompactString>,
    /// EI.3 universal id (an OID), whenever sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_id: Option<CompactString>,
}

/// An XPN/XCN name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PersonName {
    /// Family name.
    pub family: Option<CompactString>,
    /// Given name.
    pub given: Option<CompactString>,
    /// Further given names or initials.
    pub middle: Option<CompactString>,
    /// Prefix (`Dr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<CompactString>,
    /// Suffix (`JR`, `III`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<CompactString>,
    /// Degree or professional suffix (`MD`, `PHD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degree: Option<CompactString>,
    /// Name type code (table 0200: `L` legal, `A` alias, `M` maiden, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CompactString>,
}

/// A clinician (XCN): id, name, and the id's assigning authority and type.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Practitioner {
    /// XCN.1 id number.
    pub id: Option<CompactString>,
    /// XCN.2-7 (and XCN.21 professional suffix).
    pub name: Option<PersonName>,
    /// XCN.9 assigning authority: namespace id, else universal id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<CompactString>,
    /// XCN.9.2 universal id (an OID such as the NPI's), whenever sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_id: Option<CompactString>,
    /// XCN.13 identifier type (`NPI`, `MD`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CompactString>,
}

/// An XAD address.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Address {
    /// XAD.1: the street address (SAD.1), else dwelling number and street
    /// name (SAD.3, SAD.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<CompactString>,
    /// XAD.2 other designation (apartment, suite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<CompactString>,
    /// XAD.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<CompactString>,
    /// XAD.4 state or province.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CompactString>,
    /// XAD.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<CompactString>,
    /// XAD.6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<CompactString>,
    /// XAD.7 address type (table 0190: `H` home, `B` business, `M` mailing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CompactString>,
    /// XAD.9 county or parish code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub county: Option<CompactString>,
}

/// An XTN phone number or e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Telecom {
    /// The e-mail address (XTN.4), else the number built from its parts:
    /// `+country (area) local xext` (XTN.5-8), else the number as sent
    /// (XTN.1), else the unformatted number (XTN.12).
    pub value: CompactString,
    /// XTN.1 as sent, when it is not `value` (versions before 2.5 wrote
    /// the number there; later ones may send both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<CompactString>,
    /// XTN.2 use code (table 0201: `PRN`, `WPN`, `NET`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_code: Option<CompactString>,
    /// XTN.3 equipment type (table 0202: `PH`, `CP`, `Internet`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equipment: Option<CompactString>,
}

/// An organization (XON), with its address and phone numbers where the
/// message gives them (OBX-24, ORC-22/23).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Organization {
    /// XON.1 organization name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<CompactString>,
    /// XON.10 organization identifier, else XON.3 (older versions): a CLIA
    /// number for a laboratory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<CompactString>,
    /// XON.6 assigning authority: namespace id, else universal id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<CompactString>,
    /// XON.6.2 universal id, whenever sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_id: Option<CompactString>,
    /// XON.7 identifier type code (`FI`, `XX`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CompactString>,
    /// The organization's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// The organization's phone numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<Telecom>,
}
