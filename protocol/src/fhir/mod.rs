//! FHIR R4: a [`Record`] as a transaction `Bundle` a FHIR server can load
//! twice without making a duplicate.
//!
//! Pure and sans-IO: [`bundle`] walks the record and returns JSON
//! (`serde_json`); [`to_json`] writes it with the sender's decimal digits.
//! The mapping follows HL7's V2-to-FHIR implementation guide (segment by
//! segment, docs/fhir-mapping.md has the table):
//!
//! | record | resources | module |
//! |---|---|---|
//! | patient (PID, NK1) | Patient | `patient` |
//! | visit (PV1) | Encounter | `adt` |
//! | ORU/OUL groups | ServiceRequest, DiagnosticReport, Specimen, Observation | `lab`, `orders`, `observation` |
//! | OBX-18, MDC codes (PCD-01) | Device, LOINC vital-sign codings | `device` |
//! | ADT events | Patient (update), Patient.link for merges, Encounter | `adt` |
//! | ORM/OML | ServiceRequest (update) | `orders` |
//! | VXU | Immunization | `vxu` |
//! | clinicians, organizations | Practitioner, Organization, PractitionerRole | `party` |
//! | warnings, not carried | Provenance, the `partial` meta tag | this module |
//!
//! Invariants:
//! - Deterministic: the same record and [`Origin`] give the same bytes.
//! - Idempotent: every entry is a conditional create or update keyed on
//!   a business identifier (module `ids`); loading a bundle twice leaves
//!   the server as the first load did.
//! - Honest: when the record is partial (it has warnings, parts it did
//!   not carry, or parts this mapping does not render), every resource
//!   carries the `partial` meta tag and a `Provenance` lists what is
//!   missing (segment and field numbers, never values: no PHI).

mod adt;
mod bundle;
mod coding;
mod device;
mod ids;
mod json;
mod lab;
mod observation;
mod orders;
mod party;
mod patient;
mod vxu;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::normalize::mapping::MappingVersion;
use crate::record::{Body, Observation, Record};
use bundle::{Builder, Write, reference};
use ids::Key;
use json::{Object, put_list};

pub use bundle::{FIDELITY_TAG, MAPPING_TAG, MAPPING_VERSION, RECORD_TAG, RENDERER_TAG};
pub use json::Json;

/// Where a record comes from: what the bundle's keys and meta name.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The record's stable id (the wire entry id).
    pub record_id: Uuid,
    /// When the gateway received the message (ms since the Unix epoch).
    pub received_at_ms: i64,
    /// The gateway (`org/site/id`) that received it.
    pub gateway: &'a str,
    /// The interface it came in on.
    pub source: &'a str,
    /// The mapping table the record was normalized with.
    pub mapping_version: &'a MappingVersion,
}

/// The record as a FHIR R4 transaction `Bundle`.
pub fn bundle(record: &Record, origin: &Origin<'_>) -> Value {
    let h = &record.header;
    let sender = [h.sending_facility.as_str(), h.sending_application.as_str()]
        .into_iter()
        .find(|s| !s.trim().is_empty())
        .unwrap_or("unknown")
        .to_owned();
    let mut render = Render {
        record,
        bundle: Builder::new(origin.record_id, &origin.mapping_version.to_string()),
        sender,
        patient_url: None,
        encounter_url: None,
        not_rendered: Vec::new(),
    };
    render.walk();
    render.finish(origin)
}

/// A record id for a message that has none yet (a preview, as `hl7edge
/// inspect --fhir` renders): derived from the message bytes, so the same
/// message gets the same id.
pub fn preview_record_id(raw: &[u8]) -> Uuid {
    ids::name_based(raw)
}

/// The bundle as one line of JSON (decimals as sent).
pub fn to_json(bundle: &Value) -> String {
    serde_json::to_string(&Json(bundle)).unwrap_or_else(|_| String::from("{}"))
}

/// One record's rendering in progress.
struct Render<'a> {
    record: &'a Record,
    bundle: Builder,
    /// MSH-4, else MSH-3: the scope of identifiers and local codes sent
    /// without an authority or system.
    sender: String,
    /// The subject of the resources being added (none for QC groups).
    patient_url: Option<String>,
    encounter_url: Option<String>,
    /// Parts of the record this mapping has no FHIR element for.
    not_rendered: Vec<&'static str>,
}

