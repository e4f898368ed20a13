//! The durable store: an SQLite queue between the MLLP listener and the
//! MQTT forwarder. It is what makes "AA means on disk" true.
//!
//! # Invariants
//!
//! 1. **Committed means fsynced.** The database runs in WAL mode with
//!    `synchronous=FULL` (read back at open; open fails otherwise), so a
//!    COMMIT returns only after the log is fsynced. A request is answered
//!    with success only after the COMMIT of the transaction holding it
//!    returned OK; the listener sends AA only after that answer.
//! 2. **One writer, group commit.** A single OS thread owns the only write
//!    connection. It takes every request waiting at that moment (up to
//!    `max_batch`), applies them in one transaction and commits once.
//!    Requests arrive over a bounded channel: a slow disk applies
//!    backpressure to senders, memory stays bounded. The forwarder's
//!    deletes share these transactions. One more connection only copies
//!    the log into the database file (passive checkpoints, never between a
//!    COMMIT and its answers), and the writer keeps the log within its
//!    standing size; see `checkpoint.rs`.
//! 3. **A failed write is never retried into an ACK.** An I/O error (a
//!    failed fsync included) or corruption during a write answers every
//!    waiting request with [`StoreError::Fatal`], stops the writer and is
//!    published as [`StoreHealth::Failed`]; the process exits non-zero and
//!    SQLite recovers from the log at the next start. A full filesystem is
//!    not fatal: inserts get [`StoreError::Full`] (AR), deletes go on.
//! 4. **Seq orders records.** `records.seq` is `AUTOINCREMENT`, assigned in
//!    commit order and never reused; the forwarder reads in seq order, so
//!    per-source order is the order of acknowledgement, whatever the clock
//!    does. Each record also gets a UUIDv7 id at commit, stable across
//!    resends to the hub, and its source's next number (`source_seq`: 1,
//!    2, 3, ... per source, without gaps, never reused, raised in the
//!    inserting transaction), which travels in the envelope so that any
//!    consumer can detect gaps and restore the order.
//! 5. **Rows leave only after custody passes**: the broker's PUBACK
//!    (`forwarded`), or in receipt mode the hub's custody receipt
//!    (`receipted`; a PUBACK only marks the row at broker, `custody.rs`);
//!    deleted at once or marked sent and purged after `retain_sent`, or
//!    when a technician drops a parked row (audited). Deletes use `secure_delete`, so purged
//!    PHI does not linger in free pages. A row that can never fit the hub's
//!    payload limit is parked, not dropped: kept unsent, skipped by the
//!    forwarder's reads and counted apart from the queue (`parked.rs`).
//! 6. **A resend is not a second record.** Same source + control id + content
//!    hash within `dedupe_window` gets the first record's id and stored ACK
//!    (kept in `dedupe`, independent of `records`). Same control id with
//!    other content is stored and counted as a reuse.
//! 7. **Bounded size, drainable when full.** Live pages plus the incoming
//!    batch (plus any WAL growth beyond its standing 16 MiB) never exceed
//!    `max_bytes`, and new messages are refused before the filesystem would
//!    keep less than `reserve_bytes` free, so deletes can always commit:
//!    past either limit inserts get [`StoreError::Full`] (never
//!    drop-oldest). Freed pages are reused, so deletes make room and ingest
//!    resumes by itself. See `space.rs`.
//! 8. **Damage is moved aside, not crash-looped on.** See `open.rs` and
//!    `recovery.rs` for what is checked at open, when `quick_check` runs in
//!    the background, and how a damaged file is set aside (`set_aside.rs`
//!    lists such files and erases them on a technician's request).
//! 9. **Patient data at rest is minimal and bounded.** A record keeps its
//!    raw HL7 only when its interface forwards it. The quarantine counts
//!    against its own cap (`quarantine_max_bytes`), not `max_bytes`, and
//!    keeps a message at most `quarantine_retention`; a replayed entry's
//!    message is erased once its record has left the queue. Erasures run in
//!    the writer's housekeeping, with `now` passed in, audited (`at_rest.rs`).
//!
//! # Tables (schema version in `PRAGMA user_version`, see `schema.rs`)
//!
//! | table | holds |
//! |---|---|
//! | `records` | committed messages (encoded record; raw HL7 only for interfaces that forward it) until forwarded; `parked_at_ms` marks one set aside as too big for the hub |
//! | `dedupe` | source, control id, content hash → record id + ACK, for the window |
//! | `quarantine` | rejected messages with their error and NAK; raw bytes erased once replayed and forwarded, dropped, or past `quarantine.retention` |
//! | `quarantine_usage` | the bytes the quarantine holds, kept by triggers, against `quarantine.max_bytes` |
//! | `audit` | recoveries, purges, quarantine decisions, config changes (no PHI) |
//! | `source_stats` | lifetime counters per source, updated in the same transaction |
//! | `awaiting_receipt` | receipt mode: rows the broker acknowledged, waiting for the hub's receipt (`custody.rs`) |
//! | `hub_link` | one row: the hub connection as the forwarder last saw it (`hub_link.rs`) |
//! | `source_sequence` | each source's last record number (`records.source_seq`) |
//!
//! # Use
//!
//! [`Store::open`] (blocking: call it before starting the runtime or from
//! `spawn_blocking`) returns a [`StoreHandle`] for the async tasks, the
//! [`StoreWriter`] to join at shutdown, and an [`OpenReport`]. Readers open
//! their own connection with [`StoreReader::open`]. A second process (the
//! `hl7edge quarantine` commands) changes the database through
//! [`offline`], next to a running agent.

