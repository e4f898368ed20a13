//! Self-tests of the harness against a real mosquitto: before the agent's end-to-end tests rely
//! on the broker, the subscriber and the MLLP client, these prove that each does what it says.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::agent::{Agent, AgentConfig};
use hl7edge_e2e::broker::{Broker, BrokerOptions, Persistence};
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::mllp::{self, AckCode, Connection, MllpTls, Sender, SenderConfig};
use hl7edge_e2e::mqtt::{self, ClientOptions, Publisher, Subscriber};
use hl7edge_e2e::pki::{CertPaths, Pki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FILTER: &str = "hl7edge/v1/#";
const WAIT: Duration = Duration::from_secs(10);
/// The stand-in for the agent binary (see `src/bin/standin-agent.rs`).
const STANDIN: &str = env!("CARGO_BIN_EXE_standin-agent");

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

// ---- MLLP client and the agent process helper ----

/// A one-connection MLLP-over-TLS peer that answers one frame with an AA and reports whether
/// the handshake succeeded.
async fn tls_peer(pki: &Pki) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<bool>)> {
    let config = hl7edge_e2e::tls::server_config(&pki.mllp_server, Some(&pki.ca))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let peer = tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return false;
        };
        let Ok(mut tls) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await else {
            return false;
        };
        let mut chunk = [0_u8; 4096];
        let mut got = Vec::new();
        while !got.ends_with(&mllp::END) {
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
        let ack = mllp::frame(b"MSH|^~\\&|GW|X|||20250301||ACK|a1|P|2.5.1\rMSA|AA|lab-0\r");
        tls.write_all(&ack).await.is_ok() && tls.flush().await.is_ok()
    });
    Ok((addr, peer))
}

#[tokio::test]
async fn mllp_over_tls_presents_the_client_certificate_and_verifies_the_server() -> Result<()> {
    let pki = Pki::generate()?;
    let lab = pki.client("lab-system")?;
    let (addr, peer) = tls_peer(&pki).await?;
    let settings = MllpTls {
        ca: pki.ca.clone(),
        identity: Some(lab.clone()),
        server_name: "localhost".into(),
    };
    let mut connection = Connection::connect(addr, Some(&settings), WAIT).await?;
    let ack = mllp::parse_ack(
        &connection
            .send(&hl7gen::lab_result("lab", 0).bytes, WAIT)
            .await?,
    )?;
    ensure!(
        ack.code == AckCode::AA && ack.control_id == "lab-0",
        "{ack:?}"
    );
    ensure!(peer.await?, "peer did not complete the exchange");

    let (addr, peer) = tls_peer(&pki).await?;
    let anonymous = MllpTls {
        identity: None,
        ..settings.clone()
    };
    let refused = async {
        let mut connection = Connection::connect(addr, Some(&anonymous), WAIT).await?;
        connection.send(b"MSH|^~\\&|x", WAIT).await
    };
    ensure!(
        refused.await.is_err(),
        "a TLS peer requiring client certificates answered an anonymous client"
    );
    ensure!(
        !peer.await?,
        "the peer accepted a client without a certificate"
    );

    let (addr, _peer) = tls_peer(&pki).await?;
    let wrong_trust = MllpTls {
        ca: pki.wrong_ca.clone(),
        ..settings
    };
    ensure!(
        Connection::connect(addr, Some(&wrong_trust), WAIT)
            .await
            .is_err(),
        "server from an untrusted CA accepted"
    );
    Ok(())
}

#[tokio::test]
async fn the_agent_helper_starts_signals_and_restarts_a_process_on_the_same_ports() -> Result<()> {
    let pki = Pki::generate()?;
    let config = AgentConfig::new(&pki, "mqtts://127.0.0.1:1").with_listener("icu");
    let mut agent = Agent::start_binary(Path::new(STANDIN), &config).await?;
    let lab = agent.mllp_addr("lab").context("lab listener")?;
    let icu = agent.mllp_addr("icu").context("icu listener")?;
    ensure!(
        lab != icu && agent.mllp_addr("pharmacy").is_none(),
        "{lab} {icu}"
    );

    let mut sender = Sender::new(SenderConfig::new(lab));
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 0..3))
        .await;
    ensure!(
        sender.acked() == ["lis-0", "lis-1", "lis-2"],
        "{:?}",
        sender.outcomes()
    );

    agent.sigterm()?;
    let status = agent.wait_exit(WAIT).await?;
    ensure!(
        std::os::unix::process::ExitStatusExt::signal(&status) == Some(15),
        "{status}"
    );
    ensure!(!agent.is_running(), "still running after SIGTERM");

    agent.restart().await?;
    ensure!(
        agent.mllp_addr("lab") == Some(lab),
        "port changed across restart"
    );
    let mut device = Sender::new(SenderConfig::new(icu));
    let outcome = device.send(&hl7gen::device_observation("monitor", 1)).await;
    ensure!(outcome.is_acked(), "{outcome:?}");

    let killed = agent.sigkill().await?.context("agent was running")?;
    ensure!(
        std::os::unix::process::ExitStatusExt::signal(&killed) == Some(9),
        "{killed}"
    );
    let log = agent.log();
    ensure!(log.matches("==== started").count() == 2, "{log}");
    ensure!(log.contains(&format!("listening on {lab}")), "{log}");
    let config_text = std::fs::read_to_string(agent.config_path())?;
    ensure!(
        config_text.contains(&agent.database_path().display().to_string()),
        "{config_text}"
    );
    Ok(())
}

#[tokio::test]
async fn the_agent_binary_is_built_into_the_tests_target_directory() -> Result<()> {
    let binary = hl7edge_e2e::agent::binary()?;
    ensure!(binary.is_file(), "{} missing", binary.display());
    let exe = std::env::current_exe()?;
    ensure!(
        binary.parent() == exe.parent().and_then(Path::parent),
        "{} vs {}",
        binary.display(),
        exe.display()
    );
    Ok(())
}
