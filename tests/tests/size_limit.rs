//! Disk limit (RELIABILITY.md scenario 4, the `max_bytes` half): with the broker down, the agent
//! ACKs into its queue until the queue reaches `storage.max_bytes`, then answers AR (the sender
//! keeps the message) instead of dropping anything old. Once the broker is back, everything it
//! ACKed arrives, nothing it refused does, and it accepts new messages again by itself.

use std::time::Duration;

use anyhow::{Result, ensure};
use hl7edge_e2e::backlog;
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::rig::Rig;

/// More messages than 1 MiB can hold; the test stops at the first AR long before.
const AT_MOST: u64 = 5_000;
/// Messages sent after the first AR, each of which must be refused too.
const AFTER_FULL: u64 = 5;
/// Messages sent once the queue has drained.
const AFTER_DRAIN: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_bytes_the_agent_refuses_with_ar_keeps_what_it_acked_and_resumes_after_draining()
-> Result<()> {
    let mut rig = Rig::start_broker_down(|config| config.set("storage.max_bytes", "1 MiB")).await?;

    let mut sender = rig.sender("lab")?;
    let n = backlog::fill_until_ar(&mut sender, AT_MOST, 50).await;
    let acked = sender.acked();
    for k in n + 1..=n + AFTER_FULL {
        ensure!(
            backlog::refused_with_ar(&mut sender, k).await,
            "message {k} accepted past the limit"
        );
    }
    let refused_ids = sender.not_acked();
    ensure!(refused_ids.len() as u64 == AFTER_FULL + 1);
    rig.broker.restart().await?;

    let before = [Acked::new("lab", acked.clone())];
    let report = rig.wait_delivered(&before, Duration::from_secs(40)).await;
    eprintln!("{n} accepted before the limit\n{report}");
    report.assert_ok_and_ordered();
    ensure!(
        report.unacked_arrivals.is_empty(),
        "refused messages were stored and forwarded: {:?}",
        report.unacked_arrivals
    );

    // The queue drains (rows are deleted after PUBACK), so the agent takes messages again.
    let fresh = hl7gen::messages(Kind::Lab, "lis", AT_MOST..AT_MOST + AFTER_DRAIN);
    rig.assert_ingest_resumes("lab", &acked, fresh, &refused_ids)
        .await?;
    Ok(())
}
