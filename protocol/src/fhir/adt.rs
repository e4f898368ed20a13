//! ADT: `Patient` (conditional update: the registry speaks), `Encounter`
//! of PV1, merges and links as `Patient.link`, observations (height,
//! weight) as `Observation`s.
//!
//! Invariants:
//! - A merge (MRG) never overwrites the merged-away patient: the
//!   surviving patient lists it as `link` `replaces`, by identifier (a
//!   logical reference, which no server resolves into an overwrite). A
//!   server that holds the old patient keeps it unchanged; marking it
//!   `replaced-by` needs a PATCH, which a transaction cannot make
//!   idempotent (see docs/fhir-mapping.md).
//! - A visit is keyed on its visit number (PV1-19), else its place in the
//!   record; its status follows the trigger event and PV1-45.

use serde_json::{Value, json};

use super::Render;
use super::bundle::Write;
use super::coding::date_time;
use super::ids::Key;
use super::json::{self, Object, put, put_list};
use crate::record::{Encounter, Identifier, PatientEvent};

impl Render<'_> {
    /// Adds an ADT event's further patient groups and observations (the
    /// first patient and visit are added by the caller).
    pub(super) fn patient_event(&mut self, event: &PatientEvent) {
        let merged: Vec<&Identifier> = event
            .merged_from
            .iter()
            .chain(event.prior.iter().flat_map(|p| &p.identifiers))
            .collect();
        if let Some(url) = self.patient_url.clone() {
            self.links(&url, &merged);
        }
        self.plain_observations(&event.observations, "adt-obs", Some("vital-signs"));
        for (n, group) in event.more_patients.iter().enumerate() {
            let url = self.patient(&group.patient, Write::Update);
            let merged: Vec<&Identifier> = group
                .merged_from
                .iter()
                .chain(group.prior.iter().flat_map(|p| &p.identifiers))
                .collect();
            self.links(&url, &merged);
            let saved = (self.patient_url.replace(url), self.encounter_url.take());
            if let Some(e) = &group.encounter {
                self.encounter_url = Some(self.encounter(e, &format!("encounter-{}", n + 2)));
            }
            self.plain_observations(
                &group.observations,
                &format!("adt-obs-{}", n + 2),
                Some("vital-signs"),
            );
            (self.patient_url, self.encounter_url) = saved;
        }
        if event
            .prior
            .iter()
            .any(|p| p.account.is_some() || p.visit.is_some() || p.name.is_some())
        {
            self.not_rendered("MRG-3/MRG-5/MRG-7 (prior account, visit, name)");
        }
    }

    /// Adds `replaces` links to the patient at `url`.
    fn links(&mut self, url: &str, merged: &[&Identifier]) {
        let own = self.patient_identifiers(url);
        for id in merged {
            let Some(other) = self.patient_by_identifier(id) else {
                continue;
            };
            if own.contains(&other["identifier"]) {
                continue;
            }
            self.bundle
                .push_to(url, "link", json!({"other": other, "type": "replaces"}));
        }
    }

    /// The identifiers of the patient entry at `url`.
    fn patient_identifiers(&self, url: &str) -> Vec<Value> {
        self.bundle
            .resource(url)
            .and_then(|r| r.get("identifier"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Adds a PV1 `Encounter` and returns its URL.
    pub(super) fn encounter(&mut self, e: &Encounter, part: &str) -> String {
        let key = e
            .visit_number
            .as_ref()
            .and_then(|v| self.identifier_key(v))
            .unwrap_or_else(|| Key::in_record(self.bundle.record_id(), part));
        let mut out = Object::new();
        out.insert("identifier".into(), json!([key.identifier(Some("VN"))]));
        out.insert("status".into(), Value::from(self.encounter_status(e)));
        out.insert("class".into(), class(e.class.as_deref()));
        put_list(
            &mut out,
            "type",
            e.patient_type
                .as_deref()
                .and_then(|t| super::coding::table_concept("0018", t))
                .into_iter()
                .collect(),
        );
        put(
            &mut out,
            "serviceType",
            e.hospital_service
                .as_deref()
                .and_then(|s| super::coding::table_concept("0069", s)),
        );
        put(&mut out, "subject", self.subject());
        let mut participants = Vec::new();
        let people = [
            (e.attending.as_ref(), "ATND"),
            (e.referring.as_deref(), "REF"),
            (e.admitting.as_deref(), "ADM"),
        ];
        for (who, role) in people {
            if let Some(r) = who.and_then(|p| self.practitioner(p)) {
                participants.push(participant(role, r));
            }
        }
        for c in &e.consulting {
            if let Some(r) = self.practitioner(c) {
                participants.push(participant("CON", r));
            }
        }
        put_list(&mut out, "participant", participants);
        let start = e.admitted_at.as_ref().and_then(date_time);
        let end = e.discharged_at.as_ref().and_then(date_time);
        if start.is_some() || end.is_some() {
            let mut period = Object::new();
            put(&mut period, "start", start);
            put(&mut period, "end", end);
            out.insert("period".into(), Value::Object(period));
        }
        let mut hospitalization = Object::new();
        put(
            &mut hospitalization,
            "admitSource",
            e.admit_source
                .as_deref()
                .and_then(|s| super::coding::table_concept("0023", s)),
        );
        put(
            &mut hospitalization,
            "dischargeDisposition",
            e.discharge_disposition
                .as_deref()
                .and_then(|s| super::coding::table_concept("0112", s)),
        );
        if !hospitalization.is_empty() {
            out.insert("hospitalization".into(), Value::Object(hospitalization));
        }
        let location = [e.location.as_deref(), e.facility.as_deref()]
            .into_iter()
            .flatten()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" / ");
        if let Some(display) = json::string(&location) {
            out.insert(
                "location".into(),
                json!([{ "location": { "display": display } }]),
            );
        }
        if let Some(facility) = e.servicing_facility.as_deref().and_then(json::string) {
            out.insert("serviceProvider".into(), json!({ "display": facility }));
        }
        if e.prior_location.is_some()
            || e.financial_class.is_some()
            || e.discharged_to.is_some()
            || e.preadmit_number.is_some()
            || e.alternate_visit_id.is_some()
            || e.admission_type.is_some()
        {
            self.not_rendered("PV1-4/5/6/20/37/50 (admission type, preadmit number, prior location, financial class, discharged to, alternate visit id)");
        }
        self.bundle.add("Encounter", key, Write::Update, out)
    }

    /// Encounter `status` of the trigger event and PV1-45.
    fn encounter_status(&self, e: &Encounter) -> &'static str {
        match self.record.header.trigger_event.as_str() {
            "A11" | "A27" | "A38" => return "cancelled",
            "A05" | "A14" => return "planned",
            "A03" => return "finished",
            _ => {}
        }
        if e.discharged_at.is_some() {
            "finished"
        } else if e.admitted_at.is_some() {
            "in-progress"
        } else {
            "unknown"
        }
    }
}

/// An encounter participant of a v3 ParticipationType code.
fn participant(role: &str, who: Value) -> Value {
    json!({
        "type": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": role,
        }]}],
        "individual": who,
    })
}

/// Encounter `class` of PV1-2 (table 0004 to v3 ActCode).
fn class(code: Option<&str>) -> Value {
    let act = match code.map(str::trim) {
        Some("I") => Some(("IMP", "inpatient encounter")),
        Some("O") => Some(("AMB", "ambulatory")),
        Some("E") => Some(("EMER", "emergency")),
        Some("P") => Some(("PRENC", "pre-admission")),
        Some("B") => Some(("OBSENC", "observation encounter")),
        _ => None,
    };
    match act {
        Some((code, display)) => json!({
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": code,
            "display": display,
        }),
        None => json!({
            "system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
            "code": "UNK",
            "display": "unknown",
        }),
    }
}
