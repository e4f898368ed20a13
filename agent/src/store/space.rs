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
//! - **Quarantine cap.** Rejected messages kept for a technician count
//!   against the quarantine's own cap (`quarantine.max_bytes`), never
//!   against `max_bytes`: the queue's usage is live pages minus what the
//!   quarantine holds (`quarantine_usage`, kept by triggers). A flood of
//!   bad messages fills the quarantine, not the queue, so good messages
//!   keep being stored; past the cap rejected messages are refused (AR)
//!   until a technician replays or drops entries, or they expire. Both
//!   still need the filesystem reserve.
//! - Once one message of a batch is refused, every later one of its kind
//!   (records, quarantine entries) in that batch is refused too, so a batch
//!   never reorders; a refusal for the filesystem refuses both kinds.
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
    /// The quarantine's own cap.
    pub(crate) quarantine_max_bytes: u64,
}

/// The space situation of a store at one moment: everything a refusal is decided from, so the
/// writer, `hl7edge status` and the heartbeat decide (and explain) it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceOutlook {
    /// Bytes counted against `max_bytes`: live pages plus WAL growth past its standing size,
    /// less what the quarantine holds (counted against its own cap).
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
    /// Bytes the quarantine holds, counted against its own cap.
    pub quarantine_used: u64,
    /// The quarantine's cap, `quarantine.max_bytes`.
    pub quarantine_max_bytes: u64,
}

impl SpaceOutlook {
    /// Why a record of `cost` more bytes would be refused now, if it would.
    pub fn refusal(&self, cost: u64) -> Option<FullCause> {
        self.quota_refusal(cost)
            .or_else(|| self.filesystem_refusal(cost))
    }

    /// Why a quarantine entry of `cost` more bytes would be refused now, if it would.
    pub fn quarantine_refusal(&self, cost: u64) -> Option<FullCause> {
        self.quarantine_cap_refusal(cost)
            .or_else(|| self.filesystem_refusal(cost))
    }

    /// Whether the queue would pass `max_bytes` with `cost` more bytes.
    fn quota_refusal(&self, cost: u64) -> Option<FullCause> {
        (self.used.saturating_add(cost) > self.max_bytes).then_some(FullCause::Limit {
            used: self.used,
            max_bytes: self.max_bytes,
        })
    }

    /// Whether the quarantine would pass its cap with `cost` more bytes.
    fn quarantine_cap_refusal(&self, cost: u64) -> Option<FullCause> {
        (self.quarantine_used.saturating_add(cost) > self.quarantine_max_bytes).then_some(
            FullCause::Quarantine {
                used: self.quarantine_used,
                max_bytes: self.quarantine_max_bytes,
            },
        )
    }

    /// Whether `growth` more bytes would leave the filesystem less than the reserve. The
    /// estimate counts twice here ([`FILE_GROWTH_FACTOR`]): the database file grows by pages,
    /// and a message admitted last before the reserve must not take the file past the size the
    /// reserve was checked against, or the store would refuse for good after a drain (freed
    /// pages are reused, but the file never shrinks) on a partition that had room for it.
    fn filesystem_refusal(&self, growth: u64) -> Option<FullCause> {
        let available = self.available?;
        let room = available.saturating_sub(self.pending);
        let growth = growth.saturating_mul(FILE_GROWTH_FACTOR);
        let needs = self
            .reserve
            .saturating_add(growth.saturating_sub(self.db_free));
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
    /// Bytes of records admitted so far.
    admitted: u64,
    /// Bytes of quarantine entries admitted so far.
    admitted_quarantine: u64,
    refused: Option<FullCause>,
    quarantine_refused: Option<FullCause>,
}

impl Space {
    /// Measures the space in use, as seen inside the transaction.
    pub(crate) fn measure(tx: &Transaction<'_>, policy: SpacePolicy<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            outlook: outlook(tx, policy)?,
            admitted: 0,
            admitted_quarantine: 0,
            refused: None,
            quarantine_refused: None,
        })
    }

    /// Why this batch started refusing records, if it did.
    pub(crate) fn refused(&self) -> Option<FullCause> {
        self.refused
    }

    /// Admits a record of `cost` more bytes, or refuses this and every later record (and, when
    /// the filesystem refused, every later quarantine entry too).
    pub(crate) fn admit(&mut self, cost: u64) -> Result<(), FullCause> {
        if let Some(cause) = self.refused {
            return Err(cause);
        }
        let records = self.admitted.saturating_add(cost);
        let growth = records.saturating_add(self.admitted_quarantine);
        let refusal = self
            .outlook
            .quota_refusal(records)
            .or_else(|| self.outlook.filesystem_refusal(growth));
        match refusal {
            Some(cause) => Err(self.refuse(cause, false)),
            None => {
                self.admitted = records;
                Ok(())
            }
        }
    }

    /// Admits a quarantine entry of `cost` more bytes (counted as [`held_bytes`]), or refuses
    /// this and every later entry.
    ///
    /// [`held_bytes`]: super::quarantine::held_bytes
    pub(crate) fn admit_quarantine(&mut self, cost: u64) -> Result<(), FullCause> {
        if let Some(cause) = self.quarantine_refused {
            return Err(cause);
        }
        let entries = self.admitted_quarantine.saturating_add(cost);
        let growth = entries.saturating_add(self.admitted);
        let refusal = self
            .outlook
            .quarantine_cap_refusal(entries)
            .or_else(|| self.outlook.filesystem_refusal(growth));
        match refusal {
            Some(cause) => Err(self.refuse(cause, true)),
            None => {
                self.admitted_quarantine = entries;
                Ok(())
            }
        }
    }

    /// Refuses later requests of the kind that was refused (both kinds when the filesystem
    /// refused); returns `cause`.
    fn refuse(&mut self, cause: FullCause, quarantine: bool) -> FullCause {
        let both = matches!(cause, FullCause::Reserve { .. } | FullCause::Filesystem);
        if both || !quarantine {
            self.refused.get_or_insert(cause);
        }
        if both || quarantine {
            self.quarantine_refused.get_or_insert(cause);
        }
        cause
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
    let quarantine_used = super::quarantine::usage(conn)?;
    Ok(SpaceOutlook {
        used: live
            .saturating_add(wal.saturating_sub(standing))
            .saturating_sub(quarantine_used),
        max_bytes: policy.max_bytes,
        available,
        pending,
        reserve: policy.reserve_bytes,
        db_free: free.saturating_mul(page_size),
        quarantine_used,
        quarantine_max_bytes: policy.quarantine_max_bytes,
    })
}

