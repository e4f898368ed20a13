//! Realistic HL7 v2 test messages: lab results (ORU^R01, original acknowledgement mode, a
//! chemistry and blood count panel of 20 LOINC-coded OBX) and device observations (ORU^R01 in
//! the IHE PCD-01 style, MDC codes and units, enhanced mode asking for a commit ACK).
//!
//! Invariants:
//! - the control id (MSH-10) is `{sender}-{n}`: unique per sender and message number;
//! - the same `(sender, n)` always gives the same bytes (no clock, no randomness), so a resend is
//!   byte-identical and tests are reproducible;
//! - segments end with CR only; every message is valid UTF-8 and declares `UNICODE UTF-8`.

use std::fmt::Write as _;

/// One HL7 message ready to frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// MSH-10.
    pub control_id: String,
    /// The message, segments separated by CR.
    pub bytes: Vec<u8>,
}

/// Which kind of message to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// [`lab_result`].
    Lab,
    /// [`device_observation`].
    Device,
}

/// One lab panel line: LOINC code, name, unit, low and high reference limits.
const PANEL: [(&str, &str, &str, f64, f64); 20] = [
    (
        "2345-7",
        "Glucose [Mass/volume] in Serum or Plasma",
        "mg/dL",
        70.0,
        99.0,
    ),
    (
        "3094-0",
        "Urea nitrogen [Mass/volume] in Serum or Plasma",
        "mg/dL",
        7.0,
        20.0,
    ),
    (
        "2160-0",
        "Creatinine [Mass/volume] in Serum or Plasma",
        "mg/dL",
        0.6,
        1.3,
    ),
    (
        "2951-2",
        "Sodium [Moles/volume] in Serum or Plasma",
        "mmol/L",
        136.0,
        145.0,
    ),
    (
        "2823-3",
        "Potassium [Moles/volume] in Serum or Plasma",
        "mmol/L",
        3.5,
        5.1,
    ),
    (
        "2075-0",
        "Chloride [Moles/volume] in Serum or Plasma",
        "mmol/L",
        98.0,
        107.0,
    ),
    (
        "2028-9",
        "Carbon dioxide, total [Moles/volume] in Serum or Plasma",
        "mmol/L",
        22.0,
        29.0,
    ),
    (
        "17861-6",
        "Calcium [Mass/volume] in Serum or Plasma",
        "mg/dL",
        8.6,
        10.3,
    ),
    (
        "2885-2",
        "Protein [Mass/volume] in Serum or Plasma",
        "g/dL",
        6.0,
        8.3,
    ),
    (
        "1751-7",
        "Albumin [Mass/volume] in Serum or Plasma",
        "g/dL",
        3.5,
        5.0,
    ),
    (
        "1975-2",
        "Bilirubin.total [Mass/volume] in Serum or Plasma",
        "mg/dL",
        0.1,
        1.2,
    ),
    (
        "6768-6",
        "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        44.0,
        147.0,
    ),
    (
        "1742-6",
        "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        7.0,
        56.0,
    ),
    (
        "1920-8",
        "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        10.0,
        40.0,
    ),
    (
        "6690-2",
        "Leukocytes [#/volume] in Blood by Automated count",
        "10*3/uL",
        4.5,
        11.0,
    ),
    (
        "789-8",
        "Erythrocytes [#/volume] in Blood by Automated count",
        "10*6/uL",
        4.2,
        5.9,
    ),
    (
        "718-7",
        "Hemoglobin [Mass/volume] in Blood",
        "g/dL",
        12.0,
        17.5,
    ),
    (
        "4544-3",
        "Hematocrit [Volume Fraction] of Blood by Automated count",
        "%",
        36.0,
        50.0,
    ),
    (
        "787-2",
        "MCV [Entitic volume] by Automated count",
        "fL",
        80.0,
        100.0,
    ),
    (
        "777-3",
        "Platelets [#/volume] in Blood by Automated count",
        "10*3/uL",
        150.0,
        400.0,
    ),
];

