//! Commit, reopen, ordering, group commit, forwarding, quarantine.

use std::time::Duration;

use super::*;
use crate::store::{IntegrityCheck, PendingQuery, Quarantined, StoreHealth};

#[tokio::test]
async fn committed_rows_survive_reopen() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            stored(
                store
                    .handle
                    .insert(message("lab", &format!("C{n}"), "OBX|1"))
                    .await,
            )
            .0,
        );
    }
    close(store).await.unwrap();

    let store = open_store(&cfg);
    assert_eq!(store.report.last_seq, 3);
    assert!(matches!(
        store.report.integrity,
        IntegrityCheck::Passed { .. }
    ));
    let pending = reader(&cfg).pending(0, 10).unwrap();
    assert_eq!(pending.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    assert_eq!(
        pending
            .first()
            .map(|r| r.raw.as_deref().is_some_and(|raw| raw.starts_with(b"MSH|"))),
        Some(true)
    );
    // Without the raw message: same rows, same records, no raw bytes read.
    let lean = reader(&cfg)
        .pending_records(&PendingQuery {
            after_seq: 0,
            max_rows: 10,
            max_bytes: usize::MAX,
            max_record: usize::MAX,
            with_raw: false,
            pick: crate::store::Pick::Unsent,
        })
        .unwrap();
    assert_eq!(lean.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    assert!(lean.iter().all(|r| r.raw.is_none()));
    assert_eq!(
        lean.iter().map(|r| &r.record).collect::<Vec<_>>(),
        pending.iter().map(|r| &r.record).collect::<Vec<_>>()
    );
    close(store).await.unwrap();
}

#[tokio::test]
async fn ids_are_uuid_v7_and_increase_with_seq() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let mut last: Option<(uuid::Uuid, i64)> = None;
    for n in 0..20 {
        let (id, seq) = stored(
            store
                .handle
                .insert(message("lab", &format!("C{n}"), &format!("OBX|{n}")))
                .await,
        );
        assert_eq!(id.get_version_num(), 7);
        if let Some((last_id, last_seq)) = last {
            assert!(id > last_id && seq > last_seq, "{id} after {last_id}");
        }
        last = Some((id, seq));
    }
    close(store).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_share_transactions() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let before = store.handle.metrics().transactions;
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let h = store.handle.clone();
            tokio::spawn(async move {
                h.insert(message("lab", &format!("C{n}"), &format!("OBX|{n}")))
                    .await
            })
        })
        .collect();
    for t in tasks {
        stored(t.await.unwrap());
    }
    let transactions = store.handle.metrics().transactions - before;
    assert!(
        transactions < 50,
        "200 inserts took {transactions} transactions"
    );
    assert_eq!(pending_seqs(&cfg).len(), 200);
    close(store).await.unwrap();
}

#[tokio::test]
async fn queued_requests_commit_in_one_transaction() {
    let (_dir, cfg) = temp_config();
    let msgs = (0..50)
        .map(|n| message("lab", &format!("C{n}"), &format!("OBX|{n}")))
        .collect();
    let (results, transactions) = insert_as_one_batch(&cfg, msgs).await;
    assert_eq!(transactions, 1);
    let seqs: Vec<i64> = results.into_iter().map(|r| stored(r).1).collect();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
}

