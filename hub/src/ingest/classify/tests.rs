use hl7edge_protocol::telemetry::{GatewayId, HEARTBEAT_SCHEMA_VERSION, Heartbeat};
use hl7edge_protocol::wire::Envelope;

use super::*;

const PREFIX: &str = "hl7edge/v1";

fn heartbeat(org: &str, site: &str, id: &str, sent_at_ms: i64) -> Vec<u8> {
    Heartbeat {
        schema_version: HEARTBEAT_SCHEMA_VERSION,
        gateway: GatewayId {
            org: org.into(),
            site: site.into(),
            id: id.into(),
        },
        version: "0.1.0".into(),
        sent_at_ms,
        uptime_s: 1,
        interval_s: 60,
        queue: Default::default(),
        storage: Default::default(),
        counters: Default::default(),
        broker_reconnects: 0,
        cert_days_left: None,
        hours_until_full: None,
        clock_offset_ms: None,
        sources: Vec::new(),
        custody: Default::default(),
        cert_not_after_ms: None,
        hub: Default::default(),
        pushes: Vec::new(),
    }
    .encode()
    .unwrap()
}

fn reason(item: &Item) -> Option<DeadReason> {
    match item {
        Item::Dead(d) => Some(d.reason),
        _ => None,
    }
}

#[test]
fn an_envelope_naming_its_topics_gateway_is_accepted() {
    let payload = Bytes::from(Envelope::new("o/s/g", "lab", vec![]).encode().unwrap());
    let item = classify(PREFIX, "hl7edge/v1/o/s/g/records/ORU_R01", &payload);
    assert!(matches!(item, Item::Records { ref gateway, .. } if gateway.to_string() == "o/s/g"));
}

#[test]
fn an_envelope_naming_another_gateway_is_a_dead_letter_naming_both() {
    let payload = Bytes::from(Envelope::new("o/s/other", "lab", vec![]).encode().unwrap());
    let item = classify(PREFIX, "hl7edge/v1/o/s/g/records/ORU_R01", &payload);
    let Item::Dead(d) = item else {
        panic!("accepted a mismatched gateway")
    };
    assert_eq!(d.reason, DeadReason::GatewayMismatch);
    assert!(
        d.detail.contains("o/s/other") && d.detail.contains("o/s/g"),
        "{}",
        d.detail
    );
    assert_eq!(d.payload, payload, "the payload is kept");
}

#[test]
fn undecodable_and_unknown_schema_payloads_are_dead_letters() {
    let topic = "hl7edge/v1/o/s/g/records/ORU_R01";
    let garbage = Bytes::from_static(&[2, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(
        reason(&classify(PREFIX, topic, &garbage)),
        Some(DeadReason::Undecodable)
    );
    let future = Bytes::from_static(&[9, 0, 0, 0]);
    assert_eq!(
        reason(&classify(PREFIX, topic, &future)),
        Some(DeadReason::UnknownSchema)
    );
    assert_eq!(
        reason(&classify(PREFIX, topic, &Bytes::new())),
        Some(DeadReason::Undecodable)
    );
}

#[test]
fn heartbeats_are_checked_against_their_topic_too() {
    let topic = "hl7edge/v1/o/s/g/telemetry";
    let good = Bytes::from(heartbeat("o", "s", "g", 1_795_000_000_000));
    assert!(matches!(
        classify(PREFIX, topic, &good),
        Item::Heartbeat { .. }
    ));
    let other = Bytes::from(heartbeat("o", "s", "x", 1_795_000_000_000));
    assert_eq!(
        reason(&classify(PREFIX, topic, &other)),
        Some(DeadReason::GatewayMismatch)
    );
    let far = Bytes::from(heartbeat("o", "s", "g", i64::MAX));
    assert_eq!(
        reason(&classify(PREFIX, topic, &far)),
        Some(DeadReason::OutOfRange)
    );
}

#[test]
fn topics_outside_records_and_telemetry_are_dead_letters() {
    let payload = Bytes::from_static(b"x");
    for topic in [
        "other/o/s/g/records/ORU_R01",
        "hl7edge/v1/o/s/g/status",
        "hl7edge/v1/o/s/g/receipts",
    ] {
        assert_eq!(
            reason(&classify(PREFIX, topic, &payload)),
            Some(DeadReason::UnexpectedTopic),
            "{topic}"
        );
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap sweep; the protocol crate's fuzz target covers the decoders in depth.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for len in 0..400 {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let payload = Bytes::from(bytes);
        let _ = classify(PREFIX, "hl7edge/v1/o/s/g/records/X", &payload);
        let _ = classify(PREFIX, "hl7edge/v1/o/s/g/telemetry", &payload);
    }
}

#[test]
fn a_refused_item_becomes_a_dead_letter_whose_text_postgresql_can_hold() {
    let payload = Bytes::from_static(b"\0raw\0");
    let item = Item::Dead(DeadLetter {
        topic: "t\0opic".into(),
        reason: DeadReason::Undecodable,
        detail: String::new(),
        payload: payload.clone(),
    });
    let d = item.refused("value \0 refused");
    assert_eq!(d.reason, DeadReason::DatabaseRefused);
    assert!(!d.topic.contains('\0') && !d.detail.contains('\0'));
    assert_eq!(d.payload, payload, "the payload keeps every byte");
}

#[test]
fn a_claim_certificates_records_and_heartbeats_are_dead_letters_of_the_reserved_org() {
    // A claim certificate (CN enroll/claim-a) may publish under hl7edge/v1/enroll/claim-a/records/#;
    // these are the forms the ingest's filters match, with payloads that name the topic's
    // gateway, so only the reserved organization stops them.
    let records = Bytes::from(
        Envelope::new("enroll/claim-a/records", "lab", vec![])
            .encode()
            .unwrap(),
    );
    let item = classify(
        PREFIX,
        "hl7edge/v1/enroll/claim-a/records/records/ORU_R01",
        &records,
    );
    let Item::Dead(d) = item else {
        panic!("took a claim certificate's records for a gateway's")
    };
    assert_eq!(d.reason, DeadReason::ReservedOrg);
    assert_eq!(d.reason.as_str(), "reserved_org");
    assert!(d.detail.contains("reserved for enrollment"), "{}", d.detail);
    assert_eq!(d.payload, records, "the payload is kept");
    let beat = Bytes::from(heartbeat("enroll", "claim-a", "records", 1_795_000_000_000));
    assert_eq!(
        reason(&classify(
            PREFIX,
            "hl7edge/v1/enroll/claim-a/records/telemetry",
            &beat
        )),
        Some(DeadReason::ReservedOrg)
    );
}
