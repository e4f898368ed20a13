//! Trust and access (RELIABILITY.md scenarios 12 and 14): with a hub certificate the agent must
//! not trust, or a client certificate the broker refuses, nothing is sent, the agent says why in
//! its log and keeps ACKing into its backlog; once the configuration is fixed and the agent is
//! restarted on the same database, the whole backlog drains. MLLP peers outside the allowlist,
//! or without a client certificate on MLLP over TLS, are refused before anything is stored.

use std::time::Duration;

use anyhow::{Result, ensure};
use hl7edge_e2e::agent::AgentConfig;
use hl7edge_e2e::broker::BrokerOptions;
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::mllp::{Connection, MllpTls, Sender};
use hl7edge_e2e::mqtt::{ClientOptions, Subscriber};
use hl7edge_e2e::pki::Pki;
use hl7edge_e2e::rig::{self, Rig};

/// Sends 20 messages and checks they are ACKed into the backlog while nothing reaches the hub
/// and the log says why; returns the ACKed control ids.
async fn nothing_sent_but_backlog_acked(rig: &Rig, log_words: &[&str]) -> Result<Vec<String>> {
    let mut sender = rig.sender("lab")?;
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 0..20))
        .await;
    ensure!(sender.acked().len() == 20, "the backlog is still ACKed");
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        rig.decoded().delivered.is_empty(),
        "records reached the hub over an untrusted link"
    );
    let log = rig.agent.log().to_lowercase();
    ensure!(
        log_words.iter().any(|w| log.contains(w)),
        "the agent log does not say why ({log_words:?}):\n{}",
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    Ok(sender.acked())
}

/// Restarts the agent on the same database with the correct client certificate and checks the
/// kept backlog drains completely, in order.
async fn fixed_and_drained(rig: &mut Rig, acked: Vec<String>) -> Result<()> {
    let fixed = AgentConfig::new(&rig.pki, &rig.broker.url());
    rig.agent.reconfigure(&fixed).await?;
    let acked = [Acked::new("lab", acked)];
    let report = rig.wait_delivered(&acked, Duration::from_secs(30)).await;
    eprintln!("after the fix:\n{report}");
    report.assert_ok_and_ordered();
    Ok(())
}

/// Broker options for a broker whose certificate comes from a CA the agent does not trust.
fn wrong_ca_broker(pki: &Pki) -> BrokerOptions {
    BrokerOptions {
        server: Some(pki.wrong_ca_server.clone()),
        ..BrokerOptions::default()
    }
}

#[tokio::test]
async fn a_broker_certificate_from_another_ca_is_not_trusted_until_that_ca_is_configured()
-> Result<()> {
    let pki = hl7edge_e2e::pki::Pki::generate()?;
    let rig = Rig::start_with(wrong_ca_broker(&pki), |c| c).await;
    drop(pki);
    // The rig's subscriber trusts only the test CA, so it cannot connect either; build by hand.
    ensure!(
        rig.is_err(),
        "the stand-in hub should not trust the wrong CA either"
    );
    let pki = hl7edge_e2e::pki::Pki::generate()?;
    let broker = hl7edge_e2e::broker::Broker::start_with(&pki, wrong_ca_broker(&pki)).await?;
    let mut agent =
        hl7edge_e2e::agent::Agent::start(&AgentConfig::new(&pki, &broker.url())).await?;
    let addr = agent
        .mllp_addr("lab")
        .ok_or_else(|| anyhow::anyhow!("lab"))?;
    let mut sender = Sender::new(rig::quick(addr));
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 0..10))
        .await;
    ensure!(sender.acked().len() == 10);
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        !broker.log().contains("as acme-health-clinic-12-gw-0001"),
        "the agent completed an MQTT connection to an untrusted broker"
    );
    let log = agent.log().to_lowercase();
    ensure!(
        log.contains("certificate") || log.contains("unknownissuer") || log.contains("tls"),
        "no clear error in the agent log"
    );

    // The fix: the box is told to trust the CA the hub's certificate really comes from. The kept
    // backlog then drains completely.
    let hub_options = ClientOptions::new("hub", &pki.wrong_ca, Some(&pki.subscriber));
    let hub = Subscriber::connect(broker.addr(), &hub_options, rig::FILTER).await?;
    let mut fixed = AgentConfig::new(&pki, &broker.url());
    fixed.hub_ca = pki.wrong_ca.clone();
    agent.reconfigure(&fixed).await?;
    let acked = [Acked::new("lab", sender.acked())];
    let report = rig::wait_delivered(&hub, &acked, Duration::from_secs(30)).await;
    eprintln!("after the fix:\n{report}");
    report.assert_ok_and_ordered();
    Ok(())
}

