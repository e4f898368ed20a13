//! The normalized record: what the hub receives instead of raw HL7.
//!
//! A record is typed and coded so the hub never parses HL7: codes carry
//! their coding system and, where known, a standard code (LOINC, SNOMED CT,
//! ICD-10, RxNorm, MDC, CVX); quantities carry UCUM units; times are UTC
//! with their original precision; identifiers carry their assigning
//! authority and type. Whatever the gateway could not map is marked as
//! such, never passed off as coded.
//!
//! These types are part of the wire format (postcard, see `crate::wire`):
//! a [`Record`] travels in the compact form of `compact` (string tables,
//! packed timestamps and decimals, presence bits); its parts keep their
//! derived serde form for JSON and inside bodies other than observations.
//! Fields are only ever added at the end of a struct, and every change is
//! pinned by the golden tests in `protocol/tests/`.

mod coded;
mod compact;
mod decimal;
mod time;

pub use coded::{Coded, Coding, Standard};
pub(crate) use compact::append_postcard;
pub use compact::{CompactError, decode as decode_compact, encode as encode_compact};
pub use decimal::Decimal;
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
/// (wire schema 2); human-readable ones (JSON) get every field by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// What the MSH said about the message.
    pub header: Header,
    /// The patient the message is about (PID), when it has one.
    pub patient: Option<Patient>,
    /// The message-type specific content.
    pub body: Body,
    /// Warnings from validation and normalization (accepted, but flagged).
    pub issues: Vec<Issue>,
}

/// The routing facts of the MSH segment.
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
    /// MSH-3 namespace id.
    pub sending_application: CompactString,
    /// MSH-4 namespace id.
    pub sending_facility: CompactString,
    /// MSH-7, when the sender created the message.
    pub message_time: Option<Timestamp>,
    /// MSH-11: production, training or debugging data.
    pub processing: Processing,
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

/// The patient (PID), minimal for matching: identifiers first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patient {
    /// PID-3 identifiers (and PID-2/PID-4 in old versions).
    pub identifiers: Vec<Identifier>,
    /// PID-5, first repetition.
    pub name: Option<PersonName>,
    /// PID-7.
    pub birth_date: Option<Timestamp>,
    /// PID-8 (table 0001 code as sent, e.g. `F`).
    pub sex: Option<CompactString>,
}

/// A CX identifier: value, assigning authority and type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identifier {
    /// CX.1.
    pub value: CompactString,
    /// CX.4 namespace id (or universal id when no namespace).
    pub authority: Option<CompactString>,
    /// CX.5 identifier type code (table 0203: MR, SS, PI, ...).
    pub kind: Option<CompactString>,
}

/// An XPN/XCN name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonName {
    /// Family name.
    pub family: Option<CompactString>,
    /// Given name.
    pub given: Option<CompactString>,
    /// Further given names or initials.
    pub middle: Option<CompactString>,
}

/// A clinician (XCN): id and name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Practitioner {
    /// XCN.1 id number.
    pub id: Option<CompactString>,
    /// XCN.2-4.
    pub name: Option<PersonName>,
}

/// The message-type specific part of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "one body per record, built once and moved rarely; boxing would add an allocation"
)]
pub enum Body {
    /// ORU^R01 lab results and device observations (IHE PCD-01).
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

/// ORU^R01: orders (OBR) each with their observations (OBX).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservationReport {
    /// One entry per OBR, in message order.
    pub orders: Vec<ObservationGroup>,
}

/// One OBR with its OBX.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservationGroup {
    /// OBR-2 placer order number.
    pub placer_order: Option<CompactString>,
    /// OBR-3 filler order number.
    pub filler_order: Option<CompactString>,
    /// OBR-4 universal service id (the panel or test ordered).
    pub service: Option<Coded>,
    /// OBR-7 observation (collection) time.
    pub observed_at: Option<Timestamp>,
    /// OBR-22 results reported time.
    pub reported_at: Option<Timestamp>,
    /// OBR-25 result status (table 0123), as sent.
    pub status: Option<CompactString>,
    /// OBX segments under this OBR.
    pub observations: Vec<Observation>,
}

