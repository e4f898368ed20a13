//! Codes, quantities and times: `CodeableConcept` with the original and
//! the standard coding, UCUM `Quantity`, FHIR `date`/`dateTime`/`instant`.
//!
//! Invariants:
//! - A `CodeableConcept` lists the standard coding first (when the record
//!   knows one), then the original coding as sent, then the alternate
//!   (CWE.4-6), each once; its `text` is CWE.9, else the first display.
//!   It is `None` only when the element holds neither a code nor text.
//! - A standard system gets its FHIR URI (LOINC `http://loinc.org`,
//!   SNOMED CT `http://snomed.info/sct`, ...); a local or unknown system
//!   gets `urn:hl7edge:code:<sender>:<name>` (local codes mean something
//!   only at the sender); HL7 tables (`HL7nnnn`) their terminology URI.
//! - A quantity has `system = http://unitsofmeasure.org` and `code` only
//!   when its unit is UCUM (then `unit` shows the UCUM code too); a unit
//!   the gateway could not read as UCUM is only the `unit` text, as sent.
//! - A time is written in the sender's offset and precision; an hour or
//!   minute precision gets `:00` seconds (FHIR needs them) and a year
//!   outside 0001-9999 is left out rather than written wrongly.

use serde_json::{Value, json};

use super::ids::urn_part;
use super::json::{self, Object, put};
use crate::normalize::coding_system::CodingSystem;
use crate::record::{Coded, Coding, Precision, Quantity, Timestamp, Unit};

/// The UCUM system URI.
pub const UCUM: &str = "http://unitsofmeasure.org";

/// The FHIR system URI of a coding system; `sender` scopes local codes.
pub fn system_uri(system: &CodingSystem, sender: &str) -> Option<String> {
    match system {
        CodingSystem::Local(name) | CodingSystem::Other(name) => named_system(name, sender),
        standard => standard.uri().map(|u| u.into_owned()),
    }
}

/// A system named by text (a local one, or one the gateway does not
/// know): the sender's own.
fn named_system(name: &str, sender: &str) -> Option<String> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some(format!(
        "urn:hl7edge:code:{}:{}",
        urn_part(sender),
        urn_part(name)
    ))
}

/// One FHIR `Coding`, or `None` when the code is empty.
pub fn coding(c: &Coding, sender: &str) -> Option<Value> {
    let code = json::code(&c.code)?;
    let mut out = Object::new();
    put(
        &mut out,
        "system",
        system_uri(&c.system, sender).map(Value::String),
    );
    out.insert("code".into(), code);
    put(
        &mut out,
        "display",
        c.display.as_deref().and_then(json::string),
    );
    Some(Value::Object(out))
}

/// A `CodeableConcept` with the standard and the original coding.
pub fn concept(c: &Coded, sender: &str) -> Option<Value> {
    let mut codings: Vec<Value> = Vec::new();
    let candidates = [c.standard_coding(), Some(&c.original), c.alternate.as_ref()];
    for coding in candidates
        .into_iter()
        .flatten()
        .filter_map(|k| coding(k, sender))
    {
        if !codings.contains(&coding) {
            codings.push(coding);
        }
    }
    let text = c
        .text
        .as_deref()
        .or(c.original.display.as_deref())
        .or(c.alternate.as_ref().and_then(|a| a.display.as_deref()))
        .and_then(json::string);
    if codings.is_empty() && text.is_none() {
        return None;
    }
    let mut out = Object::new();
    json::put_list(&mut out, "coding", codings);
    put(&mut out, "text", text);
    Some(Value::Object(out))
}

/// A `CodeableConcept` of one code in an HL7 v2 table (`v2-0074`), with
/// the code as sent.
pub fn table_concept(table: &str, code: &str) -> Option<Value> {
    let code = json::code(code)?;
    Some(json!({"coding": [{
        "system": format!("http://terminology.hl7.org/CodeSystem/v2-{table}"),
        "code": code,
    }]}))
}

/// A FHIR `Quantity` of a number and its unit.
pub fn quantity(q: &Quantity) -> Value {
    let mut out = Object::new();
    out.insert("value".into(), json::decimal(q.value));
    unit_into(&mut out, q.unit.as_ref());
    Value::Object(out)
}

/// Adds `unit`, `system` and `code` of a unit to a quantity.
pub fn unit_into(out: &mut Object, unit: Option<&Unit>) {
    let Some(unit) = unit else { return };
    let ucum = unit.ucum.as_deref().and_then(json::code);
    let shown = unit
        .ucum
        .as_deref()
        .or(unit.original.as_deref())
        .and_then(json::string);
    put(out, "unit", shown);
    if let Some(code) = ucum {
        out.insert("system".into(), Value::from(UCUM));
        out.insert("code".into(), code);
    }
}

