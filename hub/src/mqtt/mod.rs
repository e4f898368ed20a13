//! The broker connection shared by every command: settings from the command
//! line, and a subscription driven by its own task.
//!
//! The rumqttc event loop runs in a spawned task and hands events over a
//! channel, so no `poll()` is ever cancelled half-way by a `select!`. The
//! task subscribes after every CONNACK (so a reconnect with a clean session
//! gets its subscriptions back), reconnects with backoff after a lost
//! connection, and gives up only when the very first connection fails or
//! the broker refuses a subscription: those are configuration problems a
//! retry will not fix, and saying so at once is kinder than retrying
//! forever.

mod explain;
pub mod tls;
pub mod url;

use std::path::PathBuf;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ClientError, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS,
    SubscribeFilter, SubscribeReasonCode, Transport,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use explain::{explain, explain_lost};
pub use url::{BrokerUrl, UrlError};

/// The default largest packet read from the broker: an agent's MQTT client
/// sends packets of at most 16 MiB (its largest envelope, topic and headers
/// included), so this admits any agent's payload with room to spare. A
/// larger packet cannot be read: the connection fails (and is explained),
/// see [`explain`].
pub const DEFAULT_MAX_PACKET: usize = 17 << 20;
/// Largest packet sent (custody receipts of up to 4096 ids are 64 KiB and a little).
const MAX_OUTGOING: usize = 1 << 20;
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Validated broker connection settings.
#[derive(Debug, Clone)]
pub struct Broker {
    /// Where the broker is.
    pub url: BrokerUrl,
    /// TLS files, or plaintext for lab use.
    pub transport: BrokerTransport,
    /// The MQTT client id.
    pub client_id: String,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// Largest packet read from the broker, in bytes.
    pub max_packet: usize,
}

/// How to reach the broker.
#[derive(Debug, Clone)]
pub enum BrokerTransport {
    /// Mutual TLS with these PEM files.
    Tls {
        /// CA that signed the broker's certificate.
        ca: PathBuf,
        /// This client's certificate.
        cert: PathBuf,
        /// This client's private key.
        key: PathBuf,
    },
    /// Plaintext MQTT (`--insecure-plaintext`, lab use only).
    Plaintext,
}

/// Why the broker settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The URL is malformed.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// `mqtts://` without all of the TLS files.
    #[error(
        "{url} needs mutual TLS: pass {missing} (or use mqtt:// with --insecure-plaintext in a lab)"
    )]
    MissingTlsFiles {
        /// The URL.
        url: String,
        /// The flags that are missing, e.g. `--cert and --key`.
        missing: String,
    },
    /// `mqtt://` without `--insecure-plaintext`.
    #[error(
        "{url} is plaintext MQTT: records would cross the network unencrypted; use mqtts:// with --ca/--cert/--key, or pass --insecure-plaintext for a lab broker"
    )]
    PlaintextNotAllowed {
        /// The URL.
        url: String,
    },
    /// `--insecure-plaintext` with an `mqtts://` URL.
    #[error("--insecure-plaintext contradicts {url}; drop the flag or use mqtt://")]
    PlaintextFlagWithTls {
        /// The URL.
        url: String,
    },
    /// The TLS files could not be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// What a subscription asks of the broker.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// Keep the session (and queued QoS 1 messages) across disconnects.
    pub persistent: bool,
    /// Acknowledge each publish only when the caller calls [`Subscription::ack`].
    pub manual_acks: bool,
    /// The topic filters, all at QoS 1.
    pub filters: Vec<String>,
}

/// What the connection task reports.
#[derive(Debug)]
pub enum SessionEvent {
    /// Connected (again) and subscribed: the broker acknowledged every
    /// filter (SUBACK), so messages published from now on reach this
    /// session. Queued messages of a kept session may arrive before it.
    Connected {
        /// True when the broker kept our session.
        session_present: bool,
    },
    /// A message arrived.
    Publish(Publish),
    /// The connection was lost; the task reconnects after a backoff.
    Lost(String),
    /// The task stopped for good: the message says what to fix.
    Fatal(String),
}

/// A running subscription: the client handle and the event stream.
#[derive(Debug)]
pub struct Subscription {
    client: AsyncClient,
    events: mpsc::Receiver<SessionEvent>,
    driver: JoinHandle<()>,
}

