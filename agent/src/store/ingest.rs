//! Storing a message: resend detection, the size limit, the insert.
//!
//! Invariants:
//! - A resend (same source, control id and content hash, first stored at
//!   most `dedupe_window` before this one was received) inserts nothing and
//!   returns the first record's id and ACK. The `dedupe` table is separate
//!   from `records`, so this holds after the record was forwarded and
//!   deleted. Requests of one batch run in order in one transaction, so the
//!   second of two identical messages in a batch is a resend of the first.
//! - A resend is answered even when the store is full: it adds no data.
//! - A new message is admitted by [`Space`] (see `space.rs`) before it is
//!   inserted; a refused one inserts nothing and is counted.

use rusqlite::{OptionalExtension, Transaction, params};
use uuid::Uuid;

use super::{
    error::StoreError,
    quarantine::Quarantined,
    request::{Inserted, NewMessage},
    space::Space,
    stats::StatsDelta,
};

/// Bytes of index entries and row headers per stored message, on top of
/// its payload; an estimate, so the limit is approximate by this much.
const ROW_OVERHEAD: u64 = 160;

/// Stores one message, or recognizes it as a resend, or refuses it.
pub(crate) fn insert(
    tx: &Transaction<'_>,
    msg: &NewMessage,
    dedupe_window_ms: i64,
    space: &mut Space,
    stats: &mut StatsDelta,
) -> rusqlite::Result<Result<Inserted, StoreError>> {
    let window_start = msg.received_at_ms.saturating_sub(dedupe_window_ms);
    let counters = stats.seen(&msg.source, msg.received_at_ms);
    let earlier = earlier_in_window(tx, msg, window_start)?;
    if let Earlier::Resend { id, ack } = earlier {
        counters.duplicates += 1;
        return Ok(Ok(Inserted::Duplicate { id, ack }));
    }
    if let Err(cause) = space.admit(footprint(msg)) {
        counters.refused_full += 1;
        return Ok(Err(StoreError::Full { cause }));
    }
    let reused_control_id = earlier == Earlier::OtherContent;
    if reused_control_id {
        counters.control_id_reuse += 1;
    }
    let (id, seq) = insert_record(tx, msg)?;
    remember(tx, msg, id)?;
    counters.stored += 1;
    Ok(Ok(Inserted::Stored {
        id,
        seq,
        reused_control_id,
    }))
}

/// Admits and stores one quarantine entry, or refuses it for space.
pub(crate) fn quarantine(
    tx: &Transaction<'_>,
    q: &Quarantined,
    space: &mut Space,
    stats: &mut StatsDelta,
) -> rusqlite::Result<Result<i64, StoreError>> {
    let counters = stats.seen(&q.source, q.received_at_ms);
    let cost =
        ROW_OVERHEAD + len(&q.raw) + len(&q.ack) + len(q.error.as_bytes()) + len(q.peer.as_bytes());
    if let Err(cause) = space.admit(cost) {
        counters.refused_full += 1;
        return Ok(Err(StoreError::Full { cause }));
    }
    let id = super::quarantine::insert(tx, q)?;
    counters.quarantined += 1;
    Ok(Ok(id))
}

fn len(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

/// Estimated bytes a stored message takes: the record row, its dedupe row
/// and their index entries.
fn footprint(msg: &NewMessage) -> u64 {
    let keys = len(msg.source.as_bytes()) + len(msg.control_id.as_bytes());
    ROW_OVERHEAD
        + len(&msg.raw)
        + len(&msg.record)
        + len(&msg.ack)
        + len(msg.message_type.as_bytes())
        + 2 * keys
        + 2 * 16
        + 32
}

/// What the dedupe table holds for a message's source and control id
/// within the window.
#[derive(Debug, PartialEq, Eq)]
enum Earlier {
    /// Nothing: a new control id.
    None,
    /// The same content: a resend of this stored record, with its ACK.
    Resend { id: Uuid, ack: Vec<u8> },
    /// Only other content: the control id was reused.
    OtherContent,
}

/// Looks the message's control id up once (one index range on the
/// primary key's `(source, control_id)` prefix) for both questions: is it
/// a resend, and was the control id reused.
fn earlier_in_window(
    tx: &Transaction<'_>,
    msg: &NewMessage,
    window_start: i64,
) -> rusqlite::Result<Earlier> {
    let mut stmt = tx.prepare_cached(
        "SELECT content_hash = ?3, record_id, ack FROM dedupe
         WHERE source = ?1 AND control_id = ?2 AND at_ms >= ?4
         ORDER BY content_hash = ?3 DESC LIMIT 1",
    )?;
    let found: Option<(bool, Uuid, Vec<u8>)> = stmt
        .query_row(
            params![msg.source, msg.control_id, msg.content_hash, window_start],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(match found {
        None => Earlier::None,
        Some((true, id, ack)) => Earlier::Resend { id, ack },
        Some((false, _, _)) => Earlier::OtherContent,
    })
}

/// Inserts the record with a new id and the next number of its source.
fn insert_record(tx: &Transaction<'_>, msg: &NewMessage) -> rusqlite::Result<(Uuid, i64)> {
    let id = Uuid::now_v7();
    let source_seq: i64 = tx
        .prepare_cached(
            "INSERT INTO source_sequence (source, last) VALUES (?1, 1)
             ON CONFLICT (source) DO UPDATE SET last = last + 1
             RETURNING last",
        )?
        .query_row([&msg.source], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO records (id, source, control_id, message_type, received_at_ms, raw, record,
                              source_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        id,
        msg.source,
        msg.control_id,
        msg.message_type,
        msg.received_at_ms,
        msg.raw,
        msg.record,
        source_seq
    ])?;
    Ok((id, tx.last_insert_rowid()))
}

/// Records the message for resend detection (replacing an expired entry).
fn remember(tx: &Transaction<'_>, msg: &NewMessage, id: Uuid) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO dedupe (source, control_id, content_hash, record_id, ack, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (source, control_id, content_hash) DO UPDATE SET
             record_id = excluded.record_id, ack = excluded.ack, at_ms = excluded.at_ms",
    )?
    .execute(params![
        msg.source,
        msg.control_id,
        msg.content_hash,
        id,
        msg.ack,
        msg.received_at_ms
    ])?;
    Ok(())
}

/// Deletes resend-detection entries older than the window, at most `limit`
/// of them; returns how many.
pub(crate) fn prune_dedupe(
    tx: &Transaction<'_>,
    before_ms: i64,
    limit: usize,
) -> rusqlite::Result<usize> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    tx.prepare_cached(
        "DELETE FROM dedupe WHERE (source, control_id, content_hash) IN
             (SELECT source, control_id, content_hash FROM dedupe WHERE at_ms < ?1 LIMIT ?2)",
    )?
    .execute(params![before_ms, limit])
}
