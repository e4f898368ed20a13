//! Write I/O error (RELIABILITY.md scenario 5), end to end with the agent binary: the agent runs
//! under a file size limit (`prlimit --fsize`, with `SIGXFSZ` ignored), so once its database
//! files reach the limit the kernel fails the write with `EFBIG` and SQLite reports
//! `SQLITE_IOERR` — a real write error from the kernel, without root. (Device-mapper `dm-error`
//! would fail fsync too, but is not available on every machine; remounting a tmpfs read-only
//! under the agent is refused while it has the database open for writing.)
//!
//! What must hold: the sender never gets AA for a message that is not durable; the agent exits
//! non-zero instead of going on; after a restart without the limit, with the broker back, every
//! message it ACKed arrives.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use hl7edge_e2e::agent::{self, AgentConfig};
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::mllp::{Sender, SenderConfig};
use hl7edge_e2e::process;
use hl7edge_e2e::rig::{self, Rig};

/// Largest file the limited agent may write when the write-ahead log is to hit the limit: below
/// the log's standing size (16 MiB), so a commit's write fails after a few hundred messages.
const LOG_FILE_LIMIT: u64 = 1 << 20;
/// Largest file when the database file is to hit the limit: above the log's standing size, so
/// the log never reaches it and a checkpoint's write into the database file fails.
const DB_FILE_LIMIT: u64 = 24 << 20;
/// Far more messages than fit under the limit.
const AT_MOST: u64 = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_answers_no_aa_stops_the_agent_and_nothing_acked_is_lost() -> Result<()> {
    // A reader holding an old snapshot keeps the write-ahead log from being checkpointed and
    // restarted, so the log itself grows to the limit: the write fails inside a commit.
    write_error_case(
        "a_failed_commit_answers_no_aa_stops_the_agent_and_nothing_acked_is_lost",
        true,
        LOG_FILE_LIMIT,
        "store write failed; stopping the writer",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_checkpoint_stops_the_agent_and_nothing_acked_is_lost() -> Result<()> {
    // Without a reader the log is checkpointed and stays within its standing size; the database
    // file grows instead, and the checkpoint's write into it fails.
    write_error_case(
        "a_failed_checkpoint_stops_the_agent_and_nothing_acked_is_lost",
        false,
        DB_FILE_LIMIT,
        "store maintenance failed; stopping the writer",
    )
    .await
}

/// Runs the agent under the file size limit with the broker down, sends until a message is not
/// ACKed, checks that the agent exited non-zero and logged `expected_log`, then restarts it
/// without the limit and with the broker back and checks that every ACKed message arrives.
/// With `hold_snapshot`, a reader in this process holds a snapshot from the start; `file_limit`
/// is the largest file the limited agent may write.
async fn write_error_case(
    test: &str,
    hold_snapshot: bool,
    file_limit: u64,
    expected_log: &str,
) -> Result<()> {
    if !Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        process::print_skipped(test, "needs prlimit (util-linux)");
        return Ok(());
    }
    let wrapper_dir = tempfile::tempdir()?;
    let limit_flag = wrapper_dir.path().join("limit-file-size");
    std::fs::write(&limit_flag, b"")?;
    let wrapper = write_wrapper(
        wrapper_dir.path(),
        &agent::binary()?,
        &limit_flag,
        file_limit,
    )?;

    // Info level keeps the log (also limited while the agent writes it) small.
    let mut rig = Rig::start_broker_down_binary(&wrapper, |config| AgentConfig {
        log_level: "info".into(),
        ..config
    })
    .await?;
    let reader = if hold_snapshot {
        let conn = rusqlite::Connection::open(rig.agent.database_path())?;
        conn.execute_batch("BEGIN")?;
        let _tables: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        Some(conn)
    } else {
        None
    };

    let addr = rig.agent.mllp_addr("lab").context("no lab listener")?;
    let mut sender = Sender::new(SenderConfig {
        give_up_after: Duration::from_secs(3),
        ..rig::quick(addr)
    });
    let mut n = 0;
    while n < AT_MOST {
        let outcome = sender.send(&hl7gen::message(Kind::Lab, "lis", n)).await;
        if !outcome.is_acked() {
            break;
        }
        n += 1;
    }
    let acked = sender.acked();
    ensure!(
        n < AT_MOST && acked.len() as u64 == n && n >= 10,
        "expected AA until the write error; got {} AA of {} sent, last {:?}",
        acked.len(),
        n + 1,
        sender.outcomes().last()
    );
    let status = rig.agent.wait_exit(Duration::from_secs(15)).await?;
    ensure!(
        status.code().is_some_and(|c| c != 0),
        "the agent did not exit non-zero after the write error: {status}"
    );
    ensure!(
        rig.agent.log().contains(expected_log),
        "{expected_log:?} is not logged"
    );
    if let Some(conn) = &reader {
        conn.execute_batch("COMMIT")?;
    }

    // systemd restarts it; the disk is fine again and the broker is back.
    std::fs::remove_file(&limit_flag)?;
    rig.broker.restart().await?;
    rig.agent.restart().await?;
    // Closed only now, so this connection is never the last one and never checkpoints.
    drop(reader);
    let report = rig
        .wait_delivered(&[Acked::new("lab", acked)], Duration::from_secs(40))
        .await;
    eprintln!("{n} ACKed before the write error, then {status}\n{report}");
    report.assert_ok_and_ordered();
    Ok(())
}

/// A script that runs `binary` with files limited to `file_limit` bytes while `flag` exists, and
/// plainly after.
fn write_wrapper(dir: &Path, binary: &Path, flag: &Path, file_limit: u64) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let script = format!(
        "#!/bin/bash\n\
         if [ -e '{flag}' ]; then\n\
         \x20   trap '' XFSZ\n\
         \x20   exec prlimit --fsize={file_limit} '{binary}' \"$@\"\n\
         fi\n\
         exec '{binary}' \"$@\"\n",
        flag = flag.display(),
        binary = binary.display(),
    );
    let path = dir.join("hl7edge-limited");
    std::fs::write(&path, script)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}
