//! Patient data at rest beside the queue, with the real agent, its CLI and a real mosquitto:
//! rejected messages fill the quarantine's own cap (`quarantine.max_bytes`), never the queue, so
//! good messages keep being stored and forwarded; entries past `quarantine.retention` are
//! erased with an audit line after an alarm (status, doctor, heartbeat); a replayed entry's
//! message is erased once its record was forwarded; a damaged database set aside at start is
//! listed with its size and purged by an audited command.
//!
//! Time: the agent runs on the wall clock; the test controls the age of what it stores instead,
//! moving entries' receive times back while the agent is stopped.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use hl7edge_e2e::agent::{self, AgentConfig};
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Message};
use hl7edge_e2e::mllp::{AckCode, Connection, parse_ack};
use hl7edge_e2e::rig::Rig;
use hl7edge_protocol::telemetry::Heartbeat;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);
const DAY_MS: i64 = 86_400_000;
/// The agent sweeps the quarantine soon after it starts and then every 30 s.
const SWEEP: Duration = Duration::from_secs(45);

/// Runs `hl7edge ARGS --config <the agent's config>`: (exit code, stdout).
async fn cli(rig: &Rig, args: &[&str]) -> Result<(Option<i32>, String)> {
    let binary = agent::binary()?;
    let config = rig.agent.config_path();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(binary)
            .args(&args)
            .arg("--config")
            .arg(config)
            .output()
    })
    .await??;
    Ok((
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

async fn status(rig: &Rig) -> Result<Value> {
    let (code, json) = cli(rig, &["status", "--json"]).await?;
    ensure!(code == Some(0), "status exit code {code:?}");
    Ok(serde_json::from_str(&json)?)
}

fn attention(status: &Value) -> Vec<String> {
    status["attention"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `status --json` until `done` holds; returns the last one.
async fn status_until(rig: &Rig, limit: Duration, done: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let s = status(rig).await?;
        if done(&s) {
            return Ok(s);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "status never got there: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A message no interface can take (no MSH): answered AE, kept in quarantine; `size` bytes.
fn unreadable(n: u64, size: usize) -> Vec<u8> {
    let mut bytes =
        format!("PID|{n}||MRN{n:07}^^^CLINIC^MR||Testpatient^Alex\rNTE|1||").into_bytes();
    bytes.resize(size.max(bytes.len()), b'x');
    bytes
}

async fn send(connection: &mut Connection, bytes: &[u8]) -> Result<hl7edge_e2e::mllp::Ack> {
    Ok(parse_ack(&connection.send(bytes, WAIT).await?)?)
}

fn heartbeats(rig: &Rig) -> Vec<Heartbeat> {
    rig.decoded().heartbeats
}

/// Moves quarantine entry `id`'s receive time back by `days` (the agent must be stopped).
fn age_entry(rig: &Rig, id: i64, days: i64) -> Result<()> {
    let conn = rusqlite::Connection::open(rig.agent.database_path())?;
    let changed = conn.execute(
        "UPDATE quarantine SET received_at_ms = received_at_ms - ?1 WHERE id = ?2",
        [days * DAY_MS, id],
    )?;
    ensure!(changed == 1, "no quarantine entry {id}");
    Ok(())
}

/// Whether entry `id` still holds its message, read from the database (not through
/// `quarantine show`, which would audit a read).
fn holds_message(rig: &Rig, id: i64) -> Result<bool> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let conn = rusqlite::Connection::open_with_flags(rig.agent.database_path(), flags)?;
    let len: i64 = conn.query_row(
        "SELECT length(raw) FROM quarantine WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    Ok(len > 0)
}

fn ids(status: &Value) -> Vec<i64> {
    status["quarantine"]["latest"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["id"].as_i64()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_rejected_messages_fills_the_quarantines_own_cap_and_good_messages_keep_flowing()
-> Result<()> {
    let rig = Rig::start(|c| {
        c.set("storage.max_bytes", "1 MiB")
            .set("quarantine.max_bytes", "1 MiB")
            .set("telemetry.interval", "1s")
    })
    .await?;
    let mut connection = Connection::connect(rig.listener_addr("lab")?, None, WAIT).await?;
    let mut codes = Vec::new();
    let mut refusal = String::new();
    for n in 0..6 {
        let ack = send(&mut connection, &unreadable(n, 250_000)).await?;
        if ack.code == AckCode::AR {
            refusal = ack.error.clone().unwrap_or_default();
        }
        codes.push(ack.code);
    }
    let kept = codes.iter().filter(|c| **c == AckCode::AE).count();
    ensure!(
        kept >= 3
            && codes[..kept].iter().all(|c| *c == AckCode::AE)
            && codes[kept..].iter().all(|c| *c == AckCode::AR)
            && kept < codes.len(),
        "AE until the quarantine's 1 MiB are taken, then AR: {codes:?}"
    );
    ensure!(
        refusal.contains("quarantine full"),
        "the AR says why: {refusal}"
    );

    // The queue's own 1 MiB is untouched by them: good messages are stored and forwarded.
    let mut sender = rig.sender("lab")?;
    sender
        .send_all(hl7gen::messages(hl7gen::Kind::Lab, "lis", 0..5))
        .await;
    let acked = sender.acked();
    ensure!(
        acked.len() == 5,
        "good messages refused: {:?}",
        sender.outcomes()
    );
    rig.wait_delivered(&[Acked::new("lab", acked)], Duration::from_secs(30))
        .await
        .assert_ok_and_ordered();

    let s = status(&rig).await?;
    ensure!(s["intake"]["refusing"] == false, "{:#}", s["intake"]);
    ensure!(
        attention(&s).contains(&"quarantine_full".to_owned()),
        "{s:#}"
    );
    let q = &s["at_rest"]["quarantine"];
    ensure!(
        q["max_bytes"] == 1 << 20 && q["bytes"].as_u64().is_some_and(|b| b > 700_000),
        "{q:#}"
    );
    let full = |hb: &Heartbeat| {
        hb.custody.quarantine.max_bytes == 1 << 20 && hb.custody.quarantine.bytes > 700_000
    };
    rig.hub
        .wait_until(Duration::from_secs(20), |m| {
            hl7edge_e2e::decode::decode(m).heartbeats.iter().any(full)
        })
        .await
        .with_context(|| {
            format!(
                "heartbeats: {:?}",
                heartbeats(&rig).last().map(|h| &h.custody)
            )
        })?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_past_retention_are_erased_after_an_alarm_and_a_replayed_one_once_forwarded()
-> Result<()> {
    let configure = |c: AgentConfig, max_payload: &str| {
        c.set("hub.max_payload", max_payload)
            .set("telemetry.interval", "1s")
    };
    let mut rig = Rig::start(|c| configure(c, "16 KiB")).await?;
    let mut connection = Connection::connect(rig.listener_addr("lab")?, None, WAIT).await?;
    for n in 0..2 {
        let ack = send(&mut connection, &unreadable(n, 2_000)).await?;
        ensure!(ack.code == AckCode::AE, "{ack:?}");
    }
    let report: Message = hl7gen::report_with_document("lis", 1, 40_000);
    let ack = send(&mut connection, &report.bytes).await?;
    ensure!(ack.code == AckCode::AE, "too big for 16 KiB: {ack:?}");
    drop(connection);
    let mut entries = ids(&status(&rig).await?);
    entries.sort_unstable();
    let [old, soon, too_big] = entries[..] else {
        anyhow::bail!("three entries: {entries:?}");
    };

    // A month passes for two of them; the limit is raised meanwhile.
    rig.agent.stop().await?;
    age_entry(&rig, old, 31)?;
    age_entry(&rig, soon, 25)?;
    let raised = configure(AgentConfig::new(&rig.pki, &rig.broker.url()), "128 KB");
    rig.agent.reconfigure(&raised).await?;

    // Past the 30-day retention: erased, no longer open, audited. Within the 7-day warning:
    // flagged everywhere.
    let s = status_until(&rig, SWEEP, |s| s["quarantine"]["open"] == 2).await?;
    ensure!(
        !holds_message(&rig, old)?,
        "entry {old} still holds its message"
    );
    ensure!(
        attention(&s).contains(&"quarantine_expiring".to_owned()),
        "{:#}",
        s["attention"]
    );
    ensure!(
        s["at_rest"]["quarantine"]["expiring"] == 1,
        "{:#}",
        s["at_rest"]
    );
    let (_, text) = cli(&rig, &["status"]).await?;
    ensure!(
        text.contains("will be erased within 7days")
            && text.contains("hl7edge quarantine replay ID"),
        "{text}"
    );
    let (_, trail) = cli(&rig, &["audit", "export", "--syslog"]).await?;
    let expired = trail
        .lines()
        .find(|l| l.contains("quarantine.expired"))
        .with_context(|| format!("no quarantine.expired line:\n{trail}"))?;
    ensure!(expired.contains(&format!("entries {old}")), "{expired}");
    ensure!(!expired.contains("Testpatient"), "{expired}");
    let (_, doctor) = cli(&rig, &["doctor", "--json"]).await?;
    let doctor: Value = serde_json::from_str(&doctor)?;
    let check = doctor["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "quarantine"))
        .with_context(|| format!("no quarantine check: {doctor:#}"))?;
    ensure!(check["outcome"] == "warn", "{check:#}");
    let alarm = |hb: &Heartbeat| hb.custody.quarantine.expiring == 1;
    rig.hub
        .wait_until(Duration::from_secs(20), |m| {
            hl7edge_e2e::decode::decode(m).heartbeats.iter().any(alarm)
        })
        .await
        .context("no heartbeat with the expiry alarm")?;

    // The report now fits: replayed, forwarded, then its quarantined copy is erased.
    let (code, out) = cli(&rig, &["quarantine", "replay", &too_big.to_string()]).await?;
    ensure!(code == Some(0), "replay: {out}");
    rig.wait_delivered(
        &[Acked::new("lab", vec![report.control_id.clone()])],
        Duration::from_secs(30),
    )
    .await
    .assert_ok_and_ordered();
    let deadline = tokio::time::Instant::now() + SWEEP;
    while holds_message(&rig, too_big)? {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "entry {too_big} still holds its message after its record was forwarded"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, trail) = cli(&rig, &["audit", "export", "--syslog"]).await?;
    ensure!(
        trail
            .lines()
            .any(|l| l.contains("quarantine.erased") && l.contains(&format!("entries {too_big}"))),
        "{trail}"
    );
    ensure!(
        holds_message(&rig, soon)?,
        "the 25-day-old entry is kept until its time"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_database_set_aside_is_listed_with_its_size_and_purged_by_an_audited_command()
-> Result<()> {
    let mut rig = Rig::start(|c| c).await?;
    rig.agent.stop().await?;
    let db = rig.agent.database_path();
    let garbage: Vec<u8> = (0..64_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::write(&db, &garbage)?;
    rig.agent.restart().await?;

    let s = status_until(&rig, WAIT, |s| {
        s["at_rest"]["set_aside"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    })
    .await?;
    let aside = &s["at_rest"]["set_aside"][0];
    let path = aside["path"].as_str().context("path")?.to_owned();
    ensure!(path.contains("queue.db.corrupt-"), "{aside:#}");
    ensure!(aside["bytes"] == 64_000, "{aside:#}");
    ensure!(
        attention(&s).contains(&"set_aside_present".to_owned()),
        "{s:#}"
    );
    let (_, doctor) = cli(&rig, &["doctor", "--json"]).await?;
    let doctor: Value = serde_json::from_str(&doctor)?;
    let check = doctor["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "set-aside databases"))
        .with_context(|| format!("no set-aside check: {doctor:#}"))?;
    ensure!(
        check["outcome"] == "warn"
            && check["fix"]
                .as_str()
                .is_some_and(|f| f.contains("purge-set-aside")),
        "{check:#}"
    );

    let (code, out) = cli(&rig, &["storage", "purge-set-aside"]).await?;
    ensure!(
        code == Some(1) && std::path::Path::new(&path).exists(),
        "no terminal, no --yes: {out}"
    );
    let (code, out) = cli(&rig, &["storage", "purge-set-aside", "--yes"]).await?;
    ensure!(code == Some(0), "{out}");
    ensure!(!std::path::Path::new(&path).exists(), "{path} still there");
    let (_, trail) = cli(&rig, &["audit", "export", "--syslog"]).await?;
    ensure!(
        trail
            .lines()
            .any(|l| l.contains("storage.set_aside_purged") && l.contains("64000 bytes")),
        "{trail}"
    );
    let s = status(&rig).await?;
    ensure!(s["at_rest"]["set_aside_bytes"] == 0, "{:#}", s["at_rest"]);
    Ok(())
}
