//! Damage handling: the integrity check, setting a damaged file aside
//! (RELIABILITY scenario 6), and the marker that carries a failed
//! background check over to the next start.
//!
//! Invariants:
//! - Only damage moves a file: SQLite reporting `SQLITE_CORRUPT` or
//!   `SQLITE_NOTADB`, or `PRAGMA quick_check` reporting a problem. A
//!   permission error, a missing directory or a foreign database never
//!   moves anything.
//! - A damaged file is renamed, never deleted: `<path>.corrupt-<unix-ts>`
//!   plus its `-wal` and `-shm` (renamed with it, so SQLite can still open
//!   the set-aside copy with its log), and the directory is fsynced. What
//!   it held is counted if it can still be read, logged, audited in the
//!   fresh store and returned in the open report.
//! - The set-aside file is not salvaged automatically: SQLite pages carry
//!   no checksums, so rows from a damaged file could carry silently altered
//!   clinical values. They stay there for a person to recover.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use rusqlite::{Connection, ErrorCode, InterruptHandle, OpenFlags, OptionalExtension};
use tokio::sync::mpsc;

use super::{
    error::{FailureKind, StoreError},
    request::Op,
    schema,
};

/// At most this many problems are collected from `PRAGMA quick_check`.
const MAX_PROBLEMS: i64 = 5;

/// What a damaged file that was set aside held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostRows {
    /// Records never acknowledged by the broker.
    pub unsent_records: u64,
    /// Quarantine entries neither replayed nor dropped.
    pub open_quarantine: u64,
}

/// A damaged database that was moved aside at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Where the damaged file now is.
    pub set_aside: PathBuf,
    /// What was wrong with it.
    pub reason: String,
    /// What it held, if it could still be counted.
    pub lost: Option<LostRows>,
}

impl Recovery {
    /// A one-line description without PHI, for logs and the audit trail.
    pub fn describe(&self) -> String {
        let lost = self.lost.as_ref().map_or_else(
            || "contents unreadable".to_owned(),
            |l| {
                format!(
                    "{} unsent records, {} open quarantine entries",
                    l.unsent_records, l.open_quarantine
                )
            },
        );
        format!(
            "set aside {} ({}): {lost}",
            self.set_aside.display(),
            self.reason
        )
    }
}

/// Runs `PRAGMA quick_check`; `Ok(None)` when the file is sound.
pub(crate) fn quick_check(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let mut problems = Vec::new();
    conn.pragma(None, "quick_check", MAX_PROBLEMS, |row| {
        problems.push(row.get::<_, String>(0)?);
        Ok(())
    })?;
    if problems.len() == 1 && problems.first().is_some_and(|p| p == "ok") {
        Ok(None)
    } else {
        Ok(Some(problems.join("; ")))
    }
}

/// Reads the first or last row of every table and index the writer walks,
/// which makes SQLite load their roots and edge leaves: O(log n), and
/// enough to catch a file whose schema or tables cannot be read at all.
/// (Each query has a single `ORDER BY ... LIMIT 1` or a single min/max, so
/// SQLite answers it from the b-tree edge; `max(x), min(x)` together would
/// scan the whole table.)
pub(crate) fn probe(conn: &Connection) -> rusqlite::Result<()> {
    const EDGES: [&str; 7] = [
        "SELECT seq FROM records ORDER BY seq LIMIT 1",
        "SELECT seq FROM records ORDER BY seq DESC LIMIT 1",
        "SELECT seq FROM records WHERE sent_at_ms IS NULL ORDER BY seq LIMIT 1",
        "SELECT max(id) FROM quarantine",
        "SELECT max(id) FROM audit",
        "SELECT max(source) FROM source_stats",
        "SELECT min(at_ms) FROM dedupe",
    ];
    for sql in EDGES {
        conn.query_row(sql, [], |_| Ok(())).optional()?;
    }
    Ok(())
}

/// Moves a damaged database and its log aside and counts what it held.
pub(crate) fn set_aside(
    path: &Path,
    reason: String,
    now_unix_s: i64,
) -> Result<Recovery, StoreError> {
    let aside = free_aside_name(path, now_unix_s);
    rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let from = with_suffix(path, suffix);
        if from.exists() {
            rename(&from, &with_suffix(&aside, suffix))?;
        }
    }
    sync_dir(path)?;
    let lost = count_lost(&aside).ok();
    let recovery = Recovery {
        set_aside: aside,
        reason,
        lost,
    };
    tracing::error!(detail = %recovery.describe(), "store was damaged; starting a fresh one");
    Ok(recovery)
}

