//! `hl7edge-hub ingest`: records and heartbeats of every gateway, from the
//! broker into PostgreSQL, exactly once by record id, with custody receipts
//! back to the gateways.
//!
//! ```text
//! broker --(persistent session, manual acks)--> session --> classify --> batch
//!     ^                                                                    |
//!     +---- PUBACK (in arrival order) <-- receipts --> gateways <-- commit (store)
//! ```
//!
//! Invariants (what "committed" and "acknowledged" mean here):
//! 1. **Nothing is acknowledged before its commit.** A message is
//!    acknowledged to the broker (PUBACK) only after the transaction holding
//!    its rows (or its dead letter) has committed. A crash at any point
//!    loses nothing: the broker redelivers whatever was not acknowledged.
//! 2. **Exactly once by record id.** Records are inserted with
//!    `ON CONFLICT (id) DO NOTHING` and typed rows only with a new record
//!    row; redelivery, republishing and two ingests in one share group
//!    never make a second row (see `store`).
//! 3. **Receipts follow commits.** After each commit the ingest publishes,
//!    per gateway whose records the batch held, a receipt naming every
//!    committed id of that gateway (new and already present) on that
//!    gateway's receipts topic, QoS 1 (`hl7edge_protocol::receipt` has the
//!    contract). A lost receipt only delays the gateway's delete.
//! 4. **Bad input is kept, never fatal.** Undecodable payloads, unknown
//!    schemas, envelopes and heartbeats naming another gateway than their
//!    topic, and rows the database refuses go to `dead_letters` with the
//!    reason, in the same commit-then-acknowledge order.
//! 5. **PostgreSQL down means waiting, not dropping.** The batch in hand is
//!    retried with backoff until it commits; meanwhile nothing is
//!    acknowledged, the ingest stops taking messages once the next batch is
//!    full, and the broker keeps the rest queued for the persistent session.
//! 6. **One batch commits at a time**, so acknowledgements leave in arrival
//!    order; the next batch fills while the current one commits.
//!
//! Memory is bounded by the batch limits and by the broker's in-flight
//! window for this client (mosquitto `max_inflight_messages`): unacknowledged
//! QoS 1 messages are never more than that window. QoS 0 messages (no
//! gateway sends them) beyond [`QOS0_BACKLOG`] waiting are dropped and
//! counted.

pub mod batch;
pub mod classify;
pub mod fhir_out;
pub mod metrics;
pub mod rows;
pub mod schema;
pub mod session;
pub mod sql_types;
pub mod store;

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, QoS};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{debug, error, info, warn};

use hl7edge_protocol::receipt::Receipt;
use hl7edge_protocol::topic::{GatewayTopics, all_records_filter, all_telemetry_filter};

use crate::cli::{IngestArgs, check_share_group};
use crate::error::CommandError;
use crate::ingest::batch::{Ack, Batch, Limits, Pending};
use crate::ingest::classify::{Item, classify};
use crate::ingest::metrics::IngestStats;
use crate::ingest::session::{Delivery, Session, SessionEvent};
use crate::ingest::store::Store;

/// QoS 0 messages waiting beyond which further QoS 0 messages are dropped.
pub const QOS0_BACKLOG: usize = 10_000;

/// Shared between the loop, the writer and the metrics endpoint.
type Stats = Arc<Mutex<IngestStats>>;

