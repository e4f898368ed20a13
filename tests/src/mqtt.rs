//! MQTT clients for the tests (rumqttc, MQTT v5, mutual TLS): a connection probe, a publisher
//! that waits for each PUBACK, and a [`Subscriber`] with a persistent session that records every
//! message it receives.
//!
//! Invariants:
//! - every connection verifies the broker against the given CA and presents the given client
//!   certificate (if any); there is no plaintext and no "accept any certificate" mode;
//! - the largest packet the clients accept is the protocol maximum, so the broker never drops a
//!   message because the test client announced a small limit.

mod receipter;
mod subscriber;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, ClientError, ConnectionError, Event, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};

use crate::pki::CertPaths;
use crate::tls::{self, TlsError};

pub use receipter::Receipter;
pub use subscriber::{Received, Subscriber};

/// The largest MQTT packet (the protocol's limit), announced so the broker never drops for size.
const MAX_PACKET: u32 = 268_435_455;
/// How long the broker keeps a persistent subscriber's session (and its
/// queued messages) after a disconnect.
const SESSION_EXPIRY_SECS: u32 = 3600;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong with an MQTT client.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The connection failed or was refused (TLS, network or CONNACK).
    #[error("MQTT connection: {0}")]
    Connection(#[from] ConnectionError),
    /// A request could not be handed to the client's event loop (boxed: it carries the request).
    #[error("MQTT client: {0}")]
    Client(Box<ClientError>),
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What we waited for.
        what: String,
        /// How long.
        after: Duration,
    },
    /// A subscriber did not receive enough messages in time.
    #[error(
        "subscriber has {got} of {wanted} messages after {after:?} (last connection error: {last_error:?})"
    )]
    TooFew {
        /// Messages wanted.
        wanted: usize,
        /// Messages received.
        got: usize,
        /// How long we waited.
        after: Duration,
        /// The subscriber's last connection error, if any.
        last_error: Option<String>,
    },
}

impl From<ClientError> for MqttError {
    fn from(err: ClientError) -> Self {
        MqttError::Client(Box::new(err))
    }
}

/// Who a client is and whom it trusts.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The MQTT client id.
    pub client_id: String,
    /// CA certificate(s) trusted for the broker's certificate.
    pub ca: PathBuf,
    /// The client certificate to present; `None` connects without one.
    pub identity: Option<CertPaths>,
    /// MQTT keep-alive; default 5 s so a dead broker is noticed quickly.
    pub keep_alive: Duration,
}

impl ClientOptions {
    /// Options with a 5 s keep-alive.
    pub fn new(
        client_id: &str,
        ca: impl Into<PathBuf>,
        identity: Option<&CertPaths>,
    ) -> ClientOptions {
        ClientOptions {
            client_id: client_id.to_owned(),
            ca: ca.into(),
            identity: identity.cloned(),
            keep_alive: Duration::from_secs(5),
        }
    }

    /// rumqttc options for a broker at `addr`.
    fn to_mqtt(&self, addr: SocketAddr, clean_start: bool) -> Result<MqttOptions, MqttError> {
        let config = tls::client_config(&self.ca, self.identity.as_ref())?;
        let mut options =
            MqttOptions::new(self.client_id.clone(), addr.ip().to_string(), addr.port());
        options
            .set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)))
            .set_keep_alive(self.keep_alive)
            .set_clean_start(clean_start)
            .set_max_packet_size(Some(MAX_PACKET))
            .set_request_channel_capacity(1024);
        // MQTT v5 ends a session when its connection closes unless the
        // client asks for an expiry interval: without it, whatever the broker
        // receives while this subscriber reconnects would be dropped.
        if !clean_start {
            options.set_session_expiry_interval(Some(SESSION_EXPIRY_SECS));
        }
        Ok(options)
    }
}

/// Connects to the broker at `addr`, waits for a successful CONNACK and disconnects.
///
/// `Err` says why the broker (or our own TLS verification) refused the connection.
pub async fn probe(addr: SocketAddr, options: &ClientOptions) -> Result<(), MqttError> {
    let (client, mut events) = AsyncClient::new(options.to_mqtt(addr, true)?, 10);
    wait_connack(&mut events).await?;
    client.disconnect().await?;
    drive_until(&mut events, "DISCONNECT", |event| {
        matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect))
    })
    .await
}

/// A plain client that publishes at QoS 1 and waits for each PUBACK.
pub struct Publisher {
    client: AsyncClient,
    events: EventLoop,
}

impl Publisher {
    /// Connects with a clean session.
    pub async fn connect(
        addr: SocketAddr,
        options: &ClientOptions,
    ) -> Result<Publisher, MqttError> {
        let (client, mut events) = AsyncClient::new(options.to_mqtt(addr, true)?, 10);
        wait_connack(&mut events).await?;
        Ok(Publisher { client, events })
    }

    /// Publishes one message at QoS 1 and waits until the broker acknowledges it.
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<(), MqttError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
            .await?;
        drive_until(&mut self.events, "PUBACK", |event| {
            matches!(event, Event::Incoming(Packet::PubAck(_)))
        })
        .await
    }

    /// Sends DISCONNECT and closes the connection.
    pub async fn disconnect(mut self) -> Result<(), MqttError> {
        self.client.disconnect().await?;
        drive_until(&mut self.events, "DISCONNECT", |event| {
            matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect))
        })
        .await
    }
}

/// Polls `events` until the first CONNACK (success) or a connection error.
async fn wait_connack(events: &mut EventLoop) -> Result<(), MqttError> {
    drive_until(events, "CONNACK", |event| {
        matches!(event, Event::Incoming(Packet::ConnAck(_)))
    })
    .await
}

/// Polls `events` until `done` says so; the first connection error ends the wait.
async fn drive_until(
    events: &mut EventLoop,
    what: &str,
    mut done: impl FnMut(&Event) -> bool,
) -> Result<(), MqttError> {
    let wait = async {
        loop {
            if done(&events.poll().await?) {
                return Ok(());
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, wait)
        .await
        .map_err(|_| MqttError::Timeout {
            what: what.to_owned(),
            after: CONNECT_TIMEOUT,
        })?
}
