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

/// The space situation of a store at one moment: everything a refusal is decided from, so the
/// writer, `hl7edge status` and the heartbeat decide (and explain) it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceOutlook {
    /// Bytes counted against `max_bytes`: live pages plus WAL growth past its standing size.
    pub used: u64,
    /// The store's own limit, `storage.max_bytes`.
    pub max_bytes: u64,
    /// Bytes the filesystem still gives an unprivileged writer; `None` when the check is off or
    /// the filesystem cannot be asked.
    pub available: Option<u64>,
    /// Growth already committed but not yet on disk (the database file reaching its page count
    /// at the next checkpoint, the WAL reaching its standing size).
    pub pending: u64,
    /// Bytes kept free on the filesystem for deletes and checkpoints.
    pub reserve: u64,
    /// Free pages inside the database, which new rows fill first.
    pub db_free: u64,
}

impl SpaceOutlook {
    /// Why `cost` more bytes would be refused now, if they would.
    pub fn refusal(&self, cost: u64) -> Option<FullCause> {
        if self.used.saturating_add(cost) > self.max_bytes {
            return Some(FullCause::Limit {
                used: self.used,
                max_bytes: self.max_bytes,
            });
        }
        let available = self.available?;
        let room = available.saturating_sub(self.pending);
        let needs = self
            .reserve
            .saturating_add(cost.saturating_sub(self.db_free));
        (room < needs).then_some(FullCause::Reserve {
            available,
            keep: self.reserve.saturating_add(self.pending),
        })
    }
}

/// The space left for one batch.
#[derive(Debug)]
pub(crate) struct Space {
    outlook: SpaceOutlook,
    admitted: u64,
    refused: Option<FullCause>,
}

impl Space {
    /// Measures the space in use, as seen inside the transaction.
    pub(crate) fn measure(tx: &Transaction<'_>, policy: SpacePolicy<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            outlook: outlook(tx, policy)?,
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
        match self.outlook.refusal(total) {
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

/// Reads the [`SpaceOutlook`] of the store on `conn` (a transaction or a reader's connection).
pub(crate) fn outlook(
    conn: &rusqlite::Connection,
    policy: SpacePolicy<'_>,
) -> rusqlite::Result<SpaceOutlook> {
    let page_size: u64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let pages: u64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let free: u64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    let wal = file_len(policy.wal_path);
    let standing = STANDING_WAL_BYTES;
    let live = pages.saturating_sub(free).saturating_mul(page_size);
    let db_target = pages.saturating_mul(page_size);
    let pending = db_target.saturating_sub(file_len(policy.db_path)) + standing.saturating_sub(wal);
    let available = if policy.reserve_bytes == 0 {
        None
    } else {
        available_bytes(policy.db_path)
    };
    Ok(SpaceOutlook {
        used: live.saturating_add(wal.saturating_sub(standing)),
        max_bytes: policy.max_bytes,
        available,
        pending,
        reserve: policy.reserve_bytes,
        db_free: free.saturating_mul(page_size),
    })
}

/// The write-ahead log's standing size: the store keeps it allocated beside `max_bytes`.
pub const STANDING_WAL_BYTES: u64 = schema::JOURNAL_SIZE_LIMIT_BYTES as u64;

/// The filesystem space kept free for deletes and checkpoints by default.
pub const DEFAULT_RESERVE_BYTES: u64 = 16 << 20;

/// What the store needs on its filesystem beyond `max_bytes` (and the quarantine's own cap):
/// the standing write-ahead log and the reserve kept free for deletes.
pub const fn overhead_bytes(reserve: u64) -> u64 {
    STANDING_WAL_BYTES + reserve
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

    fn space(used: u64, available: Option<u64>, db_free: u64) -> Space {
        Space {
            outlook: SpaceOutlook {
                used,
                max_bytes: 1_000,
                available,
                pending: 0,
                reserve: 100,
                db_free,
            },
            admitted: 0,
            refused: None,
        }
    }

    fn is_limit(r: Result<(), FullCause>) -> bool {
        matches!(r, Err(FullCause::Limit { .. }))
    }

    fn is_reserve(r: Result<(), FullCause>) -> bool {
        matches!(r, Err(FullCause::Reserve { .. }))
    }

    #[test]
    fn quota_counts_what_the_batch_already_admitted() {
        let mut s = space(500, None, 0);
        assert_eq!(s.admit(300), Ok(()));
        assert!(is_limit(s.admit(300)));
    }

    #[test]
    fn once_refused_a_batch_refuses_even_small_messages() {
        let mut s = space(900, None, 0);
        assert!(is_limit(s.admit(200)));
        assert!(is_limit(s.admit(1)));
    }

    #[test]
    fn filesystem_reserve_is_kept_for_deletes() {
        let mut s = space(0, Some(350), 0);
        assert_eq!(s.admit(250), Ok(()));
        assert!(is_reserve(s.admit(1)));
    }

    #[test]
    fn free_pages_inside_the_database_need_no_filesystem_room() {
        let mut s = space(0, Some(100), 500);
        assert_eq!(s.admit(500), Ok(()));
        assert!(is_reserve(s.admit(1)));
    }

    #[test]
    fn a_refusal_for_the_reserve_carries_the_numbers_a_person_needs() {
        let outlook = SpaceOutlook {
            used: 1 << 20,
            max_bytes: 2 << 30,
            available: Some(19 << 20),
            pending: 16 << 20,
            reserve: DEFAULT_RESERVE_BYTES,
            db_free: 0,
        };
        let cause = outlook.refusal(4096).expect("refused");
        assert_eq!(
            cause,
            FullCause::Reserve {
                available: 19 << 20,
                keep: 32 << 20
            }
        );
        let words = cause.to_string();
        assert!(words.contains("19.0 MiB available"), "{words}");
        assert!(words.contains("32.0 MiB"), "{words}");
        assert!(!words.contains("filesystem full"), "{words}");
    }

    #[test]
    fn temp_dir_filesystem_reports_available_space() {
        let dir = tempfile::tempdir().unwrap();
        assert!(available_bytes(dir.path()).is_some_and(|b| b > 0));
    }
}
