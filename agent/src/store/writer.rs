//! The writer thread: the only connection that writes, and group commit.
//!
//! Loop: wait (at most a second) for one request; take every request
//! already waiting, up to `max_batch`; apply them all in one `IMMEDIATE`
//! transaction; COMMIT; only then answer each request. Throughput comes
//! from the number of requests per fsync, never from a weaker sync mode
//! for anything promised. The forwarder's deletes travel on the same
//! channel, so they share these transactions with ingest rather than
//! paying for commits of their own.
//!
//! A batch of nothing but forwarded deletes commits with
//! `synchronous=NORMAL`: its log frames are not synced by that commit but
//! by the next durable one (or before the next checkpoint copies them).
//! The log is append-only and its frames are checksummed in a chain, so a
//! power cut can lose only the newest unsynced deletes, never a later
//! commit; those records are then sent again under the same ids, which
//! the hub drops as duplicates. Every other batch commits with
//! `synchronous=FULL`. A drain (nothing but deletes) thus pays no fsync per
//! commit, and at a low message rate a delete does not double the fsyncs
//! each message costs.
//!
//! Checkpoints never run between a COMMIT and its answers: SQLite's
//! automatic checkpoint is off, the checkpointer thread copies the log in
//! the background, and the writer itself checkpoints only when it has been
//! idle for a tick or the WAL passed its bound (see `checkpoint.rs`).
//!
//! Failure handling, by [`FailureKind`]:
//! - `Full`: roll back; answer the inserts and quarantines `Full`; retry
//!   the rest (forwarded deletes must keep working on a full disk).
//! - `Transient` in one request: roll back, answer that request, retry the
//!   others without it (one bad request cannot starve the rest).
//! - `Fatal` (I/O error, failed fsync, corruption): roll back, answer every
//!   request in the batch and in the channel with `Fatal`, publish
//!   [`StoreHealth::Failed`] and stop. The commit is never retried.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::mpsc;

use super::{
    apply::{self, Applied, Failure, Limits},
    checkpoint::{self, Kicker},
    error::{FailureKind, StoreError},
    handle::{Signals, StoreHealth},
    ingest, now_ms,
    recovery::CheckStopper,
    request::{Batch, Op},
    schema,
    tally::Tally,
};

/// The writer wakes at least this often, to beat its heartbeat.
const TICK: Duration = Duration::from_secs(1);
/// Pruning of expired dedupe entries and sent rows runs this often.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(30);
/// At most this many dedupe entries are pruned per transaction.
const PRUNE_LIMIT: usize = 5_000;
/// At most this many pruning transactions run per housekeeping pass.
const HOUSEKEEPING_ROUNDS: usize = 20;

/// The writer thread's state.
#[derive(Debug)]
pub(crate) struct Writer {
    conn: Connection,
    limits: Limits,
    max_batch: usize,
    signals: Signals,
    last_housekeeping: Instant,
    wal_dirty: bool,
    check: Option<CheckStopper>,
    checkpointer: Option<Kicker>,
    tally: Tally,
    /// Frames in the log after the last commit, from SQLite's WAL hook.
    wal_frames: Arc<AtomicI64>,
    /// Whether the connection's commits are synced (`synchronous=FULL`,
    /// as `schema::configure_writer` leaves it) or not (`NORMAL`).
    synced_commits: bool,
}

impl Writer {
    /// Wraps an open, configured and migrated write connection.
    pub(crate) fn new(
        conn: Connection,
        limits: Limits,
        max_batch: usize,
        signals: Signals,
    ) -> Self {
        Self {
            conn,
            limits,
            max_batch: max_batch.max(1),
            signals,
            last_housekeeping: Instant::now(),
            wal_dirty: false,
            check: None,
            checkpointer: None,
            tally: Tally::default(),
            wal_frames: Arc::new(AtomicI64::new(0)),
            synced_commits: true,
        }
    }

    /// Lets this checkpointer copy the log in the background; without one
    /// the writer checkpoints when idle or past the WAL bound only.
    pub(crate) fn with_checkpointer(mut self, checkpointer: Kicker) -> Self {
        self.checkpointer = Some(checkpointer);
        self
    }

    /// Stops this background integrity check when the writer stops.
    pub(crate) fn stop_on_exit(mut self, check: CheckStopper) -> Self {
        self.check = Some(check);
        self
    }

