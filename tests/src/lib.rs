//! End-to-end test harness for hl7edge: a real `mosquitto` broker over mutual TLS, a persistent
//! MQTT subscriber standing in for the hub, a realistic MLLP sender, the agent as a child
//! process, and a checker that compares what senders were told (ACKs) with what reached the
//! broker.
//!
//! Nothing here is mocked: every test talks to real processes over real sockets on 127.0.0.1.
//! Run the whole suite with `tests/run.sh`, which installs `mosquitto` when it is missing.
//!
//! A typical test:
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use hl7edge_e2e::{agent::{Agent, AgentConfig}, broker::Broker, checker, hl7gen, mllp, mqtt, pki::Pki};
//!
//! let pki = Pki::generate()?;
//! let broker = Broker::start(&pki).await?;
//! let hub = mqtt::ClientOptions::new("hub", &pki.ca, Some(&pki.subscriber));
//! let subscriber = mqtt::Subscriber::connect(broker.addr(), &hub, "hl7edge/v1/#").await?;
//! let agent = Agent::start(&AgentConfig::new(&pki, &broker.url())).await?;
//! let lab = agent.mllp_addr("lab").expect("listener lab");
//! let mut sender = mllp::Sender::new(mllp::SenderConfig::new(lab));
//! sender.send_all(hl7gen::messages(hl7gen::Kind::Lab, "lis", 0..100)).await;
//! let received = subscriber.wait_for(100, Duration::from_secs(30)).await?;
//! // Decode each payload with hl7edge_protocol's wire format (record id, source, control id):
//! let delivered: Vec<checker::Delivered> = decode(&received);
//! checker::check(&[checker::Acked::new("lab", sender.acked())], &delivered).assert_ok();
//! # Ok(())
//! # }
//! # fn decode(_: &[hl7edge_e2e::mqtt::Received]) -> Vec<hl7edge_e2e::checker::Delivered> { Vec::new() }
//! ```

pub mod agent;
pub mod backlog;
pub mod bench;
pub mod broker;
pub mod build;
pub mod checker;
pub mod corpus;
pub mod decode;
pub mod hl7gen;
pub mod hub;
pub mod ingest;
pub mod mllp;
pub mod mqtt;
pub mod payloads;
pub mod pki;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod puback_gate;
pub mod push;
pub mod pytools;
pub mod readme;
pub mod rig;
pub mod steady;
pub mod tls;
pub mod tmpfs;
