//! IHE PCD-01 device observations: OBX-18 equipment as `Device`, and the
//! LOINC code of the vital signs an MDC code names (so FHIR's vital-signs
//! profile finds them).
//!
//! Invariants:
//! - A device is keyed on its OBX-18 identifier: an EUI-64 gets the IHE
//!   EUI-64 system, any other the assigning authority's; one device per
//!   identifier however many observations name it.
//! - The LOINC table holds only codes whose meaning is the same in both
//!   terminologies (the vital signs FHIR's profile lists); an MDC code
//!   not in it keeps its MDC coding only, never a guess.

use serde_json::{Value, json};

use super::Render;
use super::bundle::Write;
use super::ids::{self, Key};
use super::json::Object;
use crate::normalize::coding_system::CodingSystem;
use crate::record::Coded;

/// The OID of EUI-64 identifiers (IHE PCD Technical Framework).
const EUI64_SYSTEM: &str = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680";

/// MDC reference ids and numeric codes to LOINC, with LOINC's display.
const VITAL_SIGNS: &[(&str, &str, &str, &str)] = &[
    (
        "MDC_PULS_OXIM_SAT_O2",
        "150456",
        "59408-5",
        "Oxygen saturation in Arterial blood by Pulse oximetry",
    ),
    ("MDC_ECG_HEART_RATE", "147842", "8867-4", "Heart rate"),
    ("MDC_PULS_OXIM_PULS_RATE", "149530", "8867-4", "Heart rate"),
    ("MDC_PULS_RATE_NON_INV", "149546", "8867-4", "Heart rate"),
    (
        "MDC_PRESS_BLD_NONINV_SYS",
        "150021",
        "8480-6",
        "Systolic blood pressure",
    ),
    (
        "MDC_PRESS_BLD_NONINV_DIA",
        "150022",
        "8462-4",
        "Diastolic blood pressure",
    ),
    (
        "MDC_PRESS_BLD_NONINV_MEAN",
        "150023",
        "8478-0",
        "Mean blood pressure",
    ),
    ("MDC_TEMP_BODY", "150364", "8310-5", "Body temperature"),
    ("MDC_RESP_RATE", "151562", "9279-1", "Respiratory rate"),
    (
        "MDC_TTHOR_RESP_RATE",
        "151570",
        "9279-1",
        "Respiratory rate",
    ),
    ("MDC_MASS_BODY_ACTUAL", "188736", "29463-7", "Body weight"),
    ("MDC_LEN_BODY_ACTUAL", "188740", "8302-2", "Body height"),
];

/// The LOINC coding of a vital sign an MDC code names.
pub(super) fn vital_sign_loinc(code: &Coded) -> Option<Value> {
    let mdc = [Some(&code.original), code.alternate.as_ref()]
        .into_iter()
        .flatten()
        .find(|c| c.system == CodingSystem::Mdc)?;
    let text = mdc.code.trim();
    let (_, _, loinc, display) = VITAL_SIGNS.iter().find(|(name, number, _, _)| {
        *number == text || name.eq_ignore_ascii_case(text) || mdc.display.as_deref() == Some(name)
    })?;
    Some(json!({"system": "http://loinc.org", "code": loinc, "display": display}))
}

/// The key of an OBX-18 equipment id (`id^namespace^universal id^type`).
pub(super) fn device_key(equipment: &str, sender: &str) -> Option<Key> {
    let mut parts = equipment.split('^');
    let id = parts.next().map(str::trim).filter(|i| !i.is_empty())?;
    let namespace = parts.next().filter(|p| !p.is_empty());
    let universal = parts.next().filter(|p| !p.is_empty());
    let kind = parts.next().map(str::trim);
    let system = if kind.is_some_and(|k| k.eq_ignore_ascii_case("EUI-64")) {
        EUI64_SYSTEM.to_owned()
    } else {
        ids::system(universal, namespace, sender)
    };
    Some(Key {
        system,
        value: id.to_owned(),
    })
}

impl Render<'_> {
    /// The `Device` of an OBX-18 identifier; returns its entry URL.
    pub(super) fn device(&mut self, equipment: &str) -> String {
        let key = device_key(equipment, &self.sender)
            .unwrap_or_else(|| Key::in_record(self.bundle.record_id(), "device"));
        let mut out = Object::new();
        out.insert("identifier".into(), json!([key.identifier(None)]));
        self.bundle.add("Device", key, Write::Create, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Coding;

    #[test]
    fn an_mdc_heart_rate_gets_its_loinc_code_and_an_unknown_one_none() {
        let mut c = Coded {
            original: Coding {
                code: "147842".into(),
                display: Some("MDC_ECG_HEART_RATE".into()),
                system: CodingSystem::Mdc,
            },
            ..Coded::default()
        };
        assert_eq!(vital_sign_loinc(&c).unwrap()["code"], "8867-4");
        c.original.code = "999999".into();
        c.original.display = None;
        assert_eq!(vital_sign_loinc(&c), None);
    }

    #[test]
    fn an_eui64_device_gets_the_ihe_system() {
        let k = device_key("0123456789ABCDEF^^0123456789ABCDEF^EUI-64", "LAB").unwrap();
        assert_eq!(k.system, EUI64_SYSTEM);
        assert_eq!(k.value, "0123456789ABCDEF");
    }
}
