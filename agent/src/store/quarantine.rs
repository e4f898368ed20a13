//! Quarantine: messages answered AE because they could not be understood or
//! routed, kept with their raw bytes so an operator can inspect, replay or
//! drop them (promise 4: nothing is dropped silently).
//!
//! Invariants:
//! - An entry is *open* until it is replayed or dropped; both are one-way
//!   and audited, and an entry cannot be resolved twice.
//! - Dropping erases the raw bytes and the stored NAK (with
//!   `secure_delete`), keeping only the metadata as a tombstone for the
//!   audit trail. Replaying keeps everything.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

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
    /// When it was dropped, if it was.
    pub dropped_at_ms: Option<i64>,
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
            "UPDATE quarantine SET dropped_at_ms = ?2, raw = X'', ack = X''
             WHERE id = ?1 AND replayed_at_ms IS NULL AND dropped_at_ms IS NULL"
        }
    };
    let changed = tx.prepare_cached(sql)?.execute(params![id, at_ms])?;
    Ok(changed == 1)
}

const SUMMARY_COLUMNS: &str = "id, received_at_ms, source, peer, error, error_code, length(raw), replayed_at_ms, dropped_at_ms";

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
                raw: row.get(9)?,
                ack: row.get(10)?,
            })
        })
        .optional()
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
    })
}
