//! Errors of the durable store, and how a failed SQLite call is classified.
//!
//! The classification is what keeps promise 1 ("AA means on disk") honest:
//! a full disk is a normal, recoverable condition (answer AR, keep running),
//! while any I/O error or corruption during a write is fatal (answer nothing
//! positive, stop the writer, let the process exit and SQLite recover on the
//! next start). A failed fsync is never retried.

use std::{path::PathBuf, sync::Arc};

use rusqlite::ErrorCode;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store is at its `max_bytes` limit or the filesystem is full.
    /// Nothing was stored; the sender should be answered AR and will retry.
    #[error("no room for the message ({cause}): not stored")]
    Full {
        /// Which limit was reached.
        cause: FullCause,
    },
    /// A write failed with an I/O error (including a failed fsync) or found
    /// the database corrupt. Nothing in that batch was committed, the writer
    /// has stopped, and the process must exit non-zero so that SQLite
    /// recovers from its write-ahead log on the next start.
    #[error("store failed fatally; the writer has stopped")]
    Fatal {
        /// The SQLite error that stopped the writer.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// The background integrity check found the database corrupt. The
    /// writer has stopped; the next start sets the file aside.
    #[error("database found corrupt by the integrity check: {detail}")]
    Corrupt {
        /// What `PRAGMA quick_check` reported (first lines, no row contents).
        detail: String,
    },
    /// The writer is no longer running (the store was shut down), so the
    /// request was not processed.
    #[error("store writer is not running")]
    Closed,
    /// The batch failed for a reason that may pass (for example the
    /// database was busy). Nothing was stored; retry later (AR).
    #[error("store write failed transiently")]
    Transient {
        /// The SQLite error behind the failure.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// The referenced row does not exist (or is not in the required state).
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for, for example "unresolved quarantine entry".
        what: &'static str,
        /// The id that was looked up.
        id: i64,
    },
    /// A direct SQLite call (open, migration, read) failed.
    #[error("SQLite call failed")]
    Sqlite(#[from] rusqlite::Error),
    /// A pragma did not take effect; the store refuses to run without it.
    #[error("PRAGMA {pragma} is {actual:?}, expected {expected:?}")]
    Pragma {
        /// The pragma's name.
        pragma: &'static str,
        /// The value the store requires.
        expected: String,
        /// The value SQLite reported after setting it.
        actual: String,
    },
    /// The database was written by a newer version of hl7edge.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// The database has an older schema than this build; only the agent
    /// migrates (at its start), a second process never does.
    #[error(
        "database schema version {found} is older than this build's ({expected}); start the agent once to migrate it"
    )]
    SchemaOutdated {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The schema version this build writes.
        expected: i64,
    },
    /// The file is an SQLite database, but not one of ours.
    #[error("{} is not an hl7edge store (application_id {application_id:#x})", path.display())]
    ForeignDatabase {
        /// The database path.
        path: PathBuf,
        /// `PRAGMA application_id` of the file.
        application_id: i32,
    },
    /// A filesystem operation on the store's files failed.
    #[error("{}", path.display())]
    Io {
        /// The file the operation was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The writer or integrity-check thread could not be started.
    #[error("cannot start store thread")]
    Thread(#[source] std::io::Error),
    /// The writer thread panicked.
    #[error("store writer thread panicked")]
    WriterPanicked,
}

/// Which limit refused a message, with the numbers that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullCause {
    /// The queue reached `storage.max_bytes`.
    Limit {
        /// Bytes counted against the limit.
        used: u64,
        /// `storage.max_bytes`.
        max_bytes: u64,
    },
    /// The filesystem would keep less than the store needs beside its data: the reserve that
    /// deletes and checkpoints need, plus the write-ahead log's standing size and other growth
    /// already committed. The disk is not full; the partition is too small for the store or
    /// filled by other files.
    Reserve {
        /// Bytes the filesystem gives an unprivileged writer.
        available: u64,
        /// Bytes the store keeps free (reserve plus pending growth).
        keep: u64,
    },
    /// The filesystem itself reported no space (`ENOSPC`).
    Filesystem,
}