#[tokio::test]
async fn an_expired_client_certificate_keeps_the_backlog_until_fixed_then_it_drains() -> Result<()>
{
    let pki = hl7edge_e2e::pki::Pki::generate()?;
    let mut rig = Rig::start_with_pki(pki, BrokerOptions::default(), |mut c, pki| {
        c.hub_identity = pki.expired_client.clone();
        c
    })
    .await?;
    let acked = nothing_sent_but_backlog_acked(&rig, &["certificate", "tls", "expired"]).await?;
    fixed_and_drained(&mut rig, acked).await
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_sends_nothing_until_fixed_then_the_backlog_drains()
-> Result<()> {
    let pki = hl7edge_e2e::pki::Pki::generate()?;
    let wrong = pki.wrong_ca_client.clone();
    let mut rig = Rig::start(move |mut c| {
        c.hub_identity = wrong;
        c
    })
    .await?;
    let acked = nothing_sent_but_backlog_acked(&rig, &["certificate", "tls", "unknown ca"]).await?;
    drop(pki);
    fixed_and_drained(&mut rig, acked).await
}

#[tokio::test]
async fn a_peer_outside_the_allowlist_is_refused_and_nothing_stored() -> Result<()> {
    let rig = Rig::start(|mut c| {
        c.listeners[0].allow = vec!["10.9.9.0/24".into()];
        c
    })
    .await?;
    let addr = rig.listener_addr("lab")?;
    let message = hl7gen::lab_result("lis", 1);
    if let Ok(mut connection) = Connection::connect(addr, None, Duration::from_secs(3)).await {
        let reply = connection
            .send(&message.bytes, Duration::from_secs(3))
            .await;
        ensure!(reply.is_err(), "a refused peer got an answer: {reply:?}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    ensure!(
        rig.decoded().delivered.is_empty(),
        "a refused message was forwarded"
    );
    Ok(())
}

#[tokio::test]
async fn mllp_over_tls_without_a_client_certificate_is_refused() -> Result<()> {
    let pki = hl7edge_e2e::pki::Pki::generate()?;
    let server = pki.mllp_server.clone();
    let ca = pki.ca.clone();
    let rig = Rig::start(move |mut c| {
        c.listeners[0].tls = Some((server, Some(ca)));
        c
    })
    .await?;
    let addr = rig.listener_addr("lab")?;
    let message = hl7gen::lab_result("lis", 1);
    let anonymous = MllpTls {
        ca: pki.ca.clone(),
        identity: None,
        server_name: "localhost".into(),
    };
    let refused = match Connection::connect(addr, Some(&anonymous), Duration::from_secs(3)).await {
        Ok(mut connection) => connection
            .send(&message.bytes, Duration::from_secs(3))
            .await
            .is_err(),
        Err(_) => true,
    };
    ensure!(refused, "a client without a certificate got an answer");
    let with_cert = MllpTls {
        identity: Some(pki.client("lis-client")?),
        ..anonymous
    };
    let mut connection =
        Connection::connect(addr, Some(&with_cert), Duration::from_secs(5)).await?;
    let ack = hl7edge_e2e::mllp::parse_ack(
        &connection
            .send(&message.bytes, Duration::from_secs(5))
            .await?,
    )?;
    ensure!(ack.code.is_positive(), "{ack:?}");
    let report = rig
        .wait_delivered(
            &[hl7edge_e2e::checker::Acked::new(
                "lab",
                vec![message.control_id],
            )],
            Duration::from_secs(15),
        )
        .await;
    report.assert_ok();
    ensure!(report.delivered == 1, "{report}");
    Ok(())
}
