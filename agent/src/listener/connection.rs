//! One MLLP connection: frames in, ACKs out, strictly in order.
//!
//! Each complete frame is prepared (parse, validate, normalize) on the
//! listener's prepare pool (blocking threads, see `pool`), handed to
//! the store writer, and answered only when the writer has committed:
//! AA/CA after the commit, the stored ACK for a resend, AE after the raw
//! bytes are in quarantine, AR when the store is full; an incoming ACK is
//! stored (or quarantined) like any message but never answered, so that two
//! systems cannot acknowledge each other's ACKs forever. If the store fails
//! fatally the connection is closed without an answer (the sender keeps the
//! message and resends after the agent restarts).
//!
//! Limits: a read that waits longer than the idle timeout closes the
//! connection, and so does a frame that takes longer than that to arrive
//! completely (slowloris; a frame's clock starts when the previous frame
//! ends, so a sender streaming frames back to back is never cut off); an
//! answer the sender does not read within the idle timeout (at most
//! [`WRITE_TIMEOUT`] when there is none) closes it too, so a sender that
//! never reads its ACKs cannot hold a connection slot forever; TCP
//! keepalive reclaims connections whose peer vanished. Frames over the size
//! limit are discarded as they stream in and answered AE from their first
//! bytes.
//!
//! Closing (shutdown, the listener switched off or moved by a push): a
//! connection with no frame in hand closes at once; one that is receiving a
//! frame gets up to [`CLOSE_GRACE`] to finish it, stores and answers it, and
//! then closes, so a sender is not cut off in the middle of a message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hl7edge_protocol::hl7::ErrorCode;
use hl7edge_protocol::hl7::ack::AckHeader;
use hl7edge_protocol::hl7::mllp::{Decoder, Event};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tracing::{Instrument, debug, info, info_span, warn};

use super::Shared;
use crate::ingest::{self, Prepared, Stamp};
use crate::store::{FullCause, Inserted, StoreError};

/// Read buffer size.
const READ_CHUNK: usize = 16 * 1024;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the sender to take an answer when the listener has no
/// idle timeout.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(300);
/// Idle time before the first TCP keepalive probe, and between probes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes before the kernel drops the connection.
const KEEPALIVE_RETRIES: u32 = 6;
/// Runs of bytes between frames up to this long are a line-ending trailer
/// (`0x1C 0x0D 0x0A`, or a CR/LF before the next frame), common enough
/// that they are logged at debug level only; longer runs are a warning.
const TRAILER_LEN: usize = 2;

/// MSH-10 as far as it can be read from `raw` (for log lines; a control
/// id is not PHI), empty when it cannot.
fn control_id_of(raw: &[u8]) -> String {
    String::from_utf8_lossy(&AckHeader::scrape(raw).control_id).into_owned()
}

/// How long a closing connection waits for the frame it is receiving.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Socket send buffer of a connection: answers are small and a sender
/// waits for each, so this holds thousands of them; a sender that stops
/// reading fills it soon and meets the write timeout, instead of the kernel
/// growing the buffer to megabytes first.
const SEND_BUFFER: usize = 64 * 1024;

/// Sets up an accepted connection's socket: TCP keepalive, so one whose
/// peer was powered off or unplugged is closed by the kernel (after about
/// two minutes) instead of holding a connection slot, and a bounded send
/// buffer.
pub(super) fn tune_socket(sock: &TcpStream) -> std::io::Result<()> {
    let params = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    let sock = socket2::SockRef::from(sock);
    sock.set_tcp_keepalive(&params)?;
    sock.set_send_buffer_size(SEND_BUFFER)
}

/// Per-connection limits of a listener.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// Listener name, for spans.
    pub name: String,
    /// Largest frame.
    pub max_frame_bytes: usize,
    /// Idle/slow-frame timeout; `None` = wait forever.
    pub idle_timeout: Option<Duration>,
}

