//! Receipt mode in the store: rows the broker acknowledged wait in `awaiting_receipt` until the
//! hub's custody receipt names their record id (see `hl7edge_protocol::receipt`).
//!
//! Invariants:
//! - A row leaves `records` in receipt mode only when a receipt names its id (or a technician
//!   drops it); a PUBACK only marks it *at broker*. The mark, like a delete at PUBACK, commits
//!   without its own fsync: a lost mark makes the row unsent again, so it is published again
//!   under the same id, which the hub drops.
//! - `since_ms` is the first PUBACK and never moves, so the oldest row's age says how long the
//!   hub has not confirmed it, however often it was published again. `due_ms` is when it is
//!   published again; each PUBACK of the same row waits twice as long as the one before, up to
//!   [`MAX_WAIT_FACTOR`] times the timeout ([`wait_ms`]).
//! - Applying a receipt is idempotent: an id the store no longer holds (or already marked sent)
//!   is skipped. All ids of one receipt are applied in one transaction.
//! - `awaiting_receipt` rows go with their record (`ON DELETE CASCADE`, and explicitly when a
//!   receipted row is kept as sent under `retain_sent`), so they never outlive it.

use rusqlite::{Connection, Transaction, params};
use uuid::Uuid;

use super::stats::StatsDelta;

/// The longest wait for a receipt, in timeouts: a record whose receipt never comes (the hub
/// is down, or refuses it as a dead letter) is published again at most this often.
pub const MAX_WAIT_FACTOR: i64 = 8;

/// How long to wait for a receipt after the `published`-th PUBACK of a record (1 for the
/// first): the timeout, doubled for each earlier PUBACK, at most [`MAX_WAIT_FACTOR`] times it.
pub fn wait_ms(timeout_ms: i64, published: i64) -> i64 {
    let doublings = published.saturating_sub(1).clamp(0, 3);
    timeout_ms
        .saturating_mul(1 << doublings)
        .min(timeout_ms.saturating_mul(MAX_WAIT_FACTOR))
}

/// A receipt to apply: the record ids the hub committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Receipted {
    pub(crate) ids: Vec<Uuid>,
    pub(crate) now_ms: i64,
}

/// Marks the unsent rows among `seqs` (inclusive runs) as at broker (PUBACKed at `now_ms`),
/// or, for a row already at broker (published again), counts the PUBACK and sets its next wait
/// ([`wait_ms`], written out in SQL). Set-based, two statements per run: the mark of a drained
/// publish costs about what its delete costs in puback mode. Returns how many rows were found;
/// counts each row's first PUBACK as forwarded for its source.
pub(crate) fn mark_at_broker(
    tx: &Transaction<'_>,
    runs: &[(i64, i64)],
    now_ms: i64,
    timeout_ms: i64,
    stats: &mut StatsDelta,
) -> rusqlite::Result<u64> {
    let mut first_marks = tx.prepare_cached(
        "SELECT source, count(*) FROM records r
         WHERE seq BETWEEN ?1 AND ?2 AND sent_at_ms IS NULL
           AND NOT EXISTS (SELECT 1 FROM awaiting_receipt a WHERE a.seq = r.seq)
         GROUP BY source",
    )?;
    // `published` on the right of the update is the count before this PUBACK: the wait after
    // the n-th PUBACK is the timeout times 2^min(n - 1, 3), as `wait_ms` says.
    let mut mark = tx.prepare_cached(
        "INSERT INTO awaiting_receipt (seq, since_ms, due_ms, published)
         SELECT seq, ?3, ?3 + ?4, 1 FROM records
         WHERE seq BETWEEN ?1 AND ?2 AND sent_at_ms IS NULL
         ON CONFLICT (seq) DO UPDATE
         SET published = published + 1, due_ms = ?3 + ?4 * (1 << min(published, 3))",
    )?;
    let mut found = 0;
    for &(first, last) in runs {
        let mut counts = first_marks.query(params![first, last])?;
        while let Some(row) = counts.next()? {
            let n: u64 = row.get(1)?;
            stats.source(row.get_ref(0)?.as_str()?).forwarded += n;
        }
        let changed = mark.execute(params![first, last, now_ms, timeout_ms])?;
        found += u64::try_from(changed).unwrap_or(0);
    }
    Ok(found)
}

/// Applies a receipt: each named record still queued is deleted (or, when sent records are
/// retained, marked sent) and leaves `awaiting_receipt`. Returns the seqs of the rows it
/// found, in seq order.
pub(crate) fn apply_receipt(
    tx: &Transaction<'_>,
    req: &Receipted,
    retain_sent_ms: i64,
) -> rusqlite::Result<Vec<i64>> {
    let mut done = Vec::new();
    if retain_sent_ms == 0 {
        let mut delete = tx.prepare_cached(
            "DELETE FROM records WHERE id = ?1 AND sent_at_ms IS NULL RETURNING seq",
        )?;
        for id in &req.ids {
            let mut rows = delete.query([id])?;
            while let Some(row) = rows.next()? {
                done.push(row.get(0)?);
            }
        }
    } else {
        let mut sent = tx.prepare_cached(
            "UPDATE records SET sent_at_ms = ?2 WHERE id = ?1 AND sent_at_ms IS NULL RETURNING seq",
        )?;
        let mut forget = tx.prepare_cached("DELETE FROM awaiting_receipt WHERE seq = ?1")?;
        for id in &req.ids {
            let seq: Option<i64> = {
                let mut rows = sent.query(params![id, req.now_ms])?;
                rows.next()?.map(|r| r.get(0)).transpose()?
            };
            if let Some(seq) = seq {
                forget.execute([seq])?;
                done.push(seq);
            }
        }
    }
    done.sort_unstable();
    Ok(done)
}

/// In puback mode, rows a receipt-mode run left awaiting their receipt are queued again as
/// unsent: they are published again and deleted at their PUBACK. Returns how many.
pub(crate) fn forget_awaiting(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM awaiting_receipt", [])
}

/// How many rows await their receipt, and the first PUBACK of the oldest, Unix ms.
pub(crate) fn awaiting(conn: &Connection) -> rusqlite::Result<(u64, Option<i64>)> {
    conn.query_row(
        "SELECT count(*), (SELECT min(since_ms) FROM awaiting_receipt) FROM awaiting_receipt",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// When the next row awaiting its receipt is due to be published again, Unix ms.
pub(crate) fn next_due(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT min(due_ms) FROM awaiting_receipt", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_further_wait_doubles_up_to_eight_timeouts() {
        let waits: Vec<i64> = (1..=6).map(|n| wait_ms(1_000, n)).collect();
        assert_eq!(waits, [1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
        assert_eq!(wait_ms(1_000, 0), 1_000, "never shorter than the timeout");
        assert_eq!(wait_ms(i64::MAX, 9), i64::MAX, "no overflow");
    }
}
