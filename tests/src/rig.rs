//! One complete test setup: certificates, a mosquitto over mutual TLS, a persistent subscriber
//! standing in for the hub, and the agent under test, each on its own free ports, so tests can
//! run in parallel without sharing anything.
//!
//! Invariants:
//! - the subscriber is connected and subscribed to every topic of the gateway before the agent
//!   starts, so nothing the agent publishes is missed;
//! - [`Rig::wait_delivered`] returns the checker's verdict over everything received so far,
//!   whether or not the wait finished in time, so a failing test shows what is missing.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use crate::agent::{Agent, AgentConfig, AgentError};
use crate::broker::{Broker, BrokerError, BrokerOptions};
use crate::checker::{self, Acked, Delivered, Key, Report};
use crate::decode::{self, Decoded};
use crate::hl7gen::Message;
use crate::mllp::{Sender, SenderConfig};
use crate::mqtt::{ClientOptions, MqttError, Subscriber};
use crate::pki::{Pki, PkiError};
use crate::proxy::Proxy;
use crate::steady::Steady;

/// How long [`Rig::assert_ingest_resumes`] retries each refused message.
const RESUME_PATIENCE: Duration = Duration::from_secs(30);
/// How long [`Rig::assert_ingest_resumes`] waits for the deliveries.
const RESUMED_DELIVERY: Duration = Duration::from_secs(20);

/// The topic filter the stand-in hub subscribes to.
pub const FILTER: &str = "hl7edge/v1/#";

/// What can go wrong while setting up a rig.
#[derive(Debug, thiserror::Error)]
pub enum RigError {
    /// Generating certificates failed.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The broker did not start.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The subscriber could not connect.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// The agent did not start.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The proxy between agent and broker could not listen.
    #[error("starting the proxy: {0}")]
    Proxy(std::io::Error),
    /// The agent has no listener of that name.
    #[error("the agent has no listener {0:?}")]
    NoListener(String),
}

/// Certificates, broker, hub subscriber and agent of one test.
pub struct Rig {
    /// The agent under test (dropped first, so its log is printed before the others stop).
    pub agent: Agent,
    /// The stand-in hub.
    pub hub: Subscriber,
    /// The broker.
    pub broker: Broker,
    /// The certificates (must outlive broker and agent).
    pub pki: Pki,
}

impl Rig {
    /// Starts a broker with default options and the agent with `configure(AgentConfig::new)`.
    pub async fn start(
        configure: impl FnOnce(AgentConfig) -> AgentConfig,
    ) -> Result<Rig, RigError> {
        Rig::start_with(BrokerOptions::default(), configure).await
    }

    /// Like [`Rig::start`] with broker options.
    pub async fn start_with(
        options: BrokerOptions,
        configure: impl FnOnce(AgentConfig) -> AgentConfig,
    ) -> Result<Rig, RigError> {
        Rig::start_with_pki(Pki::generate()?, options, |c, _| configure(c)).await
    }

    /// Like [`Rig::start_with`] with given certificates; `configure` also sees them.
    pub async fn start_with_pki(
        pki: Pki,
        options: BrokerOptions,
        configure: impl FnOnce(AgentConfig, &Pki) -> AgentConfig,
    ) -> Result<Rig, RigError> {
        let broker = Broker::start_with(&pki, options).await?;
        let hub = hub(&pki, &broker).await?;
        let agent = Agent::start(&configure(AgentConfig::new(&pki, &broker.url()), &pki)).await?;
        Ok(Rig {
            agent,
            hub,
            broker,
            pki,
        })
    }

    /// Like [`Rig::start`], but the broker is down when the agent starts, so a backlog builds:
    /// the hub subscribes first (its persistent session keeps what the agent publishes after
    /// `broker.restart()`), then the broker stops.
    pub async fn start_broker_down(
        configure: impl FnOnce(AgentConfig) -> AgentConfig,
    ) -> Result<Rig, RigError> {
        Rig::start_broker_down_binary(&crate::agent::binary()?, configure).await
    }

