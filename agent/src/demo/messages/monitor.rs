//! The simulated bedside monitor: IHE PCD-01 "communicate PCD data"
//! ORU^R01 v2.6.
//!
//! As the profile prescribes, MSH-15 is `AL` and MSH-16 `NE` (enhanced
//! acknowledgement: the gateway answers a commit ACK, CA, and no
//! application ACK), MSH-21 names the PCD-01 profile, OBX-3 carries IEEE
//! 11073 MDC codes, OBX-6 MDC units, OBX-4 the containment tree
//! (MDS.VMD.channel.metric) and OBX-18 the device's EUI-64.

use super::{Kind, Outgoing, Range, dtm, minutes_before, pid};

/// The monitor's (fake) EUI-64.
const EUI64: &str = "0012A3FFFE00D3E0";

/// One row of the containment tree: an MDS/VMD/channel (no value) or a
/// metric (a value with its unit and range).
struct Row {
    code: &'static str,
    sub_id: &'static str,
    metric: Option<(&'static str, Range)>,
}

const fn node(code: &'static str, sub_id: &'static str) -> Row {
    Row {
        code,
        sub_id,
        metric: None,
    }
}

const fn metric(
    code: &'static str,
    sub_id: &'static str,
    unit: &'static str,
    low: i64,
    high: i64,
    min: i64,
    max: i64,
) -> Row {
    Row {
        code,
        sub_id,
        metric: Some((
            unit,
            Range {
                scale: 0,
                low,
                high,
                min,
                max,
            },
        )),
    }
}

const PERCENT: &str = "262688^MDC_DIM_PERCENT^MDC";
const PER_MIN: &str = "264864^MDC_DIM_BEAT_PER_MIN^MDC";
const MMHG: &str = "266016^MDC_DIM_MMHG^MDC";

const TREE: [Row; 12] = [
    node("69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC", "1.0.0.0"),
    node("69798^MDC_DEV_ECG_VMD^MDC", "1.1.0.0"),
    metric(
        "147842^MDC_ECG_HEART_RATE^MDC",
        "1.1.1.1",
        PER_MIN,
        50,
        100,
        48,
        118,
    ),
    node("69642^MDC_DEV_ANALY_SAT_O2_VMD^MDC", "1.2.0.0"),
    node("69643^MDC_DEV_ANALY_SAT_O2_CHAN^MDC", "1.2.1.0"),
    metric(
        "150456^MDC_PULS_OXIM_SAT_O2^MDC",
        "1.2.1.1",
        PERCENT,
        90,
        100,
        86,
        100,
    ),
    metric(
        "149530^MDC_PULS_OXIM_PULS_RATE^MDC",
        "1.2.1.2",
        PER_MIN,
        50,
        100,
        48,
        118,
    ),
    node("70686^MDC_DEV_PRESS_BLD_NONINV_VMD^MDC", "1.3.0.0"),
    node("70687^MDC_DEV_PRESS_BLD_NONINV_CHAN^MDC", "1.3.1.0"),
    metric(
        "150021^MDC_PRESS_BLD_NONINV_SYS^MDC",
        "1.3.1.1",
        MMHG,
        90,
        140,
        95,
        165,
    ),
    metric(
        "150022^MDC_PRESS_BLD_NONINV_DIA^MDC",
        "1.3.1.2",
        MMHG,
        60,
        90,
        55,
        98,
    ),
    metric(
        "150023^MDC_PRESS_BLD_NONINV_MEAN^MDC",
        "1.3.1.3",
        MMHG,
        70,
        105,
        68,
        115,
    ),
];

/// The monitor's `n`-th observation report (1-based), sent at `now`.
pub(in crate::demo) fn vital_signs(n: usize, now: &jiff::Zoned) -> Outgoing {
    let control_id = format!("MON{n:05}");
    let measured = dtm(&minutes_before(now, 1));
    let device = format!("{EUI64}^^{EUI64}^EUI-64");
    let order = format!("{control_id}^DEMO_MONITOR^{EUI64}^EUI-64");
    let mut segments = vec![
        format!(
            "MSH|^~\\&|DEMO_MONITOR^{EUI64}^EUI-64|DEMO_ICU|HL7EDGE|DEMO_CLINIC|{}||ORU^R01^ORU_R01|{control_id}|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
            dtm(now)
        ),
        pid(n, 2),
        format!("PV1||I|ICU^BED-{:02}^1", 1 + n % 8),
        format!("OBR|1|{order}|{order}|182777000^monitoring of patient^SCT|||{measured}"),
    ];
    for (i, row) in TREE.iter().enumerate() {
        let (seq, code, sub) = (i + 1, row.code, row.sub_id);
        segments.push(match row.metric {
            None if i == 0 => format!("OBX|{seq}||{code}|{sub}|||||||X|||||||{device}"),
            None => format!("OBX|{seq}||{code}|{sub}|||||||X"),
            Some((unit, range)) => {
                let value = range.value(n, i as u64);
                format!(
                    "OBX|{seq}|NM|{code}|{sub}|{value}|{unit}|{}|{}|||R|||{measured}|||AMEAS^auto-measurement^MDC|{device}",
                    range.text(),
                    range.flag(value),
                )
            }
        });
    }
    let mut text = segments.join("\r");
    text.push('\r');
    Outgoing {
        control_id,
        label: "vital signs",
        kind: Kind::Valid,
        bytes: text.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use hl7edge_protocol::hl7::Message;
    use hl7edge_protocol::hl7::validate::Validation;

    use super::*;

    #[test]
    fn vital_signs_follow_pcd01_and_validate_cleanly() {
        let now = jiff::Timestamp::from_second(1_780_000_000)
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC);
        for n in 1..=3 {
            let m = vital_signs(n, &now);
            let parsed = Message::parse(&m.bytes).unwrap();
            let validation = Validation::of(&parsed);
            assert!(validation.is_acceptable(), "{:?}", validation.issues);
            let text = String::from_utf8(m.bytes).unwrap();
            assert!(text.contains("|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_001^"));
            assert!(text.contains("|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.1|"));
            assert!(text.contains(&format!("|{EUI64}^^{EUI64}^EUI-64")));
        }
    }
}
