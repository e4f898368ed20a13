//! ORU/OUL results: each OBR group to a `DiagnosticReport` with its
//! `ServiceRequest`, `Specimen`s and `Observation`s; parent links
//! (OBR-26/29, OBX-4) as `derivedFrom`, `basedOn` and `hasMember`.
//!
//! Invariants:
//! - A report is keyed on its filler order number (with its assigner),
//!   else its placer order number, else its place in the record; it is a
//!   conditional update, so a final report replaces the preliminary one.
//! - An observation is keyed on the record id and its place
//!   (`obs-<group>.<index>`): loading the record again finds it; a later
//!   message (a correction) adds its own observations and the updated
//!   report points at them.
//! - A quality-control group (SPM-11) is never filed under the patient:
//!   its report and observations have no subject, and are tagged.

use serde_json::{Value, json};

use super::Render;
use super::bundle::{Write, reference};
use super::coding::{self, date_time, table_concept};
use super::device::vital_sign_loinc;
use super::ids::{self, Key};
use super::json::{self, Object, put, put_list};
use super::observation::{Place, notes};
use crate::record::{EntityId, ObservationGroup, ObservationReport, OrderDetail, Specimen};

impl Render<'_> {
    /// Adds every group of an ORU/OUL.
    pub(super) fn report(&mut self, report: &ObservationReport) {
        let mut observation_urls: Vec<Vec<String>> = Vec::new();
        for (g, group) in report.orders.iter().enumerate() {
            observation_urls.push(self.group(g, group));
        }
        self.parent_links(report, &observation_urls);
    }

    /// One OBR group; returns the URLs of its observations.
    fn group(&mut self, g: usize, group: &ObservationGroup) -> Vec<String> {
        let saved_patient = self.patient_url.clone();
        if group.detail.quality_control {
            self.patient_url = None;
        }
        let request = self.service_request(
            &Ordered {
                placer: group.placer_order.as_deref(),
                filler: group.filler_order.as_deref(),
                service: group.service.as_deref(),
                status: group.order_status.as_deref(),
                control: group.order_control.as_deref(),
                ordered_at: group.ordered_at.as_ref(),
                priority: group.priority.as_deref(),
                detail: &group.detail,
            },
            format!("order-{}", g + 1),
            Write::Create,
        );
        let specimens: Vec<String> = group
            .detail
            .specimens
            .iter()
            .enumerate()
            .map(|(s, spm)| self.specimen(spm, &format!("spm-{}.{}", g + 1, s + 1), Some(&request)))
            .collect();
        let mut urls = Vec::new();
        for (i, o) in group.observations.iter().enumerate() {
            let device = o.equipment.first().map(|e| self.device(e));
            let more_codings = vital_sign_loinc(&o.code).into_iter().collect::<Vec<_>>();
            let category = if !more_codings.is_empty() {
                Some("vital-signs")
            } else if device.is_some() {
                None
            } else {
                Some("laboratory")
            };
            let place = Place {
                category,
                fallback_time: group.observed_at.as_ref(),
                specimen: o
                    .specimen
                    .and_then(|s| specimens.get(usize::from(s)).cloned())
                    .or_else(|| (specimens.len() == 1).then(|| specimens[0].clone())),
                device,
                more_codings,
            };
            let mut out = self.observation(o, place);
            out.insert("basedOn".into(), json!([reference(&request)]));
            let key = Key::in_record(self.bundle.record_id(), format!("obs-{}.{}", g + 1, i + 1));
            let mut identifiers = vec![key.identifier(None)];
            if let Some(instance) = o.instance_id.as_deref() {
                identifiers.extend(self.entity_identifier(instance, None));
            }
            out.insert("identifier".into(), Value::Array(identifiers));
            urls.push(self.bundle.add("Observation", key, Write::Create, out));
        }
        self.hierarchy(group, &urls);
        self.diagnostic_report(g, group, &request, &specimens, &urls);
        self.patient_url = saved_patient;
        urls
    }

    /// The group's `DiagnosticReport`.
    fn diagnostic_report(
        &mut self,
        g: usize,
        group: &ObservationGroup,
        request: &str,
        specimens: &[String],
        results: &[String],
    ) {
        let d = &group.detail;
        let (key, identifiers) = self.order_key(
            group.placer_order.as_deref(),
            group.filler_order.as_deref(),
            d,
            &format!("report-{}", g + 1),
        );
        let mut out = Object::new();
        out.insert("identifier".into(), Value::Array(identifiers));
        out.insert("basedOn".into(), json!([reference(request)]));
        out.insert(
            "status".into(),
            Value::from(report_status(group.status.as_deref())),
        );
        let mut categories: Vec<Value> = d
            .category
            .as_deref()
            .and_then(|c| table_concept("0074", c))
            .into_iter()
            .collect();
        if d.quality_control {
            categories.push(json!({"text": "quality control (SPM-11): results about a control material, not a patient"}));
        }
        put_list(&mut out, "category", categories);
        let code = group
            .service
            .as_ref()
            .and_then(|c| coding::concept(c, &self.sender))
            .unwrap_or_else(|| json!({"text": "no universal service id (OBR-4 empty)"}));
        out.insert("code".into(), code);
        put(&mut out, "subject", self.subject());
        put(
            &mut out,
            "encounter",
            self.encounter_url.as_deref().map(reference),
        );
        match (
            group.observed_at.as_ref().and_then(date_time),
            d.observed_until.as_ref().and_then(date_time),
        ) {
            (Some(start), Some(end)) => {
                out.insert(
                    "effectivePeriod".into(),
                    json!({"start": start, "end": end}),
                );
            }
            (start, _) => put(&mut out, "effectiveDateTime", start),
        }
        put(
            &mut out,
            "issued",
            group.reported_at.and_then(|t| coding::instant(t.utc_ms)),
        );
        let interpreters = self.practitioners(&d.interpreters);
        put_list(&mut out, "resultsInterpreter", interpreters);
        put_list(
            &mut out,
            "specimen",
            specimens.iter().map(|s| reference(s)).collect(),
        );
        put_list(
            &mut out,
            "result",
            results.iter().map(|r| reference(r)).collect(),
        );
        self.bundle.add("DiagnosticReport", key, Write::Update, out);
    }

    /// A `Specimen` keyed on its filler id, else placer id, else its place.
    pub(super) fn specimen(&mut self, spm: &Specimen, part: &str, request: Option<&str>) -> String {
        let mut identifiers: Vec<(Key, &str)> = Vec::new();
        for (id, kind) in [
            (spm.filler_id.as_ref(), "FGN"),
            (spm.placer_id.as_ref(), "PGN"),
        ] {
            if let Some(key) = id.and_then(|e| self.entity_key(e)) {
                identifiers.push((key, kind));
            }
        }
        let key = identifiers
            .first()
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Key::in_record(self.bundle.record_id(), part));
        let mut out = Object::new();
        let mut ids: Vec<Value> = identifiers
            .iter()
            .map(|(k, kind)| k.identifier(Some(kind)))
            .collect();
        if ids.is_empty() {
            ids.push(key.identifier(None));
        }
        out.insert("identifier".into(), Value::Array(ids));
        if let Some(accession) = spm
            .accession_id
            .as_deref()
            .and_then(|a| self.identifier_key(a))
        {
            out.insert("accessionIdentifier".into(), accession.identifier(None));
        }
        let sender = self.sender.clone();
        let concept = |c: &crate::record::Coded| coding::concept(c, &sender);
        put(&mut out, "type", spm.kind.as_ref().and_then(concept));
        put(&mut out, "subject", self.subject());
        put(
            &mut out,
            "receivedTime",
            spm.received_at.as_ref().and_then(date_time),
        );
        let parents: Vec<Value> = spm
            .parent_ids
            .iter()
            .filter_map(|p| self.entity_key(p))
            .map(|k| json!({"identifier": k.identifier(None)}))
            .collect();
        put_list(&mut out, "parent", parents);
        put_list(
            &mut out,
            "request",
            request.map(reference).into_iter().collect(),
        );
        let mut collection = Object::new();
        match (
            spm.collected_at.as_ref().and_then(date_time),
            spm.collected_until.as_ref().and_then(date_time),
        ) {
            (Some(start), Some(end)) => {
                collection.insert(
                    "collectedPeriod".into(),
                    json!({"start": start, "end": end}),
                );
            }
            (start, _) => put(&mut collection, "collectedDateTime", start),
        }
        put(
            &mut collection,
            "quantity",
            spm.amount.as_deref().map(coding::quantity),
        );
        put(
            &mut collection,
            "method",
            spm.collection_method.as_deref().and_then(concept),
        );
        put(
            &mut collection,
            "bodySite",
            spm.collection_site
                .as_deref()
                .or(spm.source_site.as_ref())
                .and_then(concept),
        );
        if !collection.is_empty() {
            out.insert("collection".into(), Value::Object(collection));
        }
        put_list(
            &mut out,
            "condition",
            spm.conditions.iter().filter_map(concept).collect(),
        );
        let mut container = Object::new();
        put(
            &mut container,
            "type",
            spm.container.as_deref().and_then(concept),
        );
        if let Some(additive) = spm.additives.first().and_then(concept) {
            container.insert("additiveCodeableConcept".into(), additive);
        }
        put(
            &mut container,
            "description",
            spm.description.as_deref().and_then(json::string),
        );
        if !container.is_empty() {
            out.insert("container".into(), json!([container]));
        }
        let mut notes = notes(&spm.notes);
        for reason in spm.reject_reasons.iter().filter_map(concept) {
            if let Some(text) = reason
                .get("text")
                .or_else(|| reason.pointer("/coding/0/code"))
                .and_then(Value::as_str)
            {
                notes.push(json!({"text": format!("rejected (SPM-21): {text}")}));
            }
        }
        put_list(&mut out, "note", notes);
        if spm.role.is_some() || spm.additives.len() > 1 {
            self.not_rendered("SPM-11 (specimen role) or SPM-6 (additives after the first)");
        }
        self.bundle.add("Specimen", key, Write::Create, out)
    }

    /// The key of an EI (`None` when its id is empty).
    pub(super) fn entity_key(&self, e: &EntityId) -> Option<Key> {
        let id = e.id.trim();
        (!id.is_empty()).then(|| Key {
            system: ids::system(
                e.authority_id.as_deref(),
                e.authority.as_deref(),
                &self.sender,
            ),
            value: id.to_owned(),
        })
    }

    /// An EI as a FHIR `Identifier`.
    pub(super) fn entity_identifier(&self, e: &EntityId, kind: Option<&str>) -> Option<Value> {
        self.entity_key(e).map(|k| k.identifier(kind))
    }

    /// The key of an order (filler, else placer, else `part` in the
    /// record) and its identifiers (`FILL`, `PLAC`).
    pub(super) fn order_key(
        &self,
        placer: Option<&str>,
        filler: Option<&str>,
        d: &OrderDetail,
        part: &str,
    ) -> (Key, Vec<Value>) {
        let key_of = |id: Option<&str>, ns: Option<&str>, uid: Option<&str>| {
            let id = id.map(str::trim).filter(|i| !i.is_empty())?;
            Some(Key {
                system: ids::system(uid, ns, &self.sender),
                value: id.to_owned(),
            })
        };
        let filler = key_of(
            filler,
            d.filler_assigner.as_deref(),
            d.filler_assigner_id.as_deref(),
        );
        let placer = key_of(
            placer,
            d.placer_assigner.as_deref(),
            d.placer_assigner_id.as_deref(),
        );
        let mut identifiers = Vec::new();
        if let Some(k) = &filler {
            identifiers.push(k.identifier(Some("FILL")));
        }
        if let Some(k) = &placer {
            identifiers.push(k.identifier(Some("PLAC")));
        }
        let key = filler
            .or(placer)
            .unwrap_or_else(|| Key::in_record(self.bundle.record_id(), part));
        if identifiers.is_empty() {
            identifiers.push(key.identifier(None));
        }
        (key, identifiers)
    }

    /// OBX-4 dotted sub-ids (`1.2.1.3`, the PCD-01 containment tree): the
    /// nearest ancestor present in the group lists the observation as a
    /// member.
    fn hierarchy(&mut self, group: &ObservationGroup, urls: &[String]) {
        for (i, o) in group.observations.iter().enumerate() {
            let Some(sub) = o.sub_id.as_deref().map(str::trim) else {
                continue;
            };
            let mut prefix = sub;
            while let Some((parent, _)) = prefix.rsplit_once('.') {
                prefix = parent;
                let found = group
                    .observations
                    .iter()
                    .position(|p| p.sub_id.as_deref().map(str::trim) == Some(parent));
                if let Some(p) = found.filter(|&p| p != i) {
                    self.bundle
                        .push_to(&urls[p], "hasMember", reference(&urls[i]));
                    break;
                }
            }
        }
    }

    /// OBR-26/29: the observations of a reflex group derive from the
    /// parent result (same OBX-3 and OBX-4) in the parent order's group.
    fn parent_links(&mut self, report: &ObservationReport, urls: &[Vec<String>]) {
        for (g, group) in report.orders.iter().enumerate() {
            let (Some(parent), Some(result)) = (
                group.detail.parent_order.as_deref(),
                group.detail.parent_result.as_deref(),
            ) else {
                continue;
            };
            let matches_parent = |other: &ObservationGroup| {
                let filler = parent.filler.as_ref().map(|e| e.id.as_str());
                let placer = parent.placer.as_ref().map(|e| e.id.as_str());
                (filler.is_some() && other.filler_order.as_deref() == filler)
                    || (placer.is_some() && other.placer_order.as_deref() == placer)
            };
            let Some(pg) = report
                .orders
                .iter()
                .position(matches_parent)
                .filter(|&p| p != g)
            else {
                continue;
            };
            let code = result.code.as_ref().map(|c| c.original.code.as_str());
            let found = report.orders[pg].observations.iter().position(|o| {
                Some(o.code.original.code.as_str()) == code
                    && (result.sub_id.is_none() || o.sub_id.as_deref() == result.sub_id.as_deref())
            });
            let Some(p) = found else { continue };
            let parent_url = urls[pg][p].clone();
            for child in &urls[g] {
                self.bundle
                    .push_to(child, "derivedFrom", reference(&parent_url));
                self.bundle
                    .push_to(&parent_url, "hasMember", reference(child));
            }
        }
    }
}

/// What a result group and an order message share for a `ServiceRequest`.
pub(super) struct Ordered<'a> {
    pub placer: Option<&'a str>,
    pub filler: Option<&'a str>,
    pub service: Option<&'a crate::record::Coded>,
    pub status: Option<&'a str>,
    pub control: Option<&'a str>,
    pub ordered_at: Option<&'a crate::record::Timestamp>,
    pub priority: Option<&'a str>,
    pub detail: &'a OrderDetail,
}

/// DiagnosticReport `status` of OBR-25 (table 0123).
fn report_status(status: Option<&str>) -> &'static str {
    match status.map(str::trim) {
        Some("O" | "I" | "S") => "registered",
        Some("A" | "R") => "partial",
        Some("P") => "preliminary",
        Some("C") => "corrected",
        Some("F") => "final",
        Some("X") => "cancelled",
        _ => "unknown",
    }
}