fn lock(s: &Stats) -> std::sync::MutexGuard<'_, IngestStats> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs until `shutdown` (then commits and acknowledges what it holds) or a
/// fatal error.
pub async fn run(args: IngestArgs, shutdown: impl Future<Output = ()>) -> Result<(), CommandError> {
    if let Some(group) = &args.share {
        check_share_group(group)?;
    }
    let prefix = args.broker.prefix.clone();
    let broker = args.broker.broker(args.client_id.clone())?;
    let options = broker.options(&crate::mqtt::SessionSpec {
        persistent: true,
        manual_acks: true,
        filters: Vec::new(),
    })?;
    let filters = vec![
        all_records_filter(&prefix, args.share.as_deref()),
        all_telemetry_filter(&prefix, args.share.as_deref()),
    ];
    let listener = match args.metrics {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| CommandError::Bind { addr, source })?,
        ),
        None => None,
    };
    let fhir_out = match &args.fhir_out {
        Some(path) => {
            Some(
                fhir_out::FhirOut::open(path).map_err(|source| CommandError::FhirOut {
                    path: path.clone(),
                    source,
                })?,
            )
        }
        None => None,
    };
    let stats: Stats = Arc::new(Mutex::new(IngestStats::default()));
    let metrics_stats = stats.clone();
    let render = Arc::new(move || lock(&metrics_stats).render());
    // Metrics are served from the start, also while PostgreSQL is awaited.
    let metrics = async {
        match (listener, args.metrics) {
            (Some(listener), Some(addr)) => {
                let served =
                    crate::metrics::http::serve(listener, render, std::future::pending()).await;
                served.map_err(|source| CommandError::Bind { addr, source })
            }
            _ => std::future::pending().await,
        }
    };
    tokio::pin!(shutdown);
    let work = async {
        info!("connecting to PostgreSQL and migrating the schema");
        let store = tokio::select! {
            store = Store::open(&args.database) => {
                store.map_err(|e| CommandError::Database(e.to_string()))?
            }
            _ = &mut shutdown => return Ok(()),
        };
        lock(&stats).database_up = true;
        info!(filters = ?filters, broker = %broker.url, "PostgreSQL ready; subscribing");
        let session = Session::start(
            options.clone(),
            broker.url.to_string(),
            filters,
            QOS0_BACKLOG,
            args.retire,
        );
        let limits = Limits {
            max_records: args.batch_records.get(),
            max_bytes: args.batch_bytes,
        };
        let retire = args.retire.then_some(RETIRE_IDLE);
        let run = Run {
            prefix,
            limits,
            linger: args.linger,
            retire,
            fhir_out,
        };
        ingest(session, store, run, stats.clone(), &mut shutdown).await?;
        if args.retire {
            session::end_session(options, &broker.url.to_string())
                .await
                .map_err(CommandError::Broker)?;
            info!(client_id = %args.client_id, "retired: the session is ended; the share group's other members take every new message");
        }
        Ok(())
    };
    tokio::select! {
        result = work => result,
        result = metrics => result,
    }
}

/// A batch on its way to the writer, with the permit that marks the writer busy.
type Handover = (Batch, tokio::sync::OwnedSemaphorePermit);

/// How long a retiring ingest waits without a message before it considers
/// its session drained.
const RETIRE_IDLE: Duration = Duration::from_secs(5);

/// The settings of the ingest loop.
struct Run {
    prefix: String,
    limits: Limits,
    linger: Duration,
    /// Retiring: stop once nothing arrived for this long.
    retire: Option<Duration>,
    /// Where committed records also go as FHIR bundles (`--fhir-out`).
    fhir_out: Option<fhir_out::FhirOut>,
}

