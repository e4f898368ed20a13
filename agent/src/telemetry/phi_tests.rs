//! The telemetry PHI rule, tested as a property: whatever values a message carries in OBX-5
//! (coded answers with their texts, strings, text, numbers), in a field shifted into OBX-6, or
//! as text in a code field, none of it appears in a heartbeat built from the interface that
//! received it, in its JSON form (the hub's `fleet --json`) or its wire form.

use std::sync::Mutex;

use hl7edge_protocol::hl7::ack::AckMode;
use hl7edge_protocol::normalize::mapping::{MappingTable, UnmappedCounter};
use hl7edge_protocol::telemetry::{GatewayId, SourceStats};
use proptest::prelude::*;

use super::build::{self, Identity, Snapshot, SourceReading};
use super::collect::interface_codes;
use super::drift::DriftWatch;
use crate::ingest::{self, AckIds, Interface, PayloadLimit, Stamp};

/// How an OBX carries one generated value.
#[derive(Debug, Clone)]
enum Carrier {
    /// `CWE` answer: code, text and a local system.
    CodedAnswer { code: String, text: String },
    /// `CE` answer sent as text only.
    TextOnlyAnswer { text: String },
    /// `ST`/`TX` value.
    Text {
        value_type: &'static str,
        text: String,
    },
    /// A number one field too far right: it lands in OBX-6 (the unit).
    ShiftedNumber { number: String },
    /// Free text where the observation code belongs.
    TextAsCode { text: String },
}

impl Carrier {
    /// The OBX segment for observation `n`.
    fn obx(&self, n: usize) -> String {
        let id = format!("OBS{n}^Observation^99LAB");
        match self {
            Carrier::CodedAnswer { code, text } => {
                format!("OBX|{n}|CWE|{id}||{code}^{text}^L||||||F")
            }
            Carrier::TextOnlyAnswer { text } => format!("OBX|{n}|CE|{id}||^{text}^L||||||F"),
            Carrier::Text { value_type, text } => {
                format!("OBX|{n}|{value_type}|{id}||{text}||||||F")
            }
            Carrier::ShiftedNumber { number } => format!("OBX|{n}|NM|{id}|||{number}|mg/dL"),
            Carrier::TextAsCode { text } => format!("OBX|{n}|NM|{text}^^L||5|mg/dL||||||F"),
        }
    }

    /// The strings that must never reach telemetry.
    fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        let (Carrier::CodedAnswer { text, .. }
        | Carrier::TextOnlyAnswer { text }
        | Carrier::Text { text, .. }
        | Carrier::TextAsCode { text }) = self
        else {
            if let Carrier::ShiftedNumber { number } = self {
                out.push(number.clone());
            }
            return out;
        };
        out.push(text.clone());
        out.extend(text.split(' ').map(str::to_owned));
        if let Carrier::CodedAnswer { code, .. } = self {
            out.push(code.clone());
        }
        out
    }
}

/// Words of random letters, long enough that no heartbeat word contains one by chance.
fn words() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z]{7,10}", 1..5).prop_map(|w| w.join(" "))
}

fn carrier() -> impl Strategy<Value = Carrier> {
    prop_oneof![
        ("Z[A-Z]{3}[0-9]{5}", words()).prop_map(|(code, text)| Carrier::CodedAnswer { code, text }),
        words().prop_map(|text| Carrier::TextOnlyAnswer { text }),
        (prop_oneof![Just("ST"), Just("TX"), Just("FT")], words())
            .prop_map(|(value_type, text)| Carrier::Text { value_type, text }),
        "[1-9][0-9]{4}\\.[0-9]{2}".prop_map(|number| Carrier::ShiftedNumber { number }),
        // A single word in OBX-3.1 is indistinguishable from a code (and is reported as one);
        // text is what has white space in it.
        prop::collection::vec("[a-z]{7,10}", 2..5)
            .prop_map(|w| Carrier::TextAsCode { text: w.join(" ") }),
    ]
}

