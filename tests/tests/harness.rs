//! Self-tests of the harness against a real mosquitto: before the agent's end-to-end tests rely
//! on the broker, the subscriber and the MLLP client, these prove that each does what it says.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::broker::{Broker, BrokerOptions, Persistence};
use hl7edge_e2e::mqtt::{self, ClientOptions, Publisher, Subscriber};
use hl7edge_e2e::pki::{CertPaths, Pki};

const FILTER: &str = "hl7edge/v1/#";
const WAIT: Duration = Duration::from_secs(10);

fn client(pki: &Pki, id: &str, identity: Option<&CertPaths>) -> ClientOptions {
    ClientOptions::new(id, &pki.ca, identity)
}

async fn publish_numbered(broker: &Broker, pki: &Pki, range: std::ops::Range<u32>) -> Result<()> {
    let mut publisher =
        Publisher::connect(broker.addr(), &client(pki, "publisher", Some(&pki.agent))).await?;
    for n in range {
        publisher
            .publish(
                &format!("hl7edge/v1/test/{n}"),
                format!("message {n}").as_bytes(),
                false,
            )
            .await?;
    }
    publisher.disconnect().await?;
    Ok(())
}

fn payloads(subscriber: &Subscriber) -> Vec<String> {
    subscriber.with_messages(|messages| {
        messages
            .iter()
            .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
            .collect()
    })
}

#[tokio::test]
async fn broker_accepts_a_client_certificate_from_its_ca_and_refuses_others() -> Result<()> {
    let pki = Pki::generate()?;
    let broker = Broker::start(&pki).await?;
    let addr = broker.addr();
    mqtt::probe(addr, &client(&pki, "good", Some(&pki.subscriber)))
        .await
        .context("CA-signed client")?;
    let no_cert = mqtt::probe(addr, &client(&pki, "no-cert", None)).await;
    ensure!(
        no_cert.is_err(),
        "a client without a certificate was accepted"
    );
    let wrong_ca = mqtt::probe(addr, &client(&pki, "wrong-ca", Some(&pki.wrong_ca_client))).await;
    ensure!(
        wrong_ca.is_err(),
        "a client certificate from another CA was accepted"
    );
    let expired = mqtt::probe(addr, &client(&pki, "expired", Some(&pki.expired_client))).await;
    ensure!(
        expired.is_err(),
        "an expired client certificate was accepted"
    );
    mqtt::probe(addr, &client(&pki, "good-again", Some(&pki.agent)))
        .await
        .context("broker still serving")?;
    let log = broker.log();
    ensure!(
        log.contains("peer did not return a certificate"),
        "no-cert refusal reason missing:\n{log}"
    );
    ensure!(
        log.matches("certificate verify failed").count() == 2,
        "verify failures missing:\n{log}"
    );
    Ok(())
}

#[tokio::test]
async fn clients_refuse_a_broker_whose_certificate_is_from_another_ca() -> Result<()> {
    let pki = Pki::generate()?;
    let options = BrokerOptions {
        server: Some(pki.wrong_ca_server.clone()),
        ..BrokerOptions::default()
    };
    let broker = Broker::start_with(&pki, options).await?;
    let refused = mqtt::probe(broker.addr(), &client(&pki, "pinned", Some(&pki.agent))).await;
    ensure!(
        refused.is_err(),
        "the client trusted a broker certificate from another CA"
    );
    let trusting = ClientOptions::new("trusting", &pki.wrong_ca, Some(&pki.agent));
    mqtt::probe(broker.addr(), &trusting)
        .await
        .context("client trusting the other CA")?;
    Ok(())
}

