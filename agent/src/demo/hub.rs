//! The hub side: an MQTT subscriber on the demo broker that decodes every
//! envelope the gateway publishes, as the central system would, and prints
//! each record once (or writes it as a JSON line).
//!
//! It subscribes before the gateway starts, so no record can be published
//! before anyone listens. Arrivals are also handed to the demo, which
//! checks them against the ACKs the senders got.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use hl7edge_protocol::telemetry::Status;
use hl7edge_protocol::topic::{DEFAULT_PREFIX, all_records_filter};
use hl7edge_protocol::wire::Envelope;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS, SubscribeFilter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::console::Console;
use super::{DemoError, render};

/// How long the subscriber tries to reach the broker at start.
const CONNECT_WITHIN: Duration = Duration::from_secs(5);

/// One record received: `(source, control id)` and its record id.
#[derive(Debug, Clone)]
struct Arrival {
    key: (String, String),
    id: Uuid,
}

/// Records received, by `(source, control id)`: the distinct record ids.
pub(super) type Arrivals = HashMap<(String, String), HashSet<Uuid>>;

/// The running subscriber.
pub(super) struct Hub {
    client: AsyncClient,
    task: JoinHandle<()>,
    incoming: mpsc::UnboundedReceiver<Arrival>,
    arrivals: Arrivals,
}

impl Hub {
    /// Connects to the broker (retrying while it starts) and subscribes to
    /// every gateway's records and status.
    pub async fn connect(addr: SocketAddr, console: Console) -> Result<Hub, DemoError> {
        let deadline = Instant::now() + CONNECT_WITHIN;
        loop {
            let (client, mut eventloop) = AsyncClient::new(options(addr), 64);
            let subscribed = match client.subscribe_many(filters()).await {
                Ok(()) => wait_subscribed(&mut eventloop, deadline).await,
                Err(e) => Err(e.to_string()),
            };
            match subscribed {
                Ok(()) => {
                    let (tx, incoming) = mpsc::unbounded_channel();
                    let task = tokio::spawn(pump(eventloop, console, tx));
                    return Ok(Hub {
                        client,
                        task,
                        incoming,
                        arrivals: Arrivals::new(),
                    });
                }
                Err(cause) if Instant::now() >= deadline => {
                    return Err(DemoError::Hub { addr, cause });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Waits until every `(source, control id)` in `expected` arrived or
    /// `timeout` passed, then listens `settle` longer for anything extra
    /// (a message stored twice would show up then). True when all arrived.
    pub async fn wait_for(
        &mut self,
        expected: &BTreeSet<(String, String)>,
        timeout: Duration,
        settle: Duration,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while !expected.iter().all(|k| self.arrivals.contains_key(k)) {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(a)) => self.note(a),
                Ok(None) | Err(_) => return false,
            }
        }
        let settle_end = Instant::now() + settle;
        while let Ok(Some(a)) = tokio::time::timeout_at(settle_end, self.incoming.recv()).await {
            self.note(a);
        }
        true
    }

    /// What arrived so far (as collected by [`Hub::wait_for`]).
    pub fn arrivals(&self) -> &Arrivals {
        &self.arrivals
    }

    /// Stops collecting arrivals; records are still printed.
    pub fn stop_collecting(&mut self) {
        self.incoming.close();
    }

    /// Disconnects, after giving the gateway's last status `grace` to arrive.
    pub async fn stop(self, grace: Duration) {
        tokio::time::sleep(grace).await;
        let _ = self.client.disconnect().await;
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }

    fn note(&mut self, a: Arrival) {
        self.arrivals.entry(a.key).or_default().insert(a.id);
    }
}

fn options(addr: SocketAddr) -> MqttOptions {
    let mut o = MqttOptions::new("demo-hub", addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(5));
    o.set_clean_session(true);
    o.set_max_packet_size(16 << 20, 16 << 20);
    o
}

fn filters() -> Vec<SubscribeFilter> {
    vec![
        SubscribeFilter::new(all_records_filter(DEFAULT_PREFIX, None), QoS::AtLeastOnce),
        SubscribeFilter::new(format!("{DEFAULT_PREFIX}/+/+/+/status"), QoS::AtLeastOnce),
    ]
}

async fn wait_subscribed(eventloop: &mut EventLoop, deadline: Instant) -> Result<(), String> {
    loop {
        match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Err(_) => return Err("no SUBACK in time".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => return Ok(()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Drives the connection: prints what arrives and hands records over.
async fn pump(mut eventloop: EventLoop, console: Console, tx: mpsc::UnboundedSender<Arrival>) {
    let mut printed = HashSet::new();
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                received(&p.topic, &p.payload, &console, &tx, &mut printed);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                console.line(format!("  hub      lost the broker connection: {e}"));
                return;
            }
        }
    }
}

fn received(
    topic: &str,
    payload: &[u8],
    console: &Console,
    tx: &mpsc::UnboundedSender<Arrival>,
    printed: &mut HashSet<Uuid>,
) {
    if let Some(gateway) = topic.strip_suffix("/status") {
        let gateway = gateway
            .strip_prefix(DEFAULT_PREFIX)
            .unwrap_or(gateway)
            .trim_start_matches('/');
        console.line(status_line(gateway, payload));
        return;
    }
    let envelope = match Envelope::decode(payload) {
        Ok(e) => e,
        Err(e) => {
            console.line(format!("  hub      <- undecodable payload on {topic}: {e}"));
            return;
        }
    };
    for entry in &envelope.entries {
        if printed.insert(entry.id) {
            if console.is_json() {
                console.json_line(&render::record_json(&envelope, entry));
            } else {
                console.block(&render::record_lines(&envelope, entry));
            }
        }
        let key = (
            envelope.source.clone(),
            entry.record.header.control_id.to_string(),
        );
        let _ = tx.send(Arrival { key, id: entry.id });
    }
}

fn status_line(gateway: &str, payload: &[u8]) -> String {
    match Status::decode(payload) {
        Ok(s) if s.online => format!(
            "  hub      <- status    gateway {gateway} is online (hl7edge {})",
            s.version
        ),
        Ok(s) => format!(
            "  hub      <- status    gateway {gateway} is offline ({})",
            s.reason.as_deref().unwrap_or("no reason given")
        ),
        Err(e) => format!("  hub      <- status    undecodable status of {gateway}: {e}"),
    }
}
