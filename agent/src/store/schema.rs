//! Connection settings, the schema, and its migrations.
//!
//! Invariants:
//! - A write connection is used only after every durability pragma has been
//!   read back with the required value (`journal_mode=wal`,
//!   `synchronous=FULL`, `secure_delete=ON`, `foreign_keys=ON`). If the
//!   filesystem cannot do WAL (some network filesystems), open fails rather
//!   than run with weaker guarantees.
//! - `PRAGMA user_version` is the schema version: migration `n` (1-based)
//!   moves a file from `n - 1` to `n` inside one transaction, so a crash
//!   during a migration leaves the previous version intact. A file newer
//!   than this build is refused, never rewritten.
//! - `PRAGMA application_id` marks the file as ours; an SQLite file from
//!   another program is refused, never set aside or migrated.
//! - `records.seq` is `AUTOINCREMENT`: a sequence number is never reused,
//!   even after every row was deleted, so a reader's `after_seq` cursor can
//!   never skip a new row. Seq, not time, orders records.
//! - `records.source_seq` numbers the records of one source 1, 2, 3, ...
//!   in commit order: `source_sequence.last` is the source's last number,
//!   raised in the transaction that inserts the record, so a rolled-back
//!   insert leaves no gap and a number is never given twice (it survives
//!   restarts and the deletion of every row).

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, config::DbConfig};

use super::error::StoreError;

/// `PRAGMA application_id` of an hl7edge store ("HL7E").
pub(crate) const APPLICATION_ID: i32 = 0x484c_3745;

/// How long a connection waits for a lock held by another connection.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite's automatic checkpoint is off: it would run inside the writer's
/// COMMIT and delay the ACKs waiting on it. The checkpointer thread and the
/// writer's own bound take its place (see `checkpoint.rs`).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 0;

/// After a checkpoint the WAL file is cut back to this size when it is
/// reused. Keeping (rather than truncating to zero) this much of it
/// allocated means deletes can still commit on a completely full filesystem.
/// The writer checkpoints itself once the log is three quarters of this
/// (`checkpoint::WAL_FORCE_FRAMES`); below that the checkpointer thread
/// copies it in the background. A backlog drain writes the log fast (every
/// freed page is zeroed): at 4 MiB the writer checkpointed after nearly
/// every delete batch itself; at 16 MiB the thread does most of it on the
/// other core, and pages rewritten by several batches are copied once
/// (drain CPU per record about 15 % lower, measured with the gateway bench).
pub(crate) const JOURNAL_SIZE_LIMIT_BYTES: i64 = 16 * 1024 * 1024;

/// Schema version 1: every table of the store.
pub(crate) const V1: &str = "
CREATE TABLE records (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
    source         TEXT    NOT NULL,
    control_id     TEXT    NOT NULL,
    message_type   TEXT    NOT NULL,
    received_at_ms INTEGER NOT NULL,
    raw            BLOB    NOT NULL,
    record         BLOB    NOT NULL,
    sent_at_ms     INTEGER
) STRICT;
CREATE INDEX records_unsent ON records (seq) WHERE sent_at_ms IS NULL;
CREATE INDEX records_sent ON records (sent_at_ms) WHERE sent_at_ms IS NOT NULL;

CREATE TABLE dedupe (
    source       TEXT    NOT NULL,
    control_id   TEXT    NOT NULL,
    content_hash BLOB    NOT NULL CHECK (length(content_hash) = 32),
    record_id    BLOB    NOT NULL CHECK (length(record_id) = 16),
    ack          BLOB    NOT NULL,
    at_ms        INTEGER NOT NULL,
    PRIMARY KEY (source, control_id, content_hash)
) STRICT, WITHOUT ROWID;
CREATE INDEX dedupe_at ON dedupe (at_ms);

CREATE TABLE quarantine (
    id             INTEGER PRIMARY KEY,
    received_at_ms INTEGER NOT NULL,
    source         TEXT    NOT NULL,
    peer           TEXT    NOT NULL,
    raw            BLOB    NOT NULL,
    error          TEXT    NOT NULL,
    error_code     INTEGER NOT NULL,
    ack            BLOB    NOT NULL,
    replayed_at_ms INTEGER,
    dropped_at_ms  INTEGER
) STRICT;
CREATE INDEX quarantine_open ON quarantine (id)
    WHERE replayed_at_ms IS NULL AND dropped_at_ms IS NULL;

CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    at_ms  INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    detail TEXT    NOT NULL
) STRICT;