#[tokio::test]
async fn a_qos1_publish_reaches_the_subscriber_with_its_retain_flag() -> Result<()> {
    let pki = Pki::generate()?;
    let broker = Broker::start(&pki).await?;
    let subscriber = Subscriber::connect(
        broker.addr(),
        &client(&pki, "hub", Some(&pki.subscriber)),
        FILTER,
    )
    .await?;
    let mut publisher =
        Publisher::connect(broker.addr(), &client(&pki, "gw", Some(&pki.agent))).await?;
    publisher
        .publish(
            "hl7edge/v1/acme/c1/gw/records/ORU_R01",
            b"\x00\x01record",
            false,
        )
        .await?;
    publisher
        .publish("hl7edge/v1/acme/c1/gw/status", b"online", true)
        .await?;
    publisher
        .publish("elsewhere/not/subscribed", b"ignored", false)
        .await?;
    let received = subscriber.wait_for(2, WAIT).await?;
    ensure!(
        received[0].topic == "hl7edge/v1/acme/c1/gw/records/ORU_R01",
        "{:?}",
        received[0]
    );
    ensure!(
        received[0].payload == b"\x00\x01record" && !received[0].retain,
        "{:?}",
        received[0]
    );
    ensure!(
        received[1].payload == b"online" && received[1].retain,
        "{:?}",
        received[1]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(
        subscriber.count() == 2,
        "unexpected extra messages: {:?}",
        subscriber.messages()
    );
    Ok(())
}

#[tokio::test]
async fn messages_published_while_the_subscriber_is_away_arrive_when_it_returns() -> Result<()> {
    let pki = Pki::generate()?;
    let broker = Broker::start(&pki).await?;
    let options = client(&pki, "hub", Some(&pki.subscriber));
    let subscriber = Subscriber::connect(broker.addr(), &options, FILTER).await?;
    publish_numbered(&broker, &pki, 0..3).await?;
    subscriber.wait_for(3, WAIT).await?;
    subscriber.disconnect().await?;
    publish_numbered(&broker, &pki, 3..10).await?;
    let returned = Subscriber::connect(broker.addr(), &options, FILTER).await?;
    returned.wait_for(7, WAIT).await?;
    let expected: Vec<String> = (3..10).map(|n| format!("message {n}")).collect();
    ensure!(payloads(&returned) == expected, "{:?}", payloads(&returned));
    Ok(())
}

#[tokio::test]
async fn queued_messages_survive_a_broker_kill_and_restart_with_persistence() -> Result<()> {
    let pki = Pki::generate()?;
    let options = BrokerOptions {
        persistence: Persistence::EveryChange,
        ..BrokerOptions::default()
    };
    let mut broker = Broker::start_with(&pki, options).await?;
    let port = broker.port();
    let sub_options = client(&pki, "hub", Some(&pki.subscriber));
    Subscriber::connect(broker.addr(), &sub_options, FILTER)
        .await?
        .disconnect()
        .await?;
    publish_numbered(&broker, &pki, 0..20).await?;
    // Let mosquitto's main loop save after the last PUBACK before it dies without warning.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = broker.kill().await?.context("broker was running")?;
    ensure!(
        status.code().is_none(),
        "broker was not killed by a signal: {status}"
    );
    broker.restart().await?;
    ensure!(broker.port() == port, "port changed across restart");
    let subscriber = Subscriber::connect(broker.addr(), &sub_options, FILTER).await?;
    subscriber.wait_for(20, WAIT).await?;
    let expected: Vec<String> = (0..20).map(|n| format!("message {n}")).collect();
    ensure!(
        payloads(&subscriber) == expected,
        "{:?}",
        payloads(&subscriber)
    );
    Ok(())
}

#[tokio::test]
async fn a_subscriber_resubscribes_after_a_restart_without_persistence() -> Result<()> {
    let pki = Pki::generate()?;
    let options = BrokerOptions {
        persistence: Persistence::Off,
        ..BrokerOptions::default()
    };
    let mut broker = Broker::start_with(&pki, options).await?;
    let subscriber = Subscriber::connect(
        broker.addr(),
        &client(&pki, "hub", Some(&pki.subscriber)),
        FILTER,
    )
    .await?;
    publish_numbered(&broker, &pki, 0..2).await?;
    subscriber.wait_for(2, WAIT).await?;
    broker.kill().await?;
    broker.restart().await?;
    subscriber.wait_connected(2, WAIT).await?;
    publish_numbered(&broker, &pki, 2..4).await?;
    subscriber.wait_for(4, WAIT).await?;
    let expected: Vec<String> = (0..4).map(|n| format!("message {n}")).collect();
    ensure!(
        payloads(&subscriber) == expected,
        "{:?}",
        payloads(&subscriber)
    );
    Ok(())
}

#[tokio::test]
async fn a_gracefully_stopped_broker_keeps_queued_messages_with_periodic_persistence() -> Result<()>
{
    let pki = Pki::generate()?;
    let mut broker = Broker::start(&pki).await?;
    let sub_options = client(&pki, "hub", Some(&pki.subscriber));
    Subscriber::connect(broker.addr(), &sub_options, FILTER)
        .await?
        .disconnect()
        .await?;
    publish_numbered(&broker, &pki, 0..5).await?;
    let status = broker.stop().await?.context("broker was running")?;
    ensure!(
        status.success(),
        "mosquitto did not exit cleanly on SIGTERM: {status}"
    );
    broker.restart().await?;
    let subscriber = Subscriber::connect(broker.addr(), &sub_options, FILTER).await?;
    subscriber.wait_for(5, WAIT).await?;
    Ok(())
}
