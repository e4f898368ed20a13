//! Bodies other than results: ADT events, orders, immunizations and the
//! generic form, and the encounter (PV1) every type may carry.

use serde::{Deserialize, Serialize};

use super::{
    Coded, CompactString, Identifier, Observation, OrderDetail, Patient, PersonName, Practitioner,
    Quantity, Timestamp,
};

/// ADT: the event and, for merges and moves, what it changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PatientEvent {
    /// EVN-2 (or MSH-7) when the event was recorded.
    pub recorded_at: Option<Timestamp>,
    /// EVN-6 when the event happened.
    pub occurred_at: Option<Timestamp>,
    /// MRG: the identity merged away (A18, A30, A34, A36, A39, A40 only).
    pub merged_from: Vec<Identifier>,
    /// EVN-4 event reason code (table 0062).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<CompactString>,
    /// Every MRG of the first patient group, in full: the prior
    /// identifiers, account, visit or name the event merged, moved or
    /// changed (A35 and A41-A51 name their prior account or visit here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prior: Vec<Prior>,
    /// OBX (height, weight, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observations: Vec<Observation>,
    /// The patient groups after the first (A39/A40 merge several patients
    /// in one message; A24/A37 link or unlink two).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_patients: Vec<PatientGroup>,
}

/// A further patient group of an ADT event: its patient, visit, what was
/// merged into it, its MRG and OBX.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PatientGroup {
    /// The group's PID (with its NK1 and NTE).
    pub patient: Patient,
    /// The group's PV1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter: Option<Encounter>,
    /// As [`PatientEvent::merged_from`], for this group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<Identifier>,
    /// As [`PatientEvent::prior`], for this group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prior: Vec<Prior>,
    /// The group's OBX.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observations: Vec<Observation>,
}

/// One MRG: what the patient, account or visit was before the event.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Prior {
    /// MRG-1 prior patient identifiers, then MRG-4 prior patient id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<Identifier>,
    /// MRG-2 prior alternate patient id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_id: Option<Identifier>,
    /// MRG-3 prior patient account number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Identifier>,
    /// MRG-5 prior visit number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit: Option<Identifier>,
    /// MRG-6 prior alternate visit id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_visit: Option<Identifier>,
    /// MRG-7 prior patient name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<PersonName>,
    /// The PV1 that follows this MRG, when the event pairs them (A45
    /// moves visits: each MRG with the visit it moved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter: Option<Encounter>,
}

/// PV1: the visit.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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
    /// PV1-4 admission type (table 0007).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission_type: Option<CompactString>,
    /// PV1-5 preadmit number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preadmit_number: Option<Box<Identifier>>,
    /// PV1-6 prior patient location, as `location`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_location: Option<CompactString>,
    /// PV1-8 referring doctor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referring: Option<Box<Practitioner>>,
    /// PV1-9 consulting doctors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consulting: Vec<Practitioner>,
    /// PV1-10 hospital service (table 0069).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hospital_service: Option<CompactString>,
    /// PV1-14 admit source (table 0023).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admit_source: Option<CompactString>,
    /// PV1-17 admitting doctor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitting: Option<Box<Practitioner>>,
    /// PV1-18 patient type (table 0018).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_type: Option<CompactString>,
    /// PV1-20.1 financial class (table 0064).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub financial_class: Option<CompactString>,
    /// PV1-36 discharge disposition (table 0112).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discharge_disposition: Option<CompactString>,
    /// PV1-37.1 discharged to location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discharged_to: Option<CompactString>,
    /// PV1-39 servicing facility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servicing_facility: Option<CompactString>,
    /// PV1-50 alternate visit id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_visit_id: Option<Box<Identifier>>,
}

/// ORM^O01 / OML^O21.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OrderMessage {
    /// One entry per ORC.
    pub orders: Vec<Order>,
}

/// One ORC with its detail segment (OBR, RXO, ...).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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
    /// ORC-12 / OBR-16 ordering provider (the first; all in `orderers`).
    pub orderer: Option<Practitioner>,
    /// TQ1-9 / OBR-27.6 / OBR-5 priority.
    pub priority: Option<CompactString>,
    /// SPM-4 specimen type (the first specimen's; all in `specimens`).
    pub specimen: Option<Coded>,
    /// OBR-7 observation (collection) time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Timestamp>,
    /// OBX under the order (answers to ask-at-order-entry questions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observations: Vec<Observation>,
    /// OBR-22 results reported time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<Timestamp>,
    /// OBR-25 result status (table 0123), as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_status: Option<CompactString>,
    /// The order's people, links, timing, specimens and comments.
    #[serde(flatten)]
    pub detail: Box<OrderDetail>,
}

/// VXU^V04.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ImmunizationReport {
    /// One entry per RXA.
    pub immunizations: Vec<Immunization>,
    /// OBX about the patient, before any dose (v2.7+).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observations: Vec<Observation>,
}

/// One RXA (with its RXR, its ORC and the OBX and NTE that follow it).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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
    /// RXA-21 action code (table 0206: `A` add, `D` delete, `U` update):
    /// `D` deletes and `U` updates a dose reported earlier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<CompactString>,
    /// RXA-18 substance or treatment refusal reasons (the vaccine was not
    /// given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refusal_reasons: Vec<Coded>,
    /// RXA-4 administration end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub administered_until: Option<Timestamp>,
    /// RXA-9 administration notes (the information source: new record or
    /// historical).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub administration_notes: Vec<Coded>,
    /// RXA-10 administering providers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performers: Vec<Practitioner>,
    /// RXA-15 lot numbers after the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_lots: Vec<CompactString>,
    /// RXA-16 substance expiration date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// RXA-19 indications.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indications: Vec<Coded>,
    /// ORC-1 order control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_control: Option<CompactString>,
    /// ORC-2 placer order number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placer_order: Option<CompactString>,
    /// ORC-3 filler order number (the registry's id of the dose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filler_order: Option<CompactString>,
    /// OBX after the RXA (funding eligibility, VIS dates, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observations: Vec<Observation>,
    /// The ORC's people and the NTE comments.
    #[serde(flatten)]
    pub detail: Box<OrderDetail>,
}

/// A message type without a dedicated normalizer: its segments as text.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GenericMessage {
    /// MSH-1 followed by MSH-2 (e.g. `|^~\&`): how to split the segments.
    pub delimiters: String,
    /// Every segment after MSH, in order, as sent (decoded to UTF-8,
    /// escapes kept).
    pub segments: Vec<String>,
}

impl OrderDetail {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == OrderDetail::default()
    }
}
