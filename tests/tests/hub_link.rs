//! The hub connection as `hl7edge status` tells it (a separate process reading what the
//! running agent recorded): with the broker down, status names the cause (nothing listens) and
//! says the messages wait; with a hub certificate the box's CA does not trust (a CA of the same
//! name but another key: `invalid peer certificate: BadSignature`), status names that cause,
//! the file to replace and the command to run, and never says the messages are sent once the
//! hub is reachable. After each fix the backlog drains and status says connected. Real
//! mosquitto over mutual TLS.

use std::time::Duration;

use anyhow::{Result, ensure};
use hl7edge_e2e::agent::AgentConfig;
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::pki::Pki;
use hl7edge_e2e::rig::Rig;
use serde_json::Value;

fn attention(status: &Value) -> Vec<String> {
    status["attention"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn send_ten(rig: &Rig) -> Result<Vec<String>> {
    let mut sender = rig.sender("lab")?;
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 0..10))
        .await;
    ensure!(sender.acked().len() == 10, "the backlog is ACKed");
    Ok(sender.acked())
}

/// Waits until the recorded link is connected with an empty queue and nothing needs attention.
async fn connected_and_drained(rig: &Rig) -> Result<()> {
    let status = rig
        .agent
        .wait_status(Duration::from_secs(60), |s| {
            s["hub"]["state"] == "connected"
                && s["queue"]["depth"] == 0
                && s["hub"]["last_puback_at"].is_string()
                && attention(s).is_empty()
        })
        .await?;
    ensure!(
        status["hub"]["state"] == "connected" && attention(&status).is_empty(),
        "{}",
        status["hub"]
    );
    ensure!(status["hub"]["cause"].is_null(), "{}", status["hub"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_down_status_says_nothing_listens_what_to_run_and_that_messages_wait()
-> Result<()> {
    let mut rig = Rig::start_broker_down(|c| c).await?;
    let acked = send_ten(&rig).await?;
    let status = rig
        .agent
        .wait_status(Duration::from_secs(60), |s| {
            attention(s).contains(&"hub_unreachable".to_owned())
        })
        .await?;
    ensure!(
        attention(&status).contains(&"hub_unreachable".to_owned()),
        "{status}"
    );
    ensure!(
        status["hub"]["cause"] == "not_listening",
        "{}",
        status["hub"]
    );
    ensure!(
        status["hub"]["heals_by_waiting"] == true,
        "{}",
        status["hub"]
    );
    ensure!(status["hub"]["state"] != "connected", "{}", status["hub"]);
    let text = rig.agent.status_text()?;
    ensure!(
        text.contains("nothing listens at the hub's address"),
        "{text}"
    );
    ensure!(text.contains("hl7edge doctor"), "{text}");
    ensure!(text.contains("sent once the hub is reachable"), "{text}");

    rig.broker.restart().await?;
    connected_and_drained(&rig).await?;
    let report = rig
        .wait_delivered(&[Acked::new("lab", acked)], Duration::from_secs(30))
        .await;
    report.assert_ok_and_ordered();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_certificate_the_box_does_not_trust_is_named_with_its_fix_and_never_called_a_wait()
-> Result<()> {
    // A CA of the same name as the real one, with another key: the broker's certificate fails
    // its signature check (BadSignature), as when a box gets the wrong CA file.
    let impostor = Pki::generate()?;
    let wrong_ca = impostor.ca.clone();
    let mut rig = Rig::start(move |mut c: AgentConfig| {
        c.hub_ca = wrong_ca;
        c
    })
    .await?;
    let acked = send_ten(&rig).await?;
    let status = rig
        .agent
        .wait_status(Duration::from_secs(60), |s| {
            attention(s).contains(&"hub_refused".to_owned())
        })
        .await?;
    ensure!(
        status["hub"]["cause"] == "hub_certificate_untrusted",
        "{}",
        status["hub"]
    );
    ensure!(
        status["hub"]["heals_by_waiting"] == false,
        "{}",
        status["hub"]
    );
    let error = status["hub"]["last_error"].as_str().unwrap_or_default();
    ensure!(
        error.contains("BadSignature"),
        "the stack's words are kept: {error}"
    );
    ensure!(
        attention(&status).first().map(String::as_str) == Some("hub_refused"),
        "{status}"
    );
    let text = rig.agent.status_text()?;
    let ca_path = impostor.ca.display().to_string();
    ensure!(text.contains("not issued by the CA in hub.ca"), "{text}");
    ensure!(
        text.contains(&format!("put it at {ca_path}")),
        "the fix names the file:\n{text}"
    );
    ensure!(text.contains("hl7edge doctor"), "{text}");
    ensure!(text.contains("Waiting will not help"), "{text}");
    ensure!(
        !text.contains("sent once the hub is reachable"),
        "a refusal described as a wait:\n{text}"
    );
    ensure!(
        rig.decoded().delivered.is_empty(),
        "records crossed an untrusted link"
    );

    // The fix status named: the right CA file, and a restart.
    let fixed = AgentConfig::new(&rig.pki, &rig.broker.url());
    rig.agent.reconfigure(&fixed).await?;
    connected_and_drained(&rig).await?;
    let report = rig
        .wait_delivered(&[Acked::new("lab", acked)], Duration::from_secs(30))
        .await;
    report.assert_ok_and_ordered();
    drop(impostor);
    Ok(())
}