/// One vital sign: MDC code and reference id, unit code and reference id, decimals, base value.
const VITALS: [(u32, &str, u32, &str, usize, f64); 7] = [
    (
        147842,
        "MDC_ECG_HEART_RATE",
        264864,
        "MDC_DIM_BEAT_PER_MIN",
        0,
        72.0,
    ),
    (
        150456,
        "MDC_PULS_OXIM_SAT_O2",
        262688,
        "MDC_DIM_PERCENT",
        0,
        97.0,
    ),
    (
        150021,
        "MDC_PRESS_BLD_NONINV_SYS",
        266016,
        "MDC_DIM_MMHG",
        0,
        121.0,
    ),
    (
        150022,
        "MDC_PRESS_BLD_NONINV_DIA",
        266016,
        "MDC_DIM_MMHG",
        0,
        78.0,
    ),
    (
        150023,
        "MDC_PRESS_BLD_NONINV_MEAN",
        266016,
        "MDC_DIM_MMHG",
        0,
        92.0,
    ),
    (
        151562,
        "MDC_RESP_RATE",
        264928,
        "MDC_DIM_RESP_PER_MIN",
        0,
        16.0,
    ),
    (150344, "MDC_TEMP", 268192, "MDC_DIM_DEGC", 1, 36.8),
];

/// Message number `n` of `sender` of the given kind.
pub fn message(kind: Kind, sender: &str, n: u64) -> Message {
    match kind {
        Kind::Lab => lab_result(sender, n),
        Kind::Device => device_observation(sender, n),
    }
}

/// Messages `range` of `sender` of the given kind, in order.
pub fn messages(
    kind: Kind,
    sender: &str,
    range: std::ops::Range<u64>,
) -> impl Iterator<Item = Message> + '_ {
    range.map(move |n| message(kind, sender, n))
}

/// A lab result: ORU^R01 v2.5.1, original acknowledgement mode, 20 OBX and a note.
pub fn lab_result(sender: &str, n: u64) -> Message {
    let control_id = format!("{sender}-{n}");
    let ts = timestamp(n);
    let mut hl7 = String::with_capacity(4096);
    segment(
        &mut hl7,
        format_args!(
            "MSH|^~\\&|LIS|{sender}|HL7EDGE|CLINIC|{ts}||ORU^R01^ORU_R01|{control_id}|P|2.5.1||||||UNICODE UTF-8"
        ),
    );
    segment(
        &mut hl7,
        format_args!(
            "PID|1||MRN{mrn:07}^^^CLINIC^MR||Testpatient^Alex^J||19{yy:02}0{m}1{d}|{sex}|||12 Example St^^Springfield^^12345",
            mrn = 1000 + n % 5000,
            yy = 40 + n % 60,
            m = 1 + n % 9,
            d = n % 10,
            sex = if n.is_multiple_of(2) { "F" } else { "M" }
        ),
    );
    segment(&mut hl7, format_args!("PV1|1|O|LAB^^^CLINIC"));
    segment(&mut hl7, format_args!("ORC|RE|ORD{n}|ACC{n}||CM"));
    segment(
        &mut hl7,
        format_args!(
            "OBR|1|ORD{n}|ACC{n}|24323-8^Comprehensive metabolic and blood count panel^LN|||{ts}|||||||{ts}|SER&Serum&HL70070|1234^Ordering^Olivia^^^Dr||||||{ts}||CH|F"
        ),
    );
    for (index, (code, name, unit, low, high)) in PANEL.iter().enumerate() {
        let value = lab_value(*low, *high, n, index);
        let flag = if value < *low {
            "L"
        } else if value > *high {
            "H"
        } else {
            "N"
        };
        let decimals = if *high < 20.0 { 1 } else { 0 };
        segment(
            &mut hl7,
            format_args!(
                "OBX|{set}|NM|{code}^{name}^LN||{value:.decimals$}|{unit}^{unit}^UCUM|{low}-{high}|{flag}|||F|||{ts}",
                set = index + 1
            ),
        );
    }
    segment(
        &mut hl7,
        format_args!("NTE|1|L|Specimen received at ambient temperature \\T\\ processed within 2 h"),
    );
    Message {
        control_id,
        bytes: hl7.into_bytes(),
    }
}

