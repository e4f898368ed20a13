//! Quarantine: messages answered AE because they could not be understood or
//! routed, kept with their raw bytes so an operator can inspect, replay or
//! drop them (promise 4: nothing is dropped silently).
//!
//! Invariants:
//! - An entry is *open* until it is replayed, dropped or erased past the
//!   quarantine's retention (which counts as a drop); each is one-way and
//!   audited, and an entry cannot be resolved twice.
//! - Dropping erases the raw bytes and the stored NAK (with
//!   `secure_delete`), keeping only the metadata as a tombstone for the
//!   audit trail. Replaying links the entry to the record it became and
//!   keeps the bytes until that record has left the queue (forwarded), then
//!   erases them (see `at_rest.rs`, which also expires and forgets
//!   entries).
//! - The bytes the quarantine holds are counted in `quarantine_usage` by
//!   triggers (schema 5): [`held_bytes`] of every row, so the quarantine's
//!   own cap is checked without reading the table.

use hl7edge_protocol::push::ReplayFilter;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use uuid::Uuid;

/// Bytes a row that holds its raw message counts beyond its raw message and
/// NAK (row header and index entries). The triggers of schema 5 use the
/// same number (`iif(length(raw) > 0, 160, 0)`).
pub(crate) const HELD_ROW_BYTES: u64 = 160;

/// What one entry counts against the quarantine's cap: its raw message
/// and NAK, plus [`HELD_ROW_BYTES`] while the raw message is held (the
/// triggers' rule).
pub(crate) fn held_bytes(raw_len: usize, ack_len: usize) -> u64 {
    let len = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let row = if raw_len > 0 { HELD_ROW_BYTES } else { 0 };
    len(raw_len)
        .saturating_add(len(ack_len))
        .saturating_add(row)
}

/// A message to keep in quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The listener (interface) name it arrived on.
    pub source: String,
    /// The peer address it came from, as text.
    pub peer: String,
    /// When it was received, Unix milliseconds.
    pub received_at_ms: i64,
    /// The raw frame content.
    pub raw: Vec<u8>,
    /// Why it was rejected (shown to operators; stored, never logged).
    pub error: String,
    /// The HL7 table 0357 error code sent in the NAK's ERR segment.
    pub error_code: u16,
    /// The NAK that was (or will be) sent for it.
    pub ack: Vec<u8>,
    /// Its MSH-15/MSH-16 asked for no acknowledgement (counted per source).
    pub no_ack_requested: bool,
}

/// How an operator resolved a quarantine entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The message was ingested again (for example after a mapping fix).
    Replayed,
    /// The message was discarded; its raw bytes are erased.
    Dropped,
}

impl Resolution {
    /// The audit trail kind of this resolution.
    pub(crate) fn audit_kind(self) -> &'static str {
        match self {
            Self::Replayed => "quarantine.replayed",
            Self::Dropped => "quarantine.dropped",
        }
    }
}

/// A quarantine entry as read back, without its raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineSummary {
    /// The entry's id.
    pub id: i64,
    /// When the message was received, Unix milliseconds.
    pub received_at_ms: i64,
    /// The listener name.
    pub source: String,
    /// The peer address.
    pub peer: String,
    /// Why it was rejected.
    pub error: String,
    /// The HL7 table 0357 error code.
    pub error_code: u16,
    /// Size of the raw message in bytes (0 once dropped).
    pub raw_len: u64,
    /// When it was replayed, if it was.
    pub replayed_at_ms: Option<i64>,
    /// When it was dropped, if it was (also set when it expired).
    pub dropped_at_ms: Option<i64>,
    /// When its raw message was erased past the quarantine's retention, if
    /// it was.
    pub expired_at_ms: Option<i64>,
    /// When its raw message and NAK were erased (dropped, expired, or
    /// replayed and forwarded), if they were.
    pub erased_at_ms: Option<i64>,
}

/// A quarantine entry with its raw bytes and stored NAK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineEntry {
    /// Everything but the bytes.
    pub summary: QuarantineSummary,
    /// The raw message (empty once dropped).
    pub raw: Vec<u8>,
    /// The NAK that was sent (empty once dropped).
    pub ack: Vec<u8>,
}

