//! VXU: each RXA (with RXR, ORC, OBX and NTE) to an `Immunization`.
//!
//! Invariants:
//! - A dose is keyed on the registry's id (ORC-3), else the placer's
//!   (ORC-2), else its place in the record, and written as a conditional
//!   update: RXA-21 `U` updates and `D` marks the dose reported earlier
//!   `entered-in-error` (never deletes it).
//! - A dose not given (RXA-20 `NA`, or RXA-18 refusal reasons) is
//!   `not-done` with the refusal as `statusReason`; no dose poses as given.

use serde_json::{Value, json};

use super::Render;
use super::bundle::{Write, reference};
use super::coding::{self, date, date_time};
use super::json::{self, Object, put, put_list};
use super::observation::notes;
use crate::record::{Immunization, ImmunizationReport};

impl Render<'_> {
    /// Adds a VXU's immunizations and observations.
    pub(super) fn immunizations(&mut self, report: &ImmunizationReport) {
        self.plain_observations(&report.observations, "vxu-obs", Some("survey"));
        for (n, dose) in report.immunizations.iter().enumerate() {
            let url = self.immunization(dose, n);
            let infos = self.plain_observations(
                &dose.observations,
                &format!("dose-{}-obs", n + 1),
                Some("survey"),
            );
            for info in infos {
                self.bundle.push_to(&info, "partOf", reference(&url));
            }
        }
    }

    fn immunization(&mut self, dose: &Immunization, n: usize) -> String {
        let (key, identifiers) = self.order_key(
            dose.placer_order.as_deref(),
            dose.filler_order.as_deref(),
            &dose.detail,
            &format!("dose-{}", n + 1),
        );
        let sender = self.sender.clone();
        let concept = |c: &crate::record::Coded| coding::concept(c, &sender);
        let mut out = Object::new();
        out.insert("identifier".into(), Value::Array(identifiers));
        let not_given = dose.completion.as_deref().map(str::trim) == Some("NA")
            || !dose.refusal_reasons.is_empty();
        let status = if dose.action.as_deref().map(str::trim) == Some("D") {
            "entered-in-error"
        } else if not_given {
            "not-done"
        } else {
            "completed"
        };
        out.insert("status".into(), Value::from(status));
        put(
            &mut out,
            "statusReason",
            dose.refusal_reasons.first().and_then(concept),
        );
        let vaccine = concept(&dose.vaccine)
            .unwrap_or_else(|| json!({"text": "no vaccine code (RXA-5 empty)"}));
        out.insert("vaccineCode".into(), vaccine);
        let patient = self
            .subject()
            .unwrap_or_else(|| json!({"display": "no patient (PID absent)"}));
        out.insert("patient".into(), patient);
        put(
            &mut out,
            "encounter",
            self.encounter_url.as_deref().map(reference),
        );
        match dose.administered_at.as_ref().and_then(date_time) {
            Some(at) => out.insert("occurrenceDateTime".into(), at),
            None => out.insert(
                "occurrenceString".into(),
                Value::from("unknown (RXA-3 empty)"),
            ),
        };
        if let Some(source) = dose.administration_notes.first() {
            match source.original.code.trim() {
                "00" => put(&mut out, "primarySource", Some(Value::Bool(true))),
                "01" => put(&mut out, "primarySource", Some(Value::Bool(false))),
                _ => put(&mut out, "reportOrigin", concept(source)),
            }
        }
        if let Some(m) = &dose.manufacturer {
            let mut r = Object::new();
            if let Some(code) = json::string(&m.original.code) {
                r.insert(
                    "identifier".into(),
                    json!({"system": "http://hl7.org/fhir/sid/mvx", "value": code}),
                );
            }
            put(
                &mut r,
                "display",
                m.original.display.as_deref().and_then(json::string),
            );
            if !r.is_empty() {
                out.insert("manufacturer".into(), Value::Object(r));
            }
        }
        put(
            &mut out,
            "lotNumber",
            dose.lot.as_deref().and_then(json::string),
        );
        put(
            &mut out,
            "expirationDate",
            dose.expires_at.as_ref().and_then(date),
        );
        put(&mut out, "site", dose.site.as_ref().and_then(concept));
        put(&mut out, "route", dose.route.as_ref().and_then(concept));
        put(
            &mut out,
            "doseQuantity",
            dose.dose.as_ref().map(coding::quantity),
        );
        let performers: Vec<Value> = self
            .practitioners(&dose.performers)
            .into_iter()
            .map(|actor| {
                json!({
                    "function": {"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0443",
                        "code": "AP",
                        "display": "Administering Provider",
                    }]},
                    "actor": actor,
                })
            })
            .collect();
        put_list(&mut out, "performer", performers);
        put_list(
            &mut out,
            "reasonCode",
            dose.indications.iter().filter_map(concept).collect(),
        );
        put_list(&mut out, "note", notes(&dose.detail.notes));
        if !dose.more_lots.is_empty()
            || dose.administered_until.is_some()
            || dose.refusal_reasons.len() > 1
        {
            self.not_rendered("RXA-4/RXA-15/RXA-18 (end time, lots after the first, refusal reasons after the first)");
        }
        self.bundle.add("Immunization", key, Write::Update, out)
    }
}
