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
//! In receipt mode (`hub.custody = "receipt"`) the connection also
//! subscribes to this gateway's receipts topic: a PUBACK marks rows at
//! broker, a receipt that counts (`receipts.rs`) removes them, and rows
//! whose receipt did not come in time are read again and published under
//! the same ids (`receipt_wait.rs` decides when, in seq order).
//! The connection's state, its last failure with its cause (`link.rs`) and
//! the times of the last publish, PUBACK and receipt are written to the
//! store for `hl7edge status` and shared with the heartbeat.
//! Heartbeats handed over by the telemetry task go out on the same
//! connection at QoS 1, retained (the broker keeps each gateway's last one,
//! so a hub that starts later knows its backlog at once); they take a packet id in the same FIFO as record
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

use hl7edge_protocol::telemetry::{LAST_WILL_REASON, SHUTDOWN_REASON, Status};
use hl7edge_protocol::topic::GatewayTopics;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS, Transport};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::config::{Custody, Hub, HubTransport};
use crate::forwarder::backoff::Backoff;
use crate::forwarder::deletes::{self, Deletes};
use crate::forwarder::envelope::{self, Outgoing};
use crate::forwarder::link::{self, Cause, Link};
use crate::forwarder::receipt_wait::ReceiptWait;
use crate::forwarder::receipts::{self, Applier};
use crate::forwarder::split::{self, Bounds, Step};
use crate::forwarder::state::{Effect, ForwardState, Limits};
use crate::store::{HubLinkRow, PendingQuery, PendingRecord, Pick, StoreHandle, StoreReader};
use crate::telemetry::HeartbeatInbox;

/// How long shutdown waits for outstanding PUBACKs.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);
/// The period of the no-progress check, the watchdog heartbeat and the
/// re-read that finds rows written by another process.
const TICK: Duration = Duration::from_millis(500);
/// Largest packet accepted from the broker: acknowledgments, pings and, in
/// receipt mode, custody receipts (at most 4,096 ids, 64 KiB, per receipt
/// from the hub; a larger packet ends the connection).
const MAX_INCOMING_PACKET: usize = 256 << 10;
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
    /// Where signed pushes go (`None`: no `hub.push_key`, no subscription to pushes).
    pub pushes: Option<crate::push::Inbox>,
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
    /// Rows removed by custody receipts since start (receipt mode).
    pub receipted: std::sync::atomic::AtomicU64,
    /// The hub connection as last seen (also written to the store).
    pub link: std::sync::Mutex<Option<HubLinkRow>>,
}

impl ForwarderMetrics {
    /// The hub connection as last seen, if the forwarder has started.
    pub fn link(&self) -> Option<HubLinkRow> {
        self.link.lock().ok().and_then(|l| l.clone())
    }
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
    let mut custody = CustodyState {
        link: Link::new(settings.hub.custody.as_str(), crate::store::now_ms()),
        wait: (settings.hub.custody == Custody::Receipt)
            .then(|| ReceiptWait::new(settings.hub.receipt_timeout, now())),
    };
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let options = mqtt_options(&settings)?;
        let current = match reader.take() {
            Some(r) => r,
            None => store.open_reader()?,
        };
        let outcome = Generation::new(&settings, &store, &metrics, current, options, &mut custody)
            .run(&mut heartbeats, &mut shutdown)
            .await;
        reader = outcome.reader;
        match outcome.end {
            End::Shutdown => return Ok(()),
            End::Lost { healthy, failure } => {
                let (cause, error) = failure;
                custody
                    .link
                    .on_failed(cause, &error, crate::store::now_ms());
                record_link(&store, &metrics, &mut custody.link);
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
    let offline = status_payload(s, false, Some(LAST_WILL_REASON));
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
    /// The connection ended: whether it had proved healthy, and why (the cause and the
    /// error as the stack said it).
    Lost {
        healthy: bool,
        failure: (Cause, String),
    },
}

impl End {
    fn lost(healthy: bool, cause: Cause, error: impl Into<String>) -> End {
        End::Lost {
            healthy,
            failure: (cause, error.into()),
        }
    }
}

/// What lives across connections: the link's record and receipt mode's timing.
struct CustodyState {
    link: Link,
    /// `None` in puback mode.
    wait: Option<ReceiptWait>,
}

/// Hands the link's row to the store (not awaited: a lost update is replaced by the next) and
/// to the heartbeat, when it is due.
fn record_link(store: &StoreHandle, metrics: &ForwarderMetrics, link: &mut Link) {
    let Some(row) = link.take_update(now(), crate::store::now_ms()) else {
        return;
    };
    if let Ok(mut shared) = metrics.link.lock() {
        *shared = Some(row.clone());
    }
    let store = store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.record_hub_link(row).await {
            debug!(cause = %e, "could not record the hub connection state");
        }
    });
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
    /// Receipts on their way into the store (receipt mode).
    receipts: Applier,
    /// The link record and receipt timing, kept across connections.
    custody: &'a mut CustodyState,
    /// Subscriptions requested and not yet sent, in order; then sent ones by packet id, so a
    /// SUBACK is matched to what it answers.
    subscribing: std::collections::VecDeque<Subscription>,
    subscribed: Vec<(u16, Subscription)>,
}