/// Inserts an entry; returns its id.
pub(crate) fn insert(tx: &Transaction<'_>, q: &Quarantined) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO quarantine (received_at_ms, source, peer, raw, error, error_code, ack)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        q.received_at_ms,
        q.source,
        q.peer,
        q.raw,
        q.error,
        q.error_code,
        q.ack
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Resolves an open entry; returns false when no open entry has that id.
pub(crate) fn resolve(
    tx: &Transaction<'_>,
    id: i64,
    how: Resolution,
    at_ms: i64,
) -> rusqlite::Result<bool> {
    let sql = match how {
        Resolution::Replayed => {
            "UPDATE quarantine SET replayed_at_ms = ?2
             WHERE id = ?1 AND replayed_at_ms IS NULL AND dropped_at_ms IS NULL"
        }
        Resolution::Dropped => {
            "UPDATE quarantine SET dropped_at_ms = ?2, erased_at_ms = ?2, raw = X'', ack = X''
             WHERE id = ?1 AND replayed_at_ms IS NULL AND dropped_at_ms IS NULL"
        }
    };
    let changed = tx.prepare_cached(sql)?.execute(params![id, at_ms])?;
    Ok(changed == 1)
}

/// Remembers the record a replayed entry became (stored now, or stored
/// earlier when the replay was a resend), so its raw bytes are erased once
/// that record has left the queue.
pub(crate) fn link_record(tx: &Transaction<'_>, id: i64, record: Uuid) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE quarantine SET record_id = ?2 WHERE id = ?1")?
        .execute(params![id, record])?;
    Ok(())
}

/// Bytes the quarantine's entries count against its cap ([`held_bytes`]
/// summed by the triggers).
pub(crate) fn usage(conn: &Connection) -> rusqlite::Result<u64> {
    Ok(conn
        .prepare_cached("SELECT bytes FROM quarantine_usage WHERE id = 1")?
        .query_row([], |r| r.get::<_, i64>(0))
        .optional()?
        .map_or(0, |b| u64::try_from(b).unwrap_or(0)))
}

const SUMMARY_COLUMNS: &str = "id, received_at_ms, source, peer, error, error_code, length(raw), replayed_at_ms, dropped_at_ms, expired_at_ms, erased_at_ms";

/// Open entries, oldest first, at most `limit`.
pub(crate) fn list_open(
    conn: &Connection,
    limit: usize,
) -> rusqlite::Result<Vec<QuarantineSummary>> {
    open_entries(conn, limit, "ASC")
}

/// Open entries, newest first, at most `limit`.
pub(crate) fn list_open_newest(
    conn: &Connection,
    limit: usize,
) -> rusqlite::Result<Vec<QuarantineSummary>> {
    open_entries(conn, limit, "DESC")
}

/// Open entries in id order `direction` (`ASC` or `DESC`).
fn open_entries(
    conn: &Connection,
    limit: usize,
    direction: &'static str,
) -> rusqlite::Result<Vec<QuarantineSummary>> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM quarantine
         WHERE replayed_at_ms IS NULL AND dropped_at_ms IS NULL ORDER BY id {direction} LIMIT ?1"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([limit], summary_from_row)?;
    rows.collect()
}

/// One entry with its bytes, open or not.
pub(crate) fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<QuarantineEntry>> {
    let sql = format!("SELECT {SUMMARY_COLUMNS}, raw, ack FROM quarantine WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id], |row| {
            Ok(QuarantineEntry {
                summary: summary_from_row(row)?,
                raw: row.get(11)?,
                ack: row.get(12)?,
            })
        })
        .optional()
}

/// Open entries matching `filter` with an id above `after_id`, oldest first, at most
/// `limit`, with their bytes (a replay's page).
pub(crate) fn matching(
    conn: &Connection,
    filter: &ReplayFilter,
    after_id: i64,
    limit: usize,
) -> rusqlite::Result<Vec<QuarantineEntry>> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, raw, ack FROM quarantine
         WHERE replayed_at_ms IS NULL AND dropped_at_ms IS NULL AND id > ?1
           AND (?2 IS NULL OR source = ?2) AND (?3 IS NULL OR error_code = ?3)
           AND (?4 IS NULL OR received_at_ms >= ?4) AND (?5 IS NULL OR received_at_ms < ?5)
         ORDER BY id LIMIT ?6"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            after_id,
            filter.listener,
            filter.error_code,
            filter.since_ms,
            filter.until_ms,
            limit
        ],
        |row| {
            Ok(QuarantineEntry {
                summary: summary_from_row(row)?,
                raw: row.get(11)?,
                ack: row.get(12)?,
            })
        },
    )?;
    rows.collect()
}

/// Number of open entries.
pub(crate) fn count_open(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT count(*) FROM quarantine WHERE replayed_at_ms IS NULL AND dropped_at_ms IS NULL",
        [],
        |r| r.get(0),
    )
}

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<QuarantineSummary> {
    Ok(QuarantineSummary {
        id: row.get(0)?,
        received_at_ms: row.get(1)?,
        source: row.get(2)?,
        peer: row.get(3)?,
        error: row.get(4)?,
        error_code: row.get(5)?,
        raw_len: row.get(6)?,
        replayed_at_ms: row.get(7)?,
        dropped_at_ms: row.get(8)?,
        expired_at_ms: row.get(9)?,
        erased_at_ms: row.get(10)?,
    })
}
