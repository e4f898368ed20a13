//! The forwarder task: drives one rumqttc connection at a time.
//!
//! Each connection generation: build the client (mutual TLS, persistent
//! session, last will = offline status), run rumqttc's event loop in its own
//! task that hands events over a channel (so no `poll()` is ever cancelled
//! half-way), publish the retained online status once connected, then keep
//! up to `inflight` publishes of queued records outstanding, reading queued
//! rows in pages of several publishes. A PUBACK hands its rows to
//! [`Deletes`], which deletes them through the store writer without
//! stalling the event loop. Heartbeats handed over by the telemetry task go
//! out on the same connection at QoS 1; they take a packet id in the same
//! FIFO as record publishes (as a publish without rows), so their PUBACKs
//! never count as forwarded records. Any error, a refused PUBACK, or no
//! progress for too long ends the generation; the next one starts after an
//! exponential, jittered backoff and re-reads every unacknowledged row from
//! the store.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hl7edge_protocol::telemetry::Status;
use hl7edge_protocol::topic::GatewayTopics;
use hl7edge_protocol::wire::EnvelopeWriter;
use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS, Transport,
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::config::{Hub, HubTransport};
use crate::forwarder::backoff::Backoff;
use crate::forwarder::deletes::{self, Deletes};
use crate::forwarder::state::{Effect, ForwardState, group_consecutive};
use crate::store::{PendingRecord, StoreHandle, StoreReader};
use crate::telemetry::HeartbeatInbox;

/// How long a generation may have publishes outstanding without any PUBACK
/// before the connection is considered wedged (also bounded below by two
/// keep-alive periods).
const MIN_NO_PROGRESS: Duration = Duration::from_secs(20);
/// How long shutdown waits for outstanding PUBACKs.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);
/// Once caught up, how long the forwarder lets new commits gather before
/// it reads them: what arrives meanwhile goes out in the same read,
/// envelope, PUBACK and delete. At a few messages per second this is most
/// of the forwarder's cost per message (and a delete commit per message
/// competing with the ACKs' commits); it delays a record's arrival at the
/// hub by at most this much. A backlog is read without waiting.
const LINGER: Duration = Duration::from_millis(20);

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
    o.set_max_packet_size(16 << 20, 16 << 20);
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

