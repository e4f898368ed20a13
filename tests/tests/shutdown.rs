//! Stopping (RELIABILITY.md scenario 17): SIGTERM under load stops accepting, answers what is in
//! hand, publishes `offline`, exits 0 within 5 s, and nothing ACKed is lost once the agent runs
//! again; SIGKILL leaves the broker to publish the last will (offline).

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use hl7edge_e2e::rig::Rig;
use hl7edge_protocol::telemetry::Status;

async fn wait_offline(rig: &Rig, timeout: Duration) -> Result<Status> {
    rig.hub
        .wait_until(timeout, |received| {
            // Only the status messages are decoded: this runs under the subscriber's lock.
            received
                .iter()
                .filter(|m| m.topic.ends_with("/status"))
                .any(|m| Status::decode(&m.payload).is_ok_and(|s| !s.online))
        })
        .await?;
    let decoded = rig.decoded();
    let offline = decoded.statuses.iter().find(|(s, _)| !s.online);
    offline
        .map(|(s, _)| s.clone())
        .ok_or_else(|| anyhow::anyhow!("no offline status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_exits_cleanly_publishes_offline_and_loses_nothing() -> Result<()> {
    let mut rig = Rig::start(|c| c.set("log.level", "info")).await?;
    let load = rig.steady("lab", &["lisa", "lisb", "lisc"])?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let asked = Instant::now();
    rig.agent.sigterm()?;
    let status = rig.agent.wait_exit(Duration::from_secs(5)).await?;
    ensure!(status.success(), "exit status {status:?}");
    eprintln!("stopped in {:?}", asked.elapsed());
    let offline = wait_offline(&rig, Duration::from_secs(5)).await?;
    ensure!(
        offline.reason.as_deref() == Some("shutdown"),
        "a clean stop says why: {offline:?}"
    );
    rig.agent.restart().await?;
    let acked = load.finish().await?;
    let report = rig.wait_delivered(&acked, Duration::from_secs(30)).await;
    report.assert_ok_and_ordered();
    ensure!(report.acked >= 30, "too little load:\n{report}");
    Ok(())
}

#[tokio::test]
async fn sigkill_makes_the_broker_publish_the_last_will_offline() -> Result<()> {
    let mut rig = Rig::start(|c| c).await?;
    rig.hub
        .wait_until(Duration::from_secs(10), |received| {
            received
                .iter()
                .filter(|m| m.topic.ends_with("/status"))
                .any(|m| Status::decode(&m.payload).is_ok_and(|s| s.online))
        })
        .await?;
    rig.agent.sigkill().await?;
    let offline = wait_offline(&rig, Duration::from_secs(15)).await?;
    ensure!(!offline.online && offline.reason.as_deref() != Some("shutdown"));
    Ok(())
}