impl Render<'_> {
    fn walk(&mut self) {
        let record = self.record;
        let write = if matches!(record.body, Body::Patient(_)) {
            Write::Update
        } else {
            Write::Create
        };
        if let Some(p) = &record.patient {
            self.patient_url = Some(self.patient(p, write));
            if !p.races.is_empty()
                || !p.ethnicities.is_empty()
                || p.religion.is_some()
                || p.account.is_some()
                || p.birth_place.is_some()
                || p.mothers_maiden_name.is_some()
                || !p.notes.is_empty()
            {
                self.not_rendered("PID-6/10/17/18/22/23, NTE (mother's maiden name, race, religion, account, ethnicity, birth place, patient comments)");
            }
        }
        if let Some(e) = &record.encounter {
            self.encounter_url = Some(self.encounter(e, "encounter"));
        }
        match &record.body {
            Body::Observations(report) => self.report(report),
            Body::Patient(event) => self.patient_event(event),
            Body::Orders(orders) => self.orders(orders),
            Body::Immunizations(report) => self.immunizations(report),
            Body::Generic(generic) => {
                if !generic.segments.is_empty() {
                    self.not_rendered("the message type has no FHIR mapping: its segments");
                }
            }
        }
    }

    /// Notes a part of the record this mapping does not render.
    fn not_rendered(&mut self, what: &'static str) {
        if !self.not_rendered.contains(&what) {
            self.not_rendered.push(what);
        }
    }

    /// Observations outside a result group (ADT, VXU, order answers),
    /// keyed `<part>-<index>` in the record; returns their URLs.
    fn plain_observations(
        &mut self,
        list: &[Observation],
        part: &str,
        category: Option<&'static str>,
    ) -> Vec<String> {
        let mut urls = Vec::new();
        for (i, o) in list.iter().enumerate() {
            let place = observation::Place {
                category,
                fallback_time: None,
                specimen: None,
                device: None,
                more_codings: device::vital_sign_loinc(&o.code).into_iter().collect(),
            };
            let mut out = self.observation(o, place);
            let key = Key::in_record(self.bundle.record_id(), format!("{part}-{}", i + 1));
            out.insert("identifier".into(), json!([key.identifier(None)]));
            urls.push(self.bundle.add("Observation", key, Write::Create, out));
        }
        urls
    }

    /// Adds the Provenance (when partial) and closes the bundle.
    fn finish(mut self, origin: &Origin<'_>) -> Value {
        let record = self.record;
        let partial = !record.issues.is_empty()
            || !record.not_carried.is_empty()
            || !self.not_rendered.is_empty();
        if partial && !self.bundle.urls().is_empty() {
            let provenance = self.provenance(origin);
            let tag = Key {
                system: "urn:hl7edge:provenance".to_owned(),
                value: origin.record_id.to_string(),
            };
            self.bundle.add_tagged("Provenance", tag, provenance);
        }
        self.bundle.finish(partial)
    }

    /// A Provenance naming the source message and what the resources miss.
    fn provenance(&self, origin: &Origin<'_>) -> Object {
        let record = self.record;
        let mut gaps: Vec<Value> = Vec::new();
        for nc in &record.not_carried {
            let place = if nc.field == 0 {
                format!("{} segment", nc.segment)
            } else {
                format!("{}-{}", nc.segment, nc.field)
            };
            gaps.push(json!({
                "url": "urn:hl7edge:fhir:not-carried",
                "valueString": format!("{place}: {} occurrence(s) with a value the record does not carry", nc.count),
            }));
        }
        for what in &self.not_rendered {
            gaps.push(json!({
                "url": "urn:hl7edge:fhir:not-rendered",
                "valueString": format!("{what}: carried by the record, no FHIR element in this mapping"),
            }));
        }
        for issue in &record.issues {
            gaps.push(json!({
                "url": "urn:hl7edge:fhir:warning",
                "valueString": format!("{} {}: {}", issue.code.code(), issue.location, issue.message),
            }));
        }
        let h = &record.header;
        let mut message = json!({
            "role": "source",
            "what": {
                "identifier": {"system": format!("urn:hl7edge:message:{}", ids::urn_part(&self.sender)), "value": if h.control_id.trim().is_empty() { "unknown" } else { h.control_id.trim() }},
                "display": format!("HL7 v2 {}^{} message", h.message_code, h.trigger_event),
            },
        });
        if !gaps.is_empty() {
            message["extension"] = Value::Array(gaps);
        }
        let mut out = Object::new();
        put_list(
            &mut out,
            "target",
            self.bundle.urls().iter().map(|u| reference(u)).collect(),
        );
        out.insert(
            "recorded".into(),
            coding::instant(origin.received_at_ms)
                .unwrap_or_else(|| Value::from("1970-01-01T00:00:00.000Z")),
        );
        out.insert(
            "agent".into(),
            json!([{
                "type": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "assembler",
                }]},
                "who": {
                    "identifier": {"system": "urn:hl7edge:gateway", "value": if origin.gateway.trim().is_empty() { "unknown" } else { origin.gateway.trim() }},
                    "display": format!("hl7edge gateway, interface {}", origin.source),
                },
            }]),
        );
        out.insert("entity".into(), json!([message]));
        out
    }
}

#[cfg(test)]
mod tests;
