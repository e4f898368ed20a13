//! The periodic heartbeat for central IT (see `hl7edge_protocol::telemetry`).
//!
//! The heartbeat task reads the agent's counters every `[telemetry]
//! interval` ([`collect`]), builds a [`Heartbeat`] ([`build`]) and hands the
//! encoded payload to the forwarder, which publishes it at QoS 1 on
//! `.../telemetry` through its own MQTT connection. The retained status and
//! the last will are the forwarder's (`forwarder::task`).
//!
//! Invariants:
//! - No PHI: the heartbeat holds counts, sizes, times, config names and
//!   terminology codes only.
//! - The data path never waits for telemetry: the hand-over holds one
//!   payload; while it is full or the hub is not connected, a heartbeat is
//!   skipped (the next one carries the cumulative counters anyway).
//! - Right after each connection to the hub the forwarder asks for a fresh
//!   heartbeat ([`HeartbeatInbox::connected`]), so the hub does not wait a
//!   whole interval to see a gateway that just came up.

pub mod build;
pub mod collect;
pub mod drift;
pub mod rhythm;

use std::sync::Arc;

use hl7edge_protocol::telemetry::{GatewayId, Heartbeat};
use tokio::sync::{Notify, mpsc, watch};
use tracing::{debug, info, warn};

use crate::config::{Config, HubTransport};

use build::{Identity, Trend};
use collect::{Collector, Probes};

/// The payload side of the hand-over: the heartbeat task's end.
#[derive(Debug)]
pub struct HeartbeatOutbox {
    payloads: mpsc::Sender<Vec<u8>>,
    connected: Arc<Notify>,
}

/// The forwarder's end of the hand-over.
#[derive(Debug)]
pub struct HeartbeatInbox {
    payloads: mpsc::Receiver<Vec<u8>>,
    connected: Arc<Notify>,
}

/// A connected pair: at most one encoded heartbeat waits in between.
pub fn channel() -> (HeartbeatOutbox, HeartbeatInbox) {
    let (tx, rx) = mpsc::channel(1);
    let connected = Arc::new(Notify::new());
    (
        HeartbeatOutbox {
            payloads: tx,
            connected: Arc::clone(&connected),
        },
        HeartbeatInbox {
            payloads: rx,
            connected,
        },
    )
}

impl HeartbeatInbox {
    /// The next encoded heartbeat; `None` once the heartbeat task is gone.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.payloads.recv().await
    }

    /// Tells the heartbeat task that the hub connection is (re)established,
    /// so it sends one heartbeat now.
    pub fn connected(&self) {
        self.connected.notify_one();
    }
}

impl HeartbeatOutbox {
    /// Offers a payload without waiting; false when the forwarder has not
    /// taken the previous one (or is gone).
    pub fn offer(&self, payload: Vec<u8>) -> bool {
        self.payloads.try_send(payload).is_ok()
    }
}

/// What the heartbeat reports that does not change while the agent runs,
/// from the configuration; the client certificate's expiry is read here,
/// once (a warning, not an error, when it cannot be read).
pub fn identity(
    config: &Config,
    version: &str,
    started_at_ms: i64,
    recovery: Option<String>,
) -> Identity {
    let cert_not_after_ms = match &config.hub.transport {
        HubTransport::Tls(tls) => match crate::device_cert::file_dates(&tls.cert) {
            Ok(dates) => {
                let ms = dates.not_after.as_millisecond();
                info!(
                    days_left = build::cert_days_left(ms, crate::store::now_ms()),
                    "client certificate expiry read"
                );
                Some(ms)
            }
            Err(e) => {
                warn!(cause = %e, "client certificate expiry unknown; telemetry will not report it");
                None
            }
        },
        _ => None,
    };
    Identity {
        gateway: GatewayId {
            org: config.gateway.org.clone(),
            site: config.gateway.site.clone(),
            id: config.gateway.id.clone(),
        },
        version: version.to_string(),
        started_at_ms,
        interval: config.telemetry.interval,
        max_bytes: config.storage.max_bytes,
        cert_not_after_ms,
        recovery,
        custody: config.hub.custody.as_str(),
    }
}

/// Builds and hands over a heartbeat every `identity.interval`, and once
/// after each connection to the hub, until `shutdown` turns true.
pub async fn run(
    identity: Identity,
    probes: Probes,
    outbox: HeartbeatOutbox,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut collector = Collector::new(probes);
    let mut trend = Trend::default();
    let mut ticks = tokio::time::interval(identity.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = outbox.connected.notified() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let heartbeat = next(&identity, &mut collector, &mut trend).await;
        match heartbeat.encode().map(|payload| outbox.offer(payload)) {
            Ok(true) => debug!(
                received = heartbeat.counters.received,
                queue = heartbeat.queue.depth,
                "heartbeat handed to the forwarder"
            ),
            Ok(false) => debug!("previous heartbeat not yet taken; this one is skipped"),
            Err(e) => warn!(cause = %e, "heartbeat could not be encoded"),
        }
    }
}

async fn next(identity: &Identity, collector: &mut Collector, trend: &mut Trend) -> Heartbeat {
    let snapshot = collector.snapshot().await;
    let (hours, alarm) = trend.observe(&snapshot, identity.max_bytes);
    build::heartbeat(identity, &snapshot, hours, alarm)
}

#[cfg(test)]
mod phi_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_hand_over_holds_one_payload_and_never_waits() {
        let (outbox, mut inbox) = channel();
        assert!(outbox.offer(vec![1]));
        assert!(!outbox.offer(vec![2]), "full: the newer one is skipped");
        assert_eq!(inbox.recv().await, Some(vec![1]));
        assert!(outbox.offer(vec![3]));
        assert_eq!(inbox.recv().await, Some(vec![3]));
        drop(outbox);
        assert_eq!(inbox.recv().await, None);
    }

    #[tokio::test]
    async fn a_connect_signal_sent_before_anyone_waits_is_kept() {
        let (outbox, inbox) = channel();
        inbox.connected();
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            outbox.connected.notified(),
        )
        .await
        .expect("the connect signal was lost");
    }
}