/// One OBX.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// OBX-3 what was observed (LOINC for labs, MDC for devices).
    pub code: Coded,
    /// OBX-4 sub-id (device hierarchy `1.2.1.3`, or grouping).
    pub sub_id: Option<CompactString>,
    /// OBX-5 (with OBX-2 and OBX-6).
    pub value: Value,
    /// OBX-7 reference range.
    pub reference_range: Option<ReferenceRange>,
    /// OBX-8 abnormal flags (table 0078 codes).
    pub flags: Vec<CompactString>,
    /// OBX-11 result status.
    pub status: ResultStatus,
    /// OBX-14 observation time (falls back to OBR-7 when absent).
    pub observed_at: Option<Timestamp>,
    /// OBX-18 equipment instance identifiers (device EUI-64 etc).
    pub equipment: Vec<CompactString>,
    /// OBX-17 observation method.
    pub method: Option<Coded>,
}

/// An observation value, typed by OBX-2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// No value (OBX-5 empty or `""`).
    None,
    /// NM: an exact decimal with its unit.
    Quantity(Quantity),
    /// SN: comparator and/or range (`>100`, `10-20`, `1:128`).
    Structured(StructuredNumeric),
    /// CWE/CE/CNE: a coded answer.
    Coded(Coded),
    /// TS/DTM/DT.
    Time(Timestamp),
    /// ST/TX/FT and anything else, as text (repetitions joined by newline).
    Text(CompactString),
    /// NA/NM with several numbers (device waveforms `1^2^3`).
    Series(Vec<Decimal>),
}

/// A number with its unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    /// The value, as sent.
    pub value: Decimal,
    /// The unit, as sent.
    pub unit: Option<Unit>,
    /// The value in the unit the interface's mapping table expects for
    /// this code (its `target_unit`), when the sent unit differs but is
    /// commensurable with it (`value` and `unit` stay as sent).
    pub converted: Option<Converted>,
}

/// A quantity converted to the unit a mapping row expects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Converted {
    /// The converted value.
    pub value: Decimal,
    /// The expected UCUM unit.
    pub unit: CompactString,
    /// True when the value is the exact product of the sent value and a
    /// decimal conversion factor (`5.4 mg/dL` is exactly `54.0 mg/L`);
    /// false when it was rounded (a temperature offset, a factor that has
    /// no short decimal form).
    pub exact: bool,
}

/// A unit as sent and as UCUM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    /// The UCUM unit when known (built-in table or mapping file).
    pub ucum: Option<CompactString>,
    /// The unit as sent, when it differs from `ucum` (or `ucum` is unknown).
    pub original: Option<CompactString>,
}

/// HL7 SN: `[comparator]^num1[^separator^num2]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StructuredNumeric {
    /// `>`, `<`, `>=`, `<=`, `=`, `<>` or empty.
    pub comparator: Option<CompactString>,
    /// First number.
    pub low: Option<Decimal>,
    /// `-`, `+`, `/`, `.`, `:` or empty.
    pub separator: Option<CompactString>,
    /// Second number.
    pub high: Option<Decimal>,
    /// The unit.
    pub unit: Option<Unit>,
}

/// OBX-7 reference range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRange {
    /// Lower bound (`70` of `70-99`, or of `>70`).
    pub low: Option<Decimal>,
    /// Upper bound.
    pub high: Option<Decimal>,
    /// The range text as sent when it is not numeric (`negative`, `<1:40`).
    pub text: Option<CompactString>,
}