async fn ingest(
    mut session: Session,
    store: Store,
    run: Run,
    stats: Stats,
    shutdown: impl Future<Output = ()>,
) -> Result<(), CommandError> {
    let Run {
        prefix,
        limits,
        linger,
        retire,
        fhir_out,
    } = run;
    let mut last_activity: Option<tokio::time::Instant> = None;
    let (current_tx, current_rx) = watch::channel::<Option<AsyncClient>>(None);
    let (batch_tx, batch_rx) = mpsc::channel::<Handover>(1);
    let writer_idle = Arc::new(Semaphore::new(1));
    let mut writer = tokio::spawn(write_batches(
        store,
        batch_rx,
        current_rx,
        prefix.clone(),
        stats.clone(),
        fhir_out,
    ));
    let mut batch = Batch::new();
    tokio::pin!(shutdown);
    let result = loop {
        let ready = !batch.is_empty()
            && (batch.is_full(limits) || batch.started().is_some_and(|t| t.elapsed() >= linger));
        let linger_until = batch
            .started()
            .map(|t| tokio::time::Instant::from_std(t + linger));
        let drained_at = match (retire, last_activity) {
            (Some(idle), Some(t)) if batch.is_empty() => Some(t + idle),
            _ => None,
        };
        tokio::select! {
            biased;
            _ = &mut shutdown => break Ok(()),
            _ = tokio::time::sleep_until(drained_at.unwrap_or_else(tokio::time::Instant::now)), if drained_at.is_some() => {
                if writer_idle.available_permits() == 1 {
                    info!("retiring: nothing arrived for {:?}; the session is drained", retire.unwrap_or_default());
                    break Ok(());
                }
                last_activity = Some(tokio::time::Instant::now());
            }
            permit = writer_idle.clone().acquire_owned(), if ready => {
                let Ok(permit) = permit else { break Err(CommandError::ConnectionEnded) };
                if batch_tx.send((std::mem::take(&mut batch), permit)).await.is_err() {
                    break Err(CommandError::ConnectionEnded);
                }
            }
            _ = tokio::time::sleep_until(linger_until.unwrap_or_else(tokio::time::Instant::now)), if !ready && linger_until.is_some() => {}
            event = session.next(), if !batch.is_full(limits) => {
                let Some(event) = event else { break Err(CommandError::ConnectionEnded) };
                match event {
                    SessionEvent::Connected { client, session_present } => {
                        last_activity = Some(tokio::time::Instant::now());
                        info!(session_present, "connected to the broker; ingesting");
                        current_tx.send_replace(Some(client));
                        lock(&stats).broker_connected = true;
                    }
                    SessionEvent::Message(delivery) => {
                        last_activity = Some(tokio::time::Instant::now());
                        take(&mut batch, &prefix, delivery);
                    }
                    SessionEvent::Lost(why) => {
                        warn!("{why}; reconnecting (unacknowledged messages are redelivered)");
                        current_tx.send_replace(None);
                        lock(&stats).broker_connected = false;
                    }
                    SessionEvent::Fatal(why) => break Err(CommandError::Broker(why)),
                }
            }
            result = &mut writer => {
                warn!(?result, "the database writer stopped");
                break Err(CommandError::ConnectionEnded);
            }
        }
    };
    // Commit and acknowledge what is in hand before leaving.
    if result.is_ok()
        && !batch.is_empty()
        && let Ok(permit) = writer_idle.clone().acquire_owned().await
    {
        let _ = batch_tx.send((batch, permit)).await;
    }
    drop(batch_tx);
    if !writer.is_finished() {
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut writer).await;
    }
    if let Some(client) = current_tx.borrow().as_ref() {
        let _ = client.try_disconnect();
    }
    info!("ingest stopped");
    result
}

/// Classifies one message into the batch.
fn take(batch: &mut Batch, prefix: &str, delivery: Delivery) {
    let Delivery { publish, client } = delivery;
    let item = classify(prefix, &publish.topic, &publish.payload);
    if let Item::Dead(d) = &item {
        // The topic names a gateway, not a patient; the detail has no values.
        warn!(topic = %publish.topic, reason = d.reason.as_str(), detail = %d.detail, "message kept as a dead letter");
    }
    let ack = (publish.qos != QoS::AtMostOnce).then(|| Ack {
        client,
        qos: publish.qos,
        pkid: publish.pkid,
    });
    batch.push(Pending { item, ack }, publish.payload.len(), Instant::now());
}