    /// Like [`Rig::start_broker_down`] with broker options (e.g. a packet size limit).
    pub async fn start_broker_down_with(
        options: BrokerOptions,
        configure: impl FnOnce(AgentConfig) -> AgentConfig,
    ) -> Result<Rig, RigError> {
        Rig::broker_down(&crate::agent::binary()?, options, configure).await
    }

    /// Like [`Rig::start_broker_down`] with another agent binary (see [`Agent::start_binary`]).
    pub async fn start_broker_down_binary(
        binary: &Path,
        configure: impl FnOnce(AgentConfig) -> AgentConfig,
    ) -> Result<Rig, RigError> {
        Rig::broker_down(binary, BrokerOptions::default(), configure).await
    }

    async fn broker_down(
        binary: &Path,
        options: BrokerOptions,
        configure: impl FnOnce(AgentConfig) -> AgentConfig,
    ) -> Result<Rig, RigError> {
        let pki = Pki::generate()?;
        let mut broker = Broker::start_with(&pki, options).await?;
        let hub = hub(&pki, &broker).await?;
        broker.stop().await?;
        let config = configure(AgentConfig::new(&pki, &broker.url()));
        let agent = Agent::start_binary(binary, &config).await?;
        Ok(Rig {
            agent,
            hub,
            broker,
            pki,
        })
    }

    /// Like [`Rig::start`], but the agent reaches the broker through a [`Proxy`] (returned
    /// with the rig) that can cut, swallow and silence its connection.
    pub async fn start_behind_proxy(
        configure: impl FnOnce(AgentConfig) -> AgentConfig,
    ) -> Result<(Rig, Proxy), RigError> {
        let pki = Pki::generate()?;
        let broker = Broker::start(&pki).await?;
        let hub = hub(&pki, &broker).await?;
        let proxy = Proxy::start(broker.addr()).await.map_err(RigError::Proxy)?;
        let agent = Agent::start(&configure(AgentConfig::new(&pki, &proxy.url()))).await?;
        let rig = Rig {
            agent,
            hub,
            broker,
            pki,
        };
        Ok((rig, proxy))
    }

    /// A sender to the listener `name` with short timeouts.
    pub fn sender(&self, name: &str) -> Result<Sender, RigError> {
        Ok(Sender::new(quick(self.listener_addr(name)?)))
    }

