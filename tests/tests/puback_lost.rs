//! PUBACK lost (RELIABILITY.md scenario 10): the agent talks to the broker through a proxy that
//! lets the agent's publishes through but swallows everything the broker sends back, so the
//! broker has (and delivers) the records while the agent never sees a PUBACK. Then the proxy
//! cuts the connection. The agent must reconnect and publish the same records again: the hub
//! sees each of them twice, always under the same record id, and nothing ACKed is missing.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, ensure};
use hl7edge_e2e::checker::{self, Acked};
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::rig::{self, Rig};

const MESSAGES: usize = 40;
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_whose_puback_was_lost_are_republished_under_the_same_record_id() -> Result<()> {
    let (rig, proxy) = Rig::start_behind_proxy(|c| c).await?;
    // Connected through the proxy: the retained online status has arrived.
    rig.hub
        .wait_until(WAIT, |m| m.iter().any(|r| r.topic.ends_with("/status")))
        .await?;

    proxy.swallow_downstream(true);
    let mut sender = rig.sender("lab")?;
    for n in 0..MESSAGES as u64 {
        sender.send(&hl7gen::message(Kind::Lab, "lis", n)).await;
    }
    let acked = [Acked::new("lab", sender.acked())];
    ensure!(acked[0].control_ids.len() == MESSAGES, "not all ACKed");
    let first = rig.wait_delivered(&acked, WAIT).await;
    ensure!(first.is_ok(), "the broker never got them:\n{first}");
    ensure!(
        proxy.swallowed_bytes() > 0,
        "no PUBACK was swallowed; the test proved nothing"
    );
    let accepted = proxy.accepted();

    proxy.cut();
    proxy.swallow_downstream(false);
    ensure!(
        proxy.wait_accepted(accepted + 1, WAIT).await,
        "the agent did not reconnect"
    );
    let delivered = rig::wait_records(&rig.hub, WAIT, |all| {
        let arrivals = arrivals_per_record(all);
        arrivals.len() >= MESSAGES && arrivals.values().all(|&n| n >= 2)
    })
    .await;
    let report = checker::check(&acked, &delivered);
    eprintln!("{report}");
    report.assert_ok_and_ordered();
    let arrivals = arrivals_per_record(&delivered);
    ensure!(
        arrivals.len() == MESSAGES && arrivals.values().all(|&n| n >= 2),
        "every record should arrive again after the lost PUBACKs: {arrivals:?}"
    );
    Ok(())
}

/// How many times each record id arrived.
fn arrivals_per_record(delivered: &[checker::Delivered]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for d in delivered {
        *counts.entry(d.record_id.as_str()).or_insert(0) += 1;
    }
    counts
}
