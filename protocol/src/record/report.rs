//! Results: an ORU/OUL report of order groups (OBR) with their
//! observations (OBX), specimens (SPM), timing (TQ1) and comments (NTE).

use serde::{Deserialize, Serialize};

use super::{
    Address, Coded, CompactString, Decimal, EntityId, Identifier, Organization, Practitioner,
    Telecom, Timestamp,
};

/// ORU/OUL: orders (OBR) each with their observations (OBX).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ObservationReport {
    /// One entry per OBR, in message order.
    pub orders: Vec<ObservationGroup>,
}

/// One OBR with its ORC, OBX, SPM, TQ1 and NTE.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ObservationGroup {
    /// OBR-2 (else ORC-2) placer order number.
    pub placer_order: Option<CompactString>,
    /// OBR-3 (else ORC-3) filler order number.
    pub filler_order: Option<CompactString>,
    /// OBR-4 universal service id (the panel or test ordered).
    pub service: Option<Box<Coded>>,
    /// OBR-7 observation (collection) time.
    pub observed_at: Option<Timestamp>,
    /// OBR-22 results reported time.
    pub reported_at: Option<Timestamp>,
    /// OBR-25 result status (table 0123), as sent.
    pub status: Option<CompactString>,
    /// OBX segments under this OBR.
    pub observations: Vec<Observation>,
    /// ORC-1 order control (table 0119: `RE`, `NW`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_control: Option<CompactString>,
    /// ORC-5 order status (table 0038).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_status: Option<CompactString>,
    /// ORC-9 transaction time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered_at: Option<Timestamp>,
    /// TQ1-9, else OBR-27.6, else OBR-5 priority code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<CompactString>,
    /// The order's people, links, timing, specimens and comments.
    #[serde(flatten)]
    pub detail: Box<OrderDetail>,
}

/// What ORC, OBR, TQ1, SPM and NTE say about an order beyond its numbers,
/// service and status (shared by result groups, orders and immunizations;
/// flattened into them in JSON).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OrderDetail {
    /// OBR-2.2/ORC-2.2 namespace (else universal id) of the placer number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placer_assigner: Option<CompactString>,
    /// OBR-3.2/ORC-3.2 namespace (else universal id) of the filler number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filler_assigner: Option<CompactString>,
    /// OBR-2.3/ORC-2.3 universal id (an OID) of the placer number's
    /// assigner, whenever sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placer_assigner_id: Option<CompactString>,
    /// OBR-3.3/ORC-3.3 universal id of the filler number's assigner,
    /// whenever sent (a device's EUI-64 in IHE PCD-01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filler_assigner_id: Option<CompactString>,
    /// The placer number the other of ORC-2 and OBR-2 gave, when the two
    /// differ (the order's own is `placer_order`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_placer_order: Option<Box<EntityId>>,
    /// The filler number the other of ORC-3 and OBR-3 gave, when the two
    /// differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_filler_order: Option<Box<EntityId>>,
    /// ORC-4 placer group number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placer_group: Option<Box<EntityId>>,
    /// OBR-6 requested time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<Timestamp>,
    /// OBR-8 end of the observation (collection) period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_until: Option<Timestamp>,
    /// OBR-10 specimen collectors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collectors: Vec<Practitioner>,
    /// OBR-11 specimen action code (table 0065; `G` a reflex test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specimen_action: Option<CompactString>,
    /// OBR-13 relevant clinical information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clinical_info: Option<CompactString>,
    /// OBR-14 specimen received time (older versions; SPM-18 since 2.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specimen_received_at: Option<Timestamp>,
    /// OBR-16 and ORC-12 ordering providers (each once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orderers: Vec<Practitioner>,
    /// ORC-24 ordering provider address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderer_address: Option<Box<Address>>,
    /// ORC-10 entered by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entered_by: Option<Box<Practitioner>>,
    /// ORC-14 and OBR-17 call-back phone numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callback_phones: Vec<Telecom>,
    /// ORC-21 ordering facility, with ORC-22 address and ORC-23 phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_facility: Option<Box<Organization>>,
    /// OBR-24 diagnostic service section (table 0074: `CH`, `HM`, `MB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CompactString>,
    /// OBR-26 the parent result this order reflexes from (microbiology:
    /// the isolate a susceptibility panel belongs to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_result: Option<Box<ParentResult>>,
    /// OBR-28 result copies to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copies_to: Vec<Practitioner>,
    /// OBR-29 (else ORC-8) the parent order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_order: Option<Box<ParentOrder>>,
    /// OBR-31 reasons for study.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Coded>,
    /// OBR-32 principal result interpreter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interpreters: Vec<Practitioner>,
    /// TQ1 timing and priority.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timing: Vec<Timing>,
    /// NTE after ORC/OBR/TQ1: comments about the order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
    /// SPM (and OBR-15 in older versions): the specimens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub specimens: Vec<Specimen>,
    /// True when a specimen is a quality-control material (SPM-11): these
    /// results are about a control, never file them under the patient.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quality_control: bool,
}

