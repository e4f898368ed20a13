//! The hub's broker misbehaving (RELIABILITY.md scenarios 7 and 9): down when the agent starts,
//! or restarted mid-stream with and without persistence. The agent keeps ACKing into its disk
//! queue, and everything ACKed arrives (duplicates only under the same record id), in order.

use std::time::Duration;

use anyhow::{Result, ensure};
use hl7edge_e2e::broker::{BrokerOptions, Persistence};
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::rig::Rig;

#[tokio::test]
async fn with_the_broker_down_at_start_messages_are_acked_kept_and_drained_in_order() -> Result<()>
{
    let mut rig = Rig::start_broker_down(|c| c).await?;
    let mut sender = rig.sender("lab")?;
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 0..120))
        .await;
    ensure!(
        sender.acked().len() == 120,
        "{:?}",
        sender.outcomes().last()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        rig.hub.count() == 0,
        "nothing can arrive while the broker is down"
    );
    rig.broker.restart().await?;
    let acked = [Acked::new("lab", sender.acked())];
    let report = rig.wait_delivered(&acked, Duration::from_secs(30)).await;
    report.assert_ok_and_ordered();
    Ok(())
}

async fn restart_mid_stream(persistence: Persistence, kill: bool) -> Result<()> {
    let options = BrokerOptions {
        persistence,
        ..BrokerOptions::default()
    };
    let mut rig = Rig::start_with(options, |c| c.set("log.level", "info")).await?;
    let load = rig.steady("lab", &["lisa", "lisb"])?;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        if kill {
            rig.broker.kill().await?;
        } else {
            rig.broker.stop().await?;
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        rig.broker.restart().await?;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let acked = load.finish().await?;
    let report = rig.wait_delivered(&acked, Duration::from_secs(40)).await;
    eprintln!("{report}");
    report.assert_ok_and_ordered();
    ensure!(report.acked >= 40, "too little load:\n{report}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_with_persistence_mid_stream_loses_nothing() -> Result<()> {
    restart_mid_stream(Persistence::Periodic, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_and_restarted_without_persistence_gets_everything_unacked_again()
-> Result<()> {
    restart_mid_stream(Persistence::Off, true).await
}
