//! Bad and repeated input (RELIABILITY.md scenarios 5 and 13): a resent message gets the stored
//! ACK and stays one record; malformed messages get AE and are not forwarded; bytes between
//! frames do not disturb the frames around them; a 100 MB frame is refused with bounded memory;
//! an incoming ACK is kept and forwarded but never answered.

use std::time::Duration;

use anyhow::{Result, ensure};
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen;
use hl7edge_e2e::mllp::{self, AckCode, Connection, parse_ack};
use hl7edge_e2e::rig::Rig;

const WAIT: Duration = Duration::from_secs(5);

async fn connect(rig: &Rig) -> Result<Connection> {
    let addr = rig
        .agent
        .mllp_addr("lab")
        .ok_or_else(|| anyhow::anyhow!("lab"))?;
    Ok(Connection::connect(addr, None, WAIT).await?)
}

#[tokio::test]
async fn a_resent_control_id_gets_the_stored_ack_and_stays_one_record() -> Result<()> {
    let rig = Rig::start(|c| c).await?;
    let message = hl7gen::lab_result("lis", 7);
    let mut first = connect(&rig).await?;
    let ack1 = parse_ack(&first.send(&message.bytes, WAIT).await?)?;
    let mut second = connect(&rig).await?;
    let ack2 = parse_ack(&second.send(&message.bytes, WAIT).await?)?;
    ensure!(
        ack1.code == AckCode::AA && ack2.code == AckCode::AA,
        "{ack1:?} {ack2:?}"
    );
    ensure!(
        ack2.control_id == message.control_id,
        "MSA-2 echoes MSH-10: {ack2:?}"
    );
    let follower = hl7gen::lab_result("lis", 8);
    let ack3 = parse_ack(&second.send(&follower.bytes, WAIT).await?)?;
    ensure!(ack3.code == AckCode::AA);
    let acked = [Acked::new(
        "lab",
        vec![message.control_id.clone(), follower.control_id],
    )];
    let report = rig.wait_delivered(&acked, Duration::from_secs(15)).await;
    report.assert_ok_and_ordered();
    ensure!(
        report.delivered == 2,
        "the resend must not become a second record:\n{report}"
    );
    Ok(())
}

#[tokio::test]
async fn an_incoming_ack_gets_no_reply_but_is_kept_and_forwarded() -> Result<()> {
    let rig = Rig::start(|c| c).await?;
    let mut connection = connect(&rig).await?;
    let incoming_ack =
        b"MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ACK^R01^ACK|ACK-IN-1|P|2.5.1\rMSA|AA|MSG001\r";
    connection.write_raw(&mllp::frame(incoming_ack)).await?;
    let reply = connection.read_frame(Duration::from_millis(1500)).await;
    ensure!(
        reply.is_err(),
        "an ACK must never be acknowledged, got {reply:?}"
    );
    let follower = hl7gen::lab_result("lis", 9);
    let ack = parse_ack(&connection.send(&follower.bytes, WAIT).await?)?;
    ensure!(
        ack.code == AckCode::AA && ack.control_id == follower.control_id,
        "the next message's ACK comes next, nothing in between: {ack:?}"
    );
    let acked = [Acked::new(
        "lab",
        vec!["ACK-IN-1".to_string(), follower.control_id],
    )];
    let report = rig.wait_delivered(&acked, Duration::from_secs(15)).await;
    report.assert_ok_and_ordered();
    Ok(())
}