/// A lab report with an embedded document: ORU^R01 v2.5.1, original mode, one OBX of type ED
/// carrying a base64 "PDF" (deterministic filler) that makes the message about `size` bytes
/// long (at least the header's few hundred). Results with embedded PDF reports are common, and
/// large: this is the message that tests payload and memory limits.
pub fn report_with_document(sender: &str, n: u64, size: usize) -> Message {
    let control_id = format!("{sender}-{n}");
    let ts = timestamp(n);
    let mut hl7 = String::with_capacity(size + 512);
    segment(
        &mut hl7,
        format_args!(
            "MSH|^~\\&|LIS|{sender}|HL7EDGE|CLINIC|{ts}||ORU^R01^ORU_R01|{control_id}|P|2.5.1||||||UNICODE UTF-8"
        ),
    );
    segment(
        &mut hl7,
        format_args!(
            "PID|1||MRN{mrn:07}^^^CLINIC^MR||Testpatient^Alex",
            mrn = 1000 + n % 5000
        ),
    );
    segment(
        &mut hl7,
        format_args!("OBR|1|ORD{n}|ACC{n}|11502-2^Laboratory report^LN|||{ts}||||||||||||||||||F"),
    );
    hl7.push_str("OBX|1|ED|11502-2^Laboratory report^LN||^AP^PDF^Base64^JVBERi0xLjQK");
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while hl7.len() + 16 < size {
        // xorshift: deterministic, not compressible to nothing.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        hl7.push(char::from(ALPHABET[(state % 64) as usize]));
    }
    segment(&mut hl7, format_args!("||||||F"));
    Message {
        control_id,
        bytes: hl7.into_bytes(),
    }
}

/// A device observation: ORU^R01 v2.6 in the IHE PCD-01 style (MDC codes, containment ids,
/// EUI-64 device identity), enhanced mode asking for a commit ACK (MSH-15 `AL`, MSH-16 `NE`).
pub fn device_observation(sender: &str, n: u64) -> Message {
    let control_id = format!("{sender}-{n}");
    let ts = timestamp(n);
    let eui = format!("0012A7FFFE{:06X}", fnv(sender) & 0xFF_FFFF);
    let mut hl7 = String::with_capacity(2048);
    segment(
        &mut hl7,
        format_args!(
            "MSH|^~\\&|{sender}^{eui}^EUI-64|ICU|HL7EDGE|CLINIC|{ts}+0000||ORU^R01^ORU_R01|{control_id}|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
        ),
    );
    segment(
        &mut hl7,
        format_args!(
            "PID|||PAT{p:05}^^^CLINIC^PI||Monitored^Sam||19{yy:02}0512|U",
            p = n % 40,
            yy = 30 + n % 60
        ),
    );
    segment(
        &mut hl7,
        format_args!("PV1||I|ICU^^BED{bed:02}", bed = 1 + n % 40),
    );
    segment(
        &mut hl7,
        format_args!(
            "OBR|1|{control_id}^{sender}^{eui}^EUI-64|{control_id}^{sender}^{eui}^EUI-64|182777000^monitoring of patient^SNOMED-CT|||{ts}+0000"
        ),
    );
    segment(
        &mut hl7,
        format_args!(
            "OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||{eui}^EUI-64"
        ),
    );
    for (index, (code, name, unit, unit_name, decimals, base)) in VITALS.iter().enumerate() {
        let value = base + wobble(n, index) * base * 0.05;
        segment(
            &mut hl7,
            format_args!(
                "OBX|{set}|NM|{code}^{name}^MDC|1.1.1.{sub}|{value:.decimals$}|{unit}^{unit_name}^MDC|||||R|||{ts}+0000",
                set = index + 2,
                sub = index + 1
            ),
        );
    }
    Message {
        control_id,
        bytes: hl7.into_bytes(),
    }
}

/// Appends one segment and its CR.
fn segment(hl7: &mut String, text: std::fmt::Arguments<'_>) {
    let _ = hl7.write_fmt(text);
    hl7.push('\r');
}

