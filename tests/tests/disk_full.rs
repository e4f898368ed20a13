//! Real full filesystem (RELIABILITY.md scenario 4, the filesystem half; `size_limit.rs` covers
//! `max_bytes`). Needs root: the agent's database lives on a small tmpfs, with `max_bytes` far
//! above its size, so the filesystem fills first; the broker is down, so nothing drains.
//!
//! What must hold: the agent answers AR once the filesystem is full (keeping the reserve its
//! deletes need) and again when another program takes the very last byte (`ENOSPC`); it keeps
//! running; once the broker is back every message it ACKed arrives even while the disk is still
//! exhausted; when the space returns it accepts new messages by itself, and they arrive; the
//! database passes `PRAGMA integrity_check` afterwards.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use hl7edge_e2e::agent::{Agent, AgentConfig};
use hl7edge_e2e::broker::Broker;
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::mllp::{AckCode, Sender, SenderConfig};
use hl7edge_e2e::pki::Pki;
use hl7edge_e2e::rig::{self, Rig};
use hl7edge_e2e::tmpfs::Tmpfs;

/// The agent keeps 16 MiB free for deletes and 4 MiB for its write-ahead log; this leaves it
/// about 3 MiB of queue.
const FS_SIZE: &str = "23m";
/// Far more messages than fit; the test stops at the first AR.
const AT_MOST: u64 = 20_000;
/// Messages sent while another program holds the last free byte; each must get AR.
const WHILE_EXHAUSTED: u64 = 5;
/// Messages sent after the queue drained.
const AFTER_DRAIN: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_full_filesystem_the_agent_refuses_with_ar_keeps_running_and_resumes_after_draining()
-> Result<()> {
    let Some(fs) = Tmpfs::mount_or_skip(
        FS_SIZE,
        "on_a_full_filesystem_the_agent_refuses_with_ar_keeps_running_and_resumes_after_draining",
    ) else {
        return Ok(());
    };
    let database = fs.path().join("queue.db");
    let pki = Pki::generate()?;
    let mut broker = Broker::start(&pki).await?;
    let hub = rig::hub(&pki, &broker).await?;
    broker.stop().await?;
    let config = AgentConfig::new(&pki, &broker.url())
        .set("storage.path", database.display().to_string())
        .set("storage.max_bytes", "1 GiB");
    let agent = Agent::start(&config).await?;
    let mut rig = Rig {
        agent,
        hub,
        broker,
        pki,
    };

    // The queue fills the filesystem.
    let mut sender = rig.sender("lab")?;
    let mut n = 0;
    while n < AT_MOST && !refused(&mut sender, n).await? {
        n += 1;
    }
    let acked = sender.acked();
    ensure!(
        n < AT_MOST && acked.len() as u64 == n && n >= 50,
        "expected AA then AR; got {} AA of {} sent",
        acked.len(),
        n + 1
    );

    // Another program takes every byte left: still AR, never a crash.
    let filler = fs.fill("other-program.log")?;
    for k in n + 1..=n + WHILE_EXHAUSTED {
        ensure!(
            refused(&mut sender, k).await?,
            "message {k} accepted on an exhausted filesystem"
        );
    }
    ensure!(
        rig.agent.is_running(),
        "the agent exited on a full filesystem"
    );
    let refused_ids: Vec<String> = sender
        .outcomes()
        .iter()
        .filter(|o| !o.is_acked())
        .map(|o| o.control_id.clone())
        .collect();

    // The broker comes back while the disk is still exhausted: everything ACKed arrives (the
    // deletes after each PUBACK need room in the write-ahead log, which may not grow now).
    rig.broker.restart().await?;
    let before = [Acked::new("lab", acked.clone())];
    let report = rig.wait_delivered(&before, Duration::from_secs(40)).await;
    eprintln!("{n} accepted before the filesystem was full, filler took {filler} bytes\n{report}");
    report.assert_ok_and_ordered();
    ensure!(
        rig.agent.is_running(),
        "the agent exited while forwarding on a full filesystem"
    );

    // The other program gives its space back; with the queue drained, ingest resumes.
    std::fs::remove_file(fs.path().join("other-program.log"))?;
    let addr = rig.agent.mllp_addr("lab").context("no lab listener")?;
    let mut after = Sender::new(SenderConfig {
        retry_rejects: true,
        give_up_after: Duration::from_secs(30),
        ..rig::quick(addr)
    });
    after
        .send_all(hl7gen::messages(
            Kind::Lab,
            "lis",
            AT_MOST..AT_MOST + AFTER_DRAIN,
        ))
        .await;
    ensure!(
        after.acked().len() as u64 == AFTER_DRAIN,
        "not accepted again after draining: {:?}",
        after.outcomes().last()
    );
    let all = [Acked::new("lab", [acked, after.acked()].concat())];
    let report = rig.wait_delivered(&all, Duration::from_secs(20)).await;
    report.assert_ok_and_ordered();
    let stray: Vec<_> = report
        .unacked_arrivals
        .iter()
        .filter(|k| refused_ids.contains(&k.control_id))
        .collect();
    ensure!(stray.is_empty(), "refused messages arrived: {stray:?}");

    rig.agent.sigterm()?;
    let status = rig.agent.wait_exit(Duration::from_secs(15)).await?;
    ensure!(status.success(), "the agent stopped with {status}");
    integrity_check(&database)?;
    drop(rig);
    drop(fs);
    Ok(())
}

/// Sends message `n` once: `true` if refused with AR, `false` if ACKed, an error otherwise.
async fn refused(sender: &mut Sender, n: u64) -> Result<bool> {
    let outcome = sender.send(&hl7gen::message(Kind::Lab, "lis", n)).await;
    match outcome.ack.map(|a| a.code) {
        Some(AckCode::AR) => Ok(true),
        Some(AckCode::AA) => Ok(false),
        other => anyhow::bail!("message {n}: expected AA or AR, got {other:?}"),
    }
}

/// Copies the database (and its log, if any) aside and runs `PRAGMA integrity_check` on the
/// copy.
fn integrity_check(database: &Path) -> Result<()> {
    let copy = tempfile::tempdir()?;
    let target = copy.path().join("queue.db");
    std::fs::copy(database, &target)?;
    let wal = database.with_extension("db-wal");
    if wal.exists() {
        std::fs::copy(&wal, copy.path().join("queue.db-wal"))?;
    }
    let conn = rusqlite::Connection::open(&target)?;
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    ensure!(verdict == "ok", "integrity_check: {verdict}");
    Ok(())
}
