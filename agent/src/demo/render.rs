//! The demo's readable lines: one per ACK a sender got, and a few per
//! record the hub received.
//!
//! Columns line up across senders and records: who (8), direction, control
//! id (9), message type (8), then the detail.

use hl7edge_protocol::normalize::coding_system::CodingSystem;
use hl7edge_protocol::record::{
    Body, Coded, Coding, Observation, Quantity, ReferenceRange, Standard, StructuredNumeric, Unit,
    Value,
};
use hl7edge_protocol::wire::{Entry, Envelope};

use super::messages::Kind;
use super::sender::Exchange;

/// Observations shown per record.
const SHOWN_OBSERVATIONS: usize = 3;
/// Indentation of observation lines under their record line.
const INDENT: &str = "                ";

/// `  lab      -> LAB00001  ORU^R01  CBC panel                   ACK AA`
pub(super) fn exchange_line(x: &Exchange) -> String {
    let code = x.ack.code.as_str();
    let note = match (x.message.kind, code) {
        (Kind::Valid, "AA") => String::new(),
        (Kind::Valid, "CA") => "  (commit accept: stored)".into(),
        (Kind::Malformed, "AE" | "CE") => format!(
            "  refused, kept in quarantine, not forwarded ({})",
            error_codes(&x.ack.error_codes)
        ),
        (Kind::Resend, _) if x.replayed == Some(true) => format!(
            "  resend recognised: the stored ACK {} again",
            x.ack.control_id
        ),
        _ => "  (unexpected!)".into(),
    };
    format!(
        "  {:<8} -> {:<9} {:<8} {:<27} ACK {code}{note}",
        x.sender, x.message.control_id, "ORU^R01", x.message.label
    )
}