#[tokio::test]
async fn pending_follows_seq_order_cursor_and_limit() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    for n in 0..5 {
        let source = if n % 2 == 0 { "lab" } else { "monitor" };
        let mut msg = message(source, &format!("C{n}"), &format!("OBX|{n}"));
        msg.received_at_ms = 1_000_000 - n; // clock running backwards: seq still orders
        store.handle.insert(msg).await.unwrap();
    }
    let r = reader(&cfg);
    let seqs = |after, limit| {
        r.pending(after, limit)
            .unwrap()
            .iter()
            .map(|p| p.seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(seqs(0, 3), [1, 2, 3]);
    assert_eq!(seqs(3, 10), [4, 5]);
    assert_eq!(store.handle.forwarded(vec![2], now_ms()).await.unwrap(), 1);
    assert_eq!(seqs(0, 10), [1, 3, 4, 5]);
    let stats = r.stats().unwrap();
    assert_eq!(stats.queue_depth, 4);
    assert_eq!(stats.oldest_unsent_ms, Some(1_000_000));
    close(store).await.unwrap();
}

#[tokio::test]
async fn forwarded_rows_are_deleted_and_counted_per_source() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    for n in 0..3 {
        store
            .handle
            .insert(message("lab", &format!("C{n}"), &format!("OBX|{n}")))
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .handle
            .forwarded(vec![1, 3, 99], now_ms())
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.handle.forwarded(vec![1], now_ms()).await.unwrap(), 0);
    assert_eq!(count_rows(&cfg.path, "SELECT count(*) FROM records"), 1);
    let lab = reader(&cfg).stats().unwrap().sources.remove(0);
    assert_eq!(
        (lab.source.as_str(), lab.stored, lab.forwarded),
        ("lab", 3, 2)
    );
    close(store).await.unwrap();
}

#[tokio::test]
async fn retained_rows_are_marked_sent_then_purged_after_retention() {
    let (_dir, mut cfg) = temp_config();
    cfg.retain_sent = Duration::from_secs(3600);
    let store = open_store(&cfg);
    for n in 0..3 {
        store
            .handle
            .insert(message("lab", &format!("C{n}"), &format!("OBX|{n}")))
            .await
            .unwrap();
    }
    let now = now_ms();
    assert_eq!(store.handle.forwarded(vec![1, 2], now).await.unwrap(), 2);
    assert_eq!(pending_seqs(&cfg), [3]);
    assert_eq!(count_rows(&cfg.path, "SELECT count(*) FROM records"), 3);

    let two_hours_later = now + 2 * 3600 * 1000;
    assert_eq!(
        store
            .handle
            .forwarded(vec![3], two_hours_later)
            .await
            .unwrap(),
        1
    );
    assert_eq!(count_rows(&cfg.path, "SELECT count(*) FROM records"), 1);
    let audit = reader(&cfg).audit_recent(10).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.kind == "records.purged" && a.detail.starts_with("2 ")),
        "{audit:?}"
    );
    close(store).await.unwrap();
}

fn rejected(n: u8) -> Quarantined {
    Quarantined {
        no_ack_requested: false,
        source: "lab".to_owned(),
        peer: "10.0.0.7:5000".to_owned(),
        received_at_ms: now_ms(),
        raw: vec![b'?', n],
        error: "no MSH segment".to_owned(),
        error_code: 100,
        ack: b"MSA|AE|".to_vec(),
    }
}

#[tokio::test]
async fn quarantine_entries_are_listed_replayed_and_dropped_with_audit() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let first = store.handle.quarantine(rejected(1)).await.unwrap();
    let second = store.handle.quarantine(rejected(2)).await.unwrap();
    let r = reader(&cfg);
    let listed: Vec<i64> = r
        .quarantine_list(10)
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    assert_eq!(listed, [first, second]);
    assert_eq!(r.quarantine_get(second).unwrap().unwrap().raw, [b'?', 2]);

    store
        .handle
        .mark_quarantine_replayed(first, uuid::Uuid::now_v7(), now_ms())
        .await
        .unwrap();
    store
        .handle
        .drop_quarantine(second, now_ms())
        .await
        .unwrap();
    let again = store.handle.drop_quarantine(second, now_ms()).await;
    assert!(
        matches!(again, Err(StoreError::NotFound { id, .. }) if id == second),
        "{again:?}"
    );

    assert!(r.quarantine_list(10).unwrap().is_empty());
    let dropped = r.quarantine_get(second).unwrap().unwrap();
    assert!(
        dropped.raw.is_empty() && dropped.ack.is_empty() && dropped.summary.dropped_at_ms.is_some()
    );
    let kinds: Vec<String> = r
        .audit_recent(10)
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .filter(|k| k.starts_with("quarantine."))
        .collect();
    assert_eq!(kinds, ["quarantine.dropped", "quarantine.replayed"]);
    assert!(
        matches!(
            r.audit_verify().unwrap(),
            crate::store::Verdict::Intact { .. }
        ),
        "the writer's and the quarantine's lines chain"
    );
    let stats = r.stats().unwrap();
    assert_eq!(
        (stats.quarantine_count, stats.sources[0].quarantined),
        (0, 2)
    );
    close(store).await.unwrap();
}