/// A FHIR `dateTime` in the sender's offset and precision.
pub fn date_time(t: &Timestamp) -> Option<Value> {
    let local = local(t)?;
    let text = match t.precision {
        Precision::Year => local.strftime("%Y").to_string(),
        Precision::Month => local.strftime("%Y-%m").to_string(),
        Precision::Day => local.strftime("%Y-%m-%d").to_string(),
        Precision::Hour | Precision::Minute | Precision::Second => {
            local.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
        }
        Precision::Fraction => local.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
    };
    Some(Value::String(text))
}

/// A FHIR `date`: the sender's calendar date, to the precision sent.
pub fn date(t: &Timestamp) -> Option<Value> {
    let local = local(t)?;
    let format = match t.precision {
        Precision::Year => "%Y",
        Precision::Month => "%Y-%m",
        _ => "%Y-%m-%d",
    };
    Some(Value::String(local.strftime(format).to_string()))
}

/// A FHIR `instant` (UTC, milliseconds) of a Unix time in milliseconds.
pub fn instant(utc_ms: i64) -> Option<Value> {
    let ts = jiff::Timestamp::from_millisecond(utc_ms).ok()?;
    let zoned = ts.to_zoned(jiff::tz::TimeZone::UTC);
    in_range(zoned.year())?;
    Some(Value::String(
        zoned.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    ))
}

/// The timestamp in the sender's offset, when FHIR can write its year.
fn local(t: &Timestamp) -> Option<jiff::Zoned> {
    let ts = jiff::Timestamp::from_millisecond(t.utc_ms).ok()?;
    let offset = jiff::tz::Offset::from_seconds(i32::from(t.offset_minutes) * 60).ok()?;
    let zoned = ts.to_zoned(jiff::tz::TimeZone::fixed(offset));
    in_range(zoned.year())?;
    Some(zoned)
}

/// `Some` for the years a FHIR date can hold.
fn in_range(year: i16) -> Option<()> {
    (1..=9999).contains(&year).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Decimal, Standard};

    fn ts(utc_ms: i64, precision: Precision, offset_minutes: i16) -> Timestamp {
        Timestamp {
            utc_ms,
            precision,
            offset_minutes,
            zone_assumed: false,
        }
    }

    #[test]
    fn times_keep_the_senders_offset_and_precision() {
        // 2024-03-01T12:34:00Z written by a sender at -05:00.
        let t = ts(1_709_296_440_000, Precision::Minute, -300);
        assert_eq!(
            date_time(&t),
            Some(Value::from("2024-03-01T07:34:00-05:00"))
        );
        let birth = ts(1_709_269_200_000, Precision::Day, -300);
        assert_eq!(date(&birth), Some(Value::from("2024-03-01")));
        assert_eq!(
            date_time(&ts(0, Precision::Year, 0)),
            Some(Value::from("1970"))
        );
        assert_eq!(
            instant(1_709_296_440_123),
            Some(Value::from("2024-03-01T12:34:00.123Z"))
        );
    }

    #[test]
    fn a_mapped_code_lists_the_standard_then_the_original() {
        let c = Coded {
            original: Coding {
                code: "GLU".into(),
                display: Some("Glucose".into()),
                system: CodingSystem::Local("99LAB".into()),
            },
            alternate: None,
            standard: Standard::Mapped(Coding {
                code: "2345-7".into(),
                display: None,
                system: CodingSystem::Loinc,
            }),
            text: None,
        };
        let v = concept(&c, "LAB").unwrap();
        assert_eq!(v["coding"][0]["system"], "http://loinc.org");
        assert_eq!(v["coding"][1]["system"], "urn:hl7edge:code:LAB:99LAB");
        assert_eq!(v["coding"][1]["code"], "GLU");
        assert_eq!(v["text"], "Glucose");
    }

    #[test]
    fn ucum_units_carry_the_ucum_system_and_others_only_their_text() {
        let q = Quantity {
            value: Decimal::parse("5.40").unwrap(),
            unit: Some(Unit {
                ucum: Some("mmol/L".into()),
                original: None,
            }),
            converted: None,
        };
        let v = quantity(&q);
        assert_eq!(
            (v["system"].as_str(), v["code"].as_str()),
            (Some(UCUM), Some("mmol/L"))
        );
        let local = Quantity {
            value: Decimal::parse("1").unwrap(),
            unit: Some(Unit {
                ucum: None,
                original: Some("tabs".into()),
            }),
            converted: None,
        };
        let v = quantity(&local);
        assert_eq!(v.get("system"), None);
        assert_eq!(v["unit"], "tabs");
    }
}
