//! The forwarder task: drives one rumqttc connection at a time.
//!
//! Each connection generation: build the client (mutual TLS, persistent
//! session, last will = offline status, packet size limits from
//! `hub.max_payload`), run rumqttc's event loop in its own task that hands
//! events over a channel (so no `poll()` is ever cancelled half-way),
//! publish the retained online status once connected, then read queued
//! rows whenever the connection state (`state.rs`) asks for a read, split
//! them into envelopes by count and bytes (`split.rs`), and hand the
//! publishes to the client; a row that can never fit a payload is set
//! aside (parked) instead. A PUBACK hands its rows to [`Deletes`], which
//! deletes them through the store writer without stalling the event loop.
//! Heartbeats handed over by the telemetry task go out on the same
//! connection at QoS 1; they take a packet id in the same FIFO as record
//! publishes (as a publish without rows), so their PUBACKs never count as
//! forwarded records. Any error, a refused PUBACK, or no progress for too
//! long ends the generation; the next one starts after an exponential,
//! jittered backoff and re-reads every unacknowledged row from the store.
//!
//! Every decision (when to read, how much, when the connection is wedged,
//! what the linger waits for) is [`ForwardState`]'s, with the time passed
//! in; this file only carries out IO.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hl7edge_protocol::telemetry::Status;
use hl7edge_protocol::topic::GatewayTopics;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS, Transport};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::config::{Hub, HubTransport};
use crate::forwarder::backoff::Backoff;
use crate::forwarder::deletes::{self, Deletes};
use crate::forwarder::envelope::{self, Outgoing};
use crate::forwarder::split::{self, Bounds, Step};
use crate::forwarder::state::{Effect, ForwardState, Limits};
use crate::store::{PendingQuery, PendingRecord, StoreHandle, StoreReader};
use crate::telemetry::HeartbeatInbox;

/// How long shutdown waits for outstanding PUBACKs.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);
/// The period of the no-progress check, the watchdog heartbeat and the
/// re-read that finds rows written by another process.
const TICK: Duration = Duration::from_millis(500);
/// Largest packet accepted from the broker. The agent subscribes to
/// nothing, so only acknowledgments and pings come in.
const MAX_INCOMING_PACKET: usize = 64 << 10;
/// What a PUBLISH adds to its payload: fixed header (5), topic length (2)
/// and the longest topic MQTT allows (65,535), packet id (2).
const PUBLISH_OVERHEAD: usize = 5 + 2 + 65_535 + 2;

/// What the forwarder needs to know.
#[derive(Debug, Clone)]
pub struct ForwarderSettings {
    /// `org/site/id`, written into every envelope.
    pub gateway_name: String,
    /// Topic names of this gateway.
    pub topics: GatewayTopics,
    /// Hub connection settings.
    pub hub: Hub,
    /// Sources whose raw HL7 is forwarded with each record.
    pub include_raw: HashSet<String>,
    /// How each interface normalizes now: rows an older build queued are
    /// normalized again with it before they are sent (see `upgrade`).
    pub interfaces: std::sync::Arc<crate::upgrade::Interfaces>,
    /// Agent version for the status message.
    pub version: String,
    /// Process start, Unix ms.
    pub started_at_ms: i64,
}

/// Counters the forwarder shares with telemetry and the watchdog.
#[derive(Debug, Default)]
pub struct ForwarderMetrics {
    /// Records PUBACKed since start.
    pub forwarded: std::sync::atomic::AtomicU64,
    /// Connections established since start.
    pub connects: std::sync::atomic::AtomicU64,
    /// Last time the forwarder made progress or was idle-healthy, Unix ms.
    pub heartbeat_ms: std::sync::atomic::AtomicU64,
}

/// Why the forwarder stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The hub TLS files could not be loaded (fix the config).
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The store could not be read.
    #[error("reading the queue failed: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Runs until `shutdown` turns true. Returns an error only for problems a