CREATE TABLE source_stats (
    source             TEXT    PRIMARY KEY,
    received           INTEGER NOT NULL DEFAULT 0,
    stored             INTEGER NOT NULL DEFAULT 0,
    duplicates         INTEGER NOT NULL DEFAULT 0,
    quarantined        INTEGER NOT NULL DEFAULT 0,
    control_id_reuse   INTEGER NOT NULL DEFAULT 0,
    refused_full       INTEGER NOT NULL DEFAULT 0,
    forwarded          INTEGER NOT NULL DEFAULT 0,
    last_message_at_ms INTEGER
) STRICT, WITHOUT ROWID;
";

/// Schema version 2: per source, the messages that asked for no
/// acknowledgement (MSH-15/MSH-16 `NE`).
const V2: &str = "
ALTER TABLE source_stats ADD COLUMN no_ack_requested INTEGER NOT NULL DEFAULT 0;
";

/// Schema version 3 (this branch's first; renumber freely at merge): the audit trail is
/// hash-chained (`hash` of each line, see `audit.rs`; lines of older builds are sealed at open)
/// and pruned by age behind an anchor (the last pruned line's id and hash).
const V3_AUDIT_CHAIN: &str = "
ALTER TABLE audit ADD COLUMN hash BLOB;
CREATE TABLE audit_anchor (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_id   INTEGER NOT NULL,
    last_hash BLOB    NOT NULL,
    pruned    INTEGER NOT NULL
) STRICT;
";

/// Schema version 4: records set aside because they can never fit the
/// hub's payload limit (`parked_at_ms`, set by the forwarder; see
/// `forwarder/split.rs`). Such a row stays unsent and is skipped by the
/// forwarder's read until a technician replays or drops it.
const V4_PARKED: &str = "
ALTER TABLE records ADD COLUMN parked_at_ms INTEGER;
CREATE INDEX records_parked ON records (seq) WHERE parked_at_ms IS NOT NULL;
";

/// Schema version 5: patient data at rest, minimal and bounded (see `quarantine.rs` and
/// `at_rest.rs`).
/// - `records.raw` may be NULL: the raw HL7 is stored only for interfaces that forward it
///   (`include_raw`). Rows of older builds keep theirs (a newer build may normalize them again
///   from it); the change only drops the constraint, no row is rewritten.
/// - A quarantine entry remembers the record its replay became (`record_id`) and when its raw
///   bytes were erased (`erased_at_ms`: dropped, past retention, or replayed and forwarded);
///   `expired_at_ms` marks the ones erased by the retention (they are also `dropped_at_ms`, so
///   they no longer count as open). Entries dropped by older builds are already erased.
/// - `quarantine_usage` holds the bytes the quarantine's messages take (raw and NAK, plus a row
///   overhead while the raw is held), kept by triggers, so the quarantine's own cap is checked
///   without reading the table and every writer (agent or CLI) keeps it right.
const V5_AT_REST: &str = "
ALTER TABLE records ALTER COLUMN raw DROP NOT NULL;
ALTER TABLE quarantine ADD COLUMN record_id BLOB CHECK (record_id IS NULL OR length(record_id) = 16);
ALTER TABLE quarantine ADD COLUMN erased_at_ms INTEGER;
ALTER TABLE quarantine ADD COLUMN expired_at_ms INTEGER;
UPDATE quarantine SET erased_at_ms = dropped_at_ms WHERE dropped_at_ms IS NOT NULL;
CREATE INDEX quarantine_held ON quarantine (received_at_ms) WHERE erased_at_ms IS NULL;
CREATE INDEX quarantine_erased ON quarantine (erased_at_ms) WHERE erased_at_ms IS NOT NULL;
CREATE INDEX quarantine_replayed_held ON quarantine (id)
    WHERE replayed_at_ms IS NOT NULL AND erased_at_ms IS NULL;
CREATE TABLE quarantine_usage (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    bytes INTEGER NOT NULL
) STRICT;
INSERT INTO quarantine_usage (id, bytes)
    SELECT 1, coalesce(sum(length(raw) + length(ack) + iif(length(raw) > 0, 160, 0)), 0)
    FROM quarantine;
CREATE TRIGGER quarantine_usage_insert AFTER INSERT ON quarantine BEGIN
    UPDATE quarantine_usage SET bytes = bytes
        + length(NEW.raw) + length(NEW.ack) + iif(length(NEW.raw) > 0, 160, 0)
    WHERE id = 1;
END;
CREATE TRIGGER quarantine_usage_update AFTER UPDATE OF raw, ack ON quarantine BEGIN
    UPDATE quarantine_usage SET bytes = bytes
        + length(NEW.raw) + length(NEW.ack) + iif(length(NEW.raw) > 0, 160, 0)
        - length(OLD.raw) - length(OLD.ack) - iif(length(OLD.raw) > 0, 160, 0)
    WHERE id = 1;
