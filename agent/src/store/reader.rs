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
    custody,
    error::StoreError,
    hub_link::{self, HubLinkRow},
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
    /// The encoded normalized record; empty when it is longer than the
    /// read's [`PendingQuery::max_record`] (see `record_len`).
    pub record: Vec<u8>,
    /// The raw message; `None` unless asked for, when the record was not
    /// read, or when it was not stored (its interface did not forward raw
    /// HL7 when the message arrived).
    pub raw: Option<Vec<u8>>,
    /// The stored record's length. When it is over the read's
    /// [`PendingQuery::max_record`] the record was not read: it cannot be
    /// sent whole, and the forwarder sets it aside.
    pub record_len: usize,
}

/// What the forwarder reads next: unsent, not parked rows after a seq, in
/// seq order, bounded by rows and by bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingQuery {
    /// Rows with a seq above this.
    pub after_seq: i64,
    /// Most rows.
    pub max_rows: usize,
    /// Most record and raw bytes over all rows; the first row is returned
    /// whatever its size, so a read always makes progress.
    pub max_bytes: usize,
    /// A record longer than this is not read (its row comes back with an
    /// empty record and its `record_len`).
    pub max_record: usize,
    /// Read the raw HL7 as well.
    pub with_raw: bool,
    /// Which rows.
    pub pick: Pick,
}

/// Which queued rows a forwarder read takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Every unsent row (puback mode).
    Unsent,
    /// Unsent rows the broker has not acknowledged yet (receipt mode's new rows).
    NotAtBroker,
    /// Rows awaiting their receipt whose wait ended at or before this, Unix ms (receipt
    /// mode's rows to publish again).
    Due {
        /// The latest `due_ms` taken.
        before_ms: i64,
    },
}

/// Rows awaiting the hub's custody receipt (receipt mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Awaiting {
    /// How many.
    pub count: u64,
    /// The first PUBACK of the oldest, Unix ms.
    pub oldest_since_ms: Option<i64>,
}

/// A record set aside because it cannot fit the hub's payload limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedRecord {
    /// Its sequence number (the id `hl7edge parked` commands take).
    pub seq: i64,
    /// The record id (UUIDv7).
    pub id: Uuid,
    /// The listener (interface) name.
    pub source: String,
    /// MSH-10, the sender's control id.
    pub control_id: String,
    /// MSH-9 as a short code.
    pub message_type: String,
    /// When the message was received, Unix ms.
    pub received_at_ms: i64,
    /// When the forwarder set it aside, Unix ms.
    pub parked_at_ms: i64,
    /// The stored record's length in bytes.
    pub record_len: u64,
    /// The raw message's length in bytes.
    pub raw_len: u64,
}