/// restart cannot fix by itself.
pub async fn run(
    settings: ForwarderSettings,
    store: StoreHandle,
    metrics: std::sync::Arc<ForwarderMetrics>,
    mut heartbeats: HeartbeatInbox,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ForwardError> {
    let mut reader: Option<StoreReader> = None;
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let options = mqtt_options(&settings)?;
        let current = match reader.take() {
            Some(r) => r,
            None => store.open_reader()?,
        };
        let outcome = Generation::new(&settings, &store, &metrics, current, options)
            .run(&mut heartbeats, &mut shutdown)
            .await;
        reader = outcome.reader;
        match outcome.end {
            End::Shutdown => return Ok(()),
            End::Lost { healthy } => {
                if healthy {
                    backoff.reset();
                }
                let delay = backoff.next_delay(random_u64());
                info!(
                    delay_ms = delay.as_millis() as u64,
                    "reconnecting to the hub after backoff"
                );
                let until = tokio::time::Instant::now() + delay;
                // Keep the heartbeat moving while waiting: waiting is not stuck.
                while tokio::time::Instant::now() < until && !*shutdown.borrow() {
                    beat(&metrics);
                    let step = until.min(tokio::time::Instant::now() + Duration::from_millis(500));
                    tokio::select! {
                        _ = tokio::time::sleep_until(step) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
    }
}

fn mqtt_options(s: &ForwarderSettings) -> Result<MqttOptions, ForwardError> {
    let mut o = MqttOptions::new(s.hub.client_id.clone(), s.hub.host.clone(), s.hub.port);
    o.set_keep_alive(s.hub.keep_alive);
    o.set_clean_session(false);
    o.set_inflight(s.hub.inflight.get());
    o.set_request_channel_capacity(usize::from(s.hub.inflight.get()) * 2 + 16);
    // Every payload the forwarder builds is at most `max_payload`, so the
    // client's own limit never refuses one (a refused packet used to end
    // the connection and be rebuilt after every reconnect).
    o.set_max_packet_size(
        MAX_INCOMING_PACKET,
        s.hub.max_payload.saturating_add(PUBLISH_OVERHEAD),
    );
    let offline = status_payload(s, false, Some("connection lost"));
    o.set_last_will(LastWill::new(
        s.topics.status(),
        offline,
        QoS::AtLeastOnce,
        true,
    ));
    if let HubTransport::Tls(tls) = &s.hub.transport {
        let config = crate::tls::client_config(&tls.ca, &tls.cert, &tls.key)?;
        o.set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(config),
        ));
    }
    Ok(o)
}

fn status_payload(s: &ForwarderSettings, online: bool, reason: Option<&str>) -> Vec<u8> {
    Status {
        online,
        version: s.version.clone(),
        started_at_ms: s.started_at_ms,
        reason: reason.map(str::to_string),
    }
    .encode()
    .unwrap_or_default()
}

enum End {
    Shutdown,
    Lost { healthy: bool },
}

struct Outcome {
    /// `None` only if a blocking read task died; the next generation reopens.
    reader: Option<StoreReader>,
    end: End,
}

/// One connection's lifetime: the IO around a [`ForwardState`]. Each
/// `select!` arm hands its event to the state (with the time) and carries
/// out what it answers.
struct Generation<'a> {
    s: &'a ForwarderSettings,
    store: &'a StoreHandle,
    metrics: &'a ForwarderMetrics,
    reader: Option<StoreReader>,
    options: Option<MqttOptions>,
    state: ForwardState,
    /// PUBACKed rows on their way out of the store.
    deletes: Deletes,
    /// True while deletes are refused (full disk), to log it once.
    delete_retrying: bool,
}

impl<'a> Generation<'a> {
    fn new(
        s: &'a ForwarderSettings,
        store: &'a StoreHandle,
        metrics: &'a ForwarderMetrics,
        reader: StoreReader,
        options: MqttOptions,
    ) -> Self {
        let limits = Limits::new(
            s.hub.inflight.get(),
            s.hub.batch_max_records.get(),
            s.hub.max_payload,
            s.hub.keep_alive,
        );
        Generation {
            s,
            store,
            metrics,
            reader: Some(reader),
            options: Some(options),
            state: ForwardState::new(limits, now()),
            deletes: Deletes::new(store.clone()),
            delete_retrying: false,
        }
    }

    async fn run(
        mut self,
        heartbeats: &mut HeartbeatInbox,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Outcome {
        let Some(options) = self.options.take() else {
            return self.finish(End::Lost { healthy: false }).await;
        };
        let (client, eventloop) =
            AsyncClient::new(options.clone(), options.request_channel_capacity());
        let (events_tx, mut events) = mpsc::channel(256);
        let driver = tokio::spawn(drive(eventloop, events_tx, self.s.hub.connect_timeout));
        let mut committed = self.store.committed();
        let mut tick = tokio::time::interval(TICK);
        let end = loop {
            if let Err(e) = self.fill(&client).await {
                error!(cause = %e, "reading the queue failed");
                break End::Lost { healthy: false };
            }
            tokio::select! {
                ev = events.recv() => if let Some(end) = self.on_event(ev, &client, heartbeats) {
                    break end;
                },
                done = self.deletes.next_done() => if let Some(end) = self.deleted(done) {
                    break end;
                },
                _ = committed.changed() => self.state.on_commit(now()),
                () = sleep_until(self.state.next_timer()) => self.state.on_timer(now()),
                Some(payload) = heartbeats.recv() => self.publish_heartbeat(&client, payload),
                _ = tick.tick() => if let Some(end) = self.on_tick() {
                    break end;
                },
                _ = shutdown.changed() => {
                    self.flush(&client, &mut events, heartbeats).await;
                    break End::Shutdown;
                }
            }
        };
        driver.abort();
        self.finish(end).await
    }

    /// One event of the MQTT event loop (`None`: the loop ended).
    fn on_event(
        &mut self,
        event: Option<Result<Event, rumqttc::ConnectionError>>,
        client: &AsyncClient,
        heartbeats: &HeartbeatInbox,
    ) -> Option<End> {
        let healthy = self.state.proved_healthy();
        match event {
            Some(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                let end = self.connected(ack.session_present, client);
                heartbeats.connected();
                end
            }
            Some(Ok(Event::Outgoing(rumqttc::Outgoing::Publish(pkid)))) => {
                let effect = self.state.on_outgoing_publish(pkid);
                self.apply(effect)
            }
            Some(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                let effect = self.state.on_puback(ack.pkid, true, now());
                self.apply(effect)
            }
            Some(Ok(_)) => None,
            Some(Err(e)) => {
                let connected = self.state.is_connected();
                warn!(cause = %e, connected, "hub connection failed");
                Some(End::Lost { healthy })
            }
            None => Some(End::Lost { healthy }),
        }
    }

    /// The broker accepted the connection: publish the retained online
    /// status (it takes its packet id like any publish).
    fn connected(&mut self, session_present: bool, client: &AsyncClient) -> Option<End> {
        self.state.on_connack(now());
        self.metrics
            .connects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        info!(session_present, "connected to the hub");
        let online = status_payload(self.s, true, None);
        self.state.requested_other(online.len());
        match client.try_publish(self.s.topics.status(), QoS::AtLeastOnce, true, online) {
            Ok(()) => None,
            Err(_) => Some(End::Lost { healthy: false }),
        }
    }

    /// The periodic tick: the watchdog's heartbeat, the no-progress rule,
    /// and refused deletes tried again.
    fn on_tick(&mut self) -> Option<End> {
        self.heartbeat();
        if let Effect::Reconnect(why) = self.state.on_tick(now()) {
            warn!(
                reason = why,
                outstanding = self.state.outstanding(),
                outstanding_bytes = self.state.outstanding_bytes(),
                patience_s = self.state.patience().as_secs(),
                "rebuilding the hub connection"
            );
            return Some(End::Lost { healthy: false });
        }
        self.deletes.retry();
        None
    }

    /// Counts rows whose delete committed. A delete refused because the
    /// disk is full or the database busy is retried on the next tick (the
    /// connection stays up: deletes are what frees the space); any other
    /// failed delete ends the connection (its rows stay queued and are
    /// published again).
    fn deleted(&mut self, done: Result<usize, crate::store::StoreError>) -> Option<End> {
        match done {
            Ok(rows) => {
                if std::mem::take(&mut self.delete_retrying) {
                    info!("records are marked as forwarded again");
                }
                self.metrics
                    .forwarded
                    .fetch_add(rows as u64, std::sync::atomic::Ordering::Relaxed);
                None
            }
            Err(e) if deletes::is_retryable(&e) => {
                if self.delete_retrying {
                    debug!(cause = %e, waiting = self.deletes.backlog(), "delete still refused; retrying");
                } else {
                    warn!(cause = %e, waiting = self.deletes.backlog(), "could not mark records as forwarded yet; retrying every tick");
                }
                self.delete_retrying = true;
                None
            }
            Err(e) => {
                error!(cause = %e, "could not mark records as forwarded");
                Some(End::Lost { healthy: false })
            }
        }
    }

    /// Lets the deletes of PUBACKed rows commit (so the next connection does
    /// not publish them again), then forgets the connection's state.
    async fn finish(mut self, end: End) -> Outcome {
        let flushed = self.deletes.flush().await;
        let _ = self.deleted(flushed);
        self.state.reset(now());
        Outcome {
            reader: self.reader.take(),
            end,
        }
    }

    fn heartbeat(&self) {
        beat(self.metrics);
    }

    /// Publishes a telemetry heartbeat (QoS 1, not retained) if connected;
    /// otherwise, when the client's queue is full, or when it would not fit
    /// the hub's payload limit, it is skipped.
    fn publish_heartbeat(&mut self, client: &AsyncClient, payload: Vec<u8>) {
        if !self.state.is_connected() {
            debug!("not connected to the hub; heartbeat skipped");
            return;
        }
        let bytes = payload.len();
        if bytes > self.s.hub.max_payload {
            warn!(
                bytes,
                max_payload = self.s.hub.max_payload,
                "heartbeat larger than hub.max_payload; skipped"
            );
            return;
        }
        match client.try_publish(self.s.topics.telemetry(), QoS::AtLeastOnce, false, payload) {
            // Takes its place in the packet-id FIFO, carrying no rows.
            Ok(()) => self.state.requested_other(bytes),
            Err(e) => debug!(cause = %e, "client queue full; heartbeat skipped"),
        }
    }

    fn apply(&mut self, effect: Effect) -> Option<End> {
        match effect {
            Effect::None => None,
            Effect::Reconnect(why) => {
                warn!(reason = why, "rebuilding the hub connection");
                Some(End::Lost { healthy: false })
            }
            Effect::Forwarded(seqs) => {
                self.deletes.push(seqs);
                None
            }
        }
    }

    /// Reads the next rows after the cursor, if the state asks for a read,
    /// and hands their publishes to the client; rows that can never fit a
    /// payload are set aside.
    async fn fill(&mut self, client: &AsyncClient) -> Result<(), ForwardError> {
        let Some(read) = self
            .state
            .next_read(self.deletes.backlog(), deletes::MAX_BACKLOG_ROWS)
        else {
            return Ok(());
        };
        let query = PendingQuery {
            after_seq: read.after_seq,
            max_rows: read.max_rows,
            max_bytes: read.max_bytes,
            max_record: self.s.hub.max_payload,
            with_raw: !self.s.include_raw.is_empty(),
        };
        let Some(reader) = self.reader.take() else {
            return Ok(());
        };
        let interfaces = std::sync::Arc::clone(&self.s.interfaces);
        let (reader, rows) = tokio::task::spawn_blocking(move || {
            let rows = reader
                .pending_records(&query)
                .map(|rows| upgrade_rows(&reader, rows, &interfaces));
            (reader, rows)
        })
        .await
        .map_err(|_| ForwardError::Store(crate::store::StoreError::Closed))?;
        self.reader = Some(reader);
        let rows = rows?;
        self.state.on_read(rows.len());
        let gateway = self.s.gateway_name.as_str();
        let rows = rows
            .into_iter()
            .map(|row| Outgoing {
                with_raw: self.s.include_raw.contains(&row.source),
                row,
                gateway,
            })
            .collect();
        let bounds = Bounds {
            max_records: usize::from(self.s.hub.batch_max_records.get()),
            max_payload: self.s.hub.max_payload,
        };
        for step in split::plan(rows, bounds) {
            let handed = match step {
                Step::Publish(group) => self.publish(client, group),
                Step::SetAside { row, needs } => {
                    self.set_aside(&row.row, needs);
                    true
                }
            };
            if !handed {
                break;
            }
        }
        Ok(())
    }

    /// Publishes one planned group; false when the client's queue is full
    /// (the rows are read again shortly).
    fn publish(&mut self, client: &AsyncClient, group: Vec<Outgoing<'_>>) -> bool {
        let Some(first) = group.first() else {
            return true;
        };
        let topic = records_topic(&self.s.topics, &first.row.message_type);
        let built = envelope::build(&self.s.gateway_name, group);
        if !built.seqs.is_empty() {
            let bytes = built.payload.len();
            if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, built.payload) {
                debug!(cause = %e, "client queue full; retrying shortly");
                return false;
            }
            self.state.requested(built.seqs, bytes);
        }
        for seq in built.left_out {
            self.state.skipped(seq);
        }
        true
    }

    /// Sets aside a row that can never fit `hub.max_payload`: it stays in
    /// the store, marked parked (audited, alarmed in telemetry and
    /// `status`), and the rows behind it flow. Marking it is not awaited;
    /// if it fails the row is read and set aside again after the next
    /// reconnect.
    fn set_aside(&mut self, row: &PendingRecord, needs: usize) {
        let max_payload = self.s.hub.max_payload;
        warn!(
            seq = row.seq,
            record_id = %row.id,
            source = %row.source,
            needs,
            max_payload,
            "record can never fit one payload of hub.max_payload; set aside, kept unsent (hl7edge parked list)"
        );
        self.state.skipped(row.seq);
        let detail = format!(
            "record {} ({}) from {}: one payload would need {needs} bytes, hub.max_payload is \
             {max_payload}; kept, not sent",
            row.seq, row.id, row.source
        );
        let store = self.store.clone();
        let seq = row.seq;
        tokio::spawn(async move {
            if let Err(e) = store.park(seq, detail, crate::store::now_ms()).await {
                warn!(seq, cause = %e, "could not mark the record as set aside; it is set aside again after the next reconnect");
            }
        });
    }

    /// Waits briefly for outstanding PUBACKs, then says offline and disconnects.
    async fn flush(
        &mut self,
        client: &AsyncClient,
        events: &mut mpsc::Receiver<Result<Event, rumqttc::ConnectionError>>,
        heartbeats: &HeartbeatInbox,
    ) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_FLUSH;
        while self.state.outstanding() > 0 {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(Ok(event))) => {
                    let _ = self.on_event(Some(Ok(event)), client, heartbeats);
                }
                _ => break,
            }
        }
        if self.state.is_connected() {
            let offline = status_payload(self.s, false, Some("shutdown"));
            let _ = client.try_publish(self.s.topics.status(), QoS::AtLeastOnce, true, offline);
            let _ = client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                while let Some(Ok(_)) = events.recv().await {}
            })
            .await;
        }
    }
}

