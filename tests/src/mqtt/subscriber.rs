//! A subscriber with a persistent session that records every message it receives, standing in
//! for the hub.
//!
//! Invariants:
//! - the session is persistent (clean start off, session expiry "never"), so a broker with
//!   persistence queues messages for it while it is disconnected and delivers them when it (or a
//!   new [`Subscriber`] with the same client id) comes back;
//! - after any CONNACK without a session (first connect, broker restarted without persistence) it
//!   subscribes again at QoS 1; with a session present it does not, so retained messages are not
//!   replayed twice;
//! - messages are recorded in arrival order, duplicates included (QoS 1 is at-least-once), with
//!   the retain flag as published (MQTT v5 "retain as published").

use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{ConnAck, Filter, Packet, Publish};
use rumqttc::v5::{AsyncClient, Event, EventLoop};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ClientOptions, MqttError};

/// Pause between reconnection attempts after a connection error.
const RETRY: Duration = Duration::from_millis(50);

/// One message as the subscriber received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The topic it was published to.
    pub topic: String,
    /// The payload bytes, unchanged.
    pub payload: Vec<u8>,
    /// The retain flag as published.
    pub retain: bool,
    /// Whether the broker marked it as a redelivery.
    pub dup: bool,
    /// MQTT v5 response topic, if the publisher set one.
    pub response_topic: Option<String>,
    /// MQTT v5 correlation data, if the publisher set it.
    pub correlation_data: Option<Vec<u8>>,
    /// MQTT v5 user properties.
    pub user_properties: Vec<(String, String)>,
    /// When the subscriber received it (wall clock, for latency figures).
    pub received_at: std::time::SystemTime,
}

impl Received {
    fn from_publish(publish: &Publish) -> Received {
        let properties = publish.properties.as_ref();
        Received {
            topic: String::from_utf8_lossy(&publish.topic).into_owned(),
            payload: publish.payload.to_vec(),
            retain: publish.retain,
            dup: publish.dup,
            response_topic: properties.and_then(|p| p.response_topic.clone()),
            correlation_data: properties
                .and_then(|p| p.correlation_data.as_ref().map(|d| d.to_vec())),
            user_properties: properties
                .map(|p| p.user_properties.clone())
                .unwrap_or_default(),
            received_at: std::time::SystemTime::now(),
        }
    }
}

/// What the background task has seen so far.
#[derive(Debug, Default)]
struct State {
    messages: Vec<Received>,
    connacks: u32,
    subacks: u32,
    last_error: Option<String>,
}

/// A persistent-session subscriber; its event loop runs in a background task.
pub struct Subscriber {
    client: AsyncClient,
    state: watch::Receiver<State>,
    task: JoinHandle<()>,
}

impl Subscriber {
    /// Connects to the broker at `addr` with a persistent session, subscribes to `filter` at
    /// QoS 1 unless the broker still has the session, and returns once that is done.
    pub async fn connect(
        addr: SocketAddr,
        options: &ClientOptions,
        filter: &str,
    ) -> Result<Subscriber, MqttError> {
        let mut mqtt = options.to_mqtt(addr, false)?;
        mqtt.set_session_expiry_interval(Some(u32::MAX));
        let (client, events) = AsyncClient::new(mqtt, 1024);
        let (tx, state) = watch::channel(State::default());
        let task = tokio::spawn(run(client.clone(), events, filter.to_owned(), tx));
        let subscriber = Subscriber {
            client,
            state,
            task,
        };
        subscriber.wait_ready().await?;
        Ok(subscriber)
    }

