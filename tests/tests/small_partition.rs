//! A data partition too small for the store (RELIABILITY scenario 4, as the field saw it: a
//! 20 MB partition, default `storage.max_bytes`, every message answered AR while `status` said
//! nothing needed attention and the log blamed a "filesystem full" on an empty disk).
//!
//! Needs root, to mount a real tmpfs (CI runs as root); without it the test FAILS, naming why.
//!
//! What must hold: the agent answers AR (nothing is lost: the sender keeps the message);
//! `hl7edge status` says it is refusing, why (`reserve`: the store keeps its reserve and write-ahead
//! log beside the queue) and with which numbers, and lists it under what to do; `hl7edge doctor`
//! fails the data partition, naming the size the store needs; the agent's log names the real
//! cause, not a full filesystem.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::agent;
use hl7edge_e2e::backlog;
use hl7edge_e2e::rig::Rig;
use hl7edge_e2e::tmpfs::Tmpfs;
use serde_json::Value;

/// The partition of the field report.
const FS_SIZE: &str = "20m";

/// Runs `hl7edge ARGS --config CONFIG` and returns (exit code, stdout).
fn hl7edge(args: &[&str], config: &Path) -> Result<(Option<i32>, String)> {
    let output = std::process::Command::new(agent::binary()?)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()?;
    Ok((
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_too_small_for_the_store_is_refused_visibly_in_status_doctor_and_log()
-> Result<()> {
    let fs =
        Tmpfs::mount(FS_SIZE).context("this test needs root to mount a tmpfs (CI runs as root)")?;
    let database = fs.path().join("queue.db");
    let rig =
        Rig::start_broker_down(|config| config.set("storage.path", database.display().to_string()))
            .await?;
    let mut sender = rig.sender("lab")?;
    ensure!(
        backlog::refused_with_ar(&mut sender, 1).await,
        "a 20 MiB partition took a message with the default storage.max_bytes"
    );
    let config = rig.agent.config_path();

    let (code, json) = hl7edge(&["status", "--json"], &config)?;
    ensure!(code == Some(0), "status exit code {code:?}");
    let status: Value = serde_json::from_str(&json)?;
    let intake = &status["intake"];
    ensure!(
        intake["refusing"] == true,
        "status does not say it refuses: {intake:#}"
    );
    ensure!(intake["cause"] == "reserve", "{intake:#}");
    ensure!(
        intake["keep_bytes"].as_u64().is_some_and(|k| k >= 16 << 20)
            && intake["available_bytes"]
                .as_u64()
                .is_some_and(|a| a < 21 << 20),
        "the numbers: {intake:#}"
    );
    ensure!(
        status["attention"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "refusing")),
        "{:#}",
        status["attention"]
    );
    let (_, text) = hl7edge(&["status"], &config)?;
    ensure!(text.contains("REFUSING NEW MESSAGES"), "{text}");
    ensure!(!text.contains("Nothing needs attention"), "{text}");
    ensure!(
        text.contains("hl7edge doctor names the partition size needed"),
        "{text}"
    );

    let (code, json) = hl7edge(&["doctor", "--json"], &config)?;
    let doctor: Value = serde_json::from_str(&json)?;
    ensure!(code == Some(1), "doctor exit code {code:?}");
    let check = doctor["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "data partition"))
        .with_context(|| format!("no data partition check: {doctor:#}"))?;
    ensure!(check["outcome"] == "fail", "{check:#}");
    let fix = check["fix"].as_str().unwrap_or_default();
    ensure!(
        fix.contains("at least 2.0 GiB"),
        "the fix names no size: {fix}"
    );

    let log = rig.agent.log();
    ensure!(
        log.contains("the store keeps") && !log.contains("filesystem full"),
        "the log does not name the real cause:\n{log}"
    );
    drop(rig);
    drop(fs);
    Ok(())
}
