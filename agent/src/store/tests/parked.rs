//! Records set aside as too big for the hub: kept, skipped by the
//! forwarder's reads, counted apart, and the two ways out (replay, drop).

use rusqlite::Connection;

use super::*;
use crate::store::{PendingQuery, offline};

/// The details of the audit lines of `kind`, newest first.
fn audit_of(r: &StoreReader, kind: &str) -> Vec<String> {
    let lines = r.audit_recent(100).expect("audit");
    lines
        .into_iter()
        .filter(|l| l.kind == kind)
        .map(|l| l.detail)
        .collect()
}

/// Three stored records `A`, `B`, `C`; returns their seqs.
async fn three(store: &OpenedStore) -> Vec<i64> {
    let mut seqs = Vec::new();
    for control_id in ["A", "B", "C"] {
        let inserted = store
            .handle
            .insert(message("lab", control_id, control_id))
            .await;
        seqs.push(stored(inserted).1);
    }
    seqs
}

#[tokio::test]
async fn a_parked_record_is_kept_skipped_by_reads_and_counted_apart_from_the_queue() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let seqs = three(&store).await;
    let parked = store.handle.park(seqs[0], "too big".into(), 1_000).await;
    assert!(parked.expect("park"));
    let again = store.handle.park(seqs[0], "too big".into(), 2_000).await;
    assert!(!again.expect("park"), "parked once, audited once");
    assert_eq!(pending_seqs(&cfg), &seqs[1..]);
    let r = reader(&cfg);
    let stats = r.stats().expect("stats");
    assert_eq!((stats.queue_depth, stats.parked), (2, 1));
    let second = r.pending(0, 10).expect("pending")[0].received_at_ms;
    assert_eq!(
        stats.oldest_unsent_ms,
        Some(second),
        "the parked one is not 'waiting'"
    );
    let list = r.parked(10).expect("parked");
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].seq, list[0].control_id.as_str()), (seqs[0], "A"));
    assert_eq!(list[0].parked_at_ms, 1_000);
    let parked = audit_of(&r, "record.parked");
    assert_eq!(parked, ["too big"], "one line per record set aside");
    close(store).await.expect("close");
}

#[tokio::test]
async fn a_replayed_record_goes_to_the_end_of_the_queue_under_its_own_id() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let seqs = three(&store).await;
    store
        .handle
        .park(seqs[1], "too big".into(), 1_000)
        .await
        .expect("park");
    let id = reader(&cfg).parked(1).expect("parked")[0].id;
    let (path, second) = (cfg.path.clone(), seqs[1]);
    let new_seq = tokio::task::spawn_blocking(move || offline::replay_parked(&path, second, 2_000))
        .await
        .expect("join")
        .expect("replay");
    assert!(new_seq > seqs[2]);
    let pending = reader(&cfg).pending(0, 10).expect("pending");
    let order: Vec<(i64, uuid::Uuid)> = pending.iter().map(|p| (p.seq, p.id)).collect();
    assert_eq!(order.len(), 3);
    assert_eq!(order[2], (new_seq, id), "same id, at the end");
    assert_eq!(reader(&cfg).stats().expect("stats").parked, 0);
    // A seq is never reused: the next insert comes after the moved row.
    let next = stored(store.handle.insert(message("lab", "D", "D")).await).1;
    assert!(next > new_seq);
    let replayed = audit_of(&reader(&cfg), "parked.replayed");
    assert_eq!(replayed.len(), 1);
    assert!(replayed[0].contains("control id B"), "{}", replayed[0]);
    let path = cfg.path.clone();
    let twice = tokio::task::spawn_blocking(move || offline::replay_parked(&path, second, 3_000))
        .await
        .expect("join");
    assert!(matches!(twice, Err(StoreError::NotFound { .. })));
    close(store).await.expect("close");
}

#[tokio::test]
async fn a_dropped_record_is_erased_with_an_audit_line_and_only_a_parked_one_can_be() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let seqs = three(&store).await;
    store
        .handle
        .park(seqs[2], "too big".into(), 1_000)
        .await
        .expect("park");
    close(store).await.expect("close");
    let not_parked = offline::drop_parked(&cfg.path, seqs[0], 2_000);
    assert!(matches!(not_parked, Err(StoreError::NotFound { .. })));
    offline::drop_parked(&cfg.path, seqs[2], 2_000).expect("drop");
    assert_eq!(pending_seqs(&cfg), &seqs[..2]);
    let stats = reader(&cfg).stats().expect("stats");
    assert_eq!((stats.queue_depth, stats.parked), (2, 0));
    assert_eq!(audit_of(&reader(&cfg), "parked.dropped").len(), 1);
}

#[tokio::test]
async fn a_read_is_bounded_by_bytes_and_never_loads_a_record_over_the_limit() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    for (n, size) in [100, 5_000, 100, 100].into_iter().enumerate() {
        let mut msg = message("lab", &format!("C{n}"), &format!("c{n}"));
        msg.record = vec![b'r'; size];
        store.handle.insert(msg).await.expect("insert");
    }
    close(store).await.expect("close");
    let query = |max_bytes, max_record| PendingQuery {
        after_seq: 0,
        max_rows: 10,
        max_bytes,
        max_record,
        with_raw: false,
    };
    let r = reader(&cfg);
    let rows = r.pending_records(&query(150, 10_000)).expect("read");
    assert_eq!(rows.len(), 1, "the second row would pass 150 bytes");
    let rows = r.pending_records(&query(10, 10_000)).expect("read");
    assert_eq!(rows.len(), 1, "the first row comes whatever its size");
    let rows = r.pending_records(&query(10_000, 1_000)).expect("read");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1].record_len, 5_000);
    assert!(rows[1].record.is_empty(), "over max_record: not loaded");
    assert_eq!(rows[0].record.len(), 100);
}

#[test]
fn a_schema_1_store_is_migrated_with_its_rows_unparked() {
    let (_dir, cfg) = temp_config();
    {
        let mut conn = Connection::open(&cfg.path).expect("open");
        let tx = conn.transaction().expect("tx");
        tx.execute_batch(crate::store::schema::V1).expect("v1");
        tx.pragma_update(None, "user_version", 1).expect("version");
        tx.pragma_update(None, "application_id", crate::store::schema::APPLICATION_ID)
            .expect("id");
        tx.execute(
            "INSERT INTO records (id, source, control_id, message_type, received_at_ms, raw, record)
             VALUES (randomblob(16), 'lab', 'OLD', 'ORU^R01', 1, x'00', x'02')",
            [],
        )
        .expect("row");
        tx.commit().expect("commit");
    }
    let opened = open_store(&cfg);
    drop(opened);
    let r = reader(&cfg);
    let stats = r.stats().expect("stats");
    assert_eq!((stats.queue_depth, stats.parked), (1, 0));
}