/// OBR-26 (PRL): the result a reflex order derives from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ParentResult {
    /// PRL.1: the parent's OBX-3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Coded>,
    /// PRL.2: the parent's OBX-4 sub-id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_id: Option<CompactString>,
    /// PRL.3: part of the parent's OBX-5 (the organism name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<CompactString>,
}

/// OBR-29 / ORC-8 (EIP): the parent order's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ParentOrder {
    /// EIP.1 placer assigned identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placer: Option<EntityId>,
    /// EIP.2 filler assigned identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filler: Option<EntityId>,
}

/// One TQ1: when and how urgently.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Timing {
    /// TQ1-2 quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    /// TQ1-7 start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Timestamp>,
    /// TQ1-8 end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Timestamp>,
    /// TQ1-9 priorities (table 0485: `S` stat, `R` routine, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<Coded>,
    /// TQ1-10 condition text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<CompactString>,
    /// TQ1-11 text instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<CompactString>,
    /// TQ1-14 total occurrences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrences: Option<Decimal>,
}

/// One NTE comment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Note {
    /// NTE-3, repetitions joined by a newline.
    pub text: CompactString,
    /// NTE-2 source (table 0105: `L` filler, `P` placer, `O` other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<CompactString>,
    /// NTE-4 comment type (table 0364: `RE` remark, `PI` patient
    /// instructions, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Box<Coded>>,
    /// NTE-5 entered by (v2.6+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Box<Practitioner>>,
    /// NTE-6 entered at (v2.6+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_at: Option<Timestamp>,
}

/// One SPM specimen (or, in older versions, OBR-15's specimen source).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Specimen {
    /// SPM-2.1 placer assigned specimen id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placer_id: Option<EntityId>,
    /// SPM-2.2 filler assigned specimen id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filler_id: Option<EntityId>,
    /// SPM-3 parent specimen ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_ids: Vec<EntityId>,
    /// SPM-4 (OBR-15.1) specimen type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Coded>,
    /// SPM-6 additives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additives: Vec<Coded>,
    /// SPM-7 collection method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_method: Option<Box<Coded>>,
    /// SPM-8 (OBR-15.4) source site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_site: Option<Coded>,
    /// SPM-10 collection site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_site: Option<Box<Coded>>,
    /// SPM-11 specimen role (table 0369: `P` patient, `Q` control, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Coded>,
    /// SPM-12 collection amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Box<Quantity>>,
    /// SPM-14 description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<CompactString>,
    /// SPM-17.1 collection time (start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collected_at: Option<Timestamp>,
    /// SPM-17.2 end of collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collected_until: Option<Timestamp>,
    /// SPM-18 received time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<Timestamp>,
    /// SPM-21 reject reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reject_reasons: Vec<Coded>,
    /// SPM-24 conditions (hemolyzed, clotted, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Coded>,
    /// SPM-27 container type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Box<Coded>>,
    /// SPM-30 accession id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accession_id: Option<Box<Identifier>>,
    /// NTE after SPM.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
}

/// One OBX.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Observation {
    /// OBX-3 what was observed (LOINC for labs, MDC for devices).
    pub code: Coded,
    /// OBX-4 sub-id (device hierarchy `1.2.1.3`, or grouping).
    pub sub_id: Option<CompactString>,
    /// OBX-5 (with OBX-2 and OBX-6), its first repetition.
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
    pub method: Option<Box<Coded>>,
    /// OBX-5 repetitions after the first, each read as OBX-2 says (text
    /// repetitions are joined into `value` instead).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_values: Vec<Value>,
    /// OBX-6 when the value has no unit of its own (a text or coded value
    /// sent with a unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// OBX-15 producer's id (the performing laboratory in older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<Box<Coded>>,
    /// OBX-16 responsible observers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observers: Vec<Practitioner>,
    /// OBX-19 analysis time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyzed_at: Option<Timestamp>,
    /// OBX-20 observation sites.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<Coded>,
    /// OBX-21 observation instance identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<Box<EntityId>>,
    /// OBX-23 performing organization, with the OBX-24 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performing_organization: Option<Box<Organization>>,
    /// OBX-25 performing organization medical director.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performing_director: Option<Box<Practitioner>>,
    /// The specimen this result is about, as an index into its group's
    /// specimens (an OBX after an SPM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specimen: Option<u16>,
    /// NTE after OBX: comments on the result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
}

/// An observation value, typed by OBX-2.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum Value {
    /// No value (OBX-5 empty or `""`).
    #[default]
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
    /// NA/MA, or NM with several numbers in components (device waveforms
    /// `1^2^3`).
    Series(Series),
}

/// Numbers sampled over time, with their unit.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Series {
    /// The numbers, sample by sample; within a sample, channel by channel.
    pub values: Vec<Decimal>,
    /// Values per sample: the channels of an MA (components of each
    /// repetition); 1 otherwise.
    pub channels: u16,
    /// The unit (OBX-6).
    pub unit: Option<Unit>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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
    #[default]
    Unknown,
}