impl FullCause {
    /// A one-word name for counters and JSON: `quota`, `reserve` or `filesystem`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Limit { .. } => "quota",
            Self::Reserve { .. } => "reserve",
            Self::Filesystem => "filesystem",
        }
    }
}

impl std::fmt::Display for FullCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = |b: u64| bytesize::ByteSize(b).display().iec().to_string();
        match *self {
            Self::Limit { used, max_bytes } => write!(
                f,
                "the queue holds {} of its storage.max_bytes {}",
                size(used),
                size(max_bytes)
            ),
            Self::Reserve { available, keep } => write!(
                f,
                "the filesystem has {} available and the store keeps {} of it free \
                 (for deletes, plus its write-ahead log's standing size); the partition is too small or \
                 filled by other files",
                size(available),
                size(keep)
            ),
            Self::Filesystem => f.write_str("the filesystem is full (no space left on device)"),
        }
    }
}

/// What a failed SQLite call means for the batch that made it.
#[derive(Debug, Clone)]
pub(crate) enum FailureKind {
    /// The filesystem is full (`SQLITE_FULL`): roll back, answer AR, go on.
    Full,
    /// I/O error or corruption: answer every waiting request, then stop.
    Fatal(Arc<rusqlite::Error>),
    /// Anything else (busy, constraint, ...): roll back, answer, go on.
    Transient(Arc<rusqlite::Error>),
}

impl FailureKind {
    /// Classifies an SQLite error.
    pub(crate) fn of(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::Full,
            Some(code) if is_fatal_code(code) => Self::Fatal(Arc::new(err)),
            _ => Self::Transient(Arc::new(err)),
        }
    }

    /// The error to answer a request with.
    pub(crate) fn to_error(&self) -> StoreError {
        match self {
            Self::Full => StoreError::Full {
                cause: FullCause::Filesystem,
            },
            Self::Fatal(source) => StoreError::Fatal {
                source: Arc::clone(source),
            },
            Self::Transient(source) => StoreError::Transient {
                source: Arc::clone(source),
            },
        }
    }
}

/// Codes after which the connection cannot be trusted to have written what
/// it said: I/O errors (write, fsync, truncate, shared memory, ...), a
/// corrupt or replaced file, a file that became read-only or vanished.
fn is_fatal_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::SystemIoFailure
            | ErrorCode::DatabaseCorrupt
            | ErrorCode::NotADatabase
            | ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
    )
}

/// True when an error at open means the file itself is damaged (as opposed
/// to, say, a permission problem, which must never cause data to be moved).
pub(crate) fn is_damage(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

#[cfg(test)]
mod tests {
    use rusqlite::ffi;

    use super::*;

    fn sqlite_error(extended_code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(extended_code), None)
    }

    #[test]
    fn failed_fsync_is_fatal() {
        let kind = FailureKind::of(sqlite_error(ffi::SQLITE_IOERR_FSYNC));
        assert!(matches!(kind, FailureKind::Fatal(_)));
        assert!(matches!(kind.to_error(), StoreError::Fatal { .. }));
    }

    #[test]
    fn full_disk_is_recoverable_full() {
        let kind = FailureKind::of(sqlite_error(ffi::SQLITE_FULL));
        assert!(matches!(kind, FailureKind::Full));
        assert!(matches!(
            kind.to_error(),
            StoreError::Full {
                cause: FullCause::Filesystem
            }
        ));
    }

    #[test]
    fn busy_database_is_transient() {
        let kind = FailureKind::of(sqlite_error(ffi::SQLITE_BUSY));
        assert!(matches!(kind, FailureKind::Transient(_)));
    }

    #[test]
    fn corruption_is_fatal_and_counts_as_damage_at_open() {
        let err = sqlite_error(ffi::SQLITE_CORRUPT);
        assert!(is_damage(&err));
        assert!(matches!(FailureKind::of(err), FailureKind::Fatal(_)));
    }

    #[test]
    fn permission_denied_at_open_is_not_damage() {
        assert!(!is_damage(&sqlite_error(ffi::SQLITE_PERM)));
        assert!(!is_damage(&sqlite_error(ffi::SQLITE_CANTOPEN)));
    }
}