END;
CREATE TRIGGER quarantine_usage_delete AFTER DELETE ON quarantine BEGIN
    UPDATE quarantine_usage SET bytes = bytes
        - length(OLD.raw) - length(OLD.ack) - iif(length(OLD.raw) > 0, 160, 0)
    WHERE id = 1;
END;
";

/// Schema version 6: custody receipts and the hub connection (see `custody.rs` and
/// `hub_link.rs`). `awaiting_receipt` holds, in receipt mode, the rows the broker acknowledged
/// and the hub has not receipted yet: when the first PUBACK came (`since_ms`), when the row is
/// published again without a receipt (`due_ms`) and how often it was PUBACKed. A row of its own
/// table, not a column of `records`: marking a record would rewrite its whole row (raw HL7 and
/// record, with `secure_delete`), and these rows are a few bytes. `hub_link` is one row: the
/// forwarder's connection state, its last error and the last publish, PUBACK and receipt,
/// written when they change (at most every few seconds), read by `hl7edge status`.
const V6_CUSTODY: &str = "
CREATE TABLE awaiting_receipt (
    seq       INTEGER PRIMARY KEY REFERENCES records (seq) ON DELETE CASCADE,
    since_ms  INTEGER NOT NULL,
    due_ms    INTEGER NOT NULL,
    published INTEGER NOT NULL DEFAULT 1
) STRICT;
CREATE INDEX awaiting_receipt_due ON awaiting_receipt (due_ms);
CREATE INDEX awaiting_receipt_since ON awaiting_receipt (since_ms);
CREATE TABLE hub_link (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    state           TEXT    NOT NULL,
    since_ms        INTEGER NOT NULL,
    custody         TEXT    NOT NULL,
    cause           TEXT,
    error           TEXT,
    error_at_ms     INTEGER,
    failures        INTEGER NOT NULL DEFAULT 0,
    connected_at_ms INTEGER,
    publish_at_ms   INTEGER,
    puback_at_ms    INTEGER,
    receipt_at_ms   INTEGER,
    updated_at_ms   INTEGER NOT NULL
) STRICT;
";

