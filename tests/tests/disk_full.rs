//! Real full filesystem (RELIABILITY.md scenario 4, the filesystem half; `size_limit.rs` covers
//! `max_bytes`). Needs root: the agent's database lives on a small tmpfs, with `max_bytes` far
//! above its size, so the filesystem fills first; the broker is down, so nothing drains.
//!
//! What must hold: the agent answers AR once the filesystem is full (keeping the reserve its
//! deletes need) and again when another program takes the very last byte (`ENOSPC`); it keeps
//! running; the space that program gives back is the agent's reserve, still refused; once the
//! broker is back every message it ACKed arrives, the room the deletes free inside the database
//! lets the agent accept new messages by itself, and they arrive; the database passes
//! `PRAGMA integrity_check` afterwards. The second test keeps the disk exhausted while the backlog
//! drains: deletes refused for room are retried on the same connection, nothing is published twice.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, ensure};
use hl7edge_e2e::backlog;
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::rig::Rig;
use hl7edge_e2e::tmpfs::Tmpfs;

/// The agent keeps 16 MiB free for deletes and 16 MiB for its write-ahead log; this leaves it
/// about 3 MiB of queue.
const FS_SIZE: &str = "35m";
/// Far more messages than fit; the test stops at the first AR.
const AT_MOST: u64 = 20_000;
/// Messages sent while another program holds the last free byte; each must get AR.
const WHILE_EXHAUSTED: u64 = 5;
/// The file of the other program that fills the disk.
const FILLER: &str = "other-program.log";
/// Messages sent after the queue drained.
const AFTER_DRAIN: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_full_filesystem_the_agent_refuses_with_ar_keeps_running_and_resumes_after_draining()
-> Result<()> {
    full_filesystem_case(
        "on_a_full_filesystem_the_agent_refuses_with_ar_keeps_running_and_resumes_after_draining",
        false,
    )
    .await
}

/// While the disk stays exhausted, a delete that finds no room answers "full": the forwarder
/// keeps its connection and retries the delete, so nothing is published twice (a dropped
/// connection would republish everything not yet deleted and then wait out a backoff).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_an_exhausted_filesystem_forwarding_keeps_working() -> Result<()> {
    full_filesystem_case("on_an_exhausted_filesystem_forwarding_keeps_working", true).await
}

/// The scenario; with `exhausted_while_forwarding` the other program holds the last byte while
/// the broker comes back and the backlog drains, else it has given its space back by then.
async fn full_filesystem_case(test: &str, exhausted_while_forwarding: bool) -> Result<()> {
    let Some(fs) = Tmpfs::mount_or_skip(FS_SIZE, test) else {
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
    let filler = fs.fill(FILLER)?;
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
    // Given back, that space is the agent's reserve for deletes: still AR.
    std::fs::remove_file(fs.path().join(FILLER))?;
    let k = n + WHILE_EXHAUSTED + 1;
    ensure!(
        backlog::refused_with_ar(&mut sender, k).await,
        "message {k} accepted into the reserve"
    );
    let refused_ids = sender.not_acked();
    if exhausted_while_forwarding {
        fs.fill(FILLER)?;
    }

    // The broker comes back: everything ACKed arrives. On an exhausted disk the deletes after
    // each PUBACK find no room for the write-ahead log to grow.
    rig.broker.restart().await?;
    let before = [Acked::new("lab", acked.clone())];
    let report = rig.wait_delivered(&before, Duration::from_secs(40)).await;
    eprintln!("{n} accepted before the filesystem was full, filler took {filler} bytes\n{report}");
    report.assert_ok_and_ordered();
    if exhausted_while_forwarding {
        ensure!(
            report.redelivered == 0,
            "{} records were published again: the forwarder dropped its connection when a delete \
             found the disk full instead of retrying the delete",
            report.redelivered
        );
    }
    ensure!(
        rig.agent.is_running(),
        "the agent exited while forwarding on a full filesystem"
    );

    // The space the other program gave back alone did not make room (the reserve refused
    // above); the pages the deletes freed do: ingest resumes.
    if exhausted_while_forwarding {
        std::fs::remove_file(fs.path().join(FILLER))?;
    }
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
