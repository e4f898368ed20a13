//! Crafted payloads against the real hub tools over a real mosquitto: a 16 MiB records payload
//! whose record claims fifteen million orders (a decoder that reserved memory by that count asked
//! for gigabytes and aborted, and the persistent session handed the payload to every restart),
//! and a 16 MiB heartbeat. `tail` runs with a 3 GiB address-space limit, as a container would
//! bound it. Each tool stays up, counts the payload in its `/metrics`, logs it without content,
//! acknowledges it, and goes on with the next valid message.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::broker::Broker;
use hl7edge_e2e::hub::{self, HubTools, Tail};
use hl7edge_e2e::mqtt::{ClientOptions, Publisher};
use hl7edge_e2e::pki::Pki;
use hl7edge_e2e::process;
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::record::{
    Body, CompactString, GenericMessage, Header, ObservationReport, Processing, Record,
    encode_compact,
};
use hl7edge_protocol::telemetry::Status;
use hl7edge_protocol::wire::{Entry, Envelope, SCHEMA_VERSION};

const GATEWAY: &str = "hl7edge/v1/acme/clinic-12/gw-0001";
const MIB: usize = 1 << 20;
/// The tail's address-space limit.
const ADDRESS_SPACE: u64 = 3 << 30;
const WAIT: Duration = Duration::from_secs(30);

fn header(code: &str, event: &str) -> Header {
    Header {
        message_code: CompactString::from(code),
        trigger_event: CompactString::from(event),
        control_id: CompactString::from("C1"),
        version: CompactString::from("2.5.1"),
        sending_application: CompactString::from("LAB"),
        sending_facility: CompactString::from("F"),
        message_time: None,
        processing: Processing::Production,
        ..Header::default()
    }
}

/// A valid records payload with one record of id `id`.
fn valid_payload(id: u128) -> Result<Vec<u8>> {
    let entry = Entry {
        id: uuid::Uuid::from_u128(id),
        sequence: Some(1),
        received_at_ms: 1_795_345_301_234,
        mapping_version: MappingTable::empty().version().clone(),
        record: Record {
            header: header("ZZZ", "Z01"),
            patient: None,
            encounter: None,
            body: Body::Generic(GenericMessage {
                delimiters: "|^~\\&".into(),
                segments: vec!["ZZZ|1".into()],
            }),
            issues: vec![],
            not_carried: vec![],
        },
        raw: None,
    };
    Ok(Envelope::new("acme/clinic-12/gw-0001", "lab", vec![entry]).encode()?)
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A 16 MiB records payload: an envelope of one entry whose result record claims fifteen million
/// orders (as many as its bytes could number), followed by zero bytes.
fn crafted_payload() -> Result<Vec<u8>> {
    let record = Record {
        header: header("ORU", "R01"),
        patient: None,
        encounter: None,
        body: Body::Observations(ObservationReport { orders: vec![] }),
        issues: vec![],
        not_carried: vec![],
    };
    let mut compact = encode_compact(&record)?;
    ensure!(
        compact.pop() == Some(0),
        "the record ends with its order count"
    );
    varint(15 << 20, &mut compact);
    compact.resize(16 * MIB - 200, 0);
    let mut out = postcard::to_allocvec(&SCHEMA_VERSION)?;
    out.extend(postcard::to_allocvec("acme/clinic-12/gw-0001")?);
    out.extend(postcard::to_allocvec("lab")?);
    out.push(1);
    let id = uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0bad);
    out.extend(postcard::to_allocvec(&(
        id,
        Some(1_u64),
        1_795_345_301_234_i64,
    ))?);
    out.extend(postcard::to_allocvec(MappingTable::empty().version())?);
    varint(compact.len() as u64, &mut out);
    out.extend_from_slice(&compact);
    out.push(0);
    Ok(out)
}

/// A 16 MiB heartbeat: the schema version, then bytes that claim long lists.
fn crafted_heartbeat() -> Vec<u8> {
    let mut out = vec![1u8];
    out.resize(16 * MIB, 0x7f);
    out
}

