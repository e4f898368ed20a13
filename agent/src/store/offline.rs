//! Changes made by a second process, the `hl7edge quarantine` and
//! `hl7edge parked` commands,
//! directly on the database while the agent may be running.
//!
//! Invariants:
//! - Nothing here creates, migrates or sets aside a database: the file must
//!   exist and be an hl7edge store at exactly this build's schema version.
//! - Each change is one `IMMEDIATE` transaction on a connection with the
//!   writer's durability settings (WAL, `synchronous=FULL`,
//!   `secure_delete`) and its busy timeout: it waits for the agent's writer
//!   instead of failing, and a crash of either process leaves all of the
//!   change or none of it. A replay is never inserted without its entry
//!   being marked replayed, nor marked without being inserted.
//! - A replay stores the message through the ingest path of the writer
//!   (resend detection, the size limit, per-source counters), so a record
//!   made by a replay is indistinguishable from one made at arrival. The
//!   message is not counted as received a second time.
//! - The running agent's forwarder picks up a row inserted here: it reads
//!   pending rows after its cursor on a 500 ms tick, not only when its own
//!   writer signals a commit, and `AUTOINCREMENT` keeps seqs increasing
//!   across processes, so the new row is never behind the cursor.
//! - Running as root, SQLite gives the `-wal`/`-shm` files it creates the
//!   database file's owner, so the agent's user can still open them.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::{
    StoreConfig, audit,
    error::StoreError,
    ingest, parked,
    quarantine::{self, Resolution},
    request::{Inserted, NewMessage},
    schema,
    space::Space,
    stats::StatsDelta,
};

/// Stores `msg` (the re-prepared message of quarantine entry `id`) as a
/// record and marks the entry replayed, in one transaction, with an audit
/// line. Fails with [`StoreError::NotFound`] when the entry is not open
/// (then nothing is stored), and with [`StoreError::Full`] when the store
/// has no room (then the entry stays open).
pub fn replay(
    cfg: &StoreConfig,
    id: i64,
    msg: &NewMessage,
    at_ms: i64,
) -> Result<Inserted, StoreError> {
    let mut conn = open_existing(&cfg.path)?;
    let limits = cfg.limits();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut space = Space::measure(&tx, limits.space_policy())?;
    let mut stats = StatsDelta::default();
    let inserted = replay_in(
        &tx,
        id,
        msg,
        at_ms,
        limits.dedupe_window_ms,
        &mut space,
        &mut stats,
    )??;
    stats.flush(&tx)?;
    tx.commit()?;
    Ok(inserted)
}

/// Inside `tx`: marks open entry `id` replayed, stores `msg` through the ingest path (a
/// resend finds the record stored before), links the entry to its record and audits it. The
/// same body for this second process and for the running agent's writer (`apply.rs`), so a
/// replay is one transaction either way. The inner error (entry not open, store full) leaves
/// the caller to roll back.
pub(crate) fn replay_in(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    msg: &NewMessage,
    at_ms: i64,
    dedupe_window_ms: i64,
    space: &mut Space,
    stats: &mut StatsDelta,
) -> rusqlite::Result<Result<Inserted, StoreError>> {
    if !quarantine::resolve(tx, id, Resolution::Replayed, at_ms)? {
        return Ok(Err(not_open(id)));
    }
    let inserted = match ingest::insert(tx, msg, dedupe_window_ms, space, stats)? {
        Ok(inserted) => inserted,
        Err(e) => return Ok(Err(e)),
    };
    let counters = stats.source(&msg.source);
    counters.received = counters.received.saturating_sub(1);
    let (Inserted::Stored { id: record, .. } | Inserted::Duplicate { id: record, .. }) = &inserted;
    quarantine::link_record(tx, id, *record)?;
    let detail = match &inserted {
        Inserted::Stored { id: record, .. } => format!("quarantine entry {id} as record {record}"),
        Inserted::Duplicate { id: record, .. } => {
            format!("quarantine entry {id}, already stored as record {record}")
        }
    };
    audit::append(tx, at_ms, Resolution::Replayed.audit_kind(), &detail)?;
    Ok(Ok(inserted))
}