    /// A copy of every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        self.state.borrow().messages.clone()
    }

    /// Calls `f` with the messages received so far, without copying them.
    pub fn with_messages<T>(&self, f: impl FnOnce(&[Received]) -> T) -> T {
        f(&self.state.borrow().messages)
    }

    /// How many messages have arrived.
    pub fn count(&self) -> usize {
        self.state.borrow().messages.len()
    }

    /// How many successful connections (CONNACKs) the subscriber has had.
    pub fn connections(&self) -> u32 {
        self.state.borrow().connacks
    }

    /// The latest connection error, if any (kept after a successful reconnect).
    pub fn last_error(&self) -> Option<String> {
        self.state.borrow().last_error.clone()
    }

    /// Waits until at least `count` messages have arrived; returns a copy of all of them.
    pub async fn wait_for(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Received>, MqttError> {
        self.wait_until(timeout, |messages| messages.len() >= count)
            .await
            .map_err(|_| {
                let state = self.state.borrow();
                MqttError::TooFew {
                    wanted: count,
                    got: state.messages.len(),
                    after: timeout,
                    last_error: state.last_error.clone(),
                }
            })?;
        Ok(self.messages())
    }

    /// Waits until `done` holds for the messages received so far.
    ///
    /// `done` runs while the subscriber's state is locked, and the subscriber cannot record the
    /// next message until it returns: keep it cheap (a count, a look at the newest messages).
    /// Heavy checks over everything received belong outside, as in
    /// [`crate::rig::wait_delivered`].
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[Received]) -> bool,
    ) -> Result<(), MqttError> {
        let mut state = self.state.clone();
        tokio::time::timeout(timeout, state.wait_for(|state| done(&state.messages)))
            .await
            .map_err(|_| MqttError::Timeout {
                what: "subscriber condition".into(),
                after: timeout,
            })?
            .map(|_| ())
            .map_err(|_| MqttError::Timeout {
                what: "subscriber task (it ended)".into(),
                after: timeout,
            })
    }

    /// Waits until the subscriber has connected at least `connections` times (and is subscribed
    /// if that connection had no session).
    pub async fn wait_connected(
        &self,
        connections: u32,
        timeout: Duration,
    ) -> Result<(), MqttError> {
        let mut state = self.state.clone();
        let ready = state.wait_for(|s| s.connacks >= connections && s.subacks > 0);
        tokio::time::timeout(timeout, ready)
            .await
            .map_err(|_| MqttError::Timeout {
                what: format!("subscriber connection #{connections}"),
                after: timeout,
            })?
            .map(|_| ())
            .map_err(|_| MqttError::Timeout {
                what: "subscriber task (it ended)".into(),
                after: timeout,
            })
    }

    /// Sends DISCONNECT (the broker keeps the session) and stops the background task.
    pub async fn disconnect(mut self) -> Result<(), MqttError> {
        self.client.disconnect().await?;
        let after = Duration::from_secs(5);
        tokio::time::timeout(after, &mut self.task)
            .await
            .map(|_| ())
            .map_err(|_| MqttError::Timeout {
                what: "subscriber DISCONNECT".into(),
                after,
            })
    }

    async fn wait_ready(&self) -> Result<(), MqttError> {
        let after = Duration::from_secs(10);
        let mut state = self.state.clone();
        let ready = state.wait_for(|s| s.connacks > 0 && s.subacks > 0);
        match tokio::time::timeout(after, ready).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(MqttError::Timeout {
                what: format!(
                    "subscriber connection (last error: {:?})",
                    self.last_error()
                ),
                after,
            }),
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The background task: polls the event loop forever, recording what arrives.
async fn run(
    client: AsyncClient,
    mut events: EventLoop,
    filter: String,
    state: watch::Sender<State>,
) {
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                state.send_modify(|s| s.messages.push(Received::from_publish(&publish)));
            }
            Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                on_connack(&client, &connack, &filter, &state)
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => state.send_modify(|s| s.subacks += 1),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(err) => {
                state.send_modify(|s| s.last_error = Some(err.to_string()));
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

fn on_connack(client: &AsyncClient, connack: &ConnAck, filter: &str, state: &watch::Sender<State>) {
    let resubscribe = !connack.session_present;
    state.send_modify(|s| {
        s.connacks += 1;
        if resubscribe {
            s.subacks = 0;
        } else {
            // The broker kept the subscription; count it as subscribed.
            s.subacks = s.subacks.max(1);
        }
    });
    if resubscribe {
        let mut filter = Filter::new(filter, QoS::AtLeastOnce);
        filter.preserve_retain = true;
        if let Err(err) = client.try_subscribe_many([filter]) {
            state.send_modify(|s| s.last_error = Some(format!("subscribe: {err}")));
        }
    }
}
