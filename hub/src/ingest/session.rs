//! The ingest's broker session: persistent, manual acknowledgements, and a
//! fresh rumqttc client for every connection.
//!
//! Why a fresh client per connection: rumqttc keeps requests queued in its
//! client channel across a reconnect and sends them on the next
//! connection. A PUBACK queued for a packet id of the old connection would
//! then acknowledge whatever the broker sends under that id on the new one,
//! possibly a message not yet committed. Here every publish carries the
//! client of the connection it arrived on ([`Delivery::client`]); when that
//! connection ends its event loop is dropped, so an acknowledgement sent
//! through its client fails instead of reaching the new connection. The
//! broker redelivers those messages on the new connection (same session),
//! where they are committed again (a no-op) and acknowledged.
//!
//! Invariants:
//! - filters are subscribed after every CONNACK (a broker that lost the
//!   session gets them back);
//! - the first connection failing, or a refused subscription, is fatal
//!   (configuration: URL, certificates, ACL); later losses reconnect with
//!   backoff (1 s doubling to 30 s);
//! - the driver never waits for the ingest: it keeps polling (keep-alive,
//!   acknowledgements and receipts keep flowing while a batch waits for
//!   PostgreSQL). What it hands over waits in an unbounded channel, bounded
//!   in practice by the broker's in-flight window for this client (QoS 1
//!   messages are acknowledged only after their commit); QoS 0 messages,
//!   which have no such window, are dropped with a warning beyond
//!   `qos0_limit` waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rumqttc::{
    AsyncClient, ClientError, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS,
    SubscribeFilter,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::mqtt::{explain, explain_lost};

/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Requests (acks, receipts) queued per client.
const CLIENT_CAPACITY: usize = 1024;

/// One message, with the client of the connection it arrived on.
#[derive(Debug)]
pub struct Delivery {
    /// The message.
    pub publish: Publish,
    /// Acknowledge through this client only.
    pub client: AsyncClient,
}

/// What the driver reports.
#[derive(Debug)]
pub enum SessionEvent {
    /// Connected and subscribed; `client` publishes on this connection.
    Connected {
        /// The client of the new connection.
        client: AsyncClient,
        /// Whether the broker kept the session.
        session_present: bool,
    },
    /// A message arrived.
    Message(Delivery),
    /// The connection was lost; reconnecting.
    Lost(String),
    /// Stopped for good; the text says what to fix.
    Fatal(String),
}

/// The running session.
pub struct Session {
    events: mpsc::UnboundedReceiver<SessionEvent>,
    driver: JoinHandle<()>,
    qos0_waiting: Arc<AtomicUsize>,
}

impl Session {
    /// Starts connecting with `options` and subscribing to `filters`.
    pub fn start(
        options: MqttOptions,
        url: String,
        filters: Vec<String>,
        qos0_limit: usize,
        retire: bool,
    ) -> Session {
        let (tx, events) = mpsc::unbounded_channel();
        let qos0_waiting = Arc::new(AtomicUsize::new(0));
        let out = Out {
            tx,
            qos0_waiting: qos0_waiting.clone(),
            qos0_limit,
            retire,
        };
        let driver = tokio::spawn(drive(options, url, filters, out));
        Session {
            events,
            driver,
            qos0_waiting,
        }
    }

    /// The next event; `None` once the driver stopped. Cancellation-safe.
    pub async fn next(&mut self) -> Option<SessionEvent> {
        let event = self.events.recv().await;
        if let Some(SessionEvent::Message(d)) = &event
            && d.publish.qos == QoS::AtMostOnce
        {
            self.qos0_waiting.fetch_sub(1, Ordering::Relaxed);
        }
        event
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Ends the persistent session of `options`' client id: connects with a
/// clean session (the broker discards the old one) and disconnects.
pub async fn end_session(mut options: MqttOptions, url: &str) -> Result<(), String> {
    options.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    let ended = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client.try_disconnect().map_err(|e| e.to_string())?;
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(explain(url, &e)),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), ended)
        .await
        .map_err(|_| format!("{url} did not answer within 30 s"))?
}

/// Acknowledges a QoS 1 message (packet `pkid`) through `client`.
pub async fn ack(client: &AsyncClient, qos: QoS, pkid: u16) -> Result<(), ClientError> {
    let mut publish = Publish::new("", qos, Vec::<u8>::new());
    publish.pkid = pkid;
    client.ack(&publish).await
}

