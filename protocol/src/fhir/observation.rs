//! OBX to `Observation` (lab results, device metrics, ADT and VXU
//! observations): value by OBX-2 type, units in UCUM, flags, reference
//! range, comments, and further OBX-5 repetitions as `component`s.
//!
//! Invariants:
//! - The value keeps its type: NM a `valueQuantity` with the sender's
//!   digits, SN a quantity with comparator, a `valueRange` or a
//!   `valueRatio` (else the text), CWE a `valueCodeableConcept`, TS a
//!   `valueDateTime`, NA/MA a `valueSampledData`, the rest a
//!   `valueString`. An observation without a value says why
//!   (`dataAbsentReason`).
//! - Each further OBX-5 repetition is a `component` with the
//!   observation's code, never dropped and never joined into one value.

use serde_json::{Value, json};

use super::Render;
use super::bundle::reference;
use super::coding::{self, date_time, quantity, unit_into};
use super::json::{self, Object, decimal, put, put_list};
use crate::record::{Note, Observation, ResultStatus, Series, StructuredNumeric, Unit, Value as V};

/// What the caller knows about an observation's place in the message.
pub(super) struct Place<'p> {
    /// `laboratory`, `vital-signs`, `survey`, ... (observation-category).
    pub category: Option<&'static str>,
    /// The time when OBX-14 is empty (OBR-7).
    pub fallback_time: Option<&'p crate::record::Timestamp>,
    /// The specimen entry URL.
    pub specimen: Option<String>,
    /// The device entry URL (OBX-18).
    pub device: Option<String>,
    /// More codings of the code (the LOINC of an MDC vital sign).
    pub more_codings: Vec<Value>,
}

impl Render<'_> {
    /// The `Observation` resource of one OBX (without identifier and links).
    pub(super) fn observation(&mut self, o: &Observation, place: Place<'_>) -> Object {
        let mut out = Object::new();
        out.insert("status".into(), Value::from(status(o.status)));
        if let Some(category) = place.category {
            out.insert(
                "category".into(),
                json!([{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": category,
                }]}]),
            );
        }
        let mut code = coding::concept(&o.code, &self.sender)
            .unwrap_or_else(|| json!({"text": "no observation code (OBX-3 empty)"}));
        if !place.more_codings.is_empty()
            && let Some(Value::Array(codings)) = code.get_mut("coding")
        {
            codings.extend(place.more_codings);
        }
        out.insert("code".into(), code);
        put(&mut out, "subject", self.subject());
        put(
            &mut out,
            "encounter",
            self.encounter_url.as_deref().map(reference),
        );
        put(
            &mut out,
            "effectiveDateTime",
            o.observed_at
                .as_ref()
                .or(place.fallback_time)
                .and_then(date_time),
        );
        let mut performers = self.practitioners(&o.observers);
        if let Some(org) = o
            .performing_organization
            .as_deref()
            .and_then(|org| self.organization(org))
        {
            let director = o
                .performing_director
                .as_deref()
                .and_then(|d| self.practitioner(d));
            if let Some(role) = director.and_then(|d| self.role(&d, &org)) {
                performers.push(role);
            }
            performers.push(org);
        }
        put_list(&mut out, "performer", performers);
        if !value_into(&mut out, "value", &o.value, o.unit.as_ref(), &self.sender)
            && o.more_values.is_empty()
        {
            out.insert(
                "dataAbsentReason".into(),
                json!({"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "code": "unknown",
                }]}),
            );
        }
        put_list(
            &mut out,
            "interpretation",
            o.flags.iter().filter_map(|f| interpretation(f)).collect(),
        );
        put_list(&mut out, "note", notes(&o.notes));
        put(
            &mut out,
            "bodySite",
            o.sites
                .first()
                .and_then(|s| coding::concept(s, &self.sender)),
        );
        put(
            &mut out,
            "method",
            o.method
                .as_ref()
                .and_then(|m| coding::concept(m, &self.sender)),
        );
        put(
            &mut out,
            "specimen",
            place.specimen.as_deref().map(reference),
        );
        put(&mut out, "device", place.device.as_deref().map(reference));
        put_list(&mut out, "referenceRange", reference_range(o));
        let components: Vec<Value> = o
            .more_values
            .iter()
            .filter_map(|v| {
                let mut c = Object::new();
                c.insert("code".into(), out["code"].clone());
                value_into(&mut c, "value", v, o.unit.as_ref(), &self.sender)
                    .then_some(Value::Object(c))
            })
            .collect();
        put_list(&mut out, "component", components);
        self.note_dropped(o);
        out
    }

    /// Marks what an OBX holds that its `Observation` does not show.
    fn note_dropped(&mut self, o: &Observation) {
        if o.sites.len() > 1 {
            self.not_rendered("OBX-20 (sites after the first)");
        }
        if o.analyzed_at.is_some() {
            self.not_rendered("OBX-19 (analysis time)");
        }
        if o.producer.is_some() {
            self.not_rendered("OBX-15 (producer's id)");
        }
        if o.equipment.len() > 1 {
            self.not_rendered("OBX-18 (equipment after the first)");
        }
    }
}