/// Schema version 7: every record gets a number per source (`source_seq`:
/// 1, 2, 3, ... in commit order, without gaps, never reused), kept in
/// `source_sequence`. Rows queued before the upgrade (and not yet sent) are
/// numbered in the order they were committed.
const V7_SOURCE_SEQUENCE: &str = "
ALTER TABLE records ADD COLUMN source_seq INTEGER;
CREATE TABLE source_sequence (
    source TEXT    PRIMARY KEY,
    last   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
UPDATE records SET source_seq = numbered.n
    FROM (SELECT seq, row_number() OVER (PARTITION BY source ORDER BY seq) AS n
          FROM records WHERE sent_at_ms IS NULL) AS numbered
    WHERE records.seq = numbered.seq;
INSERT INTO source_sequence (source, last)
    SELECT source, max(source_seq) FROM records
    WHERE source_seq IS NOT NULL GROUP BY source;
";

/// Schema version 8: each source's messages per hour (`period` = Unix ms / `hour_ms`), and the
/// hour counting began, for the silent-feed watch (`telemetry::rhythm`). Rows older than
/// [`RHYTHM_KEEP_DAYS`](super::stats::RHYTHM_KEEP_DAYS) are pruned as new ones are written.
const V8_SOURCE_RHYTHM: &str = "
CREATE TABLE source_rhythm (
    source  TEXT    NOT NULL,
    hour_ms INTEGER NOT NULL,
    period  INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (source, hour_ms, period)
) STRICT, WITHOUT ROWID;
CREATE TABLE source_rhythm_since (
    source       TEXT    NOT NULL,
    hour_ms      INTEGER NOT NULL,
    first_period INTEGER NOT NULL,
    PRIMARY KEY (source, hour_ms)
) STRICT, WITHOUT ROWID;
";

/// Every migration, in order; index `i` produces schema version `i + 1`.
const MIGRATIONS: &[&str] = &[
    V1,
    V2,
    V3_AUDIT_CHAIN,
    V4_PARKED,
    V5_AT_REST,
    V6_CUSTODY,
    V7_SOURCE_SEQUENCE,
    V8_SOURCE_RHYTHM,
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies and verifies the durability settings of a write connection.
pub(crate) fn configure_writer(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    keep_plans(conn)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    expect_text("journal_mode", "wal", &mode)?;
    set_and_verify(conn, "synchronous", 2)?; // FULL
    set_and_verify(conn, "secure_delete", 1)?;
    set_and_verify(conn, "foreign_keys", 1)?;
    set_and_verify(conn, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    set_and_verify(conn, "journal_size_limit", JOURNAL_SIZE_LIMIT_BYTES)?;
    Ok(())
}

/// Page cache of a connection that reads rows once, in seq order (the
/// forwarder, status and telemetry readers) or only checkpoints, in KiB
/// (`PRAGMA cache_size` takes it negated). SQLite's default is 2,000 KiB
/// per connection; these connections gain nothing from it (a sequential
/// read needs the b-tree path, a few pages), and several of them at the
/// default are a good part of the agent's memory during a long drain.
pub(crate) const STREAMING_CACHE_KIB: i64 = 256;

/// Settings of the checkpointer's connection: it only checkpoints, and
/// syncs what it copies like the writer does.
pub(crate) fn configure_checkpointer(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    set_and_verify(conn, "synchronous", 2)?; // FULL
    set_and_verify(conn, "wal_autocheckpoint", 0)?;
    set_and_verify(conn, "cache_size", -STREAMING_CACHE_KIB)?;
    Ok(())
}

/// Settings of a read-only connection (the reader, the integrity check).
pub(crate) fn configure_reader(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    keep_plans(conn)?;
    set_and_verify(conn, "query_only", 1)?;
    set_and_verify(conn, "cache_size", -STREAMING_CACHE_KIB)?;
    Ok(())
}

/// Turns on SQLite's query planner stability guarantee: a cached statement
/// keeps its plan whatever values are bound to it. Without it, SQLite
/// re-prepares (re-parses and re-plans) a statement each time a new value
/// is bound to a parameter the planner looked at: a `LIMIT ?`, or a
/// parameter compared in both the result and `ORDER BY`. The dedupe lookup
/// and the forwarder's read are such statements, and re-preparing them was
/// a tenth of the agent's CPU per message. Our queries have one good plan
/// (an index range), so nothing is lost.
fn keep_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

fn set_and_verify(conn: &Connection, pragma: &'static str, value: i64) -> Result<(), StoreError> {
    conn.pragma_update(None, pragma, value)?;
    let actual: i64 = conn.pragma_query_value(None, pragma, |r| r.get(0))?;
    if actual == value {
        Ok(())
    } else {
        Err(StoreError::Pragma {
            pragma,
            expected: value.to_string(),
            actual: actual.to_string(),
        })
    }
}

fn expect_text(pragma: &'static str, expected: &str, actual: &str) -> Result<(), StoreError> {
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(StoreError::Pragma {
            pragma,
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        })
    }
}

/// Brings the file to [`SCHEMA_VERSION`]; returns the version found.
pub(crate) fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    check_ownership(conn, found)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let version = i64::try_from(index).unwrap_or(i64::MAX).saturating_add(1);
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.commit()?;
        tracing::info!(version, "store schema migrated");
    }
    Ok(found)
}

/// Checks, without changing anything, that an existing file is one of our
/// stores at exactly [`SCHEMA_VERSION`] (for a second process, which never
/// migrates).
pub(crate) fn check_current(conn: &Connection) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let application_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if application_id != APPLICATION_ID {
        let path = conn.path().unwrap_or_default().into();
        return Err(StoreError::ForeignDatabase {
            path,
            application_id,
        });
    }
    match found.cmp(&SCHEMA_VERSION) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        }),
        std::cmp::Ordering::Less => Err(StoreError::SchemaOutdated {
            found,
            expected: SCHEMA_VERSION,
        }),
    }
}

/// Refuses a database that belongs to another program: one with a foreign
/// application id, or an unversioned one that already has tables.
fn check_ownership(conn: &Connection, user_version: i64) -> Result<(), StoreError> {
    let application_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let foreign = match application_id {
        APPLICATION_ID => false,
        0 => user_version != 0 || has_tables(conn)?,
        _ => true,
    };
    if foreign {
        let path = conn.path().unwrap_or_default().into();
        return Err(StoreError::ForeignDatabase {
            path,
            application_id,
        });
    }
    Ok(())
}