/// The driver's side of the event channel.
struct Out {
    tx: mpsc::UnboundedSender<SessionEvent>,
    qos0_waiting: Arc<AtomicUsize>,
    qos0_limit: usize,
    /// Unsubscribe instead of subscribing (`--retire`).
    retire: bool,
}

impl Out {
    /// Hands an event over; false when the ingest is gone.
    fn send(&self, event: SessionEvent) -> bool {
        if let SessionEvent::Message(d) = &event
            && d.publish.qos == QoS::AtMostOnce
        {
            if self.qos0_waiting.load(Ordering::Relaxed) >= self.qos0_limit {
                tracing::warn!(topic = %d.publish.topic, "QoS 0 message dropped: too many waiting (gateways publish at QoS 1)");
                return true;
            }
            self.qos0_waiting.fetch_add(1, Ordering::Relaxed);
        }
        self.tx.send(event).is_ok()
    }
}

async fn drive(options: MqttOptions, url: String, filters: Vec<String>, tx: Out) {
    let mut connected_once = false;
    let mut backoff = Duration::from_secs(1);
    loop {
        let (client, mut eventloop) = AsyncClient::new(options.clone(), CLIENT_CAPACITY);
        let mut network = rumqttc::NetworkOptions::new();
        network.set_connection_timeout(10);
        eventloop.set_network_options(network);
        let outcome = connection(&mut eventloop, &client, &url, &filters, &tx).await;
        drop(eventloop);
        let why = match outcome {
            Ended::Closed => return,
            Ended::Failed {
                error,
                was_connected,
            } if !connected_once && !was_connected => {
                tx.send(SessionEvent::Fatal(error));
                return;
            }
            Ended::Failed {
                error,
                was_connected,
            } => {
                if was_connected {
                    backoff = Duration::from_secs(1);
                }
                error
            }
        };
        connected_once = true;
        if !tx.send(SessionEvent::Lost(why)) {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// How one connection ended.
enum Ended {
    /// The ingest went away or disconnected on purpose.
    Closed,
    /// The connection failed.
    Failed { error: String, was_connected: bool },
}

async fn connection(
    eventloop: &mut EventLoop,
    client: &AsyncClient,
    url: &str,
    filters: &[String],
    tx: &Out,
) -> Ended {
    let mut connected = false;
    loop {
        let event = match eventloop.poll().await {
            Ok(event) => event,
            Err(e) => {
                let error = if connected {
                    explain_lost(url, &e)
                } else {
                    explain(url, &e)
                };
                return Ended::Failed {
                    error,
                    was_connected: connected,
                };
            }
        };
        let report = match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                connected = true;
                let queued = if tx.retire {
                    filters
                        .iter()
                        .all(|f| client.try_unsubscribe(f.clone()).is_ok())
                } else {
                    let subs = filters
                        .iter()
                        .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                    client.try_subscribe_many(subs).is_ok()
                };
                if !queued {
                    SessionEvent::Fatal("could not queue the subscription".into())
                } else {
                    SessionEvent::Connected {
                        client: client.clone(),
                        session_present: ack.session_present,
                    }
                }
            }
            Event::Incoming(Packet::Publish(publish)) => SessionEvent::Message(Delivery {
                publish,
                client: client.clone(),
            }),
            Event::Incoming(Packet::SubAck(ack)) => {
                let refused: Vec<&str> = ack
                    .return_codes
                    .iter()
                    .zip(filters)
                    .filter(|(c, _)| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    .map(|(_, f)| f.as_str())
                    .collect();
                if refused.is_empty() {
                    tracing::info!(filters = ?filters, "subscribed");
                    continue;
                }
                SessionEvent::Fatal(format!(
                    "{url} refused the subscription to {} — check the broker's ACL for the ingest's certificate",
                    refused.join(", ")
                ))
            }
            Event::Incoming(Packet::UnsubAck(_)) => {
                tracing::info!(filters = ?filters, "unsubscribed (retiring): no new messages come to this session");
                continue;
            }
            Event::Outgoing(Outgoing::Disconnect) => return Ended::Closed,
            _ => continue,
        };
        let fatal = matches!(report, SessionEvent::Fatal(_));
        if !tx.send(report) || fatal {
            return Ended::Closed;
        }
    }
}
