//! Corrupt or truncated database at start (RELIABILITY.md scenario 6), end to end with the agent
//! binary: the agent stored messages while the broker was down and was stopped; then its
//! database file was damaged. On the next start it must come up (no crash loop), set the damaged
//! file aside as `queue.db.corrupt-*` (renamed, not deleted), report the loss in its log, and
//! carry new messages end to end with a fresh store.

use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::rig::Rig;

/// Messages stored (and lost with the file) before the damage.
const BEFORE: u64 = 200;
/// Messages sent after the restart.
const AFTER: u64 = 20;
/// What the agent logs when it sets a damaged file aside.
const SET_ASIDE_LOG: &str = "the queue database was damaged and set aside";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_over_the_database_is_set_aside_and_new_messages_flow() -> Result<()> {
    let garbage: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let (rig, set_aside) = damage_and_restart(|db| {
        let mut file = std::fs::OpenOptions::new().write(true).open(db)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&garbage)?;
        file.sync_all()
    })
    .await?;
    ensure!(
        rig.agent.log().contains("contents unreadable"),
        "the loss of an unreadable file is not reported"
    );
    ensure!(
        std::fs::read(&set_aside)?.starts_with(&garbage),
        "the set-aside file is not the damaged one"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_database_is_set_aside_and_new_messages_flow() -> Result<()> {
    let truncated_to = std::cell::Cell::new(0);
    let (rig, set_aside) = damage_and_restart(|db| {
        let file = std::fs::OpenOptions::new().write(true).open(db)?;
        truncated_to.set(file.metadata()?.len() / 2);
        file.set_len(truncated_to.get())?;
        file.sync_all()
    })
    .await?;
    let log = rig.agent.log();
    let report = log
        .lines()
        .find(|l| l.contains(SET_ASIDE_LOG))
        .context("no set-aside line")?;
    ensure!(
        report.contains("unsent records") || report.contains("contents unreadable"),
        "the loss is not reported: {report}"
    );
    ensure!(
        std::fs::metadata(&set_aside)?.len() == truncated_to.get(),
        "the set-aside file is not the truncated one"
    );
    Ok(())
}

/// Stores [`BEFORE`] messages with the broker down, stops the agent, applies `damage` to its
/// database file, starts the broker and the agent again, and checks the agent's recovery and
/// that [`AFTER`] new messages are ACKed and arrive. Returns the rig and the set-aside file.
async fn damage_and_restart(
    damage: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(Rig, PathBuf)> {
    let mut rig = Rig::start_broker_down(|config| config).await?;
    let mut sender = rig.sender("lab")?;
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 0..BEFORE))
        .await;
    ensure!(
        sender.acked().len() as u64 == BEFORE,
        "only {} of {BEFORE} stored before the damage",
        sender.acked().len()
    );
    rig.agent.sigterm()?;
    let status = rig.agent.wait_exit(Duration::from_secs(15)).await?;
    ensure!(status.success(), "the agent stopped with {status}");

    damage(&rig.agent.database_path())?;
    rig.broker.restart().await?;
    rig.agent.restart().await?;

    let set_aside = set_aside_files(rig.agent.dir())?;
    ensure!(
        set_aside.len() == 1,
        "expected one queue.db.corrupt-* file, found {set_aside:?}"
    );
    ensure!(
        rig.agent.log().contains(SET_ASIDE_LOG),
        "the set-aside is not logged"
    );

    let mut after = rig.sender("lab")?;
    after
        .send_all(hl7gen::messages(Kind::Lab, "lis", BEFORE..BEFORE + AFTER))
        .await;
    let acked = after.acked();
    ensure!(
        acked.len() as u64 == AFTER,
        "the fresh store ACKed only {} of {AFTER}",
        acked.len()
    );
    let report = rig
        .wait_delivered(&[Acked::new("lab", acked)], Duration::from_secs(20))
        .await;
    report.assert_ok_and_ordered();
    ensure!(rig.agent.is_running(), "the agent exited after recovering");
    let file = set_aside.into_iter().next().context("no set-aside file")?;
    Ok((rig, file))
}

/// The files in `dir` named `queue.db.corrupt-*` (their `-wal`/`-shm` companions excluded).
fn set_aside_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("queue.db.corrupt-")
            && !name.ends_with("-wal")
            && !name.ends_with("-shm")
        {
            found.push(path);
        }
    }
    Ok(found)
}
