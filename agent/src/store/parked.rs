//! Records set aside ("parked") because they can never fit the hub's
//! payload limit, and the two ways out of that state.
//!
//! Invariants:
//! - A parked row is an unsent row of `records` with `parked_at_ms` set:
//!   never deleted by the forwarder, never purged, counted apart from the
//!   queue depth (see `reader.rs`). Only the forwarder parks (through the
//!   writer, with a `record.parked` audit line).
//! - A replay moves the row to the end of the queue: the same record id,
//!   receive time and content under a new seq (so a running agent, whose
//!   reads go forward from its cursor, picks it up), not parked; it then
//!   arrives after records received later (it was held back), and the hub
//!   still knows it by its id. A drop
//!   deletes it (`secure_delete` erases its pages). Each is one
//!   transaction with its audit line (`parked.replayed`, `parked.dropped`).

use rusqlite::{Transaction, params};

use super::audit;

/// Sets row `seq` aside; false when it is gone, sent or already parked.
pub(crate) fn park(
    tx: &Transaction<'_>,
    seq: i64,
    at_ms: i64,
    detail: &str,
) -> rusqlite::Result<bool> {
    let changed = tx
        .prepare_cached(
            "UPDATE records SET parked_at_ms = ?2
             WHERE seq = ?1 AND sent_at_ms IS NULL AND parked_at_ms IS NULL",
        )?
        .execute(params![seq, at_ms])?;
    if changed > 0 {
        audit::append(tx, at_ms, "record.parked", detail)?;
    }
    Ok(changed > 0)
}

/// Moves parked row `seq` to the end of the queue, unparked; returns its
/// new seq, or `None` when no parked row has that seq. The row keeps its id,
/// receive time and content; only its place in the queue changes. The new
/// seq is the next `AUTOINCREMENT` value, and `sqlite_sequence` is moved to
/// it, so a seq is still never reused.
pub(crate) fn requeue(tx: &Transaction<'_>, seq: i64, at_ms: i64) -> rusqlite::Result<Option<i64>> {
    let Some((id, source, control_id)) = describe(tx, seq)? else {
        return Ok(None);
    };
    let new_seq: i64 = tx.query_row(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'records'), 0),
                    (SELECT coalesce(max(seq), 0) FROM records)) + 1",
        [],
        |r| r.get(0),
    )?;
    tx.execute(
        "UPDATE records SET seq = ?2, parked_at_ms = NULL WHERE seq = ?1",
        params![seq, new_seq],
    )?;
    tx.execute(
        "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'records'",
        [new_seq],
    )?;
    let detail = format!(
        "record {seq} ({id}) from {source}, control id {control_id}: queued again as {new_seq}"
    );
    audit::append(tx, at_ms, "parked.replayed", &detail)?;
    Ok(Some(new_seq))
}

/// Deletes parked row `seq`; false when no parked row has that seq.
pub(crate) fn drop_record(tx: &Transaction<'_>, seq: i64, at_ms: i64) -> rusqlite::Result<bool> {
    let Some((id, source, control_id)) = describe(tx, seq)? else {
        return Ok(false);
    };
    tx.execute("DELETE FROM records WHERE seq = ?1", [seq])?;
    let detail = format!(
        "record {seq} ({id}) from {source}, control id {control_id}: erased by an operator, never sent"
    );
    audit::append(tx, at_ms, "parked.dropped", &detail)?;
    Ok(true)
}

/// Record id, source and control id of parked row `seq` (no PHI).
fn describe(
    tx: &Transaction<'_>,
    seq: i64,
) -> rusqlite::Result<Option<(uuid::Uuid, String, String)>> {
    use rusqlite::OptionalExtension;
    tx.query_row(
        "SELECT id, source, control_id FROM records
         WHERE seq = ?1 AND parked_at_ms IS NOT NULL AND sent_at_ms IS NULL",
        [seq],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()
}