/// Makes the stored records of rows an older build queued current (see
/// `upgrade`): normalized again from their raw HL7 (read here when the row
/// was read without it), or carried over. A row that cannot be made current
/// is left as it is: `envelope::build` keeps it in the queue and logs why.
fn upgrade_rows(
    reader: &StoreReader,
    mut rows: Vec<PendingRecord>,
    interfaces: &crate::upgrade::Interfaces,
) -> Vec<PendingRecord> {
    let (mut renormalized, mut carried) = (0u64, 0u64);
    // A row read without its record (too big for any payload: it is set
    // aside as it is) is left alone.
    for row in rows
        .iter_mut()
        .filter(|r| !r.record.is_empty() && !crate::upgrade::is_current(&r.record))
    {
        let raw = if row.raw.is_empty() {
            reader.raw(row.seq).ok().flatten().unwrap_or_default()
        } else {
            row.raw.clone()
        };
        match crate::upgrade::upgrade(&row.record, &raw, interfaces.get(&row.source)) {
            Ok((record, how)) => {
                row.record_len = record.len();
                row.record = record;
                match how {
                    crate::upgrade::Upgraded::Renormalized => renormalized += 1,
                    crate::upgrade::Upgraded::CarriedOver => carried += 1,
                }
            }
            Err(e) => {
                warn!(seq = row.seq, cause = %e, "a record queued by another build cannot be made current");
            }
        }
    }
    if renormalized + carried > 0 {
        info!(
            renormalized,
            carried_over = carried,
            "records queued by an older build made current before sending"
        );
    }
    rows
}