/// The writer: commits each batch, then publishes receipts and acknowledges
/// its messages in order.
async fn write_batches(
    mut store: Store,
    mut batches: mpsc::Receiver<Handover>,
    current: watch::Receiver<Option<AsyncClient>>,
    prefix: String,
    stats: Stats,
    mut fhir_out: Option<fhir_out::FhirOut>,
) {
    while let Some((mut batch, permit)) = batches.recv().await {
        let started = Instant::now();
        let mut items: Vec<Item> = batch
            .pending
            .iter_mut()
            .map(|p| std::mem::replace(&mut p.item, placeholder()))
            .collect();
        let committed = store
            .commit(&mut items, || lock(&stats).database_up = false)
            .await;
        for (p, item) in batch.pending.iter_mut().zip(items) {
            p.item = item;
        }
        let elapsed = started.elapsed();
        record(&stats, &batch, &committed, elapsed);
        if let Some(out) = fhir_out.as_mut() {
            write_fhir(out, &batch, &stats);
        }
        let client = current.borrow().clone();
        send_receipts(&batch, client.as_ref(), &prefix, &stats).await;
        let mut acked = 0;
        for p in &batch.pending {
            if let Some(a) = &p.ack {
                match session::ack(&a.client, a.qos, a.pkid).await {
                    Ok(()) => acked += 1,
                    Err(e) => {
                        debug!(cause = %e, "acknowledgement not sent: its connection is gone; the broker redelivers")
                    }
                }
            }
        }
        lock(&stats).messages_acked += acked;
        drop(permit);
    }
}

/// Writes the committed batch's records as FHIR bundles; a failure is logged and counted (the
/// database holds the records).
fn write_fhir(out: &mut fhir_out::FhirOut, batch: &Batch, stats: &Stats) {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    match out.write(batch, now_ms) {
        Ok(n) => lock(stats).fhir_bundles += n as u64,
        Err(e) => {
            lock(stats).fhir_failures += 1;
            error!(cause = %e, "FHIR bundles of a committed batch not written (--fhir-out); the records are in the database");
        }
    }
}

/// An item without content, while the real one is in the store's hands.
fn placeholder() -> Item {
    Item::Dead(classify::DeadLetter {
        topic: String::new(),
        reason: classify::DeadReason::Undecodable,
        detail: String::new(),
        payload: bytes::Bytes::new(),
    })
}

fn record(stats: &Stats, batch: &Batch, committed: &store::Committed, elapsed: Duration) {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let mut s = lock(stats);
    s.database_up = true;
    s.records_new += committed.new_records;
    s.records_duplicate += committed.duplicate_records;
    s.heartbeats += committed.heartbeats;
    s.database_retries += committed.retries;
    for reason in &committed.dead_letters {
        s.dead_letter(*reason);
    }
    s.batch_records.observe(batch.records() as f64);
    s.commit_seconds.observe(elapsed.as_secs_f64());
    let mut lag: Option<f64> = None;
    for received in batch.received_at_ms() {
        let delay = (now_ms - received).max(0) as f64 / 1000.0;
        s.record_delay_seconds.observe(delay);
        lag = Some(lag.map_or(delay, |l| l.max(delay)));
    }
    if lag.is_some() {
        s.lag_seconds = lag;
    }
    s.last_commit_seconds = Some(now_ms as f64 / 1000.0);
}

async fn send_receipts(batch: &Batch, client: Option<&AsyncClient>, prefix: &str, stats: &Stats) {
    for (gateway, ids) in batch.receipts() {
        let topic =
            GatewayTopics::new(prefix, &gateway.org, &gateway.site, &gateway.gateway).receipts();
        for receipt in Receipt::split(&gateway.to_string(), ids) {
            let n = receipt.ids.len() as u64;
            let sent = match (client, receipt.encode()) {
                (Some(client), Ok(payload)) => client
                    .publish(topic.clone(), QoS::AtLeastOnce, false, payload)
                    .await
                    .is_ok(),
                _ => false,
            };
            let mut s = lock(stats);
            if sent {
                s.receipts += 1;
                s.receipt_ids += n;
            } else {
                s.receipt_failures += 1;
            }
        }
    }
}