    /// Starts the writer on its own OS thread.
    pub(crate) fn spawn(
        self,
        ops: mpsc::Receiver<Op>,
    ) -> Result<JoinHandle<Result<(), StoreError>>, StoreError> {
        // A small runtime of its own gives the thread a receive timeout.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(StoreError::Thread)?;
        let runtime = OwnRuntime(Some(runtime));
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || self.run(&runtime, ops))
            .map_err(StoreError::Thread)
    }

    fn run(mut self, runtime: &OwnRuntime, mut ops: mpsc::Receiver<Op>) -> Result<(), StoreError> {
        self.track_wal();
        let outcome = match &runtime.0 {
            Some(runtime) => self.serve(runtime, &mut ops),
            None => Ok(()),
        };
        if let Some(check) = &self.check {
            check.stop();
        }
        if let Some(checkpointer) = &mut self.checkpointer {
            checkpointer.stop();
        }
        match &outcome {
            Ok(()) => {
                self.signals.health.send_replace(StoreHealth::Stopped);
                tracing::info!("store writer stopped");
            }
            Err(err) => refuse_remaining(&mut ops, err),
        }
        outcome
    }

    fn serve(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ops: &mut mpsc::Receiver<Op>,
    ) -> Result<(), StoreError> {
        loop {
            self.beat();
            let first = runtime.block_on(async { tokio::time::timeout(TICK, ops.recv()).await });
            let op = match first {
                Err(_idle) => {
                    self.idle()?;
                    continue;
                }
                Ok(None) => return Ok(()),
                Ok(Some(op)) => op,
            };
            let mut batch = Batch::default();
            batch.push(op);
            while batch.len() < self.max_batch && batch.halt.is_none() {
                match ops.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_empty) => break,
                }
            }
            self.process(batch)?;
            self.between_batches()?;
        }
    }

    /// Counts the log's frames after every commit (the hook runs inside
    /// COMMIT and only stores a number). Without it the log is still
    /// checkpointed when idle, just not bounded under load; so a failure
    /// here is logged, not fatal.
    fn track_wal(&mut self) {
        let frames = Arc::clone(&self.wal_frames);
        let hook = move |_: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
            frames.store(i64::from(pages), Ordering::Relaxed);
            Ok(())
        };
        if let Err(err) = self.conn.wal_hook(Some(hook)) {
            tracing::warn!(cause = %err, "cannot watch the write-ahead log's size");
        }
    }

    fn beat(&self) {
        let now = u64::try_from(now_ms()).unwrap_or(0);
        self.signals
            .shared
            .heartbeat_ms
            .store(now, Ordering::Relaxed);
    }

    /// Commits one batch and answers it; `Err` means the writer must stop.
    fn process(&mut self, mut batch: Batch) -> Result<(), StoreError> {
        if let Some(detail) = batch.halt.take() {
            return Err(self.halt(batch, detail));
        }
        let taken = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        self.signals
            .shared
            .requests
            .fetch_add(taken, Ordering::Relaxed);
        while !batch.is_empty() {
            let started = Instant::now();
            match self.commit(&batch) {
                Ok(applied) => {
                    self.tally.committed(&batch, started.elapsed());
                    self.committed(&applied);
                    batch.answer(applied.results);
                    return Ok(());
                }
                Err(failure) => self.recover(&mut batch, failure)?,
            }
        }
        Ok(())
    }

    /// Answers the requests a failed transaction cannot serve, leaving in
    /// `batch` those worth retrying; `Err` means the writer must stop.
    fn recover(&mut self, batch: &mut Batch, failure: Failure) -> Result<(), StoreError> {
        let kind = FailureKind::of(failure.error);
        match (&kind, failure.culprit) {
            (FailureKind::Fatal(error), _) => {
                tracing::error!(cause = %error, "store write failed; stopping the writer");
                self.signals.health.send_replace(StoreHealth::Failed {
                    error: Arc::clone(error),
                });
                batch.fail_all(|| kind.to_error());
                return Err(kind.to_error());
            }
            (FailureKind::Full, _) if batch.grows() => {
                tracing::warn!("filesystem full; refusing new messages in this batch");
                batch.refuse_growth();
            }
            (FailureKind::Transient(error), Some(culprit)) => {
                tracing::warn!(cause = %error, ?culprit, "store request failed; retrying the rest of its batch");
                batch.eject(culprit, &kind);
            }
            _ => {
                tracing::warn!(?kind, "store batch failed");
                batch.fail_all(|| kind.to_error());
            }
        }
        Ok(())
    }

    fn commit(&mut self, batch: &Batch) -> Result<Applied, Failure> {
        self.sync_commits(batch.must_be_durable())
            .map_err(Failure::whole)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Failure::whole)?;
        let applied = apply::apply(&tx, batch, &self.limits)?;
        // On error the transaction is rolled back when `tx` drops.
        tx.commit().map_err(Failure::whole)?;
        Ok(applied)
    }

    /// Sets whether the next commits are synced, when that changes.
    fn sync_commits(&mut self, synced: bool) -> rusqlite::Result<()> {
        if self.synced_commits != synced {
            // FULL (2) or NORMAL (1); the value is checked by the tests.
            self.conn
                .pragma_update(None, "synchronous", if synced { 2 } else { 1 })?;
            self.synced_commits = synced;
        }
        Ok(())
    }

    fn committed(&mut self, applied: &Applied) {
        self.wal_dirty = true;
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.kick();
        }
        self.signals
            .shared
            .transactions
            .fetch_add(1, Ordering::Relaxed);
        if let Some(seq) = applied.last_seq {
            self.signals.committed.send_replace(seq);
        }
    }

    fn halt(&mut self, mut batch: Batch, detail: String) -> StoreError {
        tracing::error!(%detail, "store integrity check failed; stopping the writer");
        self.signals.health.send_replace(StoreHealth::Corrupt {
            detail: detail.clone(),
        });
        batch.fail_all(|| StoreError::Corrupt {
            detail: detail.clone(),
        });
        StoreError::Corrupt { detail }
    }

    /// Work between two batches, after the first was answered: the WAL
    /// bound, and housekeeping when due.
    fn between_batches(&mut self) -> Result<(), StoreError> {
        if self.wal_frames.load(Ordering::Relaxed) > checkpoint::WAL_FORCE_FRAMES
            || self.wal_oversized()
        {
            self.checkpoint()?;
        }
        self.tally.report_if_due();
        self.housekeeping_if_due()
    }

    /// Work for quiet moments (a tick without requests): housekeeping when
    /// due, then a checkpoint so the next transaction restarts the log.
    fn idle(&mut self) -> Result<(), StoreError> {
        self.housekeeping_if_due()?;
        if self.wal_dirty {
            self.checkpoint()?;
        }
        Ok(())
    }

    fn housekeeping_if_due(&mut self) -> Result<(), StoreError> {
        if self.last_housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
            self.last_housekeeping = Instant::now();
            let result = self
                .sync_commits(true)
                .and_then(|()| housekeeping(&mut self.conn, &self.limits));
            self.tolerate(result)?;
        }
        Ok(())
    }

    /// A passive checkpoint from the writer: nothing commits meanwhile, so
    /// unless a reader holds an old snapshot it copies the whole log. When
    /// a large transaction grew the log file past its standing size, the
    /// file is then cut at once (the size limit counts that growth until
    /// then, and new messages would be refused meanwhile).
    fn checkpoint(&mut self) -> Result<(), StoreError> {
        let turn = self.checkpointer.as_ref().map(Kicker::hold);
        let started = Instant::now();
        let mut result = checkpoint::passive(&self.conn);
        if matches!(&result, Ok(p) if p.complete()) && self.wal_oversized() {
            result = checkpoint::truncate(&self.conn);
        }
        self.tally.checkpointed(started.elapsed());
        if let Ok(progress) = &result {
            self.wal_dirty = !progress.complete();
            if progress.complete() {
                // The next transaction restarts the log from its start.
                self.wal_frames.store(0, Ordering::Relaxed);
            }
            tracing::debug!(?progress, "store checkpoint by the writer");
        }
        drop(turn);
        self.tolerate(result.map(drop))
    }

    /// True when the log file is larger than its standing size.
    fn wal_oversized(&self) -> bool {
        let standing = u64::try_from(schema::JOURNAL_SIZE_LIMIT_BYTES).unwrap_or(u64::MAX);
        std::fs::metadata(&self.limits.wal_path).is_ok_and(|m| m.len() > standing)
    }

    /// Logs a failed background write; stops the writer if it was fatal.
    fn tolerate(&mut self, result: rusqlite::Result<()>) -> Result<(), StoreError> {
        let Err(err) = result else { return Ok(()) };
        match FailureKind::of(err) {
            FailureKind::Fatal(error) => {
                tracing::error!(cause = %error, "store maintenance failed; stopping the writer");
                self.signals.health.send_replace(StoreHealth::Failed {
                    error: Arc::clone(&error),
                });
                Err(StoreError::Fatal { source: error })
            }
            other => {
                tracing::warn!(kind = ?other, "store maintenance skipped");
                Ok(())
            }
        }
    }
}

