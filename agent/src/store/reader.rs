//! Read-only access to the store: what the forwarder publishes, and what
//! `hl7edge status` shows (also while the agent runs, thanks to WAL).
//!
//! A [`StoreReader`] owns one read-only connection and is synchronous: call
//! it from `spawn_blocking` in async code. It is `Send`, not `Sync`. Every
//! call reads one consistent snapshot of committed data.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use uuid::Uuid;

use super::{
    audit::{self, AuditEntry},
    error::StoreError,
    quarantine::{self, QuarantineEntry, QuarantineSummary},
    schema,
    stats::{self, SourceStats},
};

/// A committed record not yet acknowledged by the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecord {
    /// Sequence number: the order records are forwarded in.
    pub seq: i64,
    /// The record id (UUIDv7), stable across resends.
    pub id: Uuid,
    /// The listener (interface) name.
    pub source: String,
    /// The record's number among its source's records (1, 2, 3, ...).
    pub source_seq: u64,
    /// MSH-9 as a short code.
    pub message_type: String,
    /// When the message was received, Unix milliseconds.
    pub received_at_ms: i64,
    /// The encoded normalized record.
    pub record: Vec<u8>,
    /// The raw message.
    pub raw: Vec<u8>,
}

/// A summary of the store for status and telemetry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStats {
    /// Records not yet acknowledged by the broker.
    pub queue_depth: u64,
    /// Receive time of the oldest unsent record (by seq), Unix ms.
    pub oldest_unsent_ms: Option<i64>,
    /// Size of the database file in bytes.
    pub db_bytes: u64,
    /// Size of the write-ahead log file in bytes.
    pub wal_bytes: u64,
    /// Quarantine entries neither replayed nor dropped.
    pub quarantine_count: u64,
    /// Lifetime counters per source.
    pub sources: Vec<SourceStats>,
}

/// A read-only connection to the store.
#[derive(Debug)]
pub struct StoreReader {
    conn: Connection,
    path: PathBuf,
}

impl StoreReader {
    /// Opens an existing store for reading.
    ///
    /// The connection is opened read-write with `query_only` set: a
    /// strictly read-only connection to a WAL database may fail when the
    /// `-wal`/`-shm` files are gone (the agent removes them at a clean
    /// stop), which is when `hl7edge status` often reads it. Without write
    /// access it falls back to a read-only open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let rw = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match Connection::open_with_flags(path, rw) {
            Ok(conn) => conn,
            Err(_) => Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
        };
        conn.pragma_update(None, "query_only", true)?;
        schema::configure_reader(&conn)?;
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    /// Up to `limit` unsent records with `seq > after_seq`, in seq order.
    pub fn pending(&self, after_seq: i64, limit: usize) -> Result<Vec<PendingRecord>, StoreError> {
        self.pending_records(after_seq, limit, true)
    }

    /// Like [`StoreReader::pending`]; with `with_raw` false the raw HL7 is
    /// not read (`raw` is empty). The forwarder reads without it unless an
    /// interface forwards raw messages: the raw bytes are most of a row, so
    /// this keeps the rows a drain holds in memory (and reads from disk)
    /// small.
    pub fn pending_records(
        &self,
        after_seq: i64,
        limit: usize,
        with_raw: bool,
    ) -> Result<Vec<PendingRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, id, source, message_type, received_at_ms, record,
                    CASE WHEN ?3 THEN raw ELSE x'' END, coalesce(source_seq, 0) FROM records
             WHERE sent_at_ms IS NULL AND seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map([after_seq, limit, i64::from(with_raw)], |r| {
            Ok(PendingRecord {
                seq: r.get(0)?,
                id: r.get(1)?,
                source: r.get(2)?,
                message_type: r.get(3)?,
                received_at_ms: r.get(4)?,
                record: r.get(5)?,
                raw: r.get(6)?,
                source_seq: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The raw HL7 of record `seq`, if the row is still there.
    pub fn raw(&self, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT raw FROM records WHERE seq = ?1")?;
        Ok(stmt.query_row([seq], |r| r.get(0)).optional()?)
    }

    /// Queue depth, sizes, quarantine and per-source counters.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let tx = self.conn.unchecked_transaction()?; // one snapshot for all reads
        let queue_depth = tx.query_row(
            "SELECT count(*) FROM records WHERE sent_at_ms IS NULL",
            [],
            |r| r.get(0),
        )?;
        let oldest_unsent_ms = tx
            .query_row(
                "SELECT received_at_ms FROM records WHERE sent_at_ms IS NULL ORDER BY seq LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let quarantine_count = quarantine::count_open(&tx)?;
        let sources = stats::read_all(&tx)?;
        drop(tx);
        Ok(StoreStats {
            queue_depth,
            oldest_unsent_ms,
            db_bytes: file_len(&self.path),
            wal_bytes: file_len(&wal_path(&self.path)),
            quarantine_count,
            sources,
        })
    }

    /// Bytes in live pages (`page_count - freelist_count` pages): what the
    /// queue occupies, the measure the store's `max_bytes` quota uses.
    pub fn live_bytes(&self) -> Result<u64, StoreError> {
        let page_size: u64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))?;
        let pages: u64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))?;
        let free: u64 = self
            .conn
            .pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        Ok(pages.saturating_sub(free).saturating_mul(page_size))
    }

    /// Open quarantine entries, oldest first, without their raw bytes.
    pub fn quarantine_list(&self, limit: usize) -> Result<Vec<QuarantineSummary>, StoreError> {
        Ok(quarantine::list_open(&self.conn, limit)?)
    }

    /// The newest `limit` open quarantine entries, newest first, without
    /// their raw bytes.
    pub fn quarantine_latest(&self, limit: usize) -> Result<Vec<QuarantineSummary>, StoreError> {
        Ok(quarantine::list_open_newest(&self.conn, limit)?)
    }

    /// One quarantine entry with its raw bytes, open or resolved.
    pub fn quarantine_get(&self, id: i64) -> Result<Option<QuarantineEntry>, StoreError> {
        Ok(quarantine::get(&self.conn, id)?)
    }

    /// The newest `limit` audit lines, newest first.
    pub fn audit_recent(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(audit::recent(&self.conn, limit)?)
    }
}

/// The write-ahead log next to a database file.
pub(crate) fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// A file's length; 0 when it does not exist or cannot be examined.
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
