//! The hub's broker misbehaving (RELIABILITY.md scenarios 7 and 9): down when the agent starts,
//! or restarted mid-stream with and without persistence. The agent keeps ACKing into its disk
//! queue, and everything ACKed arrives (duplicates only under the same record id), in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, ensure};
use hl7edge_e2e::agent::{Agent, AgentConfig};
use hl7edge_e2e::broker::{Broker, BrokerOptions, Persistence};
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::mllp::Sender;
use hl7edge_e2e::pki::Pki;
use hl7edge_e2e::rig::{self, Rig};

#[tokio::test]
async fn with_the_broker_down_at_start_messages_are_acked_kept_and_drained_in_order() -> Result<()>
{
    let pki = Pki::generate()?;
    let mut broker = Broker::start(&pki).await?;
    let hub = rig::hub(&pki, &broker).await?;
    broker.stop().await?;
    let agent = Agent::start(&AgentConfig::new(&pki, &broker.url())).await?;
    let addr = agent
        .mllp_addr("lab")
        .ok_or_else(|| anyhow::anyhow!("lab"))?;
    let mut sender = Sender::new(rig::quick(addr));
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
        hub.count() == 0,
        "nothing can arrive while the broker is down"
    );
    broker.restart().await?;
    let acked = [Acked::new("lab", sender.acked())];
    let report = hl7edge_e2e::rig::wait_delivered(&hub, &acked, Duration::from_secs(30)).await;
    report.assert_ok_and_ordered();
    drop(agent);
    Ok(())
}

async fn restart_mid_stream(persistence: Persistence, kill: bool) -> Result<()> {
    let options = BrokerOptions {
        persistence,
        ..BrokerOptions::default()
    };
    let mut rig = Rig::start_with(options, |c| c.set("log.level", "info")).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for name in ["lisa", "lisb"] {
        let mut sender = rig.sender("lab")?;
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                sender.send(&hl7gen::message(Kind::Lab, name, n)).await;
                n += 1;
            }
            sender
        }));
    }
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
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for task in tasks {
        let sender = task.await?;
        ensure!(sender.outcomes().iter().all(|o| o.is_acked()));
        acked.push(Acked::new("lab", sender.acked()));
    }
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
