//! Connection floods, slowloris and garbage floods (RELIABILITY.md scenario 15): the listener's
//! connection cap, its idle/slow-frame timeout and its resync on bytes outside frames hold, and a
//! well-behaved sender alongside keeps getting every message ACKed promptly and delivered.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use hl7edge_e2e::agent::AgentConfig;
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::mllp::{self, AckCode, Connection, Sender, parse_ack};
use hl7edge_e2e::rig::Rig;
use toml::Value;

const WAIT: Duration = Duration::from_secs(5);
const DELIVERY: Duration = Duration::from_secs(20);
/// A well-behaved sender's messages per test.
const NORMAL: u64 = 30;
/// The slowest ACK a well-behaved sender may see while the listener is under attack.
const PROMPT: Duration = Duration::from_secs(2);

/// Sets `key` on the `lab` listener.
fn lab(mut config: AgentConfig, key: &str, value: impl Into<Value>) -> AgentConfig {
    if let Some(listener) = config.listeners.iter_mut().find(|l| l.name == "lab") {
        listener.extra.insert(key.into(), value.into());
    }
    config
}

/// Sends `NORMAL` messages from `name`, each timed; returns the sender and the slowest ACK.
async fn normal_sender(mut sender: Sender, name: &'static str) -> (Sender, Duration) {
    let mut slowest = Duration::ZERO;
    for n in 0..NORMAL {
        let started = Instant::now();
        sender.send(&hl7gen::message(Kind::Lab, name, n)).await;
        slowest = slowest.max(started.elapsed());
    }
    (sender, slowest)
}

/// Every message of a [`normal_sender`] was ACKed, none slower than [`PROMPT`].
fn served_promptly(sender: &Sender, slowest: Duration) -> Result<()> {
    ensure!(
        sender.acked().len() as u64 == NORMAL,
        "{:?}",
        sender.outcomes().last()
    );
    ensure!(slowest < PROMPT, "a normal ACK took {slowest:?}");
    Ok(())
}

/// Sends message `n` from `name` on `connection` and returns the ACK code.
async fn send_one(connection: &mut Connection, name: &str, n: u64) -> Result<AckCode> {
    let message = hl7gen::message(Kind::Lab, name, n);
    let ack = parse_ack(&connection.send(&message.bytes, WAIT).await?)?;
    ensure!(
        ack.control_id == message.control_id,
        "ACK for another message: {ack:?}"
    );
    Ok(ack.code)
}