mod apply;
mod at_rest;
mod audit;
mod batch_audit;
mod checkpoint;
pub mod custody;
mod error;
mod handle;
mod hub_link;
mod ingest;
pub mod offline;
mod open;
mod parked;
mod quarantine;
mod reader;
mod recovery;
mod request;
mod schema;
pub mod set_aside;
pub(crate) mod space;
mod stats;
mod tally;
mod writer;

use std::{
    num::NonZeroUsize,
    path::PathBuf,
    thread::JoinHandle,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::sync::mpsc;

pub use self::{
    at_rest::{QuarantineLimits, QuarantineOutlook},
    audit::{AuditEntry, ChainedEntry, Verdict, hex},
    error::{FullCause, StoreError},
    handle::{StoreHandle, StoreHealth, WriterMetrics},
    hub_link::HubLinkRow,
    open::{IntegrityCheck, OpenReport},
    quarantine::{QuarantineEntry, QuarantineSummary, Quarantined, Resolution},
    reader::{Awaiting, ParkedRecord, PendingQuery, PendingRecord, Pick, StoreReader, StoreStats},
    recovery::{LostRows, Recovery},
    request::{Inserted, NewMessage},
    space::{DEFAULT_RESERVE_BYTES, STANDING_WAL_BYTES, SpaceOutlook, overhead_bytes},
    stats::SourceStats,
};

/// How the store is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The database file; its directory must exist and be writable.
    pub path: PathBuf,
    /// Most bytes the store may use (live pages, plus WAL growth beyond
    /// its standing 16 MiB). Past it, new messages are refused with
    /// [`StoreError::Full`].
    pub max_bytes: u64,
    /// How long a forwarded record is kept (marked sent) before it is
    /// purged; zero deletes it at PUBACK.
    pub retain_sent: Duration,
    /// How long a stored message is remembered to recognize a resend.
    pub dedupe_window: Duration,
    /// Most requests committed in one transaction.
    pub max_batch: NonZeroUsize,
    /// Requests that may wait for the writer before senders are slowed.
    pub channel_capacity: NonZeroUsize,
    /// Filesystem space kept free for deletes and checkpoints: new
    /// messages are refused before the filesystem would keep less than
    /// this available, so a full disk can always be drained. Zero turns
    /// the check off (then only the filesystem's own `ENOSPC` refuses).
    pub reserve_bytes: u64,
    /// Stores with up to this many bytes of live pages get the full
    /// integrity check during open; larger ones get it in the background,
    /// so that a large backlog does not delay accepting (see `open.rs`).
    pub sync_check_max_bytes: u64,
    /// The quarantine's own cap (`quarantine.max_bytes`): rejected messages
    /// kept for a technician count against it, never against `max_bytes`.
    pub quarantine_max_bytes: u64,
    /// How long a quarantine entry keeps its raw message
    /// (`quarantine.retention`); older ones are erased, audited.
    pub quarantine_retention: Duration,
    /// Receipt mode (`hub.custody = "receipt"`): a PUBACK marks a row at
    /// broker instead of deleting it, and a row is published again when no
    /// receipt came within this (see `custody.rs`). `None`: puback mode.
    pub receipt_timeout: Option<Duration>,
    /// The length of an hour for the per-hour message counts of each source (`silence.hour`:
    /// one hour, shorter only in tests).
    pub rhythm_hour: Duration,
}

/// The quarantine's default cap.
pub const DEFAULT_QUARANTINE_MAX_BYTES: u64 = 256 << 20;
/// The quarantine's default retention.
pub const DEFAULT_QUARANTINE_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// Default request batch size.
const DEFAULT_MAX_BATCH: NonZeroUsize = NonZeroUsize::new(512).unwrap();
/// Default channel capacity.
const DEFAULT_CHANNEL_CAPACITY: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