/// One connection's lifetime.
struct Generation<'a> {
    s: &'a ForwarderSettings,
    store: &'a StoreHandle,
    metrics: &'a ForwarderMetrics,
    reader: Option<StoreReader>,
    options: Option<MqttOptions>,
    state: ForwardState,
    connected: bool,
    acked_any: bool,
    last_progress: Instant,
    /// True when the last read found no rows after the cursor.
    backlog_empty: bool,
    /// When to read again after commits arrived while caught up ([`LINGER`]).
    linger_until: Option<tokio::time::Instant>,
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
        Generation {
            s,
            store,
            metrics,
            reader: Some(reader),
            options: Some(options),
            state: ForwardState::new(usize::from(s.hub.inflight.get())),
            connected: false,
            acked_any: false,
            last_progress: Instant::now(),
            backlog_empty: false,
            linger_until: None,
            deletes: Deletes::new(store.clone()),
            delete_retrying: false,
        }
    }

    /// Publishes requested per read: a quarter of the window, so rows are
    /// read in pages of several publishes, not one page per PUBACK, and no
    /// read holds more than a quarter of the window's rows in memory.
    fn page(&self) -> usize {
        usize::from(self.s.hub.inflight.get()).div_ceil(4)
    }

    /// True when more rows may be read and published now: connected, rows
    /// may be waiting, a page of the window is free, and deletes keep up
    /// with PUBACKs.
    fn ready_to_fill(&self) -> bool {
        self.connected
            && !self.backlog_empty
            && self.state.free_slots() >= self.page()
            && self.deletes.backlog() < deletes::MAX_BACKLOG_ROWS
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
        let no_progress = MIN_NO_PROGRESS.max(self.s.hub.keep_alive * 2);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let end = loop {
            if self.ready_to_fill()
                && let Err(e) = self.fill(&client).await
            {
                error!(cause = %e, "reading the queue failed");
                break End::Lost { healthy: false };
            }
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(Ok(event)) => {
                        let connack = matches!(event, Event::Incoming(Packet::ConnAck(_)));
                        if let Some(end) = self.on_event(event, &client) {
                            break end;
                        }
                        if connack {
                            heartbeats.connected();
                        }
                    }
                    Some(Err(e)) => {
                        warn!(cause = %e, connected = self.connected, "hub connection failed");
                        break End::Lost { healthy: self.acked_any };
                    }
                    None => break End::Lost { healthy: self.acked_any },
                },
                done = self.deletes.next_done() => {
                    if let Some(end) = self.deleted(done) {
                        break end;
                    }
                }
                _ = committed.changed() => {
                    // While not caught up, the next read picks these rows up.
                    if self.backlog_empty && self.linger_until.is_none() {
                        self.linger_until = Some(tokio::time::Instant::now() + LINGER);
                    }
                }
                () = lingering(self.linger_until) => {
                    self.linger_until = None;
                    self.backlog_empty = false;
                }
                Some(payload) = heartbeats.recv() => self.publish_heartbeat(&client, payload),
                _ = tick.tick() => {
                    self.heartbeat();
                    if self.state.outstanding() > 0 && self.last_progress.elapsed() > no_progress {
                        warn!(outstanding = self.state.outstanding(), "no PUBACK for too long; rebuilding the hub connection");
                        break End::Lost { healthy: false };
                    }
                    // Rows may have been skipped while the window was full.
                    self.backlog_empty = false;
                    self.linger_until = None;
                    self.deletes.retry();
                }
                _ = shutdown.changed() => {
                    self.flush(&client, &mut events).await;
                    break End::Shutdown;
                }
            }
        };
        driver.abort();
        self.finish(end).await
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
        self.state.reset();
        Outcome {
            reader: self.reader.take(),
            end,
        }
    }

    fn heartbeat(&self) {
        beat(self.metrics);
    }

    /// Publishes a telemetry heartbeat (QoS 1, not retained) if connected;
    /// otherwise, or when the client's queue is full, it is skipped.
    fn publish_heartbeat(&mut self, client: &AsyncClient, payload: Vec<u8>) {
        if !self.connected {
            debug!("not connected to the hub; heartbeat skipped");
            return;
        }
        match client.try_publish(self.s.topics.telemetry(), QoS::AtLeastOnce, false, payload) {
            // Takes its place in the packet-id FIFO, carrying no rows.
            Ok(()) => self.state.requested_other(),
            Err(e) => debug!(cause = %e, "client queue full; heartbeat skipped"),
        }
    }

    fn on_event(&mut self, event: Event, client: &AsyncClient) -> Option<End> {
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                self.connected = true;
                self.metrics
                    .connects
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                info!(
                    session_present = ack.session_present,
                    "connected to the hub"
                );
                let online = status_payload(self.s, true, None);
                self.state.requested_other();
                if client
                    .try_publish(self.s.topics.status(), QoS::AtLeastOnce, true, online)
                    .is_err()
                {
                    return Some(End::Lost { healthy: false });
                }
                self.last_progress = Instant::now();
                self.backlog_empty = false;
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                let effect = self.state.on_outgoing_publish(pkid);
                return self.apply(effect);
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                self.last_progress = Instant::now();
                let effect = self.state.on_puback(ack.pkid, true);
                return self.apply(effect);
            }
            _ => {}
        }
        None
    }

    fn apply(&mut self, effect: Effect) -> Option<End> {
        match effect {
            Effect::None => None,
            Effect::Reconnect(why) => {
                warn!(reason = why, "rebuilding the hub connection");
                Some(End::Lost { healthy: false })
            }
            Effect::Forwarded(seqs) => {
                self.acked_any = true;
                self.deletes.push(seqs);
                None
            }
        }
    }

    /// Reads the next rows after the cursor and hands publishes to the client.
    async fn fill(&mut self, client: &AsyncClient) -> Result<(), ForwardError> {
        let batch_max = usize::from(self.s.hub.batch_max_records.get());
        let limit = self.state.free_slots().min(self.page()) * batch_max;
        let cursor = self.state.cursor();
        let with_raw = !self.s.include_raw.is_empty();
        let Some(reader) = self.reader.take() else {
            return Ok(());
        };
        let interfaces = std::sync::Arc::clone(&self.s.interfaces);
        let (reader, rows) = tokio::task::spawn_blocking(move || {
            let rows = reader
                .pending_records(cursor, limit, with_raw)
                .map(|rows| upgrade_rows(&reader, rows, &interfaces));
            (reader, rows)
        })
        .await
        .map_err(|_| ForwardError::Store(crate::store::StoreError::Closed))?;
        self.reader = Some(reader);
        let rows = rows?;
        if rows.is_empty() {
            self.backlog_empty = true;
            return Ok(());
        }
        for group in group_consecutive(
            rows,
            |r| (r.source.clone(), r.message_type.clone()),
            batch_max,
        ) {
            let Some(first) = group.first() else { continue };
            let topic = records_topic(&self.s.topics, &first.message_type);
            let source = first.source.clone();
            let (seqs, payload) = self.envelope(&source, group);
            if seqs.is_empty() {
                continue;
            }
            match client.try_publish(topic, QoS::AtLeastOnce, false, payload) {
                Ok(()) => self.state.requested(seqs),
                Err(e) => {
                    debug!(cause = %e, "client queue full; retrying shortly");
                    break;
                }
            }
        }
        Ok(())
    }

    /// The payload for `rows` and the sequence numbers of the rows it
    /// carries. The stored records are copied into the envelope as they
    /// are, not decoded and encoded again (`EnvelopeWriter`). Rows an older
    /// build queued were made current when they were read (`upgrade_rows`).
    /// A row whose stored record still has another schema version (a newer
    /// build's, or one that could not be made current) is left out *and left
    /// in the store*: it is never deleted, it keeps
    /// counting in the queue depth and the oldest-unsent age that `status`
    /// and telemetry report, and a build that reads it sends it. An error is
    /// logged every time it is skipped.
    fn envelope(&self, source: &str, rows: Vec<PendingRecord>) -> (Vec<i64>, Vec<u8>) {
        let include_raw = self.s.include_raw.contains(source);
        let mut seqs = Vec::with_capacity(rows.len());
        let mut writer = match EnvelopeWriter::new(&self.s.gateway_name, source) {
            Ok(writer) => writer,
            Err(e) => {
                error!(cause = %e, "records could not be encoded; kept in the queue, not sent");
                return (Vec::new(), Vec::new());
            }
        };
        for row in rows {
            let raw = include_raw.then_some(row.raw.as_slice());
            match writer.push(row.id, row.source_seq, row.received_at_ms, &row.record, raw) {
                Ok(()) => seqs.push(row.seq),
                Err(e) => {
                    error!(seq = row.seq, cause = %e, "stored record cannot be sent by this build; kept in the queue, not sent");
                }
            }
        }
        match writer.finish() {
            Ok(payload) => (seqs, payload),
            Err(e) => {
                error!(cause = %e, "records could not be encoded; kept in the queue, not sent");
                (Vec::new(), Vec::new())
            }
        }
    }

    /// Waits briefly for outstanding PUBACKs, then says offline and disconnects.
    async fn flush(
        &mut self,
        client: &AsyncClient,
        events: &mut mpsc::Receiver<Result<Event, rumqttc::ConnectionError>>,
    ) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_FLUSH;
        while self.state.outstanding() > 0 {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(Ok(event))) => {
                    let _ = self.on_event(event, client);
                }
                _ => break,
            }
        }
        if self.connected {
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
/// is left as it is: `envelope` keeps it in the queue and logs why.
fn upgrade_rows(
    reader: &StoreReader,
    mut rows: Vec<PendingRecord>,
    interfaces: &crate::upgrade::Interfaces,
) -> Vec<PendingRecord> {
    let (mut renormalized, mut carried) = (0u64, 0u64);
    for row in rows
        .iter_mut()
        .filter(|r| !crate::upgrade::is_current(&r.record))
    {
        let raw = if row.raw.is_empty() {
            reader.raw(row.seq).ok().flatten().unwrap_or_default()
        } else {
            row.raw.clone()
        };
        match crate::upgrade::upgrade(&row.record, &raw, interfaces.get(&row.source)) {
            Ok((record, how)) => {
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

/// Polls the event loop and forwards every event; stops after the first
/// error (the generation then ends and a new client is built).
/// Waits until `until`; never, without one.
async fn lingering(until: Option<tokio::time::Instant>) {
    match until {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

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