    /// Starts a [`Steady`] load on the listener `name`: one sender per name in `sources`.
    pub fn steady(&self, name: &str, sources: &[&'static str]) -> Result<Steady, RigError> {
        let senders = sources
            .iter()
            .map(|&source| Ok((source, self.sender(name)?)))
            .collect::<Result<Vec<_>, RigError>>()?;
        Ok(Steady::start(name, senders))
    }

    /// The address of the agent's listener `name`.
    pub fn listener_addr(&self, name: &str) -> Result<std::net::SocketAddr, RigError> {
        self.agent
            .mllp_addr(name)
            .ok_or_else(|| RigError::NoListener(name.to_owned()))
    }

    /// A sender to the listener `name` that keeps retrying a message the agent refuses (AR/AE)
    /// for up to `give_up_after`: a lab system waiting for the agent to accept again.
    pub fn patient_sender(&self, name: &str, give_up_after: Duration) -> Result<Sender, RigError> {
        Ok(Sender::new(SenderConfig {
            retry_rejects: true,
            give_up_after,
            ..quick(self.listener_addr(name)?)
        }))
    }

    /// Checks that the agent accepts messages again by itself (after it refused some): sends
    /// `fresh` to the listener `name` with a [`Rig::patient_sender`] and requires every one
    /// ACKed, then waits until `acked_before` and those have all arrived, in ACK order, and
    /// requires that none of `refused` (control ids) arrived. Panics with the evidence otherwise.
    pub async fn assert_ingest_resumes(
        &self,
        name: &str,
        acked_before: &[String],
        fresh: impl IntoIterator<Item = Message>,
        refused: &[String],
    ) -> Result<Report, RigError> {
        let mut sender = self.patient_sender(name, RESUME_PATIENCE)?;
        sender.send_all(fresh).await;
        let resumed = sender.acked();
        assert_eq!(
            resumed.len(),
            sender.outcomes().len(),
            "not accepted again: {:?}",
            sender.outcomes().last()
        );
        let all = [Acked::new(name, [acked_before, &resumed].concat())];
        let report = self.wait_delivered(&all, RESUMED_DELIVERY).await;
        report.assert_ok_and_ordered();
        let stray = report.unacked_arrivals_among(refused);
        assert!(stray.is_empty(), "refused messages arrived: {stray:?}");
        Ok(report)
    }

    /// Everything received so far, decoded.
    pub fn decoded(&self) -> Decoded {
        self.hub.with_messages(decode::decode)
    }

    /// Waits up to `timeout` until every message in `acked` has arrived at least once, then
    /// returns the checker's report over all deliveries.
    pub async fn wait_delivered(&self, acked: &[Acked], timeout: Duration) -> Report {
        wait_delivered(&self.hub, acked, timeout).await
    }
}

/// A sender configuration with short timeouts for tests.
pub fn quick(addr: std::net::SocketAddr) -> SenderConfig {
    SenderConfig {
        ack_timeout: Duration::from_secs(3),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(300),
        give_up_after: Duration::from_secs(60),
        ..SenderConfig::new(addr)
    }
}

/// Waits up to `timeout` until every message in `acked` has arrived at `hub` at least once, then
/// returns the checker's report over all deliveries.
pub async fn wait_delivered(hub: &Subscriber, acked: &[Acked], timeout: Duration) -> Report {
    let mut remaining: HashSet<Key> = acked
        .iter()
        .flat_map(|a| {
            a.control_ids.iter().map(|id| Key {
                source: a.source.clone(),
                control_id: id.clone(),
            })
        })
        .collect();
    let mut checked = 0;
    let delivered = wait_records(hub, timeout, |all| {
        for d in all.get(checked..).unwrap_or_default() {
            remaining.remove(&Key {
                source: d.source.clone(),
                control_id: d.control_id.clone(),
            });
        }
        checked = all.len();
        remaining.is_empty()
    })
    .await;
    checker::check(acked, &delivered)
}

/// Waits up to `timeout` until `done` holds for the records `hub` has received so far (decoded,
/// in arrival order, duplicates included); returns them whether or not it held.
///
/// The wait is incremental: each wake-up copies only the messages that arrived since the last
/// one (a short hold of the subscriber's lock) and decodes them outside the lock. Decoding and
/// checking everything on every arrival under the lock would stall the subscriber for seconds
/// with a few thousand deliveries: it then misses its keep-alive, drops its connection, and the
/// backlog is not drained within the timeout.
pub async fn wait_records(
    hub: &Subscriber,
    timeout: Duration,
    mut done: impl FnMut(&[Delivered]) -> bool,
) -> Vec<Delivered> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = 0;
    let mut delivered = Vec::new();
    loop {
        let new = hub.with_messages(|all| all.get(seen..).map(<[_]>::to_vec).unwrap_or_default());
        seen += new.len();
        delivered.extend(decode::decode(&new).delivered);
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if done(&delivered)
            || left.is_zero()
            || hub.wait_until(left, |all| all.len() > seen).await.is_err()
        {
            return delivered;
        }
    }
}

/// Connects the stand-in hub to `broker` with the subscriber certificate.
pub async fn hub(pki: &Pki, broker: &Broker) -> Result<Subscriber, MqttError> {
    let options = ClientOptions::new("hub", &pki.ca, Some(&pki.subscriber));
    Subscriber::connect(broker.addr(), &options, FILTER).await
}
