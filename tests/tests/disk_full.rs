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

use anyhow::{Result, ensure};
use hl7edge_e2e::backlog;
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::rig::Rig;
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
    let mut rig = Rig::start_broker_down(|config| {
        config
            .set("storage.path", database.display().to_string())
            .set("storage.max_bytes", "1 GiB")
    })
    .await?;

    // The queue fills the filesystem.
    let mut sender = rig.sender("lab")?;
    let n = backlog::fill_until_ar(&mut sender, AT_MOST, 50).await;
    let acked = sender.acked();

    // Another program takes every byte left: still AR, never a crash.
    let filler = fs.fill("other-program.log")?;
    for k in n + 1..=n + WHILE_EXHAUSTED {
        ensure!(
            backlog::refused_with_ar(&mut sender, k).await,
            "message {k} accepted on an exhausted filesystem"
        );
    }
    ensure!(
        rig.agent.is_running(),
        "the agent exited on a full filesystem"
    );
    let refused_ids = sender.not_acked();

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
    let fresh = hl7gen::messages(Kind::Lab, "lis", AT_MOST..AT_MOST + AFTER_DRAIN);
    rig.assert_ingest_resumes("lab", &acked, fresh, &refused_ids)
        .await?;

    rig.agent.sigterm()?;
    let status = rig.agent.wait_exit(Duration::from_secs(15)).await?;
    ensure!(status.success(), "the agent stopped with {status}");
    integrity_check(&database)?;
    drop(rig);
    drop(fs);
    Ok(())
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
