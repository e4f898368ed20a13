//! Signed mapping pushes end to end: real mosquitto with mutual TLS and the ACL template, the
//! real `hl7edge-hub push mapping` (certificate `hl7edge-admin`) and `fleet --json`
//! (`hl7edge-monitor`), the agent as a process pinning the organization's public key.
//!
//! One story, in order: the box codes with its configured table; a push changes the table of
//! the next message (its record carries the new mapping version); a push signed with another
//! key and a push with an older sequence are refused, the box keeps serving on the pushed
//! table and the hub sees why; the box restarted while the broker is down comes up on the
//! last pushed table. Every ACKed message reaches the broker exactly once.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::agent::{Agent, AgentConfig};
use hl7edge_e2e::checker::{self, Acked};
use hl7edge_e2e::decode;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::hub::HubTools;
use hl7edge_e2e::mllp::{Sender, SenderConfig};
use hl7edge_e2e::mqtt::{Received, Subscriber};
use hl7edge_e2e::push::PushRig;
use hl7edge_protocol::wire::Envelope;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn table(label: &str, extra_row: &str) -> String {
    format!(
        "# version: {label}\nkind,local_system,local_code,target_system,target_code\nunit,,mg/dl,UCUM,mg/dL\n{extra_row}"
    )
}

/// The mapping version labels of every record received so far, in arrival order.
fn versions(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .filter_map(|m| Envelope::decode(&m.payload).ok())
        .flat_map(|e| e.entries.into_iter().map(|x| x.mapping_version.to_string()))
        .collect()
}

/// Waits until `n` records (not MQTT messages: records travel in batches) arrived.
async fn records(hub: &Subscriber, n: usize, wait: Duration) -> Result<()> {
    hub.wait_until(wait, |m| versions(m).len() >= n)
        .await
        .with_context(|| format!("{} of {n} records", versions(&hub.messages()).len()))?;
    Ok(())
}

async fn wait_push(fleet: &HubTools, ok: impl Fn(&Value) -> bool) -> Result<Value> {
    Ok(fleet
        .wait_push_report(|p| p["listener"] == "lab", WAIT, ok)
        .await?)
}

async fn send(agent: &Agent, from: u64, n: u64, acked: &mut Vec<String>) -> Result<()> {
    let addr = agent.mllp_addr("lab").context("listener lab")?;
    let mut sender = Sender::new(SenderConfig::new(addr));
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", from..from + n))
        .await;
    ensure!(
        sender.acked().len() == n as usize,
        "{:?}",
        sender.outcomes().last()
    );
    acked.extend(sender.acked());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_push_recodes_the_next_message_bad_and_older_pushes_are_refused_and_the_box_boots_on_the_last_good_one()
-> Result<()> {
    let rig = PushRig::start("push-test-hub")
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let PushRig {
        pki,
        mut broker,
        admin,
        fleet,
        hub,
        org: (org_private, org_public),
        rogue: rogue_private,
    } = rig;
    let dir = pki.dir();
    let v1 = dir.join("lab-v1.csv");
    let v2 = dir.join("lab-v2.csv");
    let v0 = dir.join("lab-v0.csv");
    std::fs::write(&v1, table("lab-v1", ""))?;
    std::fs::write(&v2, table("lab-v2", "unit,,mmol/l,UCUM,mmol/L\n"))?;
    std::fs::write(&v0, table("lab-v0", "unit,,g/dl,UCUM,g/dL\n"))?;
    let mut config = AgentConfig::new(&pki, &broker.url())
        .set("hub.push_key", org_public.display().to_string())
        .set("telemetry.interval", "1s");
    config.listeners[0]
        .extra
        .insert("mapping".into(), v1.display().to_string().into());
    let mut agent = Agent::start(&config).await?;
    let mut acked = Vec::new();

    // The configured table codes the first messages.
    send(&agent, 0, 3, &mut acked).await?;
    records(&hub, 3, WAIT).await?;
    ensure!(
        versions(&hub.messages())
            .iter()
            .all(|v| v.starts_with("lab-v1+")),
        "{:?}",
        versions(&hub.messages())
    );

    // A signed push: the next message is coded with it.
    let push = |key: &Path, sequence: &str, file: &Path| {
        let key = key.display().to_string();
        let file = file.display().to_string();
        let sequence = sequence.to_owned();
        let admin = &admin;
        async move {
            admin
                .push_mapping(&[
                    "--signing-key",
                    &key,
                    "--to",
                    "acme-health/clinic-12",
                    "--listener",
                    "lab",
                    "--sequence",
                    &sequence,
                    &file,
                ])
                .await
        }
    };
    let out = push(&org_private, "10", &v2).await?;
    ensure!(out.contains("pushed sequence 10"), "{out}");
    let applied = wait_push(&fleet, |p| p["outcome"] == "applied").await?;
    ensure!(
        applied["mapping_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("lab-v2+")),
        "{applied}"
    );
    send(&agent, 3, 3, &mut acked).await?;
    records(&hub, 6, WAIT).await?;
    let seen = versions(&hub.messages());
    ensure!(
        seen[3..].iter().all(|v| v.starts_with("lab-v2+")),
        "the records after the push: {seen:?}"
    );

    // Signed with another key: refused, the box keeps the pushed table.
    push(&rogue_private, "20", &v0).await?;
    let refused = wait_push(&fleet, |p| p["reason"] == "bad_signature").await?;
    ensure!(refused["outcome"] == "rejected", "{refused}");
    // An older sequence, signed right: refused as a downgrade.
    push(&org_private, "5", &v0).await?;
    let refused = wait_push(&fleet, |p| p["reason"] == "downgrade").await?;
    ensure!(
        refused["mapping_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("lab-v2+")),
        "{refused}"
    );
    send(&agent, 6, 2, &mut acked).await?;
    records(&hub, 8, WAIT).await?;
    let seen = versions(&hub.messages());
    ensure!(
        seen[6..].iter().all(|v| v.starts_with("lab-v2+")),
        "after refused pushes: {seen:?}"
    );
    let audit = agent.log();
    ensure!(
        audit.contains("applied a pushed mapping") && audit.contains("refused a push"),
        "the log names the outcomes"
    );

    // Broker down, box restarted: it serves on the last pushed table.
    broker.stop().await?;
    agent.restart().await?;
    send(&agent, 8, 2, &mut acked).await?;
    broker.restart().await?;
    records(&hub, 10, Duration::from_secs(60)).await?;
    let seen = versions(&hub.messages());
    ensure!(
        seen[8..].iter().all(|v| v.starts_with("lab-v2+")),
        "after the restart with the broker down: {seen:?}"
    );

    // Nothing lost, nothing twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delivered = decode::decode(&hub.messages()).delivered;
    checker::check(&[Acked::new("lab", acked)], &delivered).assert_ok();
    agent.stop().await?;
    Ok(())
}