/// What a SUBSCRIBE asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subscription {
    Receipts,
    Pushes,
}

impl<'a> Generation<'a> {
    fn new(
        s: &'a ForwarderSettings,
        store: &'a StoreHandle,
        metrics: &'a ForwarderMetrics,
        reader: StoreReader,
        options: MqttOptions,
        custody: &'a mut CustodyState,
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
            receipts: Applier::new(store.clone()),
            custody,
            subscribing: std::collections::VecDeque::new(),
            subscribed: Vec::new(),
        }
    }

    async fn run(
        mut self,
        heartbeats: &mut HeartbeatInbox,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Outcome {
        let Some(options) = self.options.take() else {
            return self
                .finish(End::lost(false, Cause::Other, "no connection options"))
                .await;
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
                break End::lost(
                    false,
                    Cause::Other,
                    format!("reading the queue failed: {e}"),
                );
            }
            record_link(self.store, self.metrics, &mut self.custody.link);
            let receipts_room = self.receipts.backlog() < receipts::MAX_BACKLOG_IDS;
            tokio::select! {
                ev = events.recv(), if receipts_room => {
                    if let Some(end) = self.on_event(ev, &client, heartbeats) {
                        break end;
                    }
                }
                done = self.deletes.next_done() => if let Some(end) = self.deleted(done) {
                    break end;
                },
                done = self.receipts.next_done() => self.receipted(done),
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

    /// Counts rows a receipt removed. A failed request is not retried: its rows stay queued
    /// and are published again after their timeout.
    fn receipted(&mut self, done: Result<u64, crate::store::StoreError>) {
        match done {
            Ok(rows) => {
                self.metrics
                    .receipted
                    .fetch_add(rows, std::sync::atomic::Ordering::Relaxed);
                if rows > 0 {
                    self.custody.link.on_receipt(crate::store::now_ms());
                }
            }
            Err(e) => {
                warn!(cause = %e, "could not apply a custody receipt; its records are published again after hub.receipt_timeout");
            }
        }
    }

    /// A message on a subscription: a custody receipt, if it counts.
    fn on_receipt_message(&mut self, publish: &rumqttc::Publish) {
        let own = self.s.topics.receipts();
        match receipts::accept(&publish.topic, &publish.payload, &own, &self.s.gateway_name) {
            Ok(receipt) => {
                debug!(ids = receipt.ids.len(), "custody receipt");
                self.receipts.push(&receipt);
            }
            Err(why) => warn!(reason = %why, "ignored a message on the receipts subscription"),
        }
    }

    /// A signed push: handed to the push task (which verifies it). A full queue drops this
    /// delivery with a log line; the push is retained and comes again with the next connection.
    fn on_push(&mut self, publish: &rumqttc::Publish) {
        let Some(inbox) = &self.s.pushes else {
            return;
        };
        let delivery = crate::push::Delivery {
            topic: publish.topic.clone(),
            payload: publish.payload.to_vec(),
        };
        if inbox.try_send(delivery).is_err() {
            warn!(topic = %publish.topic, "too many pushes waiting; this one comes again after a reconnect");
        }
    }

    /// The broker answered the receipts subscription; a refusal means no receipt can ever
    /// arrive, which `status` must say.
    fn on_suback(&mut self, ack: &rumqttc::SubAck) {
        let refused = ack
            .return_codes
            .iter()
            .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure));
        let what = self
            .subscribed
            .iter()
            .position(|(pkid, _)| *pkid == ack.pkid)
            .map(|i| self.subscribed.swap_remove(i).1);
        if refused && what == Some(Subscription::Pushes) {
            error!(
                topic = %self.s.topics.push_filter(),
                "the broker refused the subscription to this gateway's pushes: no signed push can reach it; fix the broker ACL (hub/broker/mosquitto-acl) or remove hub.push_key"
            );
            return;
        }
        if refused {
            error!(
                topic = %self.s.topics.receipts(),
                "the broker refused the subscription to this gateway's receipts: in receipt mode no record can leave the queue; fix the broker ACL or set hub.custody = \"puback\""
            );
            self.custody
                .link
                .on_receipts_refused(crate::store::now_ms());
        }
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
            Some(Ok(Event::Incoming(Packet::Publish(publish)))) => {
                if self.s.topics.is_push(&publish.topic) {
                    self.on_push(&publish);
                } else {
                    self.on_receipt_message(&publish);
                }
                None
            }
            Some(Ok(Event::Outgoing(rumqttc::Outgoing::Subscribe(pkid)))) => {
                if let Some(what) = self.subscribing.pop_front() {
                    self.subscribed.push((pkid, what));
                }
                None
            }
            Some(Ok(Event::Incoming(Packet::SubAck(ack)))) => {
                self.on_suback(&ack);
                None
            }
            Some(Ok(_)) => None,
            Some(Err(e)) => {
                let connected = self.state.is_connected();
                let cause = link::classify(&e);
                warn!(cause = %e, reason = cause.kind(), connected, "hub connection failed: {}", cause.words());
                Some(End::lost(healthy, cause, e.to_string()))
            }
            None => Some(End::lost(
                healthy,
                Cause::Closed,
                "the MQTT event loop ended",
            )),
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
        self.custody.link.on_connected(crate::store::now_ms());
        if let Some(wait) = &mut self.custody.wait {
            wait.on_connack(session_present, now());
            // Every time: a broker without our session has no subscription either.
            if client
                .try_subscribe(self.s.topics.receipts(), QoS::AtLeastOnce)
                .is_err()
            {
                return Some(End::lost(false, Cause::Other, "client queue full"));
            }
            self.subscribing.push_back(Subscription::Receipts);
        }
        // Every time too: the retained pushes come with the SUBACK, so a gateway that was away
        // gets what was pushed meanwhile.
        if self.s.pushes.is_some() {
            if client
                .try_subscribe(self.s.topics.push_filter(), QoS::AtLeastOnce)
                .is_err()
            {
                return Some(End::lost(false, Cause::Other, "client queue full"));
            }
            self.subscribing.push_back(Subscription::Pushes);
        }
        let online = status_payload(self.s, true, None);
        self.state.requested_other(online.len());
        match client.try_publish(self.s.topics.status(), QoS::AtLeastOnce, true, online) {
            Ok(()) => None,
            Err(_) => Some(End::lost(false, Cause::Other, "client queue full")),
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
            return Some(End::lost(false, Cause::Timeout, why));
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
                Some(End::lost(
                    false,
                    Cause::Other,
                    format!("could not mark records as forwarded: {e}"),
                ))
            }
        }
    }

    /// Lets the deletes of PUBACKed rows commit (so the next connection does
    /// not publish them again), then forgets the connection's state.
    async fn finish(mut self, end: End) -> Outcome {
        let flushed = self.deletes.flush().await;
        let _ = self.deleted(flushed);
        let receipted = self.receipts.flush().await;
        self.receipted(Ok(receipted));
        if let Some(wait) = &mut self.custody.wait {
            wait.on_connection_lost(now());
        }
        self.state.reset(now());
        Outcome {
            reader: self.reader.take(),
            end,
        }
    }

    fn heartbeat(&self) {
        beat(self.metrics);
    }

    /// Publishes a telemetry heartbeat (QoS 1, retained) if connected;
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
        match client.try_publish(self.s.topics.telemetry(), QoS::AtLeastOnce, true, payload) {
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
                Some(End::lost(false, Cause::Rebuilt, why))
            }
            Effect::Forwarded(seqs) => {
                self.custody.link.on_puback(crate::store::now_ms());
                self.deletes.push(seqs);
                None
            }
        }
    }

    /// Reads the next rows after the cursor, if the state asks for a read,
    /// and hands their publishes to the client; rows that can never fit a
    /// payload are set aside.
    async fn fill(&mut self, client: &AsyncClient) -> Result<(), ForwardError> {
        self.check_due().await?;
        let sweep = self.custody.wait.as_ref().and_then(ReceiptWait::sweep);
        let Some(read) =
            self.state
                .next_read(self.deletes.backlog(), deletes::MAX_BACKLOG_ROWS, sweep)
        else {
            return Ok(());
        };
        let pick = match (read.due_before_ms, &self.custody.wait) {
            (Some(before_ms), _) => Pick::Due { before_ms },
            (None, Some(_)) => Pick::NotAtBroker,
            (None, None) => Pick::Unsent,
        };
        let query = PendingQuery {
            after_seq: read.after_seq,
            max_rows: read.max_rows,
            max_bytes: read.max_bytes,
            max_record: self.s.hub.max_payload,
            with_raw: !self.s.include_raw.is_empty(),
            pick,
        };
        // Rows queued by an older build are made current (normalized again from their raw HL7
        // when it is kept) off the async workers, with the read.
        let interfaces = std::sync::Arc::clone(&self.s.interfaces);
        let Some(rows) = self
            .read_blocking(move |r| {
                r.pending_records(&query)
                    .map(|rows| upgrade_rows(r, rows, &interfaces))
            })
            .await?
        else {
            return Ok(());
        };
        let again = read.due_before_ms.is_some();
        match &mut self.custody.wait {
            Some(wait) if again => {
                if !rows.is_empty() {
                    info!(
                        rows = rows.len(),
                        "publishing again records whose custody receipt did not come in time"
                    );
                }
                wait.on_sweep_read(rows.len());
            }
            _ => self.state.on_read(rows.len()),
        }
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
                Step::Publish(group) => self.publish(client, group, again),
                Step::SetAside { row, needs } => {
                    self.set_aside(&row.row, needs, again);
                    true
                }
            };
            if !handed {
                break;
            }
        }
        Ok(())
    }

    /// Receipt mode: when a check is due, asks the store when the next row awaiting its
    /// receipt is due, so the wait can start a sweep.
    async fn check_due(&mut self) -> Result<(), ForwardError> {
        let republishing = self.state.republishing();
        let wants = self
            .custody
            .wait
            .as_ref()
            .is_some_and(|w| w.wants_check(now(), republishing));
        if !wants || !self.state.is_connected() {
            return Ok(());
        }
        let Some(next_due) = self.read_blocking(StoreReader::next_receipt_due).await? else {
            return Ok(());
        };
        if let Some(wait) = &mut self.custody.wait {
            wait.on_check(next_due, now(), crate::store::now_ms());
        }
        Ok(())
    }

    /// Runs `read` on the reader's connection in a blocking task; `None` when the reader is
    /// in use (never, in practice: reads are not concurrent).
    async fn read_blocking<T: Send + 'static>(
        &mut self,
        read: impl FnOnce(&StoreReader) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<Option<T>, ForwardError> {
        let Some(reader) = self.reader.take() else {
            return Ok(None);
        };
        let (reader, result) = tokio::task::spawn_blocking(move || {
            let result = read(&reader);
            (reader, result)
        })
        .await
        .map_err(|_| ForwardError::Store(crate::store::StoreError::Closed))?;
        self.reader = Some(reader);
        Ok(Some(result?))
    }

    /// Publishes one planned group; false when the client's queue is full
    /// (the rows are read again shortly).
    fn publish(&mut self, client: &AsyncClient, group: Vec<Outgoing<'_>>, again: bool) -> bool {
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
            self.custody.link.on_publish(crate::store::now_ms());
            let last = built.seqs.last().copied();
            if again {
                self.state.requested_again(built.seqs, bytes);
            } else {
                self.state.requested(built.seqs, bytes);
            }
            self.swept(again, last);
        }
        for seq in built.left_out {
            if again {
                self.swept(true, Some(seq));
            } else {
                self.state.skipped(seq);
            }
        }
        true
    }

    /// A sweep's rows up to `seq` are handed over: its next read starts after them.
    fn swept(&mut self, again: bool, seq: Option<i64>) {
        if let (true, Some(seq), Some(wait)) = (again, seq, &mut self.custody.wait) {
            wait.on_swept(seq);
        }
    }

    /// Sets aside a row that can never fit `hub.max_payload`: it stays in
    /// the store, marked parked (audited, alarmed in telemetry and
    /// `status`), and the rows behind it flow. Marking it is not awaited;
    /// if it fails the row is read and set aside again after the next
    /// reconnect.
    fn set_aside(&mut self, row: &PendingRecord, needs: usize, again: bool) {
        let max_payload = self.s.hub.max_payload;
        warn!(
            seq = row.seq,
            record_id = %row.id,
            source = %row.source,
            needs,
            max_payload,
            "record can never fit one payload of hub.max_payload; set aside, kept unsent (hl7edge parked list)"
        );
        if again {
            self.swept(true, Some(row.seq));
        } else {
            self.state.skipped(row.seq);
        }
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
            let offline = status_payload(self.s, false, Some(SHUTDOWN_REASON));
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
        let raw = match &row.raw {
            Some(raw) if !raw.is_empty() => raw.clone(),
            _ => reader.raw(row.seq).ok().flatten().unwrap_or_default(),
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

/// Any u64 for backoff jitter (the forwarder's and the enrollment's).
pub(crate) fn random_u64() -> u64 {
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
