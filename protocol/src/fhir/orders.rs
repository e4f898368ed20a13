//! ORC/OBR (and RXO) to `ServiceRequest`: the orders of ORM/OML and the
//! order behind each result group.
//!
//! Invariants:
//! - Keyed like the report: filler order number, else placer, else the
//!   order's place in the record. An order message is the authority for
//!   its order (conditional update: a cancel revokes it); a result
//!   message only creates the order when the server has none.
//! - `status` follows ORC-1 (a cancel or discontinue revokes, a hold puts
//!   on hold) and then ORC-5; `intent` is always `order`.

use serde_json::{Value, json};

use super::Render;
use super::bundle::{Write, reference};
use super::coding::{self, date_time};
use super::json::{self, Object, put, put_list};
use super::lab::Ordered;
use super::observation::notes;
use crate::record::OrderMessage;

impl Render<'_> {
    /// Adds an ORM/OML's orders, their specimens and their observations.
    pub(super) fn orders(&mut self, message: &OrderMessage) {
        for (n, order) in message.orders.iter().enumerate() {
            let url = self.service_request(
                &Ordered {
                    placer: order.placer_order.as_deref(),
                    filler: order.filler_order.as_deref(),
                    service: order.service.as_ref(),
                    status: order.status.as_deref(),
                    control: Some(order.control.as_str()),
                    ordered_at: order.ordered_at.as_ref(),
                    priority: order.priority.as_deref(),
                    detail: &order.detail,
                },
                format!("order-{}", n + 1),
                Write::Update,
            );
            let specimens: Vec<Value> = order
                .detail
                .specimens
                .iter()
                .enumerate()
                .map(|(s, spm)| {
                    reference(&self.specimen(spm, &format!("spm-{}.{}", n + 1, s + 1), Some(&url)))
                })
                .collect();
            for s in specimens {
                self.bundle.push_to(&url, "specimen", s);
            }
            if !order.observations.is_empty() {
                let infos = self.plain_observations(
                    &order.observations,
                    &format!("order-{}-obs", n + 1),
                    Some("survey"),
                );
                for info in infos {
                    self.bundle
                        .push_to(&url, "supportingInfo", reference(&info));
                }
            }
        }
    }

    /// Adds a `ServiceRequest` and returns its URL.
    pub(super) fn service_request(
        &mut self,
        o: &Ordered<'_>,
        part: String,
        write: Write,
    ) -> String {
        let d = o.detail;
        let (key, identifiers) = self.order_key(o.placer, o.filler, d, &part);
        let mut out = Object::new();
        out.insert("identifier".into(), Value::Array(identifiers));
        if let Some(group) = d
            .placer_group
            .as_deref()
            .and_then(|g| self.entity_identifier(g, Some("PGN")))
        {
            out.insert("requisition".into(), group);
        }
        out.insert(
            "status".into(),
            Value::from(request_status(o.control, o.status)),
        );
        out.insert("intent".into(), Value::from("order"));
        put(
            &mut out,
            "priority",
            o.priority.and_then(priority).map(Value::from),
        );
        put(
            &mut out,
            "code",
            o.service.and_then(|c| coding::concept(c, &self.sender)),
        );
        if let Some(subject) = self.subject() {
            out.insert("subject".into(), subject);
        } else {
            out.insert(
                "subject".into(),
                json!({"display": "no patient (PID absent, or a quality-control specimen)"}),
            );
        }
        put(
            &mut out,
            "encounter",
            self.encounter_url.as_deref().map(reference),
        );
        put(&mut out, "authoredOn", o.ordered_at.and_then(date_time));
        let orderers = self.practitioners(&d.orderers);
        let facility = d
            .ordering_facility
            .as_deref()
            .and_then(|f| self.organization(f));
        let requester = match (orderers.first(), &facility) {
            (Some(who), Some(at)) => self.role(who, at).or_else(|| Some(who.clone())),
            (Some(who), None) => Some(who.clone()),
            (None, Some(at)) => Some(at.clone()),
            (None, None) => None,
        };
        put(&mut out, "requester", requester);
        let sender = self.sender.clone();
        put_list(
            &mut out,
            "reasonCode",
            d.reasons
                .iter()
                .filter_map(|r| coding::concept(r, &sender))
                .collect(),
        );
        let mut notes = notes(&d.notes);
        if let Some(info) = d.clinical_info.as_deref().and_then(json::string) {
            notes.push(json!({ "text": info }));
        }
        put_list(&mut out, "note", notes);
        if let Some(timing) = d.timing.first() {
            match (
                timing.start.as_ref().and_then(date_time),
                timing.end.as_ref().and_then(date_time),
            ) {
                (Some(start), Some(end)) => {
                    out.insert(
                        "occurrencePeriod".into(),
                        json!({"start": start, "end": end}),
                    );
                }
                (Some(start), None) => {
                    out.insert("occurrenceDateTime".into(), start);
                }
                _ => {}
            }
            put(
                &mut out,
                "patientInstruction",
                timing.instructions.as_deref().and_then(json::string),
            );
        }
        if let Some(parent) = d.parent_order.as_deref() {
            let ids: Vec<Value> = [(&parent.filler, "FILL"), (&parent.placer, "PLAC")]
                .into_iter()
                .filter_map(|(e, kind)| {
                    e.as_ref()
                        .and_then(|e| self.entity_identifier(e, Some(kind)))
                })
                .map(|id| json!({ "identifier": id }))
                .collect();
            put_list(&mut out, "basedOn", ids);
        }
        if !d.copies_to.is_empty()
            || !d.collectors.is_empty()
            || d.entered_by.is_some()
            || !d.callback_phones.is_empty()
        {
            self.not_rendered(
                "OBR-10/OBR-28/ORC-10/ORC-14 (collectors, copies to, entered by, call-back phone)",
            );
        }
        self.bundle.add("ServiceRequest", key, write, out)
    }
}

/// ServiceRequest `status` of ORC-1, then ORC-5 (tables 0119, 0038).
fn request_status(control: Option<&str>, status: Option<&str>) -> &'static str {
    match control.map(str::trim) {
        Some("CA" | "DC" | "OC" | "CR" | "DR" | "OD") => return "revoked",
        Some("HD" | "OH") => return "on-hold",
        _ => {}
    }
    match status.map(str::trim) {
        Some("CM") => "completed",
        Some("CA" | "DC") => "revoked",
        Some("HD") => "on-hold",
        Some("IP" | "SC" | "A") => "active",
        _ => match control.map(str::trim) {
            Some("NW" | "XO" | "SC" | "SN" | "RE" | "OK") => "active",
            _ => "unknown",
        },
    }
}

/// ServiceRequest `priority` of a TQ1-9 / OBR-5 code (table 0485); the
/// codes with no FHIR counterpart (preoperative, as needed, ...) are left
/// out.
fn priority(code: &str) -> Option<&'static str> {
    match code.trim() {
        "S" => Some("stat"),
        "A" => Some("asap"),
        "R" => Some("routine"),
        _ => None,
    }
}
