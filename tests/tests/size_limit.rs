//! Disk limit (RELIABILITY.md scenario 4, the `max_bytes` half): with the broker down, the agent
//! ACKs into its queue until the queue reaches `storage.max_bytes`, then answers AR (the sender
//! keeps the message) instead of dropping anything old. Once the broker is back, everything it
//! ACKed arrives, nothing it refused does, and it accepts new messages again by itself.

use std::time::Duration;

use anyhow::{Result, ensure};
use hl7edge_e2e::agent::{Agent, AgentConfig};
use hl7edge_e2e::broker::Broker;
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::mllp::{AckCode, Sender, SenderConfig};
use hl7edge_e2e::pki::Pki;
use hl7edge_e2e::rig::{self, Rig};

/// More messages than 1 MiB can hold; the test stops at the first AR long before.
const AT_MOST: u64 = 5_000;
/// Messages sent after the first AR, each of which must be refused too.
const AFTER_FULL: u64 = 5;
/// Messages sent once the queue has drained.
const AFTER_DRAIN: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_bytes_the_agent_refuses_with_ar_keeps_what_it_acked_and_resumes_after_draining()
-> Result<()> {
    let pki = Pki::generate()?;
    let mut broker = Broker::start(&pki).await?;
    let hub = rig::hub(&pki, &broker).await?;
    broker.stop().await?;
    let config = AgentConfig::new(&pki, &broker.url()).set("storage.max_bytes", "1 MiB");
    let agent = Agent::start(&config).await?;
    let mut rig = Rig {
        agent,
        hub,
        broker,
        pki,
    };

    let mut sender = rig.sender("lab")?;
    let mut n = 0;
    while n < AT_MOST && !refused(&mut sender, n).await {
        n += 1;
    }
    let acked = sender.acked();
    ensure!(
        n < AT_MOST && acked.len() as u64 == n && n >= 50,
        "expected {n} AA then AR; got {} AA of {} sent",
        acked.len(),
        n + 1
    );
    for k in n + 1..=n + AFTER_FULL {
        ensure!(
            refused(&mut sender, k).await,
            "message {k} accepted past the limit"
        );
    }
    let refused_ids: Vec<String> = sender
        .outcomes()
        .iter()
        .filter(|o| !o.is_acked())
        .map(|o| o.control_id.clone())
        .collect();
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
    let addr = rig
        .agent
        .mllp_addr("lab")
        .ok_or_else(|| anyhow::anyhow!("no lab listener"))?;
    let mut after = Sender::new(SenderConfig {
        retry_rejects: true,
        give_up_after: Duration::from_secs(30),
        ..rig::quick(addr)
    });
    let fresh = AT_MOST..AT_MOST + AFTER_DRAIN;
    after
        .send_all(hl7gen::messages(Kind::Lab, "lis", fresh))
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
    Ok(())
}

/// Sends message `n` once; true if it was refused with AR, false if ACKed. Anything else (AE, no
/// answer) fails the test through the sender's recorded outcome.
async fn refused(sender: &mut Sender, n: u64) -> bool {
    let outcome = sender.send(&hl7gen::message(Kind::Lab, "lis", n)).await;
    matches!(outcome.ack.map(|a| a.code), Some(AckCode::AR))
}