/// The writer's runtime. Dropped without blocking, because if the thread
/// cannot be started it is dropped by the caller, which may be async code.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Prunes expired dedupe entries and sent rows past retention, in
/// transactions of bounded size.
fn housekeeping(conn: &mut Connection, limits: &Limits) -> rusqlite::Result<()> {
    let now = now_ms();
    for _ in 0..HOUSEKEEPING_ROUNDS {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pruned = ingest::prune_dedupe(
            &tx,
            now.saturating_sub(limits.dedupe_window_ms),
            PRUNE_LIMIT,
        )?;
        let purged = apply::purge_sent(&tx, now, limits.retain_sent_ms)?;
        let audit_pruned = super::audit::prune(&tx, now)?;
        tx.commit()?;
        if audit_pruned > 0 {
            tracing::info!(
                lines = audit_pruned,
                "audit lines past retention pruned (anchor kept)"
            );
        }
        tracing::debug!(pruned, purged, "store housekeeping round done");
        if pruned < PRUNE_LIMIT && purged < apply::PURGE_LIMIT {
            break;
        }
    }
    Ok(())
}

/// Answers everything still queued after the writer stopped with `err`.
fn refuse_remaining(ops: &mut mpsc::Receiver<Op>, err: &StoreError) {
    ops.close();
    let mut rest = Batch::default();
    while let Ok(op) = ops.try_recv() {
        rest.push(op);
    }
    rest.fail_all(|| match err {
        StoreError::Fatal { source } => StoreError::Fatal {
            source: Arc::clone(source),
        },
        StoreError::Corrupt { detail } => StoreError::Corrupt {
            detail: detail.clone(),
        },
        _ => StoreError::Closed,
    });
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;
    use crate::store::{
        StoreConfig, open,
        request::{Forward, Pending},
        tests::message,
    };

    fn writer(cfg: &StoreConfig) -> Writer {
        let opened = open::open(cfg).expect("open");
        let (ops, _receiver) = mpsc::channel(1);
        let (_handle, signals) =
            crate::store::handle::StoreHandle::new(ops, cfg.path.clone(), opened.report.last_seq);
        Writer::new(opened.conn, cfg.limits(), 64, signals)
    }

    fn synchronous(writer: &Writer) -> i64 {
        writer
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .expect("pragma")
    }

    #[test]
    fn only_a_batch_of_forwarded_deletes_commits_without_its_own_sync() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = StoreConfig::new(dir.path().join("queue.db"));
        let mut writer = writer(&cfg);

        let mut inserts = Batch::default();
        let (reply, _answer) = oneshot::channel();
        inserts.push(Op::Insert(Pending {
            req: message("lab", "C1", "one"),
            reply,
        }));
        let seq = writer
            .commit(&inserts)
            .expect("insert")
            .last_seq
            .expect("seq");
        assert_eq!(synchronous(&writer), 2, "an insert is a promise: FULL");

        let mut deletes = Batch::default();
        let (reply, _answer) = oneshot::channel();
        deletes.push(Op::Forwarded(Pending {
            req: Forward {
                seqs: vec![seq],
                now_ms: now_ms(),
            },
            reply,
        }));
        writer.commit(&deletes).expect("delete");
        assert_eq!(synchronous(&writer), 1, "deletes alone: NORMAL");

        let mut mixed = Batch::default();
        let (reply, _answer) = oneshot::channel();
        mixed.push(Op::Insert(Pending {
            req: message("lab", "C2", "two"),
            reply,
        }));
        let (reply, _answer) = oneshot::channel();
        mixed.push(Op::Forwarded(Pending {
            req: Forward {
                seqs: Vec::new(),
                now_ms: now_ms(),
            },
            reply,
        }));
        writer.commit(&mixed).expect("mixed");
        assert_eq!(synchronous(&writer), 2, "an insert with deletes: FULL");
    }
}