#[tokio::test]
async fn heartbeat_advances_while_idle_and_shutdown_is_clean() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let mut health = store.handle.health();
    let first = store.handle.metrics().heartbeat_ms;
    assert!(first > 0);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(store.handle.metrics().heartbeat_ms > first);

    assert!(matches!(*health.borrow_and_update(), StoreHealth::Running));
    close(store).await.unwrap();
    assert!(matches!(*health.borrow(), StoreHealth::Stopped));
}

#[tokio::test]
async fn committed_watch_wakes_with_the_newest_seq() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let mut committed = store.handle.committed();
    assert_eq!(*committed.borrow_and_update(), 0);
    store
        .handle
        .insert(message("lab", "C1", "OBX"))
        .await
        .unwrap();
    committed.changed().await.unwrap();
    assert_eq!(*committed.borrow(), 1);
    close(store).await.unwrap();
}

#[test]
fn missing_directory_is_an_error_and_creates_nothing() {
    let (dir, mut cfg) = temp_config();
    cfg.path = dir.path().join("absent").join("queue.db");
    let err = Store::open(cfg).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn the_running_writer_replays_an_entry_once_as_one_record_and_a_resend_finds_it() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let first = store.handle.quarantine(rejected(1)).await.unwrap();
    let second = store.handle.quarantine(rejected(2)).await.unwrap();
    let msg = message("lab", "Q1", "OBX|1");
    let (record, _) = stored(
        store
            .handle
            .replay_quarantined(first, msg.clone(), now_ms())
            .await,
    );
    let again = store
        .handle
        .replay_quarantined(first, msg.clone(), now_ms())
        .await;
    assert!(
        matches!(again, Err(StoreError::NotFound { id, .. }) if id == first),
        "an entry leaves quarantine once: {again:?}"
    );
    // The same message in another entry (its sender resent it): no second record.
    let resend = store
        .handle
        .replay_quarantined(second, msg, now_ms())
        .await
        .unwrap();
    assert!(
        matches!(&resend, Inserted::Duplicate { id, .. } if *id == record),
        "{resend:?}"
    );
    assert_eq!(pending_seqs(&cfg).len(), 1);
    let r = reader(&cfg);
    assert!(r.quarantine_list(10).unwrap().is_empty());
    let stats = r.stats().unwrap();
    let lab = stats.sources.iter().find(|s| s.source == "lab").unwrap();
    assert_eq!(lab.received, 2, "a replay is not a second arrival: {lab:?}");
}

#[tokio::test]
async fn a_replay_that_cannot_be_stored_leaves_its_entry_open_and_the_batch_commits() {
    let (_dir, mut cfg) = temp_config();
    cfg.max_bytes = 1;
    let store = open_store(&cfg);
    let id = store.handle.quarantine(rejected(1)).await.unwrap();
    let full = store
        .handle
        .replay_quarantined(id, sized_message("lab", "BIG", 1 << 20), now_ms())
        .await;
    assert!(matches!(full, Err(StoreError::Full { .. })), "{full:?}");
    let r = reader(&cfg);
    let listed: Vec<i64> = r
        .quarantine_list(10)
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    assert_eq!(listed, [id], "still open");
    assert!(pending_seqs(&cfg).is_empty());
}