fn error_codes(codes: &[u16]) -> String {
    match codes {
        [] => "no error code".into(),
        [one] => format!("error {one}"),
        many => format!(
            "errors {}",
            many.iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The record line and its first observations.
pub(super) fn record_lines(envelope: &Envelope, entry: &Entry) -> Vec<String> {
    let header = &entry.record.header;
    let kind = if header.trigger_event.is_empty() {
        header.message_code.to_string()
    } else {
        format!("{}^{}", header.message_code, header.trigger_event)
    };
    let observations: Vec<&Observation> = match &entry.record.body {
        Body::Observations(report) => report
            .orders
            .iter()
            .flat_map(|o| &o.observations)
            .filter(|o| o.value != Value::None)
            .collect(),
        _ => Vec::new(),
    };
    let device = observations
        .iter()
        .find_map(|o| o.equipment.first())
        .map(|d| format!(", device {}", device(d)))
        .unwrap_or_default();
    let mut lines = vec![format!(
        "  {:<8} <- {:<9} {:<8} record {} from {}: {} result{}{device}",
        "hub",
        header.control_id,
        kind,
        entry.id,
        envelope.source,
        observations.len(),
        if observations.len() == 1 { "" } else { "s" },
    )];
    lines.extend(observation_lines(&observations));
    lines
}

/// An OBX-18 EI as people read it: `0012A3FFFE00D3E0 (EUI-64)`.
fn device(ei: &str) -> String {
    let mut parts = ei.split('^');
    let id = parts.next().unwrap_or_default();
    match parts.nth(2).filter(|t| !t.is_empty()) {
        Some(kind) => format!("{id} ({kind})"),
        None => id.to_string(),
    }
}

/// One aligned line per shown observation, then how many were left out.
fn observation_lines(observations: &[&Observation]) -> Vec<String> {
    let shown: Vec<[String; 4]> = observations
        .iter()
        .take(SHOWN_OBSERVATIONS)
        .map(|o| observation_columns(o))
        .collect();
    let width = |i: usize| {
        shown
            .iter()
            .map(|c| c.get(i).map_or(0, |s| s.chars().count()))
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut lines: Vec<String> = shown
        .iter()
        .map(|[code, name, value, rest]| {
            format!("{INDENT}{code:<w0$} {name:<w1$} = {value:<w2$} {rest}")
                .trim_end()
                .to_string()
        })
        .collect();
    if observations.len() > SHOWN_OBSERVATIONS {
        lines.push(format!(
            "{INDENT}… and {} more",
            observations.len() - SHOWN_OBSERVATIONS
        ));
    }
    lines
}

/// `LOINC 718-7`, `Hemoglobin`, `13.9 g/dL`, `[12.0-16.0] N  mapped from …`.
fn observation_columns(o: &Observation) -> [String; 4] {
    let coding = o.code.standard_coding().unwrap_or(&o.code.original);
    let code = format!("{} {}", system_name(&coding.system), coding.code);
    let name = coding
        .display
        .clone()
        .or_else(|| o.code.original.display.clone())
        .unwrap_or_default();
    let mut rest = Vec::new();
    if let Some(range) = o.reference_range.as_ref().map(range_text) {
        rest.push(range);
    }
    if !o.flags.is_empty() {
        rest.push(o.flags.join(","));
    }
    let mut notes = Vec::new();
    if let Standard::Mapped(_) = o.code.standard {
        notes.push(format!("code mapped from {}", local(&o.code.original)));
    }
    if let Some(sent) = mapped_unit(&o.value) {
        notes.push(format!("unit mapped from {sent}"));
    }
    if let Some(sub_id) = &o.sub_id {
        notes.push(format!("at {sub_id}"));
    }
    if !o.code.is_mapped() {
        notes.push("no standard code (counted, not guessed)".into());
    }
    if !notes.is_empty() {
        rest.push(format!(" ({})", notes.join("; ")));
    }
    [code, name.to_string(), value_text(&o.value), rest.join(" ")]
}

/// What people call the coding system: `LOINC`, `MDC`, `SNOMED`, or the
/// HL7 name.
fn system_name(system: &CodingSystem) -> std::borrow::Cow<'_, str> {
    match system {
        CodingSystem::Loinc => "LOINC".into(),
        CodingSystem::SnomedCt => "SNOMED".into(),
        other => other.hl7_code(),
    }
}

fn local(c: &Coding) -> String {
    format!("{} {}", c.system.hl7_code(), c.code)
}

fn value_text(value: &Value) -> String {
    match value {
        Value::None => "(no value)".into(),
        Value::Quantity(Quantity { value, unit, .. }) => {
            with_unit(value.to_string(), unit.as_ref())
        }
        Value::Structured(sn) => structured(sn),
        Value::Coded(c) => coded(c),
        Value::Time(t) => jiff::Timestamp::from_millisecond(t.utc_ms)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| t.utc_ms.to_string()),
        Value::Text(t) => t.chars().take(40).collect(),
        Value::Series(s) => format!("{} samples", s.values.len()),
    }
}

fn with_unit(number: String, unit: Option<&Unit>) -> String {
    match unit.and_then(|u| u.ucum.as_ref().or(u.original.as_ref())) {
        Some(u) => format!("{number} {u}"),
        None => number,
    }
}

fn structured(sn: &StructuredNumeric) -> String {
    let text: String = [
        sn.comparator.as_deref().map(str::to_owned),
        sn.low.map(|d| d.to_string()),
        sn.separator.as_deref().map(str::to_owned),
        sn.high.map(|d| d.to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    with_unit(text, sn.unit.as_ref())
}

fn coded(c: &Coded) -> String {
    let coding = c.standard_coding().unwrap_or(&c.original);
    coding
        .display
        .as_deref()
        .unwrap_or(&coding.code)
        .to_string()
}

/// The unit as sent, when the mapping table (or built-in table) translated
/// a non-UCUM spelling; MDC unit codes are not called "mapped".
fn mapped_unit(value: &Value) -> Option<&str> {
    let Value::Quantity(Quantity {
        unit: Some(Unit {
            ucum: Some(_),
            original: Some(sent),
        }),
        ..
    }) = value
    else {
        return None;
    };
    (!sent.bytes().all(|b| b.is_ascii_digit())).then_some(sent.as_str())
}

fn range_text(r: &ReferenceRange) -> String {
    match (&r.low, &r.high, &r.text) {
        (Some(low), Some(high), _) => format!("[{low}-{high}]"),
        (Some(low), None, _) => format!("[>{low}]"),
        (None, Some(high), _) => format!("[<{high}]"),
        (None, None, Some(text)) => format!("[{text}]"),
        (None, None, None) => String::new(),
    }
}

/// One record as a JSON object: gateway, source, id, receive time, mapping
/// version and the record itself.
pub(super) fn record_json(envelope: &Envelope, entry: &Entry) -> serde_json::Value {
    serde_json::json!({
        "gateway": envelope.gateway,
        "source": envelope.source,
        "id": entry.id,
        "received_at_ms": entry.received_at_ms,
        "mapping_version": entry.mapping_version.to_string(),
        "record": entry.record,
    })
}

#[cfg(test)]
mod tests {
    use hl7edge_protocol::hl7::Message;
    use hl7edge_protocol::hl7::ack::{AckCode, AckSummary};
    use hl7edge_protocol::normalize::mapping::MappingTable;
    use hl7edge_protocol::normalize::{self, Context};
    use hl7edge_protocol::wire::StoredRecord;
    use uuid::Uuid;

    use super::*;
    use crate::demo::messages::{self, Outgoing};
    use crate::demo::setup::LAB_MAPPING;

    fn now() -> jiff::Zoned {
        jiff::Timestamp::from_second(1_780_000_000)
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
    }

    /// The hub's view of a message: normalized with the demo mapping table.
    fn received(message: &Outgoing, source: &str) -> (Envelope, Entry) {
        let mapping = MappingTable::parse(LAB_MAPPING).unwrap();
        let msg = Message::parse(&message.bytes).unwrap();
        let ctx = Context {
            time_zone: &jiff::tz::TimeZone::UTC,
            mapping: &mapping,
        };
        let record = normalize::normalize(&msg, Vec::new(), &ctx).record;
        let stored = StoredRecord {
            mapping_version: mapping.version().clone(),
            record,
        };
        let entry = stored.into_entry(Uuid::nil(), 1, 0, None);
        (Envelope::new("o/s/g", source, vec![entry.clone()]), entry)
    }

    #[test]
    fn mapped_codes_and_units_are_shown_with_what_was_sent() {
        let (env, entry) = received(&messages::lab_result(2, &now()), "lab");
        let lines = record_lines(&env, &entry);
        assert_eq!(
            lines[0],
            "  hub      <- LAB00002  ORU^R01  record 00000000-0000-0000-0000-000000000000 from lab: 4 results"
        );
        assert!(lines[1].contains("LOINC 2345-7 Glucose    = "), "{lines:?}");
        assert!(
            lines[1].ends_with("(code mapped from 99LAB GLU)"),
            "{lines:?}"
        );
        assert!(lines[3].contains("LOINC 2823-3 Potassium  = "), "{lines:?}");
        assert_eq!(lines[4].trim(), "… and 1 more");
        let (env, entry) = received(&messages::lab_result(1, &now()), "lab");
        let lines = record_lines(&env, &entry);
        assert!(lines[2].contains(" 10*3/uL ") && lines[2].ends_with("(unit mapped from Tsd/ul)"));
    }

    #[test]
    fn device_observations_show_mdc_codes_ucum_units_and_the_device() {
        let (env, entry) = received(&messages::vital_signs(1, &now()), "monitors");
        let lines = record_lines(&env, &entry);
        assert!(
            lines[0].ends_with("6 results, device 0012A3FFFE00D3E0 (EUI-64)"),
            "{lines:?}"
        );
        assert!(
            lines[1].contains("MDC 147842 MDC_ECG_HEART_RATE      = "),
            "{lines:?}"
        );
        assert!(lines[1].contains(" /min [50-100] "), "{lines:?}");
        assert!(lines[2].contains(" %    [90-100] ") && lines[2].ends_with("(at 1.2.1.1)"));
    }

    #[test]
    fn the_ack_line_explains_a_refusal() {
        let exchange = Exchange {
            sender: "lab",
            message: messages::malformed(4, &now()),
            ack: AckSummary {
                code: AckCode::ApplicationError,
                acknowledged_id: "LAB00004".into(),
                control_id: "HE1".into(),
                error_codes: vec![100],
            },
            replayed: None,
        };
        assert_eq!(
            exchange_line(&exchange),
            "  lab      -> LAB00004  ORU^R01  note with a raw line break  ACK AE  refused, kept in quarantine, not forwarded (error 100)"
        );
    }

    #[test]
    fn json_records_name_their_source_and_mapping_version() {
        let (env, entry) = received(&messages::lab_result(1, &now()), "lab");
        let v = record_json(&env, &entry);
        assert_eq!(v["source"], "lab");
        assert!(
            v["mapping_version"]
                .as_str()
                .unwrap()
                .starts_with("demo-lab-v1+")
        );
        assert_eq!(v["record"]["header"]["control_id"], "LAB00001");
    }
}