/// How many agent log lines contain `needle`.
fn log_count(rig: &Rig, needle: &str) -> usize {
    rig.agent
        .log()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_are_closed_while_the_open_ones_keep_working()
-> Result<()> {
    const CAP: u64 = 4;
    const EXTRA: usize = 20;
    let rig = Rig::start(|c| lab(c, "max_connections", CAP as i64)).await?;
    let addr = rig
        .agent
        .mllp_addr("lab")
        .ok_or_else(|| anyhow::anyhow!("lab"))?;
    // Fill every slot; each connection proves it is served.
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut connection = Connection::connect(addr, None, WAIT).await?;
        ensure!(send_one(&mut connection, "held", held.len() as u64).await? == AckCode::AA);
        held.push(connection);
    }
    let flood = async {
        let mut closed = 0;
        for _ in 0..EXTRA {
            if let Ok(mut extra) = Connection::connect(addr, None, WAIT).await
                && extra.closed_by_peer(WAIT).await
            {
                closed += 1;
            }
        }
        closed
    };
    let work = async {
        let mut codes = Vec::new();
        for round in 1..=5 {
            for (i, connection) in held.iter_mut().enumerate() {
                let n = round * CAP + i as u64;
                codes.push((n, send_one(connection, "held", n).await?));
            }
        }
        Ok::<_, anyhow::Error>(codes)
    };
    let (closed, codes) = tokio::join!(flood, work);
    let codes = codes?;
    ensure!(
        closed == EXTRA,
        "{closed} of {EXTRA} connections beyond the cap were closed"
    );
    ensure!(codes.iter().all(|(_, c)| *c == AckCode::AA), "{codes:?}");
    ensure!(log_count(&rig, "max_connections reached") >= EXTRA);

    // A freed slot is taken again: the sender retries until the agent has noticed the close.
    drop(held.pop());
    let (sender, _) = normal_sender(rig.sender("lab")?, "lis").await;
    ensure!(
        sender.acked().len() as u64 == NORMAL,
        "{:?}",
        sender.outcomes().last()
    );
    let held_ids = (0..CAP * 6).map(|n| format!("held-{n}")).collect();
    let acked = [
        Acked::new("lab", held_ids),
        Acked::new("lab", sender.acked()),
    ];
    rig.wait_delivered(&acked, DELIVERY).await.assert_ok();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_and_an_idle_connection_are_closed_while_a_normal_sender_keeps_its_pace()
-> Result<()> {
    // Longer than PROMPT: a listener that let one connection hold up the others would make the
    // normal sender wait about this long.
    let timeout = Duration::from_secs(3);
    let rig = Rig::start(|c| lab(c, "idle_timeout", "3s")).await?;
    let addr = rig
        .agent
        .mllp_addr("lab")
        .ok_or_else(|| anyhow::anyhow!("lab"))?;
    // Taken before connecting: the agent's timers start at its accept, never earlier.
    let started = Instant::now();
    let mut idle = Connection::connect(addr, None, WAIT).await?;
    let mut slow = Connection::connect(addr, None, WAIT).await?;
    let slowloris = async {
        // One byte every 100 ms: the 4 KB message would take minutes to arrive.
        let framed = mllp::frame(&hl7gen::message(Kind::Lab, "slow", 0).bytes);
        for byte in framed {
            if slow.write_raw(&[byte]).await.is_err() {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            if started.elapsed() > timeout * 4 {
                return None;
            }
        }
        None
    };
    let idle_closed = async {
        idle.closed_by_peer(timeout * 3)
            .await
            .then(|| started.elapsed())
    };
    let (slow_closed, idle_closed, (sender, slowest)) = tokio::join!(
        slowloris,
        idle_closed,
        normal_sender(rig.sender("lab")?, "lis")
    );
    let in_time = |t: Option<Duration>| t.is_some_and(|t| t >= timeout && t < timeout * 3);
    ensure!(
        in_time(slow_closed),
        "slowloris closed after {slow_closed:?}"
    );
    ensure!(
        in_time(idle_closed),
        "idle connection closed after {idle_closed:?}"
    );
    served_promptly(&sender, slowest)?;
    ensure!(
        log_count(
            &rig,
            "closing idle or too slow connection partial_frame=true"
        ) >= 1
    );
    let acked = [Acked::new("lab", sender.acked())];
    let report = rig.wait_delivered(&acked, DELIVERY).await;
    report.assert_ok_and_ordered();
    ensure!(
        report.unacked_arrivals.is_empty(),
        "the slowloris' message was stored"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_flood_is_skipped_and_counted_and_its_connection_resyncs_on_the_next_frame()
-> Result<()> {
    const FLOOD: usize = 4 << 20;
    let rig = Rig::start(|c| c).await?;
    let addr = rig
        .agent
        .mllp_addr("lab")
        .ok_or_else(|| anyhow::anyhow!("lab"))?;
    let mut flooder = Connection::connect(addr, None, WAIT).await?;
    // Bytes outside any frame (no start block), then a framed non-HL7 payload.
    let garbage: Vec<u8> = b"\x00\xffnot hl7 at all\r\n".repeat(FLOOD / 18);
    let flood = async {
        for chunk in garbage.chunks(64 * 1024) {
            flooder.write_raw(chunk).await?;
        }
        let nak = parse_ack(&flooder.send(b"garbage inside a frame\r", WAIT).await?)?;
        let resynced = send_one(&mut flooder, "flood", 0).await?;
        Ok::<_, anyhow::Error>((nak.code, resynced))
    };
    let (flooded, (sender, slowest)) =
        tokio::join!(flood, normal_sender(rig.sender("lab")?, "lis"));
    let (nak, resynced) = flooded?;
    ensure!(nak == AckCode::AE, "a framed non-HL7 payload got {nak:?}");
    ensure!(
        resynced == AckCode::AA,
        "no resync after the flood: {resynced:?}"
    );
    served_promptly(&sender, slowest)?;
    let skipped: usize = rig
        .agent
        .log()
        .lines()
        .filter(|l| l.contains("bytes outside MLLP frames skipped"))
        .filter_map(|l| l.rsplit("bytes=").next()?.trim().parse::<usize>().ok())
        .sum();
    ensure!(
        skipped == garbage.len(),
        "{skipped} of {} garbage bytes counted",
        garbage.len()
    );
    let acked = [
        Acked::new("lab", sender.acked()),
        Acked::new("lab", vec!["flood-0".into()]),
    ];
    let report = rig.wait_delivered(&acked, DELIVERY).await;
    report.assert_ok_and_ordered();
    ensure!(
        report.unacked_arrivals.is_empty(),
        "{:?}",
        report.unacked_arrivals
    );
    Ok(())
}
