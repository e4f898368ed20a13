//! The async side of the store: [`StoreHandle`], cloned into every task
//! that writes, plus the health and progress signals the writer publishes.
//!
//! Every call sends one request to the writer over a bounded channel (so a
//! slow disk slows senders instead of growing memory) and waits for its
//! answer, which comes only after the request's transaction has committed.
//! Dropping a call's future after it was sent does not cancel the request:
//! it may still commit (a later resend then gets the stored ACK).

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::{mpsc, oneshot, watch};

use super::{
    custody::Receipted,
    error::StoreError,
    hub_link::HubLinkRow,
    quarantine::{Quarantined, Resolution},
    reader::StoreReader,
    request::{AuditLine, Forward, Inserted, NewMessage, Op, Park, Pending, Replay, Resolve},
};

/// The writer's state, published on a `watch` channel.
#[derive(Debug, Clone)]
pub enum StoreHealth {
    /// Accepting requests.
    Running,
    /// Stopped after every handle was dropped (clean shutdown).
    Stopped,
    /// Stopped by an I/O error or corruption during a write. Nothing after
    /// the last successful commit was acknowledged; exit non-zero.
    Failed {
        /// The error that stopped the writer.
        error: Arc<rusqlite::Error>,
    },
    /// Stopped because the background integrity check found the database
    /// corrupt; exit non-zero, the next start sets the file aside.
    Corrupt {
        /// What the check reported.
        detail: String,
    },
}

impl StoreHealth {
    /// True when the writer stopped because of a failure.
    pub fn is_failed(&self) -> bool {
        matches!(self, Self::Failed { .. } | Self::Corrupt { .. })
    }

    /// The error a request gets when the writer is no longer running.
    fn as_error(&self) -> StoreError {
        match self {
            Self::Failed { error } => StoreError::Fatal {
                source: Arc::clone(error),
            },
            Self::Corrupt { detail } => StoreError::Corrupt {
                detail: detail.clone(),
            },
            Self::Running | Self::Stopped => StoreError::Closed,
        }
    }
}

/// Counters the writer keeps in memory (since start).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) transactions: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) heartbeat_ms: AtomicU64,
}

/// A snapshot of the writer's progress counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterMetrics {
    /// Transactions committed since start.
    pub transactions: u64,
    /// Requests taken from the channel since start.
    pub requests: u64,
    /// When the writer loop last went round, Unix milliseconds. It goes
    /// round at least every second while healthy, busy or idle; a value
    /// much older than that means the writer is stuck (a watchdog's cue).
    pub heartbeat_ms: u64,
}

/// The writer's side of the signals, kept by the writer thread.
#[derive(Debug)]
pub(crate) struct Signals {
    pub(crate) shared: Arc<Shared>,
    pub(crate) health: watch::Sender<StoreHealth>,
    pub(crate) committed: watch::Sender<i64>,
}

/// A cheap, cloneable handle to the store's writer.
#[derive(Debug, Clone)]
pub struct StoreHandle {
    ops: mpsc::Sender<Op>,
    shared: Arc<Shared>,
    health: watch::Receiver<StoreHealth>,
    committed: watch::Receiver<i64>,
    path: PathBuf,
}

impl StoreHandle {
    /// Creates the handle and the writer's side of its signals.
    pub(crate) fn new(ops: mpsc::Sender<Op>, path: PathBuf, last_seq: i64) -> (Self, Signals) {
        let shared = Arc::new(Shared::default());
        let now = u64::try_from(super::now_ms()).unwrap_or(0);
        shared.heartbeat_ms.store(now, Ordering::Relaxed);
        let (health_tx, health) = watch::channel(StoreHealth::Running);
        let (committed_tx, committed) = watch::channel(last_seq);
        let handle = Self {
            ops,
            shared: Arc::clone(&shared),
            health,
            committed,
            path,
        };
        let signals = Signals {
            shared,
            health: health_tx,
            committed: committed_tx,
        };
        (handle, signals)
    }

    /// Stores a message (or recognizes a resend). `Ok` means committed with
    /// `synchronous=FULL`: the positive ACK may be sent.
    pub async fn insert(&self, msg: NewMessage) -> Result<Inserted, StoreError> {
        self.call(|reply| Op::Insert(Pending { req: msg, reply }))
            .await
    }

    /// Keeps a rejected message in quarantine; returns its id.
    pub async fn quarantine(&self, entry: Quarantined) -> Result<i64, StoreError> {
        self.call(|reply| Op::Quarantine(Pending { req: entry, reply }))
            .await
    }

