//! The hub landing benchmark: release `hl7edge-hub ingest` processes against a real mosquitto
//! (mutual TLS, the ACL template) and a real PostgreSQL on loopback.
//!
//! ```text
//! cargo bench -p hl7edge-e2e --bench ingest              # 100,000 lab results (500,000 ADT) per run
//! cargo bench -p hl7edge-e2e --bench ingest -- --quick   # 20,000 (100,000 ADT), 5 s of latency
//! ```
//!
//! 1. Throughput, broker to committed rows, with one and with two ingests in one share group:
//!    two gateway identities publish envelopes of 64 records each, as a gateway's forwarder does
//!    under load, as fast as the broker acknowledges them; the clock runs from the first publish
//!    until `count(*)` of `records` reaches the total. Each run starts from empty tables. Two
//!    record shapes: lab results (20 OBX and a patient identifier: 22 rows and ~2 KB of JSONB
//!    per record) and admissions (ADT^A01: 2 rows, no observations).
//! 2. End-to-end latency, from the ACK a lab system gets from the agent to the row: two release
//!    agents, one paced sender each, two ingests. Two figures per record: to `ingested_at` (the
//!    ingest transaction's start, a lower bound of the commit) and to the gateway receiving the
//!    custody receipt (after the commit, an upper bound).
//!
//! `HL7EDGE_HUB_BIN` and `HL7EDGE_BIN` override the binaries (default: built in release next to
//! this program).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use hl7edge_e2e::agent::{Agent, AgentConfig};
use hl7edge_e2e::bench::report::{Goal, Row, print_table, quantile};
use hl7edge_e2e::bench::sys;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::ingest::{Ingest, IngestRig, SECOND_GATEWAY};
use hl7edge_e2e::mqtt::{Publisher, Subscriber};
use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, normalize};
use hl7edge_protocol::receipt::Receipt;
use hl7edge_protocol::topic::GatewayTopics;
use hl7edge_protocol::wire::{Entry, Envelope, StoredRecord};
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Records per envelope (the agent's default `batch_max_records`).
const PER_ENVELOPE: usize = 64;

/// Empties every table between phases.
const TRUNCATE: &str =
    "TRUNCATE records, patient_identifiers, observations, heartbeats, dead_letters";

/// An admission: one record row and one patient identifier, no observations.
const ADT: &str = "MSH|^~\\&|ADT|HOSP|HUB|CLINIC|20250301060000||ADT^A01^ADT_A01|C1|P|2.5.1\r\
EVN|A01|20250301060000\r\
PID|1||MRN0001^^^CLINIC^MR||Doe^Jo||19800101|F\r\
PV1|1|I|W1^101^A\r";

/// What the records of a throughput run are.
#[derive(Clone, Copy)]
enum Shape {
    /// A lab result of 20 OBX: 22 rows and ~2 KB of JSONB per record.
    Lab,
    /// An admission: 2 rows and ~0.5 KB of JSONB per record.
    Adt,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let quick = std::env::args().any(|a| a == "--quick");
    let records = if quick { 20_000 } else { 100_000 };
    let latency_for = Duration::from_secs(if quick { 5 } else { 15 });
    println!(
        "hl7edge ingest benchmark: {} CPUs ({}), load average {}",
        sys::cpus(),
        sys::cpu_model(),
        sys::load_average()
    );
    // The rig starts ingests and agents; the throughput phases use their own ingests.
    let rig = IngestRig::start(0, |c| c).await?;
    let mut rows = Vec::new();
    // One ingest first, then two: a stopped member's session stays in the share group (and
    // would be sent its share), so the single-ingest runs come before the second one exists.
    for ingests in [1, 2] {
        for (shape, name, rows_per_record) in
            [(Shape::Lab, "ORU, 20 OBX", 22), (Shape::Adt, "ADT", 2)]
        {
            // Admissions are cheap: five times as many, so the run lasts long enough to time.
            let records = match shape {
                Shape::Lab => records,
                Shape::Adt => records * 5,
            };
            let (rate, cpu) = throughput(&rig, ingests, records, shape).await?;
            rows.push(Row::new(
                &format!("broker -> committed, {name}, {ingests} ingest(s)"),
                "rec/s",
                Goal::AtLeast(20_000.0),
                Some(rate),
                &format!(
                    "{records} records, {:.0} rows/s; ingest CPU {cpu:.0} us/record",
                    rate * f64::from(rows_per_record)
                ),
            ));
        }
    }
    let (to_row, to_receipt, n) = latency(&rig, latency_for).await?;
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let note = format!("{n} records, 2 agents x 100 msg/s, 2 ingests");
    let (mut a, mut b) = (to_row, to_receipt);
    rows.push(Row::new(
        "ACK -> row (ingested_at) p50",
        "ms",
        Goal::None,
        ms(quantile(&mut a, 0.5)),
        &note,
    ));
    rows.push(Row::new(
        "ACK -> row (ingested_at) p99",
        "ms",
        Goal::None,
        ms(quantile(&mut a, 0.99)),
        &note,
    ));
    rows.push(Row::new(
        "ACK -> receipt at the gateway p50",
        "ms",
        Goal::None,
        ms(quantile(&mut b, 0.5)),
        &note,
    ));
    rows.push(Row::new(
        "ACK -> receipt at the gateway p99",
        "ms",
        Goal::None,
        ms(quantile(&mut b, 0.99)),
        &note,
    ));
    println!("load average after: {}", sys::load_average());
    print_table(&rows);
    Ok(())
}

/// One normalized record of `shape`, the record every envelope entry carries.
fn record(shape: Shape) -> StoredRecord {
    let bytes = match shape {
        Shape::Lab => hl7gen::message(Kind::Lab, "bench", 1).bytes,
        Shape::Adt => ADT.as_bytes().to_vec(),
    };
    let msg = Message::parse(&bytes).expect("the benchmark's HL7 parses");
    let mapping = MappingTable::empty();
    let tz = jiff::tz::TimeZone::UTC;
    let ctx = Context {
        time_zone: &tz,
        mapping: &mapping,
    };
    StoredRecord {
        mapping_version: mapping.version().clone(),
        record: normalize(&msg, Vec::new(), &ctx).record,
    }
}

/// `count` records as envelopes of [`PER_ENVELOPE`] naming `gateway`.
fn envelopes(gateway: &str, count: usize, shape: Shape) -> Vec<Vec<u8>> {
    let stored = record(shape);
    let now = jiff::Timestamp::now().as_millisecond();
    (0..count.div_ceil(PER_ENVELOPE))
        .map(|n| {
            let first = n * PER_ENVELOPE;
            let entries: Vec<Entry> = (first..first + PER_ENVELOPE.min(count - first))
                .map(|i| {
                    let sequence = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
                    stored
                        .clone()
                        .into_entry(Uuid::now_v7(), sequence, now, None)
                })
                .collect();
            Envelope::new(gateway, "lab", entries)
                .encode()
                .expect("encodes")
        })
        .collect()
}

async fn throughput(
    rig: &IngestRig,
    ingests: usize,
    records: usize,
    shape: Shape,
) -> Result<(f64, f64), BoxError> {
    let db = rig.pg.client().await?;
    let mut running = Vec::new();
    for n in 0..ingests {
        // The same client ids in every phase: mosquitto keeps a stopped member's session in the
        // share group and queues its share of new messages for it until it comes back.
        running.push(Ingest::start(rig.ingest_spec(&format!("bench-{n}"))).await?);
    }
    db.batch_execute(TRUNCATE).await?;
    let half = records / 2;
    let gateways = [IngestRig::gateway(0), IngestRig::gateway(1)];
    let payloads: Vec<Vec<Vec<u8>>> = gateways.iter().map(|g| envelopes(g, half, shape)).collect();
    let cpu_before: Vec<Duration> = running
        .iter()
        .filter_map(|i| i.pid().and_then(sys::cpu_time))
        .collect();
    let started = Instant::now();
    let mut publishers = Vec::new();
    for (n, (gateway, payloads)) in gateways.iter().zip(payloads).enumerate() {
        let options = rig.gateway_client(n, &format!("bench-pub-{n}"));
        let topic = topic(gateway).records("ORU", "R01");
        let addr = rig.broker.addr();
        publishers.push(tokio::spawn(async move {
            let mut publisher = Publisher::connect(addr, &options).await?;
            for payload in payloads {
                publisher.publish(&topic, &payload, false).await?;
            }
            Ok::<Duration, BoxError>(started.elapsed())
        }));
    }
    let mut published = Duration::ZERO;
    for p in publishers {
        published = published.max(p.await??);
    }
    let total = (half * 2) as i64;
    loop {
        let count: i64 = db
            .query_one("SELECT count(*) FROM records", &[])
            .await?
            .get(0);
        if count >= total {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("only {count} of {total} records after 600 s").into());
        }
        // Not faster: count(*) over a growing table costs the database CPU of its own.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    let cpu: Duration = running
        .iter()
        .filter_map(|i| i.pid().and_then(sys::cpu_time))
        .sum::<Duration>()
        .saturating_sub(cpu_before.iter().sum());
    for mut ingest in running {
        ingest.terminate().await?;
    }
    println!(
        "{ingests} ingest(s): {total} records in {:.2} s (published in {:.2} s)",
        elapsed.as_secs_f64(),
        published.as_secs_f64()
    );
    let rate = total as f64 / elapsed.as_secs_f64();
    Ok((rate, cpu.as_secs_f64() * 1e6 / total as f64))
}

fn topic(gateway: &str) -> GatewayTopics {
    let [org, site, id] = gateway.split('/').collect::<Vec<_>>()[..] else {
        unreachable!("org/site/id")
    };
    GatewayTopics::new("hl7edge/v1", org, site, id)
}

/// Paced senders through two release agents; per record the delay from its ACK to its row and
/// to its receipt.
async fn latency(
    rig: &IngestRig,
    run_for: Duration,
) -> Result<(Vec<Duration>, Vec<Duration>, usize), BoxError> {
    let db = rig.pg.client().await?;
    let mut ingests = Vec::new();
    for n in 0..2 {
        ingests.push(Ingest::start(rig.ingest_spec(&format!("bench-{n}"))).await?);
    }
    db.batch_execute(TRUNCATE).await?;
    let mut watchers = Vec::new();
    let mut agents = Vec::new();
    for n in 0..2 {
        let gateway = IngestRig::gateway(n);
        let options = rig.gateway_client(n, &format!("latency-watch-{n}"));
        watchers.push(
            Subscriber::connect(rig.broker.addr(), &options, &topic(&gateway).receipts()).await?,
        );
        let mut config = AgentConfig::new(&rig.pki, &rig.broker.url());
        if n == 1 {
            let (org, site, id) = SECOND_GATEWAY;
            config.gateway = (org.into(), site.into(), id.into());
            config.hub_identity = rig.second.clone();
        }
        config.log_level = "info".into();
        agents.push(Agent::start(&config).await?);
    }
    let mut tasks = Vec::new();
    for (n, agent) in agents.iter().enumerate() {
        let addr = agent.mllp_addr("lab").ok_or("lab listener")?;
        tasks.push(tokio::spawn(paced(addr, format!("lat{n}"), run_for)));
    }
    let mut acked: HashMap<String, SystemTime> = HashMap::new();
    for t in tasks {
        acked.extend(t.await?);
    }
    let total = acked.len() as i64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while db
        .query_one("SELECT count(*) FROM records", &[])
        .await?
        .get::<_, i64>(0)
        < total
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut receipt_at: HashMap<Uuid, SystemTime> = HashMap::new();
    for w in &watchers {
        for m in w.messages() {
            if let Ok(r) = Receipt::decode(&m.payload) {
                for id in r.ids.as_slice() {
                    receipt_at.entry(*id).or_insert(m.received_at);
                }
            }
        }
    }
    let mut to_row = Vec::new();
    let mut to_receipt = Vec::new();
    for row in db
        .query("SELECT id, control_id, ingested_at FROM records", &[])
        .await?
    {
        let id: Uuid = row.get(0);
        let control_id: String = row.get(1);
        let ingested: SystemTime = row.get(2);
        let Some(ack) = acked.get(&control_id) else {
            continue;
        };
        to_row.push(ingested.duration_since(*ack).unwrap_or_default());
        if let Some(at) = receipt_at.get(&id) {
            to_receipt.push(at.duration_since(*ack).unwrap_or_default());
        }
    }
    drop(agents);
    Ok((to_row, to_receipt, acked.len()))
}

/// Sends lab results at 100 per second for `run_for`; the wall-clock time of each ACK.
async fn paced(
    addr: std::net::SocketAddr,
    sender_name: String,
    run_for: Duration,
) -> HashMap<String, SystemTime> {
    let mut sender = hl7edge_e2e::mllp::Sender::new(hl7edge_e2e::rig::quick(addr));
    let mut acked = HashMap::new();
    let start = tokio::time::Instant::now();
    let mut n = 0u64;
    while start.elapsed() < run_for {
        tokio::time::sleep_until(start + Duration::from_millis(10) * n as u32).await;
        let message = hl7gen::message(Kind::Lab, &sender_name, n);
        let outcome = sender.send(&message).await;
        if outcome.is_acked() {
            acked.insert(message.control_id, SystemTime::now());
        }
        n += 1;
    }
    acked
}