/// The write-ahead log's standing size: the store keeps it allocated beside `max_bytes`.
pub const STANDING_WAL_BYTES: u64 = schema::JOURNAL_SIZE_LIMIT_BYTES as u64;

/// How many times its estimated size a write is assumed to grow the database file by, for the
/// filesystem's reserve (an upper bound: b-tree pages are not full, and indexes and the audit
/// line take pages of their own).
const FILE_GROWTH_FACTOR: u64 = 2;

/// The filesystem space kept free for deletes and checkpoints by default.
pub const DEFAULT_RESERVE_BYTES: u64 = 16 << 20;

/// What the store needs on its filesystem beyond `max_bytes` and the quarantine's own cap:
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
                quarantine_used: 0,
                quarantine_max_bytes: 300,
            },
            admitted: 0,
            admitted_quarantine: 0,
            refused: None,
            quarantine_refused: None,
        }
    }

    fn is_quarantine(r: Result<(), FullCause>) -> bool {
        matches!(r, Err(FullCause::Quarantine { .. }))
    }

    #[test]
    fn rejected_messages_fill_the_quarantine_cap_not_the_queue() {
        let mut s = space(900, None, 0);
        assert_eq!(
            s.admit_quarantine(200),
            Ok(()),
            "the queue's usage is not the cap"
        );
        assert!(is_quarantine(s.admit_quarantine(200)));
        assert!(is_quarantine(s.admit_quarantine(1)), "later entries too");
        assert_eq!(s.admit(50), Ok(()), "records are still admitted");
        assert!(is_limit(s.admit(100)));
        assert_eq!(
            space(1_000, None, 0).admit_quarantine(100),
            Ok(()),
            "a full queue does not refuse the quarantine"
        );
    }

    #[test]
    fn the_filesystem_reserve_counts_both_kinds_and_refuses_both() {
        // 300 bytes of room above the reserve, every estimate counted twice.
        let mut s = space(0, Some(400), 0);
        assert_eq!(s.admit_quarantine(75), Ok(()));
        assert_eq!(s.admit(50), Ok(()));
        assert!(
            is_reserve(s.admit(50)),
            "2 x (75 + 50 + 50) leaves less than 100"
        );
        assert!(is_reserve(s.admit_quarantine(1)));
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
        // 250 bytes of room above the reserve hold messages estimated at 125 (counted twice).
        let mut s = space(0, Some(350), 0);
        assert_eq!(s.admit(250 / FILE_GROWTH_FACTOR), Ok(()));
        assert!(is_reserve(s.admit(1)));
    }

    #[test]
    fn free_pages_inside_the_database_need_no_filesystem_room() {
        let mut s = space(0, Some(100), 500);
        assert_eq!(s.admit(500 / FILE_GROWTH_FACTOR), Ok(()));
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
            quarantine_used: 0,
            quarantine_max_bytes: 64 << 20,
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