/// Serves one accepted connection to its end.
///
/// `settings` are the listener's as they were when it accepted the
/// connection; `shutdown` turning true (or its sender going away) closes it
/// (see the module's "Closing").
pub(super) async fn serve(
    sock: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    settings: ConnectionSettings,
    shutdown: watch::Receiver<bool>,
) {
    let span = info_span!("mllp", listener = %settings.name, peer = %peer);
    async move {
        debug!("connection accepted");
        match tls {
            None => {
                Connection::new(sock, peer, shared, settings, shutdown)
                    .run()
                    .await
            }
            Some(acceptor) => {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
                    Ok(Ok(stream)) => {
                        Connection::new(stream, peer, shared, settings, shutdown)
                            .run()
                            .await
                    }
                    Ok(Err(e)) => {
                        shared.metrics.tls_failures.fetch_add(1, Ordering::Relaxed);
                        warn!(cause = %e, "TLS handshake refused");
                    }
                    Err(_) => {
                        shared.metrics.tls_failures.fetch_add(1, Ordering::Relaxed);
                        warn!("TLS handshake timed out");
                    }
                }
            }
        }
        debug!("connection closed");
    }
    .instrument(span)
    .await
}

struct Connection<S> {
    stream: S,
    peer: String,
    shared: Arc<Shared>,
    settings: ConnectionSettings,
    shutdown: watch::Receiver<bool>,
    /// Told to close: no new frame is waited for.
    closing: bool,
    /// Until when a closing connection waits for the frame in hand.
    close_by: Option<Instant>,
    decoder: Decoder,
    frame_started: Option<Instant>,
}

/// Why the frame loop ended.
enum Stop {
    /// Peer closed, timed out, or shutdown.
    Done,
    /// The store failed: close without answering.
    StoreFailed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    fn new(
        stream: S,
        peer: SocketAddr,
        shared: Arc<Shared>,
        settings: ConnectionSettings,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let decoder = Decoder::new(settings.max_frame_bytes);
        Connection {
            stream,
            peer: peer.to_string(),
            shared,
            settings,
            shutdown,
            closing: false,
            close_by: None,
            decoder,
            frame_started: None,
        }
    }

