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

/// Bytes of index entries, row headers and the message's share of its
/// batch's audit line (a hash-chained row per transaction), on top of its
/// payload.
const ROW_OVERHEAD: u64 = 512;

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
    counters.no_ack_requested += u64::from(msg.no_ack_requested);
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
    counters.no_ack_requested += u64::from(q.no_ack_requested);
    let cost = super::quarantine::held_bytes(q.raw.len(), q.ack.len())
        + len(q.error.as_bytes())
        + len(q.peer.as_bytes());
    if let Err(cause) = space.admit_quarantine(cost) {
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
/// with its copy of the ACK, their index entries and the audit line's
/// share (the filesystem check counts it twice over, see `space.rs`).
fn footprint(msg: &NewMessage) -> u64 {
    let keys = len(msg.source.as_bytes()) + len(msg.control_id.as_bytes());
    let payload = msg.raw.as_deref().map_or(0, len)
        + len(&msg.record)
        + 2 * len(&msg.ack)
        + len(msg.message_type.as_bytes())
        + 2 * keys
        + 2 * 16
        + 32;
    ROW_OVERHEAD + payload
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

/// The first record stored with this source, control id and content
/// within the window: one point lookup on the primary key.
const SAME_CONTENT: &str = "SELECT record_id, ack FROM dedupe
     WHERE source = ?1 AND control_id = ?2 AND content_hash = ?3 AND at_ms >= ?4";

/// Whether this source used the control id within the window at all: the
/// first row of the primary key's `(source, control_id)` range that is
/// recent enough (rows older than the window are pruned, so it is nearly
/// always the first row looked at).
const SAME_CONTROL_ID: &str = "SELECT 1 FROM dedupe
     WHERE source = ?1 AND control_id = ?2 AND at_ms >= ?3 LIMIT 1";

/// Answers both questions, is it a resend and was the control id reused,
/// with two index lookups whose cost does not grow with the number of
/// messages that reused the control id. (One query that sorted the
/// control id's rows by "same content" first read every one of them: a
/// sender that sends every message with the same control id made each
/// insert slower than the last, for every interface behind the one
/// writer.)
fn earlier_in_window(
    tx: &Transaction<'_>,
    msg: &NewMessage,
    window_start: i64,
) -> rusqlite::Result<Earlier> {
    let same: Option<(Uuid, Vec<u8>)> = tx
        .prepare_cached(SAME_CONTENT)?
        .query_row(
            params![msg.source, msg.control_id, msg.content_hash, window_start],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((id, ack)) = same {
        return Ok(Earlier::Resend { id, ack });
    }
    let reused = tx
        .prepare_cached(SAME_CONTROL_ID)?
        .query_row(
            params![msg.source, msg.control_id, window_start],
            |_| Ok(()),
        )
        .optional()?;
    Ok(match reused {
        Some(()) => Earlier::OtherContent,
        None => Earlier::None,
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use rusqlite::Connection;

    use super::*;

    fn message(control_id: &str, content: u8) -> NewMessage {
        NewMessage {
            source: "lab".into(),
            control_id: control_id.into(),
            content_hash: [content; 32],
            message_type: "ORU^R01".into(),
            received_at_ms: 1_000_000,
            raw: Some(b"MSH|".to_vec()),
            record: Vec::new(),
            ack: vec![b'A'; 200],
            no_ack_requested: false,
        }
    }

    #[test]
    fn the_lookup_does_not_grow_with_the_messages_that_reused_a_control_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("q.db")).unwrap();
        crate::store::schema::migrate(&mut conn).unwrap();
        // SQLite's virtual machine instructions, whatever statement runs.
        let ops = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&ops);
        conn.progress_handler(
            1,
            Some(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                false
            }),
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        let lookup = |msg: &NewMessage| {
            let before = ops.load(Ordering::Relaxed);
            let found = earlier_in_window(&tx, msg, 0).unwrap();
            (found, ops.load(Ordering::Relaxed) - before)
        };
        // Once to prepare the statements, then measured.
        lookup(&message("SAME", 0));
        let (found, empty) = lookup(&message("SAME", 0));
        assert_eq!(found, Earlier::None);
        for n in 1..=250u8 {
            remember(&tx, &message("SAME", n), Uuid::now_v7()).unwrap();
        }
        for n in 0..2_000 {
            remember(&tx, &message(&format!("C{n}"), 7), Uuid::now_v7()).unwrap();
        }
        let (found, reused) = lookup(&message("SAME", 0));
        assert_eq!(found, Earlier::OtherContent);
        let (found, resend) = lookup(&message("SAME", 200));
        assert!(matches!(found, Earlier::Resend { .. }), "{found:?}");
        assert!(
            reused <= empty + 50 && resend <= empty + 50,
            "{empty} instructions with no row, {reused} and {resend} with 250 rows of the control id"
        );
    }
}
