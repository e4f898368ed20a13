//! Half-open link (RELIABILITY.md scenario 8): the proxy between agent and broker silently drops
//! every packet of the open connection without closing it. The agent must notice within about
//! two keep-alive periods (5 s in the tests' configuration), connect again, and publish again
//! every row that was not PUBACKed, so everything ACKed arrives, in order.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::rig::Rig;

const WAIT: Duration = Duration::from_secs(20);
/// Two 5 s keep-alive periods, plus the first reconnect backoff and scheduling slack.
const DETECT: Duration = Duration::from_secs(14);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_dead_link_is_detected_and_unacked_rows_are_published_again() -> Result<()> {
    let (rig, proxy) = Rig::start_behind_proxy(|c| c).await?;
    let mut sender = rig.sender("lab")?;
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 0..10))
        .await;
    let before = [Acked::new("lab", sender.acked())];
    rig.wait_delivered(&before, WAIT).await.assert_ok();

    let accepted = proxy.accepted();
    let silenced = Instant::now();
    proxy.silence();
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 10..30))
        .await;
    ensure!(sender.acked().len() == 30, "{:?}", sender.outcomes().last());
    ensure!(
        proxy.wait_accepted(accepted + 1, DETECT).await,
        "no reconnect within {DETECT:?} of the link going silent"
    );
    let detected = silenced.elapsed();
    let acked = [Acked::new("lab", sender.acked())];
    let report = rig.wait_delivered(&acked, WAIT).await;
    eprintln!("dead link noticed after {detected:?}\n{report}");
    report.assert_ok_and_ordered();
    ensure!(
        proxy.swallowed_bytes() > 0,
        "nothing was dropped; the test proved nothing"
    );
    Ok(())
}