impl Broker {
    /// Builds the rumqttc options (loading the TLS files).
    pub fn options(&self, spec: &SessionSpec) -> Result<MqttOptions, SettingsError> {
        let mut o = MqttOptions::new(self.client_id.clone(), self.url.host.clone(), self.url.port);
        o.set_keep_alive(self.keep_alive);
        o.set_clean_session(!spec.persistent);
        o.set_manual_acks(spec.manual_acks);
        o.set_max_packet_size(self.max_packet, MAX_OUTGOING);
        if let BrokerTransport::Tls { ca, cert, key } = &self.transport {
            let config = tls::client_config(ca, cert, key)?;
            o.set_transport(Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(config),
            ));
        }
        Ok(o)
    }
}

impl Subscription {
    /// Connects in the background and subscribes to `spec.filters`.
    pub fn start(broker: &Broker, spec: SessionSpec) -> Result<Subscription, SettingsError> {
        let options = broker.options(&spec)?;
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let mut network = rumqttc::NetworkOptions::new();
        network.set_connection_timeout(10);
        eventloop.set_network_options(network);
        let (tx, events) = mpsc::channel(64);
        let driver = tokio::spawn(drive(
            eventloop,
            client.clone(),
            broker.url.to_string(),
            spec.filters,
            tx,
        ));
        Ok(Subscription {
            client,
            events,
            driver,
        })
    }

    /// The next event; `None` once the connection task has stopped.
    /// Cancellation-safe.
    pub async fn next(&mut self) -> Option<SessionEvent> {
        self.events.recv().await
    }

    /// Publishes `payload` retained at QoS 1 (queued: the caller confirms by reading it back).
    pub async fn publish_retained(&self, topic: &str, payload: Vec<u8>) -> Result<(), ClientError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await
    }

    /// Publishes `payload` at QoS 1, not retained (queued).
    pub async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), ClientError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
    }

    /// Acknowledges a publish (with manual acks).
    pub async fn ack(&self, publish: &Publish) -> Result<(), ClientError> {
        self.client.ack(publish).await
    }

    /// Says goodbye to the broker (waits at most a second).
    pub async fn close(mut self) {
        if self.client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.driver).await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    url: String,
    filters: Vec<String>,
    tx: mpsc::Sender<SessionEvent>,
) {
    let mut connected_once = false;
    let mut connected = false;
    let mut session_present = false;
    let mut backoff = Duration::from_secs(1);
    loop {
        let event = match eventloop.poll().await {
            Ok(event) => event,
            Err(e) if !connected_once => {
                let _ = tx.send(SessionEvent::Fatal(explain(&url, &e))).await;
                return;
            }
            Err(e) => {
                let why = if connected {
                    explain_lost(&url, &e)
                } else {
                    explain(&url, &e)
                };
                connected = false;
                if tx.send(SessionEvent::Lost(why)).await.is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let report = match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                connected_once = true;
                connected = true;
                session_present = ack.session_present;
                backoff = Duration::from_secs(1);
                let subs = filters
                    .iter()
                    .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                client
                    .try_subscribe_many(subs)
                    .is_err()
                    .then(|| SessionEvent::Fatal("could not queue the subscription".into()))
            }
            Event::Incoming(Packet::Publish(p)) => Some(SessionEvent::Publish(p)),
            Event::Incoming(Packet::SubAck(ack)) => {
                Some(match refused_filters(&ack.return_codes, &filters) {
                    None => {
                        tracing::info!(filters = ?filters, "subscribed");
                        SessionEvent::Connected { session_present }
                    }
                    Some(refused) => SessionEvent::Fatal(format!(
                        "{url} refused the subscription to {refused} — check the broker's ACL for this client"
                    )),
                })
            }
            Event::Outgoing(Outgoing::Disconnect) => return,
            _ => None,
        };
        if let Some(report) = report {
            let fatal = matches!(report, SessionEvent::Fatal(_));
            if tx.send(report).await.is_err() || fatal {
                return;
            }
        }
    }
}

/// The filters a SUBACK refused, joined for a message; `None` if all passed.
fn refused_filters(codes: &[SubscribeReasonCode], filters: &[String]) -> Option<String> {
    let refused: Vec<&str> = codes
        .iter()
        .zip(filters)
        .filter(|(code, _)| matches!(code, SubscribeReasonCode::Failure))
        .map(|(_, f)| f.as_str())
        .collect();
    (!refused.is_empty()).then(|| refused.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_subscriptions_are_named() {
        let filters = vec!["a/+/status".to_string(), "a/+/telemetry".to_string()];
        let codes = [
            SubscribeReasonCode::Success(QoS::AtLeastOnce),
            SubscribeReasonCode::Failure,
        ];
        assert_eq!(
            refused_filters(&codes, &filters).as_deref(),
            Some("a/+/telemetry")
        );
        assert_eq!(refused_filters(&codes[..1], &filters), None);
    }
}
