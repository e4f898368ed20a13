//! The normalized record: what the hub receives instead of raw HL7.
//!
//! A record is typed and coded so the hub never parses HL7: codes carry
//! their coding system and, where known, a standard code (LOINC, SNOMED CT,
//! ICD-10, RxNorm, MDC, CVX); quantities carry UCUM units; times are UTC
//! with their original precision; identifiers carry their assigning
//! authority (its universal id, an OID, too) and type. Whatever the gateway
//! could not map is marked as such, never passed off as coded.
//!
//! # The model (wire schema 3)
//!
//! One record per message, shaped after what a FHIR R4 rendering needs (the
//! HL7 V2-to-FHIR mappings), so that rendering is a walk, not a second
//! parse:
//!
//! | record part | from | renders as |
//! |---|---|---|
//! | [`Header`] | MSH, SFT | MessageHeader, Device (sending software) |
//! | [`Patient`] (with [`Contact`]s and [`Note`]s) | PID, NK1, NTE after PID | Patient, RelatedPerson |
//! | [`Encounter`] | the first PV1 | Encounter |
//! | [`ObservationGroup`] (one per OBR) with its [`OrderDetail`] | ORC, OBR, TQ1, NTE, SPM | DiagnosticReport, ServiceRequest, Specimen, Organization, PractitionerRole |
//! | [`Observation`] (one per OBX) | OBX, NTE after OBX | Observation (component for further values, derivedFrom/hasMember from OBR-26/29 and OBX-4), Device (OBX-18) |
//! | [`Order`] | ORC, OBR/RXO, TQ1, SPM, OBX | ServiceRequest |
//! | [`Immunization`] | ORC, RXA, RXR, OBX | Immunization |
//! | [`PatientEvent`] | EVN, MRG, OBX | Patient.link, Provenance |
//! | [`NotCarried`] | anything else | a tag that the record is partial |
//!
//! ORU^R01 (and the other ORU events) and OUL (R22, R23, R24, specimen
//! first) give [`Body::Observations`]: every OBR opens a group; SPM
//! specimens belong to the group whose OBR they follow (ORU) or precede
//! (OUL), an OBX after an SPM names that specimen; NTE comments attach to
//! the patient, group, observation or specimen they follow. A group whose
//! specimen is a quality-control material (SPM-11, HL7 table 0369: Q, C,
//! E, F, O, R, V, B) is marked [`OrderDetail::quality_control`]: its
//! results are about a control, never about the patient.
//!
//! **Nothing dropped silently.** Every segment and field the normalizer
//! does not carry, and that holds a value, is counted in
//! [`Record::not_carried`] (segment id, field, occurrences), so a partial
//! record never poses as complete. Only structure is left out without a
//! mention: set ids, MSH-1/2 (delimiters), MSH-15/16 (acknowledgment
//! rules, applied by the gateway) and MSH-18 (the character set, applied
//! when decoding).
//!
//! # Serialization
//!
//! These types are part of the wire format (postcard, see `crate::wire`):
//! a [`Record`] travels in the compact form of `compact` (string tables,
//! packed timestamps and decimals, presence bits), which writes every field
//! itself; the derived serde forms are the JSON view (`hl7edge inspect
//! --json`, the hub's tail). In JSON, fields added by schema 3 are left out
//! when empty (absent, empty list, false), and read back as empty when
//! missing; fields of schema 2 are always written. Every change to the wire
//! is pinned by the golden tests in `protocol/tests/`.

mod coded;
mod compact;
mod decimal;
mod events;
pub mod limits;
mod party;
mod report;
mod time;

pub use coded::{Coded, Coding, Standard};
pub(crate) use compact::append_postcard;
pub use compact::{
    CompactError, decode as decode_compact, decode_v2 as decode_compact_v2,
    encode as encode_compact,
};
pub use decimal::Decimal;
pub use events::{
    Encounter, GenericMessage, Immunization, ImmunizationReport, Order, OrderMessage, PatientEvent,
    PatientGroup, Prior,
};
pub use party::{
    Address, Contact, EntityId, Identifier, Organization, Patient, PersonName, Practitioner,
    Telecom,
};
pub use report::{
    Converted, Note, Observation, ObservationGroup, ObservationReport, OrderDetail, ParentOrder,
    ParentResult, Quantity, ReferenceRange, ResultStatus, Series, Specimen, StructuredNumeric,
    Timing, Unit, Value,
};
pub use time::{Precision, Timestamp};