async fn wait_for_record(tail: &mut Tail, id: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if tail.record_ids().iter().any(|r| r == id) {
            return Ok(());
        }
        ensure!(
            tail.is_running(),
            "tail exited; its log:\n{}",
            tail.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!(
        "record {id} was not printed within {WAIT:?}; tail's log:\n{}",
        tail.log_tail()
    )
}

async fn sample(addr: SocketAddr, name: &str, labels: &[(&str, &str)]) -> Result<Option<f64>> {
    let exposition = hub::metrics_at(addr).await?;
    Ok(hub::sample(&exposition, name, labels))
}

#[tokio::test]
async fn a_crafted_16_mib_payload_neither_stops_nor_wedges_the_hub_tools() -> Result<()> {
    let pki = Pki::generate()?;
    let broker = Broker::start(&pki).await?;
    let tools = HubTools::new(&pki, &broker.url())?;
    let tail_metrics = SocketAddr::from(([127, 0, 0, 1], process::free_port()?));
    let metrics_arg = tail_metrics.to_string();
    let mut tail =
        tools.tail_limited("tail-crafted", &["--metrics", &metrics_arg], ADDRESS_SPACE)?;
    tail.wait_subscribed(WAIT).await?;
    let mut serve = tools.serve().await?;
    let mut publisher = Publisher::connect(
        broker.addr(),
        &ClientOptions::new("crafter", &pki.ca, Some(&pki.agent)),
    )
    .await
    .context("publisher")?;

    let records = format!("{GATEWAY}/records/ORU_R01");
    publisher
        .publish(&records, &crafted_payload()?, false)
        .await?;
    publisher
        .publish(&format!("{GATEWAY}/telemetry"), &crafted_heartbeat(), false)
        .await?;
    let id = 0x0190_0000_0000_7000_8000_0000_0000_0001_u128;
    publisher
        .publish(
            &format!("{GATEWAY}/records/ZZZ_Z01"),
            &valid_payload(id)?,
            false,
        )
        .await?;
    let status = Status {
        online: true,
        version: "0.1.0".into(),
        started_at_ms: 1_795_345_301_234,
        reason: None,
    };
    publisher
        .publish(&format!("{GATEWAY}/status"), &status.encode()?, true)
        .await?;
    publisher.disconnect().await?;

    wait_for_record(&mut tail, &uuid::Uuid::from_u128(id).to_string()).await?;
    ensure!(tail.is_running(), "tail stopped:\n{}", tail.log_tail());
    ensure!(
        tail.record_ids().len() == 1,
        "only the valid record is printed: {:?}",
        tail.record_ids()
    );
    ensure!(
        sample(tail_metrics, "hl7edge_hub_tail_undecodable_total", &[]).await? == Some(1.0),
        "the crafted payload is counted:\n{}",
        hub::metrics_at(tail_metrics).await?
    );
    ensure!(sample(tail_metrics, "hl7edge_hub_tail_records_total", &[]).await? == Some(1.0));
    let log = tail.log_tail();
    ensure!(
        log.contains("payload skipped and acknowledged") && log.contains("50000 orders"),
        "the log says what was skipped and why:\n{log}"
    );

    // The fleet side: the crafted heartbeat is counted, the status after it applied.
    let deadline = tokio::time::Instant::now() + WAIT;
    let gw = [("gateway", "gw-0001")];
    loop {
        let invalid = sample(serve.addr(), "hl7edge_hub_invalid_messages_total", &[]).await?;
        let online = sample(serve.addr(), "hl7edge_gateway_online", &gw).await?;
        if invalid == Some(1.0) && online == Some(1.0) {
            break;
        }
        ensure!(serve.is_running(), "serve stopped");
        ensure!(
            tokio::time::Instant::now() < deadline,
            "serve: invalid {invalid:?}, online {online:?}:\n{}",
            serve.metrics().await?
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Acknowledged, not redelivered: a restarted tail with the same session prints nothing new
    // and counts nothing.
    tail.stop().await?;
    let mut again =
        tools.tail_limited("tail-crafted", &["--metrics", &metrics_arg], ADDRESS_SPACE)?;
    again.wait_subscribed(WAIT).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        again.is_running(),
        "restarted tail stopped:\n{}",
        again.log_tail()
    );
    ensure!(
        sample(tail_metrics, "hl7edge_hub_tail_undecodable_total", &[]).await? == Some(0.0),
        "the crafted payload was redelivered"
    );
    again.stop().await?;
    Ok(())
}
