//! The simulated lab analyzer: ORU^R01 v2.5.1 in original acknowledgement
//! mode (MSH-15/16 empty, so the gateway answers AA/AE).
//!
//! Odd messages are a CBC panel coded in LOINC, with leukocytes and
//! platelets in the analyzer's local unit spelling `Tsd/ul` (which the
//! demo mapping table maps to UCUM `10*3/uL`); even messages are a
//! chemistry panel where glucose and creatinine carry the lab's local codes
//! (`GLU`, `KREA` in system `99LAB`, mapped to LOINC by the table).

use super::{Kind, Outgoing, Range, dtm, minutes_before, pid};

/// One analyte of a panel.
struct Analyte {
    /// OBX-3 as sent: `code^display^system`.
    code: &'static str,
    /// OBX-6 as sent.
    unit: &'static str,
    range: Range,
}

const fn range(scale: u8, low: i64, high: i64, min: i64, max: i64) -> Range {
    Range {
        scale,
        low,
        high,
        min,
        max,
    }
}

const CBC: [Analyte; 5] = [
    Analyte {
        code: "718-7^Hemoglobin^LN",
        unit: "g/dL^^UCUM",
        range: range(1, 120, 160, 105, 170),
    },
    Analyte {
        code: "6690-2^Leukocytes^LN",
        unit: "Tsd/ul",
        range: range(1, 40, 110, 30, 130),
    },
    Analyte {
        code: "789-8^Erythrocytes^LN",
        unit: "10*6/uL^^UCUM",
        range: range(2, 400, 520, 380, 560),
    },
    Analyte {
        code: "4544-3^Hematocrit^LN",
        unit: "%^^UCUM",
        range: range(1, 360, 460, 330, 480),
    },
    Analyte {
        code: "777-3^Platelets^LN",
        unit: "Tsd/ul",
        range: range(0, 150, 400, 120, 460),
    },
];

const CHEMISTRY: [Analyte; 4] = [
    Analyte {
        code: "GLU^Glucose^99LAB",
        unit: "mg/dL^^UCUM",
        range: range(0, 70, 99, 65, 160),
    },
    Analyte {
        code: "KREA^Creatinine^99LAB",
        unit: "mg/dL^^UCUM",
        range: range(2, 50, 110, 45, 160),
    },
    Analyte {
        code: "2823-3^Potassium^LN",
        unit: "mmol/L^^UCUM",
        range: range(1, 35, 51, 32, 58),
    },
    Analyte {
        code: "2951-2^Sodium^LN",
        unit: "mmol/L^^UCUM",
        range: range(0, 136, 145, 131, 149),
    },
];

/// The analyzer's `n`-th result message (1-based), sent at `now`.
pub(in crate::demo) fn lab_result(n: usize, now: &jiff::Zoned) -> Outgoing {
    let control_id = control_id(n);
    let (label, service, analytes): (_, _, &[Analyte]) = if n % 2 == 1 {
        ("CBC panel", "58410-2^CBC panel^LN", &CBC)
    } else {
        (
            "chemistry panel",
            "24323-8^Comprehensive metabolic panel^LN",
            &CHEMISTRY,
        )
    };
    let collected = dtm(&minutes_before(now, 35));
    let mut segments = vec![
        msh(&control_id, now),
        pid(n, 1),
        format!(
            "OBR|1|ORD{n:05}|FIL{n:05}|{service}|||{collected}|||||||||||||||{}|||F",
            dtm(now)
        ),
    ];
    for (i, a) in analytes.iter().enumerate() {
        let value = a.range.value(n, i as u64);
        segments.push(format!(
            "OBX|{seq}|NM|{code}||{value}|{unit}|{range}|{flag}|||F|||{collected}",
            seq = i + 1,
            code = a.code,
            unit = a.unit,
            range = a.range.text(),
            flag = a.range.flag(value),
        ));
    }
    Outgoing {
        control_id,
        label,
        kind: Kind::Valid,
        bytes: join(&segments),
    }
}

/// A result whose comment holds a raw line break, so its second line looks
/// like a segment with an invalid id: the gateway answers AE and keeps the
/// message in quarantine (nothing is forwarded).
pub(in crate::demo) fn malformed(n: usize, now: &jiff::Zoned) -> Outgoing {
    let mut message = lab_result(n, now);
    let mut text = String::from_utf8_lossy(&message.bytes).into_owned();
    text.push_str("NTE|1|L|Specimen slightly hemolyzed.\rRepeat collection advised.\r");
    message.label = "note with a raw line break";
    message.kind = Kind::Malformed;
    message.bytes = text.into_bytes();
    message
}

/// `LAB00001`.
fn control_id(n: usize) -> String {
    format!("LAB{n:05}")
}

fn msh(control_id: &str, now: &jiff::Zoned) -> String {
    format!(
        "MSH|^~\\&|DEMO_LIS|DEMO_LAB|HL7EDGE|DEMO_CLINIC|{}||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        dtm(now)
    )
}

fn join(segments: &[String]) -> Vec<u8> {
    let mut text = segments.join("\r");
    text.push('\r');
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use hl7edge_protocol::hl7::Message;
    use hl7edge_protocol::hl7::validate::Validation;

    use super::*;

    fn now() -> jiff::Zoned {
        jiff::Timestamp::from_second(1_780_000_000)
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(2)))
    }

    #[test]
    fn cbc_and_chemistry_alternate_and_validate_cleanly() {
        for n in 1..=4 {
            let m = lab_result(n, &now());
            let parsed = Message::parse(&m.bytes).unwrap();
            let validation = Validation::of(&parsed);
            assert!(validation.is_acceptable(), "{:?}", validation.issues);
            assert_eq!(validation.warnings().count(), 0, "{:?}", validation.issues);
            assert_eq!(parsed.control_id().unwrap(), format!("LAB{n:05}"));
        }
        assert_eq!(lab_result(1, &now()).label, "CBC panel");
        assert_eq!(lab_result(2, &now()).label, "chemistry panel");
    }

    #[test]
    fn the_malformed_message_is_refused_by_validation() {
        let m = malformed(9, &now());
        let parsed = Message::parse(&m.bytes).unwrap();
        assert!(!Validation::of(&parsed).is_acceptable());
        assert_eq!(m.kind, Kind::Malformed);
    }

    #[test]
    fn messages_carry_the_sending_time_with_its_offset() {
        let text = String::from_utf8(lab_result(1, &now()).bytes).unwrap();
        assert!(text.starts_with("MSH|^~\\&|DEMO_LIS|DEMO_LAB|HL7EDGE|DEMO_CLINIC|20260528"));
        assert!(text.contains("+0200||ORU^R01^ORU_R01|LAB00001|P|2.5.1\r"));
    }
}
