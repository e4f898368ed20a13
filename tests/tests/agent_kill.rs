//! Crash safety (RELIABILITY.md scenarios 1–3): the agent is SIGKILLed again and again while
//! four senders keep sending; each sender resends whatever was not ACKed, exactly like a lab
//! system. At the end every ACKed message reached the hub, no message was stored under two
//! record ids (a resend after a crash gets the stored ACK), and order per sender holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::mllp::Sender;
use hl7edge_e2e::rig::Rig;

const KILLS: u32 = 22;

fn spawn_sender(
    mut sender: Sender,
    kind: Kind,
    name: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Sender> {
    tokio::spawn(async move {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            sender.send(&hl7gen::message(kind, name, n)).await;
            n += 1;
        }
        sender
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_in_a_loop_under_load_loses_nothing_acked_and_splits_nothing() -> Result<()> {
    let started = Instant::now();
    let mut rig = Rig::start(|c| c.with_listener("icu").set("log.level", "info")).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let senders = [
        ("lab", Kind::Lab, "lisa"),
        ("lab", Kind::Lab, "lisb"),
        ("icu", Kind::Device, "pumpa"),
        ("icu", Kind::Device, "pumpb"),
    ];
    let mut tasks = Vec::new();
    for (listener, kind, name) in senders {
        let sender = rig.sender(listener)?;
        tasks.push((listener, spawn_sender(sender, kind, name, stop.clone())));
    }
    for i in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(300 + u64::from(i % 5) * 50)).await;
        let status = rig.agent.sigkill().await?;
        ensure!(
            status.is_some_and(|s| !s.success()),
            "kill {i}: the agent was not running ({status:?})"
        );
        rig.agent.restart().await?;
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut resends = 0;
    for (listener, task) in tasks {
        let sender = task.await?;
        ensure!(
            sender.outcomes().iter().all(|o| o.is_acked()),
            "a sender got a NAK or gave up: {:?}",
            sender.outcomes().iter().find(|o| !o.is_acked())
        );
        resends += sender.stats().resends;
        acked.push(Acked::new(listener, sender.acked()));
    }
    let report = rig.wait_delivered(&acked, Duration::from_secs(40)).await;
    eprintln!(
        "{KILLS} kills, {resends} resends, {:?} elapsed, hub connections {} (last error {:?})\n{report}",
        started.elapsed(),
        rig.hub.connections(),
        rig.hub.last_error()
    );
    report.assert_ok_and_ordered();
    ensure!(
        report.acked >= 100,
        "too little load to mean anything:\n{report}"
    );
    ensure!(
        resends > 0,
        "no kill hit a message in flight; the test proved nothing"
    );
    Ok(())
}
