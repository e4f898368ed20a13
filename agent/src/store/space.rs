//! Admission by space: the store's own limit and the filesystem's.
//!
//! Invariants (checked before a batch adds anything; deletes are never
//! refused):
//! - **Quota.** Live pages (`page_count - freelist_count`), plus WAL growth
//!   past its standing size, plus what the batch already admitted, plus
//!   the next message's estimated footprint, stay within `max_bytes`. The
//!   WAL's standing size (up to `journal_size_limit`) is a fixed overhead,
//!   not queue growth: counting it would make space freed by deletes
//!   reappear only after a checkpoint cycle.
//! - **Filesystem reserve.** Deletes need room too (WAL frames, then the
//!   checkpoint), or a full disk could never be drained. So a message is
//!   admitted only if, after the growth already committed but not yet on
//!   disk (the database file reaching `page_count` pages at the next
//!   checkpoint, the WAL reaching its standing size) and after the
//!   message's own growth (its footprint minus the database's free pages,
//!   which it fills first), the filesystem still has `reserve_bytes`
//!   available. Deletes and checkpoints then always find room. The reserve
//!   survives restarts: closing deletes the WAL, returning its space.
//! - WAL growth past its standing size (a large delete) counts until the
//!   log restarts: the first write after a complete checkpoint cuts it back
//!   to `journal_size_limit`. So right after a large delete a message may be
//!   refused once more; the sender's retry gets in.
//! - Once one message of a batch is refused, every later one in that batch
//!   is refused too, so a batch never reorders.
//!
//! A real `SQLITE_FULL` (another program filled the disk) is still handled
//! by the writer: roll back, answer `Full`, keep running.

use std::path::Path;

use rusqlite::Transaction;

use super::{error::FullCause, schema};

/// What the space check needs to know about the store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpacePolicy<'a> {
    /// The database file.
    pub(crate) db_path: &'a Path,
    /// Its write-ahead log.
    pub(crate) wal_path: &'a Path,
    /// The store's own limit.
    pub(crate) max_bytes: u64,
    /// Filesystem space kept free for deletes and checkpoints; 0 turns the
    /// filesystem check off.
    pub(crate) reserve_bytes: u64,
}

/// The space left for one batch.
#[derive(Debug)]
pub(crate) struct Space {
    quota_used: u64,
    max_bytes: u64,
    /// Filesystem bytes available once committed growth has reached the
    /// disk; `None` when the check is off or the filesystem cannot be asked
    /// (then only `SQLITE_FULL` protects).
    fs_room: Option<u64>,
    db_free: u64,
    reserve: u64,
    admitted: u64,
    refused: Option<FullCause>,
}

impl Space {
    /// Measures the space in use, as seen inside the transaction.
    pub(crate) fn measure(tx: &Transaction<'_>, policy: SpacePolicy<'_>) -> rusqlite::Result<Self> {
        let page_size: u64 = tx.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let pages: u64 = tx.pragma_query_value(None, "page_count", |r| r.get(0))?;
        let free: u64 = tx.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        let wal = file_len(policy.wal_path);
        let standing = u64::try_from(schema::JOURNAL_SIZE_LIMIT_BYTES).unwrap_or(0);
        let live = pages.saturating_sub(free).saturating_mul(page_size);
        let db_target = pages.saturating_mul(page_size);
        let pending =
            db_target.saturating_sub(file_len(policy.db_path)) + standing.saturating_sub(wal);
        let fs_room = if policy.reserve_bytes == 0 {
            None
        } else {
            available_bytes(policy.db_path).map(|a| a.saturating_sub(pending))
        };
        Ok(Self {
            quota_used: live.saturating_add(wal.saturating_sub(standing)),
            max_bytes: policy.max_bytes,
            fs_room,
            db_free: free.saturating_mul(page_size),
            reserve: policy.reserve_bytes,
            admitted: 0,
            refused: None,
        })
    }

    /// Why this batch started refusing, if it did.
    pub(crate) fn refused(&self) -> Option<FullCause> {
        self.refused
    }

    /// Admits `cost` more bytes, or refuses this and every later request.
    pub(crate) fn admit(&mut self, cost: u64) -> Result<(), FullCause> {
        if let Some(cause) = self.refused {
            return Err(cause);
        }
        let total = self.admitted.saturating_add(cost);
        let cause = if self.quota_used.saturating_add(total) > self.max_bytes {
            Some(FullCause::Limit)
        } else if self.fs_room.is_some_and(|room| {
            room < self
                .reserve
                .saturating_add(total.saturating_sub(self.db_free))
        }) {
            Some(FullCause::Filesystem)
        } else {
            None
        };
        match cause {
            Some(cause) => {
                self.refused = Some(cause);
                Err(cause)
            }
            None => {
                self.admitted = total;
                Ok(())
            }
        }
    }
}

/// A file's length; 0 when it does not exist or cannot be examined.
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Bytes an unprivileged writer may still use on the filesystem of `path`.
pub(crate) fn available_bytes(path: &Path) -> Option<u64> {
    match rustix::fs::statvfs(path) {
        Ok(s) => Some(s.f_bavail.saturating_mul(s.f_frsize)),
        Err(err) => {
            tracing::debug!(cause = %err, "cannot read filesystem space");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(quota_used: u64, fs_room: Option<u64>, db_free: u64) -> Space {
        Space {
            quota_used,
            max_bytes: 1_000,
            fs_room,
            db_free,
            reserve: 100,
            admitted: 0,
            refused: None,
        }
    }

    #[test]
    fn quota_counts_what_the_batch_already_admitted() {
        let mut s = space(500, None, 0);
        assert_eq!(s.admit(300), Ok(()));
        assert_eq!(s.admit(300), Err(FullCause::Limit));
    }

    #[test]
    fn once_refused_a_batch_refuses_even_small_messages() {
        let mut s = space(900, None, 0);
        assert_eq!(s.admit(200), Err(FullCause::Limit));
        assert_eq!(s.admit(1), Err(FullCause::Limit));
    }

    #[test]
    fn filesystem_reserve_is_kept_for_deletes() {
        let mut s = space(0, Some(350), 0);
        assert_eq!(s.admit(250), Ok(()));
        assert_eq!(s.admit(1), Err(FullCause::Filesystem));
    }

    #[test]
    fn free_pages_inside_the_database_need_no_filesystem_room() {
        let mut s = space(0, Some(100), 500);
        assert_eq!(s.admit(500), Ok(()));
        assert_eq!(s.admit(1), Err(FullCause::Filesystem));
    }

    #[test]
    fn temp_dir_filesystem_reports_available_space() {
        let dir = tempfile::tempdir().unwrap();
        assert!(available_bytes(dir.path()).is_some_and(|b| b > 0));
    }
}