fn interface() -> Interface {
    Interface {
        name: "lab".into(),
        ack_mode: AckMode::Always,
        time_zone: jiff::tz::TimeZone::UTC,
        mapping: crate::ingest::MappingSlot::new(MappingTable::empty()),
        unmapped: Mutex::new(UnmappedCounter::default()),
        // Learns from one message: everything after it is reported as drift.
        drift: Mutex::new(DriftWatch::new(1)),
        payload: PayloadLimit {
            max_payload: 128_000,
            gateway: "acme/clinic-12/gw-1".into(),
            include_raw: false,
        },
        quarantine_unmapped: false,
    }
}

fn message(control_id: &str, obx: &[String]) -> String {
    format!(
        "MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^R01|{control_id}|P|2.5.1\r\
         PID|1||1^^^H^MR||DOE^JANE\rOBR|1||F1|PANEL^Panel^99LAB\r{}\r",
        obx.join("\r")
    )
}

/// Feeds a baseline message (every observation code with a number and `mg/dL`), then the
/// message with the generated values, and builds the heartbeat.
fn heartbeat_after(carriers: &[Carrier]) -> hl7edge_protocol::telemetry::Heartbeat {
    let iface = interface();
    let stamp = Stamp {
        now_ms: 1_700_000_000_000,
        dtm: "20231114221320+0000".into(),
    };
    let ids = AckIds::default();
    let baseline: Vec<String> = (1..=carriers.len())
        .map(|n| format!("OBX|{n}|NM|OBS{n}^Observation^99LAB||5|mg/dL||||||F"))
        .collect();
    let values: Vec<String> = carriers
        .iter()
        .enumerate()
        .map(|(i, c)| c.obx(i + 1))
        .collect();
    for (control_id, obx) in [("B1", &baseline), ("V1", &values), ("V2", &values)] {
        let raw = message(control_id, obx);
        ingest::prepare(&iface, raw.as_bytes(), "127.0.0.1:1", &stamp, &ids);
    }
    let mut stats = SourceStats {
        name: iface.name.clone(),
        ..SourceStats::default()
    };
    interface_codes(&iface, &mut stats);
    let identity = Identity {
        gateway: GatewayId {
            org: "acme-health".into(),
            site: "clinic-12".into(),
            id: "gw-0001".into(),
        },
        version: "0.1.0".into(),
        started_at_ms: 0,
        interval: std::time::Duration::from_secs(60),
        max_bytes: 1 << 30,
        cert_not_after_ms: None,
        recovery: None,
        custody: "puback",
    };
    let snapshot = Snapshot {
        now_ms: stamp.now_ms,
        sources: vec![SourceReading {
            stats,
            ..SourceReading::default()
        }],
        ..Snapshot::default()
    };
    build::heartbeat(&identity, &snapshot, None, false)
}

fn assert_no_secret(carriers: &[Carrier]) {
    let heartbeat = heartbeat_after(carriers);
    let json = serde_json::to_string(&heartbeat).expect("json");
    let wire = String::from_utf8_lossy(&heartbeat.encode().expect("encode")).into_owned();
    for secret in carriers.iter().flat_map(Carrier::secrets) {
        assert!(
            !json.contains(&secret),
            "{secret:?} in the heartbeat: {json}"
        );
        assert!(
            !wire.contains(&secret),
            "{secret:?} in the heartbeat's wire form"
        );
    }
}

#[test]
fn a_coded_answer_and_its_text_never_reach_the_heartbeat_but_are_counted() {
    let carriers = [Carrier::CodedAnswer {
        code: "ZZSECRET".into(),
        text: "Patient said something private".into(),
    }];
    assert_no_secret(&carriers);
    let heartbeat = heartbeat_after(&carriers);
    let lab = &heartbeat.sources[0];
    assert!(
        lab.codes_unmapped >= 1,
        "the answer is still counted: {lab:?}"
    );
    assert!(lab.top_unmapped.iter().all(|c| c.code != "ZZSECRET"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_obx_value_or_text_ever_appears_in_a_heartbeat(
        carriers in prop::collection::vec(carrier(), 1..12)
    ) {
        assert_no_secret(&carriers);
    }
}