/// Sets `<prefix>Quantity`, `<prefix>String`, ...; false when there is
/// no value.
pub(super) fn value_into(
    out: &mut Object,
    prefix: &str,
    v: &V,
    unit: Option<&Unit>,
    sender: &str,
) -> bool {
    let (suffix, value) = match v {
        V::None => return false,
        V::Quantity(q) => ("Quantity", Some(quantity(q))),
        V::Structured(sn) => structured(sn),
        V::Coded(c) => ("CodeableConcept", coding::concept(c, sender)),
        V::Time(t) => ("DateTime", date_time(t)),
        V::Text(t) => ("String", json::string(t)),
        V::Series(s) => ("SampledData", sampled(s)),
    };
    let Some(mut value) = value else { return false };
    if let (Some(u), Some(q), "Quantity") = (unit, value.as_object_mut(), suffix)
        && !q.contains_key("unit")
    {
        unit_into(q, Some(u));
    }
    out.insert(format!("{prefix}{suffix}"), value);
    true
}

/// SN as a quantity with comparator, a range, a ratio, else text.
fn structured(sn: &StructuredNumeric) -> (&'static str, Option<Value>) {
    let comparator = sn
        .comparator
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty() && *c != "=");
    let separator = sn
        .separator
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let q = |d| {
        let mut q = Object::new();
        q.insert("value".into(), decimal(d));
        unit_into(&mut q, sn.unit.as_ref());
        Value::Object(q)
    };
    match (comparator, sn.low, separator, sn.high) {
        (None, Some(low), Some("-"), Some(high)) => {
            ("Range", Some(json!({"low": q(low), "high": q(high)})))
        }
        (None, Some(n), Some(":" | "/"), Some(d)) => (
            "Ratio",
            Some(json!({"numerator": {"value": decimal(n)}, "denominator": {"value": decimal(d)}})),
        ),
        (c @ (None | Some("<" | ">" | "<=" | ">=")), Some(n), None, None) => {
            let mut v = q(n);
            if let (Some(c), Some(o)) = (c, v.as_object_mut()) {
                o.insert("comparator".into(), Value::from(c));
            }
            ("Quantity", Some(v))
        }
        _ => ("String", json::string(&sn_text(sn))),
    }
}

/// SN as the sender wrote it (`<>5`, `1+`).
fn sn_text(sn: &StructuredNumeric) -> String {
    let mut text = String::new();
    for part in [
        sn.comparator.as_deref().map(str::to_owned),
        sn.low.map(|d| d.to_string()),
        sn.separator.as_deref().map(str::to_owned),
        sn.high.map(|d| d.to_string()),
    ]
    .into_iter()
    .flatten()
    {
        text.push_str(&part);
    }
    text
}

/// NA/MA as `SampledData`: HL7 sends no sampling period, so `period` is 0
/// (unknown) and every value is one data point.
fn sampled(s: &Series) -> Option<Value> {
    if s.values.is_empty() {
        return None;
    }
    let data: Vec<String> = s.values.iter().map(ToString::to_string).collect();
    let mut origin = Object::new();
    origin.insert("value".into(), Value::from(0));
    unit_into(&mut origin, s.unit.as_ref());
    Some(json!({
        "origin": origin,
        "period": 0,
        "dimensions": s.channels.max(1),
        "data": data.join(" "),
    }))
}

/// OBX-7 as a `referenceRange`.
fn reference_range(o: &Observation) -> Vec<Value> {
    let Some(range) = &o.reference_range else {
        return Vec::new();
    };
    let unit = match &o.value {
        V::Quantity(q) => q.unit.as_ref(),
        V::Structured(sn) => sn.unit.as_ref(),
        _ => o.unit.as_ref(),
    };
    let bound = |d| {
        let mut q = Object::new();
        q.insert("value".into(), decimal(d));
        unit_into(&mut q, unit);
        Value::Object(q)
    };
    let mut out = Object::new();
    put(&mut out, "low", range.low.map(bound));
    put(&mut out, "high", range.high.map(bound));
    put(
        &mut out,
        "text",
        range.text.as_deref().and_then(json::string),
    );
    if out.is_empty() {
        Vec::new()
    } else {
        vec![Value::Object(out)]
    }
}

/// An OBX-8 abnormal flag as a FHIR interpretation (the v2 table 0078
/// codes are the v3 ObservationInterpretation codes).
fn interpretation(flag: &str) -> Option<Value> {
    let code = json::code(flag)?;
    Some(json!({"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        "code": code,
    }]}))
}

/// NTE comments as FHIR `Annotation`s.
pub(super) fn notes(list: &[Note]) -> Vec<Value> {
    list.iter()
        .filter_map(|n| {
            let mut a = Object::new();
            a.insert("text".into(), json::string(&n.text)?);
            put(&mut a, "time", n.written_at.as_ref().and_then(date_time));
            let author = n
                .author
                .as_deref()
                .and_then(|p| p.name.as_ref())
                .and_then(super::party::display_name);
            put(&mut a, "authorString", author);
            Some(Value::Object(a))
        })
        .collect()
}

/// Observation `status` of OBX-11 (the V2-to-FHIR concept map).
fn status(s: ResultStatus) -> &'static str {
    match s {
        ResultStatus::Final | ResultStatus::FinalUnchanged => "final",
        ResultStatus::Preliminary | ResultStatus::Partial | ResultStatus::NotVerified => {
            "preliminary"
        }
        ResultStatus::Corrected => "corrected",
        ResultStatus::Cancelled | ResultStatus::NotAsked => "cancelled",
        ResultStatus::Deleted | ResultStatus::WrongPatient => "entered-in-error",
        ResultStatus::Pending | ResultStatus::OrderDetail => "registered",
        ResultStatus::Unknown => "unknown",
    }
}
