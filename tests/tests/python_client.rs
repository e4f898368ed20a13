//! A real MLLP client nobody on the team wrote: python-hl7's `mllp_send` sends every message of
//! the repository's corpus to the gateway in its default configuration, one connection, waiting
//! for an answer after each message. It has no timeout: a message the gateway left unanswered
//! (for instance one whose MSH-15/MSH-16 say `NE`, as about 5 % of real lab and public-health
//! messages do) would hang it and the rest would never be sent.
//!
//! The corpus's incoming ACK is left out: an acknowledgement is never acknowledged (that would
//! start an ACK loop), and `mllp_send` would wait for an answer forever by its own design. The
//! listener tests cover that rule.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::pytools;
use hl7edge_e2e::rig::Rig;
use hl7edge_protocol::hl7::ack::{AckCode, AckHeader, ack_code_of};

/// How long `mllp_send` may take for the whole corpus (it takes about a second).
const SEND_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_hl7_mllp_send_gets_an_answer_for_every_corpus_message_by_default() -> Result<()> {
    let mllp_send = pytools::tool("mllp_send")?;
    let messages: Vec<Vec<u8>> = corpus_files()?
        .iter()
        .map(std::fs::read)
        .collect::<Result<_, _>>()?;
    let messages: Vec<Vec<u8>> = messages
        .into_iter()
        .filter(|m| !AckHeader::scrape(m).is_acknowledgment())
        .collect();
    let asking_for_none = messages.iter().filter(|m| asks_for_no_ack(m)).count();
    ensure!(
        asking_for_none > 0,
        "the corpus should hold messages whose MSH-15/16 say NE"
    );

    let rig = Rig::start(|c| c).await?;
    let lab = rig.listener_addr("lab")?;
    let dir = tempfile::tempdir()?;
    let stream = dir.path().join("corpus.mllp");
    std::fs::write(&stream, framed(&messages))?;

    let run = tokio::process::Command::new(&mllp_send)
        .arg("--file")
        .arg(&stream)
        .arg("--port")
        .arg(lab.port().to_string())
        .arg(lab.ip().to_string())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(SEND_TIMEOUT, run)
        .await
        .context("mllp_send still waited for an answer after 120 s: some message got none")??;
    ensure!(
        out.status.success(),
        "mllp_send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let answers: Vec<_> = out
        .stdout
        .split(|&b| b == 0x0b)
        .filter_map(|frame| {
            let end = frame.iter().position(|&b| b == 0x1c).unwrap_or(frame.len());
            ack_code_of(&frame[..end])
        })
        .collect();
    ensure!(
        answers.len() >= messages.len(),
        "{} messages sent, {} answers read",
        messages.len(),
        answers.len()
    );
    let accepted: BTreeSet<String> = answers
        .iter()
        .filter(|a| matches!(a.code, AckCode::ApplicationAccept | AckCode::CommitAccept))
        .map(|a| a.acknowledged_id.clone())
        .collect();
    ensure!(!accepted.is_empty(), "no message was accepted");

    // Every accepted control id reaches the hub as a record.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let delivered: BTreeSet<String> = rig
            .decoded()
            .delivered
            .into_iter()
            .map(|d| d.control_id)
            .collect();
        let missing: Vec<&String> = accepted.difference(&delivered).collect();
        if missing.is_empty() {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "accepted but never delivered: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{} messages ({asking_for_none} asking for no ACK): {} answers, {} control ids accepted \
         and delivered",
        messages.len(),
        answers.len(),
        accepted.len()
    );
    Ok(())
}

/// Whether MSH-15/MSH-16 ask for no acknowledgement of an accepted message.
fn asks_for_no_ack(message: &[u8]) -> bool {
    let header = AckHeader::scrape(message);
    hl7edge_protocol::hl7::ack::requests_no_ack(
        &header,
        &hl7edge_protocol::hl7::ack::Outcome::Accepted { issues: Vec::new() },
    )
}

/// The messages as one MLLP stream, the form `mllp_send --file` reads.
fn framed(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.push(0x0b);
        out.extend_from_slice(m);
        out.extend_from_slice(b"\x1c\r");
    }
    out
}

fn corpus_files() -> Result<Vec<PathBuf>> {
    Ok(hl7edge_e2e::corpus::files()?)
}