/// OBX-11 (HL7 table 0085).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResultStatus {
    /// `F` final.
    Final,
    /// `P` preliminary.
    Preliminary,
    /// `C` correction of a final result.
    Corrected,
    /// `X` no result obtainable / cancelled.
    Cancelled,
    /// `D` delete the previous result.
    Deleted,
    /// `W` posted in error (wrong patient).
    WrongPatient,
    /// `R` entered, not verified.
    NotVerified,
    /// `I` in process, specimen received.
    Pending,
    /// `S` partial.
    Partial,
    /// `U` changed to final without retransmission.
    FinalUnchanged,
    /// `N` not asked.
    NotAsked,
    /// `O` order detail only.
    OrderDetail,
    /// Absent or another value.
    Unknown,
}

/// ADT: identity and encounter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientEvent {
    /// EVN-2 (or MSH-7) when the event was recorded.
    pub recorded_at: Option<Timestamp>,
    /// EVN-6 when the event happened.
    pub occurred_at: Option<Timestamp>,
    /// The visit (PV1), when present.
    pub encounter: Option<Encounter>,
    /// MRG: the identity merged away (A34/A40/...).
    pub merged_from: Vec<Identifier>,
}

/// PV1: the visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encounter {
    /// PV1-2 patient class (table 0004: I, O, E, ...).
    pub class: Option<CompactString>,
    /// PV1-3 point of care^room^bed, joined with `/`.
    pub location: Option<CompactString>,
    /// PV1-3.4 facility.
    pub facility: Option<CompactString>,
    /// PV1-19 visit number.
    pub visit_number: Option<Identifier>,
    /// PV1-7 attending doctor.
    pub attending: Option<Practitioner>,
    /// PV1-44 admit time.
    pub admitted_at: Option<Timestamp>,
    /// PV1-45 discharge time.
    pub discharged_at: Option<Timestamp>,
}

/// ORM^O01 / OML^O21.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderMessage {
    /// One entry per ORC.
    pub orders: Vec<Order>,
}

/// One ORC with its detail segment (OBR, RXO, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// ORC-1 order control (table 0119: NW, CA, XO, ...).
    pub control: CompactString,
    /// ORC-2 / OBR-2 placer order number.
    pub placer_order: Option<CompactString>,
    /// ORC-3 / OBR-3 filler order number.
    pub filler_order: Option<CompactString>,
    /// ORC-5 order status.
    pub status: Option<CompactString>,
    /// OBR-4 (or the detail segment's service) what is ordered.
    pub service: Option<Coded>,
    /// ORC-9 transaction time.
    pub ordered_at: Option<Timestamp>,
    /// ORC-12 / OBR-16 ordering provider.
    pub orderer: Option<Practitioner>,
    /// OBR-5 / TQ1-9 priority.
    pub priority: Option<CompactString>,
    /// SPM-4 specimen type.
    pub specimen: Option<Coded>,
}

/// VXU^V04.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImmunizationReport {
    /// One entry per RXA.
    pub immunizations: Vec<Immunization>,
}

/// One RXA (with its RXR).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Immunization {
    /// RXA-3 administration start.
    pub administered_at: Option<Timestamp>,
    /// RXA-5 vaccine (CVX).
    pub vaccine: Coded,
    /// RXA-6/7 amount and unit.
    pub dose: Option<Quantity>,
    /// RXA-15 lot number.
    pub lot: Option<CompactString>,
    /// RXA-17 manufacturer (MVX).
    pub manufacturer: Option<Coded>,
    /// RXA-20 completion status (CP, RE, NA, PA).
    pub completion: Option<CompactString>,
    /// RXR-1 route.
    pub route: Option<Coded>,
    /// RXR-2 site.
    pub site: Option<Coded>,
}

/// A message type without a dedicated normalizer: its segments as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenericMessage {
    /// MSH-1 followed by MSH-2 (e.g. `|^~\&`): how to split the segments.
    pub delimiters: String,
    /// Every segment after MSH, in order, as sent (decoded to UTF-8,
    /// escapes kept).
    pub segments: Vec<String>,
}