/// Drops open quarantine entry `id`, erasing its raw bytes, with an audit
/// line, in one transaction. Fails with [`StoreError::NotFound`] when the
/// entry is not open.
pub fn drop_entry(path: &Path, id: i64, at_ms: i64) -> Result<(), StoreError> {
    let mut conn = open_existing(path)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !quarantine::resolve(&tx, id, Resolution::Dropped, at_ms)? {
        return Err(not_open(id));
    }
    let detail = format!("quarantine entry {id}, by an operator");
    audit::append(&tx, at_ms, Resolution::Dropped.audit_kind(), &detail)?;
    tx.commit()?;
    Ok(())
}

/// Moves parked record `seq` to the end of the queue, no longer parked,
/// with an audit line, in one transaction; returns its new seq. Fails with
/// [`StoreError::NotFound`] when no parked record has that seq. Whether it
/// now fits the hub's payload limit is the caller's check.
pub fn replay_parked(path: &Path, seq: i64, at_ms: i64) -> Result<i64, StoreError> {
    let mut conn = open_existing(path)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let new_seq = parked::requeue(&tx, seq, at_ms)?.ok_or(StoreError::NotFound {
        what: "parked record",
        id: seq,
    })?;
    tx.commit()?;
    Ok(new_seq)
}

/// Erases parked record `seq` (it is never sent), with an audit line, in
/// one transaction. Fails with [`StoreError::NotFound`] when no parked
/// record has that seq.
pub fn drop_parked(path: &Path, seq: i64, at_ms: i64) -> Result<(), StoreError> {
    let mut conn = open_existing(path)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !parked::drop_record(&tx, seq, at_ms)? {
        return Err(StoreError::NotFound {
            what: "parked record",
            id: seq,
        });
    }
    tx.commit()?;
    Ok(())
}

/// Appends one line to the audit trail of an existing store (an operator's action made outside
/// the agent: `quarantine show`, `provision --install-cert`), chained like every other line.
pub fn audit(path: &Path, at_ms: i64, kind: &str, detail: &str) -> Result<(), StoreError> {
    let mut conn = open_existing(path)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    audit::append(&tx, at_ms, kind, detail)?;
    tx.commit()?;
    Ok(())
}

/// Opens an existing store for writing next to the agent's writer.
fn open_existing(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(schema::BUSY_TIMEOUT)?;
    schema::check_current(&conn)?;
    schema::configure_writer(&conn)?;
    Ok(conn)
}