fn has_tables(conn: &Connection) -> Result<bool, rusqlite::Error> {
    conn.query_row("SELECT 1 FROM sqlite_schema LIMIT 1", [], |_| Ok(()))
        .optional()
        .map(|row| row.is_some())
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;

    fn temp_db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("q.db")).unwrap();
        (dir, conn)
    }

    #[test]
    fn writer_pragmas_read_back_as_required() {
        let (_dir, conn) = temp_db();
        configure_writer(&conn).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        let secure: i64 = conn
            .pragma_query_value(None, "secure_delete", |r| r.get(0))
            .unwrap();
        assert_eq!((mode.as_str(), sync, secure), ("wal", 2, 1));
    }

    #[test]
    fn cached_statements_keep_their_plan_when_rebound() {
        let (_dir, mut conn) = temp_db();
        configure_writer(&conn).unwrap();
        migrate(&mut conn).unwrap();
        let sql =
            "SELECT seq FROM records WHERE sent_at_ms IS NULL AND seq > ?1 ORDER BY seq LIMIT ?2";
        for limit in 1..=3_i64 {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            let rows: Vec<i64> = stmt
                .query_map([0, limit], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(rows.is_empty());
            // A new LIMIT value would re-prepare the statement without the
            // planner stability guarantee.
            assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0);
        }
        let reader = Connection::open(conn.path().unwrap()).unwrap();
        configure_reader(&reader).unwrap();
        let stable = reader
            .db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG)
            .unwrap();
        assert!(stable, "readers keep their plans too");
    }

    #[test]
    fn in_memory_database_cannot_be_a_store_because_it_has_no_wal() {
        let conn = Connection::open_in_memory().unwrap();
        let err = configure_writer(&conn).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Pragma {
                    pragma: "journal_mode",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn migration_creates_schema_once_and_is_idempotent() {
        let (_dir, mut conn) = temp_db();
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        assert_eq!(migrate(&mut conn).unwrap(), SCHEMA_VERSION);
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('records','dedupe','quarantine','audit','source_stats')", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 5);
    }

    #[test]
    fn a_version_1_store_migrates_keeping_its_rows_and_counters() {
        let (_dir, mut conn) = temp_db();
        let v1 = conn.transaction().unwrap();
        v1.execute_batch(V1).unwrap();
        v1.execute(
            "INSERT INTO source_stats (source, received, stored) VALUES ('lab', 7, 6)",
            [],
        )
        .unwrap();
        v1.pragma_update(None, "user_version", 1).unwrap();
        v1.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        v1.commit().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 1);
        let row: (i64, i64, i64) = conn
            .query_row(
                "SELECT received, stored, no_ack_requested FROM source_stats WHERE source = 'lab'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(row, (7, 6, 0));
    }

    #[test]
    fn a_version_4_store_keeps_its_raw_messages_and_learns_what_its_quarantine_holds() {
        let (_dir, mut conn) = temp_db();
        let v4 = conn.transaction().unwrap();
        for sql in &MIGRATIONS[..4] {
            v4.execute_batch(sql).unwrap();
        }
        v4.execute(
            "INSERT INTO records (id, source, control_id, message_type, received_at_ms, raw, record)
             VALUES (zeroblob(16), 'lab', 'C1', 'ORU^R01', 1, X'4D5348', X'01')",
            [],
        )
        .unwrap();
        v4.execute_batch(
            "INSERT INTO quarantine (received_at_ms, source, peer, raw, error, error_code, ack)
                 VALUES (1, 'lab', 'p', X'0102030405', 'e', 101, X'0607');
             INSERT INTO quarantine (received_at_ms, source, peer, raw, error, error_code, ack,
                                     dropped_at_ms)
                 VALUES (2, 'lab', 'p', X'', 'e', 101, X'', 9);",
        )
        .unwrap();
        v4.pragma_update(None, "user_version", 4).unwrap();
        v4.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        v4.commit().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 4);
        let raw: Vec<u8> = conn
            .query_row("SELECT raw FROM records", [], |r| r.get(0))
            .unwrap();
        assert_eq!(raw, b"MSH", "a row of an older build keeps its raw message");
        conn.execute(
            "INSERT INTO records (id, source, control_id, message_type, received_at_ms, raw, record)
             VALUES (randomblob(16), 'lab', 'C2', 'ORU^R01', 2, NULL, X'01')",
            [],
        )
        .expect("raw may be NULL from schema 5 on");
        let usage: i64 = conn
            .query_row("SELECT bytes FROM quarantine_usage", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            usage,
            5 + 2 + 160,
            "the open entry; the dropped one holds nothing"
        );
        let erased: Option<i64> = conn
            .query_row(
                "SELECT erased_at_ms FROM quarantine WHERE id = 2",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(erased, Some(9));
    }

    #[test]
    fn newer_schema_is_refused() {
        let (_dir, mut conn) = temp_db();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1)
        );
    }

    #[test]
    fn another_programs_database_is_refused() {
        let (_dir, mut conn) = temp_db();
        conn.execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::ForeignDatabase {
                    application_id: 0,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