/// A deterministic timestamp (HL7 DTM, to the second) for message `n`: one message per second
/// from 2025-03-01 06:00:00, wrapping within March.
fn timestamp(n: u64) -> String {
    let total = 6 * 3600 + n;
    let day = 1 + (total / 86_400) % 28;
    let secs = total % 86_400;
    format!(
        "202503{day:02}{:02}{:02}{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A value spread around the reference range: mostly normal, sometimes low or high.
fn lab_value(low: f64, high: f64, n: u64, index: usize) -> f64 {
    let mid = (low + high) / 2.0;
    let half = (high - low) / 2.0;
    mid + wobble(n, index) * half * 1.3
}

/// A deterministic number in -1.0..=1.0 for message `n` and line `index`.
fn wobble(n: u64, index: usize) -> f64 {
    let mixed = (n.wrapping_mul(2_654_435_761) ^ (index as u64).wrapping_mul(40_503)) % 2001;
    (mixed as f64 - 1000.0) / 1000.0
}

/// FNV-1a hash of a string (a stable device serial per sender).
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(message: &Message) -> Vec<String> {
        let text = String::from_utf8(message.bytes.clone()).unwrap();
        text.split('\r')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_lab_result_has_its_control_id_and_twenty_coded_observations() {
        let message = lab_result("lis-a", 7);
        assert_eq!(message.control_id, "lis-a-7");
        let segments = segments(&message);
        assert!(segments[0].starts_with("MSH|^~\\&|LIS|lis-a|"));
        assert_eq!(segments[0].split('|').nth(9), Some("lis-a-7"));
        let obx: Vec<&String> = segments.iter().filter(|s| s.starts_with("OBX|")).collect();
        assert_eq!(obx.len(), 20);
        assert!(
            obx.iter()
                .all(|s| s.contains("^LN|") && s.contains("^UCUM|"))
        );
        assert!(message.bytes.ends_with(b"\r") && !message.bytes.contains(&b'\n'));
    }

    #[test]
    fn a_device_observation_asks_for_a_commit_ack_and_uses_mdc_codes() {
        let segments = segments(&device_observation("monitor-3", 2));
        let msh: Vec<&str> = segments[0].split('|').collect();
        assert_eq!((msh[9], msh[14], msh[15]), ("monitor-3-2", "AL", "NE"));
        assert!(
            segments
                .iter()
                .any(|s| s.contains("147842^MDC_ECG_HEART_RATE^MDC"))
        );
        assert_eq!(segments.iter().filter(|s| s.starts_with("OBX|")).count(), 8);
    }

    #[test]
    fn messages_are_reproducible_and_differ_between_numbers_and_senders() {
        assert_eq!(lab_result("a", 1), lab_result("a", 1));
        assert_ne!(lab_result("a", 1).bytes, lab_result("a", 2).bytes);
        assert_ne!(
            device_observation("a", 1).bytes,
            device_observation("b", 1).bytes
        );
        let ids: Vec<String> = messages(Kind::Lab, "a", 0..3)
            .map(|m| m.control_id)
            .collect();
        assert_eq!(ids, ["a-0", "a-1", "a-2"]);
    }

    #[test]
    fn a_report_with_a_document_has_about_the_size_asked_for() {
        let report = report_with_document("lis", 3, 1 << 20);
        assert!(
            report.bytes.len().abs_diff(1 << 20) < 64,
            "{}",
            report.bytes.len()
        );
        assert_eq!(report.control_id, "lis-3");
        assert_eq!(report, report_with_document("lis", 3, 1 << 20));
        let obx = segments(&report)
            .into_iter()
            .find(|s| s.starts_with("OBX|1|ED|"));
        assert!(obx.is_some_and(|s| s.ends_with("||||||F")));
    }

    #[test]
    fn timestamps_advance_one_second_per_message() {
        assert_eq!(timestamp(0), "20250301060000");
        assert_eq!(timestamp(61), "20250301060101");
        assert_eq!(timestamp(64_800), "20250302000000");
        assert_eq!(timestamp(86_400), "20250302060000");
    }
}
