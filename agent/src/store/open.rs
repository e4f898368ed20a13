//! Opening the store: settings, migrations, damage detection, and the
//! choice between a synchronous and a background integrity check.
//!
//! Opening must be fast even with a large backlog (target: ready to accept
//! within a second with a million records queued), and `PRAGMA
//! quick_check` reads every page, so its cost grows with the file. The
//! compromise:
//! - Always, synchronously: SQLite opens the file (bad header, truncation
//!   against the in-header size and a garbage file are detected here), the
//!   durability pragmas are verified, the schema is read and migrated, and
//!   every table is probed.
//! - Synchronously as well when the live pages are at most
//!   `StoreConfig::sync_check_max_bytes` (a drained queue, the usual case)
//!   or when the previous background check left its marker.
//! - Otherwise in the background, on a read-only connection, while the
//!   writer accepts. If it finds damage, the writer halts and the process
//!   exits non-zero; the next start checks fully and sets the file aside.

use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::{
    StoreConfig, audit,
    error::{StoreError, is_damage},
    now_ms,
    recovery::{self, Recovery},
    schema,
};

/// When the full integrity check ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrityCheck {
    /// It ran during open and passed, taking this long.
    Passed {
        /// Time spent in `PRAGMA quick_check`.
        elapsed: Duration,
    },
    /// The file is large; it runs in the background after open.
    Background,
}

/// What happened while opening the store, for logs and telemetry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The schema version found in the file (0 for a new file).
    pub found_schema_version: i64,
    /// How the integrity check was (or will be) run.
    pub integrity: IntegrityCheck,
    /// A damaged file that was set aside, if there was one.
    pub recovered: Option<Recovery>,
    /// Bytes used by the database's pages at open.
    pub db_bytes: u64,
    /// The highest record seq in the store at open (0 if none).
    pub last_seq: i64,
    /// Time from the start of open until the store was ready.
    pub elapsed: Duration,
}

/// An open, checked, migrated write connection and its report.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) conn: Connection,
    pub(crate) report: OpenReport,
}

/// Why a file could not be opened.
#[derive(Debug)]
enum OpenFailure {
    /// The file is damaged: set it aside and start fresh.
    Damaged(String),
    /// Anything else: report it, touch nothing.
    Failed(StoreError),
}

impl From<rusqlite::Error> for OpenFailure {
    fn from(err: rusqlite::Error) -> Self {
        if is_damage(&err) {
            Self::Damaged(err.to_string())
        } else {
            Self::Failed(err.into())
        }
    }
}

impl From<StoreError> for OpenFailure {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Sqlite(e) => e.into(),
            other => Self::Failed(other),
        }
    }
}

/// Mode of the database and its `-wal`/`-shm` files: they hold patient data, so only the
/// agent's own user may read them, whatever the umask or an older build left.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Sets [`FILE_MODE`] on the database and its log files where they have other bits. (SQLite
/// creates `-wal` and `-shm` with the database file's mode, so setting it on the database
/// first covers files made later.) A file owned by another user is left alone and logged.
pub(crate) fn make_private(db: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let path = super::sibling(db, suffix);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.permissions().mode() & 0o7777 == FILE_MODE {
            continue;
        }
        let private = std::fs::Permissions::from_mode(FILE_MODE);
        match std::fs::set_permissions(&path, private) {
            Ok(()) => tracing::info!(path = %path.display(), "store file made private (mode 0600)"),
            Err(err) => tracing::warn!(
                path = %path.display(),
                cause = %err,
                "cannot make a store file private; run: chmod 600 on it"
            ),
        }
    }
}

/// Opens the store, setting a damaged file aside.
pub(crate) fn open(cfg: &StoreConfig) -> Result<Opened, StoreError> {
    let started = Instant::now();
    let (checked, recovered) = match open_checked(cfg) {
        Ok(checked) => (checked, None),
        Err(OpenFailure::Failed(err)) => return Err(err),
        Err(OpenFailure::Damaged(reason)) => {
            let recovery = recovery::set_aside(&cfg.path, reason, now_ms() / 1000)?;
            remove_marker(cfg);
            let checked = open_checked(cfg).map_err(|f| match f {
                OpenFailure::Failed(err) => err,
                OpenFailure::Damaged(reason) => StoreError::Corrupt { detail: reason },
            })?;
            audit::append(
                &checked.conn,
                now_ms(),
                "store.recovered",
                &recovery.describe(),
            )?;
            (checked, Some(recovery))
        }
    };
    make_private(&cfg.path);
    let last_seq =
        checked
            .conn
            .query_row("SELECT coalesce(max(seq), 0) FROM records", [], |r| {
                r.get(0)
            })?;
    let report = OpenReport {
        found_schema_version: checked.found_version,
        integrity: checked.integrity,
        recovered,
        db_bytes: checked.db_bytes,
        last_seq,
        elapsed: started.elapsed(),
    };
    Ok(Opened {
        conn: checked.conn,
        report,
    })
}

struct Checked {
    conn: Connection,
    found_version: i64,
    integrity: IntegrityCheck,
    db_bytes: u64,
}

fn open_checked(cfg: &StoreConfig) -> Result<Checked, OpenFailure> {
    let marker = recovery::marker_path(&cfg.path);
    let must_check = marker.exists();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let started = Instant::now();
    let mut conn = Connection::open_with_flags(&cfg.path, flags)?;
    schema::configure_writer(&conn)?;
    tracing::debug!(elapsed = ?started.elapsed(), "store connection configured");
    let found_version = schema::migrate(&mut conn)?;
    let sealed = audit::seal(&conn)?;
    if sealed > 0 {
        tracing::info!(lines = sealed, "audit lines of an older build chained");
    }
    recovery::probe(&conn)?;
    tracing::debug!(elapsed = ?started.elapsed(), "store schema read and probed");
    let page_size: u64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let pages: u64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let free: u64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    let db_bytes = page_size.saturating_mul(pages);
    let live_bytes = page_size.saturating_mul(pages.saturating_sub(free));
    let integrity = if must_check || live_bytes <= cfg.sync_check_max_bytes {
        let check_started = Instant::now();
        if let Some(problem) = recovery::quick_check(&conn)? {
            return Err(OpenFailure::Damaged(problem));
        }
        if must_check {
            tracing::warn!("store passed the full check its previous background check had failed");
            remove_marker(cfg);
        }
        IntegrityCheck::Passed {
            elapsed: check_started.elapsed(),
        }
    } else {
        IntegrityCheck::Background
    };
    Ok(Checked {
        conn,
        found_version,
        integrity,
        db_bytes,
    })
}

fn remove_marker(cfg: &StoreConfig) {
    let marker = recovery::marker_path(&cfg.path);
    if let Err(err) = std::fs::remove_file(&marker)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(cause = %err, path = %marker.display(), "cannot remove the integrity-check marker");
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn opening_makes_the_database_and_its_log_private_whatever_their_mode_was() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig::new(dir.path().join("queue.db"));
        drop(open(&cfg).unwrap());
        for suffix in ["", "-wal"] {
            let path = super::super::sibling(&cfg.path, suffix);
            if path.exists() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
        let opened = open(&cfg).unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let path = super::super::sibling(&cfg.path, suffix);
            if let Ok(meta) = std::fs::metadata(&path) {
                assert_eq!(
                    meta.permissions().mode() & 0o777,
                    0o600,
                    "{}",
                    path.display()
                );
            }
        }
        drop(opened);
    }
}