impl StoreConfig {
    /// A configuration with the defaults: 2 GiB, delete at PUBACK, a 24 h
    /// dedupe window, batches of 512, 1024 waiting requests, a 16 MiB
    /// filesystem reserve, a synchronous integrity check up to 16 MiB, and
    /// a quarantine of 256 MiB keeping messages for 30 days.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            max_bytes: 2 << 30,
            retain_sent: Duration::ZERO,
            dedupe_window: Duration::from_secs(24 * 3600),
            max_batch: DEFAULT_MAX_BATCH,
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            reserve_bytes: DEFAULT_RESERVE_BYTES,
            sync_check_max_bytes: 16 << 20,
            quarantine_max_bytes: DEFAULT_QUARANTINE_MAX_BYTES,
            quarantine_retention: DEFAULT_QUARANTINE_RETENTION,
            receipt_timeout: None,
            rhythm_hour: Duration::from_secs(3600),
        }
    }

    fn limits(&self) -> apply::Limits {
        apply::Limits {
            max_bytes: self.max_bytes,
            retain_sent_ms: duration_ms(self.retain_sent),
            dedupe_window_ms: duration_ms(self.dedupe_window),
            receipt_timeout_ms: self.receipt_timeout.map(duration_ms),
            reserve_bytes: self.reserve_bytes,
            db_path: self.path.clone(),
            wal_path: reader::wal_path(&self.path),
            quarantine_max_bytes: self.quarantine_max_bytes,
            quarantine_retention_ms: duration_ms(self.quarantine_retention),
            rhythm_hour_ms: duration_ms(self.rhythm_hour).max(1),
        }
    }
}

/// Entry point: opens the store and starts its writer.
#[derive(Debug)]
pub struct Store;

/// An open store: its handle, its writer thread and what opening found.
#[derive(Debug)]
pub struct OpenedStore {
    /// Clone this into every task that writes.
    pub handle: StoreHandle,
    /// Join this at shutdown, after dropping every handle.
    pub writer: StoreWriter,
    /// What happened during open.
    pub report: OpenReport,
}

impl Store {
    /// Opens (creating, migrating, checking and if damaged setting aside)
    /// the database, then starts the writer thread. Blocking.
    pub fn open(cfg: StoreConfig) -> Result<OpenedStore, StoreError> {
        let opened = open::open(&cfg)?;
        let (ops, receiver) = mpsc::channel(cfg.channel_capacity.get());
        let weak = ops.downgrade();
        let (handle, signals) = StoreHandle::new(ops, cfg.path.clone(), opened.report.last_seq);
        let checkpointer = checkpoint::Kicker::spawn(&cfg.path)?;
        let mut writer =
            writer::Writer::new(opened.conn, cfg.limits(), cfg.max_batch.get(), signals)
                .with_checkpointer(checkpointer);
        if opened.report.integrity == IntegrityCheck::Background {
            let check = recovery::spawn_background_check(cfg.path.clone(), weak)?;
            writer = writer.stop_on_exit(check);
        }
        let thread = writer.spawn(receiver)?;
        tracing::info!(
            elapsed = ?opened.report.elapsed,
            last_seq = opened.report.last_seq,
            db_bytes = opened.report.db_bytes,
            integrity = ?opened.report.integrity,
            "store open"
        );
        Ok(OpenedStore {
            handle,
            writer: StoreWriter { thread },
            report: opened.report,
        })
    }
}

/// The writer thread. It stops when every [`StoreHandle`] is dropped (after
/// answering what was queued) or on a fatal error.
#[derive(Debug)]
pub struct StoreWriter {
    thread: JoinHandle<Result<(), StoreError>>,
}

impl StoreWriter {
    /// Waits for the writer to stop (blocking); returns the error that
    /// stopped it, if one did.
    pub fn join(self) -> Result<(), StoreError> {
        self.thread
            .join()
            .unwrap_or(Err(StoreError::WriterPanicked))
    }

    /// True once the writer thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// A small message's size: "would the store take one now?" is asked with it (status, heartbeat).
pub const PROBE_MESSAGE_BYTES: u64 = 4096;

/// `path` with `suffix` appended to its file name (`queue.db` + `-wal`).
pub fn sibling(path: &std::path::Path, suffix: &str) -> PathBuf {
    recovery::with_suffix(path, suffix)
}

/// The wall clock in Unix milliseconds (0 before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