    /// Deletes the records the broker acknowledged (or marks them sent when
    /// sent records are retained; in receipt mode, marks them at broker to
    /// wait for the hub's receipt); returns how many rows were found.
    pub async fn forwarded(&self, seqs: Vec<i64>, now_ms: i64) -> Result<u64, StoreError> {
        let req = Forward { seqs, now_ms };
        self.call(|reply| Op::Forwarded(Pending { req, reply }))
            .await
    }

    /// Applies a custody receipt (receipt mode): every named record still queued leaves the
    /// queue, in one transaction. Returns how many rows it named that the store held (ids it
    /// no longer holds are ignored: a receipt may repeat).
    pub async fn receipted(&self, ids: Vec<uuid::Uuid>, now_ms: i64) -> Result<u64, StoreError> {
        let req = Receipted { ids, now_ms };
        self.call(|reply| Op::Receipt(Pending { req, reply })).await
    }

    /// Replaces the recorded hub connection state (read by `hl7edge status`).
    pub async fn record_hub_link(&self, row: HubLinkRow) -> Result<(), StoreError> {
        self.call(|reply| Op::HubLink(Pending { req: row, reply }))
            .await
    }

    /// Sets an unsent record aside because it can never fit the hub's
    /// payload limit: it stays in the store, unsent, and the forwarder's
    /// reads skip it until a technician replays or drops it. `detail` is
    /// the audit line's text (never PHI). Returns false when the record is
    /// gone, sent or already parked.
    pub async fn park(&self, seq: i64, detail: String, at_ms: i64) -> Result<bool, StoreError> {
        let req = Park { seq, at_ms, detail };
        self.call(|reply| Op::Park(Pending { req, reply })).await
    }

    /// Marks an open quarantine entry as replayed as `record` (audited); its raw bytes are
    /// erased once that record has left the queue.
    pub async fn mark_quarantine_replayed(
        &self,
        id: i64,
        record: uuid::Uuid,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.resolve(id, Resolution::Replayed, Some(record), at_ms)
            .await
    }

    /// Stores `message` (quarantine entry `id` prepared again) and marks the entry replayed,
    /// in one transaction (audited), as `hl7edge quarantine replay` does from another process.
    /// Fails with [`StoreError::NotFound`] when the entry is not open, and with
    /// [`StoreError::Full`] when the store has no room; then nothing changed.
    pub async fn replay_quarantined(
        &self,
        id: i64,
        message: NewMessage,
        at_ms: i64,
    ) -> Result<Inserted, StoreError> {
        let req = Replay { id, message, at_ms };
        self.call(|reply| Op::Replay(Pending { req, reply })).await
    }

    /// Drops an open quarantine entry, erasing its raw bytes (audited).
    pub async fn drop_quarantine(&self, id: i64, at_ms: i64) -> Result<(), StoreError> {
        self.resolve(id, Resolution::Dropped, None, at_ms).await
    }

    /// Appends a line to the audit trail. `detail` must not contain PHI.
    pub async fn audit(
        &self,
        kind: impl Into<String>,
        detail: impl Into<String>,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let req = AuditLine {
            at_ms,
            kind: kind.into(),
            detail: detail.into(),
        };
        self.call(|reply| Op::Audit(Pending { req, reply })).await
    }

    /// The writer's health; changes when it stops.
    pub fn health(&self) -> watch::Receiver<StoreHealth> {
        self.health.clone()
    }

    /// The highest committed record seq; changes after every commit that
    /// stored a record (the forwarder's wake-up).
    pub fn committed(&self) -> watch::Receiver<i64> {
        self.committed.clone()
    }

    /// The writer's progress counters.
    pub fn metrics(&self) -> WriterMetrics {
        WriterMetrics {
            transactions: self.shared.transactions.load(Ordering::Relaxed),
            requests: self.shared.requests.load(Ordering::Relaxed),
            heartbeat_ms: self.shared.heartbeat_ms.load(Ordering::Relaxed),
        }
    }

    /// Opens a new read-only connection to the store.
    pub fn open_reader(&self) -> Result<StoreReader, StoreError> {
        StoreReader::open(&self.path)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn resolve(
        &self,
        id: i64,
        how: Resolution,
        record: Option<uuid::Uuid>,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let req = Resolve {
            id,
            how,
            at_ms,
            record,
        };
        self.call(|reply| Op::Resolve(Pending { req, reply })).await
    }

    async fn call<A>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<A, StoreError>>) -> Op,
    ) -> Result<A, StoreError> {
        let (reply, answer) = oneshot::channel();
        if self.ops.send(make(reply)).await.is_err() {
            return Err(self.health.borrow().as_error());
        }
        match answer.await {
            Ok(result) => result,
            Err(_dropped) => Err(self.health.borrow().as_error()),
        }
    }
}
