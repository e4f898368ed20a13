//! The checkpointer: a thread with its own connection that copies the
//! write-ahead log back into the database file, so that the writer (and the
//! ACKs waiting on its commits) never stops for a checkpoint.
//!
//! Invariants:
//! - Only `PASSIVE` checkpoints run here: they never take the write lock,
//!   never wait, and never block a commit. SQLite's automatic checkpoint is
//!   off on the write connection (`wal_autocheckpoint=0`), because it would
//!   run inside the writer's COMMIT, between the fsync and the ACKs.
//! - The writer kicks the checkpointer after its commits; kicks coalesce
//!   (a channel of one), and checkpoints run at most every
//!   [`MIN_INTERVAL`], so their fsyncs cost the writer little disk time.
//! - A passive checkpoint cannot restart the log while commits keep coming,
//!   so the WAL is bounded by the writer: past [`WAL_FORCE_FRAMES`] frames
//!   it runs a checkpoint itself between two transactions (mostly copied
//!   already by this thread, so short), and the next transaction restarts
//!   the log from its start. The log thus stays within its standing size
//!   (`journal_size_limit`), and commits overwrite blocks the file already
//!   has instead of growing it: on most filesystems that makes the fsync
//!   of a commit much cheaper (no allocation, no metadata to journal).
//! - The thread stops when the writer drops its [`Kicker`]; the writer
//!   joins it before closing its own connection, so the last connection to
//!   close is the writer's (which checkpoints and removes the WAL).

use std::{
    path::Path,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use rusqlite::{Connection, OpenFlags};

use super::{error::StoreError, schema};

/// Checkpoints run at most this often.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Past this many frames in the log the writer checkpoints itself between
/// two transactions, so the log restarts even under load: three quarters
/// of the standing WAL size in 4 KiB pages, leaving room for one more
/// batch before the file would grow.
pub(crate) const WAL_FORCE_FRAMES: i64 = schema::JOURNAL_SIZE_LIMIT_BYTES / 4096 * 3 / 4;

/// The writer's side: kicks the thread, and joins it.
#[derive(Debug)]
pub(crate) struct Kicker {
    kick: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Held during every checkpoint, so the writer's own checkpoint waits
    /// for a running one instead of failing busy.
    turn: Arc<Mutex<()>>,
}

impl Kicker {
    /// Opens a connection to `path` and starts the checkpointer thread.
    pub(crate) fn spawn(path: &Path) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        schema::configure_checkpointer(&conn)?;
        let (kick, kicked) = sync_channel(1);
        let turn = Arc::new(Mutex::new(()));
        let theirs = Arc::clone(&turn);
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || run(&conn, &kicked, &theirs))
            .map_err(StoreError::Thread)?;
        Ok(Self {
            kick: Some(kick),
            thread: Some(thread),
            turn,
        })
    }

    /// Waits for a running background checkpoint to finish and keeps the
    /// next one from starting while the guard lives.
    pub(crate) fn hold(&self) -> MutexGuard<'_, ()> {
        self.turn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for a checkpoint soon; never blocks.
    pub(crate) fn kick(&self) {
        if let Some(kick) = &self.kick
            && let Err(TrySendError::Disconnected(())) = kick.try_send(())
        {
            tracing::warn!("store checkpointer stopped; the writer checkpoints alone");
        }
    }

    /// Stops the thread and waits for it (after its current checkpoint).
    pub(crate) fn stop(&mut self) {
        self.kick = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("store checkpointer panicked");
        }
    }
}

impl Drop for Kicker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(conn: &Connection, kicked: &Receiver<()>, turn: &Mutex<()>) {
    let mut last: Option<Instant> = None;
    while kicked.recv().is_ok() {
        if let Some(wait) = last.and_then(|at| MIN_INTERVAL.checked_sub(at.elapsed())) {
            std::thread::sleep(wait);
        }
        last = Some(Instant::now());
        let held = turn.lock().unwrap_or_else(PoisonError::into_inner);
        let outcome = passive(conn);
        drop(held);
        match outcome {
            Ok(progress) => tracing::trace!(?progress, "store checkpoint"),
            Err(err) => tracing::warn!(cause = %err, "store checkpoint failed"),
        }
    }
}

/// What one checkpoint achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// False when another checkpoint was running, so this one did nothing.
    pub(crate) ran: bool,
    /// Frames in the log.
    pub(crate) log_frames: i64,
    /// Frames of it now copied into the database file.
    pub(crate) copied_frames: i64,
}

impl Progress {
    /// True when the whole log is in the database file: the next
    /// transaction restarts the log.
    pub(crate) fn complete(&self) -> bool {
        self.ran && self.copied_frames >= self.log_frames
    }
}

/// Runs one `PASSIVE` checkpoint on `conn`.
pub(crate) fn passive(conn: &Connection) -> rusqlite::Result<Progress> {
    run_mode(conn, "PRAGMA wal_checkpoint(PASSIVE)")
}

/// Runs one `TRUNCATE` checkpoint on `conn` (waits for readers, within the
/// busy timeout, and then cuts the log file to zero bytes).
pub(crate) fn truncate(conn: &Connection) -> rusqlite::Result<Progress> {
    run_mode(conn, "PRAGMA wal_checkpoint(TRUNCATE)")
}

fn run_mode(conn: &Connection, sql: &str) -> rusqlite::Result<Progress> {
    conn.query_row(sql, [], |r| {
        Ok(Progress {
            ran: r.get::<_, i64>(0)? == 0,
            log_frames: r.get(1)?,
            copied_frames: r.get(2)?,
        })
    })
}