/// `<path>.corrupt-<ts>`, or with `.<n>` appended when that is taken.
fn free_aside_name(path: &Path, now_unix_s: i64) -> PathBuf {
    let base = with_suffix(path, &format!(".corrupt-{now_unix_s}"));
    let mut candidate = base.clone();
    let mut n = 1;
    while candidate.exists() || with_suffix(&candidate, "-wal").exists() {
        candidate = with_suffix(&base, &format!(".{n}"));
        n += 1;
    }
    candidate
}

fn count_lost(aside: &Path) -> rusqlite::Result<LostRows> {
    let conn = Connection::open_with_flags(
        aside,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    Ok(LostRows {
        unsent_records: conn.query_row(
            "SELECT count(*) FROM records WHERE sent_at_ms IS NULL",
            [],
            |r| r.get(0),
        )?,
        open_quarantine: super::quarantine::count_open(&conn)?,
    })
}

/// Appends `suffix` to a path's file name.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn rename(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::rename(from, to).map_err(|source| StoreError::Io {
        path: from.to_owned(),
        source,
    })
}

/// Makes renames in the store's directory durable.
fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })
}

/// The file whose presence forces a full check at the next open.
pub(crate) fn marker_path(path: &Path) -> PathBuf {
    with_suffix(path, ".check-failed")
}

/// Stops a background check that is still running (at writer shutdown), so
/// it does not keep reading a large file after the store has closed.
pub(crate) struct CheckStopper {
    interrupt: InterruptHandle,
    stopped: Arc<AtomicBool>,
}

impl std::fmt::Debug for CheckStopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckStopper")
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl CheckStopper {
    /// Interrupts the check (or keeps it from starting).
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.interrupt.interrupt();
    }
}

/// Checks the store in the background, on its own read-only connection,
/// while the writer keeps accepting. On damage it leaves the marker (so the
/// next open checks fully and sets the file aside) and halts the writer.
pub(crate) fn spawn_background_check(
    path: PathBuf,
    writer: mpsc::WeakSender<Op>,
) -> Result<CheckStopper, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&path, flags)?;
    // It reads every page once, often during a drain: a small cache, like
    // the other reading connections, keeps it out of the memory budget.
    schema::configure_reader(&conn)?;
    let stopped = Arc::new(AtomicBool::new(false));
    let stopper = CheckStopper {
        interrupt: conn.get_interrupt_handle(),
        stopped: Arc::clone(&stopped),
    };
    std::thread::Builder::new()
        .name("store-check".into())
        .spawn(move || {
            if !stopped.load(Ordering::SeqCst) {
                background_check(&conn, &path, &writer);
            }
        })
        .map_err(StoreError::Thread)?;
    Ok(stopper)
}

fn background_check(conn: &Connection, path: &Path, writer: &mpsc::WeakSender<Op>) {
    let started = std::time::Instant::now();
    match quick_check(conn) {
        Ok(None) => tracing::info!(elapsed = ?started.elapsed(), "store integrity check passed"),
        Ok(Some(detail)) => report_damage(path, detail, writer),
        Err(err) if err.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) => {
            tracing::info!("store integrity check stopped: the store closed");
        }
        Err(err) => match FailureKind::of(err) {
            FailureKind::Fatal(e) => report_damage(path, e.to_string(), writer),
            other => tracing::warn!(kind = ?other, "store integrity check could not run"),
        },
    }
}

fn report_damage(path: &Path, detail: String, writer: &mpsc::WeakSender<Op>) {
    tracing::error!(%detail, "store integrity check found damage; the next start sets the file aside");
    if let Err(err) = fs::write(marker_path(path), detail.as_bytes()) {
        tracing::error!(cause = %err, "cannot write the integrity-check marker");
    }
    if let Some(writer) = writer.upgrade() {
        // The writer may have stopped meanwhile; then there is no one to halt.
        let _stopped = writer.blocking_send(Op::Halt { detail });
    }
}