/// A summary of the store for status and telemetry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStats {
    /// Records not yet acknowledged by the broker, parked ones and ones
    /// awaiting a receipt not counted.
    pub queue_depth: u64,
    /// Receive time of the oldest unsent, not parked record not awaiting a
    /// receipt (by seq), Unix ms.
    pub oldest_unsent_ms: Option<i64>,
    /// Records set aside because they cannot fit the hub's payload limit.
    pub parked: u64,
    /// Records the broker acknowledged that wait for the hub's receipt
    /// (receipt mode; not counted in `queue_depth`).
    pub awaiting: Awaiting,
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

    /// Up to `limit` unsent, not parked records with `seq > after_seq`, in
    /// seq order, with their raw HL7.
    pub fn pending(&self, after_seq: i64, limit: usize) -> Result<Vec<PendingRecord>, StoreError> {
        self.pending_records(&PendingQuery {
            after_seq,
            max_rows: limit,
            max_bytes: usize::MAX,
            max_record: usize::MAX,
            with_raw: true,
            pick: Pick::Unsent,
        })
    }

    /// The rows `query` asks for. Without `with_raw` the raw HL7 is not
    /// read (`raw` is `None`): the forwarder reads without it unless an
    /// interface forwards raw messages, and the raw bytes are most of a row.
    /// The byte bound keeps what one read holds in memory small whatever
    /// the records' sizes; a record over `max_record` is never loaded
    /// (SQLite reads a blob's length without its pages).
    pub fn pending_records(&self, query: &PendingQuery) -> Result<Vec<PendingRecord>, StoreError> {
        let limit = i64::try_from(query.max_rows).unwrap_or(i64::MAX);
        let max_record = i64::try_from(query.max_record).unwrap_or(i64::MAX);
        let params = [
            query.after_seq,
            limit,
            i64::from(query.with_raw),
            max_record,
        ];
        let mut stmt;
        let mut rows = match query.pick {
            Pick::Unsent | Pick::NotAtBroker => {
                let sql = if query.pick == Pick::Unsent {
                    PENDING_UNSENT
                } else {
                    PENDING_NOT_AT_BROKER
                };
                stmt = self.conn.prepare_cached(sql)?;
                stmt.query(params)?
            }
            Pick::Due { before_ms } => {
                stmt = self.conn.prepare_cached(PENDING_DUE)?;
                let [a, b, c, d] = params;
                stmt.query([a, b, c, d, before_ms])?
            }
        };
        let mut out = Vec::new();
        let mut bytes = 0_usize;
        while let Some(r) = rows.next()? {
            let row = PendingRecord {
                seq: r.get(0)?,
                id: r.get(1)?,
                source: r.get(2)?,
                message_type: r.get(3)?,
                received_at_ms: r.get(4)?,
                record_len: r.get(5)?,
                record: r.get(6)?,
                raw: r.get(7)?,
                source_seq: r.get(8)?,
            };
            let raw_len = row.raw.as_ref().map_or(0, Vec::len);
            bytes = bytes.saturating_add(row.record.len() + raw_len);
            if bytes > query.max_bytes && !out.is_empty() {
                break;
            }
            out.push(row);
        }
        Ok(out)
    }

    /// When the next row awaiting its receipt is due to be published again, Unix ms.
    pub fn next_receipt_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(custody::next_due(&self.conn)?)
    }

    /// The hub connection as the forwarder last recorded it.
    pub fn hub_link(&self) -> Result<Option<HubLinkRow>, StoreError> {
        Ok(hub_link::read(&self.conn)?)
    }

    /// The raw HL7 of record `seq`, if the row is still there and holds it (a row of an
    /// interface that does not forward raw messages has none).
    pub fn raw(&self, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT raw FROM records WHERE seq = ?1")?;
        let raw: Option<Option<Vec<u8>>> = stmt.query_row([seq], |r| r.get(0)).optional()?;
        Ok(raw.flatten())
    }

    /// Parked records (set aside as too big for the hub), oldest first.
    pub fn parked(&self, limit: usize) -> Result<Vec<ParkedRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {PARKED_COLUMNS}, x'' FROM records
             WHERE parked_at_ms IS NOT NULL AND sent_at_ms IS NULL ORDER BY seq LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit], |r| Ok(parked_row(r)?.0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One parked record with its stored record, for a replay.
    pub fn parked_record(&self, seq: i64) -> Result<Option<(ParkedRecord, Vec<u8>)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {PARKED_COLUMNS}, record FROM records
             WHERE seq = ?1 AND parked_at_ms IS NOT NULL AND sent_at_ms IS NULL"
        ))?;
        Ok(stmt.query_row([seq], parked_row).optional()?)
    }

    /// One source's messages per hour (of `hour_ms`) from `from_period` on, and the hour
    /// counting began; `None` when nothing was counted for it.
    pub fn rhythm(
        &self,
        source: &str,
        hour_ms: i64,
        from_period: i64,
    ) -> Result<Option<stats::HourlyCounts>, StoreError> {
        Ok(stats::read_rhythm(
            &self.conn,
            source,
            hour_ms,
            from_period,
        )?)
    }

    /// Queue depth, sizes, quarantine and per-source counters.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let tx = self.conn.unchecked_transaction()?; // one snapshot for all reads
        let unsent: u64 = tx.query_row(
            "SELECT count(*) FROM records WHERE sent_at_ms IS NULL",
            [],
            |r| r.get(0),
        )?;
        // Few rows, through their own index; parked rows are never sent.
        let parked: u64 = tx.query_row(
            "SELECT count(*) FROM records WHERE parked_at_ms IS NOT NULL AND sent_at_ms IS NULL",
            [],
            |r| r.get(0),
        )?;
        let oldest_unsent_ms = tx
            .query_row(
                "SELECT received_at_ms FROM records
                 WHERE sent_at_ms IS NULL AND parked_at_ms IS NULL
                   AND NOT EXISTS (SELECT 1 FROM awaiting_receipt a WHERE a.seq = records.seq)
                 ORDER BY seq LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let (count, oldest_since_ms) = custody::awaiting(&tx)?;
        let awaiting = Awaiting {
            count,
            oldest_since_ms,
        };
        let quarantine_count = quarantine::count_open(&tx)?;
        let sources = stats::read_all(&tx)?;
        drop(tx);
        Ok(StoreStats {
            queue_depth: unsent.saturating_sub(parked).saturating_sub(awaiting.count),
            oldest_unsent_ms,
            parked,
            awaiting,
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

    /// The space situation as the writer sees it, for a store limited to `max_bytes` that keeps
    /// `reserve_bytes` free on its filesystem ([`SpaceOutlook::refusal`] tells whether a
    /// message would be refused now, and why).
    pub fn space_outlook(
        &self,
        max_bytes: u64,
        reserve_bytes: u64,
    ) -> Result<super::SpaceOutlook, StoreError> {
        let wal = wal_path(&self.path);
        let policy = super::space::SpacePolicy {
            db_path: &self.path,
            wal_path: &wal,
            max_bytes,
            reserve_bytes,
            // Not judged here: the quarantine's cap is read with `quarantine_outlook`.
            quarantine_max_bytes: u64::MAX,
        };
        Ok(super::space::outlook(&self.conn, policy)?)
    }

    /// What the quarantine holds at `now_ms` against its cap and retention: bytes, entries
    /// holding their message, and the open ones whose message is erased within the warning
    /// period.
    pub fn quarantine_outlook(
        &self,
        now_ms: i64,
        limits: super::QuarantineLimits,
    ) -> Result<super::QuarantineOutlook, StoreError> {
        let tx = self.conn.unchecked_transaction()?; // one snapshot
        Ok(super::at_rest::outlook(&tx, now_ms, limits)?)
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

    /// Open quarantine entries a replay with `filter` takes, after entry `after_id`, oldest
    /// first, at most `limit`, with their raw bytes.
    pub fn quarantine_matching(
        &self,
        filter: &hl7edge_protocol::push::ReplayFilter,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<QuarantineEntry>, StoreError> {
        Ok(quarantine::matching(&self.conn, filter, after_id, limit)?)
    }

    /// One quarantine entry with its raw bytes, open or resolved.
    pub fn quarantine_get(&self, id: i64) -> Result<Option<QuarantineEntry>, StoreError> {
        Ok(quarantine::get(&self.conn, id)?)
    }

    /// The newest audit line of `kind`, if any.
    pub fn audit_last_of_kind(&self, kind: &str) -> Result<Option<AuditEntry>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, at_ms, kind, detail FROM audit WHERE kind = ?1 ORDER BY id DESC LIMIT 1",
                [kind],
                |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        at_ms: r.get(1)?,
                        kind: r.get(2)?,
                        detail: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Recomputes the audit chain over every kept line.
    pub fn audit_verify(&self) -> Result<super::Verdict, StoreError> {
        Ok(audit::verify(&self.conn)?)
    }

    /// Audit lines with `id > after`, oldest first, at most `limit`, with their hashes.
    pub fn audit_lines(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<super::ChainedEntry>, StoreError> {
        Ok(audit::lines(&self.conn, after, limit)?)
    }

    /// The audit trail's head hash (hex) and its number of kept lines.
    pub fn audit_head(&self) -> Result<(Option<String>, u64), StoreError> {
        Ok(audit::head_summary(&self.conn)?)
    }

    /// The newest `limit` audit lines whose kind starts with `prefix`, newest first.
    pub fn audit_recent_of(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(audit::recent_of(&self.conn, prefix, limit)?)
    }

    /// The newest `limit` audit lines, newest first.
    pub fn audit_recent(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(audit::recent(&self.conn, limit)?)
    }
}

/// The forwarder's read in puback mode: unsent, not parked rows after a seq.
const PENDING_UNSENT: &str = "SELECT seq, id, source, message_type, received_at_ms, length(record),
        CASE WHEN length(record) <= ?4 THEN record ELSE x'' END,
        CASE WHEN ?3 AND length(record) <= ?4 THEN raw END,
        coalesce(source_seq, 0)
    FROM records
    WHERE sent_at_ms IS NULL AND parked_at_ms IS NULL AND seq > ?1
    ORDER BY seq LIMIT ?2";

/// Receipt mode's read of new rows: as [`PENDING_UNSENT`], without rows awaiting a receipt.
const PENDING_NOT_AT_BROKER: &str = "SELECT seq, id, source, message_type, received_at_ms,
        length(record),
        CASE WHEN length(record) <= ?4 THEN record ELSE x'' END,
        CASE WHEN ?3 AND length(record) <= ?4 THEN raw END,
        coalesce(source_seq, 0)
    FROM records
    WHERE sent_at_ms IS NULL AND parked_at_ms IS NULL AND seq > ?1
      AND NOT EXISTS (SELECT 1 FROM awaiting_receipt a WHERE a.seq = records.seq)
    ORDER BY seq LIMIT ?2";

/// Receipt mode's read of rows to publish again: awaiting a receipt, due by `?5`, in seq
/// order (the `+` keeps SQLite walking `awaiting_receipt` by seq, not by `due_ms`).
const PENDING_DUE: &str = "SELECT r.seq, r.id, r.source, r.message_type, r.received_at_ms,
        length(r.record),
        CASE WHEN length(r.record) <= ?4 THEN r.record ELSE x'' END,
        CASE WHEN ?3 AND length(r.record) <= ?4 THEN r.raw END,
        coalesce(r.source_seq, 0)
    FROM awaiting_receipt a JOIN records r ON r.seq = a.seq
    WHERE a.seq > ?1 AND +a.due_ms <= ?5 AND r.sent_at_ms IS NULL AND r.parked_at_ms IS NULL
    ORDER BY a.seq LIMIT ?2";

/// The columns [`parked_row`] reads, followed by one blob column.
const PARKED_COLUMNS: &str = "seq, id, source, control_id, message_type, received_at_ms, \
                              parked_at_ms, length(record), coalesce(length(raw), 0)";

/// A parked record and the blob after [`PARKED_COLUMNS`].
fn parked_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ParkedRecord, Vec<u8>)> {
    let parked = ParkedRecord {
        seq: r.get(0)?,
        id: r.get(1)?,
        source: r.get(2)?,
        control_id: r.get(3)?,
        message_type: r.get(4)?,
        received_at_ms: r.get(5)?,
        parked_at_ms: r.get(6)?,
        record_len: r.get(7)?,
        raw_len: r.get(8)?,
    };
    Ok((parked, r.get(9)?))
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