/// The string type of record fields: short strings (codes, units, flags,
/// ids, up to 24 bytes) are stored inline, without an allocation; it
/// serializes exactly as a `String` does.
pub use compact_str::CompactString;

use serde::{Deserialize, Serialize};

use crate::hl7::Issue;

/// One normalized HL7 message.
///
/// Binary serializers (postcard) get the compact form of `compact`
/// (wire schema 3); human-readable ones (JSON) get every field by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// What the MSH (and SFT) said about the message.
    pub header: Header,
    /// The patient the message is about (PID), when it has one.
    pub patient: Option<Patient>,
    /// The visit (the first PV1), when the message has one.
    pub encounter: Option<Encounter>,
    /// The message-type specific content.
    pub body: Body,
    /// Warnings from validation and normalization (accepted, but flagged).
    pub issues: Vec<Issue>,
    /// The parts of the message that hold a value but have no place in the
    /// record: when not empty, the record is partial.
    pub not_carried: Vec<NotCarried>,
}

/// A segment or field of the message that held a value the record does not
/// carry (a "not carried" warning). Never holds the value itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NotCarried {
    /// The segment id (`PD1`, `ZPI`, `OBX`).
    pub segment: CompactString,
    /// The field number, or 0 when the whole segment is not carried.
    pub field: u16,
    /// How many occurrences held a value.
    pub count: u32,
}

/// The routing facts of the MSH segment, and the sending software (SFT).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// MSH-9.1, e.g. `ORU`.
    pub message_code: CompactString,
    /// MSH-9.2, e.g. `R01`.
    pub trigger_event: CompactString,
    /// MSH-10, the sender's control id.
    pub control_id: CompactString,
    /// MSH-12, e.g. `2.5.1`.
    pub version: CompactString,
    /// MSH-3 namespace id (or universal id when no namespace).
    pub sending_application: CompactString,
    /// MSH-4 namespace id (or universal id when no namespace).
    pub sending_facility: CompactString,
    /// MSH-7, when the sender created the message.
    pub message_time: Option<Timestamp>,
    /// MSH-11: production, training or debugging data.
    pub processing: Processing,
    /// MSH-3.2, the sending application's universal id (an OID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_application_id: Option<CompactString>,
    /// MSH-4.2, the sending facility's universal id (an OID, a CLIA number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_facility_id: Option<CompactString>,
    /// MSH-5 namespace id (or universal id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiving_application: Option<CompactString>,
    /// MSH-6 namespace id (or universal id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiving_facility: Option<CompactString>,
    /// MSH-21 message profile identifiers (EI.1 of each repetition).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<CompactString>,
    /// SFT: the software that sent the message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<Software>,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            message_code: CompactString::default(),
            trigger_event: CompactString::default(),
            control_id: CompactString::default(),
            version: CompactString::default(),
            sending_application: CompactString::default(),
            sending_facility: CompactString::default(),
            message_time: None,
            processing: Processing::Unknown,
            sending_application_id: None,
            sending_facility_id: None,
            receiving_application: None,
            receiving_facility: None,
            profiles: Vec::new(),
            software: Vec::new(),
        }
    }
}

/// One SFT segment: software that handled the message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Software {
    /// SFT-1 vendor organization name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<CompactString>,
    /// SFT-2 version or release number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<CompactString>,
    /// SFT-3 product name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<CompactString>,
    /// SFT-4 binary id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_id: Option<CompactString>,
    /// SFT-6 install date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_at: Option<Timestamp>,
}

/// MSH-11 processing id (HL7 table 0103).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Processing {
    /// `P`
    Production,
    /// `T`
    Training,
    /// `D`
    Debugging,
    /// Absent or another value.
    Unknown,
}

/// The message-type specific part of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "one body per record, built once and moved rarely; boxing would add an allocation"
)]
pub enum Body {
    /// ORU lab results and device observations (IHE PCD-01), and OUL
    /// specimen-oriented results (IHE LAW).
    Observations(ObservationReport),
    /// ADT: patient identity and encounter events.
    Patient(PatientEvent),
    /// ORM^O01 / OML^O21 orders.
    Orders(OrderMessage),
    /// VXU^V04 immunizations.
    Immunizations(ImmunizationReport),
    /// Any other message type: segments kept generically.
    Generic(GenericMessage),
}

impl Default for Body {
    fn default() -> Self {
        Body::Generic(GenericMessage::default())
    }
}
