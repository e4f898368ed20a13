//! The normal day: several interfaces send at once; every message is acknowledged (AA for the
//! lab in original mode, CA for the device that asks for enhanced mode), reaches the hub once
//! under its record id, in order per source, and the gateway's retained status says online.

use std::time::Duration;

use anyhow::{Result, ensure};
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::mllp::AckCode;
use hl7edge_e2e::rig::Rig;

const PER_SENDER: u64 = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_lab_and_device_senders_are_all_acked_and_delivered_once_in_order() -> Result<()>
{
    let rig = Rig::start(|c| c.with_listener("icu")).await?;
    let mut lab_a = rig.sender("lab")?;
    let mut lab_b = rig.sender("lab")?;
    let mut icu = rig.sender("icu")?;
    let (a, b, d) = tokio::join!(
        async move {
            lab_a
                .send_all(hl7gen::messages(Kind::Lab, "lisa", 0..PER_SENDER))
                .await;
            lab_a
        },
        async move {
            lab_b
                .send_all(hl7gen::messages(Kind::Lab, "lisb", 0..PER_SENDER))
                .await;
            lab_b
        },
        async move {
            icu.send_all(hl7gen::messages(Kind::Device, "pump", 0..PER_SENDER))
                .await;
            icu
        },
    );
    for (sender, code) in [(&a, AckCode::AA), (&b, AckCode::AA), (&d, AckCode::CA)] {
        let codes: Vec<_> = sender
            .outcomes()
            .iter()
            .map(|o| o.ack.as_ref().map(|a| a.code))
            .collect();
        ensure!(
            codes.iter().all(|c| *c == Some(code)),
            "expected every ACK to be {code:?}, got {:?}",
            codes.iter().find(|c| **c != Some(code))
        );
        ensure!(sender.acked().len() == PER_SENDER as usize);
        ensure!(sender.stats().resends == 0, "{:?}", sender.stats());
    }
    // Two lab senders share one source; each one's messages must keep their own order.
    let acked = [
        Acked::new("lab", a.acked()),
        Acked::new("lab", b.acked()),
        Acked::new("icu", d.acked()),
    ];
    let report = rig.wait_delivered(&acked, Duration::from_secs(30)).await;
    report.assert_ok_and_ordered();
    ensure!(report.acked == 3 * PER_SENDER as usize);
    ensure!(
        report.redelivered == 0 && report.delivered == report.acked,
        "no fault was injected, so each record arrives exactly once:\n{report}"
    );
    ensure!(report.unacked_arrivals.is_empty(), "{report}");
    let decoded = rig.decoded();
    ensure!(decoded.undecodable.is_empty(), "{:?}", decoded.undecodable);
    let (status, retained) = decoded
        .statuses
        .last()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no status published"))?;
    ensure!(status.online, "status {status:?}");
    ensure!(
        retained || decoded.statuses.len() == 1,
        "the status must be retained"
    );
    Ok(())
}

#[tokio::test]
async fn a_subscriber_connecting_later_gets_the_retained_online_status() -> Result<()> {
    let rig = Rig::start(|c| c).await?;
    rig.hub
        .wait_until(Duration::from_secs(10), |m| {
            m.iter().any(|m| m.topic.ends_with("/status"))
        })
        .await?;
    let late = hl7edge_e2e::mqtt::Subscriber::connect(
        rig.broker.addr(),
        &hl7edge_e2e::mqtt::ClientOptions::new("late-hub", &rig.pki.ca, Some(&rig.pki.subscriber)),
        "hl7edge/v1/acme-health/clinic-12/gw-0001/status",
    )
    .await?;
    late.wait_for(1, Duration::from_secs(10)).await?;
    let decoded = late.with_messages(hl7edge_e2e::decode::decode);
    let (status, retained) = decoded
        .statuses
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    ensure!(status.online && retained, "{status:?} retained={retained}");
    Ok(())
}