    async fn run(mut self) {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = match self.read(&mut buf).await {
                Some(n) => n,
                None => break,
            };
            if n == 0 {
                if let Some(Event::Incomplete { len }) = self.decoder.finish() {
                    warn!(
                        bytes = len,
                        "connection closed in the middle of a frame; nothing stored"
                    );
                }
                break;
            }
            let mut input = buf.get(..n).unwrap_or_default();
            while let Some(event) = self.decoder.decode(&mut input) {
                if matches!(
                    event,
                    Event::Frame(_) | Event::OversizeEnd { .. } | Event::Truncated { .. }
                ) {
                    // A frame ended: the next one's clock starts now.
                    self.frame_started = None;
                }
                match self.on_event(event).await {
                    Ok(()) => {}
                    Err(Stop::Done) => return,
                    Err(Stop::StoreFailed) => {
                        warn!("store unavailable; closing the connection without an answer");
                        return;
                    }
                }
            }
            self.frame_started = (self.decoder.buffered_len() > 0)
                .then(|| self.frame_started.unwrap_or_else(Instant::now));
        }
        let _ = self.stream.shutdown().await;
    }

    /// Reads with the idle and slow-frame limits; `None` ends the connection
    /// (also when told to close, at once between frames, or once the frame
    /// in hand is complete or [`CLOSE_GRACE`] has passed).
    async fn read(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            if !self.closing && *self.shutdown.borrow() {
                self.closing = true;
            }
            if self.closing && self.frame_started.is_none() {
                return None;
            }
            let mut deadline = self.settings.idle_timeout.map(|t| {
                let start = self.frame_started.unwrap_or_else(Instant::now);
                start + t
            });
            if self.closing {
                let grace = *self
                    .close_by
                    .get_or_insert_with(|| Instant::now() + CLOSE_GRACE);
                deadline = Some(deadline.map_or(grace, |d| d.min(grace)));
            }
            let closing = self.closing;
            tokio::select! {
                r = self.stream.read(buf) => return match r {
                    Ok(n) => Some(n),
                    Err(e) => {
                        debug!(cause = %e, "read failed");
                        None
                    }
                },
                _ = sleep_until(deadline) => {
                    info!(partial_frame = self.frame_started.is_some(), closing, "closing idle or too slow connection");
                    return None;
                }
                _ = self.shutdown.changed(), if !closing => self.closing = true,
            }
        }
    }

    async fn on_event(&mut self, event: Event) -> Result<(), Stop> {
        let m = &self.shared.metrics;
        match event {
            Event::Frame(payload) => {
                m.received.fetch_add(1, Ordering::Relaxed);
                let now = u64::try_from(crate::store::now_ms()).unwrap_or(0);
                m.last_message_ms.store(now, Ordering::Relaxed);
                let reply = self.handle_frame(payload).await?;
                self.write(&reply).await
            }
            Event::Garbage { skipped } => {
                m.garbage_bytes.fetch_add(skipped as u64, Ordering::Relaxed);
                if skipped <= TRAILER_LEN {
                    debug!(bytes = skipped, "bytes outside MLLP frames skipped");
                } else {
                    warn!(bytes = skipped, "bytes outside MLLP frames skipped");
                }
                Ok(())
            }
            Event::Oversize { limit, head } => {
                m.oversize.fetch_add(1, Ordering::Relaxed);
                warn!(
                    limit,
                    control_id = %control_id_of(&head),
                    "frame larger than max_frame; discarding it and answering AE"
                );
                let nak = ingest::oversize_nak(
                    &self.shared.iface,
                    &head,
                    limit,
                    &Stamp::now(),
                    &self.shared.ids,
                );
                self.write(&nak).await
            }
            Event::OversizeEnd { len } => {
                info!(bytes = len, "oversize frame ended");
                Ok(())
            }
            Event::Truncated { len } => {
                warn!(
                    bytes = len,
                    "frame cut off by a new start block; discarded, sender will resend"
                );
                Ok(())
            }
            Event::Incomplete { .. } => Ok(()),
        }
    }

    /// Prepares (on the prepare pool, off the async workers), stores and
    /// returns the bytes to answer with.
    async fn handle_frame(&self, payload: Vec<u8>) -> Result<Vec<u8>, Stop> {
        let shared = &self.shared;
        let (prepared, payload, stamp) = self.prepare(payload).await?;
        let payload = payload.as_slice();
        let incoming_ack = prepared.is_incoming_ack();
        if incoming_ack {
            shared.metrics.acks_received.fetch_add(1, Ordering::Relaxed);
        }
        if prepared.no_ack_requested() {
            shared
                .metrics
                .no_ack_requested
                .fetch_add(1, Ordering::Relaxed);
        }
        match prepared {
            Prepared::Store { message, .. } if incoming_ack => {
                let span = info_span!("message", control_id = %message.control_id);
                let result = shared.store.insert(*message).instrument(span.clone()).await;
                let _enter = span.enter();
                match result {
                    Ok(_) => {
                        info!(
                            "acknowledgment received: kept, not answered (an ACK is never acknowledged)"
                        );
                        Ok(Vec::new())
                    }
                    Err(e) => self.store_failed(e, payload, &stamp),
                }
            }
            Prepared::Store { message, warnings } => {
                let control_id = message.control_id.clone();
                let ack = message.ack.clone();
                let span =
                    info_span!("message", control_id = %control_id, kind = %message.message_type);
                let result = shared.store.insert(*message).instrument(span.clone()).await;
                let _enter = span.enter();
                match result {
                    Ok(Inserted::Stored {
                        seq,
                        reused_control_id,
                        ..
                    }) => {
                        shared.metrics.acked.fetch_add(1, Ordering::Relaxed);
                        if reused_control_id {
                            shared
                                .metrics
                                .control_id_reused
                                .fetch_add(1, Ordering::Relaxed);
                            warn!(
                                seq,
                                "control id seen recently with other content; stored as a new \
                                 record (the sender reuses control ids, or changed a resend)"
                            );
                        } else {
                            debug!(seq, warnings, "stored");
                        }
                        Ok(ack)
                    }
                    Ok(Inserted::Duplicate { ack, .. }) => {
                        shared.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                        info!("resend of a stored message; answering with the stored ACK");
                        Ok(ack)
                    }
                    Err(e) => self.store_failed(e, payload, &stamp),
                }
            }
            Prepared::Quarantine(entry) => {
                let nak = entry.ack.clone();
                let code = entry.error_code;
                let control_id = control_id_of(&entry.raw);
                match shared.store.quarantine(*entry).await {
                    Ok(id) => {
                        shared.metrics.quarantined.fetch_add(1, Ordering::Relaxed);
                        if incoming_ack {
                            warn!(
                                quarantine_id = id,
                                error_code = code,
                                control_id = %control_id,
                                "acknowledgment kept in quarantine, not answered"
                            );
                        } else {
                            warn!(
                                quarantine_id = id,
                                error_code = code,
                                control_id = %control_id,
                                "message rejected (AE) and kept in quarantine"
                            );
                        }
                        Ok(nak)
                    }
                    Err(e) => self.store_failed(e, payload, &stamp),
                }
            }
        }
    }

    /// Prepares a frame on the prepare pool; gives it back with the
    /// outcome and the time it was stamped with. A frame that could not be
    /// prepared closes the connection unanswered (the sender resends).
    async fn prepare(&self, payload: Vec<u8>) -> Result<(Prepared, Vec<u8>, Stamp), Stop> {
        let shared = Arc::clone(&self.shared);
        let pool = &self.shared.pool;
        match pool
            .prepare(shared, payload, self.peer.clone(), Stamp::now())
            .await
        {
            Ok(done) => Ok(done),
            Err(e) => {
                warn!(cause = %e, "closing the connection without an answer; the sender will resend");
                Err(Stop::Done)
            }
        }
    }

    fn store_failed(&self, e: StoreError, payload: &[u8], stamp: &Stamp) -> Result<Vec<u8>, Stop> {
        let shared = &self.shared;
        match e {
            StoreError::Full { .. } | StoreError::Transient { .. } => {
                shared.metrics.rejected.fetch_add(1, Ordering::Relaxed);
                warn!(
                    cause = %e,
                    control_id = %control_id_of(payload),
                    "message not stored; answering AR so the sender retries"
                );
                Ok(ingest::rejection(
                    &shared.iface,
                    payload,
                    ErrorCode::RecordLocked,
                    refusal_reason(&e),
                    stamp,
                    &shared.ids,
                ))
            }
            _ => {
                warn!(cause = %e, "store failed");
                Err(Stop::StoreFailed)
            }
        }
    }

    /// Writes an answer; a sender that does not take it within the idle
    /// timeout (or [`WRITE_TIMEOUT`]) loses the connection. What was
    /// committed stays committed: its resend gets the stored ACK.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        if bytes.is_empty() {
            return Ok(());
        }
        let limit = self.settings.idle_timeout.unwrap_or(WRITE_TIMEOUT);
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(limit, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                debug!(cause = %e, "write failed");
                Err(Stop::Done)
            }
            Err(_) => {
                info!("closing a connection whose sender does not read its answers");
                Err(Stop::Done)
            }
        }
    }
}

/// The text of the AR's ERR for a message the store could not take now.
fn refusal_reason(e: &StoreError) -> &'static str {
    match e {
        StoreError::Full {
            cause: FullCause::Quarantine { .. },
        } => "gateway quarantine full (rejected messages wait for a technician); retry later",
        StoreError::Full { .. } => "gateway storage full; retry later",
        _ => "gateway storage busy; retry later",
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