#[tokio::test]
async fn malformed_messages_get_ae_and_nothing_is_forwarded() -> Result<()> {
    let rig = Rig::start(|c| c).await?;
    let mut connection = connect(&rig).await?;
    let valid = hl7gen::lab_result("lis", 1);
    let text = String::from_utf8(valid.bytes.clone())?;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no MSH", b"PID|1||123\rOBX|1|NM|x||1\r".to_vec()),
        ("plain text", b"hello, this is not HL7".to_vec()),
        (
            "wrong delimiters",
            text.replacen("MSH|^~\\&|", "MSH", 1).into_bytes(),
        ),
        ("invalid UTF-8 under a declared UNICODE UTF-8", {
            let mut bytes = hl7gen::lab_result("lis", 2).bytes;
            bytes.extend_from_slice(b"NTE|1||\xff\xfe\xc3\x28\r");
            bytes
        }),
    ];
    for (what, bytes) in &cases {
        let reply = connection.send(bytes, WAIT).await;
        match reply {
            Ok(frame) => {
                let ack = parse_ack(&frame)?;
                ensure!(
                    !ack.code.is_positive(),
                    "{what}: a malformed message was accepted: {ack:?}"
                );
                ensure!(
                    ack.error.is_some(),
                    "{what}: the NAK names the problem: {ack:?}"
                );
            }
            Err(_) => connection = connect(&rig).await?,
        }
    }
    // A valid message afterwards is accepted, and it is the only record forwarded.
    let ack = parse_ack(&connection.send(&valid.bytes, WAIT).await?)?;
    ensure!(ack.code == AckCode::AA, "{ack:?}");
    let report = rig
        .wait_delivered(
            &[Acked::new("lab", vec![valid.control_id])],
            Duration::from_secs(15),
        )
        .await;
    report.assert_ok();
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        rig.decoded().delivered.len() == 1,
        "only the valid message is forwarded"
    );
    Ok(())
}

#[tokio::test]
async fn garbage_between_frames_does_not_disturb_the_frames_around_it() -> Result<()> {
    let rig = Rig::start(|c| c).await?;
    let mut connection = connect(&rig).await?;
    let one = hl7gen::lab_result("lis", 1);
    let two = hl7gen::lab_result("lis", 2);
    let mut bytes = b"\r\n\x00junk before\x1c\r".to_vec();
    bytes.extend(mllp::frame(&one.bytes));
    bytes.extend_from_slice(b"noise between frames\r\n");
    bytes.extend(mllp::frame(&two.bytes));
    connection.write_raw(&bytes).await?;
    let a1 = parse_ack(&connection.read_frame(WAIT).await?)?;
    let a2 = parse_ack(&connection.read_frame(WAIT).await?)?;
    ensure!(
        (
            a1.code,
            a1.control_id.as_str(),
            a2.code,
            a2.control_id.as_str()
        ) == (AckCode::AA, "lis-1", AckCode::AA, "lis-2"),
        "{a1:?} {a2:?}"
    );
    let acked = [Acked::new("lab", vec![one.control_id, two.control_id])];
    rig.wait_delivered(&acked, Duration::from_secs(15))
        .await
        .assert_ok_and_ordered();
    Ok(())
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_frame_is_refused_with_bounded_memory_and_no_panic() -> Result<()> {
    let mut rig = Rig::start(|c| c).await?;
    let pid = rig.agent.pid().ok_or_else(|| anyhow::anyhow!("no pid"))?;
    let mut connection = connect(&rig).await?;
    let chunk = vec![b'X'; 1 << 20];
    let mut peak = vm_rss_kib(pid).unwrap_or(0);
    connection.write_raw(&[mllp::START]).await?;
    connection
        .write_raw(b"MSH|^~\\&|LIS|LAB|GW|CLINIC|20250301||ORU^R01|big-1|P|2.5.1\rNTE|1||")
        .await?;
    let mut written = 0;
    for _ in 0..100 {
        if connection.write_raw(&chunk).await.is_err() {
            break;
        }
        written += 1;
        peak = peak.max(vm_rss_kib(pid).unwrap_or(0));
    }
    let _ = connection.write_raw(&mllp::END).await;
    let answer = connection.read_frame(WAIT).await;
    if let Ok(frame) = &answer {
        let ack = parse_ack(frame)?;
        ensure!(
            !ack.code.is_positive(),
            "an oversize frame was accepted: {ack:?}"
        );
    }
    peak = peak.max(vm_rss_kib(pid).unwrap_or(0));
    eprintln!("wrote {written} MiB; agent peak VmRSS {peak} KiB; answer {answer:?}");
    ensure!(peak < 64 * 1024, "agent memory grew to {peak} KiB");
    ensure!(rig.agent.is_running(), "the agent died");
    ensure!(!rig.agent.log().contains("panicked"), "the agent panicked");
    // Still serving.
    let mut fresh = connect(&rig).await?;
    let ok = hl7gen::lab_result("lis", 1);
    let ack = parse_ack(&fresh.send(&ok.bytes, WAIT).await?)?;
    ensure!(ack.code == AckCode::AA, "{ack:?}");
    Ok(())
}