/// Moves the forwarder's heartbeat to now.
fn beat(metrics: &ForwarderMetrics) {
    let now = u64::try_from(crate::store::now_ms()).unwrap_or(0);
    metrics
        .heartbeat_ms
        .store(now, std::sync::atomic::Ordering::Relaxed);
}

/// The topic for a stored message type such as `ORU^R01`.
fn records_topic(topics: &GatewayTopics, message_type: &str) -> String {
    let mut parts = message_type.split('^');
    let code = parts.next().unwrap_or_default();
    let event = parts.next().unwrap_or_default();
    topics.records(code, event)
}

/// Now, on tokio's clock (which tests can pause), for the state machine.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Waits until `until`; never, without one.
async fn sleep_until(until: Option<Instant>) {
    match until {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Polls the event loop and forwards every event; stops after the first
/// error (the generation then ends and a new client is built).
async fn drive(
    mut eventloop: EventLoop,
    tx: mpsc::Sender<Result<Event, rumqttc::ConnectionError>>,
    connect_timeout: Duration,
) {
    let mut network = rumqttc::NetworkOptions::new();
    network.set_connection_timeout(connect_timeout.as_secs().max(1));
    eventloop.set_network_options(network);
    loop {
        let ev = eventloop.poll().await;
        let failed = ev.is_err();
        if tx.send(ev).await.is_err() || failed {
            return;
        }
    }
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_types_map_to_topic_levels() {
        let t = GatewayTopics::new("p", "o", "s", "g");
        assert_eq!(records_topic(&t, "ORU^R01"), "p/o/s/g/records/ORU_R01");
        assert_eq!(records_topic(&t, "ADT"), "p/o/s/g/records/ADT");
    }
}