fn not_open(id: i64) -> StoreError {
    StoreError::NotFound {
        what: "open quarantine entry",
        id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        Quarantined, StoreReader,
        tests::{close, message, open_store, temp_config},
    };

    async fn quarantined(cfg: &StoreConfig) -> i64 {
        let store = open_store(cfg);
        let entry = Quarantined {
            no_ack_requested: false,
            source: "lab".into(),
            peer: "10.0.0.7:4000".into(),
            received_at_ms: crate::store::now_ms(),
            raw: b"MSH|^~\\&|LAB\rPID|1".to_vec(),
            error: "error 101 at MSH-10: missing".into(),
            error_code: 101,
            ack: b"MSA|AE".to_vec(),
        };
        let id = store.handle.quarantine(entry).await.unwrap();
        close(store).await.unwrap();
        id
    }

    #[tokio::test]
    async fn replay_stores_the_record_marks_the_entry_and_audits_once() {
        let (_dir, cfg) = temp_config();
        let id = quarantined(&cfg).await;
        let msg = message("lab", "C1", "fixed");
        let inserted = replay(&cfg, id, &msg, 5_000).unwrap();
        let Inserted::Stored { seq, .. } = inserted else {
            panic!("expected a new record, got {inserted:?}");
        };
        let reader = StoreReader::open(&cfg.path).unwrap();
        let pending = reader.pending(0, 10).unwrap();
        assert_eq!(pending.iter().map(|p| p.seq).collect::<Vec<_>>(), [seq]);
        let entry = reader.quarantine_get(id).unwrap().unwrap();
        assert_eq!(entry.summary.replayed_at_ms, Some(5_000));
        let audit = reader.audit_recent(10).unwrap();
        let kinds: Vec<&str> = audit.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["quarantine.replayed", "messages.received"]);
        assert!(
            audit[1]
                .detail
                .contains("lab: 1 quarantined (AE) entries 1"),
            "{}",
            audit[1].detail
        );
        let stats = reader.stats().unwrap();
        let lab = &stats.sources[0];
        assert_eq!((lab.received, lab.stored, lab.quarantined), (1, 1, 1));
        assert_eq!(stats.quarantine_count, 0);
    }

    #[tokio::test]
    async fn second_replay_of_the_same_entry_stores_nothing() {
        let (_dir, cfg) = temp_config();
        let id = quarantined(&cfg).await;
        let msg = message("lab", "C1", "fixed");
        replay(&cfg, id, &msg, 5_000).unwrap();
        let err = replay(&cfg, id, &msg, 6_000).unwrap_err();
        assert!(matches!(err, StoreError::NotFound { id: got, .. } if got == id));
        let reader = StoreReader::open(&cfg.path).unwrap();
        assert_eq!(reader.pending(0, 10).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn drop_erases_the_raw_bytes_and_audits() {
        let (_dir, cfg) = temp_config();
        let id = quarantined(&cfg).await;
        drop_entry(&cfg.path, id, 7_000).unwrap();
        let reader = StoreReader::open(&cfg.path).unwrap();
        let entry = reader.quarantine_get(id).unwrap().unwrap();
        assert_eq!(entry.summary.dropped_at_ms, Some(7_000));
        assert!(entry.raw.is_empty());
        assert_eq!(
            reader.audit_recent(1).unwrap()[0].kind,
            "quarantine.dropped"
        );
        assert!(matches!(
            drop_entry(&cfg.path, id, 8_000),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn replay_while_the_agent_writer_runs_is_picked_up_by_its_reader() {
        let (_dir, cfg) = temp_config();
        let id = quarantined(&cfg).await;
        let store = open_store(&cfg);
        let first = store.handle.insert(message("lab", "A", "a")).await.unwrap();
        let Inserted::Stored { seq: first_seq, .. } = first else {
            panic!("expected a stored record");
        };
        let replay_cfg = cfg.clone();
        tokio::task::spawn_blocking(move || {
            replay(&replay_cfg, id, &message("lab", "C1", "fixed"), 9_000)
        })
        .await
        .unwrap()
        .unwrap();
        store.handle.insert(message("lab", "B", "b")).await.unwrap();
        let reader = store.handle.open_reader().unwrap();
        let after_first = reader.pending(first_seq, 10).unwrap();
        let controls: Vec<&[u8]> = after_first.iter().map(|p| p.record.as_slice()).collect();
        assert_eq!(controls, [b"fixed".as_slice(), b"b".as_slice()]);
        close(store).await.unwrap();
    }

    #[test]
    fn another_programs_database_is_refused_untouched() {
        let (_dir, cfg) = temp_config();
        let conn = Connection::open(&cfg.path).unwrap();
        conn.execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
            .unwrap();
        drop(conn);
        let err = drop_entry(&cfg.path, 1, 0).unwrap_err();
        assert!(matches!(err, StoreError::ForeignDatabase { .. }), "{err:?}");
    }

    #[test]
    fn an_older_schema_is_left_for_the_agent_to_migrate() {
        let (_dir, cfg) = temp_config();
        let conn = Connection::open(&cfg.path).unwrap();
        conn.pragma_update(None, "application_id", schema::APPLICATION_ID)
            .unwrap();
        drop(conn);
        let err = drop_entry(&cfg.path, 1, 0).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaOutdated { found: 0, .. }),
            "{err:?}"
        );
        let conn = Connection::open(&cfg.path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!((version, mode.as_str()), (0, "delete"));
    }

    #[test]
    fn a_missing_database_is_not_created() {
        let (dir, cfg) = temp_config();
        assert!(drop_entry(&cfg.path, 1, 0).is_err());
        assert!(!dir.path().join("queue.db").exists());
    }
}
