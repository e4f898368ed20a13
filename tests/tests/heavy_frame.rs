//! One heavy frame does not stall the gateway: a 1 MiB frame of 150,000 distinct short segments
//! (the shape that once made ERR renumbering and the drift profile quadratic: 21.9 s of CPU) is
//! answered within a second, with AE at the segment cap, while a second sender on another
//! connection, sending 50 messages a second, keeps its ACKs prompt (the frame is prepared on the
//! prepare pool's blocking threads, not on the async workers every connection shares).

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use hl7edge_e2e::hl7gen;
use hl7edge_e2e::mllp::{AckCode, Connection, parse_ack};
use hl7edge_e2e::rig::Rig;
use hl7edge_protocol::hl7::limits::MAX_SEGMENTS;

/// The heavy frame's size.
const FRAME: usize = 1 << 20;
/// Distinct short segments in it.
const SEGMENTS: usize = 150_000;
/// The most the heavy frame's answer may take.
const ANSWERED_WITHIN: Duration = Duration::from_secs(1);
/// The second sender's pace and its p99 ACK latency bound.
const PACE: Duration = Duration::from_millis(20);
const P99_WITHIN: Duration = Duration::from_millis(50);
const WAIT: Duration = Duration::from_secs(10);

/// An ADT^A08 of `SEGMENTS` short segments with distinct three-character ids (as many distinct
/// ids as there are), padded with one NTE to `FRAME` bytes.
fn heavy_frame() -> Vec<u8> {
    const FIRST: &[u8] = b"ACDEGIJKLNOQSUVWXYZ";
    const REST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = b"MSH|^~\\&|HEAVY|F|GW|C|20260101120000||ADT^A08|HEAVY1|P|2.5.1\r\
EVN|A08|20260101120000\rPID|1||1^^^H^MR||DOE^J\r"
        .to_vec();
    for n in 0..SEGMENTS {
        let k = n % (FIRST.len() * REST.len() * REST.len());
        out.extend_from_slice(&[
            FIRST[k / (REST.len() * REST.len())],
            REST[k / REST.len() % REST.len()],
            REST[k % REST.len()],
            b'|',
            b'0' + (n % 10) as u8,
            b'\r',
        ]);
    }
    out.extend_from_slice(b"NTE|1||");
    out.resize(FRAME - 1, b'x');
    out.push(b'\r');
    out
}

/// The `p`th percentile (0 to 100) of `values`.
fn percentile(values: &mut [Duration], p: usize) -> Duration {
    values.sort();
    let at = (values.len() * p).div_ceil(100).saturating_sub(1);
    values.get(at).copied().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heavy_frame_is_answered_within_a_second_and_another_sender_keeps_its_pace() -> Result<()>
{
    let rig = Rig::start(|c| c).await?;
    let addr = rig.listener_addr("lab")?;
    let mut steady = Connection::connect(addr, None, WAIT).await?;
    let mut heavy = Connection::connect(addr, None, WAIT).await?;
    let frame = heavy_frame();
    ensure!(frame.len() == FRAME);

    let paced = tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut next = Instant::now();
        for n in 0..150u64 {
            next += PACE;
            let message = hl7gen::lab_result("steady", n);
            let sent = Instant::now();
            let ack = parse_ack(&steady.send(&message.bytes, WAIT).await?)?;
            latencies.push(sent.elapsed());
            ensure!(ack.code == AckCode::AA, "{ack:?}");
            ensure!(ack.control_id == message.control_id, "{ack:?}");
            tokio::time::sleep_until(next.into()).await;
        }
        Ok::<_, anyhow::Error>(latencies)
    });

    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent = Instant::now();
    let answer = heavy.send(&frame, WAIT).await?;
    let took = sent.elapsed();
    let ack = parse_ack(&answer)?;
    ensure!(ack.code == AckCode::AE, "{ack:?}");
    ensure!(ack.control_id == "HEAVY1", "{ack:?}");
    let text = String::from_utf8_lossy(&answer);
    ensure!(
        text.contains(&format!("at most {MAX_SEGMENTS} per message")),
        "the ERR names the cap: {text}"
    );

    let mut latencies = paced.await??;
    let p99 = percentile(&mut latencies, 99);
    let max = latencies.last().copied().unwrap_or_default();
    eprintln!("heavy frame answered in {took:?}; the paced sender's p99 {p99:?}, max {max:?}");
    ensure!(
        took < ANSWERED_WITHIN,
        "the heavy frame took {took:?} to answer"
    );
    ensure!(
        p99 < P99_WITHIN,
        "the paced sender's p99 ACK latency was {p99:?} (max {max:?}) while the heavy frame was \
         processed"
    );
    Ok(())
}
